//! The ops of one inference step on a GPU, each from the GPU model through the common contract.
//!
//! A step runs the workload's layer `model.layers` times, then the LM head. A layer's cascades
//! (`Workload::layer`: norms, QKV projection, attention, output projection, FFN or MoE) are
//! lowered to the kernels eager PyTorch launches ([`crate::gpu::lower`]) — a prefill step's
//! self-attention causal, a decode step's attention `decode_attention` over the KV cache — and
//! each op is estimated by the GPU model exactly as `cascade estimate` does. Around them a
//! Llama-style layer (Hugging Face `LlamaDecoderLayer`, run eagerly) launches kernels the
//! cascades do not describe; [`glue`] lists them: rotary embeddings, the KV-cache writes, the
//! residual adds, and per step the embedding gather and,
//! for the last token of each sequence, the final norm and the LM head.

use super::collective::{self, Algorithm, Collective};
use super::parallel::Parallel;
use super::tiers::{Tier, Tiers};
use crate::gpu::contract;
use crate::gpu::lower::{lower, LowerOptions, LoweredOp};
use crate::gpu::{Bound, Dtype, GpuEstimate, GpuOp, GpuParams};
use crate::workload::{Instance, Phase, Point, Precision, Workload, WorkloadKind};
use cascade_arch::{Architecture, GpuSpec, Link};
use cascade_einsum::{bind, Cascade, Routing};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The shape of one step: how many sequences, how many new tokens each, and the KV length
/// attention reads (the new tokens included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct StepShape {
    pub phase: Phase,
    /// Sequences in the step.
    pub batch: u64,
    /// New tokens per sequence: the prompt in a prefill step, 1 in a decode step.
    pub new_tokens: u64,
    /// Keys per sequence that attention reads (cache + new tokens).
    pub context: u64,
}

/// One op of a step, with how many times the step runs it.
#[derive(Clone, Debug, Serialize)]
pub struct StepOp {
    /// The layer role (`attn_norm`, `qkv_proj`, …, `rope`, `residual`, `lm_head`).
    pub role: String,
    /// The lowering pattern, or `glue` for the kernels around the cascades.
    pub pattern: &'static str,
    /// The op spec, as `cascade estimate --op` takes it.
    pub spec: String,
    /// Times per step: the layer count for a layer's ops, 1 for per-step ops.
    pub times: u64,
    /// Seconds of one run of the op.
    pub seconds: f64,
    pub bound: Bound,
    /// Modelled HBM bytes of one run.
    pub hbm_bytes: f64,
    /// Energy of one run (the contract's: HBM accesses only on the GPU presets), joules.
    pub energy_j: f64,
    /// Where it runs: `xpu` (the GPU), `pim` (a PIM system's units, [`super::duplex`]) or
    /// `xpu+pim` (split between them, running at once).
    pub unit: &'static str,
    /// Arithmetic of one run (FLOPs) and the fewest bytes it must move: its operational
    /// intensity is their ratio (0 for collectives).
    #[serde(skip)]
    pub flops: f64,
    #[serde(skip)]
    pub min_bytes: f64,
    /// Seconds of each of its kernels, in launch order.
    #[serde(skip)]
    pub kernels: Vec<f64>,
}

/// Time, energy and HBM bytes of part of a step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Parts {
    pub seconds: f64,
    pub energy_j: f64,
    pub hbm_bytes: f64,
}

impl Parts {
    pub fn plus(self, o: Parts) -> Parts {
        Parts {
            seconds: self.seconds + o.seconds,
            energy_j: self.energy_j + o.energy_j,
            hbm_bytes: self.hbm_bytes + o.hbm_bytes,
        }
    }

    /// `self + f·(o − self)`.
    pub fn lerp(self, o: Parts, f: f64) -> Parts {
        let l = |a: f64, b: f64| a + f * (b - a);
        Parts {
            seconds: l(self.seconds, o.seconds),
            energy_j: l(self.energy_j, o.energy_j),
            hbm_bytes: l(self.hbm_bytes, o.hbm_bytes),
        }
    }

    /// `self − o`, each field at least 0 (the work of a causal attention's last rows).
    pub fn minus(self, o: Parts) -> Parts {
        Parts {
            seconds: (self.seconds - o.seconds).max(0.0),
            energy_j: (self.energy_j - o.energy_j).max(0.0),
            hbm_bytes: (self.hbm_bytes - o.hbm_bytes).max(0.0),
        }
    }
}

/// One step: its ops and their totals.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub shape: StepShape,
    /// The step's time: the GPU's ops back to back, or later where an eager step's host issues
    /// kernels more slowly than the GPU runs them.
    pub seconds: f64,
    /// The ops' seconds summed (one device's ops, collectives included).
    pub gpu_s: f64,
    /// The collectives' share of `gpu_s`.
    pub comm_s: f64,
    /// Bytes brought to the devices over the host link, and read from the SSD, for offloaded
    /// weights and KV cache ([`super::tiers`]).
    pub host_link_bytes: f64,
    pub ssd_bytes: f64,
    /// Of `seconds`, the time spent waiting for offloaded weights or KV cache.
    pub offload_wait_s: f64,
    pub hbm_bytes: f64,
    pub energy_j: f64,
    /// On a device with PIM units ([`super::duplex`]): each unit's (`xpu`, `pim`) busy
    /// seconds on one device, and energy and bytes on every device. Empty otherwise.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_unit: BTreeMap<&'static str, Parts>,
    /// Where the per-layer ops are in `ops` (start, end).
    #[serde(skip)]
    pub layer_ops: (usize, usize),
    pub ops: Vec<StepOp>,
}

impl Step {
    /// The bound of the ops that take most of the step together, or `link` when the step
    /// waits for offloaded weights or KV cache more than half of its time.
    pub fn bound(&self) -> Bound {
        if self.offload_wait_s > 0.5 * self.seconds {
            return Bound::Link;
        }
        let mut by: BTreeMap<&'static str, (f64, Bound)> = BTreeMap::new();
        for o in &self.ops {
            let e = by.entry(o.bound.name()).or_insert((0.0, o.bound));
            e.0 += o.seconds * o.times as f64;
        }
        by.values()
            .fold(
                (0.0, Bound::Latency),
                |a, &(s, b)| if s > a.0 { (s, b) } else { a },
            )
            .1
    }
}

/// A lowering's identity: the cascade, its extents, the phase and the routing.
type LoweringKey = (String, Vec<(String, u64)>, Phase, Option<Vec<u64>>);

/// Builds steps on one GPU or a group of them, caching what repeats between steps: checked
/// cascades, lowerings (by cascade and extents) and estimates (by spec).
pub struct GpuStepper<'a> {
    /// What one device of the slowest stage runs ([`Parallel::shard`]).
    workload: Workload,
    /// The model as written.
    full: &'a Workload,
    arch: &'a Architecture,
    gpu: &'a GpuSpec,
    par: Parallel,
    link: Option<Link>,
    /// Where the weights and the KV cache live, with one layer's weight bytes, the tables'
    /// (embedding, LM head) and one token's KV bytes per layer, per device.
    tiers: Option<(Tiers, f64, f64, f64)>,
    /// The GPU's parameters for ops inside a step: eager (prefill) and CUDA-graph (decode).
    hw_eager: GpuParams,
    hw_graph: GpuParams,
    dtype: Dtype,
    cascades: HashMap<String, Cascade>,
    lowered: HashMap<LoweringKey, Vec<LoweredOp>>,
    estimates: HashMap<(String, bool), (GpuEstimate, f64)>,
}

impl<'a> GpuStepper<'a> {
    /// A stepper for an LLM workload on one GPU.
    pub fn new(workload: &'a Workload, arch: &'a Architecture) -> Result<Self, String> {
        GpuStepper::with_parallel(workload, arch, Parallel::ONE, None)
    }

    /// A stepper for an LLM workload spread over `par.devices` GPUs joined by `link`
    /// (needed when more than one device communicates).
    pub fn with_parallel(
        workload: &'a Workload,
        arch: &'a Architecture,
        par: Parallel,
        link: Option<Link>,
    ) -> Result<Self, String> {
        let gpu = arch.gpu.as_ref().ok_or_else(|| {
            format!(
                "architecture `{}` has no [gpu] section: the GPU stepper runs GPU architectures (h100, h200); `cascade infer` maps a spatial accelerator's steps instead (spatial::SpatialStepper)",
                arch.name
            )
        })?;
        if workload.kind() != WorkloadKind::Llm {
            return Err(format!(
                "workload `{}` lists layers; `cascade infer` runs a transformer ([model] and [run])",
                workload.name
            ));
        }
        par.check(workload)?;
        if par.devices > 1 && link.is_none() {
            return Err(format!(
                "--devices {}: no link joins the devices: architecture `{}` names no `interconnect`; give --link (presets: {})",
                par.devices,
                arch.name,
                cascade_arch::link::names()
            ));
        }
        let dtype = match workload.run.precision {
            Precision::Bf16 => Dtype::Bf16,
            Precision::Fp16 => Dtype::Fp16,
            Precision::Fp8 => Dtype::Fp8,
            Precision::Fp32 => Dtype::Fp32,
        };
        let hw = crate::gpu::search::params(gpu);
        Ok(GpuStepper {
            workload: par.shard(workload),
            full: workload,
            arch,
            gpu,
            par,
            link,
            tiers: None,
            hw_eager: hw.in_step(false),
            hw_graph: hw.in_step(true),
            dtype,
            cascades: HashMap::new(),
            lowered: HashMap::new(),
            estimates: HashMap::new(),
        })
    }

    fn cascade(&mut self, name: &str) -> Result<Cascade, String> {
        super::builtin_cascade(&mut self.cascades, name)
    }

    fn lower_instance(&mut self, inst: &Instance, phase: Phase) -> Result<Vec<LoweredOp>, String> {
        let key = (
            inst.cascade.clone(),
            inst.extents.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            phase,
            inst.routing.as_ref().map(|r| r.tokens_per_expert.clone()),
        );
        if let Some(ops) = self.lowered.get(&key) {
            return Ok(ops.clone());
        }
        let c = self.cascade(&inst.cascade)?;
        let sh = bind(&c, &inst.extents).map_err(|e| format!("{}: {e}", inst.role))?;
        let opts = LowerOptions {
            dtype: self.dtype,
            decode: phase == Phase::Decode,
            routing: inst.routing.as_ref(),
            causal: phase == Phase::Prefill,
        };
        let ops = lower(&c, &sh, &opts)
            .into_ops()
            .map_err(|e| format!("{}: not lowered: {e}", inst.role))?;
        self.lowered.insert(key, ops.clone());
        Ok(ops)
    }

    /// The estimate of one op and its energy (joules), once per spec and launch mode. Decode
    /// steps run as CUDA graphs (as vLLM and `torch.compile`'s reduce-overhead mode run them),
    /// prefill steps eagerly.
    fn estimate(&mut self, l: &LoweredOp, graph: bool) -> Result<(GpuEstimate, f64), String> {
        let key = (l.spec.clone(), graph);
        if let Some(e) = self.estimates.get(&key) {
            return Ok(e.clone());
        }
        let hw = if graph {
            &self.hw_graph
        } else {
            &self.hw_eager
        };
        let est = crate::gpu::search::try_estimate_with(&l.op, hw)
            .map_err(|e| format!("GPU model: `{}`: {e}", l.spec))?;
        let rep = contract::report(&l.spec, self.arch, self.gpu, &[(l.clone(), est.clone())]);
        let v = (est, rep.energy_pj * 1e-12);
        self.estimates.insert(key, v.clone());
        Ok(v)
    }

    fn push(
        &mut self,
        ops: &mut Vec<StepOp>,
        role: &str,
        l: &LoweredOp,
        times: u64,
        graph: bool,
    ) -> Result<(), String> {
        let (est, energy_j) = self.estimate(l, graph)?;
        ops.push(StepOp {
            role: role.to_string(),
            pattern: l.pattern,
            spec: est.op.clone(),
            times,
            seconds: est.seconds,
            bound: est.bound,
            hbm_bytes: est.hbm_bytes,
            energy_j,
            unit: "xpu",
            flops: est.flops,
            min_bytes: est.min_bytes,
            kernels: est.kernels.iter().map(|k| k.seconds).collect(),
        });
        Ok(())
    }

    /// A collective of `bytes` over `devices` devices, as one op of the step (one NCCL kernel).
    fn push_comm(
        &self,
        ops: &mut Vec<StepOp>,
        role: &str,
        c: Collective,
        bytes: u64,
        devices: u64,
        times: u64,
    ) {
        let Some(link) = &self.link else { return };
        if devices <= 1 {
            return;
        }
        let cost = collective::cost(c, bytes as f64, devices, link, Algorithm::Auto);
        ops.push(StepOp {
            role: role.to_string(),
            pattern: "collective",
            spec: format!(
                "{} bytes={bytes} devices={devices} link={} algorithm={}",
                c.name(),
                link.name,
                match cost.algorithm {
                    Algorithm::Tree => "tree",
                    _ => "ring",
                }
            ),
            times,
            seconds: cost.seconds,
            bound: Bound::Link,
            hbm_bytes: 0.0,
            energy_j: 0.0,
            unit: "xpu",
            flops: 0.0,
            min_bytes: 0.0,
            kernels: vec![cost.seconds],
        });
    }

    /// One layer of `step` on its own (the ops the step runs once per layer): the GPU's time
    /// in a decode step (a CUDA graph), the eager pipeline of one layer in a prefill step.
    pub fn layer_seconds(&self, step: &Step) -> f64 {
        let layers = self.workload.repeats();
        let ops: Vec<StepOp> = step
            .ops
            .iter()
            .filter(|o| o.times == layers)
            .map(|o| StepOp {
                times: 1,
                ..o.clone()
            })
            .collect();
        self.ops_seconds(&ops, 1, step.shape.phase)
    }

    /// The ops of one role in one layer of `step` (e.g. `moe`) on their own, timed as the step
    /// times them (a CUDA graph in decode, the eager pipeline in prefill).
    pub fn role_seconds(&self, step: &Step, role: &str) -> f64 {
        let ops: Vec<StepOp> = step
            .ops
            .iter()
            .filter(|o| o.role == role)
            .map(|o| StepOp {
                times: 1,
                ..o.clone()
            })
            .collect();
        self.ops_seconds(&ops, 1, step.shape.phase)
    }

    /// The time of `ops` (per-layer ops run `layers` times) on one device: back to back in a
    /// CUDA graph, the eager pipeline otherwise.
    pub(crate) fn ops_seconds(&self, ops: &[StepOp], layers: u64, phase: Phase) -> f64 {
        let dispatch = self.gpu.eager_dispatch.map_or(0.0, |d| d.seconds());
        if phase == Phase::Decode || dispatch == 0.0 {
            ops.iter().map(|o| o.seconds * o.times as f64).sum()
        } else {
            eager_pipeline(ops, layers, dispatch)
        }
    }

    /// Places the weights and the KV cache as `t` says ([`super::tiers`]): steps then wait for
    /// what a layer needs from the host or the SSD when it takes longer than the layer before.
    pub fn set_tiers(&mut self, t: Tiers) -> Result<(), String> {
        t.check()?;
        if t.offloads() && self.par.pp > 1 {
            return Err("offloading with pipeline stages (--pp) is not modelled".into());
        }
        let fp = super::Footprint::of(
            self.full,
            &super::StaticRun {
                batch: 1,
                prompt: 1,
                generate: 1,
            },
            self.arch,
            &self.par,
        );
        let m = &self.workload.model;
        let kv_token = 2.0 * (m.kv_heads * m.head_dim) as f64 * self.dtype.bytes();
        self.tiers = Some((t, fp.layer_weights, fp.table_weights, kv_token));
        Ok(())
    }

    /// The parallelism the stepper runs.
    pub fn parallel(&self) -> Parallel {
        self.par
    }

    /// What one device runs ([`Parallel::shard`]).
    pub(crate) fn shard(&self) -> &Workload {
        &self.workload
    }

    /// Prices every op at its roofline from now on, as Duplex's simulator does (and most
    /// analytical LLM simulators): `max(FLOPs / peak, bytes / pin bandwidth)` at the spec's
    /// dense tensor peak and HBM pin rate, no kernel launch or start, no latency. Not a
    /// prediction of a GPU: it is the assumption set a cross-check against such a simulator
    /// needs (sim/commands/duplex.rs).
    pub fn set_roofline(&mut self) {
        for hw in [&mut self.hw_eager, &mut self.hw_graph] {
            hw.roofline = true;
        }
        self.estimates.clear();
    }

    /// The layer's instances one device runs in `shape` (the MoE's under expert parallelism
    /// its own experts), at the micro-batch a step runs.
    pub(crate) fn layer_instances(&self, shape: StepShape) -> Result<Vec<Instance>, String> {
        let par = self.par;
        let dp = par.dp();
        let mb = shape.batch.div_ceil(dp).div_ceil(self.micro(shape));
        let pt = Point {
            phase: shape.phase,
            batch: mb,
            seq_len: match shape.phase {
                Phase::Prefill => shape.new_tokens,
                Phase::Decode => shape.context,
            },
        };
        let tokens = mb.saturating_mul(shape.new_tokens);
        let mut v = self.workload.layer(&pt);
        if par.ep > 1 {
            for inst in v.iter_mut().filter(|i| i.role == "moe") {
                self.expert_parallel(inst, tokens.saturating_mul(dp))?;
            }
        }
        Ok(v)
    }

    /// The GPU ops of one instance in a step of `phase`, each run `times` a step.
    pub(crate) fn instance_ops(
        &mut self,
        inst: &Instance,
        phase: Phase,
        times: u64,
    ) -> Result<Vec<StepOp>, String> {
        let mut ops = Vec::new();
        for l in self.lower_instance(inst, phase)? {
            self.push(&mut ops, &inst.role, &l, times, phase == Phase::Decode)?;
        }
        Ok(ops)
    }

    /// The ops of one step and their totals. `shape.batch` counts every sequence of the step
    /// (all replicas); the ops listed are one device's, of the slowest stage, for one
    /// micro-batch.
    pub fn step(&mut self, shape: StepShape) -> Result<Step, String> {
        let par = self.par;
        let (tp, pp, dp) = (par.tp, par.pp, par.dp());
        let layers = self.workload.repeats();
        // Sequences per replica, then per micro-batch (GPipe: as many micro-batches as stages,
        // when there are sequences enough).
        let micro = self.micro(shape);
        let mb = shape.batch.div_ceil(dp).div_ceil(micro);
        let local = StepShape { batch: mb, ..shape };
        let graph = shape.phase == Phase::Decode;
        let d = self.workload.model.d_model;
        let b = self.dtype.bytes() as u64;
        let tokens = mb.saturating_mul(shape.new_tokens);
        let act = tokens.saturating_mul(d).saturating_mul(b);
        let mut ops = Vec::new();
        let w = self.workload.clone();
        for l in glue(&w, local, self.dtype, Scope::StepStart)? {
            self.push(&mut ops, l.0, &l.1, 1, graph)?;
        }
        // The vocabulary-parallel embedding's partial rows.
        self.push_comm(&mut ops, "tp_comm", Collective::AllReduce, act, tp, 1);
        let layer_start = ops.len();
        for inst in self.layer_instances(shape)? {
            for l in self.lower_instance(&inst, shape.phase)? {
                self.push(&mut ops, &inst.role, &l, layers, graph)?;
            }
            if inst.role == "qkv_proj" {
                for l in glue(&w, local, self.dtype, Scope::AfterQkv)? {
                    self.push(&mut ops, l.0, &l.1, layers, graph)?;
                }
            }
            if inst.role == "o_proj" {
                self.push_comm(&mut ops, "tp_comm", Collective::AllReduce, act, tp, layers);
            }
            if inst.role == "ffn" || (inst.role == "moe" && par.ep == 1) {
                self.push_comm(&mut ops, "tp_comm", Collective::AllReduce, act, tp, layers);
            }
            if inst.role == "moe" && par.ep > 1 {
                if dp == 1 {
                    // Every device saw every token: the experts' partial outputs summed.
                    self.push_comm(
                        &mut ops,
                        "ep_comm",
                        Collective::AllReduce,
                        act,
                        par.ep,
                        layers,
                    );
                } else {
                    // Dispatch and combine: each device sends its share of the tokens' k copies.
                    let k = self.full.model.moe.as_ref().map_or(1, |m| m.top_k);
                    let share = act.div_ceil(tp).saturating_mul(k);
                    for _ in 0..2 {
                        self.push_comm(
                            &mut ops,
                            "ep_comm",
                            Collective::AllToAll,
                            share,
                            par.ep,
                            layers,
                        );
                    }
                    self.push_comm(&mut ops, "ep_comm", Collective::AllGather, act, tp, layers);
                }
            }
            if inst.role == "o_proj" || inst.role == "ffn" || inst.role == "moe" {
                for l in glue(&w, local, self.dtype, Scope::Residual)? {
                    self.push(&mut ops, l.0, &l.1, layers, graph)?;
                }
            }
        }
        let first_end = ops.len();
        for l in glue(&w, local, self.dtype, Scope::StepEnd)? {
            self.push(&mut ops, l.0, &l.1, 1, graph)?;
        }
        if let Some(vocab) = w.model.vocab {
            // The vocabulary-parallel LM head's logits gathered.
            let logits = mb
                .saturating_mul(vocab)
                .saturating_mul(tp)
                .saturating_mul(b);
            self.push_comm(&mut ops, "tp_comm", Collective::AllGather, logits, tp, 1);
        }
        if pp > 1 {
            self.push_comm(&mut ops, "pp_comm", Collective::SendRecv, act, 2, 1);
        }
        let sum = |f: fn(&StepOp) -> f64| ops.iter().map(|o| f(o) * o.times as f64).sum::<f64>();
        let gpu_s = sum(|o| o.seconds);
        let comm_s: f64 = ops
            .iter()
            .filter(|o| o.pattern == "collective")
            .map(|o| o.seconds * o.times as f64)
            .sum();
        let seconds = self.stage_seconds(&ops, (layer_start, first_end), shape);
        // Offloaded weights and KV cache: each layer waits for its share from the host or the
        // SSD when that takes longer than the layer before it (FlexGen's overlap).
        let (mut seconds, mut host_link_bytes, mut ssd_bytes) = (seconds, 0.0, 0.0);
        let before = seconds;
        if let Some((t, layer_w, tables_w, kv_token)) = self.tiers.clone() {
            if t.offloads() {
                let host_bw = t.host_link.bandwidth.bytes_per_s();
                let lat = t.host_link.latency.seconds();
                let w = if t.weights == Tier::Device {
                    0.0
                } else {
                    layer_w
                };
                let kv = if t.kv == Tier::Device {
                    0.0
                } else {
                    (mb * shape.context) as f64 * kv_token
                };
                let xfer = |w: f64, kv: f64| -> f64 {
                    let link = (w + kv) / host_bw;
                    let ssd = if t.weights == Tier::Ssd {
                        w / t.path(Tier::Ssd).0
                    } else {
                        0.0
                    };
                    if w + kv > 0.0 {
                        link.max(ssd) + lat
                    } else {
                        0.0
                    }
                };
                let per_layer = ops[layer_start..first_end]
                    .iter()
                    .map(|o| StepOp {
                        times: 1,
                        ..o.clone()
                    })
                    .collect::<Vec<_>>();
                let layer_s = self.ops_seconds(&per_layer, 1, shape.phase);
                let tables = if t.weights == Tier::Device {
                    0.0
                } else {
                    tables_w
                };
                seconds += layers as f64 * (xfer(w, kv) - layer_s).max(0.0) + xfer(tables, 0.0);
                host_link_bytes = layers as f64 * (w + kv) + tables;
                if t.weights == Tier::Ssd {
                    ssd_bytes = layers as f64 * w + tables;
                }
            }
        }
        let every =
            |f: fn(&StepOp) -> f64| self.every_device(&ops, (layer_start, first_end), shape, f);
        let stage = self.micro(shape) as f64 * par.stage_devices() as f64;
        let all = stage * pp as f64;
        Ok(Step {
            shape,
            seconds,
            gpu_s,
            comm_s,
            host_link_bytes: host_link_bytes * all,
            ssd_bytes: ssd_bytes * all,
            offload_wait_s: seconds - before,
            hbm_bytes: every(|o| o.hbm_bytes),
            energy_j: every(|o| o.energy_j),
            by_unit: BTreeMap::new(),
            layer_ops: (layer_start, first_end),
            ops,
        })
    }

    /// Micro-batches of a step (GPipe: as many as stages, when there are sequences enough).
    fn micro(&self, shape: StepShape) -> u64 {
        let replica = shape.batch.div_ceil(self.par.dp());
        if self.par.pp > 1 {
            self.par.pp.min(replica)
        } else {
            1
        }
    }

    /// The time of a step's `ops` (one device of the slowest stage; the per-layer ops at
    /// `layer_ops`): back to back (or the eager pipeline) with one stage, GPipe's schedule over
    /// the micro-batches with several (the first stage has the embedding, the last the LM head).
    pub(crate) fn stage_seconds(
        &self,
        ops: &[StepOp],
        layer_ops: (usize, usize),
        shape: StepShape,
    ) -> f64 {
        let (pp, layers) = (self.par.pp, self.workload.repeats());
        if pp == 1 {
            return self.ops_seconds(ops, layers, shape.phase);
        }
        let (layer_start, first_end) = layer_ops;
        let micro = self.micro(shape);
        let send_s = ops
            .iter()
            .filter(|o| o.role == "pp_comm")
            .map(|o| o.seconds)
            .sum::<f64>();
        let per_layer = ops[layer_start..first_end].to_vec();
        let start = ops[..layer_start].to_vec();
        let end: Vec<StepOp> = ops[first_end..]
            .iter()
            .filter(|o| o.role != "pp_comm")
            .cloned()
            .collect();
        let with = |extra: &[StepOp], before: bool| -> Vec<StepOp> {
            let mut v = Vec::new();
            if before {
                v.extend_from_slice(extra);
            }
            v.extend(per_layer.iter().cloned());
            if !before {
                v.extend_from_slice(extra);
            }
            v
        };
        let first = self.ops_seconds(&with(&start, true), layers, shape.phase);
        let mid = self.ops_seconds(&per_layer, layers, shape.phase);
        let last = self.ops_seconds(&with(&end, false), layers, shape.phase);
        let slowest = first.max(mid).max(last);
        first
            + mid * (pp - 2) as f64
            + last
            + slowest * (micro - 1) as f64
            + send_s * (pp - 1) as f64
    }

    /// `f` summed over every device's work in a step: the stage's ops on each of its devices,
    /// for each micro-batch; the layers' ops run on every stage, the per-step ops (embedding,
    /// LM head) once.
    pub(crate) fn every_device(
        &self,
        ops: &[StepOp],
        layer_ops: (usize, usize),
        shape: StepShape,
        f: fn(&StepOp) -> f64,
    ) -> f64 {
        ops.iter()
            .enumerate()
            .map(|(i, o)| {
                let in_layer = (layer_ops.0..layer_ops.1).contains(&i);
                f(o) * o.times as f64 * self.device_runs(in_layer, shape)
            })
            .sum()
    }

    /// How many times every device of the system runs one run of an op of a step: the stage's
    /// devices for each micro-batch, and for a per-layer op on every stage.
    pub(crate) fn device_runs(&self, in_layer: bool, shape: StepShape) -> f64 {
        let stage = (self.micro(shape) * self.par.stage_devices()) as f64;
        if in_layer {
            stage * self.par.pp as f64
        } else {
            stage
        }
    }

    /// A step split three ways for serving ([`crate::infer::serve`]): everything but attention
    /// and the LM head (`dense`), attention, and the final norm with the LM head (`head`), each
    /// timed as the step times its ops (a CUDA graph in decode, the eager pipeline in prefill)
    /// and with the energy and HBM bytes of every device. Pipeline parallelism is not split.
    pub fn parts(&mut self, shape: StepShape) -> Result<[Parts; 3], String> {
        if self.par.pp > 1 {
            return Err(
                "pipeline parallelism is not modelled for serving (--pp with a trace or --rate)"
                    .into(),
            );
        }
        let st = self.step(shape)?;
        Ok(self.split_parts(&st.ops, shape.phase))
    }

    /// A step's ops split three ways ([`GpuStepper::parts`]): each part timed as the step
    /// times its ops, with every device's energy and bytes.
    pub(crate) fn split_parts(&self, ops: &[StepOp], phase: Phase) -> [Parts; 3] {
        let layers = self.workload.repeats();
        let all = self.par.stage_devices() as f64;
        let which = |o: &StepOp| match o.role.as_str() {
            "attention" => 1,
            "final_norm" | "lm_head" => 2,
            _ => 0,
        };
        let mut out = [Parts::default(); 3];
        for (i, part) in out.iter_mut().enumerate() {
            let ops: Vec<StepOp> = ops.iter().filter(|o| which(o) == i).cloned().collect();
            *part = Parts {
                seconds: self.ops_seconds(&ops, layers, phase),
                energy_j: ops.iter().map(|o| o.energy_j * o.times as f64).sum::<f64>() * all,
                hbm_bytes: ops
                    .iter()
                    .map(|o| o.hbm_bytes * o.times as f64)
                    .sum::<f64>()
                    * all,
            };
        }
        out
    }

    /// Attention alone, every layer of one device: `batch` sequences of `new` queries (causal
    /// over `new` keys in prefill; one query against `context` keys in decode).
    pub fn attention_parts(&mut self, shape: StepShape) -> Result<Parts, String> {
        let pt = Point {
            phase: shape.phase,
            batch: shape.batch,
            seq_len: match shape.phase {
                Phase::Prefill => shape.new_tokens,
                Phase::Decode => shape.context,
            },
        };
        let graph = shape.phase == Phase::Decode;
        let layers = self.workload.repeats();
        let mut ops = Vec::new();
        for inst in self.workload.layer(&pt) {
            if inst.role == "attention" {
                for l in self.lower_instance(&inst, shape.phase)? {
                    self.push(&mut ops, &inst.role, &l, layers, graph)?;
                }
            }
        }
        let all = self.par.stage_devices() as f64;
        Ok(Parts {
            seconds: ops.iter().map(|o| o.seconds * o.times as f64).sum(),
            energy_j: ops.iter().map(|o| o.energy_j * o.times as f64).sum::<f64>() * all,
            hbm_bytes: ops
                .iter()
                .map(|o| o.hbm_bytes * o.times as f64)
                .sum::<f64>()
                * all,
        })
    }

    /// The MoE instance of one device under expert parallelism: its `experts / ep` experts
    /// (those of the busiest device under the routing) over every token of the stage.
    fn expert_parallel(&self, inst: &mut Instance, stage_tokens: u64) -> Result<(), String> {
        let moe = self
            .full
            .model
            .moe
            .as_ref()
            .ok_or("expert parallelism without an MoE layer")?;
        let ep = self.par.ep;
        let per = moe.experts / ep;
        let all = moe.routing(stage_tokens);
        let busiest = all
            .tokens_per_expert
            .chunks(per as usize)
            .max_by_key(|c| c.iter().sum::<u64>())
            .map(|c| c.to_vec())
            .unwrap_or_default();
        inst.extents.insert("X".into(), per);
        inst.extents.insert("T".into(), stage_tokens);
        inst.routing = Some(Routing {
            expert_rank: "X".into(),
            tokens: stage_tokens,
            tokens_per_expert: busiest,
        });
        Ok(())
    }
}

/// An eager step's time when the host issues a kernel every `dispatch` seconds: kernel `k`
/// starts when the host has issued it and the GPU has finished kernel `k − 1`, so
/// `end_k = max(k·dispatch, end_{k−1}) + g_k`. The per-layer ops run `layers` times in order,
/// between the per-step ops before and after them. When the host is ahead, the GPU runs back to
/// back (the sum of the ops); when its kernels are shorter than `dispatch`, the host sets the
/// pace. Evidence: a 512-token layer measures 585 µs where its kernels sum to 415 µs
/// (`reports/infer/h200/llama_kernels.csv`) and its host needs about 550 µs.
fn eager_pipeline(ops: &[StepOp], layers: u64, dispatch: f64) -> f64 {
    let (mut host, mut end) = (0.0f64, 0.0f64);
    let mut run = |o: &StepOp| {
        for &g in &o.kernels {
            host += dispatch;
            end = end.max(host) + g;
        }
    };
    let first_layer_op = ops.iter().position(|o| o.times == layers && o.times > 1);
    let last_layer_op = ops.iter().rposition(|o| o.times == layers && o.times > 1);
    match (first_layer_op, last_layer_op) {
        (Some(a), Some(b)) => {
            ops[..a].iter().for_each(&mut run);
            for _ in 0..layers {
                ops[a..=b].iter().for_each(&mut run);
            }
            ops[b + 1..].iter().for_each(&mut run);
        }
        _ => ops.iter().for_each(&mut run),
    }
    end
}

/// Where in a step glue kernels run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Once, before the first layer: the embedding gather.
    StepStart,
    /// In each layer, after the QKV projection: rotary embeddings and the KV-cache writes.
    AfterQkv,
    /// In each layer, after the output projection and after the FFN: the residual add.
    Residual,
    /// Once, after the last layer: the final norm and the LM head on each sequence's last token.
    StepEnd,
}

/// The kernels eager PyTorch launches around a Llama-style layer's cascades (Hugging Face
/// `modeling_llama`, with SDPA taking the KV heads as they are, `enable_gqa`):
/// - rotary embeddings `x·cos + rotate_half(x)·sin` on Q and on K: a multiply, a negation, a
///   concatenation, a multiply (each one read and one write of the tensor, the negation of
///   half of it: `copy`) and an add;
/// - the new keys and values written into the KV cache (two copies);
/// - attention's output made contiguous before the output projection (a copy);
/// - the residual adds;
/// - the embedding gather (one row per token: a copy), and, on the last token of each
///   sequence, the final norm and the LM head (`model.vocab`; none without it).
fn glue(
    w: &Workload,
    s: StepShape,
    dtype: Dtype,
    scope: Scope,
) -> Result<Vec<(&'static str, LoweredOp)>, String> {
    let m = &w.model;
    let b = dtype.bytes() as u64;
    let tokens = s.batch.saturating_mul(s.new_tokens);
    let dt = dtype.name();
    let mk = |spec: String| -> Result<LoweredOp, String> {
        let op = GpuOp::parse(&spec).map_err(|e| format!("`{spec}`: {e}"))?;
        Ok(LoweredOp {
            pattern: "glue",
            einsums: Vec::new(),
            spec,
            op,
        })
    };
    let mut v = Vec::new();
    match scope {
        Scope::StepStart => {
            v.push((
                "embedding",
                mk(format!("copy bytes={}", tokens * m.d_model * b))?,
            ));
        }
        Scope::AfterQkv => {
            // Rotary embeddings on Q and on K, each five kernels (`rope`), then K and V
            // copied out of their transposed views into the cache (`strided_copy`).
            for heads in [m.heads, m.kv_heads] {
                let rows = tokens.saturating_mul(heads);
                v.push((
                    "rope",
                    mk(format!("rope rows={rows} cols={} dtype={dt}", m.head_dim))?,
                ));
            }
            for _ in 0..2 {
                v.push((
                    "kv_write",
                    mk(format!(
                        "strided_copy rows={} cols={} dtype={dt}",
                        tokens.saturating_mul(m.kv_heads),
                        m.head_dim
                    ))?,
                ));
            }
        }
        Scope::Residual => {
            v.push((
                "residual",
                mk(format!("add elems={} dtype={dt}", tokens * m.d_model))?,
            ));
        }
        Scope::StepEnd => {
            if let Some(vocab) = m.vocab {
                let norm = match m.norm {
                    crate::workload::Norm::Rmsnorm => "rmsnorm",
                    crate::workload::Norm::Layernorm => "layernorm",
                };
                v.push((
                    "final_norm",
                    mk(format!(
                        "{norm} rows={} cols={} dtype={dt}",
                        s.batch, m.d_model
                    ))?,
                ));
                v.push((
                    "lm_head",
                    mk(format!(
                        "gemm m={} n={vocab} k={} dtype={dt}",
                        s.batch, m.d_model
                    ))?,
                ));
            }
        }
    }
    Ok(v)
}
