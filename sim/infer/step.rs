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

use crate::gpu::contract;
use crate::gpu::lower::{lower, LowerOptions, LoweredOp};
use crate::gpu::{Bound, Dtype, GpuEstimate, GpuOp, GpuParams};
use crate::workload::{Instance, Phase, Point, Precision, Workload, WorkloadKind};
use cascade_arch::{Architecture, GpuSpec};
use cascade_einsum::{bind, check_source, library, Cascade};
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
    /// Seconds of each of its kernels, in launch order.
    #[serde(skip)]
    pub kernels: Vec<f64>,
}

/// One step: its ops and their totals.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub shape: StepShape,
    /// The step's time: the GPU's ops back to back, or later where an eager step's host issues
    /// kernels more slowly than the GPU runs them.
    pub seconds: f64,
    /// The ops' seconds summed (the GPU alone).
    pub gpu_s: f64,
    pub hbm_bytes: f64,
    pub energy_j: f64,
    pub ops: Vec<StepOp>,
}

impl Step {
    /// The bound of the ops that take most of the step together.
    pub fn bound(&self) -> Bound {
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

/// A lowering's identity: the cascade, its extents and the phase.
type LoweringKey = (String, Vec<(String, u64)>, Phase);

/// Builds steps on one GPU, caching what repeats between steps: checked cascades, lowerings
/// (by cascade and extents) and estimates (by spec).
pub struct GpuStepper<'a> {
    workload: &'a Workload,
    arch: &'a Architecture,
    gpu: &'a GpuSpec,
    /// The GPU's parameters for ops inside a step: eager (prefill) and CUDA-graph (decode).
    hw_eager: GpuParams,
    hw_graph: GpuParams,
    dtype: Dtype,
    cascades: HashMap<String, Cascade>,
    lowered: HashMap<LoweringKey, Vec<LoweredOp>>,
    estimates: HashMap<(String, bool), (GpuEstimate, f64)>,
}

impl<'a> GpuStepper<'a> {
    /// A stepper for an LLM workload on a GPU architecture.
    pub fn new(workload: &'a Workload, arch: &'a Architecture) -> Result<Self, String> {
        let gpu = arch.gpu.as_ref().ok_or_else(|| {
            format!(
                "architecture `{}` has no [gpu] section: `cascade infer` runs GPU architectures (h100, h200); spatial accelerators are not composed into model steps yet",
                arch.name
            )
        })?;
        if workload.kind() != WorkloadKind::Llm {
            return Err(format!(
                "workload `{}` lists layers; `cascade infer` runs a transformer ([model] and [run])",
                workload.name
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
            workload,
            arch,
            gpu,
            hw_eager: hw.in_step(false),
            hw_graph: hw.in_step(true),
            dtype,
            cascades: HashMap::new(),
            lowered: HashMap::new(),
            estimates: HashMap::new(),
        })
    }

    fn cascade(&mut self, name: &str) -> Result<Cascade, String> {
        if let Some(c) = self.cascades.get(name) {
            return Ok(c.clone());
        }
        let src = library::source(name).ok_or_else(|| format!("no built-in cascade `{name}`"))?;
        let c = check_source(name, src)
            .map_err(|e| format!("built-in cascade `{name}`: {e}"))?
            .cascade;
        self.cascades.insert(name.to_string(), c.clone());
        Ok(c)
    }

    fn lower_instance(&mut self, inst: &Instance, phase: Phase) -> Result<Vec<LoweredOp>, String> {
        let key = (
            inst.cascade.clone(),
            inst.extents.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            phase,
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
            kernels: est.kernels.iter().map(|k| k.seconds).collect(),
        });
        Ok(())
    }

    /// One layer of `step` on its own (the ops the step runs once per layer): the GPU's time
    /// in a decode step (a CUDA graph), the eager pipeline of one layer in a prefill step.
    pub fn layer_seconds(&self, step: &Step) -> f64 {
        let layers = self.workload.model.layers;
        let ops: Vec<StepOp> = step
            .ops
            .iter()
            .filter(|o| o.times == layers)
            .map(|o| StepOp {
                times: 1,
                ..o.clone()
            })
            .collect();
        let dispatch = self.gpu.eager_dispatch.map_or(0.0, |d| d.seconds());
        if step.shape.phase == Phase::Decode || dispatch == 0.0 {
            ops.iter().map(|o| o.seconds).sum()
        } else {
            eager_pipeline(&ops, 1, dispatch)
        }
    }

    /// The ops of one step and their totals.
    pub fn step(&mut self, shape: StepShape) -> Result<Step, String> {
        let w = self.workload;
        let layers = w.model.layers;
        let pt = Point {
            phase: shape.phase,
            batch: shape.batch,
            seq_len: match shape.phase {
                Phase::Prefill => shape.new_tokens,
                Phase::Decode => shape.context,
            },
        };
        let graph = shape.phase == Phase::Decode;
        let mut ops = Vec::new();
        for l in glue(w, shape, self.dtype, Scope::StepStart)? {
            self.push(&mut ops, l.0, &l.1, 1, graph)?;
        }
        for inst in w.layer(&pt) {
            for l in self.lower_instance(&inst, shape.phase)? {
                self.push(&mut ops, &inst.role, &l, layers, graph)?;
            }
            if inst.role == "qkv_proj" {
                for l in glue(w, shape, self.dtype, Scope::AfterQkv)? {
                    self.push(&mut ops, l.0, &l.1, layers, graph)?;
                }
            }
            if inst.role == "o_proj" || inst.role == "ffn" || inst.role == "moe" {
                for l in glue(w, shape, self.dtype, Scope::Residual)? {
                    self.push(&mut ops, l.0, &l.1, layers, graph)?;
                }
            }
        }
        for l in glue(w, shape, self.dtype, Scope::StepEnd)? {
            self.push(&mut ops, l.0, &l.1, 1, graph)?;
        }
        let sum = |f: fn(&StepOp) -> f64| ops.iter().map(|o| f(o) * o.times as f64).sum::<f64>();
        let gpu_s = sum(|o| o.seconds);
        let dispatch = self.gpu.eager_dispatch.map_or(0.0, |d| d.seconds());
        Ok(Step {
            shape,
            seconds: if graph || dispatch == 0.0 {
                gpu_s
            } else {
                eager_pipeline(&ops, layers, dispatch)
            },
            gpu_s,
            hbm_bytes: sum(|o| o.hbm_bytes),
            energy_j: sum(|o| o.energy_j),
            ops,
        })
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
