//! Kernel plans: an op and its mapping lowered to what both timing models consume.
//!
//! A [`KernelPlan`] is a grid of identical-shape CTAs in dispatch order. Each CTA loads a
//! *resident* tile once (e.g. the Q tile of attention), then runs `steps` pipeline steps; each
//! step loads one tile of every operand [`Stream`] (through L2, from HBM on a miss), does the
//! step's arithmetic on the SM, and optionally stores bytes; after the last step the CTA writes
//! its epilogue (the output tile). Operand tiles carry a [`Key`] saying which CTAs share them, so
//! the models can count the bytes that concurrently running CTAs fetch from HBM only once.
//!
//! Byte counts are averages over valid data (a partial edge tile moves only its valid bytes, so
//! totals equal the compulsory traffic when every tile is fetched once); arithmetic is charged
//! for full tiles (tile quantization: a partial tile costs a full one).

use super::error::GpuError;
use super::hw::SMEM_RESERVED_PER_CTA;
use super::hw::{GpuParams, MAX_REGS_PER_THREAD, MAX_THREADS_PER_CTA, REG_ALLOC_PER_THREAD};
use super::mapping::{kernel_kinds, Epilogue, GpuMapping, InstrClass, KernelKind};
use super::op::{AttnImpl, Dtype, GpuOp, RowOp};

/// Registers per thread besides accumulators: addresses, indices, loop state, operand
/// fragments. A round modelling figure (not fitted); only occupancy and the 255-register
/// limit depend on it.
pub const BASE_REGS_PER_THREAD: f64 = 32.0;

/// FP32-pipe operations per softmax element in a standalone softmax kernel: convert, max,
/// scaled subtract (FFMA), sum, normalize (multiply), convert back — one more for the
/// exponential's MUFU instruction, counted separately.
pub const SOFTMAX_FP32_OPS: f64 = 6.0;

/// Bytes one `ldmatrix.x4` moves from shared memory to a warp's registers (four 8 × 8 16-bit
/// matrices).
const LDMATRIX_X4_BYTES: f64 = 512.0;

/// Warp schedulers (sub-partitions) per SM on Hopper (NVIDIA H100 whitepaper: four
/// processing blocks per SM, each with one warp scheduler and one tensor core).
const SUB_PARTITIONS_PER_SM: f64 = 4.0;

/// FP32-pipe operations per score element inside FlashAttention: max, scaled subtract (FFMA),
/// row sum, and packing P to 16 bits; the exponential is one MUFU operation on top. The
/// per-step rescale of the output accumulator adds one multiply per output element.
pub const FLASH_FP32_OPS_PER_SCORE: f64 = 4.0;

/// Which CTAs share an operand tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// CTAs of the same group and tile row (GEMM A operand).
    Row,
    /// CTAs of the same group and tile column (GEMM B operand).
    Col,
    /// All CTAs of the same group (attention K and V of one head).
    Group,
    /// No other CTA.
    Cta,
}

/// An operand loaded every step.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    /// Sharing.
    pub key: Key,
    /// Bytes per step per CTA (valid-data average).
    pub bytes: f64,
}

/// CTA dispatch order: groups (batch × split) outermost; within a group, tiles are swept in
/// bands of `band` tile rows, column-major inside a band (CUTLASS threadblock swizzle / Triton
/// `GROUP_SIZE_M`). `band = 1` is row-major order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Groups.
    pub groups: u64,
    /// Tile rows per group.
    pub rows: u64,
    /// Tile columns per group.
    pub cols: u64,
    /// Swizzle band height (1 ≤ band ≤ rows).
    pub band: u64,
}

impl Order {
    /// CTAs in the grid.
    pub fn ctas(&self) -> u64 {
        self.groups * self.per_group()
    }

    fn per_group(&self) -> u64 {
        self.rows * self.cols
    }

    fn band_rows(&self, b: u64) -> u64 {
        self.band.min(self.rows - b * self.band)
    }

    fn band_start(&self, b: u64) -> u64 {
        b * self.band * self.cols
    }

    fn band_of(&self, w: u64) -> u64 {
        w / (self.band * self.cols)
    }

    /// (group, tile row, tile column) of the `i`-th CTA in dispatch order.
    pub fn coords(&self, i: u64) -> (u64, u64, u64) {
        let p = self.per_group();
        let (g, w) = (i / p, i % p);
        let b = self.band_of(w);
        let h = self.band_rows(b);
        let j = w - self.band_start(b);
        (g, b * self.band + j % h, j / h)
    }

    /// Distinct tile rows among in-group positions `[w0, w1)`.
    fn rows_in_group(&self, w0: u64, w1: u64) -> u64 {
        let (b0, b1) = (self.band_of(w0), self.band_of(w1 - 1));
        if b0 == b1 {
            return self.band_rows(b0).min(w1 - w0);
        }
        let first = self.band_rows(b0).min(self.band_start(b0 + 1) - w0);
        let last = self.band_rows(b1).min(w1 - self.band_start(b1));
        first + (b1 - b0 - 1) * self.band + last
    }

    /// Distinct tile columns among in-group positions `[w0, w1)`.
    fn cols_in_group(&self, w0: u64, w1: u64) -> u64 {
        let (b0, b1) = (self.band_of(w0), self.band_of(w1 - 1));
        let col = |b: u64, w: u64| (w - self.band_start(b)) / self.band_rows(b);
        if b0 == b1 {
            return col(b0, w1 - 1) - col(b0, w0) + 1;
        }
        if b1 - b0 >= 2 {
            return self.cols;
        }
        // [c0, cols-1] ∪ [0, c1]
        let (c0, c1) = (col(b0, w0), col(b1, w1 - 1));
        if c1 + 1 >= c0 {
            self.cols
        } else {
            (self.cols - c0) + (c1 + 1)
        }
    }

    fn distinct(&self, a: u64, b: u64, f: impl Fn(u64, u64) -> u64, full: u64) -> u64 {
        if a >= b {
            return 0;
        }
        let p = self.per_group();
        let (g0, g1) = (a / p, (b - 1) / p);
        if g0 == g1 {
            f(a - g0 * p, b - g0 * p)
        } else {
            f(a - g0 * p, p) + (g1 - g0 - 1) * full + f(0, b - g1 * p)
        }
    }

    /// Distinct (group, tile row) pairs among CTAs `[a, b)`.
    pub fn distinct_rows(&self, a: u64, b: u64) -> u64 {
        self.distinct(a, b, |x, y| self.rows_in_group(x, y), self.rows)
    }

    /// Distinct (group, tile column) pairs among CTAs `[a, b)`.
    pub fn distinct_cols(&self, a: u64, b: u64) -> u64 {
        self.distinct(a, b, |x, y| self.cols_in_group(x, y), self.cols)
    }

    /// Distinct groups among CTAs `[a, b)`.
    pub fn distinct_groups(&self, a: u64, b: u64) -> u64 {
        if a >= b {
            0
        } else {
            (b - 1) / self.per_group() - a / self.per_group() + 1
        }
    }
}

/// Steps per CTA.
#[derive(Debug, Clone, PartialEq)]
pub enum Steps {
    /// Every CTA runs the same number of steps.
    Uniform(u64),
    /// Steps by tile row (`Order::cols == 1`): causal attention, whose query blocks see
    /// different numbers of key blocks ([`Causal`], in closed form).
    PerRow(Causal),
}

/// The steps of causal attention's query blocks, in closed form (no table: a head may have
/// millions of query blocks). Query block `qb` (rows of `br` queries) sees the keys
/// `j ≤ i + (m − n)` of its last query `i` (bottom-right aligned), in blocks of `bc`:
/// `⌈clamp((qb + 1)·br + m − n, 0, m) / bc⌉` steps. Tile row `r` holds query block
/// `rows − 1 − r` (heaviest first, FlashAttention-3's tile scheduler order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Causal {
    /// Query blocks (tile rows) per head.
    pub rows: u64,
    /// Queries per block.
    pub br: u64,
    /// Keys per step.
    pub bc: u64,
    /// Queries.
    pub n: u64,
    /// Keys.
    pub m: u64,
}

impl Causal {
    /// `br·qb + c` with `c = br + m − n`: the keys query block `qb` sees before clamping.
    fn offset(&self) -> i128 {
        self.br as i128 + self.m as i128 - self.n as i128
    }

    /// Steps of query block `qb`.
    fn steps_of_block(&self, qb: u64) -> u64 {
        let keys = (self.br as i128 * qb as i128 + self.offset()).clamp(0, self.m as i128);
        (keys as u64).div_ceil(self.bc.max(1))
    }

    /// Steps of tile row `r`.
    pub fn steps_of_row(&self, r: u64) -> u64 {
        self.steps_of_block(self.rows - 1 - r)
    }

    /// Sum of the steps of query blocks `[q0, q1)`.
    fn block_sum(&self, q0: u64, q1: u64) -> u128 {
        if q0 >= q1 {
            return 0;
        }
        let (br, c, m, bc) = (
            self.br.max(1) as i128,
            self.offset(),
            self.m as i128,
            self.bc.max(1) as i128,
        );
        // Blocks below `lo` see no key; from `hi` on, all m keys.
        let lo = (-c).div_euclid(br) + 1; // smallest qb with br·qb + c > 0
        let hi = (m - c + br - 1).div_euclid(br); // smallest qb with br·qb + c ≥ m
        let (q0, q1) = (q0 as i128, q1 as i128);
        let (a, b) = (q0.max(lo).min(q1), q1.min(hi).max(q0));
        let mut sum: u128 = 0;
        if b > a {
            // Σ_{qb=a}^{b-1} ⌊(br·qb + c + bc − 1) / bc⌋, every term's numerator positive.
            let base = br * a + c + bc - 1;
            sum += floor_sum((b - a) as u128, bc as u128, br as u128, base as u128);
        }
        let full = (q1 - hi.max(q0)).max(0) as u128;
        sum + full * (self.m.div_ceil(self.bc.max(1))) as u128
    }

    /// Sum of the steps of tile rows `[0, r)` (`r ≤ rows`).
    pub fn prefix(&self, r: u64) -> u128 {
        self.block_sum(self.rows - r, self.rows)
    }
}

/// `Σ_{i=0}^{n−1} ⌊(a·i + b) / m⌋` in O(log) steps (the classic floor-sum recursion).
pub fn floor_sum(n: u128, m: u128, a: u128, b: u128) -> u128 {
    let (mut n, mut m, mut a, mut b) = (n, m, a, b);
    let mut ans = 0u128;
    loop {
        if a >= m {
            ans += n * (n.saturating_sub(1)) / 2 * (a / m);
            a %= m;
        }
        if b >= m {
            ans += n * (b / m);
            b %= m;
        }
        let y_max = a * n + b;
        if y_max < m {
            return ans;
        }
        n = y_max / m;
        b = y_max % m;
        std::mem::swap(&mut m, &mut a);
    }
}

/// One kernel, lowered.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelPlan {
    /// Display name.
    pub name: String,
    /// The kernel's mapping.
    pub mapping: GpuMapping,
    /// Grid and dispatch order.
    pub order: Order,
    /// Steps per CTA.
    pub steps: Steps,
    /// Resident CTAs per SM (occupancy).
    pub occupancy: u32,
    /// Tiles in flight per CTA.
    pub stages: u32,
    /// SM seconds of one step of one CTA (all of the SM's tensor cores / CUDA cores).
    pub step_s: f64,
    /// Executed (tile-quantized) FLOPs of one step.
    pub flops_per_step: f64,
    /// Useful FLOPs of the whole kernel.
    pub useful_flops: f64,
    /// Bytes each CTA loads before its first step (not shared).
    pub resident: f64,
    /// Operands loaded every step.
    pub streams: Vec<Stream>,
    /// Bytes each CTA stores per step.
    pub write_per_step: f64,
    /// Bytes each CTA stores after its last step.
    pub epilogue: f64,
    /// Bytes each CTA's epilogue first fetches from HBM, holding its SM until they arrive
    /// (0 unless the mapping stores accumulator fragments: [`Epilogue::Fragments`]).
    ///
    /// Why: a fragment store writes 16 bytes of each of 8 rows, half of a 32-byte sector, and
    /// the L2 merges a partial sector only after fetching it from HBM, so the output passes
    /// HBM twice (fill, then write-back); the stores back up into the SM's load/store pipe,
    /// which the `mma.sync` main loops of the SM's other CTAs also need (`ldmatrix`,
    /// `cp.async`), so the epilogue does not overlap them. Evidence (diagnostic cases, same
    /// H100): our GEMM with a single K step took 6.1 µs for 1024² (2 MB of C) but 11.7 µs for
    /// 2048² (8 MB); unfused attention's S = QKᵀ kernel, timed alone, wrote its fp32 scores at
    /// 1.0 TB/s (139 µs at n = 1024, 2063 µs at n = 4096) — a third of the copy bandwidth;
    /// and our GEMMs and FlashAttention-2 kernels ran a constant ~8 µs longer than the main
    /// loop alone explains.
    pub epilogue_fill: f64,
    /// Seconds each CTA's epilogue holds its SM's load/store pipe issuing its stores (0
    /// unless the mapping stores accumulator fragments: [`Epilogue::Fragments`]).
    ///
    /// Why: a warp's fragment store writes two adjacent elements per lane, four lanes per
    /// row, so it touches 8 rows — 8 cache lines — and the L1 processes one line per clock
    /// (Nsight Compute's "wavefronts"): a tile of `e` elements takes `e / 8` clocks. Evidence
    /// (diagnostic `store_tile_bf16`, same H100): one CTA storing a 128 × 128 bf16 tile in our
    /// GEMM's fragment pattern took 2.47 µs against 0.78 µs for an empty CTA — 1.7 µs for the
    /// 2048 lines, with the tile already in L2 (no fill), where the fill model alone gave
    /// ~0.35 µs; one-step GEMMs of ours measured ~1.5 µs above the model for the same reason.
    pub epilogue_issue_s: f64,
    /// The kernel's shared operands fit in L2 (each tile then comes from HBM once per kernel;
    /// otherwise once per set of concurrently resident CTAs).
    pub persist: bool,
    /// Shared memory per CTA, bytes.
    pub smem: f64,
    /// Registers per thread.
    pub regs_per_thread: u32,
    /// Bytes each lane moves per global access (16 unless an operand's alignment forbids
    /// vector loads): L2 serves the kernel at [`GpuParams::l2_bw_for`] this width.
    pub vector: u32,
    /// Latency each step adds to its load's round trip without holding the SM: the kernel's
    /// own dependency chain between one load and the next (0 for the pipelined kernels the
    /// models derive; measured for the ATen row kernels, [`super::library::TorchNorm`]).
    pub step_latency_s: f64,
    /// The CTAs resident on an SM start together and run the same steps in the same phase
    /// (FlashAttention-2's grids of equal row blocks): one CTA's wait for its first tiles and
    /// its epilogue fall at the same time as the others', which cannot cover them. FA2's
    /// causal grids too: two CTAs per SM, each of a few steps, leave the other too little
    /// work to cover a first-tile wait or an epilogue (short causal prefill was 21–36% fast
    /// with the staggered overlap: `b32h16n512d64c`, `b64h16n256d64c`, `b48h16n384d64c`; −7,
    /// −3, −19% in lockstep).
    pub lockstep: bool,
    /// A row kernel whose iterations' round trips depend on how many rows share the SM
    /// ([`RowChain`]: torch's norms); `None` for the other kernels.
    pub row_chain: Option<RowChain>,
}

/// The per-iteration latency of a row kernel that has one load in flight per row (torch's
/// norms: the loop is not pipelined), as a function of the rows resident on an SM: what the
/// other rows' traffic adds to the HBM round trip ([`GpuParams::loaded_round_trip_s`]), the
/// other rows' arithmetic at the issue slots, and the second pass's re-reads from L2 once the
/// resident rows no longer fit in L1. Added to [`KernelPlan::step_latency_s`] (the lone row's)
/// per wave, with that wave's residents: a kernel's last, partial wave runs at a lighter load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowChain {
    /// A lone iteration beyond the HBM miss latency (its arithmetic and the kernel's chain), s.
    pub rest_s: f64,
    /// The row's fixed latency beyond its iterations (layer norm's Welford combines), s.
    pub fixed_s: f64,
    /// Iterations per row.
    pub steps: f64,
    /// HBM bytes an iteration loads; it stores as many.
    pub bytes: f64,
    /// One iteration's instructions at the SM's issue rate, s.
    pub issue_s: f64,
    /// Bytes of one row.
    pub row_bytes: f64,
    /// The SM's L1 data capacity beside this kernel's shared memory, bytes.
    pub l1_bytes: f64,
}

impl RowChain {
    /// Seconds each iteration adds to the lone row's round trip with `residents` rows per SM
    /// (the analytical model takes a wave's, the cycle-level one the SM's chunks when the load
    /// issues).
    ///
    /// The loaded round trip: each row has a load in flight only while it waits for one, the
    /// `steps · h` of its chain `steps · (h + c) + fixed` (`h` the loaded round trip, `c` the
    /// rest of an iteration), so the loads in flight per SM are the `x` with
    /// `x = r · steps·h(x) / (steps·(h(x) + c) + fixed)`. The right side lies in `[0, r)`, so a
    /// root lies in `[0, r]`, and bisection finds one. The right side grows with `x` (a longer
    /// round trip is a larger share of the chain): for bf16 rows on the H200 its slope stays
    /// below about 0.4, so the root is unique; for fp32 rows on a slower HBM it can pass 1, and
    /// then bisection returns one of several.
    ///
    /// The other rows' arithmetic: their loads queue at HBM together and return together, so
    /// an iteration waits for the `r − 1` others' at the issue slots (`issue_s` each). An
    /// assumption (the bursts are not measured), chosen over the steady interleaving, which
    /// adds almost nothing at the issue load these kernels offer (a third of the slots), because
    /// layer norm's gap to RMS norm grows under load: about 2 µs a row alone at 4,096 columns
    /// (`rowsweep.csv`), 2.9 µs with 16 rows per SM (its 14 instructions per element against
    /// RMS norm's 3). Only the first pass's instructions are counted.
    ///
    /// L2 re-reads: the second pass re-reads the row it has just loaded; the `r` rows an SM
    /// holds fit in L1 when `r · row_bytes ≤ l1_bytes`, else each iteration re-reads from L2
    /// (one hit's round trip, `l2_latency_s`). (`l1_bytes` leaves only the reserved 1 KB per
    /// CTA to shared memory; Nsight Compute's limits point to a 32 KB carveout, 224 KiB of L1:
    /// docs/gpu-h200-notes.md, a known inaccuracy left as frozen for heldout10.)
    pub fn extra_s(&self, hw: &GpuParams, residents: f64) -> f64 {
        let r = residents.max(0.0);
        let others = (r - 1.0).max(0.0) * self.issue_s;
        let reread = if r * self.row_bytes > self.l1_bytes {
            hw.l2_latency_s
        } else {
            0.0
        };
        let c = self.rest_s + others + reread;
        let miss = hw.miss_latency_s;
        let loaded = |x: f64| hw.loaded_round_trip_s(x, 2.0 * self.bytes);
        let in_flight = |x: f64| {
            let h = miss + loaded(x);
            r * self.steps * h / (self.steps * (h + c) + self.fixed_s)
        };
        let (mut lo, mut hi) = (0.0, r);
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if in_flight(mid) > mid {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        loaded(0.5 * (lo + hi)) + others + reread
    }
}

/// Per-chunk totals (a chunk = up to one CTA per SM, consecutive in dispatch order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkTotals {
    /// CTAs in the chunk.
    pub ctas: u64,
    /// Sum of the CTAs' steps.
    pub steps: u64,
    /// All bytes between SMs and L2 (loads and stores).
    pub l2_bytes: f64,
    /// Bytes loaded from HBM (L2 misses).
    pub hbm_reads: f64,
    /// Bytes stored (per-step and epilogue), all eventually written to HBM.
    pub writes: f64,
}

fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b.max(1))
}

impl KernelPlan {
    /// CTAs in the grid.
    pub fn ctas(&self) -> u64 {
        self.order.ctas()
    }

    /// Steps of CTA `i`.
    pub fn steps_of(&self, i: u64) -> u64 {
        match &self.steps {
            Steps::Uniform(k) => *k,
            Steps::PerRow(c) => c.steps_of_row(self.order.coords(i).1),
        }
    }

    /// Sum of steps over CTAs `[a, b)`.
    pub fn steps_sum(&self, a: u64, b: u64) -> u64 {
        if a >= b {
            return 0;
        }
        match &self.steps {
            Steps::Uniform(k) => k * (b - a),
            Steps::PerRow(c) => {
                let p = self.order.rows;
                let total = c.prefix(p);
                let upto = |i: u64| u128::from(i / p) * total + c.prefix(i % p);
                u64::try_from(upto(b) - upto(a)).unwrap_or(u64::MAX)
            }
        }
    }

    /// Step-weighted count of distinct tiles of a stream with `key` among CTAs `[a, b)`: each
    /// distinct tile counts the steps of the first CTA (in dispatch order) that loads it.
    pub fn distinct_weight(&self, key: Key, a: u64, b: u64) -> f64 {
        if a >= b {
            return 0.0;
        }
        let o = &self.order;
        match (key, &self.steps) {
            (Key::Cta, _) => self.steps_sum(a, b) as f64,
            (Key::Row, Steps::Uniform(k)) => (o.distinct_rows(a, b) * k) as f64,
            (Key::Col, Steps::Uniform(k)) => (o.distinct_cols(a, b) * k) as f64,
            (Key::Group, Steps::Uniform(k)) => (o.distinct_groups(a, b) * k) as f64,
            (Key::Group, Steps::PerRow(c)) => {
                let extra = o.distinct_groups(a, b) - 1;
                self.steps_of(a) as f64 + extra as f64 * c.steps_of_row(0) as f64
            }
            (Key::Row | Key::Col, Steps::PerRow(_)) => {
                unreachable!("per-row steps are only built with group- or CTA-keyed streams")
            }
        }
    }

    /// Bytes of shared operand tiles that CTAs `[a, b)` load, counting each distinct tile once.
    pub fn distinct_bytes(&self, a: u64, b: u64) -> f64 {
        self.streams
            .iter()
            .map(|s| s.bytes * self.distinct_weight(s.key, a, b))
            .sum()
    }

    /// Chunk `j`'s CTA range: chunks hold `sms` consecutive CTAs (the last one fewer).
    pub fn chunk_range(&self, j: u64, sms: u64) -> (u64, u64) {
        (j * sms, ((j + 1) * sms).min(self.ctas()))
    }

    /// Number of chunks.
    pub fn chunks(&self, sms: u64) -> u64 {
        ceil_div(self.ctas(), sms)
    }

    /// Whether every CTA has its SM to itself: the grid has at most one CTA per SM (the case
    /// [`super::hw::MMA_SYNC_LONE_STEP_FACTOR`] was measured on).
    pub fn lone_ctas(&self, sms: u64) -> bool {
        self.ctas() <= sms
    }

    /// Seconds of one step on the SM as the kernel runs: [`Self::step_s`], or for `mma.sync`
    /// CTAs alone on their SM that step's exposed latencies too
    /// ([`super::hw::MMA_SYNC_LONE_STEP_FACTOR`]). The analytical model and the cycle-level
    /// simulation both use it.
    pub fn sm_step_s(&self, sms: u64) -> f64 {
        if self.mapping.instr == InstrClass::MmaSync && self.lone_ctas(sms) {
            self.step_s * super::hw::MMA_SYNC_LONE_STEP_FACTOR
        } else {
            self.step_s
        }
    }

    /// Totals of chunk `j`, with HBM reads from the closed-form count of distinct tiles: a
    /// tile misses L2 unless a CTA of the `occupancy − 1` previous chunks (still resident when
    /// chunk `j` starts) or an earlier CTA of chunk `j` loaded it — or, when the kernel's
    /// shared operands fit in L2, unless any earlier CTA loaded it.
    pub fn chunk_totals(&self, j: u64, sms: u64) -> ChunkTotals {
        let (a, b) = self.chunk_range(j, sms);
        let n = b - a;
        let steps = self.steps_sum(a, b);
        let w0 = if self.persist {
            0
        } else {
            let back = u64::from(self.occupancy.max(1)) - 1;
            self.chunk_range(j.saturating_sub(back), sms).0
        };
        let shared_misses = self.distinct_bytes(w0, b) - self.distinct_bytes(w0, a);
        let all_stream: f64 = self.streams.iter().map(|s| s.bytes).sum::<f64>() * steps as f64;
        let resident = self.resident * n as f64;
        let writes = self.write_per_step * steps as f64 + self.epilogue * n as f64;
        ChunkTotals {
            ctas: n,
            steps,
            l2_bytes: all_stream + resident + writes,
            hbm_reads: shared_misses + resident,
            writes,
        }
    }

    /// Share of the kernel's HBM bytes that are reads, counting `writeback` bytes of dirty
    /// lines it evicts as writes: from its first, middle and last chunks (each chunk's HBM
    /// reads, fragment-epilogue fills and stores), which stand for the others. 1 when the
    /// kernel moves nothing.
    pub fn hbm_read_share(&self, sms: u64, writeback: f64) -> f64 {
        let chunks = self.chunks(sms).max(1);
        let mut js = [0, chunks / 2, chunks - 1];
        js.sort_unstable();
        let (mut reads, mut writes, mut n) = (0.0, 0.0, 0.0);
        for (i, &j) in js.iter().enumerate() {
            if i > 0 && js[i - 1] == j {
                continue;
            }
            let ch = self.chunk_totals(j, sms);
            reads += ch.hbm_reads + self.epilogue_fill * ch.ctas as f64;
            writes += ch.writes;
            n += 1.0;
        }
        let scale = chunks as f64 / n;
        let (reads, writes) = (reads * scale, writes * scale + writeback.max(0.0));
        if reads + writes > 0.0 {
            reads / (reads + writes)
        } else {
            1.0
        }
    }

    /// Total bytes of the shared operands (each distinct tile once).
    pub fn shared_footprint(&self) -> f64 {
        self.streams
            .iter()
            .filter(|s| s.key != Key::Cta)
            .map(|s| s.bytes * self.distinct_weight(s.key, 0, self.ctas()))
            .sum()
    }
}

struct Ctx<'a> {
    name: &'static str,
    map: &'a GpuMapping,
    hw: &'a GpuParams,
}

impl Ctx<'_> {
    fn err(&self, field: &'static str, message: impl Into<String>) -> GpuError {
        GpuError::Mapping {
            kernel: self.name.to_string(),
            field,
            message: message.into(),
        }
    }

    fn common(&self, kind: KernelKind) -> Result<(), GpuError> {
        let m = self.map;
        if m.kernel != kind {
            return Err(self.err("kernel", format!("expected {kind:?}, got {:?}", m.kernel)));
        }
        for (field, v) in [
            ("cta_tile_m", m.cta_tile_m),
            ("cta_tile_n", m.cta_tile_n),
            ("cta_tile_k", m.cta_tile_k),
            ("stages", m.stages),
            ("warps", m.warps),
            ("split_k", m.split_k),
            ("swizzle", m.swizzle),
        ] {
            if v == 0 {
                return Err(self.err(field, "must be > 0"));
            }
        }
        if m.threads() > MAX_THREADS_PER_CTA {
            return Err(self.err(
                "warps",
                format!(
                    "{} threads exceed {MAX_THREADS_PER_CTA} per CTA",
                    m.threads()
                ),
            ));
        }
        Ok(())
    }

    /// Checks the instruction class against the dtype and the tile shape.
    fn instr(&self, dtype: Dtype, check_k: bool) -> Result<(), GpuError> {
        let m = self.map;
        match m.instr {
            InstrClass::CudaCore => Ok(()),
            InstrClass::MmaSync | InstrClass::Wgmma => {
                if !dtype.on_tensor_cores() {
                    return Err(self.err(
                        "instr",
                        format!("{} needs a tensor-core dtype, got fp32", m.instr.name()),
                    ));
                }
                let g = m.instr.m_granule();
                if !m.cta_tile_m.is_multiple_of(g) {
                    return Err(self.err(
                        "cta_tile_m",
                        format!(
                            "{} needs a multiple of {g}, got {}",
                            m.instr.name(),
                            m.cta_tile_m
                        ),
                    ));
                }
                if !m.cta_tile_n.is_multiple_of(8) {
                    return Err(self.err(
                        "cta_tile_n",
                        format!(
                            "{} needs a multiple of 8, got {}",
                            m.instr.name(),
                            m.cta_tile_n
                        ),
                    ));
                }
                if m.instr == InstrClass::Wgmma && !m.warps.is_multiple_of(4) {
                    return Err(self.err(
                        "warps",
                        format!(
                            "wgmma needs whole warpgroups (multiples of 4), got {}",
                            m.warps
                        ),
                    ));
                }
                // One MMA instruction covers 32 bytes of K (k16 for 16-bit types).
                let kb = f64::from(m.cta_tile_k) * dtype.bytes();
                if check_k && kb % 32.0 != 0.0 {
                    return Err(self.err(
                        "cta_tile_k",
                        format!(
                            "{} needs K tiles of a multiple of 32 bytes, got {} × {} bytes",
                            m.instr.name(),
                            m.cta_tile_k,
                            dtype.bytes()
                        ),
                    ));
                }
                Ok(())
            }
        }
    }

    /// Matrix FLOP per second one SM sustains with the mapping's instruction class.
    fn matrix_rate(&self, dtype: Dtype) -> Result<f64, GpuError> {
        let per_clk = match self.map.instr {
            InstrClass::CudaCore => self.hw.cuda_core_flops_per_clk(),
            _ => self
                .hw
                .tensor_flops_per_clk(dtype)
                .ok_or_else(|| GpuError::MissingRate(dtype.spec_key().to_string()))?,
        };
        if per_clk <= 0.0 {
            return Err(GpuError::MissingRate(dtype.spec_key().to_string()));
        }
        Ok(per_clk * self.hw.efficiency(self.map.instr) * self.hw.clock_hz)
    }

    /// Resident CTAs per SM, limited by shared memory, registers, threads and the block limit.
    fn occupancy(&self, smem: f64, acc_regs: f64) -> Result<(u32, u32), GpuError> {
        let hw = self.hw;
        let threads = self.map.threads();
        if smem > hw.smem_per_block_max {
            return Err(self.err(
                "stages",
                format!(
                    "{smem} bytes of shared memory exceed the {} per block",
                    hw.smem_per_block_max
                ),
            ));
        }
        let raw = (acc_regs / f64::from(threads) + BASE_REGS_PER_THREAD).ceil() as u32;
        let regs = raw.div_ceil(REG_ALLOC_PER_THREAD) * REG_ALLOC_PER_THREAD;
        if raw > MAX_REGS_PER_THREAD {
            return Err(self.err(
                "warps",
                format!("{raw} registers per thread exceed {MAX_REGS_PER_THREAD} (more warps or a smaller tile)"),
            ));
        }
        let by_smem = (hw.smem_per_sm / (smem + SMEM_RESERVED_PER_CTA)).floor() as u32;
        let by_regs = (hw.regs_per_sm / f64::from(regs * threads)).floor() as u32;
        let by_threads = hw.max_threads_per_sm / threads;
        let occ = hw.max_ctas_per_sm.min(by_smem).min(by_regs).min(by_threads);
        if occ == 0 {
            return Err(self.err("warps", "not even one CTA fits on an SM"));
        }
        Ok((occ, regs))
    }
}

/// Seconds a CTA's epilogue of `elems` elements holds the load/store pipe under `map` (see
/// [`KernelPlan::epilogue_issue_s`]).
fn issue(map: &GpuMapping, elems: f64, hw: &GpuParams) -> f64 {
    match map.epilogue {
        Epilogue::Fragments => elems / 8.0 / hw.clock_hz,
        Epilogue::Staged => 0.0,
    }
}

/// HBM fill bytes of an epilogue of `bytes` under `map` (see [`KernelPlan::epilogue_fill`]).
fn fill(map: &GpuMapping, bytes: f64) -> f64 {
    match map.epilogue {
        Epilogue::Fragments => bytes,
        Epilogue::Staged => 0.0,
    }
}

/// Warp grid (warp rows, warp columns) of an `mma.sync` GEMM tile: the factorization of
/// `warps` into `wm × wn` whose warp tiles load the fewest fragment bytes per K step
/// (`wn·tm + wm·tn`: the most square warp tiles, as CUTLASS's default warp shapes; for the
/// suite's 128 × 128 tile with 8 warps this is its 2 × 4); ties go to more warp rows.
pub fn warp_grid(warps: u32, tm: u32, tn: u32) -> (u32, u32) {
    let warps = warps.max(1);
    (1..=warps)
        .filter(|wm| warps.is_multiple_of(*wm))
        .map(|wm| (wm, warps / wm))
        .min_by_key(|&(wm, wn)| {
            (
                u64::from(wn) * u64::from(tm) + u64::from(wm) * u64::from(tn),
                u32::MAX - wm,
            )
        })
        .unwrap_or((1, 1))
}

/// Shared-memory bytes one K step of an `mma.sync` GEMM CTA moves: every warp loads the A
/// and B fragments of its own warp tile with `ldmatrix` (A rows are re-read by each warp column
/// and B columns by each warp row), and the `cp.async` fill stores the step's A and B tiles.
///
/// Why it is modelled: `mma.sync` takes its operands from registers, so the tiles pass the
/// SM's 128 B/clk shared memory once per warp that uses them; the measured `ours_mma` GEMMs
/// (128 × 128 × 32 tiles, 8 warps: 64 KB per step, 512 clocks, against 394 clocks of
/// `mma.sync` arithmetic) ran at 220–262 TFLOP/s, 2.3× slower than the arithmetic alone
/// allows, and the same per-warp traffic accounts for the measured `ours_fa2` kernels.
pub fn mma_sync_gemm_smem_bytes(map: &GpuMapping, elem_bytes: f64) -> f64 {
    let (tm, tn, tk) = (
        f64::from(map.cta_tile_m),
        f64::from(map.cta_tile_n),
        f64::from(map.cta_tile_k),
    );
    let (wm, wn) = warp_grid(map.warps, map.cta_tile_m, map.cta_tile_n);
    let fragments = tk * (f64::from(wn) * tm + f64::from(wm) * tn);
    let fill = (tm + tn) * tk;
    (fragments + fill) * elem_bytes
}

#[allow(clippy::too_many_arguments)]
fn gemm(
    cx: &Ctx,
    batch: u64,
    m: u64,
    n: u64,
    k: u64,
    dtype: Dtype,
    out_bytes: f64,
    vector: u32,
) -> Result<KernelPlan, GpuError> {
    cx.common(KernelKind::Gemm)?;
    cx.instr(dtype, true)?;
    let map = cx.map;
    let e = dtype.bytes();
    let (tm, tn, tk) = (
        u64::from(map.cta_tile_m),
        u64::from(map.cta_tile_n),
        u64::from(map.cta_tile_k),
    );
    let (rows, cols, kt) = (ceil_div(m, tm), ceil_div(n, tn), ceil_div(k, tk));
    let s = u64::from(map.split_k);
    if s > kt {
        return Err(cx.err("split_k", format!("{s} splits exceed the {kt} K tiles")));
    }
    let steps = ceil_div(kt, s);
    let smem = f64::from(map.stages) * (tm + tn) as f64 * tk as f64 * e;
    let (occupancy, regs) = cx.occupancy(smem, (tm * tn) as f64)?;
    let f = |x: u64| x as f64;
    let k_per_step = f(k) / f(s * steps);
    let epi_elem = if s > 1 { 4.0 } else { out_bytes };
    Ok(KernelPlan {
        name: cx.name.to_string(),
        mapping: map.clone(),
        order: Order {
            groups: batch * s,
            rows,
            cols,
            band: u64::from(map.swizzle).min(rows),
        },
        steps: Steps::Uniform(steps),
        occupancy,
        stages: map.stages,
        step_s: 2.0 * f(tm * tn * tk) / cx.matrix_rate(dtype)?
            + if map.instr == InstrClass::MmaSync {
                cx.hw.smem_s(mma_sync_gemm_smem_bytes(map, e))
            } else {
                0.0
            }
            + narrow_issue_s(f((tm + tn) * tk) * e, vector, cx.hw),
        flops_per_step: 2.0 * f(tm * tn * tk),
        useful_flops: 2.0 * f(batch) * f(m) * f(n) * f(k),
        resident: 0.0,
        streams: vec![
            Stream {
                key: Key::Row,
                bytes: f(m) / f(rows) * k_per_step * e,
            },
            Stream {
                key: Key::Col,
                bytes: f(n) / f(cols) * k_per_step * e,
            },
        ],
        write_per_step: 0.0,
        epilogue: f(m) * f(n) / f(rows * cols) * epi_elem,
        epilogue_fill: fill(map, f(m) * f(n) / f(rows * cols) * epi_elem),
        epilogue_issue_s: issue(map, f(m) * f(n) / f(rows * cols), cx.hw),
        persist: false,
        smem,
        regs_per_thread: regs,
        vector,
        step_latency_s: 0.0,
        lockstep: false,
        row_chain: None,
    })
}

/// The global access width of a GEMM op's main kernel: cuBLAS's, limited by its operands'
/// alignment ([`GpuOp::vector_bytes`]); the ideal mapping assumes aligned operands.
fn gemm_vector(op: &GpuOp) -> u32 {
    if op.cublas_narrow() {
        op.vector_bytes()
    } else {
        16
    }
}

/// Seconds one SM spends issuing the narrow loads of `bytes` of operand tiles (`vector` bytes
/// per lane; 0 for 16-byte vector loads, whose issue hides under the main loop): each warp
/// instruction moves 32 lanes × `vector` bytes and its shared-memory store is a second one, and
/// the SM issues one warp-wide memory instruction per clock (its four schedulers share one
/// memory-instruction queue). An ASSUMPTION, not measured on its own: cuBLAS's `align1` kernels
/// (`dev_kernels.csv`, `heldout{1,2}_kernels.csv`) load their tiles two bytes at a time, so a
/// 256 × 128 × 32 step issues 384 loads and 384 shared stores, comparable to its `mma.sync`
/// work (~800 clocks); the L2 request rate ([`GpuParams::l2_bw_for`]) bounds the kernel when
/// many CTAs run, this issue cost when few do.
///
/// With 4- or 8-byte accesses cuBLAS runs sm80 kernels that copy with `cp.async`, which writes
/// shared memory itself: one instruction per access instead of two.
fn narrow_issue_s(bytes: f64, vector: u32, hw: &GpuParams) -> f64 {
    if vector >= 16 {
        return 0.0;
    }
    let per_access = if vector >= 4 { 1.0 } else { 2.0 };
    per_access * bytes / (32.0 * f64::from(vector.max(1))) / hw.clock_hz
}

/// A streaming kernel over `elements` elements, each read (`read_b` bytes) and written
/// (`write_b` bytes) once, with `fp32_ops` FP32-pipe and `sfu_ops` MUFU operations each.
#[allow(clippy::too_many_arguments)]
fn streaming(
    cx: &Ctx,
    kind: KernelKind,
    elements: u64,
    read_b: f64,
    write_b: f64,
    fp32_ops: f64,
    sfu_ops: f64,
    useful_flops: f64,
) -> Result<KernelPlan, GpuError> {
    streaming_with(
        cx,
        kind,
        elements,
        read_b,
        write_b,
        fp32_ops,
        sfu_ops,
        useful_flops,
        PerElement::Vectorized,
    )
}

/// How a streaming kernel's lanes access memory.
#[derive(Clone, Copy, Debug, PartialEq)]
enum PerElement {
    /// 16 bytes per lane and access (`vectorized_elementwise_kernel`, copies).
    Vectorized,
    /// One element of `elem` bytes per lane and access (PyTorch's non-vectorized
    /// `elementwise_kernel<128, 4>` for strided or broadcast operands), plus `broadcast` bytes
    /// per element read from a table every CTA shares (L2 traffic, HBM once).
    Scalar { elem: f64, broadcast: f64 },
}

/// A streaming kernel. A [`PerElement::Scalar`] kernel's warp requests carry 32 elements
/// rather than 32 × 16 bytes, so L2's request rate (`GpuParams::l2_bw_for` of the element
/// size) bounds it: the evidence is the eager rotary kernels on the H200, which move about
/// 1 TB/s where vectorized copies move 4.3 (`reports/infer/h200/llama_kernels.csv`).
#[allow(clippy::too_many_arguments)]
fn streaming_with(
    cx: &Ctx,
    kind: KernelKind,
    elements: u64,
    read_b: f64,
    write_b: f64,
    fp32_ops: f64,
    sfu_ops: f64,
    useful_flops: f64,
    access: PerElement,
) -> Result<KernelPlan, GpuError> {
    cx.common(kind)?;
    let map = cx.map;
    if map.instr != InstrClass::CudaCore {
        return Err(cx.err("instr", "elementwise kernels run on CUDA cores (cuda_core)"));
    }
    let (tm, tn) = (u64::from(map.cta_tile_m), u64::from(map.cta_tile_n));
    let ctas = ceil_div(elements, tm);
    let steps = ceil_div(tm, tn);
    let f = |x: u64| x as f64;
    // Bytes in flight are held in registers.
    let in_flight_regs = f64::from(map.stages) * f(tn) * read_b / 4.0;
    let (occupancy, regs) = cx.occupancy(0.0, in_flight_regs)?;
    let per_step = f(elements) / f(ctas * steps);
    let (vector, mut streams) = match access {
        PerElement::Vectorized => (16, Vec::new()),
        PerElement::Scalar { elem, broadcast } => (
            elem.max(1.0) as u32,
            if broadcast > 0.0 {
                // Shared by every CTA (one tile column): HBM once, L2 every time.
                vec![Stream {
                    key: Key::Col,
                    bytes: per_step * broadcast,
                }]
            } else {
                Vec::new()
            },
        ),
    };
    streams.insert(
        0,
        Stream {
            key: Key::Cta,
            bytes: per_step * read_b,
        },
    );
    Ok(KernelPlan {
        name: cx.name.to_string(),
        mapping: map.clone(),
        order: Order {
            groups: 1,
            rows: ctas,
            cols: 1,
            band: 1,
        },
        steps: Steps::Uniform(steps),
        occupancy,
        stages: map.stages,
        step_s: cx.hw.fp32_ops_s(f(tn) * fp32_ops) + cx.hw.sfu_ops_s(f(tn) * sfu_ops),
        flops_per_step: 0.0,
        useful_flops,
        resident: 0.0,
        streams,
        write_per_step: per_step * write_b,
        epilogue: 0.0,
        epilogue_fill: 0.0,
        epilogue_issue_s: 0.0,
        persist: false,
        smem: 0.0,
        regs_per_thread: regs,
        vector,
        step_latency_s: 0.0,
        lockstep: false,
        row_chain: None,
    })
}

fn softmax(cx: &Ctx, rows: u64, cols: u64, in_b: f64, out_b: f64) -> Result<KernelPlan, GpuError> {
    softmax_with(cx, rows, cols, in_b, out_b, SOFTMAX_FP32_OPS)
}

/// A softmax kernel of our own: one pass when a CTA's rows fit in shared memory, else an online
/// two-pass softmax; `one_pass_ops` FP32-pipe operations per element in a one-pass kernel.
fn softmax_with(
    cx: &Ctx,
    rows: u64,
    cols: u64,
    in_b: f64,
    out_b: f64,
    one_pass_ops: f64,
) -> Result<KernelPlan, GpuError> {
    cx.common(KernelKind::Softmax)?;
    let map = cx.map;
    if map.instr != InstrClass::CudaCore {
        return Err(cx.err("instr", "softmax runs on CUDA cores (cuda_core)"));
    }
    let (tm, tn) = (u64::from(map.cta_tile_m), u64::from(map.cta_tile_n));
    let f = |x: u64| x as f64;
    let ctas = ceil_div(rows, tm);
    let chunks = ceil_div(cols, tn);
    // One pass when the CTA's rows fit in shared memory (read once, normalize in place, write
    // once); otherwise an online two-pass softmax that reads every row twice.
    let row_block = f(tm * cols) * in_b;
    let one_pass = row_block <= cx.hw.smem_per_block_max;
    let passes = if one_pass { 1 } else { 2 };
    let steps = passes * chunks;
    let smem = if one_pass { row_block } else { 0.0 };
    let in_flight_regs = f64::from(map.stages) * f(tm * tn) * in_b / 4.0;
    let (occupancy, regs) = cx.occupancy(smem, if one_pass { 0.0 } else { in_flight_regs })?;
    let elems = f(rows) * f(cols);
    let per_step_elems = elems / f(ctas * steps) * f(passes);
    let (fp32, sfu) = if one_pass {
        (one_pass_ops, 1.0)
    } else {
        // Each pass: convert, max or scale, subtract, sum or multiply — plus one exp.
        (4.0, 1.0)
    };
    let (write_per_step, epilogue) = if one_pass {
        (0.0, elems * out_b / f(ctas))
    } else {
        (elems * out_b / f(ctas * steps), 0.0)
    };
    Ok(KernelPlan {
        name: cx.name.to_string(),
        mapping: map.clone(),
        order: Order {
            groups: 1,
            rows: ctas,
            cols: 1,
            band: 1,
        },
        steps: Steps::Uniform(steps),
        occupancy,
        stages: map.stages,
        step_s: cx.hw.fp32_ops_s(f(tm * tn) * fp32) + cx.hw.sfu_ops_s(f(tm * tn) * sfu),
        flops_per_step: 0.0,
        useful_flops: 5.0 * elems,
        resident: 0.0,
        streams: vec![Stream {
            key: Key::Cta,
            bytes: per_step_elems * in_b,
        }],
        write_per_step,
        epilogue,
        epilogue_fill: 0.0,
        epilogue_issue_s: 0.0,
        persist: false,
        smem,
        regs_per_thread: regs,
        vector: 16,
        step_latency_s: 0.0,
        lockstep: false,
        row_chain: None,
    })
}

/// ATen's softmax kernel as it runs ([`TorchSoftmax`]: which of its four kernels, its CTA, its
/// loads). A CTA holds its rows (4 in the warp kernel, 1 in the block kernels); a step is one
/// load each thread waits for ([`TorchSoftmax::loads_and_passes`]: the register kernel's loads
/// one after the other, the vectorized loops' iterations), one stage, and the CTA stores its
/// rows at the end. The SM's issue time per element is counted from the source
/// ([`TorchSoftmax::instrs_per_elem`]) at the clock the GPU holds for these kernels
/// ([`super::library::SOFTMAX_CLOCK_HZ`]); the two reductions' latency is on each row's chain
/// ([`TorchSoftmax::reduction_cycles`]); the plain block kernel reads the row three times
/// from global memory. Occupancy follows from the kernel's registers, threads and shared memory.
fn torch_softmax(cx: &Ctx, rows: u64, cols: u64, dtype: Dtype) -> Result<KernelPlan, GpuError> {
    use super::library::{TorchSoftmax, SOFTMAX_CLOCK_HZ};
    cx.common(KernelKind::Softmax)?;
    let map = cx.map;
    if map.instr != InstrClass::CudaCore {
        return Err(cx.err("instr", "softmax runs on CUDA cores (cuda_core)"));
    }
    let (in_b, out_b) = (dtype.bytes(), dtype.out_bytes());
    let kind = TorchSoftmax::of(cols, in_b as u64);
    let f = |x: u64| x as f64;
    let tm = u64::from(map.cta_tile_m);
    let ctas = ceil_div(rows, tm);
    // Rows of the last CTA may be fewer; the average CTA holds rows / ctas.
    let cta_elems = f(rows) * f(cols) / f(ctas);
    let (loads, passes) = kind.loads_and_passes(cols, u64::from(map.cta_tile_n));
    let smem = match kind {
        TorchSoftmax::Smem => f(cols) * in_b + 4.0 * f(u64::from(map.warps)),
        TorchSoftmax::Warp => 0.0,
        _ => 4.0 * f(u64::from(map.warps)),
    };
    let (occupancy, regs) =
        cx.occupancy(smem, kind.extra_regs(cols) * f(u64::from(map.threads())))?;
    let clock = cx.hw.clock_hz / SOFTMAX_CLOCK_HZ;
    let per_load = cta_elems / f(loads);
    let step_s = cx
        .hw
        .fp32_ops_s(cta_elems * kind.instrs_per_elem() / f(loads))
        * clock;
    // The warp kernel's lane chain beyond what its issue time already covers.
    let chain = match kind {
        TorchSoftmax::Warp => {
            (f(cols) / 32.0 * super::library::WARP_SOFTMAX_LANE_ELEM_S - step_s).max(0.0)
        }
        _ => 0.0,
    };
    Ok(KernelPlan {
        name: cx.name.to_string(),
        mapping: map.clone(),
        order: Order {
            groups: 1,
            rows: ctas,
            cols: 1,
            band: 1,
        },
        steps: Steps::Uniform(loads),
        occupancy,
        stages: map.stages,
        step_s,
        flops_per_step: 0.0,
        useful_flops: 5.0 * f(rows) * f(cols),
        resident: 0.0,
        streams: vec![Stream {
            key: Key::Cta,
            bytes: per_load * f(passes) * in_b,
        }],
        write_per_step: 0.0,
        epilogue: cta_elems * out_b,
        epilogue_fill: 0.0,
        epilogue_issue_s: 0.0,
        persist: false,
        smem,
        regs_per_thread: regs,
        // The warp and register kernels load and store 2 bytes per lane, yet the narrow-request
        // bound (`hw::L2_REQUESTS_MEASURED`: 1.83 TB/s in 64-byte requests, measured on loads)
        // does not hold them: the warp kernel moved 2.5 TB/s (dev `softmax_65536x512`).
        vector: 16,
        step_latency_s: (kind.reduction_cycles() / SOFTMAX_CLOCK_HZ + chain) / f(loads),
        lockstep: false,
        row_chain: None,
    })
}

/// ATen's `vectorized_layer_norm_kernel` (layer norm and RMS norm) as it runs: one CTA of
/// [`TorchNorm::THREADS`] threads per row, each thread loading [`TorchNorm::VEC`] elements per
/// iteration, the next iteration's load waiting for the previous one (Welford's or the sum of
/// squares' dependency chain; the loop is not pipelined), then the normalization pass re-reading
/// the row from L1/L2 and writing it. A step is one iteration of both passes: it loads its
/// elements from HBM and stores them normalized; its round trip is the HBM load plus the
/// kernel's measured per-iteration latency ([`TorchNorm::iteration_latency_s`]) plus an equal
/// share of the row's fixed latency ([`TorchNorm::row_latency_s`]: layer norm's Welford
/// combines), so a row's chain is its iterations plus that fixed part, overlapped across the
/// resident rows like the loads; what the other resident rows add to each iteration is the
/// plan's [`RowChain`], taken per wave. The mapping carries the structure (`cta_tile_m` = 1
/// row, `cta_tile_n` = elements per iteration, 1 stage, 4 warps); occupancy comes from the
/// kernel's registers ([`TorchNorm::regs_per_thread`], per kind). A step's arithmetic is its
/// elements' instructions ([`TorchNorm::issue_per_elem`]) over the SM's FP32 lanes.
fn torch_norm(
    cx: &Ctx,
    rows: u64,
    cols: u64,
    kind: RowOp,
    dtype: Dtype,
) -> Result<KernelPlan, GpuError> {
    use super::library::TorchNorm;
    cx.common(KernelKind::Copy)?;
    let map = cx.map;
    let norm = TorchNorm::of(kind).ok_or_else(|| cx.err("kernel", "not a norm"))?;
    let per_step = u64::from(map.cta_tile_n).max(1);
    let steps = ceil_div(cols, per_step);
    let f = |x: u64| x as f64;
    // Registers: the kernel's own count (Nsight Compute: 16 rows per SM).
    let acc = (f64::from(norm.regs_per_thread()) - BASE_REGS_PER_THREAD).max(0.0)
        * f64::from(map.threads());
    let (occupancy, regs) = cx.occupancy(0.0, acc)?;
    let e = dtype.bytes();
    let elems_per_step = f(cols) / f(steps);
    let miss = cx.hw.miss_latency_s;
    // The SM's issue of one row's iteration: its elements' instructions over the FP32 lanes,
    // at the clock the CUDA-core kernels hold.
    let issue = elems_per_step * norm.issue_per_elem()
        / (cx.hw.fp32_lanes_per_sm.max(1.0) * super::library::SOFTMAX_CLOCK_HZ);
    let row_chain = RowChain {
        rest_s: (norm.iteration_latency_s() - miss).max(0.0),
        fixed_s: norm.row_latency_s(),
        steps: f(steps),
        bytes: elems_per_step * e,
        issue_s: issue,
        row_bytes: f(cols) * e,
        l1_bytes: super::hw::L1_SMEM_PER_SM
            - f64::from(occupancy) * super::hw::SMEM_RESERVED_PER_CTA,
    };
    Ok(KernelPlan {
        name: cx.name.to_string(),
        mapping: map.clone(),
        order: Order {
            groups: 1,
            rows,
            cols: 1,
            band: 1,
        },
        steps: Steps::Uniform(steps),
        occupancy,
        stages: 1,
        step_s: issue,
        flops_per_step: 0.0,
        useful_flops: f(rows) * f(cols) * kind.flops_per_elem(),
        resident: 0.0,
        streams: vec![Stream {
            key: Key::Cta,
            bytes: elems_per_step * e,
        }],
        write_per_step: elems_per_step * e,
        // The fp32 mean and rstd of the row.
        epilogue: 8.0,
        epilogue_fill: 0.0,
        epilogue_issue_s: 0.0,
        persist: false,
        smem: 0.0,
        regs_per_thread: regs,
        vector: 16,
        step_latency_s: (norm.iteration_latency_s() - miss).max(0.0)
            + norm.row_latency_s() / f(steps),
        lockstep: false,
        row_chain: Some(row_chain),
    })
}

/// SM seconds of one attention step of a `rows × keys` score block with head dim `d`:
/// the two matrix products on the tensor cores, the softmax on the FP32 pipes and MUFU.
/// `overlap`: how the kernel overlaps the softmax with the products ([`StepOverlap`]).
fn attention_step_s(
    cx: &Ctx,
    rows: u64,
    keys: u64,
    d: u64,
    dtype: Dtype,
    overlap: StepOverlap,
) -> Result<f64, GpuError> {
    let f = |x: u64| x as f64;
    let mut mma = 4.0 * f(rows) * f(keys) * f(d) / cx.matrix_rate(dtype)?;
    if cx.map.instr == InstrClass::MmaSync {
        // mma.sync: every warp (each owns rows / warps query rows) loads the whole K and V
        // tiles from shared memory with ldmatrix, and cp.async stores them there once; the
        // warp's loads and its MMAs are issued in program order (see mma_sync_gemm_smem_bytes
        // for the evidence). The measured ours_fa2 kernels (64 × 64 blocks, 4 warps) ran at
        // 19% of the dense peak where the arithmetic and softmax alone allow 40%.
        //
        // A warp that owns two or more 16-row MMA blocks (FlashAttention-2's 128-row tiles
        // over 4 warps) reuses each K/V fragment for all of them, and FA2's `flash::gemm`
        // issues the `ldmatrix` of k-slice i + 1 before the MMAs of slice i: the loads overlap
        // the matrix work, but not entirely. MEASURED on the H200 (`scripts/gpu/
        // mma_ldm_chain.cu`, see `hw::LDMATRIX_X4_EXPOSED_CLK`): with FA2's loop shape each
        // `ldmatrix.x4` still adds 2.5 clocks to its sub-partition's MMA stream, so the step
        // takes max(MMAs + exposed loads, shared memory). The loads per warp and K/V block
        // are its Q rows (FA2 re-reads Q from shared memory every block: `Is_Q_in_regs` is
        // false in the traits torch uses) and the whole K and V tiles, 512 bytes each: 80
        // per warp at d = 128 (128 × 64 tile), 72 at d = 64 (128 × 128). The perfect overlap
        // this replaces (the larger of MMAs and shared memory) put torch's flash backend
        // 8–20% too fast on all three sets; the serial sum was 25–34% too slow.
        //
        // The softmax is added, not overlapped, with reason: FP32-pipe instructions do not
        // issue alongside `mma.sync` on Hopper — 8 MMAs (48 clocks) with 8/16/32/48
        // independent FFMAs take 56/66/83/100 clocks per warp and sub-partition, the sum
        // (`scripts/gpu/mma_fp32_mix.cu`, `reports/crosscheck/h200/mma_fp32_mix.txt`) — so
        // another warp's MMAs cannot hide a warp's softmax. `mma.sync.m16n8k16` itself issues
        // every 6.0 clocks per sub-partition (0.667 of the dense peak: the `MmaSync` rate of
        // 0.65 stands; `mma_sync_bench.txt`).
        let tiles = 2.0 * f(keys) * f(d) * dtype.bytes();
        let smem = cx.hw.smem_s(tiles * (f64::from(cx.map.warps) + 1.0));
        let rows_per_warp = f(rows) / f64::from(cx.map.warps.max(1));
        mma = if rows_per_warp >= 32.0 {
            let loads =
                f64::from(cx.map.warps) * (rows_per_warp + 2.0 * f(keys)) * f(d) * dtype.bytes()
                    / LDMATRIX_X4_BYTES;
            let exposed = loads * super::hw::LDMATRIX_X4_EXPOSED_CLK
                / (SUB_PARTITIONS_PER_SM * cx.hw.clock_hz);
            (mma + exposed).max(smem)
        } else {
            mma + smem
        };
    }
    let scores = f(rows) * f(keys);
    let sfx = cx
        .hw
        .fp32_ops_s(scores * FLASH_FP32_OPS_PER_SCORE + f(rows) * f(d))
        + cx.hw.sfu_ops_s(scores);
    Ok(match overlap {
        StepOverlap::Serial => mma + sfx,
        StepOverlap::PingPong => mma.max(sfx),
        // Q·Kᵀ and P·V are half the step's matrix work each.
        StepOverlap::NextScores => (0.5 * mma).max(sfx) + 0.5 * mma,
    })
}

/// How an attention kernel overlaps a step's softmax with its matrix products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepOverlap {
    /// Back to back in every warp (FlashAttention-2 and FlashDecoding-style `mma.sync`
    /// kernels: all warps of a CTA are in the same phase).
    Serial,
    /// The softmax of one warpgroup under the matrix products of another (FlashAttention-3's
    /// ping-pong scheduling, FA3 paper §3.1): a step costs the larger of the two.
    PingPong,
    /// One warpgroup per CTA that issues the next block's Q·Kᵀ `wgmma` before the softmax of
    /// the current block and its P·V after (FA3 paper §3.2's intra-warpgroup pipelining):
    /// only Q·Kᵀ hides the softmax; P·V waits for P. cuDNN's Hopper SDPA kernel (`…_64x128x{d}
    /// _4x1x1`: one warpgroup, one to three CTAs per SM). Evidence (`{dev,heldout1,heldout2}.
    /// csv`, sdpa_cudnn): with the softmax fully hidden (`PingPong`) the d = 64 cases, where
    /// the softmax outweighs both products, came out 19–38% fast; measured per step (SM
    /// clocks at the 1.83 GHz `clocks_under_load.csv` gives cuDNN) 1,472 at d = 128 and 1,085
    /// at d = 64, where this form gives 1,480 and 1,124.
    NextScores,
}

#[allow(clippy::too_many_arguments)]
fn flash(
    cx: &Ctx,
    bh: u64,
    n: u64,
    m: u64,
    d: u64,
    causal: bool,
    imp: AttnImpl,
    dtype: Dtype,
    useful_flops: f64,
) -> Result<KernelPlan, GpuError> {
    cx.common(KernelKind::FlashAttention)?;
    cx.instr(dtype, false)?;
    let map = cx.map;
    if u64::from(map.cta_tile_k) != d {
        return Err(cx.err(
            "cta_tile_k",
            format!(
                "must equal the head dimension d = {d}, got {}",
                map.cta_tile_k
            ),
        ));
    }
    if map.split_k != 1 {
        return Err(cx.err("split_k", "fused attention forward does not split the keys"));
    }
    let e = dtype.bytes();
    let f = |x: u64| x as f64;
    let (br, bc) = (u64::from(map.cta_tile_m), u64::from(map.cta_tile_n));
    let (rows, tkv) = (ceil_div(n, br), ceil_div(m, bc));
    let smem = f(br * d) * e + f64::from(map.stages) * 2.0 * f(bc * d) * e;
    let (occupancy, regs) = cx.occupancy(smem, f(br * d + br * bc))?;
    let steps = if causal {
        // Query block qb sees keys j <= i + (m - n) (bottom-right aligned); heaviest blocks are
        // dispatched first (FA3's tile scheduler order), so row position r holds qb = rows-1-r.
        Steps::PerRow(Causal { rows, br, bc, n, m })
    } else {
        Steps::Uniform(tkv)
    };
    Ok(KernelPlan {
        name: cx.name.to_string(),
        mapping: map.clone(),
        order: Order {
            groups: bh,
            rows,
            cols: 1,
            band: 1,
        },
        steps,
        occupancy,
        stages: map.stages,
        step_s: attention_step_s(
            cx,
            br,
            bc,
            d,
            dtype,
            match imp {
                AttnImpl::Fa3 => StepOverlap::PingPong,
                AttnImpl::Cudnn => StepOverlap::NextScores,
                _ => StepOverlap::Serial,
            },
        )? * if imp == AttnImpl::Flash
            && causal
            && (!n.is_multiple_of(br) || !m.is_multiple_of(bc))
        {
            // FA2's `Is_even_MN = false` causal kernel (see the constant).
            super::hw::FA2_UNEVEN_CAUSAL_STEP
        } else {
            1.0
        },
        flops_per_step: 4.0 * f(br * bc * d),
        useful_flops,
        resident: f(n * d) * e / f(rows),
        streams: vec![Stream {
            key: Key::Group,
            bytes: 2.0 * f(m * d) * e / f(tkv),
        }],
        write_per_step: 0.0,
        // O and the fp32 log-sum-exp per query row.
        epilogue: f(n) * (f(d) * dtype.out_bytes() + 4.0) / f(rows),
        epilogue_fill: fill(map, f(n) * f(d) * dtype.out_bytes() / f(rows)),
        epilogue_issue_s: issue(map, f(n) * f(d) / f(rows), cx.hw),
        persist: false,
        smem,
        regs_per_thread: regs,
        vector: 16,
        step_latency_s: 0.0,
        lockstep: imp == AttnImpl::Flash,
        row_chain: None,
    })
}

#[allow(clippy::too_many_arguments)]
fn decode_split(
    cx: &Ctx,
    b: u64,
    hq: u64,
    hkv: u64,
    l: u64,
    d: u64,
    dtype: Dtype,
    useful_flops: f64,
    partials: bool,
    lockstep: bool,
) -> Result<KernelPlan, GpuError> {
    cx.common(KernelKind::DecodeSplitKv)?;
    cx.instr(dtype, false)?;
    let map = cx.map;
    let group = hq / hkv;
    let (tm, bc) = (u64::from(map.cta_tile_m), u64::from(map.cta_tile_n));
    if tm < group {
        return Err(cx.err(
            "cta_tile_m",
            format!("must hold the {group} query heads of a KV head, got {tm}"),
        ));
    }
    if u64::from(map.cta_tile_k) != d {
        return Err(cx.err(
            "cta_tile_k",
            format!(
                "must equal the head dimension d = {d}, got {}",
                map.cta_tile_k
            ),
        ));
    }
    let e = dtype.bytes();
    let f = |x: u64| x as f64;
    let tkv = ceil_div(l, bc);
    let s = u64::from(map.split_k);
    if s > tkv {
        return Err(cx.err(
            "split_k",
            format!("{s} KV splits exceed the {tkv} key blocks"),
        ));
    }
    // Tensor-core kernels (FlashDecoding) stream K and V tiles together with an online
    // softmax. CUDA-core kernels (vLLM's PagedAttention, the CUDA suite's `ours_splitkv`) make
    // two passes over their split: K (logits of every key of the split into shared memory, then
    // the softmax there), then V; half-warps own keys, and their partial outputs are summed
    // through shared memory at the end.
    let two_pass = map.instr == InstrClass::CudaCore;
    let per_pass = ceil_div(tkv, s);
    let steps = if two_pass { 2 * per_pass } else { per_pass };
    let (smem, acc_regs) = if two_pass {
        let logits = f(tm * per_pass * bc) * 4.0;
        // Each half-warp holds the accumulators of all tm rows (d / 16 columns per lane) and
        // leaves them in shared memory for the final sum; when they would not fit in
        // registers (large GQA groups), the rows are split over the warps instead.
        let warps = u64::from(map.warps.max(1));
        let (rows, copies) = if tm * d / 16 <= 64 {
            (tm, 2 * warps)
        } else {
            (tm.div_ceil(warps), 2)
        };
        let partials = f(copies * tm * d) * 4.0;
        (
            logits + partials,
            f64::from(map.threads()) * f(rows * d) / 16.0,
        )
    } else {
        (
            f(tm * d) * e + f64::from(map.stages) * 2.0 * f(bc * d) * e,
            f(tm * d + tm * bc),
        )
    };
    let (occupancy, regs) = cx.occupancy(smem, acc_regs)?;
    let step_s = if two_pass {
        // Each pass does one of the two products; the softmax is spread over both. A key's
        // dot product is split over the d / 8 lanes that load its row (16 bytes each) and
        // summed with log2(d / 8) shuffle rounds per query row, one warp-wide shuffle covering
        // 32 / (d / 8) keys. Why: shuffles issue at one warp per clock per SM, and for the
        // suite's kernel (4 rows, d = 128) they cost more than its FMAs (256 shuffles per
        // 32-key step against 128 clocks of FMAs); the measured b = 1 decodes, which wait on
        // every step, ran 1.5× longer than the FMAs and round trips alone explain.
        let lanes = (f(d) / 8.0).clamp(1.0, 32.0);
        let shuffles = f(bc) / (32.0 / lanes) * lanes.log2() * f(tm);
        0.5 * (attention_step_s(cx, tm, bc, d, dtype, StepOverlap::Serial)?
            + cx.hw.shuffle_s(shuffles))
    } else {
        let overlap = if map.instr == InstrClass::Wgmma {
            StepOverlap::PingPong
        } else {
            StepOverlap::Serial
        };
        attention_step_s(cx, tm, bc, d, dtype, overlap)?
    };
    // With a combine kernel after it, each CTA writes fp32 partial outputs and its rows'
    // max and sum; otherwise the output itself.
    let epilogue = if partials {
        f(group) * (f(d) + 1.0) * 4.0
    } else {
        f(group * d) * dtype.out_bytes()
    };
    Ok(KernelPlan {
        name: cx.name.to_string(),
        mapping: map.clone(),
        order: Order {
            groups: b * hkv,
            rows: 1,
            cols: s,
            band: 1,
        },
        steps: Steps::Uniform(steps),
        occupancy,
        stages: map.stages,
        step_s,
        flops_per_step: if two_pass { 2.0 } else { 4.0 } * f(tm * bc * d),
        useful_flops,
        resident: f(group * d) * e,
        streams: vec![Stream {
            key: Key::Cta,
            bytes: 2.0 * f(l * d) * e / f(s * steps),
        }],
        write_per_step: 0.0,
        epilogue,
        epilogue_fill: 0.0,
        epilogue_issue_s: 0.0,
        persist: false,
        smem,
        regs_per_thread: regs,
        vector: 16,
        step_latency_s: 0.0,
        lockstep,
        row_chain: None,
    })
}

/// Refuses an op whose inputs and outputs do not fit in the GPU's device memory (`gpu.hbm`),
/// or whose element counts exceed [`super::op::MAX_COUNT`] (possible only on a GPU of more
/// memory than any built).
pub fn fits_device_memory(op: &GpuOp, hw: &GpuParams) -> Result<(), GpuError> {
    fits_memory(op, hw)?;
    for (what, value) in op.counts() {
        if value > super::op::MAX_COUNT {
            return Err(GpuError::TooLarge {
                op: op.to_string(),
                what: what.to_string(),
                value,
            });
        }
    }
    Ok(())
}

fn fits_memory(op: &GpuOp, hw: &GpuParams) -> Result<(), GpuError> {
    let need = op.min_bytes();
    if need > hw.hbm_bytes {
        return Err(GpuError::DeviceMemory {
            op: op.to_string(),
            need_bytes: need,
            have_bytes: hw.hbm_bytes,
        });
    }
    Ok(())
}

/// Lowers `op` with one mapping per kernel.
pub fn plan_op(
    op: &GpuOp,
    maps: &[GpuMapping],
    hw: &GpuParams,
) -> Result<Vec<KernelPlan>, GpuError> {
    fits_device_memory(op, hw)?;
    let split = maps.first().map_or(1, |m| m.split_k);
    // Decode kernels that always merge their splits (FlashDecoding-style, like the CUDA
    // suite's) may give a combine kernel even for a single split.
    let combine = split > 1
        || (matches!(op, GpuOp::DecodeAttention { .. })
            && maps.len() == 2
            && maps[1].kernel == KernelKind::DecodeCombine);
    let kinds = kernel_kinds(op, if combine { split.max(2) } else { split });
    if kinds.len() != maps.len() {
        return Err(GpuError::KernelCount {
            got: maps.len(),
            expected: kinds.len(),
            names: kinds.iter().map(|k| k.0).collect::<Vec<_>>().join(", "),
        });
    }
    maps.iter()
        .enumerate()
        .map(|(i, m)| plan_kernel_with(op, i, split, combine, m, hw))
        .collect()
}

/// Lowers kernel `index` of `op` (see [`kernel_kinds`]) under `map`; `split` is the op's first
/// kernel's split factor, which decides whether a reduction/combine kernel follows.
pub fn plan_kernel(
    op: &GpuOp,
    index: usize,
    split: u32,
    map: &GpuMapping,
    hw: &GpuParams,
) -> Result<KernelPlan, GpuError> {
    plan_kernel_with(op, index, split, split > 1, map, hw)
}

/// [`plan_kernel`], where `follow` says whether a reduction/combine kernel follows the first
/// (always when `split > 1`; decode may also combine a single split).
fn plan_kernel_with(
    op: &GpuOp,
    index: usize,
    split: u32,
    follow: bool,
    map: &GpuMapping,
    hw: &GpuParams,
) -> Result<KernelPlan, GpuError> {
    let kinds = kernel_kinds(op, if follow { split.max(2) } else { split });
    let Some(&(name, _)) = kinds.get(index) else {
        return Err(GpuError::KernelCount {
            got: index + 1,
            expected: kinds.len(),
            names: kinds.iter().map(|k| k.0).collect::<Vec<_>>().join(", "),
        });
    };
    let cx = Ctx { name, map, hw };
    let s = f64::from(split);
    let mut plan = match (*op, index) {
        (GpuOp::Gemm { m, n, k, dtype, .. }, 0) => {
            gemm(&cx, 1, m, n, k, dtype, dtype.out_bytes(), gemm_vector(op))?
        }
        (
            GpuOp::Bmm {
                batch,
                m,
                n,
                k,
                dtype,
                ..
            },
            0,
        ) => gemm(
            &cx,
            batch,
            m,
            n,
            k,
            dtype,
            dtype.out_bytes(),
            gemm_vector(op),
        )?,
        (GpuOp::Gemm { m, n, dtype, .. }, _) => split_reduce(&cx, m * n, s, dtype)?,
        (
            GpuOp::Bmm {
                batch, m, n, dtype, ..
            },
            _,
        ) => split_reduce(&cx, batch * m * n, s, dtype)?,
        (
            GpuOp::Attention {
                b,
                h,
                n,
                m,
                d,
                causal,
                imp,
                dtype,
            },
            _,
        ) => flash(&cx, b * h, n, m, d, causal, imp, dtype, op.flops())?,
        (
            GpuOp::AttentionUnfused {
                b,
                h,
                n,
                m,
                d,
                causal,
                dtype,
                scores,
            },
            i,
        ) => {
            if map.split_k != 1 {
                return Err(cx.err("split_k", "unfused attention kernels do not split K"));
            }
            // S is written and read in the `scores` type (the GEMM's epilogue converts).
            let s_b = scores.bytes();
            match i {
                0 | 2 => {
                    let mut g = if i == 0 {
                        gemm(&cx, b * h, n, m, d, dtype, s_b, 16)?
                    } else {
                        gemm(&cx, b * h, n, d, m, dtype, dtype.out_bytes(), 16)?
                    };
                    if causal {
                        // The GEMMs compute every score; useful work is half of each.
                        g.useful_flops /= 2.0;
                    }
                    g
                }
                _ => softmax(&cx, b * h * n, m, s_b, dtype.bytes())?,
            }
        }
        (
            GpuOp::DecodeAttention {
                b,
                hq,
                hkv,
                l,
                d,
                dtype,
                imp,
            },
            0,
        ) => decode_split(
            &cx,
            b,
            hq,
            hkv,
            l,
            d,
            dtype,
            op.flops(),
            follow,
            imp == super::op::Impl::Flash,
        )?,
        (
            GpuOp::DecodeAttention {
                b,
                hq,
                d,
                dtype,
                imp,
                ..
            },
            _,
        ) => {
            // Per output element: read each split's fp32 partial (and its row's LSE, shared by
            // d elements); one FFMA and one add per split, one exp per split per row.
            let mut plan = streaming(
                &cx,
                KernelKind::DecodeCombine,
                b * hq * d,
                s * 4.0 * (1.0 + 1.0 / d as f64),
                dtype.out_bytes(),
                2.0 * s + 1.0,
                s / d as f64,
                0.0,
            )?;
            if imp == super::op::Impl::Flash {
                // FlashAttention-2's `flash_fwd_splitkv_combine_kernel` reads the partials in
                // `for (int split = 0; split < params.num_splits; ++split)`, a loop of runtime
                // bound that loads a split's `Oaccum` into the same registers the previous
                // split's FMAs read: one L2 round trip (the partials were just written) after
                // another. MEASURED (`*_kernels.csv`): the combine takes 3.52 µs at 2 splits
                // (decode_flash_b16hq32hkv8l2048), 5.82 at 16 (b2hq32hkv8l8192), 9.31 at 32
                // (b1hq32hkv8l4096): 0.19 µs per split, an L2 hit's round trip at the 1.98 GHz
                // FA2 runs at (`clocks_under_load.csv`: 263 cycles = 0.13 µs) plus its transfer.
                // Each CTA waits these s - 1 round trips once; the plan's latency chain has
                // 1 + (k - 1) / stages round trips for its k steps, so each carries a share.
                let k = match plan.steps {
                    Steps::Uniform(k) => k,
                    Steps::PerRow(_) => 1,
                };
                let trips = 1 + (k.max(1) - 1) / u64::from(plan.stages.max(1));
                plan.step_latency_s += (s - 1.0) * cx.hw.l2_latency_s / trips as f64;
            }
            plan
        }
        (GpuOp::Copy { bytes }, _) => streaming(
            &cx,
            KernelKind::Copy,
            bytes,
            1.0,
            1.0,
            // One 16-byte load and one 16-byte store per 16 bytes.
            2.0 / 16.0,
            0.0,
            0.0,
        )?,
        (
            GpuOp::Softmax {
                rows,
                cols,
                dtype,
                imp,
            },
            _,
        ) => {
            if imp == super::op::Impl::Torch {
                torch_softmax(&cx, rows, cols, dtype)?
            } else {
                softmax_with(
                    &cx,
                    rows,
                    cols,
                    dtype.bytes(),
                    dtype.out_bytes(),
                    SOFTMAX_FP32_OPS,
                )?
            }
        }
        (
            GpuOp::Rowwise {
                kind,
                rows,
                cols,
                dtype,
                imp,
            },
            i,
        ) => {
            let ks = kind.kernels(cols, dtype.bytes());
            let k = ks.get(i).ok_or_else(|| {
                cx.err(
                    "kernel",
                    format!("{} has {} kernels", kind.name(), ks.len()),
                )
            })?;
            if imp == super::op::Impl::Torch && matches!(kind, RowOp::LayerNorm | RowOp::RmsNorm) {
                torch_norm(&cx, rows, cols, kind, dtype)?
            } else {
                let b = dtype.bytes();
                streaming_with(
                    &cx,
                    KernelKind::Copy,
                    rows * cols,
                    k.reads * b,
                    k.writes * b,
                    k.fp32_ops,
                    k.sfu_ops,
                    op.flops() / ks.len() as f64,
                    if k.per_element {
                        PerElement::Scalar {
                            elem: b,
                            broadcast: k.broadcast * b,
                        }
                    } else {
                        PerElement::Vectorized
                    },
                )?
            }
        }
    };
    // CUDA grids hold at most 2³¹ − 1 blocks in x (CUDA C Programming Guide, technical
    // specifications); the models also scan the grid, so larger ones are refused.
    if plan.ctas() >= 1 << 31 {
        return Err(cx.err(
            "cta_tile_m",
            format!(
                "{} CTAs exceed the 2^31 - 1 CTAs of a CUDA grid",
                plan.ctas()
            ),
        ));
    }
    plan.persist = plan.shared_footprint() <= hw.l2_bytes;
    Ok(plan)
}

/// Split-K reduction: per output element, read each split's fp32 partial, add, convert.
fn split_reduce(cx: &Ctx, elements: u64, s: f64, dtype: Dtype) -> Result<KernelPlan, GpuError> {
    streaming(
        cx,
        KernelKind::SplitKReduce,
        elements,
        s * 4.0,
        dtype.out_bytes(),
        s + 1.0,
        0.0,
        (s - 1.0) * elements as f64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn brute(o: &Order, a: u64, b: u64) -> (u64, u64, u64) {
        let mut rows = HashSet::new();
        let mut cols = HashSet::new();
        let mut groups = HashSet::new();
        for i in a..b {
            let (g, r, c) = o.coords(i);
            rows.insert((g, r));
            cols.insert((g, c));
            groups.insert(g);
        }
        (rows.len() as u64, cols.len() as u64, groups.len() as u64)
    }

    /// The causal step table as the plan built it before the closed form: query block qb's
    /// last query is min((qb + 1)·br, n).
    fn causal_table(c: &Causal) -> Vec<u64> {
        (0..c.rows)
            .map(|r| {
                let qb = c.rows - 1 - r;
                let last_q = ((qb + 1) * c.br).min(c.n);
                let keys = (last_q + c.m).saturating_sub(c.n).min(c.m);
                keys.div_ceil(c.bc)
            })
            .collect()
    }

    #[test]
    fn causal_closed_form_matches_the_table() {
        let mut seed = 99u64;
        let mut rnd = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..2000 {
            let br = [16, 32, 64, 128, 256][rnd(5) as usize];
            let bc = [16, 32, 64, 128, 256][rnd(5) as usize];
            let n = 1 + rnd(3000);
            let m = if rnd(2) == 0 { n } else { 1 + rnd(5000) };
            let c = Causal {
                rows: n.div_ceil(br),
                br,
                bc,
                n,
                m,
            };
            let t = causal_table(&c);
            let mut acc = 0u128;
            for r in 0..c.rows {
                assert_eq!(c.steps_of_row(r), t[r as usize], "{c:?} row {r}");
                assert_eq!(c.prefix(r), acc, "{c:?} prefix {r}");
                acc += u128::from(t[r as usize]);
            }
            assert_eq!(c.prefix(c.rows), acc, "{c:?}");
        }
    }

    #[test]
    fn floor_sum_matches_the_loop() {
        for n in 0..30u128 {
            for m in 1..9u128 {
                for a in 0..12u128 {
                    for b in 0..12u128 {
                        let want: u128 = (0..n).map(|i| (a * i + b) / m).sum();
                        assert_eq!(floor_sum(n, m, a, b), want, "{n} {m} {a} {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn closed_form_distinct_counts_match_enumeration() {
        let mut seed = 12345u64;
        let mut rnd = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..400 {
            let rows = 1 + rnd(12);
            let o = Order {
                groups: 1 + rnd(3),
                rows,
                cols: 1 + rnd(12),
                band: 1 + rnd(rows),
            };
            // coords is a bijection
            let all: HashSet<_> = (0..o.ctas()).map(|i| o.coords(i)).collect();
            assert_eq!(all.len() as u64, o.ctas());
            for _ in 0..20 {
                let a = rnd(o.ctas());
                let b = a + 1 + rnd(o.ctas() - a);
                let want = brute(&o, a, b);
                let got = (
                    o.distinct_rows(a, b),
                    o.distinct_cols(a, b),
                    o.distinct_groups(a, b),
                );
                assert_eq!(got, want, "{o:?} [{a},{b})");
            }
        }
    }
}
