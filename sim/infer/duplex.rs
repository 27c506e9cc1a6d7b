//! Steps on a device with PIM units beside its xPU (Duplex, Yun et al., MICRO'24, arXiv
//! 2409.01141): an architecture with a `[gpu]` section (the xPU) and a `[pim]` section (the
//! units, [`crate::pim`]).
//!
//! A step starts as the xPU's ([`GpuStepper::step`]). Then each layer cascade that reads its
//! operands from memory and that Duplex considers for PIM — the projections, attention, the
//! FFN or the MoE experts ([`CANDIDATES`]) — is placed:
//! - **by operational intensity**: an op whose FLOPs per minimum byte exceed the xPU's ridge
//!   point (its dense peak over its HBM pin rate) is compute-bound on the xPU and stays there;
//! - **by the cost on each**: the others are also mapped onto the PIM units by the spatial
//!   mapper (the same mapping contract as any accelerator: `Problem`, `ArchP`, `map_cascade`)
//!   and run where they take less time;
//! - **co-processing** (`pim.coprocess`, Duplex §IV-D's expert-level split): an MoE layer's
//!   experts are split, those with the most tokens (the highest Op/B) on the xPU, the rest on
//!   the PIM units, both at once; every split is priced and the fastest kept. Running at once,
//!   they share the memory: the pair takes `max(xPU, PIM, (xPU bytes + PIM bytes) / path
//!   bandwidth)` (the banks serve both; the path's sustained rate is the most they deliver).
//!   Each side routes the tokens for its experts (the router is run on both: a few µs).
//!   Attention-level co-processing (decode attention on PIM beside prefill attention on the
//!   xPU) is a property of mixed steps: [`crate::infer::serve`] applies it.
//!
//! Decode attention is mapped at contexts of a grid and interpolated between them, as the
//! spatial stepper does. The step is then timed as the xPU's (pipeline stages included);
//! offloading is not modelled with PIM.

use super::spatial::{map_instance, on_context_grid, Cost};
use super::step::{GpuStepper, Parts, Step, StepOp, StepShape};
use super::Parallel;
use crate::gpu::Bound;
use crate::pim::PimPath;
use crate::workload::{Instance, Phase, Workload};
use cascade_arch::{Architecture, Link};
use cascade_einsum::{Cascade, Routing};
use cascade_mappings::Search;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The layer roles that may run on PIM (Duplex offloads the MoE experts and attention; the
/// projections and dense FFNs are offered too and go where they are faster). Norms, glue
/// kernels, collectives and the LM head stay on the xPU.
pub const CANDIDATES: [&str; 5] = ["qkv_proj", "attention", "o_proj", "ffn", "moe"];

/// Mapping evaluations per fusion group of a PIM mapping (the mapper's search budget).
pub const PIM_BUDGET: u64 = 4000;

/// How a Duplex system is built.
#[derive(Clone, Debug, Default)]
pub struct DuplexOptions {
    /// PIM units other than the architecture's `pim.arch` (`bank_pim`, `bankgroup_pim`, …).
    pub pim: Option<String>,
    /// Duplex's simulator's assumptions: every xPU op at its roofline, the PIM path at its peak
    /// (for the cross-check against it; not a prediction).
    pub roofline: bool,
}

/// Where one role of a step ran, and at what cost (one run, one device).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Placement {
    pub role: String,
    /// `xpu`, `pim` or `xpu+pim`.
    pub unit: &'static str,
    /// FLOPs per minimum byte of the role's ops.
    pub intensity: f64,
    /// The xPU's time alone, the PIM's alone (`None`: not tried, compute-bound on the xPU), and
    /// the time as placed: the role's every run in one block of layers (one layer, or a dense
    /// and an MoE layer when they alternate).
    pub xpu_s: f64,
    pub pim_s: Option<f64>,
    pub seconds: f64,
    /// Under co-processing: experts on the xPU, of the device's experts.
    pub experts_on_xpu: Option<(usize, usize)>,
    /// Why the PIM units were not tried (their mapper's refusal), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One side's totals: seconds (back to back), HBM bytes and joules of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Side {
    seconds: f64,
    bytes: f64,
    energy_j: f64,
}

impl Side {
    fn of(ops: &[StepOp]) -> Side {
        Side {
            seconds: ops.iter().map(|o| o.seconds).sum(),
            bytes: ops.iter().map(|o| o.hbm_bytes).sum(),
            energy_j: ops.iter().map(|o| o.energy_j).sum(),
        }
    }

    fn pim(c: Cost) -> Side {
        Side {
            seconds: c.seconds,
            bytes: c.off_chip,
            energy_j: c.energy_j,
        }
    }

    /// `n` runs of the side, one after another.
    fn times(self, n: f64) -> Side {
        Side {
            seconds: self.seconds * n,
            bytes: self.bytes * n,
            energy_j: self.energy_j * n,
        }
    }
}

/// The time of `x` on the xPU and `p` on the PIM units at once, sharing a path of `bw` bytes/s.
pub fn concurrent_seconds(x_s: f64, x_bytes: f64, p_s: f64, p_bytes: f64, bw: f64) -> f64 {
    x_s.max(p_s).max((x_bytes + p_bytes) / bw)
}

type Key = (String, Vec<(String, u64)>, Option<Vec<u64>>);

/// PIM mappings by units (name and root bandwidth), element bytes and instance, shared by every
/// stepper of the process (a reproduction builds many over the same units; the mapper is
/// deterministic, so a cached cost is the cost a fresh search gives).
type GlobalKey = (String, u64, u64, Key);

fn shared_mappings() -> &'static std::sync::Mutex<HashMap<GlobalKey, Cost>> {
    static M: std::sync::OnceLock<std::sync::Mutex<HashMap<GlobalKey, Cost>>> =
        std::sync::OnceLock::new();
    M.get_or_init(|| std::sync::Mutex::new(HashMap::new()))
}

/// Builds steps on an xPU with PIM units, caching each PIM mapping by cascade and extents.
pub struct DuplexStepper<'a> {
    xpu: GpuStepper<'a>,
    pim: Architecture,
    path: PimPath,
    /// The rate the xPU's and the PIM units' reads share when both run (the path's).
    shared_bw: f64,
    coprocess: bool,
    /// The xPU's ridge point, FLOPs per byte.
    xpu_ridge: f64,
    search: Search,
    cascades: HashMap<String, Cascade>,
    mapped: HashMap<Key, Cost>,
    /// The placements of the last step built.
    pub placements: Vec<Placement>,
}

impl<'a> DuplexStepper<'a> {
    pub fn new(
        workload: &'a Workload,
        arch: &'a Architecture,
        par: Parallel,
        link: Option<Link>,
        opts: &DuplexOptions,
    ) -> Result<Self, String> {
        let spec = arch.pim.as_ref().ok_or_else(|| {
            format!(
                "architecture `{}` has no [pim] section: a Duplex system needs PIM units beside its xPU",
                arch.name
            )
        })?;
        let mut xpu = GpuStepper::with_parallel(workload, arch, par, link)?;
        if opts.roofline {
            xpu.set_roofline();
        }
        let name = opts.pim.as_deref().unwrap_or(&spec.arch);
        if !cascade_arch::PIM_PRESETS.contains(&name) {
            return Err(format!(
                "--pim {name}: no PIM preset of that name (presets: {}, or none)",
                cascade_arch::PIM_PRESETS.join(", ")
            ));
        }
        let (pim, path) = crate::pim::units(name, opts.roofline)?;
        let gpu = arch.gpu.as_ref().expect("checked by GpuStepper");
        let dtype = match workload.run.precision {
            crate::workload::Precision::Fp8 => "fp8",
            crate::workload::Precision::Fp32 => "fp32_fma",
            _ => "bf16",
        };
        let peak = gpu.peak_flops(dtype).unwrap_or(0.0);
        let xpu_ridge = peak / gpu.hbm_bandwidth.bytes_per_s();
        let shared_bw = if opts.roofline {
            path.peak
        } else {
            path.bandwidth
        };
        Ok(DuplexStepper {
            xpu,
            pim,
            path,
            shared_bw,
            coprocess: spec.coprocess,
            xpu_ridge,
            search: Search {
                budget: PIM_BUDGET,
                ..Search::default()
            },
            cascades: HashMap::new(),
            mapped: HashMap::new(),
            placements: Vec::new(),
        })
    }

    /// The PIM units' name and their path.
    pub fn pim(&self) -> (&str, &PimPath) {
        (&self.pim.name, &self.path)
    }

    /// The bandwidth both units share when they run at once, bytes/s.
    pub fn shared_bandwidth(&self) -> f64 {
        self.shared_bw
    }

    /// The parallelism the stepper runs.
    pub fn parallel(&self) -> Parallel {
        self.xpu.parallel()
    }

    /// `inst` mapped onto the PIM units, once per cascade, extents and routing (in this
    /// stepper, and in the process: [`shared_mappings`]).
    fn map(&mut self, inst: &Instance) -> Result<Cost, String> {
        let key = (
            inst.cascade.clone(),
            inst.extents.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            inst.routing.as_ref().map(|r| r.tokens_per_expert.clone()),
        );
        if let Some(c) = self.mapped.get(&key) {
            return Ok(*c);
        }
        let bytes = self.xpu.shard().run.precision.bytes();
        let root = self.pim.levels[0]
            .bandwidth
            .map_or(0.0, |b| b.bytes_per_s())
            .to_bits();
        let global = (self.pim.name.clone(), root, bytes, key.clone());
        let hit = shared_mappings()
            .lock()
            .map_err(|e| e.to_string())?
            .get(&global)
            .copied();
        let cost = match hit {
            Some(c) => c,
            None => {
                let c = super::builtin_cascade(&mut self.cascades, &inst.cascade)?;
                let cost = map_instance(&self.pim, &self.search, bytes, &c, inst)?;
                shared_mappings()
                    .lock()
                    .map_err(|e| e.to_string())?
                    .insert(global, cost);
                cost
            }
        };
        self.mapped.insert(key, cost);
        Ok(cost)
    }

    /// `inst` on the PIM units; a decode attention at `context` keys interpolated between the
    /// contexts of the grid around it.
    fn map_at(&mut self, inst: &Instance, shape: StepShape, batch: u64) -> Result<Cost, String> {
        if shape.phase != Phase::Decode || inst.role != "attention" {
            return self.map(inst);
        }
        let w = self.xpu.shard().clone();
        on_context_grid(&w, inst, batch, shape.context, |i| self.map(i))
    }

    /// The MoE instance restricted to the experts `which` (indices into its routing).
    fn experts(inst: &Instance, which: &[usize]) -> Instance {
        let mut sub = inst.clone();
        if let Some(r) = &inst.routing {
            sub.extents
                .insert(r.expert_rank.clone(), which.len() as u64);
            sub.routing = Some(Routing {
                expert_rank: r.expert_rank.clone(),
                tokens: r.tokens,
                tokens_per_expert: which.iter().map(|&i| r.tokens_per_expert[i]).collect(),
            });
        }
        sub
    }

    /// Duplex's expert co-processing: the `j` experts with the most tokens on the xPU, the rest
    /// on the PIM units, at once; the fastest `j` (the lowest on ties). Returns the xPU's and
    /// the PIM's sides and `j`.
    fn split_experts(
        &mut self,
        inst: &Instance,
        phase: Phase,
        layers: u64,
    ) -> Result<(Side, Side, usize, usize), String> {
        let Some(r) = &inst.routing else {
            return Err(format!("{}: an MoE instance without routing", inst.role));
        };
        let e = r.tokens_per_expert.len();
        let mut order: Vec<usize> = (0..e).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(r.tokens_per_expert[i]));
        let mut best: Option<(f64, Side, Side, usize)> = None;
        for j in 0..=e {
            let (on_x, on_p) = order.split_at(j);
            let x = if on_x.is_empty() {
                Side::default()
            } else {
                Side::of(
                    &self
                        .xpu
                        .instance_ops(&Self::experts(inst, on_x), phase, layers)?,
                )
            };
            let p = if on_p.is_empty() {
                Side::default()
            } else {
                Side::pim(self.map(&Self::experts(inst, on_p))?)
            };
            let t = concurrent_seconds(x.seconds, x.bytes, p.seconds, p.bytes, self.shared_bw);
            if best.as_ref().is_none_or(|b| t < b.0) {
                best = Some((t, x, p, j));
            }
        }
        let (_, x, p, j) = best.expect("at least one split");
        Ok((x, p, j, e))
    }

    /// One step: the xPU's, with each candidate role placed (see the module's notes).
    pub fn step(&mut self, shape: StepShape) -> Result<Step, String> {
        let base = self.xpu.step(shape)?;
        let layers = self.xpu.shard().repeats();
        let par = self.xpu.parallel();
        let batch = shape.batch.div_ceil(par.dp());
        let mut ops = base.ops.clone();
        let (layer_start, mut layer_end) = base.layer_ops;
        let mut placements = Vec::new();
        let mut by_unit: BTreeMap<&'static str, Parts> = BTreeMap::new();
        let mut split_parts: Vec<(String, Side, Side)> = Vec::new();
        let block = self.xpu.layer_instances(shape)?;
        let mut seen: Vec<String> = Vec::new();
        for inst in &block {
            if !CANDIDATES.contains(&inst.role.as_str()) || seen.contains(&inst.role) {
                continue;
            }
            seen.push(inst.role.clone());
            // A block of several layers (dense and MoE layers alternating) runs the role's
            // instance once per layer: its xPU ops below are all of them, its PIM cost is one
            // instance's times `n`.
            let n = block.iter().filter(|i| i.role == inst.role).count() as f64;
            let inst = inst.clone();
            let mine: Vec<StepOp> = ops
                .iter()
                .filter(|o| o.role == inst.role && o.times == layers)
                .cloned()
                .collect();
            if mine.is_empty() {
                continue;
            }
            let x = Side::of(&mine);
            let flops: f64 = mine.iter().map(|o| o.flops).sum();
            let min_bytes: f64 = mine.iter().map(|o| o.min_bytes).sum();
            let intensity = if min_bytes > 0.0 {
                flops / min_bytes
            } else {
                0.0
            };
            let mut placed = Placement {
                role: inst.role.clone(),
                unit: "xpu",
                intensity,
                xpu_s: x.seconds,
                pim_s: None,
                seconds: x.seconds,
                experts_on_xpu: None,
                note: None,
            };
            if intensity > self.xpu_ridge {
                placements.push(placed);
                continue;
            }
            let pim_cost = match self.map_at(&inst, shape, batch) {
                Ok(c) => c,
                Err(e) => {
                    // The units cannot run it (an op they lack): it stays on the xPU.
                    placed.note = Some(e);
                    placements.push(placed);
                    continue;
                }
            };
            let pim_alone = Side::pim(pim_cost).times(n);
            placed.pim_s = Some(pim_alone.seconds);
            let co = inst.role == "moe"
                && self.coprocess
                && inst
                    .routing
                    .as_ref()
                    .is_some_and(|r| r.tokens_per_expert.len() > 1);
            let (unit, xs, ps, seconds, bound) = if co {
                let (xs, ps, j, e) = self.split_experts(&inst, shape.phase, layers)?;
                placed.experts_on_xpu = Some((j, e));
                let t =
                    concurrent_seconds(xs.seconds, xs.bytes, ps.seconds, ps.bytes, self.shared_bw);
                let unit = match j {
                    0 => "pim",
                    j if j == e => "xpu",
                    _ => "xpu+pim",
                };
                (unit, xs, ps, t, Bound::Memory)
            } else if pim_alone.seconds < x.seconds {
                (
                    "pim",
                    Side::default(),
                    pim_alone,
                    pim_alone.seconds,
                    pim_cost.bound,
                )
            } else {
                ("xpu", x, Side::default(), x.seconds, Bound::Memory)
            };
            placed.unit = unit;
            placed.seconds = seconds;
            placements.push(placed);
            if unit == "xpu" {
                // Its own ops stay (the split, too, may keep every expert on the xPU).
                continue;
            }
            // Replace the role's xPU ops by one op as placed.
            let at = ops
                .iter()
                .position(|o| o.role == inst.role && o.times == layers)
                .expect("the role has ops");
            let before = ops.len();
            ops.retain(|o| !(o.role == inst.role && o.times == layers));
            layer_end = layer_end + 1 + ops.len() - before;
            let spec = format!(
                "{} on {}{}",
                inst.cascade,
                if unit == "pim" { "" } else { "xpu+" },
                self.pim.name
            );
            ops.insert(
                at,
                StepOp {
                    role: inst.role.clone(),
                    pattern: "pim",
                    spec,
                    times: layers,
                    seconds,
                    bound,
                    hbm_bytes: xs.bytes + ps.bytes,
                    energy_j: xs.energy_j + ps.energy_j,
                    unit,
                    flops,
                    min_bytes,
                    kernels: vec![seconds],
                },
            );
            split_parts.push((inst.role.clone(), xs, ps));
        }
        self.placements = placements;
        let layer_ops = (layer_start, layer_end);
        for (i, o) in ops.iter().enumerate() {
            // Every device's runs of the op in the step, as the xPU's step counts them.
            let in_layer = (layer_start..layer_end).contains(&i);
            let devices = self.xpu.device_runs(in_layer, shape) * o.times as f64;
            let add = |m: &mut BTreeMap<&'static str, Parts>, unit: &'static str, s: Side| {
                let e = m.entry(unit).or_default();
                e.seconds += s.seconds * o.times as f64;
                e.energy_j += s.energy_j * devices;
                e.hbm_bytes += s.bytes * devices;
            };
            match o.unit {
                "xpu+pim" => {
                    let (_, xs, ps) = split_parts
                        .iter()
                        .find(|(r, _, _)| *r == o.role)
                        .expect("a split op has its parts");
                    add(&mut by_unit, "xpu", *xs);
                    add(&mut by_unit, "pim", *ps);
                }
                unit => add(
                    &mut by_unit,
                    unit,
                    Side {
                        seconds: o.seconds,
                        bytes: o.hbm_bytes,
                        energy_j: o.energy_j,
                    },
                ),
            }
        }
        let seconds = self.xpu.stage_seconds(&ops, layer_ops, shape);
        let sum = |f: fn(&StepOp) -> f64| ops.iter().map(|o| f(o) * o.times as f64).sum::<f64>();
        Ok(Step {
            shape,
            seconds,
            gpu_s: sum(|o| o.seconds),
            comm_s: base.comm_s,
            host_link_bytes: 0.0,
            ssd_bytes: 0.0,
            offload_wait_s: 0.0,
            hbm_bytes: self
                .xpu
                .every_device(&ops, layer_ops, shape, |o| o.hbm_bytes),
            energy_j: self
                .xpu
                .every_device(&ops, layer_ops, shape, |o| o.energy_j),
            by_unit,
            layer_ops,
            ops,
        })
    }

    /// A step split three ways for serving, as [`GpuStepper::parts`]: the dense ops, attention
    /// and the LM head, each with every device's energy and bytes.
    pub fn parts(&mut self, shape: StepShape) -> Result<[Parts; 3], String> {
        let st = self.step(shape)?;
        Ok(self.xpu.split_parts(&st.ops, shape.phase))
    }

    /// Attention alone, every layer of one device, placed as a step places it: on the PIM
    /// units when it is below the xPU's ridge point and faster there.
    pub fn attention_parts(&mut self, shape: StepShape) -> Result<Parts, String> {
        Ok(self.attention_placed(shape)?.0)
    }

    /// [`DuplexStepper::attention_parts`], and whether it runs on the PIM units.
    pub fn attention_placed(&mut self, shape: StepShape) -> Result<(Parts, bool), String> {
        let gx = self.xpu.attention_parts(shape)?;
        let layers = self.xpu.shard().repeats();
        let par = self.xpu.parallel();
        let batch = shape.batch.div_ceil(par.dp());
        let Some(inst) = self
            .xpu
            .layer_instances(shape)?
            .into_iter()
            .find(|i| i.role == "attention")
        else {
            return Ok((gx, false));
        };
        let mine = self.xpu.instance_ops(&inst, shape.phase, layers)?;
        let flops: f64 = mine.iter().map(|o| o.flops).sum();
        let min_bytes: f64 = mine.iter().map(|o| o.min_bytes).sum();
        if min_bytes <= 0.0 || flops / min_bytes > self.xpu_ridge {
            return Ok((gx, false));
        }
        let Ok(p) = self.map_at(&inst, shape, batch) else {
            return Ok((gx, false));
        };
        // Every layer's attention: the blocks times the layers of a block.
        let l = (layers * self.xpu.shard().block()) as f64;
        if p.seconds * l >= gx.seconds {
            return Ok((gx, false));
        }
        let all = par.stage_devices() as f64;
        Ok((
            Parts {
                seconds: p.seconds * l,
                energy_j: p.energy_j * l * all,
                hbm_bytes: p.off_chip * l * all,
            },
            true,
        ))
    }
}
