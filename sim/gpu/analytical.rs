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
//! mechanisms event by event; the two agree within 5% on [`super::SUITE`].
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
}

impl Bound {
    /// The one spelling of the bound, used by the text output, the JSON (serde) and the
    /// reports: `compute`, `memory` or `latency`.
    pub fn name(self) -> &'static str {
        match self {
            Bound::Compute => "compute",
            Bound::Memory => "memory",
            Bound::Latency => "latency",
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
    let hw = GpuParams::new(spec);
    let plans = plan_op(op, mapping, &hw)?;
    Ok(estimate_plans(op, &plans, &hw))
}

/// Predicts lowered kernels.
pub fn estimate_plans(op: &GpuOp, plans: &[KernelPlan], hw: &GpuParams) -> GpuEstimate {
    let kernels: Vec<KernelEstimate> = plans.iter().map(|p| kernel_estimate(p, hw)).collect();
    let seconds = kernels.iter().map(|k| k.seconds).sum();
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
pub fn imbalance_makespan(p: &KernelPlan, sms: u32, t: f64, fill_s: f64) -> f64 {
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
    let ctas = p.ctas();
    // A CTA's work in units of steps: its steps plus its exposed fill.
    let fill = if t > 0.0 { fill_s / t } else { 0.0 };
    let work = |i: u64| p.steps_of(i) as f64 + fill;
    let mut next = 0u64;
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
        // Finish the CTAs that are done (all with the least work left, up to rounding).
        let before = r.len();
        r.retain(|&x| x > 1e-9);
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

fn kernel_estimate(p: &KernelPlan, hw: &GpuParams) -> KernelEstimate {
    let sms = u64::from(hw.sms);
    let chunks = p.chunks(sms);
    let occ = u64::from(p.occupancy).min(chunks).max(1);
    let waves = chunks.div_ceil(occ);
    let t = p.sm_step_s(sms);
    let (bw_h, bw_l) = (hw.hbm_bw, hw.l2_bw);
    let xfer = |hbm: f64, l2: f64| (hbm / bw_h).max(l2 / bw_l);
    let stages = u64::from(p.stages.max(1));
    let ack = hw.l2_latency_s;
    // With two or more resident CTAs per SM, one CTA's fill and drain overlap the others'
    // work: only the kernel's first fill and last drain are exposed (plus what the other
    // CTAs' remaining work cannot cover).
    let hide = occ >= 2;
    // A fragment epilogue holds its SM while its stores issue (`KernelPlan::epilogue_issue_s`)
    // and until the partial sectors' fill round trip returns; the two overlap.
    let hold = hw.miss_latency_s.max(p.epilogue_issue_s);
    let (mut total, mut compute_s, mut memory_s, mut hbm, mut l2) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut first_store, mut writes) = (0.0, 0.0);
    for w in 0..waves {
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
        // Epilogue fills (fragment stores): HBM reads that hold their SM.
        let mut fill_w = 0.0;
        for j in j0..j1 {
            let ch = p.chunk_totals(j, sms);
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
            }
            epi_last = e / bw_l;
            tail_last = (e + stores / kf) / bw_l;
        }
        let lat = if miss {
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
        let mut lc = lat + first + chain + tail_last + ack;
        if fill_w > 0.0 {
            lc += (hw.miss_latency_s + 2.0 * fill_w / c / bw_h).max(p.epilogue_issue_s);
        }
        total += a.max(b).max(lc);
        compute_s += busy;
        memory_s += xfer(rd_h + st + epi, rd_l + st + epi);
        if first_wave {
            // The first store leaves after the first step (per-step stores) or the first CTA.
            let steps_to_store = if st > 0.0 {
                1.0
            } else {
                (k_sum as f64 / c).max(1.0)
            };
            first_store = lat + first + steps_to_store * t;
        }
        writes += st + epi;
        hbm += rd_h + st + epi;
        l2 += rd_l + st + epi;
    }
    // HBM carries every byte once; write-backs can only start with the first store.
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
    let seconds = hw.launch_s + total.max(hbm_floor);
    KernelEstimate {
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
    }
}
