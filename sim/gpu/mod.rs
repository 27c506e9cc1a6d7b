//! GPU (H100 tensor-core) models: kernels as *mappings* onto SMs, tensor cores, shared memory,
//! L2 and HBM, timed by two models that agree within 6% on the test suite.
//!
//! - [`op`]: [`GpuOp`] parsed from one-line specs (`gemm m=4096 n=4096 k=4096 dtype=bf16`),
//!   with FLOP and minimum-byte counts.
//! - [`mapping`]: [`GpuMapping`], one per kernel (CTA tile, stages, warps, split-K/KV,
//!   swizzle, instruction class).
//! - [`plan`]: an op and its mapping lowered to CTA grids, pipeline steps and operand streams —
//!   the common input of both models.
//! - [`analytical`]: closed-form per-wave model ([`predict`]).
//! - [`cycle`]: discrete-event cycle-level simulation of the same mapping ([`simulate`]), on
//!   [`crate::engine`].
//! - [`search`]: a small parallel mapper; [`estimate`] returns the fastest mapping's estimate.
//! - [`recorded`]: recorded H100 measurements against the model (CSV, Markdown, plot).
//!
//! Hardware figures come from [`cascade_arch::GpuSpec`] (the `h100` preset; REFERENCES.md,
//! "NVIDIA H100 SXM5 80GB"): 132 SMs, 4096 dense BF16 FLOP/clk/SM at the 1.83 GHz sustained
//! clock (989 TFLOP/s), 228 KB shared memory and 256 KB registers per SM, 50 MB L2, HBM3 at
//! 3.35 TB/s over 10 controllers, Accel-Sim SM90 latencies (L2 237 cycles, DRAM +194 cycles),
//! kernel launch ≈ 3000 cycles. The L2 bandwidth (12 TB/s) is an estimate in the preset.
//! The achievable tensor rate comes from a GEMM ceiling measured on the GPU ([`hw::Ceilings`]);
//! the achievable HBM rates from the cycle-level DRAM model on the HBM level's memory preset
//! ([`crate::dram::SustainedRates`]: sequential reads, copies and writes, interpolated by each
//! kernel's share of reads, [`plan::KernelPlan::hbm_read_share`]).
//!
//! Modelling assumptions (each documented where it is used):
//! - achievable rates: `wgmma` main loops at the fraction of the dense peak at which the model
//!   reproduces the cuBLAS 8192³ GEMM measured on the GPU ([`hw::WGMMA_MEASURED_FRACTION`],
//!   [`search::calibrate`]); HBM as the DRAM model sustains it (on the H100 preset 3.23 TB/s
//!   reading, 3.06 copying; a spec without a memory preset takes the measured copy's fraction,
//!   [`hw::HBM_MEASURED_FRACTION`]); `mma.sync` 0.65 and CUDA-core FFMA 0.8 of peak
//!   ([`InstrClass::efficiency`], priors);
//! - `mma.sync` kernels move every warp's operand fragments through shared memory (128 B/clk/SM)
//!   in series with their MMAs; fragment epilogues (16-byte partial-sector stores) pass HBM
//!   twice and hold their SM ([`plan::KernelPlan::epilogue_fill`]);
//! - an operand tile loaded by several concurrently resident CTAs comes from HBM once; tiles
//!   survive between waves only when the kernel's shared operands fit in L2;
//! - CTAs of unequal length (causal attention) are dispatched greedily and the busiest SM ends
//!   the kernel ([`analytical::imbalance_makespan`]; the cycle model simulates every SM);
//! - FlashAttention-2 runs softmax and matrix products back to back, FlashAttention-3 overlaps
//!   them; exp runs on MUFU at 16/clk/SM, warp shuffles at one per clock;
//! - register use = accumulators + 32 per thread; 1 KB of shared memory reserved per CTA.
//!
//! [`recorded`] compares the models with the H100 measurements of `cascade crosscheck`
//! (`reports/crosscheck/h100.md`: MAPE 7.4% over 50 cases); the model predicts device time,
//! and the comparison adds the stream launch gaps measured in the same run.

pub mod analytical;
pub mod contract;
pub mod cycle;
pub mod error;
pub mod hw;
pub mod library;
pub mod lower;
pub mod mapping;
pub mod op;
pub mod plan;
pub mod recorded;
pub mod search;
pub mod torch_truth;

#[cfg(test)]
mod tests;

pub use analytical::{predict, Bound, GpuEstimate, KernelEstimate};
pub use cycle::{simulate, CycleEstimate, CycleKernel};
pub use error::GpuError;
pub use hw::GpuParams;
pub use mapping::{Epilogue, GpuMapping, InstrClass, KernelKind};
pub use op::{AttnImpl, Dtype, GpuOp, Impl, OpParseError};
pub use search::{estimate, try_estimate};

/// The ops on which the analytical model and the cycle-level simulation are checked against
/// each other (the H100 measurements are in [`recorded`]): square GEMMs, decode GEMMs, MoE expert
/// GEMMs and batched expert GEMMs, fused attention (FA2 and FA3, causal and not), unfused
/// attention, GQA decode attention, copies and softmax.
pub const SUITE: &[&str] = &[
    "gemm m=512 n=512 k=512 dtype=bf16",
    "gemm m=1024 n=1024 k=1024 dtype=bf16",
    "gemm m=2048 n=2048 k=2048 dtype=bf16",
    "gemm m=4096 n=4096 k=4096 dtype=bf16",
    "gemm m=8192 n=8192 k=8192 dtype=bf16",
    "gemm m=1 n=4096 k=4096 dtype=bf16",
    "gemm m=8 n=4096 k=4096 dtype=bf16",
    "gemm m=16 n=4096 k=4096 dtype=bf16",
    "gemm m=32 n=4096 k=4096 dtype=bf16",
    "gemm m=64 n=4096 k=4096 dtype=bf16",
    "gemm m=1 n=14336 k=4096 dtype=bf16",
    "gemm m=8 n=14336 k=4096 dtype=bf16",
    "gemm m=16 n=14336 k=4096 dtype=bf16",
    "gemm m=32 n=14336 k=4096 dtype=bf16",
    "gemm m=64 n=14336 k=4096 dtype=bf16",
    "gemm m=1 n=4096 k=14336 dtype=bf16",
    "gemm m=16 n=4096 k=14336 dtype=bf16",
    "gemm m=64 n=4096 k=14336 dtype=bf16",
    "gemm m=512 n=14336 k=4096 dtype=bf16",
    "gemm m=512 n=4096 k=14336 dtype=bf16",
    "gemm m=4096 n=14336 k=4096 dtype=bf16",
    "bmm batch=8 m=16 n=14336 k=4096 dtype=bf16",
    "bmm batch=8 m=64 n=14336 k=4096 dtype=bf16",
    "bmm batch=8 m=256 n=14336 k=4096 dtype=bf16",
    "bmm batch=8 m=1024 n=14336 k=4096 dtype=bf16",
    "bmm batch=8 m=4096 n=14336 k=4096 dtype=bf16",
    "attention b=16 h=16 n=512 d=128 causal=0 impl=fa2",
    "attention b=16 h=16 n=512 d=128 causal=1 impl=fa2",
    "attention b=16 h=16 n=512 d=64 causal=0 impl=fa3",
    "attention b=2 h=16 n=4096 d=128 causal=0 impl=fa2",
    "attention b=2 h=16 n=4096 d=128 causal=1 impl=fa2",
    "attention b=2 h=16 n=4096 d=128 causal=0 impl=fa3",
    "attention b=2 h=16 n=4096 d=128 causal=1 impl=fa3",
    "attention b=4 h=32 n=2048 d=64 causal=0 impl=fa2",
    "attention b=4 h=32 n=2048 d=64 causal=1 impl=fa3",
    "attention b=1 h=16 n=16384 d=128 causal=0 impl=fa2",
    "attention b=1 h=16 n=16384 d=128 causal=1 impl=fa3",
    "attention b=1 h=32 n=16384 d=64 causal=1 impl=fa2",
    "attention_unfused b=1 h=32 n=1024 d=128",
    "attention_unfused b=1 h=32 n=4096 d=128",
    "attention_unfused b=4 h=16 n=2048 d=64 causal=1",
    "decode_attention b=1 hq=32 hkv=8 l=1024 d=128",
    "decode_attention b=1 hq=32 hkv=8 l=32768 d=128",
    "decode_attention b=8 hq=32 hkv=8 l=4096 d=128",
    "decode_attention b=64 hq=32 hkv=8 l=1024 d=128",
    "decode_attention b=64 hq=32 hkv=8 l=32768 d=128",
    "copy bytes=1048576",
    "copy bytes=16777216",
    "copy bytes=268435456",
    "copy bytes=1073741824",
    "softmax rows=65536 cols=4096 dtype=bf16",
    "softmax rows=4096 cols=131072 dtype=fp32",
];

/// The preset of a GPU, from the name the driver gives it (`cuDeviceGetName`,
/// `torch.cuda.get_device_name`): the presets describe one part each, so another part (an H100
/// PCIe, an H200 NVL: other clocks and power) is refused rather than modelled as its cousin.
pub fn preset_for_device(device: &str) -> Result<&'static str, String> {
    match device.trim() {
        "NVIDIA H200" => Ok("h200"),
        "NVIDIA H100 80GB HBM3" => Ok("h100"),
        other => Err(format!(
            "no preset describes the GPU `{other}` (presets: h100 = `NVIDIA H100 80GB HBM3`, h200 = `NVIDIA H200`): write an architecture TOML for it"
        )),
    }
}

/// Refuses to compare a GPU with another GPU's preset.
pub fn check_device(preset: &str, device: &str) -> Result<(), String> {
    let found = preset_for_device(device)?;
    if found != preset {
        return Err(format!(
            "this GPU is `{device}` (preset {found}), not {preset}: run with --arch {found}, or leave --arch out"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod device_tests {
    use super::*;

    #[test]
    fn devices_pick_their_preset_and_a_mismatch_is_refused() {
        assert_eq!(preset_for_device("NVIDIA H200"), Ok("h200"));
        assert_eq!(preset_for_device("NVIDIA H100 80GB HBM3"), Ok("h100"));
        assert!(preset_for_device("NVIDIA H100 PCIe")
            .unwrap_err()
            .contains("no preset"));
        assert!(check_device("h200", "NVIDIA H200").is_ok());
        let e = check_device("h100", "NVIDIA H200").unwrap_err();
        assert!(e.contains("(preset h200), not h100"), "{e}");
        // Every preset named here exists and has a [gpu] section.
        for p in ["h100", "h200"] {
            assert!(cascade_arch::preset(p).unwrap().gpu.is_some(), "{p}");
        }
    }
}
