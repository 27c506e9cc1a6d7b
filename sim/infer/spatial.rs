//! Steps on a spatial accelerator (an architecture without a `[gpu]` section): each cascade of
//! the layer mapped by the mapper ([`crate::models::spatial::fusion::map_cascade`], the
//! analytical model, default search) at the step's extents, `model.layers` times, and the LM
//! head as the `gemm` cascade on each sequence's last token. The accelerator runs the layer's
//! cascades only: the GPU's glue kernels (rotary embeddings, cache writes, residual adds, the
//! embedding gather) have no cascade and are not in its steps.
//!
//! A decode step's attention reads a context one token longer than the step before; mapping each
//! would cost a search per token, so the attention of a decode step is mapped at contexts of a
//! grid (every length up to 16, then eight an octave) and interpolated linearly between them,
//! as `serve` prices token counts; the other cascades do not depend on the context.

use super::step::{Step, StepOp, StepShape};
use crate::gpu::Bound;
use crate::models::spatial::fusion::{map_cascade, Fusion};
use crate::workload::{Instance, Phase, Point, Workload, WorkloadKind};
use cascade_arch::Architecture;
use cascade_einsum::{bind, Cascade};
use cascade_mappings::{ArchP, Problem, Search};
use std::collections::{BTreeMap, HashMap};

/// One mapped cascade: seconds, joules, off-chip bytes and the bound the mapper reports.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cost {
    pub seconds: f64,
    pub energy_j: f64,
    pub off_chip: f64,
    pub bound: Bound,
}

impl Cost {
    /// `self + f·(o − self)`; the bound of the nearer end.
    pub(crate) fn lerp(self, o: Cost, f: f64) -> Cost {
        let l = |a: f64, b: f64| a + f * (b - a);
        Cost {
            seconds: l(self.seconds, o.seconds),
            energy_j: l(self.energy_j, o.energy_j),
            off_chip: l(self.off_chip, o.off_chip),
            bound: if f < 0.5 { self.bound } else { o.bound },
        }
    }
}

type Key = (String, Vec<(String, u64)>);

/// Builds steps on a spatial accelerator, caching each cascade's mapping by its extents.
pub struct SpatialStepper<'a> {
    workload: &'a Workload,
    arch: &'a Architecture,
    search: Search,
    cascades: HashMap<String, Cascade>,
    mapped: HashMap<Key, Cost>,
    /// The batch of the step being built (for the decode attention's grid points).
    shape_batch: u64,
}

impl<'a> SpatialStepper<'a> {
    pub fn new(workload: &'a Workload, arch: &'a Architecture) -> Result<Self, String> {
        if workload.kind() != WorkloadKind::Llm {
            return Err(format!(
                "workload `{}` lists layers; `cascade infer` runs a transformer ([model] and [run])",
                workload.name
            ));
        }
        Ok(SpatialStepper {
            workload,
            arch,
            search: Search::default(),
            cascades: HashMap::new(),
            mapped: HashMap::new(),
            shape_batch: 1,
        })
    }

    fn cascade(&mut self, name: &str) -> Result<Cascade, String> {
        super::builtin_cascade(&mut self.cascades, name)
    }

    /// The mapped cost of `inst`, once per cascade and extents.
    fn map(&mut self, inst: &Instance) -> Result<Cost, String> {
        let key = (
            inst.cascade.clone(),
            inst.extents.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        );
        if let Some(c) = self.mapped.get(&key) {
            return Ok(*c);
        }
        let c = self.cascade(&inst.cascade)?;
        let bytes = self.workload.run.precision.bytes();
        let cost = map_instance(self.arch, &self.search, bytes, &c, inst)?;
        self.mapped.insert(key, cost);
        Ok(cost)
    }

    /// `inst` at `context` keys, interpolated on the grid of contexts for a decode attention.
    fn map_at(&mut self, inst: &Instance, phase: Phase, context: u64) -> Result<Cost, String> {
        if phase != Phase::Decode || inst.role != "attention" {
            return self.map(inst);
        }
        let (w, batch) = (self.workload, self.shape_batch);
        on_context_grid(w, inst, batch, context, |i| self.map(i))
    }

    /// The cascades of one step, each mapped.
    pub fn step(&mut self, shape: StepShape) -> Result<Step, String> {
        let w = self.workload;
        self.shape_batch = shape.batch;
        let layers = w.repeats();
        let pt = Point {
            phase: shape.phase,
            batch: shape.batch,
            seq_len: match shape.phase {
                Phase::Prefill => shape.new_tokens,
                Phase::Decode => shape.context,
            },
        };
        let mut ops = Vec::new();
        let push = |ops: &mut Vec<StepOp>, inst: &Instance, times: u64, c: Cost| {
            ops.push(StepOp {
                role: inst.role.clone(),
                pattern: "mapped",
                spec: format!(
                    "{} {}",
                    inst.cascade,
                    inst.extents
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                times,
                seconds: c.seconds,
                bound: c.bound,
                hbm_bytes: c.off_chip,
                energy_j: c.energy_j,
                unit: "xpu",
                flops: 0.0,
                min_bytes: 0.0,
                kernels: vec![c.seconds],
            });
        };
        for inst in w.layer(&pt) {
            let c = self.map_at(&inst, shape.phase, shape.context)?;
            push(&mut ops, &inst, layers, c);
        }
        if let Some(vocab) = w.model.vocab {
            let head = Instance {
                role: "lm_head".into(),
                cascade: "gemm".into(),
                extents: BTreeMap::from([
                    ("T".to_string(), shape.batch),
                    ("K".to_string(), w.model.d_model),
                    ("N".to_string(), vocab),
                ]),
                routing: None,
                count: 1,
            };
            let c = self.map(&head)?;
            push(&mut ops, &head, 1, c);
        }
        let sum = |f: fn(&StepOp) -> f64| ops.iter().map(|o| f(o) * o.times as f64).sum::<f64>();
        let seconds = sum(|o| o.seconds);
        Ok(Step {
            shape,
            seconds,
            gpu_s: seconds,
            comm_s: 0.0,
            host_link_bytes: 0.0,
            ssd_bytes: 0.0,
            offload_wait_s: 0.0,
            hbm_bytes: sum(|o| o.hbm_bytes),
            energy_j: sum(|o| o.energy_j),
            by_unit: BTreeMap::new(),
            layer_ops: (0, 0),
            ops,
        })
    }
}

/// `inst` (of cascade `c`, `bytes` per element) mapped onto `arch` by the mapper (every fusion
/// tried, `search`'s budget): its latency, energy, off-chip bytes and bound.
pub(crate) fn map_instance(
    arch: &Architecture,
    search: &Search,
    bytes: u64,
    c: &Cascade,
    inst: &Instance,
) -> Result<Cost, String> {
    let sh = bind(c, &inst.extents).map_err(|e| format!("{}: {e}", inst.role))?;
    let p = Problem::new(c, &sh, bytes, inst.routing.clone())
        .map_err(|e| format!("{}: {e}", inst.role))?;
    let a = ArchP::new(arch, &p).map_err(|e| format!("{}: {e}", inst.role))?;
    let m = map_cascade(&p, &a, &Fusion::Search, search)
        .map_err(|e| format!("{} ({}) on {}: {e}", inst.role, inst.cascade, arch.name))?;
    let r = &m.report;
    Ok(Cost {
        seconds: r.latency_s,
        energy_j: r.energy_pj * 1e-12,
        off_chip: r.off_chip_bytes,
        // `compute`, or the storage level whose ports bound the latency.
        bound: match r.bound.as_str() {
            "compute" => Bound::Compute,
            "latency" => Bound::Latency,
            _ => Bound::Memory,
        },
    })
}

/// A decode step's `inst` (of `w` at `batch` sequences) at `context` keys, from `map` at the
/// contexts of the grid around it ([`super::serve::bracket`]), interpolated linearly: the
/// attention of each token's step without a search per token.
pub(crate) fn on_context_grid(
    w: &Workload,
    inst: &Instance,
    batch: u64,
    context: u64,
    mut map: impl FnMut(&Instance) -> Result<Cost, String>,
) -> Result<Cost, String> {
    let (lo, hi) = super::serve::bracket(context);
    // The same instance at another context: the workload's decode point at that length.
    let at = |l: u64| -> Result<Instance, String> {
        let pt = Point {
            phase: Phase::Decode,
            batch,
            seq_len: l,
        };
        w.layer(&pt)
            .into_iter()
            .find(|i| i.role == inst.role)
            .ok_or_else(|| format!("no {} at context {l}", inst.role))
    };
    let a = map(&at(lo)?)?;
    if hi == lo {
        return Ok(a);
    }
    let b = map(&at(hi)?)?;
    Ok(a.lerp(b, (context - lo) as f64 / (hi - lo) as f64))
}
