//! Whole-model inference (`cascade infer`): a model's prefill and decode steps composed from
//! the device model's ops, with the KV cache growing step by step, the memory the run holds
//! checked against the device, and the serving figures users ask for (time to first token,
//! time between tokens, tokens per second, energy per token).
//!
//! - [`step`]: the ops of one step on a GPU (each layer cascade lowered to the kernels eager
//!   PyTorch launches, plus the glue kernels around them), each estimated by the GPU model.
//! - [`Footprint`]: weights, KV cache and the largest live activations against the root
//!   level's capacity; a run that does not fit is refused naming what did not fit and where.
//! - [`run_static`]: one static batch — every prompt prefilled in one step, then one decode
//!   step per generated token (the first token comes from the prefill step).
//!
//! - [`parallel`] and [`collective`]: the model spread over devices and the collectives that
//!   costs, over a link.
//! - [`serve`]: requests arriving over time, scheduled as vLLM schedules them (continuous
//!   batching, admission by free KV blocks, preemption, optional chunked prefill).
//! - [`spatial`]: steps on a spatial accelerator, each cascade through the mapper.
//! - [`tiers`]: weights and KV cache on the device, the host or an SSD.

pub mod collective;
pub mod duplex;
pub mod parallel;
pub mod serve;
pub mod spatial;
pub mod step;
pub mod tiers;

use crate::workload::{Ffn, Phase, Workload};
use cascade_arch::{Architecture, Link};
pub use parallel::Parallel;
use serde::Serialize;
pub use serve::{parse_trace, poisson, serve, Request, ServeConfig, ServeReport};
use std::collections::BTreeMap;
pub use step::{GpuStepper, Parts, Step, StepOp, StepShape};
pub use tiers::{Tier, Tiers};

/// A built-in cascade, checked once and kept in `cache`.
fn builtin_cascade(
    cache: &mut std::collections::HashMap<String, cascade_einsum::Cascade>,
    name: &str,
) -> Result<cascade_einsum::Cascade, String> {
    if let Some(c) = cache.get(name) {
        return Ok(c.clone());
    }
    let src = cascade_einsum::library::source(name)
        .ok_or_else(|| format!("no built-in cascade `{name}`"))?;
    let c = cascade_einsum::check_source(name, src)
        .map_err(|e| format!("built-in cascade `{name}`: {e}"))?
        .cascade;
    cache.insert(name.to_string(), c.clone());
    Ok(c)
}

/// A static-batch run: `batch` sequences of `prompt` tokens each generate `generate` tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StaticRun {
    pub batch: u64,
    pub prompt: u64,
    pub generate: u64,
}

/// The memory a run holds on the device (bytes).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Footprint {
    /// Every layer's weights, the embedding table and the LM head.
    pub weights: f64,
    /// Keys and values of every layer for every token the cache holds at its fullest.
    pub kv_cache: f64,
    /// Tokens the KV cache holds at its fullest (all sequences).
    pub kv_tokens: u64,
    /// The largest live activations of a step (see [`Footprint::of`]).
    pub activations: f64,
    /// The device level that holds them and its capacity (`None`: the architecture gives none).
    pub level: String,
    pub capacity: Option<f64>,
    /// Layers on the device and one layer's weights; the embedding, LM head and final norm.
    pub layers: u64,
    pub layer_weights: f64,
    pub table_weights: f64,
    /// What the device holds of the weights and the KV cache under the placement
    /// ([`Footprint::place`]; all of them unless offloaded).
    pub device_weights: f64,
    pub device_kv: f64,
    /// Bytes on the host and on the SSD, and their capacities.
    pub host: f64,
    pub host_capacity: Option<f64>,
    pub ssd: f64,
    pub ssd_capacity: Option<f64>,
}

impl Footprint {
    /// The footprint of `run` of workload `w` at precision bytes `b` on one device of `arch`'s
    /// root level, the model spread as `par` says (one device: [`Parallel::ONE`]).
    ///
    /// Weights per layer: the QKV and output projections, the FFN (SwiGLU three matrices,
    /// GELU/ReLU two; MoE every expert's and the router, in every `model.moe.every`-th layer)
    /// and two norms' scales; plus the
    /// embedding table, the LM head (untied) and the final norm. KV cache: `2 × layers ×
    /// kv_heads × head_dim` elements per token, for `batch × (prompt + generate − 1)` tokens
    /// (the last generated token is never fed back). Activations: the largest prefill live set,
    /// the residual stream and its normed copy (`2·T·D`) plus the FFN's gate, up and SiLU
    /// outputs (`3·T·F`; for MoE the device's routed pairs, an even share under expert
    /// parallelism) or the projected Q, K, V and their rotated
    /// copies, whichever is larger, plus one row of logits per sequence. Spread over devices:
    /// heads, KV heads, FFN columns and vocabulary rows divided by `tp` (whole experts divided
    /// by `ep` instead), ⌈layers / pp⌉ layers (the embedding on the first stage and the LM head
    /// on the last: one of them per device when `pp > 1`), the sequences divided by the
    /// data-parallel replicas.
    pub fn of(w: &Workload, run: &StaticRun, arch: &Architecture, par: &Parallel) -> Footprint {
        let s = par.shard(w);
        let m = &s.model;
        let b = w.run.precision.bytes() as f64;
        let f = |x: u64| x as f64;
        let (d, hd) = (f(m.d_model), f(m.head_dim));
        let attn = d * f(m.heads + 2 * m.kv_heads) * hd + f(m.heads) * hd * d;
        let mats = match m.ffn {
            Ffn::Swiglu => 3.0,
            Ffn::Gelu | Ffn::Relu => 2.0,
        };
        let dense = mats * d * f(m.ffn_dim);
        // A layer's weights with its FFN: the dense one, or the MoE's experts and router.
        let layer = |ffn: f64| (attn + ffn + 2.0 * d) * b;
        let vocab = f(m.vocab.unwrap_or(0));
        let tables = if par.pp > 1 { 1.0 } else { 2.0 };
        let table_weights = (tables * vocab * d + d) * b;
        // `layer_weights` is the heaviest layer's (what a device keeps while streaming them).
        let (layer_weights, layers_weights) = match &m.moe {
            Some(moe) => {
                let experts = f(moe.experts / par.ep) * mats * d * f(moe.expert_ffn_dim(m.ffn_dim))
                    + d * f(moe.experts);
                let moe_layers = m.layers / moe.every.max(1);
                let dense_layers = m.layers - moe_layers;
                (
                    layer(experts).max(if dense_layers > 0 { layer(dense) } else { 0.0 }),
                    f(moe_layers) * layer(experts) + f(dense_layers) * layer(dense),
                )
            }
            None => (layer(dense), f(m.layers) * layer(dense)),
        };
        let weights = layers_weights + table_weights;
        let batch = run.batch.div_ceil(par.dp());
        let kv_tokens =
            batch.saturating_mul(run.prompt.saturating_add(run.generate.saturating_sub(1)));
        let kv_cache = 2.0 * f(m.layers) * f(m.kv_heads) * hd * b * f(kv_tokens);
        let t = f(batch) * f(run.prompt);
        // The FFN's live set: the dense FFN's (where the model has dense layers), or the
        // experts' over the (token, expert) pairs the device computes: its tokens' k each, or,
        // its experts spread over `ep` devices, an even share of every stage token's k.
        let dense_live = 3.0 * t * f(m.ffn_dim);
        let ffn_live = match &m.moe {
            None => dense_live,
            Some(moe) => {
                let pairs = if par.ep > 1 {
                    t * f(par.dp()) * f(moe.top_k) / f(par.ep)
                } else {
                    t * f(moe.top_k)
                };
                let experts = 3.0 * pairs * f(moe.expert_ffn_dim(m.ffn_dim));
                if moe.every > 1 {
                    experts.max(dense_live)
                } else {
                    experts
                }
            }
        };
        let qkv_live = 2.0 * t * f(m.heads + 2 * m.kv_heads) * hd;
        let activations = (2.0 * t * d + ffn_live.max(qkv_live) + f(batch) * vocab) * b;
        let root = arch.root();
        Footprint {
            weights,
            kv_cache,
            kv_tokens,
            activations,
            level: root.name.clone(),
            capacity: root.capacity.map(|c| c.bytes()),
            layers: m.layers,
            layer_weights,
            table_weights,
            device_weights: weights,
            device_kv: kv_cache,
            host: 0.0,
            host_capacity: None,
            ssd: 0.0,
            ssd_capacity: None,
        }
    }

    /// Places the weights and the KV cache as `t` says: what is offloaded leaves the device,
    /// which keeps two layers' worth of it (the layer in use and the one arriving) and, for
    /// offloaded weights, the LM head's and embedding's tables while they are used.
    pub fn place(&mut self, t: &Tiers) {
        let layers = self.layers.max(1) as f64;
        let mut put = |tier: Tier, bytes: f64| match tier {
            Tier::Device => {}
            Tier::Host => self.host += bytes,
            Tier::Ssd => self.ssd += bytes,
        };
        put(t.weights, self.weights);
        put(t.kv, self.kv_cache);
        if t.weights != Tier::Device {
            self.device_weights = 2.0 * self.layer_weights + self.table_weights;
        }
        if t.kv != Tier::Device {
            self.device_kv = 2.0 * self.kv_cache / layers;
        }
        self.host_capacity = t.host_capacity;
        self.ssd_capacity = t.ssd.as_ref().map(|s| s.capacity);
    }

    /// What the device holds.
    pub fn total(&self) -> f64 {
        self.device_weights + self.device_kv + self.activations
    }

    /// `Err` naming what does not fit, where, and by how much.
    pub fn check(&self, arch: &str, run: &StaticRun) -> Result<(), String> {
        let gb = |x: f64| format!("{:.2} GB", x / 1e9);
        for (tier, bytes, cap) in [
            ("the host (--host-memory)", self.host, self.host_capacity),
            ("the SSD (--ssd)", self.ssd, self.ssd_capacity),
        ] {
            if let Some(cap) = cap {
                if bytes > cap {
                    return Err(format!(
                        "does not fit: what is placed on {tier} needs {} and it holds {}",
                        gb(bytes),
                        gb(cap)
                    ));
                }
            }
        }
        let Some(cap) = self.capacity else {
            return Ok(());
        };
        if self.total() <= cap {
            return Ok(());
        }
        let what = if self.device_weights > cap {
            format!("the weights alone ({}) exceed it", gb(self.device_weights))
        } else {
            let per_seq = (run.prompt + run.generate.saturating_sub(1)).max(1);
            format!(
                "the KV cache of {} tokens ({} sequences × {per_seq} tokens) needs {} and {} is left after the weights ({}) and activations ({})",
                self.kv_tokens,
                self.kv_tokens / per_seq,
                gb(self.device_kv),
                gb((cap - self.device_weights - self.activations).max(0.0)),
                gb(self.device_weights),
                gb(self.activations)
            )
        };
        Err(format!(
            "does not fit: {} needs {} on `{}` of {arch}, which holds {}: {what}",
            "the run",
            gb(self.total()),
            self.level,
            gb(cap)
        ))
    }
}

/// Order statistics of the decode steps' times.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Latencies {
    pub mean_s: f64,
    pub median_s: f64,
    pub p99_s: f64,
    pub min_s: f64,
    pub max_s: f64,
}

impl Latencies {
    /// The mean and nearest-rank percentiles (`p99` is the value at rank ⌈0.99·n⌉). `None` when
    /// empty.
    pub fn of(times: &[f64]) -> Option<Latencies> {
        if times.is_empty() {
            return None;
        }
        let mut v = times.to_vec();
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Some(Latencies {
            mean_s: v.iter().sum::<f64>() / v.len() as f64,
            median_s: rank(0.5),
            p99_s: rank(0.99),
            min_s: v[0],
            max_s: v[v.len() - 1],
        })
    }
}

/// The result of a static-batch run.
#[derive(Clone, Debug, Serialize)]
pub struct InferReport {
    pub workload: String,
    pub arch: String,
    pub run: StaticRun,
    /// How the model is spread over devices, and the link between them.
    pub parallel: Parallel,
    pub link: Option<String>,
    /// The memory one device holds.
    pub footprint: Footprint,
    /// The prefill step, with its ops.
    pub prefill: Step,
    /// The last decode step, with its ops (`None` when one token is generated).
    pub last_decode: Option<Step>,
    /// Seconds of every decode step, in order (step `i` reads `prompt + i` keys).
    pub decode_s: Vec<f64>,
    /// Time to first token: the prefill step.
    pub ttft_s: f64,
    /// Time between tokens: the decode steps (`None` when one token is generated).
    pub tbt: Option<Latencies>,
    /// Prefill plus every decode step.
    pub total_s: f64,
    /// Generated tokens (all sequences) per second of the whole run.
    pub tokens_per_s: f64,
    /// Energy of the run per generated token (the contract's: HBM accesses on the GPU presets).
    pub energy_per_token_j: f64,
    /// On a device with PIM units: the run's energy by unit (`xpu`, `pim`), joules; empty
    /// otherwise.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub energy_by_unit_j: BTreeMap<String, f64>,
    /// What the energy counts: `HBM accesses only`, or `memory accesses and MACs` when the
    /// architecture prices its MACs (or has PIM units).
    pub energy_counts: &'static str,
    /// The PIM units beside the xPU (`None`: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pim: Option<String>,
    /// HBM bytes of the run.
    pub hbm_bytes: f64,
    /// Bytes over the host link and from the SSD (offloaded weights and KV cache).
    pub host_link_bytes: f64,
    pub ssd_bytes: f64,
    /// The placement (`None`: everything on the device).
    pub tiers: Option<Tiers>,
}

/// What a run's energy counts on `arch`: MACs too when it prices them (or has PIM units).
pub(crate) fn energy_counts(arch: &Architecture) -> &'static str {
    let macs = arch
        .compute
        .iter()
        .any(|u| u.op("mac").is_some_and(|c| c.energy.pj() > 0.0));
    if arch.pim.is_some() || macs {
        "memory accesses and MACs"
    } else {
        "HBM accesses only"
    }
}

/// The step builder of an architecture: the GPU model's ops, or the mapper's cascades.
enum Stepper<'a> {
    Gpu(Box<GpuStepper<'a>>),
    Spatial(Box<spatial::SpatialStepper<'a>>),
    Duplex(Box<duplex::DuplexStepper<'a>>),
}

impl Stepper<'_> {
    fn step(&mut self, shape: StepShape) -> Result<Step, String> {
        match self {
            Stepper::Gpu(s) => s.step(shape),
            Stepper::Spatial(s) => s.step(shape),
            Stepper::Duplex(s) => s.step(shape),
        }
    }
}

/// Runs `run` of `w` on one device of `arch` as one static batch. `on_step(done, total)` is
/// called after each step (progress display is the caller's).
pub fn run_static(
    w: &Workload,
    arch: &Architecture,
    run: StaticRun,
    on_step: &mut dyn FnMut(u64, u64),
) -> Result<InferReport, String> {
    run_static_on(w, arch, run, Parallel::ONE, None, None, on_step)
}

/// [`run_static`] with the model spread over devices as `par` says, joined by `link`.
pub fn run_static_on(
    w: &Workload,
    arch: &Architecture,
    run: StaticRun,
    par: Parallel,
    link: Option<Link>,
    tiers: Option<Tiers>,
    on_step: &mut dyn FnMut(u64, u64),
) -> Result<InferReport, String> {
    check_run(&run)?;
    let link_name = link.as_ref().map(|l| l.name.clone());
    let mut footprint = Footprint::of(w, &run, arch, &par);
    let mut stepper = if arch.pim.is_some() {
        if tiers.is_some() {
            return Err(format!(
                "`{}` has PIM units: offloading (--weights-on, --kv-on) is not modelled with them",
                arch.name
            ));
        }
        Stepper::Duplex(Box::new(duplex::DuplexStepper::new(
            w,
            arch,
            par,
            link,
            &duplex::DuplexOptions::default(),
        )?))
    } else if arch.gpu.is_some() {
        let mut st = GpuStepper::with_parallel(w, arch, par, link)?;
        if let Some(t) = &tiers {
            st.set_tiers(t.clone())?;
            footprint.place(t);
        }
        Stepper::Gpu(Box::new(st))
    } else {
        if par != Parallel::ONE || tiers.is_some() {
            return Err(format!(
                "`{}` is a spatial accelerator: its steps run on one device with everything in its memory (no --devices, --weights-on or --kv-on)",
                arch.name
            ));
        }
        Stepper::Spatial(Box::new(spatial::SpatialStepper::new(w, arch)?))
    };
    run_steps(
        &mut stepper,
        w,
        arch,
        run,
        par,
        link_name,
        footprint,
        tiers,
        on_step,
    )
}

/// [`run_static_on`] on a device with PIM units, built as `opts` says: other units, none
/// (`pim = "none"`: the xPU alone), or the roofline assumptions of Duplex's simulator.
pub fn run_static_duplex(
    w: &Workload,
    arch: &Architecture,
    run: StaticRun,
    par: Parallel,
    link: Option<Link>,
    opts: &duplex::DuplexOptions,
    on_step: &mut dyn FnMut(u64, u64),
) -> Result<InferReport, String> {
    check_run(&run)?;
    let link_name = link.as_ref().map(|l| l.name.clone());
    let footprint = Footprint::of(w, &run, arch, &par);
    let mut stepper = if opts.pim.as_deref() == Some("none") {
        let mut st = GpuStepper::with_parallel(w, arch, par, link)?;
        if opts.roofline {
            st.set_roofline();
        }
        Stepper::Gpu(Box::new(st))
    } else {
        Stepper::Duplex(Box::new(duplex::DuplexStepper::new(
            w, arch, par, link, opts,
        )?))
    };
    run_steps(
        &mut stepper,
        w,
        arch,
        run,
        par,
        link_name,
        footprint,
        None,
        on_step,
    )
}

fn check_run(run: &StaticRun) -> Result<(), String> {
    for (name, v) in [
        ("--batch", run.batch),
        ("--prompt", run.prompt),
        ("--generate", run.generate),
    ] {
        if v == 0 {
            return Err(format!("{name} 0: must be ≥ 1"));
        }
    }
    Ok(())
}

/// The prefill step, then a decode step per generated token.
#[allow(clippy::too_many_arguments)]
fn run_steps(
    stepper: &mut Stepper,
    w: &Workload,
    arch: &Architecture,
    run: StaticRun,
    par: Parallel,
    link_name: Option<String>,
    footprint: Footprint,
    tiers: Option<Tiers>,
    on_step: &mut dyn FnMut(u64, u64),
) -> Result<InferReport, String> {
    footprint.check(&arch.name, &run)?;
    let prefill = stepper.step(StepShape {
        phase: Phase::Prefill,
        batch: run.batch,
        new_tokens: run.prompt,
        context: run.prompt,
    })?;
    let total_steps = run.generate;
    on_step(1, total_steps);
    let mut decode_s = Vec::new();
    let mut energy = prefill.energy_j;
    let mut by_unit: BTreeMap<String, f64> = BTreeMap::new();
    let mut count = |s: &Step| {
        for (u, p) in &s.by_unit {
            *by_unit.entry(u.to_string()).or_default() += p.energy_j;
        }
    };
    count(&prefill);
    let mut hbm = prefill.hbm_bytes;
    let (mut host_link_bytes, mut ssd_bytes) = (prefill.host_link_bytes, prefill.ssd_bytes);
    let mut last = None;
    for i in 1..run.generate {
        let s = stepper.step(StepShape {
            phase: Phase::Decode,
            batch: run.batch,
            new_tokens: 1,
            context: run.prompt + i,
        })?;
        decode_s.push(s.seconds);
        count(&s);
        energy += s.energy_j;
        hbm += s.hbm_bytes;
        host_link_bytes += s.host_link_bytes;
        ssd_bytes += s.ssd_bytes;
        on_step(i + 1, total_steps);
        if i + 1 == run.generate {
            last = Some(s);
        }
    }
    let total_s = prefill.seconds + decode_s.iter().sum::<f64>();
    let tokens = (run.batch * run.generate) as f64;
    Ok(InferReport {
        workload: w.name.clone(),
        arch: arch.name.clone(),
        run,
        parallel: par,
        link: link_name,
        footprint,
        ttft_s: prefill.seconds,
        tbt: Latencies::of(&decode_s),
        prefill,
        last_decode: last,
        decode_s,
        total_s,
        tokens_per_s: tokens / total_s,
        energy_per_token_j: energy / tokens,
        energy_by_unit_j: by_unit,
        energy_counts: energy_counts(arch),
        pim: match stepper {
            Stepper::Duplex(d) => Some(d.pim().0.to_string()),
            _ => None,
        },
        hbm_bytes: hbm,
        host_link_bytes,
        ssd_bytes,
        tiers,
    })
}
