//! Serving: requests arriving over time (Poisson or a trace), scheduled step by step the way
//! vLLM schedules them by default, on a device (or a tensor/expert-parallel group) whose KV
//! cache is a pool of blocks.
//!
//! - **Admission by free memory**: the KV pool is what `memory_fraction` of the device's memory
//!   leaves after the weights and the activations of a full step ([`Footprint`]), in blocks of
//!   `block_tokens` tokens (vLLM's paged attention, 16). A request is admitted when the blocks
//!   of its prompt are free; a decode step that needs a block when none is free preempts the
//!   request admitted last (recomputation: its blocks freed, it waits again at the head of the
//!   queue, its prompt and generated tokens to be prefilled again), as vLLM's default does.
//! - **Scheduling** (vLLM's default without chunked prefill): waiting requests first — as many
//!   as `max_seqs`, `token_budget` (at least the longest prompt) and the free blocks allow, in
//!   arrival order, prefilled together in one step that gives each its first token; otherwise one
//!   decode step for every running request. With `chunked` (vLLM's chunked prefill): every step
//!   runs each running request's next token first, then fills the rest of `token_budget` with
//!   prompt chunks, older requests first.
//! - **Pricing a step**: the step's ops from [`GpuStepper`] split in three ([`GpuStepper::parts`]):
//!   the dense ops at the step's token count (projections, FFN, norms, glue, collectives), each
//!   request's attention (prefill: causal over its prompt — a chunk of `n` queries ending at
//!   position `c` is the causal attention over `c` less that over `c − n`; decode: one
//!   `decode_attention` over the running requests at their mean context, which reads the same
//!   KV bytes), and the LM head on the step's last tokens. Steps with a prefill run eagerly,
//!   decode-only steps as CUDA graphs (as `cascade infer`'s validated steps). Decode attention
//!   is always priced exactly (its time steps with the kernel's key splits); unless `exact`,
//!   the dense ops, the LM head and prefill attention at token counts above 16 are priced on a
//!   grid of `PER_OCTAVE` points an octave and interpolated linearly, so a trace of prompts of
//!   every length needs few fresh estimates. One step can be off by up to about 8% where a
//!   GEMM's row tiles step between two grid points; over a trace the errors average out
//!   (`tests/serve.rs` bounds the served figures against exact pricing).
//! - **PIM units** (an architecture with `[pim]`, [`super::duplex`]): each part is placed as a
//!   Duplex step places it (the MoE experts split, decode attention on the units when faster);
//!   in a mixed step with co-processing, the decode attention on the units and the prefill
//!   chunks' attention on the xPU run at once, sharing the memory's bandwidth.

use super::duplex::{DuplexOptions, DuplexStepper};
use super::step::{GpuStepper, Parts, StepShape};
use super::{Footprint, Latencies, Parallel, StaticRun};
use crate::workload::{Phase, Workload};
use cascade_arch::{Architecture, Link};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// One request: when it arrives, its prompt and how many tokens it generates.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub arrival_s: f64,
    pub prompt: u64,
    pub generate: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceFile {
    request: Vec<Request>,
}

/// A request trace: `[[request]]` tables with `arrival_s`, `prompt` and `generate`; errors
/// name the file and the line and column, or the request and field.
pub fn parse_trace(text: &str, file: &str) -> Result<Vec<Request>, String> {
    let t: TraceFile = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(String::new(), |s| {
            let (line, col, _) = cascade_arch::locate::line_col(text, s.start);
            format!("{line}:{col}: ")
        });
        format!("{file}:{at}{}", e.message().trim())
    })?;
    if t.request.is_empty() {
        return Err(format!("{file}: no [[request]]"));
    }
    for (i, r) in t.request.iter().enumerate() {
        if !r.arrival_s.is_finite() || r.arrival_s < 0.0 {
            return Err(format!(
                "{file}: request[{i}].arrival_s: must be a finite number of seconds ≥ 0, got {}",
                r.arrival_s
            ));
        }
        for (f, v) in [("prompt", r.prompt), ("generate", r.generate)] {
            if v == 0 {
                return Err(format!("{file}: request[{i}].{f}: must be ≥ 1"));
            }
        }
    }
    let mut v = t.request;
    v.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
    Ok(v)
}

/// `n` requests arriving as a Poisson process of `rate` per second (seeded: the same seed gives
/// the same arrivals), each with `prompt` tokens generating `generate`.
pub fn poisson(
    n: u64,
    rate: f64,
    prompt: u64,
    generate: u64,
    seed: u64,
) -> Result<Vec<Request>, String> {
    if !rate.is_finite() || rate <= 0.0 {
        return Err(format!(
            "--rate {rate}: must be a finite number of requests per second > 0"
        ));
    }
    for (flag, v) in [
        ("--requests", n),
        ("--prompt", prompt),
        ("--generate", generate),
    ] {
        if v == 0 {
            return Err(format!("{flag} 0: must be ≥ 1"));
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = 0.0;
    Ok((0..n)
        .map(|_| {
            let u: f64 = rng.random();
            t += -(1.0 - u).ln() / rate;
            Request {
                arrival_s: t,
                prompt,
                generate,
            }
        })
        .collect())
}

/// The scheduler's settings (vLLM's defaults where it has one).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServeConfig {
    /// Most requests running at once (vLLM `max_num_seqs`, 256).
    pub max_seqs: u64,
    /// Most tokens a step computes (vLLM `max_num_batched_tokens`); without chunking raised to
    /// the longest prompt.
    pub token_budget: u64,
    /// Chunked prefill.
    pub chunked: bool,
    /// Tokens per KV block (vLLM 16).
    pub block_tokens: u64,
    /// Share of the device's memory the server may use (vLLM `gpu_memory_utilization`, 0.9).
    pub memory_fraction: f64,
    /// Price every token count exactly (no interpolation).
    pub exact: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            max_seqs: 256,
            token_budget: 8192,
            chunked: false,
            block_tokens: 16,
            memory_fraction: 0.9,
            exact: false,
        }
    }
}

/// The result of serving a list of requests.
#[derive(Clone, Debug, Serialize)]
pub struct ServeReport {
    pub workload: String,
    pub arch: String,
    pub parallel: Parallel,
    pub link: Option<String>,
    pub config: ServeConfig,
    pub requests: usize,
    pub output_tokens: u64,
    /// From the first arrival to the last token.
    pub makespan_s: f64,
    pub tokens_per_s: f64,
    pub requests_per_s: f64,
    /// Time to first token (arrival to first token), per request.
    pub ttft: Latencies,
    /// Time between a request's consecutive tokens.
    pub tbt: Option<Latencies>,
    /// Arrival to last token.
    pub e2e: Latencies,
    pub prefill_steps: u64,
    pub decode_steps: u64,
    pub mixed_steps: u64,
    pub preemptions: u64,
    /// Tokens the KV pool holds, and the most it held at once.
    pub kv_capacity_tokens: u64,
    pub peak_kv_tokens: u64,
    pub energy_per_token_j: f64,
    /// What the energy counts (as [`super::InferReport::energy_counts`]).
    pub energy_counts: &'static str,
    pub hbm_bytes: f64,
    /// Distinct step parts the GPU model estimated (the rest came from the cache).
    pub estimates: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Dense(bool, u64),
    Head(bool, u64),
    Prefill(u64),
    Decode(u64, u64),
}

/// What prices a step's parts: the GPU's steps, or a device with PIM units beside its xPU.
enum Source<'a> {
    Gpu(Box<GpuStepper<'a>>),
    Duplex(Box<DuplexStepper<'a>>),
}

impl Source<'_> {
    fn parts(&mut self, shape: StepShape) -> Result<[Parts; 3], String> {
        match self {
            Source::Gpu(s) => s.parts(shape),
            Source::Duplex(s) => s.parts(shape),
        }
    }

    /// Attention's part, and whether it runs on the PIM units.
    fn attention_parts(&mut self, shape: StepShape) -> Result<(Parts, bool), String> {
        match self {
            Source::Gpu(s) => Ok((s.attention_parts(shape)?, false)),
            Source::Duplex(s) => s.attention_placed(shape),
        }
    }
}

/// Prices step parts, caching each and interpolating on a grid unless exact.
struct Pricer<'a> {
    st: Source<'a>,
    exact: bool,
    cache: HashMap<Key, Parts>,
    /// Decode attention parts that run on PIM units.
    on_pim: std::collections::HashSet<Key>,
    /// With PIM units that co-process: the bandwidth the xPU and the units share (bytes/s) and
    /// the devices a part's bytes are summed over.
    coprocess: Option<(f64, f64)>,
}

/// Grid points per octave of token or sequence counts above 16.
const PER_OCTAVE: u32 = 8;

/// The grid points around `x`: every count up to 16, then `PER_OCTAVE` an octave
/// (`16·2^(i/PER_OCTAVE)`, rounded).
pub(crate) fn bracket(x: u64) -> (u64, u64) {
    if x <= 16 {
        return (x, x);
    }
    let per = f64::from(PER_OCTAVE);
    let g = |i: i32| (16.0 * 2f64.powf(f64::from(i) / per)).round() as u64;
    let mut i = ((x as f64 / 16.0).log2() * per).floor() as i32;
    while g(i) > x {
        i -= 1;
    }
    while g(i + 1) <= x {
        i += 1;
    }
    (g(i), g(i + 1))
}

impl<'a> Pricer<'a> {
    fn exact_part(&mut self, k: Key) -> Result<Parts, String> {
        if let Some(p) = self.cache.get(&k) {
            return Ok(*p);
        }
        let sh = |phase, batch, new_tokens, context| StepShape {
            phase,
            batch,
            new_tokens,
            context,
        };
        let ph = |eager: bool| if eager { Phase::Prefill } else { Phase::Decode };
        let p = match k {
            Key::Dense(eager, t) => {
                let shape = if eager {
                    sh(Phase::Prefill, 1, t, t)
                } else {
                    sh(Phase::Decode, t, 1, 1)
                };
                self.st.parts(shape)?[0]
            }
            Key::Head(eager, s) => self.st.parts(sh(ph(eager), s, 1, 1))?[2],
            Key::Prefill(n) => self.st.attention_parts(sh(Phase::Prefill, 1, n, n))?.0,
            Key::Decode(b, l) => {
                let (p, pim) = self.st.attention_parts(sh(Phase::Decode, b, 1, l))?;
                if pim {
                    self.on_pim.insert(k);
                }
                p
            }
        };
        self.cache.insert(k, p);
        Ok(p)
    }

    /// `f(x)`, interpolated between the grid points around `x` unless exact.
    fn interp(&mut self, x: u64, k: impl Fn(u64) -> Key) -> Result<Parts, String> {
        let (lo, hi) = if self.exact { (x, x) } else { bracket(x) };
        let a = self.exact_part(k(lo))?;
        if hi == lo {
            return Ok(a);
        }
        let b = self.exact_part(k(hi))?;
        Ok(a.lerp(b, (x - lo) as f64 / (hi - lo) as f64))
    }

    fn dense(&mut self, eager: bool, tokens: u64) -> Result<Parts, String> {
        self.interp(tokens, |t| Key::Dense(eager, t))
    }

    fn head(&mut self, eager: bool, seqs: u64) -> Result<Parts, String> {
        self.interp(seqs, |s| Key::Head(eager, s))
    }

    /// Causal attention of `n` new tokens ending at position `c` (`n = c`: a whole prompt).
    fn prefill(&mut self, n: u64, c: u64) -> Result<Parts, String> {
        let whole = self.interp(c, Key::Prefill)?;
        if n >= c {
            return Ok(whole);
        }
        let before = self.interp(c - n, Key::Prefill)?;
        Ok(whole.minus(before))
    }

    /// Decode attention of `b` sequences at mean context `l`, always exact: its time steps
    /// with the key splits and waves of the decode kernel, which a grid would smooth over.
    fn decode(&mut self, b: u64, l: u64) -> Result<Parts, String> {
        self.exact_part(Key::Decode(b, l))
    }

    /// A mixed step's attention: the decode part and the prefill chunks' part. Back to back,
    /// or — when the decode attention runs on co-processing PIM units (Duplex's attention
    /// co-processing) — at once, sharing the memory's bandwidth
    /// ([`super::duplex::concurrent_seconds`]).
    fn attention(&self, decode: Option<(Parts, Key)>, prefill: Parts) -> Parts {
        match (decode, self.coprocess) {
            (Some((d, k)), Some((bw, devices))) if self.on_pim.contains(&k) => Parts {
                seconds: super::duplex::concurrent_seconds(
                    prefill.seconds,
                    prefill.hbm_bytes / devices,
                    d.seconds,
                    d.hbm_bytes / devices,
                    bw,
                ),
                energy_j: d.energy_j + prefill.energy_j,
                hbm_bytes: d.hbm_bytes + prefill.hbm_bytes,
            },
            (Some((d, _)), _) => d.plus(prefill),
            (None, _) => prefill,
        }
    }
}

/// One request in the server.
#[derive(Clone, Debug)]
struct Seq {
    id: usize,
    /// Tokens to prefill (the prompt, or prompt and generated tokens after a preemption).
    prefill: u64,
    /// Of them, prefilled so far.
    done: u64,
    /// Tokens generated so far, and to generate.
    generated: u64,
    target: u64,
    /// Tokens in the KV cache and blocks held.
    cached: u64,
    blocks: u64,
    /// Admission order (the last admitted is preempted first).
    order: u64,
}

/// Serves `reqs` (sorted by arrival) with `w` on `arch` spread as `par`; `on_done(finished,
/// total)` after each step that finishes requests.
pub fn serve(
    w: &Workload,
    arch: &Architecture,
    par: Parallel,
    link: Option<Link>,
    reqs: &[Request],
    cfg: &ServeConfig,
    on_done: &mut dyn FnMut(u64, u64),
) -> Result<ServeReport, String> {
    if reqs.is_empty() {
        return Err("no requests to serve".into());
    }
    if par.dp() > 1 {
        return Err(format!(
            "--devices {} with --tp {} × --pp {}: data-parallel replicas are not modelled for serving (serve one replica)",
            par.devices, par.tp, par.pp
        ));
    }
    if cfg.max_seqs == 0 || cfg.token_budget == 0 || cfg.block_tokens == 0 {
        return Err("--max-seqs, --token-budget and the block size must be ≥ 1".into());
    }
    let link_name = link.as_ref().map(|l| l.name.clone());
    let (st, coprocess) = if arch.pim.is_some() {
        let d = DuplexStepper::new(w, arch, par, link, &DuplexOptions::default())?;
        let co = arch.pim.as_ref().is_some_and(|p| p.coprocess);
        let shared = (d.shared_bandwidth(), par.stage_devices() as f64);
        (Source::Duplex(Box::new(d)), co.then_some(shared))
    } else {
        (
            Source::Gpu(Box::new(GpuStepper::with_parallel(w, arch, par, link)?)),
            None,
        )
    };
    let longest = reqs.iter().map(|r| r.prompt).max().unwrap_or(1);
    let budget = if cfg.chunked {
        cfg.token_budget
    } else {
        cfg.token_budget.max(longest)
    };
    // The KV pool: what the memory fraction leaves after the weights and a full step's
    // activations, per device.
    let fp = Footprint::of(
        w,
        &StaticRun {
            batch: 1,
            prompt: budget,
            generate: 1,
        },
        arch,
        &par,
    );
    let per_token = fp.kv_cache / fp.kv_tokens.max(1) as f64;
    let kv_tokens = match fp.capacity {
        Some(cap) => {
            let free = cap * cfg.memory_fraction - fp.weights - fp.activations;
            if free < per_token * cfg.block_tokens as f64 {
                return Err(format!(
                    "does not fit: the weights ({:.2} GB) and a step's activations ({:.2} GB) leave no KV cache in {:.0}% of `{}` of {} ({:.2} GB)",
                    fp.weights / 1e9,
                    fp.activations / 1e9,
                    cfg.memory_fraction * 100.0,
                    fp.level,
                    arch.name,
                    cap / 1e9
                ));
            }
            (free / per_token) as u64
        }
        None => u64::MAX / 4,
    };
    let total_blocks = kv_tokens / cfg.block_tokens;
    let blocks_for = |tokens: u64| tokens.div_ceil(cfg.block_tokens);
    if let Some((i, r)) = reqs
        .iter()
        .enumerate()
        .find(|(_, r)| blocks_for(r.prompt + r.generate) > total_blocks)
    {
        return Err(format!(
            "does not fit: request {i} needs a KV cache of {} tokens and `{}` of {} holds {} tokens for the KV cache",
            r.prompt + r.generate,
            fp.level,
            arch.name,
            total_blocks * cfg.block_tokens
        ));
    }
    let mut pr = Pricer {
        st,
        exact: cfg.exact,
        cache: HashMap::new(),
        on_pim: std::collections::HashSet::new(),
        coprocess,
    };
    let n = reqs.len();
    let mut first = vec![f64::NAN; n];
    let mut last_tok = vec![f64::NAN; n];
    let mut end = vec![f64::NAN; n];
    let mut tbt = Vec::new();
    let (mut waiting, mut running): (VecDeque<Seq>, Vec<Seq>) = (VecDeque::new(), Vec::new());
    let (mut t, mut next, mut free, mut order) = (reqs[0].arrival_s, 0usize, total_blocks, 0u64);
    let (mut prefill_steps, mut decode_steps, mut mixed_steps, mut preemptions) = (0, 0, 0, 0);
    let (mut energy, mut hbm, mut out_tokens, mut finished) = (0.0, 0.0, 0u64, 0u64);
    let mut peak = 0u64;
    // Emits a token for `s` at time `now`; true when it is the last.
    let mut emit = |s: &mut Seq, now: f64, tbt: &mut Vec<f64>| {
        s.generated += 1;
        if first[s.id].is_nan() {
            first[s.id] = now;
        } else {
            tbt.push(now - last_tok[s.id]);
        }
        last_tok[s.id] = now;
        if s.generated >= s.target {
            end[s.id] = now;
            true
        } else {
            false
        }
    };
    loop {
        while next < n && reqs[next].arrival_s <= t {
            let r = reqs[next];
            waiting.push_back(Seq {
                id: next,
                prefill: r.prompt,
                done: 0,
                generated: 0,
                target: r.generate,
                cached: 0,
                blocks: 0,
                order: 0,
            });
            next += 1;
        }
        if waiting.is_empty() && running.is_empty() {
            if next == n {
                break;
            }
            t = reqs[next].arrival_s;
            continue;
        }
        // Decode tokens first under chunking; without it, only when no prefill is admitted.
        let mut admitted: Vec<Seq> = Vec::new();
        let mut chunks: Vec<(usize, u64)> = Vec::new(); // (index in running, chunk tokens)
        let mut tokens = 0u64;
        if cfg.chunked {
            let decodes = running.iter().filter(|s| s.done == s.prefill).count() as u64;
            tokens = decodes;
            for (i, s) in running.iter().enumerate() {
                if s.done < s.prefill && tokens < budget {
                    let c = (s.prefill - s.done).min(budget - tokens);
                    chunks.push((i, c));
                    tokens += c;
                }
            }
        }
        // Running requests come first: the blocks their next tokens need are not given to
        // new ones (vLLM schedules running requests before admitting waiting ones).
        let reserved: u64 = running
            .iter()
            .filter(|s| s.done == s.prefill)
            .map(|s| blocks_for(s.cached + 1).saturating_sub(s.blocks))
            .sum();
        if tokens < budget || !cfg.chunked {
            while let Some(s) = waiting.front() {
                let seqs = running.len() + admitted.len();
                let room = budget - tokens;
                let c = if cfg.chunked {
                    (s.prefill - s.done).min(room)
                } else {
                    s.prefill
                };
                if seqs as u64 >= cfg.max_seqs
                    || c == 0
                    || (!cfg.chunked && c > room && !admitted.is_empty())
                {
                    break;
                }
                let need = blocks_for(s.prefill);
                if need + reserved > free {
                    break;
                }
                let mut s = waiting.pop_front().expect("front exists");
                free -= need;
                s.blocks = need;
                order += 1;
                s.order = order;
                tokens += c;
                chunks.push((running.len() + admitted.len(), c));
                admitted.push(s);
                if cfg.chunked && tokens >= budget {
                    break;
                }
            }
        }
        let has_prefill = !chunks.is_empty();
        if !cfg.chunked && has_prefill {
            // A prefill-only step (vLLM's default: prefills first).
            let mut p = pr.dense(true, tokens)?;
            for s in &admitted {
                p = p.plus(pr.prefill(s.prefill, s.prefill)?);
            }
            p = p.plus(pr.head(true, admitted.len() as u64)?);
            t += p.seconds;
            energy += p.energy_j;
            hbm += p.hbm_bytes;
            prefill_steps += 1;
            for mut s in admitted {
                s.done = s.prefill;
                s.cached = s.prefill;
                out_tokens += 1;
                if emit(&mut s, t, &mut tbt) {
                    free += s.blocks;
                    finished += 1;
                } else {
                    running.push(s);
                }
            }
            peak = peak.max(running.iter().map(|s| s.cached).sum());
            on_done(finished, n as u64);
            continue;
        }
        // Decoding requests each write one more token: preempt the last admitted while a block
        // is missing.
        loop {
            let need: u64 = running
                .iter()
                .filter(|s| s.done == s.prefill)
                .map(|s| blocks_for(s.cached + 1).saturating_sub(s.blocks))
                .sum();
            if need <= free {
                break;
            }
            let Some(victim) = running
                .iter()
                .enumerate()
                .filter(|(_, s)| s.done == s.prefill)
                .max_by_key(|(_, s)| s.order)
                .map(|(i, _)| i)
            else {
                break;
            };
            let mut s = running.remove(victim);
            chunks.retain(|c| c.0 != victim);
            for c in &mut chunks {
                if c.0 > victim {
                    c.0 -= 1;
                }
            }
            free += s.blocks;
            s.blocks = 0;
            s.cached = 0;
            s.prefill += s.generated;
            s.target -= s.generated;
            s.generated = 0;
            s.done = 0;
            preemptions += 1;
            waiting.push_front(s);
        }
        running.extend(admitted);
        let decoding: Vec<usize> = (0..running.len())
            .filter(|&i| running[i].done == running[i].prefill)
            .collect();
        if decoding.is_empty() && chunks.is_empty() {
            // Nothing can run: wait for the next arrival (every request fits alone, so this
            // happens only with nothing running).
            if next == n {
                return Err(
                    "the scheduler cannot make progress (no request fits the KV pool)".into(),
                );
            }
            t = t.max(reqs[next].arrival_s);
            continue;
        }
        let b = decoding.len() as u64;
        let all_tokens = b + chunks.iter().map(|c| c.1).sum::<u64>();
        let eager = !chunks.is_empty();
        let mut p = pr.dense(eager, all_tokens)?;
        let mut decode = None;
        if b > 0 {
            let ctx: u64 = decoding.iter().map(|&i| running[i].cached + 1).sum();
            let l = ctx.div_ceil(b);
            decode = Some((pr.decode(b, l)?, Key::Decode(b, l)));
        }
        let mut completing = 0;
        let mut prefill = Parts::default();
        for &(i, c) in &chunks {
            let s = &running[i];
            prefill = prefill.plus(pr.prefill(c, s.done + c)?);
            if s.done + c == s.prefill {
                completing += 1;
            }
        }
        p = p.plus(pr.attention(decode, prefill));
        if b + completing > 0 {
            p = p.plus(pr.head(eager, b + completing)?);
        }
        t += p.seconds;
        energy += p.energy_j;
        hbm += p.hbm_bytes;
        if eager && b > 0 {
            mixed_steps += 1;
        } else if eager {
            prefill_steps += 1;
        } else {
            decode_steps += 1;
        }
        let mut done_ids = Vec::new();
        for &i in &decoding {
            let s = &mut running[i];
            s.cached += 1;
            let need = blocks_for(s.cached);
            if need > s.blocks {
                free -= need - s.blocks;
                s.blocks = need;
            }
            out_tokens += 1;
            if emit(s, t, &mut tbt) {
                done_ids.push(i);
            }
        }
        for &(i, c) in &chunks {
            let s = &mut running[i];
            s.done += c;
            s.cached += c;
            let need = blocks_for(s.cached);
            if need > s.blocks {
                free -= (need - s.blocks).min(free);
                s.blocks = need;
            }
            if s.done == s.prefill {
                out_tokens += 1;
                if emit(s, t, &mut tbt) {
                    done_ids.push(i);
                }
            }
        }
        peak = peak.max(running.iter().map(|s| s.cached).sum());
        done_ids.sort_unstable();
        for i in done_ids.into_iter().rev() {
            let s = running.remove(i);
            free += s.blocks;
            finished += 1;
        }
        on_done(finished, n as u64);
    }
    let t0 = reqs[0].arrival_s;
    let ttft: Vec<f64> = (0..n).map(|i| first[i] - reqs[i].arrival_s).collect();
    let e2e: Vec<f64> = (0..n).map(|i| end[i] - reqs[i].arrival_s).collect();
    let makespan = t - t0;
    Ok(ServeReport {
        workload: w.name.clone(),
        arch: arch.name.clone(),
        parallel: par,
        link: link_name,
        config: ServeConfig {
            token_budget: budget,
            ..cfg.clone()
        },
        requests: n,
        output_tokens: out_tokens,
        makespan_s: makespan,
        tokens_per_s: out_tokens as f64 / makespan,
        requests_per_s: n as f64 / makespan,
        ttft: Latencies::of(&ttft).expect("requests exist"),
        tbt: Latencies::of(&tbt),
        e2e: Latencies::of(&e2e).expect("requests exist"),
        prefill_steps,
        decode_steps,
        mixed_steps,
        preemptions,
        kv_capacity_tokens: total_blocks * cfg.block_tokens,
        peak_kv_tokens: peak,
        energy_per_token_j: energy / out_tokens.max(1) as f64,
        energy_counts: super::energy_counts(arch),
        hbm_bytes: hbm,
        estimates: pr.cache.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::bracket;

    #[test]
    fn the_grid_brackets_every_count() {
        for x in 1..5000u64 {
            let (lo, hi) = bracket(x);
            assert!(
                lo <= x && x <= hi && (lo == hi) == (x <= 16),
                "{x}: {lo} {hi}"
            );
            if x > 16 {
                assert!(
                    lo < hi && hi as f64 <= lo as f64 * 1.1 + 1.0,
                    "{x}: {lo} {hi}"
                );
            }
        }
    }
}
