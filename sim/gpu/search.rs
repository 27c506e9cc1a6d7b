//! A small mapper: searches GPU mappings per kernel and keeps the fastest by the analytical
//! model.
//!
//! Mapspace per kernel kind:
//! - GEMM: CTA tiles {64,128,256} × {64,128,256} × {32,64}, stages 2–4, 4 or 8 warps,
//!   split-K {1,2,4,8} (standalone GEMMs only; a split adds a reduction kernel), swizzle
//!   {1,2,4,8,16}; instruction class from [`allowed_instr`] (`wgmma` for cuBLAS-style GEMMs).
//! - FlashAttention: Br, Bc ∈ {16,32,64,128,256} (Br a multiple of the instruction's M
//!   granule: 64 for `wgmma`), stages 2–4, 4 or 8 warps; `mma.sync` for `fa2`, `wgmma` for
//!   `fa3`.
//! - Decode split-KV: query rows = the GQA group padded to the instruction's M granule,
//!   keys per step {16,…,256}, stages 2–4, 4 or 8 warps, split-KV {1,2,4,…,64}
//!   (a split adds a combine kernel), `mma.sync` or `wgmma`.
//! - Softmax: rows per CTA {1,2,4,8}, columns per step {256,…,2048}, stages {2,4}, 4 or 8 warps.
//! - Streaming kernels (copy, split-K reduction, decode combine): elements per CTA
//!   {2¹¹,…,2¹⁹}, elements per step {1024, 4096}, stages {2,4}, 4 or 8 warps.
//!
//! Candidates are evaluated in parallel (rayon); the fastest wins, ties broken by enumeration
//! order, so the result is deterministic.

use super::analytical::{estimate_plans, kernel_seconds, GpuEstimate};
use super::error::GpuError;
use super::hw::{Ceilings, GpuParams};
use super::mapping::{allowed_instr, kernel_kinds, Epilogue, GpuMapping, InstrClass, KernelKind};
use super::op::{Dtype, GpuOp, Impl};
use super::plan::{plan_kernel, KernelPlan};
use cascade_arch::GpuSpec;
use rayon::prelude::*;
use std::collections::BTreeMap;

/// CTA tile rows and columns of GEMMs: powers of two, as cuBLAS's tf32 (`sm90_xmma_…_tf32…
/// tilesize{64x128,128x128,128x256}x32`) and fp32 (`sm80_xmma_…_ffma`, `cutlass_80_simt_sgemm`)
/// kernels have them.
const TILES: [u32; 3] = [64, 128, 256];
/// Its Hopper `nvjet` kernels for 16- and 8-bit operands come in more sizes
/// (`{dev,heldout1,heldout2}_kernels.csv`: 192 × 96, 128 × 160, 192 × 128, 320 × 128, 64 × 48,
/// 64 × 24, …): a bf16 1536³ GEMM runs 192 × 96 tiles, 128 of them in one wave where 128 × 128
/// tiles need 144. Rows are whole 64-row warpgroup tiles; columns multiples of 32.
const NVJET_TILES_M: [u32; 4] = [64, 128, 192, 256];
const NVJET_TILES_N: [u32; 6] = [64, 96, 128, 160, 192, 256];
const TILE_K: [u32; 2] = [32, 64];
const STAGES: [u32; 3] = [2, 3, 4];
const WARPS: [u32; 2] = [4, 8];
const SPLIT_K: [u32; 4] = [1, 2, 4, 8];
const SWIZZLE: [u32; 5] = [1, 2, 4, 8, 16];
const SPLIT_KV: [u32; 7] = [1, 2, 4, 8, 16, 32, 64];
/// Attention query and key blocks; blocks under 64 (filtered by the instruction's M granule
/// for queries) keep large head dimensions and fp32 within shared memory.
const ATTN_BLOCKS: [u32; 5] = [16, 32, 64, 128, 256];

/// A mapping with a staged epilogue.
pub(crate) fn mapping(
    kernel: KernelKind,
    (m, n, k): (u32, u32, u32),
    stages: u32,
    warps: u32,
    split_k: u32,
    swizzle: u32,
    instr: InstrClass,
) -> GpuMapping {
    GpuMapping {
        kernel,
        cta_tile_m: m,
        cta_tile_n: n,
        cta_tile_k: k,
        stages,
        warps,
        split_k,
        swizzle,
        instr,
        epilogue: Epilogue::Staged,
    }
}

/// The candidate mappings of kernel `kind` of `op` (see the module documentation).
pub fn candidates(op: &GpuOp, kind: KernelKind) -> Vec<GpuMapping> {
    let instrs = allowed_instr(op, kind);
    let mut v = Vec::new();
    match kind {
        KernelKind::Gemm => {
            let splits: &[u32] = match op {
                GpuOp::Gemm { .. } | GpuOp::Bmm { .. } => &SPLIT_K,
                _ => &[1],
            };
            let (tiles_m, tiles_n): (&[u32], &[u32]) = if op.dtype().bytes() <= 2.0 {
                (&NVJET_TILES_M, &NVJET_TILES_N)
            } else {
                (&TILES, &TILES)
            };
            for &instr in &instrs {
                for &tm in tiles_m {
                    for &tn in tiles_n {
                        for tk in TILE_K {
                            for s in STAGES {
                                for w in WARPS {
                                    for &sk in splits {
                                        for sw in SWIZZLE {
                                            v.push(mapping(
                                                kind,
                                                (tm, tn, tk),
                                                s,
                                                w,
                                                sk,
                                                sw,
                                                instr,
                                            ));
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        KernelKind::FlashAttention => {
            let d = match op {
                GpuOp::Attention { d, .. } => *d as u32,
                _ => 0,
            };
            for &instr in &instrs {
                let brs = ATTN_BLOCKS.iter().filter(|&&b| b % instr.m_granule() == 0);
                for &br in brs {
                    for bc in ATTN_BLOCKS {
                        for s in STAGES {
                            for w in WARPS {
                                v.push(mapping(kind, (br, bc, d), s, w, 1, 1, instr));
                            }
                        }
                    }
                }
            }
        }
        KernelKind::DecodeSplitKv => {
            let (group, d) = match op {
                GpuOp::DecodeAttention { hq, hkv, d, .. } => ((hq / hkv) as u32, *d as u32),
                _ => (1, 0),
            };
            for &instr in &instrs {
                let g = instr.m_granule();
                let tm = group.div_ceil(g) * g;
                for bc in ATTN_BLOCKS {
                    for s in STAGES {
                        for w in WARPS {
                            for sk in SPLIT_KV {
                                v.push(mapping(kind, (tm, bc, d), s, w, sk, 1, instr));
                            }
                        }
                    }
                }
            }
        }
        KernelKind::Softmax => {
            for tm in [1, 2, 4, 8] {
                for tn in [256, 512, 1024, 2048] {
                    for s in [2, 4] {
                        for w in WARPS {
                            v.push(mapping(kind, (tm, tn, 1), s, w, 1, 1, InstrClass::CudaCore));
                        }
                    }
                }
            }
        }
        KernelKind::Copy | KernelKind::SplitKReduce | KernelKind::DecodeCombine => {
            for e in [11, 13, 15, 17, 19] {
                for tn in [128, 1024, 4096] {
                    let tm = 1u32 << e;
                    for s in [2, 4] {
                        for w in WARPS {
                            v.push(mapping(kind, (tm, tn, 1), s, w, 1, 1, InstrClass::CudaCore));
                        }
                    }
                }
            }
        }
    }
    v
}

/// The fastest valid candidate of kernel `index` (for split `split`) and its plan.
fn best_kernel(
    op: &GpuOp,
    index: usize,
    split: u32,
    cands: &[GpuMapping],
    hw: &GpuParams,
) -> Option<(f64, usize, KernelPlan)> {
    cands
        .par_iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let p = plan_kernel(op, index, split, m, hw).ok()?;
            Some((kernel_seconds(&p, hw), i, p))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
}

/// Why no candidate planned: the grid-size error of the largest tiles tried when the grid is
/// what failed (a too-large op), otherwise the last candidate's error.
fn why_none<T>(tried: &[Result<T, GpuError>]) -> String {
    let errs: Vec<&GpuError> = tried.iter().filter_map(|r| r.as_ref().err()).collect();
    let grid = errs
        .iter()
        .rev()
        .find(|e| e.to_string().contains("CUDA grid"));
    match grid.or(errs.last()) {
        Some(e) => format!(" (e.g. {e})"),
        None => String::new(),
    }
}

/// Searches the mapspace and returns the fastest mapping's analytical estimate.
pub fn try_estimate(op: &GpuOp, spec: &GpuSpec) -> Result<GpuEstimate, GpuError> {
    try_estimate_with(op, &params(spec))
}

/// The derived parameters of a spec: calibrated to its `measured_ceilings` where it has them
/// ([`calibrate`], once per spec and process), else the recorded H100 calibration
/// ([`GpuParams::new`]).
pub fn params(spec: &GpuSpec) -> GpuParams {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    let Some(m) = &spec.measured_ceilings else {
        return GpuParams::new(spec);
    };
    static CALIBRATED: OnceLock<Mutex<HashMap<String, GpuParams>>> = OnceLock::new();
    let key = format!("{spec:?}");
    let cache = CALIBRATED.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(hw) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return hw.clone();
    }
    let mut hw = calibrate(
        spec,
        &Ceilings {
            gemm_flops: m.gemm_bf16_8192_tflops * 1e12,
            copy_bytes_per_s: m.copy.bytes_per_s(),
        },
    );
    if let Some(t) = m.gemm_bf16_align1_8191_tflops {
        hw = calibrate_l2_requests(hw, t * 1e12);
    }
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, hw.clone());
    hw
}

/// The L2 request rate at which the model reproduces cuBLAS's `align1` GEMM 8191³ at the
/// measured `flops` (a few fixed-point steps; the kernel is bound by the rate, so its time
/// scales inversely with it).
pub fn calibrate_l2_requests(mut hw: GpuParams, flops: f64) -> GpuParams {
    let gemm = GpuOp::Gemm {
        m: 8191,
        n: 8191,
        k: 8191,
        dtype: Dtype::Bf16,
        imp: Impl::Cublas,
    };
    let target = gemm.flops() / flops;
    for _ in 0..6 {
        let Ok(g) = try_estimate_with(&gemm, &hw) else {
            break;
        };
        hw.l2_requests_per_s = (hw.l2_requests_per_s * g.seconds / target).clamp(1e6, 1e15);
    }
    hw
}

/// [`try_estimate`] with explicit derived parameters (e.g. ceilings measured in a run:
/// [`GpuParams::with_ceilings`]).
pub fn try_estimate_with(op: &GpuOp, hw: &GpuParams) -> Result<GpuEstimate, GpuError> {
    super::plan::fits_device_memory(op, hw)?;
    let hw = hw.clone();
    let kinds1 = kernel_kinds(op, 1);
    // A library's own choice, or the search's candidates; where the model cannot plan the
    // library's kernel for this shape (registers or shared memory exceeded, e.g. a GQA group
    // of 128 in one FlashAttention-2 decode CTA, or a head dimension of 255 in cuDNN's decode
    // tile), the searched mapping stands in, and the kernel's name says so ("(searched)").
    let eval = |cands: &[GpuMapping]| -> Vec<Result<(usize, f64, KernelPlan), GpuError>> {
        cands
            .par_iter()
            .enumerate()
            .map(|(i, m)| {
                let p = plan_kernel(op, 0, m.split_k, m, &hw)?;
                Ok((i, kernel_seconds(&p, &hw), p))
            })
            .collect()
    };
    let mut tried = match super::library::library_mappings(op, &hw) {
        Some(ms) => eval(&ms),
        None => Vec::new(),
    };
    let library = !tried.is_empty();
    let fell_back = tried.iter().all(|r| r.is_err());
    if fell_back {
        tried = eval(&candidates(op, kinds1[0].1));
    }
    let no_mapping = |name: &str, reason: String| GpuError::NoMapping {
        op: op.to_string(),
        kernel: name.to_string(),
        reason,
    };
    let firsts: Vec<(usize, f64, KernelPlan)> = tried
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    if firsts.is_empty() {
        return Err(no_mapping(kinds1[0].0, why_none(&tried)));
    }
    // Best follow-up kernels for each split factor (they depend on nothing else).
    let mut rest: BTreeMap<u32, Option<(f64, Vec<KernelPlan>)>> = BTreeMap::new();
    for (_, _, p) in &firsts {
        let split = p.mapping.split_k;
        rest.entry(split).or_insert_with(|| {
            let kinds = kernel_kinds(op, split);
            let mut total = 0.0;
            let mut plans = Vec::new();
            for (i, &(_, kind)) in kinds.iter().enumerate().skip(1) {
                let (t, _, p) = best_kernel(op, i, split, &candidates(op, kind), &hw)?;
                total += t;
                plans.push(p);
            }
            Some((total, plans))
        });
    }
    let best = firsts
        .iter()
        .filter_map(|(i, t, p)| {
            let (t_rest, _) = rest[&p.mapping.split_k].as_ref()?;
            Some((t + t_rest, *i, p))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
        .ok_or_else(|| {
            let names: Vec<&str> = kernel_kinds(op, 2).iter().skip(1).map(|k| k.0).collect();
            no_mapping(&names.join(", "), String::new())
        })?;
    let mut first = best.2.clone();
    if library && fell_back {
        first.name = format!("{} (searched)", first.name);
    }
    let mut plans = vec![first];
    if let Some((_, more)) = &rest[&best.2.mapping.split_k] {
        plans.extend(more.iter().cloned());
    }
    let est = estimate_plans(op, &plans, &hw);
    Ok(if hw.roofline {
        roofline(est, op, &hw)
    } else {
        est
    })
}

/// `est` at its roofline: `max(FLOPs / peak, minimum bytes / pin bandwidth)` — the dense
/// tensor peak of the op's dtype at the sustained clock for tensor-core ops, the FP32 FMA peak
/// for the rest, and the spec's HBM pin rate (`gpu.hbm_bandwidth`); the op moves only its
/// minimum bytes. Its kernels keep their shares of the time. This is how Duplex's simulator
/// prices every op (src/hardware/linear_impl.cpp: 100% of the peaks, no launch).
pub fn roofline(mut est: GpuEstimate, op: &GpuOp, hw: &GpuParams) -> GpuEstimate {
    let spec = hw.spec();
    let per_clk = hw
        .tensor_flops_per_clk(op.dtype())
        .or_else(|| spec.tensor_flops_per_clk_per_sm.get("fp32_fma").copied())
        .unwrap_or(0.0);
    let peak = per_clk * f64::from(hw.sms) * hw.clock_hz;
    let bw = spec.hbm_bandwidth.bytes_per_s();
    let compute = if peak > 0.0 { est.flops / peak } else { 0.0 };
    let memory = est.min_bytes / bw;
    let seconds = compute.max(memory);
    let before: f64 = est.kernels.iter().map(|k| k.seconds).sum();
    let n = est.kernels.len() as f64;
    for k in &mut est.kernels {
        k.seconds = if before > 0.0 {
            k.seconds / before * seconds
        } else {
            seconds / n
        };
    }
    est.seconds = seconds;
    est.hbm_bytes = est.min_bytes;
    est.bound = if compute >= memory {
        super::Bound::Compute
    } else {
        super::Bound::Memory
    };
    est
}

/// Derived parameters whose achievable rates reproduce measured ceilings through the model:
/// the `wgmma` fraction makes the searched 8192³ bf16 GEMM take the measured time, the HBM
/// fraction makes the searched 1 GiB copy take the measured time (a few fixed-point steps).
/// When the spec names a memory preset, HBM is not fitted: its rates come from the cycle-level
/// DRAM model ([`GpuParams::with_dram_rates`]), and the measured copy checks them.
///
/// Why: the ceilings are what a tuned library reaches *including* its own wave tails, fills
/// and launch; taking 801.8 TFLOP/s as the main-loop rate and then adding the model's tails
/// predicted the ceiling case itself 5% slow, and every large cuBLAS GEMM 5–12% slow
/// (recorded run). Calibrated this way the main loop runs at 0.85 of the peak.
pub fn calibrate(spec: &GpuSpec, ceilings: &Ceilings) -> GpuParams {
    let (mut wgmma, mut hbm) = ceilings.fractions(spec);
    let gemm = GpuOp::Gemm {
        m: 8192,
        n: 8192,
        k: 8192,
        dtype: Dtype::Bf16,
        imp: Impl::Cublas,
    };
    let copy = GpuOp::Copy { bytes: 1 << 30 };
    let (t_gemm, t_copy) = (
        gemm.flops() / ceilings.gemm_flops,
        copy.min_bytes() / ceilings.copy_bytes_per_s,
    );
    let dram = GpuParams::with_fractions(spec, wgmma, hbm)
        .with_dram_rates()
        .hbm_rates
        .is_some();
    let params = |wgmma: f64, hbm: f64| {
        let hw = GpuParams::with_fractions(spec, wgmma, hbm);
        if dram {
            hw.with_dram_rates()
        } else {
            hw
        }
    };
    for _ in 0..4 {
        let hw = params(wgmma, hbm);
        let Ok(g) = try_estimate_with(&gemm, &hw) else {
            break;
        };
        wgmma = (wgmma * g.seconds / t_gemm).clamp(0.05, 1.0);
        if !dram {
            let Ok(c) = try_estimate_with(&copy, &hw) else {
                break;
            };
            hbm = (hbm * c.seconds / t_copy).clamp(0.05, 1.0);
        }
    }
    params(wgmma, hbm)
}

/// The searched best estimate of `op` on `spec` (the fastest mapping by the analytical model).
///
/// # Panics
/// If the spec lacks the op's dtype rate or no candidate fits the GPU (never for ops that
/// [`GpuOp::parse`] accepts, on the `h100` preset); use [`try_estimate`] to get the error.
pub fn estimate(op: &GpuOp, spec: &GpuSpec) -> GpuEstimate {
    try_estimate(op, spec).unwrap_or_else(|e| panic!("cannot estimate `{op}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::hw::{HBM_MEASURED_FRACTION, WGMMA_MEASURED_FRACTION};

    /// The default fractions are the calibration of the recorded ceilings (HBM's for a spec
    /// that names no memory preset: the preset's DRAM model gives its rates otherwise).
    #[test]
    fn default_fractions_are_the_recorded_calibration() {
        let mut spec = cascade_arch::preset("h100").unwrap().gpu.unwrap();
        spec.memory = None;
        let hw = calibrate(&spec, &Ceilings::H100_RECORDED);
        let hbm = hw.hbm_bw / spec.hbm_bandwidth.bytes_per_s();
        assert!(
            (hw.wgmma_efficiency / WGMMA_MEASURED_FRACTION - 1.0).abs() < 0.005,
            "{}",
            hw.wgmma_efficiency
        );
        assert!((hbm / HBM_MEASURED_FRACTION - 1.0).abs() < 0.005, "{hbm}");
        // With the preset's DRAM model, HBM is not fitted: the copy runs at the model's rate.
        let mut with_dram = spec.clone();
        with_dram.memory = Some("hbm3_h100".into());
        let d = calibrate(&with_dram, &Ceilings::H100_RECORDED);
        let rates = crate::dram::SustainedRates::of_preset("hbm3_h100").unwrap();
        assert_eq!(d.hbm_bw, rates.copy);
        assert_eq!(d.hbm_bw_for(1.0), rates.read);
        assert!((d.wgmma_efficiency / hw.wgmma_efficiency - 1.0).abs() < 0.01);
        // The calibrated model reproduces the ceilings.
        let g = GpuOp::parse("gemm m=8192 n=8192 k=8192").unwrap();
        let t = try_estimate_with(&g, &hw).unwrap().seconds;
        assert!(
            (g.flops() / t / 801.8e12 - 1.0).abs() < 0.005,
            "{}",
            g.flops() / t
        );
    }
}
