//! Analytical timing model of a GPU mapping.
//!
//! For each kernel (a [`KernelPlan`]):
//!
//! - **CTAs and waves.** CTAs = tiles of the grid (tile quantization: a partial tile costs a
//!   full one); an SM holds `occupancy` CTAs at once, limited by shared memory, registers,
//!   threads and the block limit. CTAs are grouped into *chunks* of one CTA per SM (`SMs`
//!   consecutive CTAs in dispatch order) and chunks into *waves* of `occupancy` chunks:
//!   waves = ⌈CTAs / (SMs × occupancy)⌉. The busiest SM runs one CTA of each chunk of a wave.
//! - **Per step** of a CTA: `t` = the step's arithmetic on the SM (matrix work at the
//!   instruction class's sustained fraction of peak, [`InstrClass::efficiency`], plus softmax
//!   work on the FP32 pipes and MUFU); the step's operand bytes pass L2 (all of them) and HBM
//!   (only tiles no concurrently resident CTA has loaded: HBM bytes are the wave's *distinct*
//!   tiles, not the sum over CTAs; tiles survive from earlier waves only when the kernel's
//!   shared operands fit in L2).
//! - **Per wave**, the largest of three regimes:
//!   - compute-bound: `C = Σ steps × t` on the busiest SM, plus the first tile's arrival
//!     (`L + m₁`: latency, L2 + DRAM on a miss, and transfer) and the last epilogue's drain;
//!   - memory-bound: the wave's loads through the slower of HBM (`bytes / hbm_bandwidth`) and
//!     L2 (`bytes / l2_bandwidth`), plus the last tile's latency and step and the final stores;
//!   - latency-bound: with `S` stages the load for step `i + S` is issued when step `i`
//!     finishes, so `k` steps take `q = ⌊(k−1)/S⌋` round trips `L + m + t` (the per-kernel
//!     latency floor: DRAM latency × pipeline depth) plus `r = (k−1) mod S` steps spaced by
//!     `max(t, m)`, after the first tile and before the last stores.
//!
//!   With two or more resident CTAs per SM, one CTA's fill and drain overlap the others'
//!   steps, so they count only at the kernel's start and end and where the other CTAs' steps
//!   cannot cover them.
//! - **Stores** complete for the SM when L2 has taken them; their write-back to HBM is bounded
//!   over the whole kernel: the kernel lasts at least all its HBM bytes at HBM bandwidth, and
//!   the stores' bytes after the first store.
//! - **Kernel** = launch overhead + Σ waves; an op runs its kernels back to back.
//!
//! The same plans drive the cycle-level simulation ([`super::cycle`]), which replays these
//! mechanisms event by event; the two agree within 6% on [`super::SUITE`].
//!
//! [`InstrClass::efficiency`]: super::mapping::InstrClass::efficiency

use super::error::GpuError;
use super::hw::GpuParams;
use super::mapping::GpuMapping;
use super::op::GpuOp;
use super::plan::{plan_op, KernelPlan, Steps};
use cascade_arch::GpuSpec;
use serde::Serialize;

/// What limits a kernel or op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    /// SM arithmetic is busy at least half the time and more than memory.
    Compute,
    /// HBM or L2 transfers are busy at least half the time and more than arithmetic.
    Memory,
    /// Neither: launch overhead, pipeline fill and memory latency dominate.
    Latency,
    /// A collective between devices (`cascade infer`): the link's bandwidth and latency.
    Link,
}

impl Bound {
    /// The one spelling of the bound, used by the text output, the JSON (serde) and the
    /// reports: `compute`, `memory` or `latency`.
    pub fn name(self) -> &'static str {
        match self {
            Bound::Compute => "compute",
            Bound::Memory => "memory",
            Bound::Latency => "latency",
            Bound::Link => "link",
        }
    }

    /// Classifies from busy times: the busier of arithmetic and memory, if it fills at least
    /// half of `seconds`; otherwise latency (a definition, not a fitted threshold).
    pub fn classify(compute_s: f64, memory_s: f64, seconds: f64) -> Bound {
        if compute_s >= memory_s && compute_s >= 0.5 * seconds {
            Bound::Compute
        } else if memory_s > compute_s && memory_s >= 0.5 * seconds {
            Bound::Memory
        } else {
            Bound::Latency
        }
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One kernel's estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelEstimate {
    /// Kernel name.
    pub name: String,
    /// Seconds including the launch overhead.
    pub seconds: f64,
    /// What limits it.
    pub bound: Bound,
    /// Useful FLOPs.
    pub flops: f64,
    /// Bytes to and from HBM.
    pub hbm_bytes: f64,
    /// Bytes between SMs and L2.
    pub l2_bytes: f64,
    /// CTAs.
    pub ctas: u64,
    /// Waves.
    pub waves: u64,
    /// Resident CTAs per SM.
    pub occupancy: u32,
    /// Busiest SM's arithmetic time, summed over waves.
    pub compute_s: f64,
    /// Memory transfer time, summed over waves.
    pub memory_s: f64,
}

/// An op's estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuEstimate {
    /// The op spec.
    pub op: String,
    /// Seconds for all kernels back to back.
    pub seconds: f64,
    /// What limits the op (from the kernels' summed busy times).
    pub bound: Bound,
    /// Useful FLOPs of the op ([`GpuOp::flops`]).
    pub flops: f64,
    /// Minimum bytes of the op ([`GpuOp::min_bytes`]).
    pub min_bytes: f64,
    /// Modelled HBM bytes over all kernels.
    pub hbm_bytes: f64,
    /// Per kernel, in launch order.
    pub kernels: Vec<KernelEstimate>,
    /// The mapping (one entry per kernel).
    pub mapping: Vec<GpuMapping>,
}

impl GpuEstimate {
    /// Achieved useful FLOP/s.
    pub fn flops_per_s(&self) -> f64 {
        self.flops / self.seconds
    }
}

/// Predicts `op` under `mapping` (one entry per kernel) on `spec`.
pub fn predict(
    op: &GpuOp,
    mapping: &[GpuMapping],
    spec: &GpuSpec,
) -> Result<GpuEstimate, GpuError> {
    let hw = super::search::params(spec);
    let plans = plan_op(op, mapping, &hw)?;
    Ok(estimate_plans(op, &plans, &hw))
}

/// Predicts lowered kernels.
pub fn estimate_plans(op: &GpuOp, plans: &[KernelPlan], hw: &GpuParams) -> GpuEstimate {
    let kernels: Vec<KernelEstimate> = plans
        .iter()
        .zip(dirty_writebacks(plans, hw))
        .map(|(p, wb)| kernel_estimate_with(p, hw, false, wb.bytes).0)
        .collect();
    let seconds = hw.op_start_s + kernels.iter().map(|k| k.seconds).sum::<f64>();
    let compute: f64 = kernels.iter().map(|k| k.compute_s).sum();
    let memory: f64 = kernels.iter().map(|k| k.memory_s).sum();
    GpuEstimate {
        op: op.to_string(),
        seconds,
        bound: Bound::classify(compute, memory, seconds),
        flops: op.flops(),
        min_bytes: op.min_bytes(),
        hbm_bytes: kernels.iter().map(|k| k.hbm_bytes).sum(),
        kernels,
        mapping: plans.iter().map(|p| p.mapping.clone()).collect(),
    }
}

/// Write-backs of the dirty lines L2 holds when an op starts (`gpu.l2_dirty_at_op_start`),
/// charged to one kernel of the op.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DirtyWriteback {
    /// Write-back bytes that share HBM with the kernel's traffic.
    pub bytes: f64,
    /// The kernel's HBM reads, over which they are spread.
    pub reads: f64,
}

/// The dirty-line write-backs each kernel of an op pays. The op's HBM reads evict the dirty
/// lines, the first kernels' reads first, until none are left: a kernel evicts
/// `e = min(dirty left, its reads)`. Of those, it pays `e × reads / (reads + writes)`.
///
/// The share is MEASURED, not derived (`reports/crosscheck/h200/l2_state.csv`, each op timed
/// after the protocol's 512 MiB overwrite and after a 512 MiB read): pure read streams (a sum,
/// a GEMV) lose all of it (8.3 and 9.1 µs for 35 MB); ops that write as much as they read (a
/// copy, softmax, the norms) lose 1.6–3.1 µs, about half or less; a write-only fill loses
/// nothing. Why writes shield the op is not resolved (the L2's replacement policy is not
/// documented); the share is the simplest rule that orders those cases.
pub fn dirty_writebacks(plans: &[KernelPlan], hw: &GpuParams) -> Vec<DirtyWriteback> {
    let mut dirty = hw.l2_dirty_at_op_start;
    plans
        .iter()
        .map(|p| {
            if dirty <= 0.0 {
                return DirtyWriteback::default();
            }
            let (k, writes) = kernel_estimate_with(p, hw, false, 0.0);
            let reads = (k.hbm_bytes - writes).max(0.0);
            let evicted = dirty.min(reads);
            dirty -= evicted;
            DirtyWriteback {
                bytes: if reads > 0.0 {
                    evicted * reads / (reads + writes)
                } else {
                    0.0
                },
                reads,
            }
        })
        .collect()
}

/// Compute makespan of a kernel whose CTAs run different numbers of steps (causal attention),
/// as a fluid model of the hardware: CTAs go out in grid order, the first `occupancy` rounds
/// round-robin over the SMs, then each to the SM where a CTA just finished; an SM runs one
/// step (`t`) at a time and shares its steps equally among its resident CTAs.
///
/// Why: the per-wave model averages the steps of consecutive CTAs, which is right when every
/// CTA has the same work. Causal FlashAttention's query blocks have 1 to n/64 key blocks, and
/// the heaviest blocks of the last heads are dispatched near the end and keep a few SMs busy
/// while the others idle. Evidence: the measured causal `ours_fa2` kernels took 0.80 (n = 1024)
/// to 0.51 (n = 8192) of the non-causal time, where averaged work predicts 0.50–0.55 at every
/// length (errors of −36% to −6% before this bound).
///
/// `fill_s` is the exposed part of each CTA's start-up (its first tile's round trip), added
/// to its work: the whole round trip with one CTA per SM (nothing else runs while it waits),
/// less where other resident CTAs may cover it (the caller's estimate); 0 to ignore it.
///
/// Bounded work: of a grid of more than [`MAX_SIMULATED_CTAS`] CTAs only the last whole heads
/// (or the last [`MAX_SIMULATED_CTAS`] CTAs when one head has more) are dispatched one by one,
/// after the work of the others spread evenly over the SMs:
/// `work(before) · t / SMs + makespan(last CTAs)`. Every SM stays busy until the dispatch
/// runs out, so only the tail's shape needs the last CTAs;
/// `tests::makespan_extrapolation_is_close` bounds the difference at 0.5%.
pub fn imbalance_makespan(p: &KernelPlan, sms: u32, t: f64, fill_s: f64) -> f64 {
    makespan_bounded(p, sms, t, fill_s, MAX_SIMULATED_CTAS)
}

/// Most CTAs [`imbalance_makespan`] dispatches one by one.
pub const MAX_SIMULATED_CTAS: u64 = 1 << 15;

fn makespan_bounded(p: &KernelPlan, sms: u32, t: f64, fill_s: f64, max_ctas: u64) -> f64 {
    let ctas = p.ctas();
    if ctas <= max_ctas {
        return makespan_range(p, sms, t, fill_s, 0);
    }
    // The last whole heads (groups: dispatch order is group-major) when two or more fit,
    // else the last `max_ctas` CTAs (the lightest of a causal head: its tail).
    let per_group = p.order.rows * p.order.cols;
    let suffix = if per_group > 0 && per_group * 2 <= max_ctas {
        max_ctas / per_group * per_group
    } else {
        max_ctas
    };
    let from = ctas - suffix;
    let fill = if t > 0.0 { fill_s / t } else { 0.0 };
    let before = (p.steps_sum(0, from) as f64 + fill * from as f64) * t / f64::from(sms.max(1));
    before + makespan_range(p, sms, t, fill_s, from)
}

/// The fluid dispatch of CTAs `from..` of `p` onto idle SMs (see [`imbalance_makespan`]).
fn makespan_range(p: &KernelPlan, sms: u32, t: f64, fill_s: f64, from: u64) -> f64 {
    use std::cmp::Ordering;
    use std::collections::BinaryHeap;
    #[derive(PartialEq)]
    struct Next(f64, usize);
    impl Eq for Next {}
    impl PartialOrd for Next {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for Next {
        fn cmp(&self, o: &Self) -> Ordering {
            o.0.total_cmp(&self.0).then(o.1.cmp(&self.1))
        }
    }
    let (sms, occ) = (sms.max(1) as usize, p.occupancy.max(1) as usize);
    // A CTA's work in units of steps: its steps plus its exposed fill.
    let fill = if t > 0.0 { fill_s / t } else { 0.0 };
    let work = |i: u64| p.steps_of(i) as f64 + fill;
    let ctas = p.ctas();
    let mut next = from;
    // Per SM: remaining steps of the resident CTAs, and when they were last updated.
    let mut res: Vec<Vec<f64>> = vec![Vec::with_capacity(occ); sms];
    let mut last = vec![0.0f64; sms];
    for _ in 0..occ {
        for r in res.iter_mut() {
            if next < ctas {
                r.push(work(next));
                next += 1;
            }
        }
    }
    let due = |r: &[f64], now: f64| {
        let m = r.iter().copied().fold(f64::INFINITY, f64::min);
        now + m * r.len() as f64 * t
    };
    let mut heap: BinaryHeap<Next> = res
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.is_empty())
        .map(|(i, r)| Next(due(r, 0.0), i))
        .collect();
    let mut end = 0.0f64;
    while let Some(Next(now, i)) = heap.pop() {
        let r = &mut res[i];
        let done = (now - last[i]) / (r.len() as f64 * t);
        last[i] = now;
        for x in r.iter_mut() {
            *x -= done;
        }
        // Finish the CTAs that are done (all with the least work left, up to rounding). The
        // event was due when the least one finished, so it goes even when rounding leaves it a
        // residue (at late times a residue's step is below the clock's resolution, and
        // keeping it would repeat this event forever).
        let before = r.len();
        let least = r.iter().copied().fold(f64::INFINITY, f64::min);
        r.retain(|&x| x > 1e-9 && x > least);
        for _ in r.len()..before {
            if next < ctas {
                r.push(work(next));
                next += 1;
            }
        }
        end = end.max(now);
        if !r.is_empty() {
            let d = due(r, now);
            heap.push(Next(d, i));
        }
    }
    end
}

/// Seconds of one kernel (including launch), with its busy times.
pub fn kernel_seconds(p: &KernelPlan, hw: &GpuParams) -> f64 {
    kernel_estimate(p, hw).seconds
}

/// Kernels of at most this many chunks (waves × resident CTAs per SM) are summed wave by
/// wave; larger ones sum their first and last waves and a closed form for the waves between
/// (`Schedule`), so an estimate costs the same for any grid.
pub const EXACT_CHUNKS: u64 = 2048;

/// Most waves evaluated between the first and last wave of a large kernel.
pub const SAMPLED_WAVES: u64 = 256;

/// One wave's sums.
#[derive(Debug, Clone, Copy, Default)]
struct WaveSum {
    total: f64,
    compute_s: f64,
    memory_s: f64,
    hbm: f64,
    l2: f64,
    writes: f64,
}

impl WaveSum {
    fn fields(&mut self) -> [&mut f64; 6] {
        [
            &mut self.total,
            &mut self.compute_s,
            &mut self.memory_s,
            &mut self.hbm,
            &mut self.l2,
            &mut self.writes,
        ]
    }

    fn add(&mut self, o: &WaveSum, times: f64) {
        let mut o = *o;
        for (x, y) in self.fields().into_iter().zip(o.fields()) {
            *x += *y * times;
        }
    }
}

/// How the waves of a kernel are summed. Waves 0 and `waves − 1` (the start's fills, the
/// partial last wave) are always evaluated; a kernel of at most [`EXACT_CHUNKS`] chunks or
/// [`SAMPLED_WAVES`] + 2 waves evaluates every wave. The waves between of larger kernels are
/// full waves of full chunks, summed in closed form:
#[derive(Debug, Clone, PartialEq)]
enum Schedule {
    /// Every wave.
    Every,
    /// The waves between are identical: every CTA has the same steps and loads only its own
    /// tiles (copies, softmax, reductions, decode), so each has the same CTAs, bytes and
    /// misses. One is evaluated and counted for all (exact up to rounding).
    Identical,
    /// The waves between repeat with this period: a wave's misses and steps depend only on
    /// where its CTAs fall in their groups (heads, batch entries, splits, which are alike), so
    /// shifting by `period` waves — a whole number of groups — changes nothing. One period is
    /// evaluated and counted for all (exact up to rounding).
    Periodic(u64),
    /// Otherwise (a long period: the tiles of one large GEMM, causal heads of thousands of
    /// query blocks): one wave from each of [`SAMPLED_WAVES`] equal strata, combined by a
    /// regression estimator on the waves' steps, whose total is known in closed form — it
    /// carries the large wave-to-wave differences of causal attention; what is left (L2 misses
    /// by position in the swizzled grid) is sampled. On grids where every wave can be
    /// evaluated the estimate differs by < 0.6% (`tests::sampled_waves_match_every_wave`).
    Sampled,
}

fn schedule(p: &KernelPlan, chunks: u64, waves: u64, occ: u64, sms: u64) -> Schedule {
    if chunks <= EXACT_CHUNKS || waves <= 2 + SAMPLED_WAVES {
        return Schedule::Every;
    }
    if matches!(p.steps, Steps::Uniform(_))
        && p.streams.iter().all(|s| s.key == super::plan::Key::Cta)
    {
        return Schedule::Identical;
    }
    let per_group = u128::from(p.order.rows) * u128::from(p.order.cols);
    let per_wave = u128::from(occ) * u128::from(sms);
    let period = per_group / gcd(per_group, per_wave);
    if period <= u128::from(SAMPLED_WAVES) {
        Schedule::Periodic(period as u64)
    } else {
        Schedule::Sampled
    }
}

fn gcd(a: u128, b: u128) -> u128 {
    if b == 0 {
        a.max(1)
    } else {
        gcd(b, a % b)
    }
}

/// The middle waves `1 ..= waves − 2` split into [`SAMPLED_WAVES`] strata: (a fixed
/// pseudo-random wave of the stratum — no aliasing with the grid's periods, deterministic —,
/// the stratum's size).
fn strata(waves: u64) -> Vec<(u64, f64)> {
    let mid = u128::from(waves - 2);
    let n = u128::from(SAMPLED_WAVES);
    (0..SAMPLED_WAVES)
        .filter_map(|i| {
            let a = 1 + (mid * u128::from(i) / n) as u64;
            let b = 1 + (mid * u128::from(i + 1) / n) as u64;
            (b > a).then(|| {
                let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                (a + z % (b - a), (b - a) as f64)
            })
        })
        .collect()
}

/// The regression estimate of `Σ q` over a population from stratified samples `(q, c, weight)`
/// and the population's known `Σ c`: `Σ w·q + β·(Σ c − Σ w·c)`, β the weighted least-squares
/// slope of q on c (0 when c does not vary).
fn regression_sum(samples: &[(f64, f64, f64)], c_total: f64) -> f64 {
    let w: f64 = samples.iter().map(|s| s.2).sum();
    let sq: f64 = samples.iter().map(|s| s.0 * s.2).sum();
    let sc: f64 = samples.iter().map(|s| s.1 * s.2).sum();
    let (mq, mc) = (sq / w, sc / w);
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for &(q, c, wt) in samples {
        sxy += wt * (c - mc) * (q - mq);
        sxx += wt * (c - mc) * (c - mc);
    }
    let beta = if sxx > 1e-12 * (mc * mc * w).max(f64::MIN_POSITIVE) {
        sxy / sxx
    } else {
        0.0
    };
    sq + beta * (c_total - sc)
}

fn kernel_estimate(p: &KernelPlan, hw: &GpuParams) -> KernelEstimate {
    kernel_estimate_with(p, hw, false, 0.0).0
}

/// [`kernel_estimate`] of a kernel that also writes back `writeback` bytes of dirty lines it
/// found in L2 ([`dirty_writebacks`]): they share HBM with its traffic. `every_wave`
/// evaluates every wave whatever the grid (tests). Also returns the kernel's own HBM writes.
fn kernel_estimate_with(
    p: &KernelPlan,
    hw: &GpuParams,
    every_wave: bool,
    writeback: f64,
) -> (KernelEstimate, f64) {
    let sms = u64::from(hw.sms);
    let chunks = p.chunks(sms);
    let occ = u64::from(p.occupancy).min(chunks).max(1);
    let waves = chunks.div_ceil(occ);
    let t = p.sm_step_s(sms);
    // HBM sustains the rate of the kernel's mix of reads and writes (the DRAM model's).
    let (bw_h, bw_l) = (
        hw.hbm_bw_for(p.hbm_read_share(sms, writeback)),
        hw.l2_bw_for(p.vector),
    );
    let xfer = |hbm: f64, l2: f64| (hbm / bw_h).max(l2 / bw_l);
    let stages = u64::from(p.stages.max(1));
    let ack = hw.l2_latency_s;
    // With two or more resident CTAs per SM, one CTA's fill and drain overlap the others'
    // work: only the kernel's first fill and last drain are exposed (plus what the other
    // CTAs' remaining work cannot cover). Not for lockstep CTAs (`KernelPlan::lockstep`):
    // the CTAs of a wave wait for their first tiles and drain their epilogues together.
    let hide = occ >= 2 && !p.lockstep;
    // A fragment epilogue holds its SM while its stores issue (`KernelPlan::epilogue_issue_s`)
    // and until the partial sectors' fill round trip returns; the two overlap.
    let hold = hw.miss_latency_s.max(p.epilogue_issue_s);
    let mut first_store = 0.0;
    let wave = |w: u64, first_store: &mut f64| -> WaveSum {
        let (first_wave, last_wave) = (w == 0, w + 1 == waves);
        let (j0, j1) = (w * occ, ((w + 1) * occ).min(chunks));
        let c = (j1 - j0) as f64;
        let mut busy = 0.0;
        // Wave totals: reads (HBM, L2), per-step stores, epilogue stores.
        let (mut rd_h, mut rd_l, mut st, mut epi) = (0.0, 0.0, 0.0, 0.0);
        let (mut step_h, mut step_l, mut step_st) = (0.0, 0.0, 0.0);
        let (mut k_max, mut k_sum) = (0, 0);
        let mut miss = false;
        let (mut first, mut epi_last, mut tail_last) = (0.0, 0.0, 0.0);
        let (mut first_h, mut first_l) = (0.0, 0.0);
        // Epilogue fills (fragment stores): HBM reads that hold their SM.
        let mut fill_w = 0.0;
        let mut ctas_in_wave = 0.0;
        for j in j0..j1 {
            let ch = p.chunk_totals(j, sms);
            ctas_in_wave += ch.ctas as f64;
            let k = ((ch.steps as f64 / ch.ctas as f64).round() as u64).max(1);
            let n = ch.ctas as f64;
            let resident = p.resident * n;
            let e = p.epilogue * n;
            fill_w += p.epilogue_fill * n;
            let stores = ch.writes - e;
            busy += k as f64 * t;
            rd_h += ch.hbm_reads;
            rd_l += ch.l2_bytes - ch.writes;
            st += stores;
            epi += e;
            let kf = k as f64;
            let (ph, pl) = (
                (ch.hbm_reads - resident) / kf,
                (ch.l2_bytes - ch.writes - resident) / kf,
            );
            step_h += ph;
            step_l += pl;
            step_st += stores / kf;
            k_max = k_max.max(k);
            k_sum += k;
            miss |= ch.hbm_reads > 0.0;
            if j == j0 {
                first = xfer(resident + ph, resident + pl);
                (first_h, first_l) = (resident + ph, resident + pl);
            } else if p.lockstep {
                // The wave's CTAs ask for their first tiles at once: they arrive together.
                first_h += resident + ph;
                first_l += resident + pl;
                first = xfer(first_h, first_l);
            }
            epi_last = e / bw_l;
            tail_last = (e + stores / kf) / bw_l;
        }
        // A row kernel's round trips lengthen with the rows resident in this wave.
        let lat = p.step_latency_s
            + p.row_chain
                .map_or(0.0, |rc| rc.extra_s(hw, ctas_in_wave / sms as f64))
            + if miss {
                hw.miss_latency_s
            } else {
                hw.l2_latency_s
            };
        // Compute-bound: the SM's arithmetic, after the first tile arrives and before the
        // last epilogue drains.
        let fill = lat + first;
        let drain = epi_last.max(epi / bw_l - (c - 1.0) * t) + ack;
        let mut a = busy;
        if fill_w > 0.0 {
            // Each chunk's fragment epilogue holds the SM: the HBM transfer of its fills and
            // of the write-back of the merged sectors, and the fill's round trip.
            a += (2.0 * fill_w / bw_h + c * hw.miss_latency_s).max(c * p.epilogue_issue_s);
        }
        rd_h += fill_w;
        if first_wave || !hide {
            a += fill;
        }
        if last_wave {
            // The last stores must also reach HBM before the kernel is over.
            a += drain.max(epi / bw_h);
        } else if !hide {
            a += drain;
        }
        if !first_wave && hide {
            let cover = (occ as f64 - 1.0) * (k_sum as f64 / c) * t;
            a += (fill + drain - cover).max(0.0);
        }
        // Memory-bound: the servers stay busy with loads (HBM serves reads first; write-backs
        // are bounded over the whole kernel below); at the end the last tile's latency and
        // step, then the stores issued after it, are exposed.
        let all = xfer(rd_h, rd_l + st + epi);
        let b = if last_wave || !hide {
            let tail = epi + step_st;
            let out = if last_wave {
                (tail / bw_l + ack).max(tail / bw_h)
            } else {
                tail / bw_l + ack
            };
            all.max(xfer(rd_h, rd_l) + lat + t + out)
        } else {
            all
        };
        // Latency-bound: one CTA's chain of round trips. The load for step i + S is issued when
        // step i finishes, so the last step (i = qS + r) waits q round trips (latency, its own
        // chunk's transfer, one step) after the first tile, plus r steps spaced by the slower
        // of the arithmetic and the transfers; then its stores drain. A round trip carries one
        // chunk's transfer, not the wave's: the other resident chunks' loads overlap its
        // latency (when they cannot, the transfers bound the wave: the memory regime above).
        let m = xfer(step_h, step_l + step_st);
        let (q, r) = ((k_max - 1) / stages, (k_max - 1) % stages);
        let chain = q as f64 * (lat + m / c + t) + r as f64 * t.max(m) + t;
        // A middle wave of staggered resident CTAs (`hide`): each CTA's first-tile transfer,
        // last stores and their acknowledgement overlap the other CTAs' round trips (a CTA
        // exits once its stores issue; only the kernel's end waits for the acknowledgement),
        // so the wave lasts one CTA's chain of round trips.
        let mut lc = if hide && !first_wave && !last_wave {
            lat + chain
        } else {
            lat + first + chain + tail_last + ack
        };
        if fill_w > 0.0 {
            lc += (hw.miss_latency_s + 2.0 * fill_w / c / bw_h).max(p.epilogue_issue_s);
        }
        if first_wave {
            // The first store leaves after the first step (per-step stores) or the first CTA.
            let steps_to_store = if st > 0.0 {
                1.0
            } else {
                (k_sum as f64 / c).max(1.0)
            };
            *first_store = lat + first + steps_to_store * t;
        }
        WaveSum {
            total: a.max(b).max(lc),
            compute_s: busy,
            memory_s: xfer(rd_h + st + epi, rd_l + st + epi),
            hbm: rd_h + st + epi,
            l2: rd_l + st + epi,
            writes: st + epi,
        }
    };
    let mut sum = WaveSum::default();
    let how = if every_wave {
        Schedule::Every
    } else {
        schedule(p, chunks, waves, occ, sms)
    };
    if how == Schedule::Every {
        for w in 0..waves {
            sum.add(&wave(w, &mut first_store), 1.0);
        }
    } else {
        sum.add(&wave(0, &mut first_store), 1.0);
        let mid = waves - 2;
        match how {
            Schedule::Identical => sum.add(&wave(1, &mut first_store), mid as f64),
            Schedule::Periodic(period) => {
                let (q, r) = (mid / period, mid % period);
                for i in 0..period {
                    let times = q + u64::from(i < r);
                    sum.add(&wave(1 + i, &mut first_store), times as f64);
                }
            }
            _ => {
                // Steps of the CTAs of waves [w0, w1).
                let per_wave = occ * sms;
                let steps = |w0: u64, w1: u64| p.steps_sum(w0 * per_wave, w1 * per_wave) as f64;
                let samples: Vec<(WaveSum, f64, f64)> = strata(waves)
                    .into_iter()
                    .map(|(w, times)| (wave(w, &mut first_store), steps(w, w + 1), times))
                    .collect();
                let c_total = steps(1, waves - 1);
                let mut est = WaveSum::default();
                for (k, x) in est.fields().into_iter().enumerate() {
                    let v: Vec<(f64, f64, f64)> = samples
                        .iter()
                        .map(|&(mut s, c, wt)| (*s.fields()[k], c, wt))
                        .collect();
                    // Every wave's sums are ≥ 0, so are theirs.
                    *x = regression_sum(&v, c_total).max(0.0);
                }
                sum.add(&est, 1.0);
            }
        }
        sum.add(&wave(waves - 1, &mut first_store), 1.0);
    }
    let WaveSum {
        total,
        compute_s,
        memory_s,
        hbm,
        l2,
        writes,
    } = sum;
    // Dirty lines evicted by the reads: written back to HBM alongside the kernel's traffic.
    let (hbm, memory_s) = (hbm + writeback, memory_s + writeback / bw_h);
    // HBM carries every byte once; write-backs of the kernel's own stores can only start with
    // the first store.
    let hbm_floor = (hbm / bw_h).max(first_store + writes / bw_h);
    // CTAs of unequal length (causal attention): the busiest SM, not the average one, ends
    // the kernel. The waves above give every SM the average work (`compute_s`); the SMs that
    // receive long CTAs late run on alone (see `imbalance_makespan`). A compute-bound kernel
    // then lasts the makespan plus the last CTA's epilogue (the other SMs' fills and drains
    // hide under the tail); a memory-bound one keeps its memory time and adds the tail, whose
    // few SMs cannot use the bandwidth.
    let total = match p.steps {
        Steps::PerRow { .. } => {
            // Each CTA waits for its first tile; the SM's other resident CTAs cover that wait
            // only when they have steps left, which, with CTAs of unequal length, they often do
            // not: charge the round trip shared among the resident CTAs.
            // A fragment epilogue's stores hold the SM's load/store pipe
            // (`KernelPlan::epilogue_issue_s`), likewise covered by the other CTAs when they
            // have work ready.
            let fill_s = hold / f64::from(p.occupancy.max(1));
            let makespan = imbalance_makespan(p, hw.sms, t, fill_s);
            // The makespan's average per-SM fill time is already in the waves' total.
            let avg_fill = fill_s * p.ctas() as f64 / f64::from(hw.sms.max(1));
            let tail = (makespan - compute_s - avg_fill).max(0.0);
            let memory_share = if compute_s > 0.0 {
                (memory_s / compute_s).min(1.0)
            } else {
                1.0
            };
            // The last CTA finishes alone: its own fill and write-back.
            let last_fill = if p.epilogue_fill > 0.0 {
                (hw.miss_latency_s + 2.0 * p.epilogue_fill / bw_h).max(p.epilogue_issue_s)
            } else {
                0.0
            };
            let last = hw.miss_latency_s + last_fill + p.epilogue / bw_l + ack;
            (total + tail * memory_share).max(makespan + last)
        }
        Steps::Uniform(_) => total,
    };
    let seconds = hw.start_s(p.mapping.instr) + total.max(hbm_floor);
    let k = KernelEstimate {
        name: p.name.clone(),
        seconds,
        bound: Bound::classify(compute_s, memory_s, seconds),
        flops: p.useful_flops,
        hbm_bytes: hbm,
        l2_bytes: l2,
        ctas: p.ctas(),
        waves,
        occupancy: p.occupancy,
        compute_s,
        memory_s,
    };
    (k, writes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::mapping::{kernel_kinds, KernelKind};
    use crate::gpu::plan::plan_kernel;
    use crate::gpu::search::candidates;

    fn hw() -> GpuParams {
        GpuParams::new(&cascade_arch::preset("h100").unwrap().gpu.unwrap())
    }

    /// Every `stride`-th valid plan of the first kernel of `op` with more than
    /// [`EXACT_CHUNKS`] chunks.
    fn big_plans(op: &str, stride: usize) -> Vec<KernelPlan> {
        let op = GpuOp::parse(op).unwrap();
        let hw = hw();
        let kind = kernel_kinds(&op, 1)[0].1;
        candidates(&op, kind)
            .iter()
            .step_by(stride)
            .filter_map(|m| plan_kernel(&op, 0, m.split_k, m, &hw).ok())
            .filter(|p| {
                let chunks = p.chunks(u64::from(hw.sms));
                chunks > EXACT_CHUNKS && chunks.div_ceil(u64::from(p.occupancy)) > 2 + SAMPLED_WAVES
            })
            .collect()
    }

    /// The closed forms of large kernels (first and last waves exact, the waves between
    /// sampled or multiplied) against the sum over every wave.
    #[test]
    fn sampled_waves_match_every_wave() {
        let hw = hw();
        let mut worst: f64 = 0.0;
        let mut n = 0;
        for (op, stride) in [
            ("gemm m=40000 n=40000 k=1024", 37),
            ("gemm m=60000 n=17000 k=512 dtype=fp8", 41),
            ("bmm batch=256 m=1000 n=3000 k=512", 29),
            ("attention b=128 h=16 n=4096 d=128 causal=0 impl=fa3", 1),
            ("attention b=128 h=16 n=4096 d=64 causal=1 impl=fa2", 3),
            ("attention_unfused b=32 h=16 n=4096 d=64", 53),
            ("softmax rows=16000000 cols=1024", 1),
            ("copy bytes=32GiB", 1),
            ("decode_attention b=4096 hq=32 hkv=8 l=2048 d=128", 5),
        ] {
            for p in big_plans(op, stride) {
                let (fast, all) = (
                    kernel_estimate(&p, &hw),
                    kernel_estimate_with(&p, &hw, true, 0.0).0,
                );
                for (what, a, b) in [
                    ("seconds", fast.seconds, all.seconds),
                    ("hbm_bytes", fast.hbm_bytes, all.hbm_bytes),
                    ("l2_bytes", fast.l2_bytes, all.l2_bytes),
                    ("compute_s", fast.compute_s, all.compute_s),
                    ("memory_s", fast.memory_s, all.memory_s),
                ] {
                    let d = (a / b - 1.0).abs();
                    // 0.51% on a 64 × 96-tile GEMM of 40000² × 1024: under 0.6%.
                    assert!(
                        d < 6e-3,
                        "{op} {} {:?}: {what} {a} vs {b}",
                        p.name,
                        p.mapping
                    );
                    worst = worst.max(d);
                }
                assert_eq!(fast.bound, all.bound, "{op} {:?}", p.mapping);
                n += 1;
            }
        }
        assert!(n > 50, "only {n} large plans");
        eprintln!(
            "{n} large plans: closed form vs every wave, worst relative difference {worst:.2e}"
        );
    }

    /// The causal makespan extrapolated from a prefix of the grid against the whole grid
    /// dispatched CTA by CTA.
    #[test]
    fn makespan_extrapolation_is_close() {
        let hw = hw();
        let mut worst: f64 = 0.0;
        for (op, stride) in [
            ("attention b=16 h=16 n=4096 d=128 causal=1 impl=fa2", 7),
            ("attention b=4 h=8 n=16384 d=64 causal=1 impl=fa3", 3),
            (
                "attention b=1 h=2 n=65536 m=70000 d=128 causal=1 impl=fa3",
                3,
            ),
            ("attention b=1 h=1 n=300000 d=64 causal=1 impl=fa2", 11),
        ] {
            let op = GpuOp::parse(op).unwrap();
            for m in candidates(&op, KernelKind::FlashAttention)
                .iter()
                .step_by(stride)
            {
                let Ok(p) = plan_kernel(&op, 0, 1, m, &hw) else {
                    continue;
                };
                if p.ctas() <= 8192 {
                    continue;
                }
                let t = p.sm_step_s(u64::from(hw.sms));
                let fill = hw.miss_latency_s / f64::from(p.occupancy);
                let exact = makespan_bounded(&p, hw.sms, t, fill, u64::MAX);
                let approx = makespan_bounded(&p, hw.sms, t, fill, 4096);
                let d = (approx / exact - 1.0).abs();
                assert!(d < 5e-3, "{op} {m:?}: {approx} vs {exact}");
                worst = worst.max(d);
            }
        }
        eprintln!("makespan from a prefix vs every CTA: worst relative difference {worst:.2e}");
    }
}
