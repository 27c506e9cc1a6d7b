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
//! - **cuBLAS, a leading dimension not 16-byte aligned** (`n` or `k` not a multiple of 8 bf16
//!   elements): `cutlass_75_tensorop_bf16_s1688gemm_bf16_256x128_nn_align1`, a Turing-era
//!   `mma.sync` kernel, 256 × 128 tiles, K step 32, 8 warps, 2 stages, loading elements one at a
//!   time (the plan's narrow loads: [`super::plan`]'s `narrow_issue_s`, and L2's request rate,
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
//!   64x128x{d}_4x1x1`: one warpgroup (4 warps) of `wgmma`, 64 query rows × 128 keys.
//! - **cuDNN decode**: `..._sm80_flash_fprop_wmma_f16_knob_35_16x128x128_1x4x1` (16 query rows,
//!   128 keys per step, 4 warps, `mma.sync` class) plus `cudnn::fusion::lean_reduction_kernel`
//!   when it splits the keys. The split rule is inferred from which recorded cases launch the
//!   reduction (b·hkv = 8 and 64 split, 128 and 512 do not): the largest power of two with
//!   b·hkv·split ≤ SMs.
//!
//! Softmax, norms and elementwise ops (`impl=torch`) are planned from their kernels' structure
//! in [`super::plan`]; copies have one implementation.

use super::hw::GpuParams;
use super::mapping::{Epilogue, GpuMapping, InstrClass, KernelKind};
use super::op::{GpuOp, Impl};

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

/// FlashAttention-2's forward tile for head dimension `d` on sm90 (`run_mha_fwd_hdim*`, no
/// dropout): (kBlockM, kBlockN, warps).
pub fn fa2_tile(d: u64) -> (u32, u32, u32) {
    match d {
        0..=32 => (128, 128, 4),
        33..=64 => (128, 128, 4),
        65..=96 => (128, 64, 4),
        97..=128 => (128, 64, 4),
        129..=160 => (128, 32, 4),
        _ => (128, 64, 8),
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

/// The main kernel's mapping as the op's library chooses it, or `None` when the op's mapping is
/// searched (`impl=ideal`, `fa2`, `fa3`, aligned cuBLAS GEMMs, ATen's kernels, copies).
pub fn library_mapping(op: &GpuOp, hw: &GpuParams) -> Option<GpuMapping> {
    let sms = u64::from(hw.sms);
    match *op {
        GpuOp::Gemm {
            imp: Impl::Cublas, ..
        }
        | GpuOp::Bmm {
            imp: Impl::Cublas, ..
        } if op.vector_bytes() < 16 => Some(map(
            KernelKind::Gemm,
            (256, 128, 32),
            2,
            8,
            1,
            InstrClass::MmaSync,
        )),
        GpuOp::Attention {
            d,
            imp: Impl::Flash,
            ..
        } => {
            let (br, bc, w) = fa2_tile(d);
            Some(map(
                KernelKind::FlashAttention,
                (br, bc, d as u32),
                2,
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
            (64, 128, d as u32),
            2,
            4,
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
                    2,
                    w,
                    1,
                    InstrClass::MmaSync,
                )
            } else {
                map(
                    KernelKind::DecodeSplitKv,
                    ((rows * 64) as u32, bc as u32, d as u32),
                    2,
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
        let a1 = m("gemm m=4096 n=4095 k=4096").unwrap();
        assert_eq!((a1.cta_tile_m, a1.instr), (256, InstrClass::MmaSync));
        assert!(m("gemm m=4096 n=4095 k=4096 impl=ideal").is_none());
        let c = m("decode_attention b=1 hq=32 hkv=8 l=4096 d=128").unwrap();
        assert_eq!((c.cta_tile_m, c.split_k), (16, 16));
        let c = m("decode_attention b=64 hq=32 hkv=8 l=1024 d=128").unwrap();
        assert_eq!(c.split_k, 1);
        let f = m("decode_attention b=64 hq=32 hkv=8 l=1024 d=128 impl=flash").unwrap();
        assert_eq!((f.cta_tile_m, f.cta_tile_n, f.split_k), (128, 64, 1));
        let a = m("attention b=1 h=32 n=4096 d=128 causal=1").unwrap();
        assert_eq!(
            (a.cta_tile_m, a.cta_tile_n, a.instr),
            (64, 128, InstrClass::Wgmma)
        );
        let a = m("attention b=1 h=32 n=4096 d=64 impl=flash").unwrap();
        assert_eq!((a.cta_tile_m, a.cta_tile_n), (128, 128));
        assert!(m("attention b=1 h=32 n=4096 d=64 impl=fa3").is_none());
    }
}
