//! `cascade map` on a GPU architecture (one with a `[gpu]` section): each cascade is lowered
//! to the GPU ops eager PyTorch would launch ([`crate::gpu::lower`]), each op estimated by the
//! GPU model exactly as `cascade estimate --op` does ([`crate::gpu::try_estimate`]), and the
//! estimates combined into the common [`Report`] ([`crate::gpu::contract`]). So `map` and
//! `estimate` give the same time for the same op, and a cascade's time is the sum of its ops'.

use super::map::Instance;
use crate::gpu::lower::{lower, LowerOptions, LoweredOp};
use crate::gpu::{Dtype, GpuEstimate};
use crate::workload::{Phase, Precision};
use anyhow::{anyhow, Result};
use cascade_arch::{Architecture, GpuSpec};
use cascade_einsum::bind;
use cascade_mappings::Report;
use serde::Serialize;
use std::collections::BTreeMap;

/// One op a cascade lowered to, with its estimate.
#[derive(Clone, Debug, Serialize)]
pub struct GpuOpRun {
    /// The pattern recognised (`contraction`, `attention`, `rmsnorm`, …).
    pub pattern: &'static str,
    /// The Einsums it computes.
    pub einsums: Vec<String>,
    /// The spec, as `cascade estimate --op` takes it.
    pub spec: String,
    /// The GPU model's estimate (what `cascade estimate --op SPEC --json` prints).
    pub estimate: GpuEstimate,
}

/// One cascade run on the GPU: the common report and the ops behind it.
#[derive(Clone, Debug, Serialize)]
pub struct GpuMapped {
    pub report: Report,
    pub ops: Vec<GpuOpRun>,
    /// Wall-clock seconds spent lowering and estimating.
    pub seconds: f64,
}

/// One instance's result, or why it has none (`not lowered: …`, or the GPU model's refusal).
#[derive(Clone, Debug, Serialize)]
pub struct GpuMappedInstance {
    pub role: String,
    pub cascade: String,
    /// Occurrences of the instance in the target ([`Instance::count`]).
    pub count: u64,
    pub result: Result<GpuMapped, String>,
}

/// The GPU element type of an instance: the workload's precision, or from the element size.
pub fn gpu_dtype(inst: &Instance) -> Result<Dtype, String> {
    Ok(match (inst.precision, inst.dtype_bytes) {
        (Some(Precision::Bf16), _) => Dtype::Bf16,
        (Some(Precision::Fp16), _) => Dtype::Fp16,
        (Some(Precision::Fp8), _) => Dtype::Fp8,
        (Some(Precision::Fp32), _) => Dtype::Fp32,
        (None, 1) => Dtype::Fp8,
        (None, 2) => Dtype::Bf16,
        (None, 4) => Dtype::Fp32,
        (None, b) => {
            return Err(format!(
                "the GPU ops take 1-, 2- or 4-byte elements (fp8, bf16, fp32), not {b}-byte ones"
            ))
        }
    })
}

/// Lowers and estimates every instance on `arch` (which must have a `[gpu]` section).
/// Identical ops are estimated once (the estimate is deterministic).
pub fn map_instances_gpu(
    insts: &[Instance],
    arch: &Architecture,
) -> Result<Vec<GpuMappedInstance>> {
    let gpu = arch
        .gpu
        .as_ref()
        .ok_or_else(|| anyhow!("architecture `{}` has no [gpu] section", arch.name))?;
    let mut cache: BTreeMap<String, Result<GpuEstimate, String>> = BTreeMap::new();
    let progress = crate::progress::Progress::new("map", insts.len() as u64).unit("cascades");
    let mut out = Vec::new();
    for inst in insts {
        let _step = progress.step();
        out.push(GpuMappedInstance {
            role: inst.role.clone(),
            cascade: inst.source.clone(),
            count: inst.count,
            result: run_instance(inst, arch, gpu, &mut cache),
        });
    }
    progress.finish();
    Ok(out)
}

/// The lowered ops of an instance, or `not lowered: …`.
pub fn lower_instance(inst: &Instance) -> Result<Vec<LoweredOp>, String> {
    let sh = bind(&inst.cascade, &inst.extents).map_err(|e| e.to_string())?;
    let dtype = gpu_dtype(inst).map_err(|e| format!("not lowered: {e}"))?;
    let opts = LowerOptions {
        dtype,
        decode: inst.phase == Some(Phase::Decode),
        routing: inst.routing.as_ref(),
        causal: false,
    };
    lower(&inst.cascade, &sh, &opts)
        .into_ops()
        .map_err(|e| format!("not lowered: {e}"))
}

fn run_instance(
    inst: &Instance,
    arch: &Architecture,
    gpu: &GpuSpec,
    cache: &mut BTreeMap<String, Result<GpuEstimate, String>>,
) -> Result<GpuMapped, String> {
    let t = std::time::Instant::now();
    let ops = lower_instance(inst)?;
    let mut runs = Vec::new();
    for l in &ops {
        let est = cache
            .entry(l.spec.clone())
            .or_insert_with(|| crate::gpu::try_estimate(&l.op, gpu).map_err(|e| e.to_string()))
            .clone()
            .map_err(|e| format!("GPU model: `{}`: {e}", l.spec))?;
        runs.push((l.clone(), est));
    }
    let report = crate::gpu::contract::report(&inst.cascade.name, arch, gpu, &runs);
    Ok(GpuMapped {
        report,
        ops: runs
            .into_iter()
            .map(|(l, estimate)| GpuOpRun {
                pattern: l.pattern,
                einsums: l.einsums,
                spec: l.spec,
                estimate,
            })
            .collect(),
        seconds: t.elapsed().as_secs_f64(),
    })
}
