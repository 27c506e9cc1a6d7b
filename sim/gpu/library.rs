//! The kernels libraries launch: for an op whose implementation is a library's
//! ([`Impl`]), the mapping of its main kernel as that library chooses it — tile, warps,
//! instruction class, split — instead of the best mapping the search finds. Follow-up kernels
//! (split-K reductions, split-KV combines) are still searched: they are short streaming kernels.
//!
//! Each choice cites the evidence: the kernel names PyTorch's profiler recorded on the H200
//! (`reports/crosscheck/h200/dev_kernels.csv`), whose template arguments carry the tiles, and
//! the libraries' public dispatch code (FlashAttention-2's `run_mha_fwd_hdim*` and
//! `num_splits_heuristic`).
//!
//! - **cuBLAS, operands 16-byte aligned**: its `nvjet_sm90_*` wgmma kernels with a tile chosen
//!   per shape by a heuristic we do not reproduce: modelled as the best `wgmma` mapping (the
//!   search), which is what its autotuned kernels approach.
//! - **cuBLAS batched GEMMs** with both sides ≥ 256 and one ≥ 512 (aligned): its 256 × 128
//!   cooperative `nvjet_sm90_tst_256x128_64x4_1x2_h_bz_coopA` kernel, one CTA per SM; smaller
//!   batched GEMMs are searched as above.
//! - **cuBLAS, a leading dimension not 16-byte aligned** (`n` or `k` not a multiple of 8 bf16
//!   elements; bf16/fp16): its sm75 `align1` kernels (`s1688gemm_bf16_{256x128,128x128}_nn_align1`,
//!   `mma.sync`, K step 32, loading elements two bytes at a time) for 2-byte alignment and its
//!   sm80 `align2` kernel (`s16816gemm_bf16_128x256_64x3_nn_align2`, `cp.async`) for 4 or 8;
//!   the model takes the fastest of them with or without split-K ([`misaligned_gemm_kernels`];
//!   the plan's narrow loads: [`super::plan`]'s `narrow_issue_s`, and L2's request rate,
//!   [`super::hw::L2_REQUESTS_MEASURED`]).
//! - **flash** (PyTorch's flash SDPA backend, FlashAttention-2): `Flash_fwd_kernel_traits<d,
//!   kBlockM, kBlockN, warps>` = ⟨64, 128, 128, 4⟩ and ⟨128, 128, 64, 4⟩ as recorded; the other
//!   head dimensions from FlashAttention-2's `run_mha_fwd_hdim*` for sm90.
//! - **flash decode**: FlashAttention-2 swaps GQA's query heads into rows (one row block per KV
//!   head), then `num_splits_heuristic(b·hkv·row blocks, 2 × SMs, key blocks, 128)` picks the
//!   split; split 1 runs `flash_fwd_kernel` ⟨128, 128, 64, 4⟩ (its 128-row tile mostly padding:
//!   `decode_flash_b64…` is compute-bound on it), split > 1 `flash_fwd_splitkv_kernel`
//!   ⟨d, 64, 128 (d ≤ 128), 4⟩ plus a combine kernel. The recorded combine kernels' template
//!   (`Log_max_splits` 5, 1, 2) matches the heuristic's 32, 2 and 4 splits.
//! - **cuDNN prefill**: `cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7_
//!   64x128x{d}_4x1x1`: 64 query rows × 128 keys per consumer warpgroup (4 warps) of `wgmma`,
//!   three K/V stages; the next block's Q·Kᵀ hides the softmax, P·V does not
//!   (`plan::StepOverlap::NextScores`). Nsight Compute on the H200
//!   (`reports/crosscheck/h200/uneven_attention_ncu.csv`) shows 384-thread CTAs — a producer
//!   and two consumer warpgroups — on a persistent grid of 132: two consumers share one
//!   128-row query tile and its K/V stages, so a query count that is not a multiple of 128
//!   costs the next multiple (192 queries took 1.10–1.17× the time of 256, 448 causal 1.03–1.06× of
//!   512). The model plans 128 × 128 tiles of 8 warps.
//! - **cuDNN decode**: `..._sm80_flash_fprop_wmma_f16_knob_35_16x128x128_1x4x1` (16 query rows,
//!   128 keys per step, 4 warps, `mma.sync` class) plus `cudnn::fusion::lean_reduction_kernel`
//!   when it splits the keys. The split rule is inferred from which recorded cases launch the
//!   reduction (b·hkv = 8 and 64 split, 128 and 512 do not): the largest power of two with
//!   b·hkv·split ≤ SMs.
//!
//! - **ATen** (`impl=torch`): the norm kernel as it runs ([`TorchNorm`]), the softmax kernels'
//!   four kernel families ([`TorchSoftmax`]);
//!   elementwise ops as the kernels they launch ([`super::op::RowOp::kernels`]). Copies have one
//!   implementation.
//!
//! Where the model cannot plan a library's kernel for a shape, the search stands in and the
//! kernel is named `… (searched)` ([`super::search`]).

use super::hw::GpuParams;
use super::mapping::{Epilogue, GpuMapping, InstrClass, KernelKind};
use super::op::{GpuOp, Impl, RowOp};

fn map(
    kernel: KernelKind,
    (m, n, k): (u32, u32, u32),
    stages: u32,
    warps: u32,
    split: u32,
    instr: InstrClass,
) -> GpuMapping {
    GpuMapping {
        kernel,
        cta_tile_m: m,
        cta_tile_n: n,
        cta_tile_k: k,
        stages,
        warps,
        split_k: split,
        swizzle: 1,
        instr,
        epilogue: Epilogue::Staged,
    }
}

/// FlashAttention-2 keeps one K and one V tile in shared memory (`kernel_traits.h`:
/// `kSmemKVSize = size(SmemLayoutKV) * 2 * sizeof(Element)`, one `kBlockN × kHeadDim` tile each),
/// and loads the next K while the current block's softmax and P·V run, V while its Q·Kᵀ runs
/// (`flash_fwd_kernel.h`): one K/V stage, not two.
pub const FA2_KV_STAGES: u32 = 1;

/// FlashAttention-2's forward tile for head dimension `d` on sm90 (`run_mha_fwd_hdim*`, no
/// dropout): (kBlockM, kBlockN, warps).
pub fn fa2_tile(d: u64) -> (u32, u32, u32) {
    match d {
        0..=32 => (128, 128, 4),
        33..=64 => (128, 128, 4),
        65..=96 => (128, 64, 4),
        97..=128 => (128, 64, 4),
        129..=160 => (128, 32, 4),
        161..=224 => (128, 64, 8),
        // `run_mha_fwd_hdim256`: 64 × 64 with 4 warps (two CTAs per SM) where shared memory
        // per SM allows it, as on sm90.
        _ => (64, 64, 4),
    }
}

/// FlashAttention-2's split heuristic (`num_splits_heuristic` in its `flash_api.cpp`): no split
/// when the row blocks fill 80% of the (doubled) SM count; otherwise the fewest splits, among
/// those that change the blocks per split, whose wave efficiency is within 85% of the best.
pub fn fa2_num_splits(blocks: u64, sms: u64, key_blocks: u64, max_splits: u64) -> u64 {
    if blocks as f64 >= 0.8 * sms as f64 {
        return 1;
    }
    let max_splits = max_splits.min(sms).min(key_blocks).max(1);
    let eff = |s: u64| {
        let waves = (blocks * s) as f64 / sms as f64;
        waves / waves.ceil()
    };
    let eligible = |s: u64| s == 1 || key_blocks.div_ceil(s) != key_blocks.div_ceil(s - 1);
    let best = (1..=max_splits)
        .filter(|&s| eligible(s))
        .map(eff)
        .fold(0.0, f64::max);
    (1..=max_splits)
        .find(|&s| eligible(s) && eff(s) >= 0.85 * best)
        .unwrap_or(1)
}

/// ATen's `vectorized_layer_norm_kernel<T, float, rms>` (layer norm; RMS norm with `rms` true),
/// one CTA of 128 threads per row, 4 elements per thread per iteration (PyTorch's
/// `layer_norm_kernel.cu`: `vec_size` 4, `num_threads()` 128, `blockDim` = (32, 4)).
///
/// Per row the kernel runs `compute_stats` (a loop of vector loads, each element folded into
/// a per-thread Welford triplet; five `WARP_SHFL_DOWN` levels combining triplets; two
/// shared-memory levels across the four warps with five `__syncthreads`; the broadcast), then
/// the normalization loop re-reading the row and storing it, then thread 0 stores mean and
/// rstd. Layer norm's Welford update and every combine (`cuWelfordOnlineSum`,
/// `cuWelfordCombine`) take a reciprocal of the running count and chain on the running mean;
/// the RMS variant (`rms_norm` true) only sums squares.
///
/// Four figures are MEASURED on the H200 by a development sweep (`reports/crosscheck/h200/
/// rowsweep.csv`, kernel times in `rowsweep_kernels.csv`, `scripts/gpu/measure_torch.py
/// --set rowsweep`) and the dev/held-out kernel times (`*_kernels.csv`):
/// - the time of one iteration (both passes) of a lone row: the slope of the one-row kernel's
///   time over the iterations (768, 2048, 4096, 8192 columns = 2, 4, 8, 16 iterations):
///   layer norm 3.68, 5.54, 10.27, 16.89 µs → 0.94 µs per iteration; RMS norm 2.69, 4.70,
///   7.58, 14.46 µs → 0.84 µs. A load from HBM takes 0.34 µs (`gpu.dram_latency_cycles`); the
///   rest is the kernel's dependency chain (the re-read of the row in the second pass, the
///   Welford update's division, the loop);
/// - the per-row fixed latency ([`TorchNorm::row_latency_s`]): the same fits' intercepts are
///   1.79 µs (layer norm) and 1.01 µs (RMS norm). RMS norm's is what the model already charges
///   any lone CTA (launch, first load, the stores' acknowledgement: its lone-row cases are
///   within −3..+7%), so it has no per-row extra; layer norm's 0.78 µs more is the work RMS
///   skips: a reciprocal and a dependent multiply-add chain in each of the seven Welford
///   combines (five shuffle levels, two shared-memory levels between barriers) and the mean
///   store. It is a latency, overlapped across resident rows like the loads;
/// - the registers, the kernel's own (Nsight Compute, `reports/crosscheck/h200/
///   norm_occupancy_ncu.csv`): 27 per thread (RMS norm) and 32 (layer norm), so an SM holds
///   16 rows of 128 threads (2,112 rows a wave), and the kernel's time has no step at 1,320
///   rows (RMS, 4,096 columns: 9.89 and 10.02 µs at 1,320 and 1,408 rows);
/// - the instructions per element of the first pass ([`TorchNorm::issue_per_elem`]), counted
///   from the source.
///
/// With many resident rows each iteration lasts longer than a lone row's: the other rows'
/// loads and stores lengthen the HBM round trip (measured, [`super::hw::LOADED_ROUND_TRIP`]),
/// their arithmetic takes the issue slots, and with 8,192 columns the 16 rows overflow L1, so
/// the second pass re-reads from L2 ([`super::plan::RowChain`]). Until the eleventh session the
/// model took 48 registers (10 rows per SM) and lone-row round trips, two errors that
/// compensated at many rows and put 1,408–1,536-row cases 23–31% slow (their own wave step).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TorchNorm {
    iteration_s: f64,
    row_s: f64,
    regs: u32,
    issue: f64,
}

impl TorchNorm {
    /// Threads per CTA (one row).
    pub const THREADS: u32 = 128;
    /// Elements each thread loads per iteration.
    pub const VEC: u32 = 4;

    /// The kernel of a norm op, `None` for other row ops.
    pub fn of(kind: RowOp) -> Option<TorchNorm> {
        match kind {
            RowOp::LayerNorm => Some(TorchNorm {
                iteration_s: 0.944e-6,
                // 1.79 − 1.01 µs: the lone-row intercepts (see above).
                row_s: 0.78e-6,
                regs: 32,
                issue: 6.0 + DIV_INSTRS,
            }),
            RowOp::RmsNorm => Some(TorchNorm {
                iteration_s: 0.841e-6,
                row_s: 0.0,
                regs: 27,
                issue: 3.0,
            }),
            _ => None,
        }
    }

    /// Instructions per element of the first pass (ATen's `cuWelfordOnlineSum`), counted from
    /// the source: RMS norm converts the element, counts it (`FADD`) and adds its square
    /// (`FFMA`), 3; layer norm converts, takes `delta` (`FADD`), counts, takes `1.f / count`
    /// (an IEEE reciprocal, [`DIV_INSTRS`]), updates the mean (`FFMA`), takes `val − mean`
    /// (`FADD`) and updates `M2` (`FFMA`), 14.
    pub fn issue_per_elem(self) -> f64 {
        self.issue
    }

    /// One iteration of a lone row, seconds (its HBM load included).
    pub fn iteration_latency_s(self) -> f64 {
        self.iteration_s
    }

    /// The row's fixed latency beyond its iterations and what every CTA pays, seconds.
    pub fn row_latency_s(self) -> f64 {
        self.row_s
    }

    /// Registers per thread: the kernel's, measured (16 rows per SM).
    pub fn regs_per_thread(self) -> u32 {
        self.regs
    }

    /// The kernel's mapping.
    pub fn mapping() -> GpuMapping {
        map(
            KernelKind::Copy,
            (1, Self::THREADS * Self::VEC, 1),
            1,
            Self::THREADS / 32,
            1,
            InstrClass::CudaCore,
        )
    }
}

/// Instructions of CUDA's accurate `expf` (what `std::exp` on a float compiles to without fast
/// math): range reduction (`FFMA.SAT`, `FFMA.RM`, `FADD`, two `FFMA`), the exponent shift
/// (`SHF`), `MUFU.EX2` and the scaling `FMUL`.
pub const EXPF_INSTRS: f64 = 8.0;

/// Instructions of an IEEE fp32 division (`div.rn.f32`): `MUFU.RCP`, five `FFMA` of the
/// Newton–Raphson refinement and correction, `FCHK` and the branch to the slow path.
pub const DIV_INSTRS: f64 = 8.0;

/// The SM clock the H200 held while it ran the softmax kernels: 1,980 MHz median
/// (`reports/crosscheck/h200/clocks_under_load.csv`, `softmax_16384x1024`; the whitepaper's
/// maximum boost clock), where the preset's `clock_sustained` (1.83 GHz) is the clock under
/// tensor-core load.
pub const SOFTMAX_CLOCK_HZ: f64 = 1.98e9;

/// Issue slots per element of `softmax_warp_forward`: FITTED on the two largest warp-kernel dev
/// cases, `softmax_65536x512` and `softmax_32768x1024` (calibration, in no score:
/// [`super::torch_truth::CALIBRATION`]), where the kernel runs at 2.3–2.4 elements per clock
/// per SM, neither HBM- nor L2-bound. The source counts 27 (bound check, load, convert, −∞
/// select; compare + select for the max; subtract, [`EXPF_INSTRS`], add; an IEEE division of
/// [`DIV_INSTRS`], convert, bound check, store): the kernel issues about 1.8 times what the
/// source shows, which only its SASS can settle (the block kernels match their source count).
pub const WARP_SOFTMAX_INSTRS_PER_ELEM: f64 = 48.0;

/// One element's share of a lone lane's chain in `softmax_warp_forward`, seconds: MEASURED by the
/// development row sweep (`rowsweep_kernels.csv`, one row): 3.20, 5.47, 10.43 µs at 512, 1,024,
/// 2,048 columns (16, 32, 64 elements per lane), 0.151 µs per element — an L2 round trip
/// (263 cycles, `gpu.l2_latency_cycles`) or ~55 dependent instructions per element. A warp's
/// row is this chain, during which the SM's other warps issue.
pub const WARP_SOFTMAX_LANE_ELEM_S: f64 = 0.151e-6;

/// Loop iterations whose loads a thread of the vectorized block kernels has in flight: the
/// loops (`ilpReduce`, the shared-memory kernel's caching loop, `WriteFpropResultsVectorized`)
/// carry no dependency from one iteration's load to the next, and nvcc unrolls such loops by 4.
pub const SOFTMAX_LOADS_IN_FLIGHT: u32 = 4;

/// Latency of one step of a shuffle reduction (`SHFL` then the max or add on its result),
/// cycles: ESTIMATE (shuffle latency of 20–30 cycles in published microbenchmarks of
/// Volta–Hopper SMs, plus the dependent FP32 operation).
pub const SHUFFLE_STEP_CYCLES: f64 = 30.0;

/// Latency of a `__syncthreads()` with its shared-memory store and load around it, cycles:
/// ESTIMATE (barrier ~20 cycles, shared-memory load ~30 cycles, published microbenchmarks).
pub const BARRIER_CYCLES: f64 = 60.0;

/// ATen's softmax kernels (`aten/src/ATen/native/cuda/SoftMax.cu`, `PersistentSoftmax.cuh`) as
/// `host_softmax` dispatches them for a contiguous row of `cols` elements of `elem_bytes` bytes
/// (the recorded kernel names, `*_kernels.csv`, confirm each choice):
/// - `cols ≤ 2048` and `cols · elem_bytes ≤ 8192`: `softmax_warp_forward<…, log2_elements>`, a
///   warp per row, 128-thread CTAs (4 rows), each lane holding its `cols / 32` elements in
///   registers (`elements[WARP_ITERATIONS]`, fp32): one load, two warp reductions (max, sum,
///   `warp_reduce` by shuffles), one store;
/// - otherwise a block per row of `SoftMaxForward_getBlockSize` = 1,024 threads, and with
///   `potential_register_count = ⌈cols / 1024⌉ < 10`: `cunn_SoftMaxForwardReg<…, reg_cnt>`, the
///   row in registers (`scalar_t reg[reg_cnt]`, 2-byte loads and stores);
/// - else, when the row fits the default 48 KiB `sharedMemPerBlock` (and 16-byte alignment,
///   `cols % 8 == 0`): `cunn_SoftMaxForwardSmem`, the row cached in shared memory while the
///   max pass loads it (16-byte vector loads, `ILP` = 8 bf16);
/// - else `cunn_SoftMaxForward`: three passes over the row in global memory (`ilpReduce` for
///   the max, `ilpReduce` for the sum of exponentials, `WriteFpropResultsVectorized`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TorchSoftmax {
    /// `softmax_warp_forward`, with `cols / 32` elements per lane.
    Warp,
    /// `cunn_SoftMaxForwardReg` with `reg_cnt` elements per thread.
    Reg(u32),
    /// `cunn_SoftMaxForwardSmem`.
    Smem,
    /// `cunn_SoftMaxForward`.
    Plain,
}

impl TorchSoftmax {
    /// Threads of the block kernels' CTA (`SoftMaxForward_getBlockSize`: `min(cols, 1024)`
    /// rounded up to a warp; every block-kernel row is longer than 1,024).
    pub const BLOCK_THREADS: u32 = 1024;
    /// Rows (one warp each) of a `softmax_warp_forward` CTA: 128 threads per block
    /// (`dispatch_softmax_forward`), one row per warp beyond 128 columns.
    pub const WARP_ROWS: u32 = 4;
    /// `sharedMemPerBlock` without the opt-in: the limit `host_softmax` checks.
    pub const SMEM_PER_BLOCK: u64 = 48 * 1024;

    /// The kernel `host_softmax` launches for rows of `cols` elements of `elem_bytes` bytes.
    pub fn of(cols: u64, elem_bytes: u64) -> TorchSoftmax {
        let threads = u64::from(Self::BLOCK_THREADS);
        let ilp = (16 / elem_bytes.max(1)).max(1);
        if cols <= 2048 && cols * elem_bytes <= 8192 {
            TorchSoftmax::Warp
        } else if cols.div_ceil(threads) < 10 {
            TorchSoftmax::Reg(cols.div_ceil(threads) as u32)
        } else if cols * elem_bytes + 4 * threads / 32 < Self::SMEM_PER_BLOCK
            && cols.is_multiple_of(ilp)
        {
            TorchSoftmax::Smem
        } else {
            TorchSoftmax::Plain
        }
    }

    /// Issue slots (lane-instructions) per element. The block kernels' are counted from the
    /// source with the sequences CUDA compiles its operations to ([`EXPF_INSTRS`] per
    /// `std::exp`, [`DIV_INSTRS`] per IEEE division, one per conversion, compare, select, add):
    /// - max pass: convert, compare + select (3); sum pass: convert, subtract, `expf`, add (11);
    ///   write pass: convert, subtract, `expf` again (the epilogue recomputes it), divide,
    ///   convert (19); per 8-element vector a load, a store or shared-memory access, an address
    ///   and a loop compare in each pass (≈ 1 per element): 34;
    /// - the register kernel: scalar loads and stores and a bound check per element in each of
    ///   its three loops (`if (offset < classes)`) instead: 38.
    ///
    /// The warp kernel's is fitted ([`WARP_SOFTMAX_INSTRS_PER_ELEM`]).
    pub fn instrs_per_elem(self) -> f64 {
        match self {
            TorchSoftmax::Warp => WARP_SOFTMAX_INSTRS_PER_ELEM,
            TorchSoftmax::Reg(_) => {
                3.0 + (3.0 + EXPF_INSTRS) + (3.0 + EXPF_INSTRS + DIV_INSTRS) + 5.0
            }
            TorchSoftmax::Smem | TorchSoftmax::Plain => {
                3.0 + (3.0 + EXPF_INSTRS) + (3.0 + EXPF_INSTRS + DIV_INSTRS) + 1.0
            }
        }
    }

    /// Cycles of the kernel's two reductions (max, then sum) on a row's critical path: the warp
    /// kernel's `warp_reduce` is 5 shuffle steps each; the block kernels' `blockReduceWarp`
    /// (`cuda_utils::BlockReduce`) reduces each warp (5 steps), stores to shared memory, syncs,
    /// reduces the 32 warp results in warp 0 (5 steps), and syncs twice more to broadcast.
    pub fn reduction_cycles(self) -> f64 {
        match self {
            TorchSoftmax::Warp => 2.0 * 5.0 * SHUFFLE_STEP_CYCLES,
            _ => 2.0 * (10.0 * SHUFFLE_STEP_CYCLES + 3.0 * BARRIER_CYCLES),
        }
    }

    /// Steps (loads each thread waits for in turn) and passes over the row in global memory,
    /// for a CTA loading `per_load` elements per step. The warp and register kernels load their
    /// whole row at once (unrolled loops into registers): one step. The vectorized kernels' loops
    /// load 8 elements per thread per iteration, [`SOFTMAX_LOADS_IN_FLIGHT`] of them in flight;
    /// the plain kernel's three loops each read the row from global memory, and HBM serves all
    /// three: its large cases run at the copy ceiling for three reads and a write (2048 × 65536:
    /// 1 GiB, 251.7 µs kernel time against 252 µs at 4.27 TB/s; the L2 state makes no
    /// difference, `l2_state.csv`, 4096 × 32768).
    pub fn loads_and_passes(self, cols: u64, per_load: u64) -> (u64, u64) {
        match self {
            TorchSoftmax::Warp | TorchSoftmax::Reg(_) => (1, 1),
            TorchSoftmax::Smem => (cols.div_ceil(per_load.max(1)), 1),
            TorchSoftmax::Plain => (3 * cols.div_ceil(per_load.max(1)), 3),
        }
    }

    /// Registers per thread beyond the model's base: the row's elements each thread keeps (fp32
    /// in the warp kernel, 16-bit in the register kernel) or one 16-byte vector. The block
    /// kernels then hold one CTA per SM (1,024 threads over 32 registers), as the row sweep
    /// shows: each added row per SM adds about the lone row's time (`rowsweep_kernels.csv`,
    /// 132 → 1,056 rows: 1.74 µs per row at 4,096 columns, 4.35 at 16,384, 7.98 at 32,768).
    pub fn extra_regs(self, cols: u64) -> f64 {
        match self {
            TorchSoftmax::Warp => (cols / 32) as f64,
            TorchSoftmax::Reg(n) => f64::from(n),
            TorchSoftmax::Smem | TorchSoftmax::Plain => 4.0,
        }
    }

    /// The kernel's mapping: (rows per CTA, elements a CTA loads per step, 1),
    /// [`SOFTMAX_LOADS_IN_FLIGHT`] stages (only the vectorized loops have more than one step),
    /// its warps.
    pub fn mapping(self, cols: u64, elem_bytes: u64) -> GpuMapping {
        let (tm, tn, warps) = match self {
            TorchSoftmax::Warp => (Self::WARP_ROWS, cols as u32, Self::WARP_ROWS),
            TorchSoftmax::Reg(_) => (1, Self::BLOCK_THREADS, Self::BLOCK_THREADS / 32),
            TorchSoftmax::Smem | TorchSoftmax::Plain => (
                1,
                Self::BLOCK_THREADS * (16 / elem_bytes.max(1)) as u32,
                Self::BLOCK_THREADS / 32,
            ),
        };
        map(
            KernelKind::Softmax,
            (tm, tn, 1),
            SOFTMAX_LOADS_IN_FLIGHT,
            warps,
            1,
            InstrClass::CudaCore,
        )
    }
}

/// The kernels cuBLAS has for GEMMs whose operands are not 16-byte aligned, as recorded
/// (`dev_kernels.csv`, `heldout1_kernels.csv`; `heldout2_kernels.csv` also shows a 64 × 64
/// `align1` kernel at 511³ and a 256 × 128 `align2` one, not modelled): with 2-byte alignment
/// its sm75 `align1` kernels,
/// `s1688gemm_bf16_{256x128,128x128}_nn_align1` (K step 32, 2 stages, 8 and 4 warps), the
/// 128 × 128 one with a split-K reduction on small shapes (1023³, 999³); with 4- or 8-byte
/// alignment its sm80 `s16816gemm_bf16_128x256_64x3_nn_align2` (K step 64, 3 stages, 8 warps).
/// Which of them cuBLAS picks for a shape is its heuristic's choice, which we do not reproduce:
/// the model takes the fastest of them, as it takes the fastest `wgmma` mapping for aligned
/// operands.
pub fn misaligned_gemm_kernels(vector: u32) -> Vec<GpuMapping> {
    let mut v = Vec::new();
    for split in [1, 2, 4, 8] {
        if vector <= 2 {
            v.push(map(
                KernelKind::Gemm,
                (256, 128, 32),
                2,
                8,
                split,
                InstrClass::MmaSync,
            ));
            v.push(map(
                KernelKind::Gemm,
                (128, 128, 32),
                2,
                4,
                split,
                InstrClass::MmaSync,
            ));
        } else {
            v.push(map(
                KernelKind::Gemm,
                (128, 256, 64),
                3,
                8,
                split,
                InstrClass::MmaSync,
            ));
        }
    }
    v
}

/// The main kernel's mappings as the op's library chooses among them (one, or the few kernels a
/// library picks from by a heuristic), or `None` when the op's mapping is searched
/// (`impl=ideal`, `fa2`, `fa3`, aligned cuBLAS GEMMs, ATen's kernels, copies).
pub fn library_mappings(op: &GpuOp, hw: &GpuParams) -> Option<Vec<GpuMapping>> {
    match *op {
        GpuOp::Gemm {
            imp: Impl::Cublas, ..
        }
        | GpuOp::Bmm {
            imp: Impl::Cublas, ..
        } if op.cublas_narrow() => Some(misaligned_gemm_kernels(op.vector_bytes())),
        // cuBLAS's batched GEMMs with both sides of at least 256 and one of 512 or more run
        // its 256 × 128 cooperative `nvjet` kernel (K step 64, 4 stages, two consumer
        // warpgroups and a producer: `nvjet_sm90_tst_256x128_64x4_1x2_h_bz_coopA`) in 14 of the
        // 16 such recorded cases (`{dev,heldout1,heldout2}_kernels.csv`; the others ran
        // 192 × 128 and 320 × 128 variants). With one CTA per SM its epilogue's stores do not
        // overlap another CTA's loads, which the fastest searched mapping assumed (bmm was
        // 24% fast on average). Smaller batched GEMMs take the fastest searched mapping.
        GpuOp::Bmm {
            m,
            n,
            imp: Impl::Cublas,
            ..
        } if m.max(n) >= 512 && m.min(n) >= 256 => Some(vec![map(
            KernelKind::Gemm,
            (256, 128, 64),
            4,
            12,
            1,
            InstrClass::Wgmma,
        )]),
        GpuOp::Rowwise {
            kind: RowOp::LayerNorm | RowOp::RmsNorm,
            imp: Impl::Torch,
            ..
        } => Some(vec![TorchNorm::mapping()]),
        GpuOp::Softmax {
            cols,
            dtype,
            imp: Impl::Torch,
            ..
        } => {
            let bytes = dtype.bytes() as u64;
            Some(vec![TorchSoftmax::of(cols, bytes).mapping(cols, bytes)])
        }
        _ => library_mapping(op, hw).map(|m| vec![m]),
    }
}

/// The main kernel's mapping where the library's choice is one kernel (see the module
/// documentation), else `None`.
pub fn library_mapping(op: &GpuOp, hw: &GpuParams) -> Option<GpuMapping> {
    let sms = u64::from(hw.sms);
    match *op {
        GpuOp::Attention {
            d,
            imp: Impl::Flash,
            ..
        } => {
            let (br, bc, w) = fa2_tile(d);
            Some(map(
                KernelKind::FlashAttention,
                (br, bc, d as u32),
                FA2_KV_STAGES,
                w,
                1,
                InstrClass::MmaSync,
            ))
        }
        GpuOp::Attention {
            d,
            imp: Impl::Cudnn,
            ..
        } => Some(map(
            KernelKind::FlashAttention,
            (128, 128, d as u32),
            // Two consumer warpgroups of 64 rows share one 128-row query tile (see the module
            // documentation). The stage count is not in the kernel's name: three K/V stages, the most that fit
            // at d = 128 (208 of 227 KB). With two, the pipeline's round trips stayed exposed
            // on the long non-causal d = 128 cases (17–21% slow on the development data).
            3,
            8,
            1,
            InstrClass::Wgmma,
        )),
        GpuOp::DecodeAttention {
            b,
            hq,
            hkv,
            l,
            d,
            imp: Impl::Flash,
            ..
        } => {
            let group = hq / hkv;
            let rows = group.div_ceil(64);
            let bc = if d <= 64 {
                256
            } else if d <= 128 {
                128
            } else {
                64
            };
            let split = fa2_num_splits(b * hkv * rows, 2 * sms, l.div_ceil(bc), 128);
            Some(if split == 1 {
                let (br, bc1, w) = fa2_tile(d);
                let tm = group.div_ceil(u64::from(br)) * u64::from(br);
                map(
                    KernelKind::DecodeSplitKv,
                    (tm as u32, bc1, d as u32),
                    FA2_KV_STAGES,
                    w,
                    1,
                    InstrClass::MmaSync,
                )
            } else {
                map(
                    KernelKind::DecodeSplitKv,
                    ((rows * 64) as u32, bc as u32, d as u32),
                    FA2_KV_STAGES,
                    4,
                    split as u32,
                    InstrClass::MmaSync,
                )
            })
        }
        GpuOp::DecodeAttention {
            b,
            hq,
            hkv,
            l,
            d,
            imp: Impl::Cudnn,
            ..
        } => {
            let group = hq / hkv;
            let tm = group.div_ceil(16) * 16;
            let key_blocks = l.div_ceil(128);
            let mut split = 1u64;
            while b * hkv * split * 2 <= sms && split * 2 <= key_blocks {
                split *= 2;
            }
            Some(map(
                KernelKind::DecodeSplitKv,
                (tm as u32, 128, d as u32),
                2,
                4,
                split as u32,
                InstrClass::MmaSync,
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The softmax kernel `host_softmax` picks for bf16 rows, as recorded (`*_kernels.csv`,
    /// `rowsweep_kernels.csv`: `softmax_warp_forward<…, 9|10|11, …>` at 512–2,048 columns,
    /// `cunn_SoftMaxForwardReg<…, 4|8>` at 4,096 and 8,192, `…Smem` at 16,384, the plain
    /// `cunn_SoftMaxForward` at 32,768 and 65,536).
    #[test]
    fn softmax_dispatch_matches_the_recorded_kernels() {
        use TorchSoftmax::*;
        for (cols, k) in [
            (512, Warp),
            (1024, Warp),
            (2048, Warp),
            (4096, Reg(4)),
            (8192, Reg(8)),
            (16384, Smem),
            (32768, Plain),
            (65536, Plain),
        ] {
            assert_eq!(TorchSoftmax::of(cols, 2), k, "{cols}");
        }
        // fp32 rows of 2,048 are 8 KiB, the warp kernel's limit.
        assert_eq!(TorchSoftmax::of(2048, 4), Warp);
        assert_eq!(TorchSoftmax::of(2049, 4), Reg(3));
    }

    /// The splits FlashAttention-2 chose on the H200 (132 SMs), read from the combine kernels'
    /// `Log_max_splits` template argument in `dev_kernels.csv`.
    #[test]
    fn fa2_split_heuristic_matches_the_recorded_kernels() {
        // b=1, hkv=8, l=4096: 8 row blocks, 32 key blocks of 128 → 32 splits (Log 5).
        assert_eq!(fa2_num_splits(8, 264, 32, 128), 32);
        // b=16, l=2048: 128 row blocks, 16 key blocks → 2 splits (Log 1).
        assert_eq!(fa2_num_splits(128, 264, 16, 128), 2);
        // b=8, hkv=8, l=8192: 64 row blocks, 64 key blocks → 4 splits (Log 2).
        assert_eq!(fa2_num_splits(64, 264, 64, 128), 4);
        // b=64: 512 row blocks ≥ 0.8 × 264 → no split (flash_fwd_kernel was launched).
        assert_eq!(fa2_num_splits(512, 264, 8, 128), 1);
    }

    #[test]
    fn library_choices_follow_alignment_and_impl() {
        let spec = cascade_arch::preset("h200").unwrap().gpu.unwrap();
        let hw = GpuParams::new(&spec);
        let m = |s: &str| library_mapping(&GpuOp::parse(s).unwrap(), &hw);
        assert!(m("gemm m=4096 n=4096 k=4096").is_none());
        assert!(
            m("gemm m=4095 n=4096 k=4096").is_none(),
            "m is no leading dimension"
        );
        let ms = |s: &str| library_mappings(&GpuOp::parse(s).unwrap(), &hw);
        let a1 = ms("gemm m=4096 n=4095 k=4096").unwrap();
        assert!(a1
            .iter()
            .all(|m| m.instr == InstrClass::MmaSync && m.cta_tile_k == 32));
        let a2 = ms("gemm m=4096 n=4098 k=4096").unwrap();
        assert!(a2
            .iter()
            .all(|m| (m.cta_tile_m, m.cta_tile_n) == (128, 256)));
        assert!(ms("gemm m=4096 n=4095 k=4096 impl=ideal").is_none());
        assert!(ms("gemm m=4095 n=4096 k=4096").is_none());
        let c = m("decode_attention b=1 hq=32 hkv=8 l=4096 d=128").unwrap();
        assert_eq!((c.cta_tile_m, c.split_k), (16, 16));
        let c = m("decode_attention b=64 hq=32 hkv=8 l=1024 d=128").unwrap();
        assert_eq!(c.split_k, 1);
        let f = m("decode_attention b=64 hq=32 hkv=8 l=1024 d=128 impl=flash").unwrap();
        assert_eq!((f.cta_tile_m, f.cta_tile_n, f.split_k), (128, 64, 1));
        let a = m("attention b=1 h=32 n=4096 d=128 causal=1").unwrap();
        assert_eq!(
            (a.cta_tile_m, a.cta_tile_n, a.warps, a.instr),
            (128, 128, 8, InstrClass::Wgmma)
        );
        let a = m("attention b=1 h=32 n=4096 d=64 impl=flash").unwrap();
        assert_eq!((a.cta_tile_m, a.cta_tile_n), (128, 128));
        assert!(m("attention b=1 h=32 n=4096 d=64 impl=fa3").is_none());
    }
}
