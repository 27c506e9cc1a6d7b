//! The GPU model behind the common contract: the estimates of a lowered cascade's ops
//! ([`super::lower`]) as the one [`Report`] every model returns.
//!
//! - latency: the ops run one after another, so the sum of their seconds (each op's own
//!   start and launches included, exactly as `cascade estimate` gives it); cycles at the
//!   GPU's sustained clock (`gpu.clock_sustained`, the clock the GPU models run at);
//! - bound: `compute`, `memory` or `latency` (the GPU model's [`Bound`](super::Bound)) of the
//!   ops that take most of the time together;
//! - traffic: the modelled HBM bytes at the architecture's off-chip level, one entry for all
//!   tensors (`*`: the GPU model counts bytes per kernel, not per tensor). The model does not
//!   split them into reads and writes: the op's outputs are taken as written
//!   ([`output_bytes`]), everything else as read (a temporary that a later kernel of the op
//!   reads back — split-K partials, SiLU's output — counts once, as read);
//! - off-chip bytes: the modelled HBM bytes (device memory, whether or not the architecture
//!   names an off-chip level to put them at);
//! - energy: those accesses priced with that level's per-access read and update energies
//!   (the arch TOML's, per `width_bits` access), and the ops' FLOPs as MACs (two FLOPs each)
//!   at the `mac` energy of their unit class (`tensor` or `cuda_core`). The GPU model gives no
//!   on-chip access counts, so on-chip levels are not priced (the h100 and h200 presets give
//!   them, and their MACs, 0 pJ: no cited figure; `duplex` gives MACs Duplex's 0.23 pJ/FLOP);
//! - utilisation: `tensor` — the tensor-core FLOPs of the matrix products and attentions
//!   over the dense peak of their dtype (`gpu.tensor_flops_per_clk_per_sm`), and `cuda_core`
//!   — the FLOPs of fp32 products and of the row and elementwise kernels over the FP32 FMA
//!   peak (`fp32_fma`), each as busy time over the latency (the two unit classes of the GPU
//!   model; the presets name their compute units so);
//! - groups: one per op, with its spec (`op`) and the Einsums it computes.

use super::analytical::GpuEstimate;
use super::lower::LoweredOp;
use super::op::GpuOp;
use cascade_arch::{Architecture, GpuSpec};
use cascade_mappings::report::{EnergyEntry, GroupReport, Traffic};
use cascade_mappings::Report;
use std::collections::BTreeMap;

/// Bytes an op must write to device memory: its outputs (of the output dtype).
pub fn output_bytes(op: &GpuOp) -> f64 {
    let f = |x: u64| x as f64;
    let ob = op.dtype().out_bytes();
    match *op {
        GpuOp::Gemm { m, n, .. } => f(m) * f(n) * ob,
        GpuOp::Bmm { batch, m, n, .. } => f(batch) * f(m) * f(n) * ob,
        GpuOp::Attention { b, h, n, d, .. } | GpuOp::AttentionUnfused { b, h, n, d, .. } => {
            f(b) * f(h) * f(n) * f(d) * ob
        }
        GpuOp::DecodeAttention { b, hq, d, .. } => f(b) * f(hq) * f(d) * ob,
        GpuOp::Copy { bytes, .. } => f(bytes),
        GpuOp::Softmax {
            rows, cols, dtype, ..
        }
        | GpuOp::Rowwise {
            rows, cols, dtype, ..
        } => f(rows) * f(cols) * dtype.bytes(),
    }
}

/// Whether the op's FLOPs run on tensor cores (matrix products and attention of a tensor-core
/// dtype) rather than on the FP32 CUDA cores.
fn on_tensor_cores(op: &GpuOp) -> bool {
    matches!(
        op,
        GpuOp::Gemm { .. }
            | GpuOp::Bmm { .. }
            | GpuOp::Attention { .. }
            | GpuOp::AttentionUnfused { .. }
            | GpuOp::DecodeAttention { .. }
    ) && op.dtype().on_tensor_cores()
}

/// The [`Report`] of cascade `cascade` run as `ops` (each with its estimate, in launch order)
/// on `arch` (whose GPU figures are `gpu`). Every figure is finite: the estimates are.
pub fn report(
    cascade: &str,
    arch: &Architecture,
    gpu: &GpuSpec,
    ops: &[(LoweredOp, GpuEstimate)],
) -> Report {
    let clock = gpu.clock_sustained.hz();
    let latency_s: f64 = ops.iter().map(|(_, e)| e.seconds).sum();
    // Bound: the class with the most seconds; ties to the first name.
    let mut by_bound: BTreeMap<&str, f64> = BTreeMap::new();
    for (_, e) in ops {
        *by_bound.entry(e.bound.name()).or_default() += e.seconds;
    }
    let bound = by_bound
        .iter()
        .max_by(|x, y| x.1.total_cmp(y.1).then(y.0.cmp(x.0)))
        .map_or("latency".to_string(), |b| b.0.to_string());
    // HBM traffic, split into written outputs and the rest (read).
    let (mut read_b, mut write_b, mut read_words, mut write_words) = (0.0, 0.0, 0.0, 0.0);
    for (l, e) in ops {
        let w = output_bytes(&l.op).min(e.hbm_bytes);
        let r = e.hbm_bytes - w;
        read_b += r;
        write_b += w;
        read_words += r / l.op.dtype().bytes();
        write_words += w / l.op.dtype().out_bytes();
    }
    let off_chip_bytes = read_b + write_b;
    let level = arch.levels.iter().find(|l| l.kind.off_chip());
    let mut traffic = Vec::new();
    let mut energy = Vec::new();
    if let Some(level) = level {
        traffic.push(Traffic {
            level: level.name.clone(),
            tensor: "*".into(),
            reads: read_words,
            fills: 0.0,
            updates: write_words,
            read_bytes: read_b,
            write_bytes: write_b,
        });
        let read_pj = read_b / (f64::from(level.width_bits) / 8.0) * level.energy.read.pj();
        let update_pj =
            write_b / (f64::from(level.write_width()) / 8.0) * level.energy.update().pj();
        for (action, pj) in [("read", read_pj), ("update", update_pj)] {
            if pj != 0.0 {
                energy.push(EnergyEntry {
                    component: level.name.clone(),
                    action: action.into(),
                    pj,
                });
            }
        }
    }
    // The ops' arithmetic: each FLOP pair a `mac` of its unit class at that unit's energy
    // (0 pJ on the h100 and h200 presets: no cited figure).
    let mac_pj = |unit: &str| {
        arch.compute
            .iter()
            .find(|u| u.name == unit)
            .and_then(|u| u.op("mac"))
            .map_or(0.0, |c| c.energy.pj())
    };
    let mut compute_pj = BTreeMap::<&str, f64>::new();
    for (l, e) in ops {
        let unit = if on_tensor_cores(&l.op) {
            "tensor"
        } else {
            "cuda_core"
        };
        *compute_pj.entry(unit).or_default() += e.flops / 2.0 * mac_pj(unit);
    }
    for (unit, pj) in compute_pj {
        if pj != 0.0 {
            energy.push(EnergyEntry {
                component: unit.into(),
                action: "mac".into(),
                pj,
            });
        }
    }
    // Busy time of each unit class at its peak.
    let (mut tensor_s, mut cuda_s) = (0.0, 0.0);
    for (l, e) in ops {
        let key = if on_tensor_cores(&l.op) {
            l.op.dtype().spec_key()
        } else {
            "fp32_fma"
        };
        let busy = match gpu.peak_flops(key) {
            Some(p) if p > 0.0 => e.flops / p,
            _ => 0.0,
        };
        if on_tensor_cores(&l.op) {
            tensor_s += busy;
        } else {
            cuda_s += busy;
        }
    }
    let util = |busy: f64| {
        if latency_s > 0.0 {
            (busy / latency_s).min(1.0)
        } else {
            0.0
        }
    };
    let utilization = BTreeMap::from([
        ("cuda_core".to_string(), util(cuda_s)),
        ("tensor".to_string(), util(tensor_s)),
    ]);
    Report {
        cascade: cascade.to_string(),
        arch: arch.name.clone(),
        latency_s,
        latency_cycles: latency_s * clock,
        bound,
        energy_pj: energy.iter().map(|e| e.pj).sum(),
        energy,
        traffic,
        utilization,
        off_chip_bytes,
        groups: ops
            .iter()
            .map(|(l, e)| GroupReport {
                einsums: l.einsums.clone(),
                cycles: e.seconds * clock,
                compute_cycles: e.kernels.iter().map(|k| k.compute_s).sum::<f64>() * clock,
                bound: e.bound.name().to_string(),
                op: Some(l.spec.clone()),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::try_estimate;

    fn run(arch: &Architecture, specs: &[&str]) -> (Vec<(LoweredOp, GpuEstimate)>, Report) {
        let gpu = arch.gpu.as_ref().unwrap();
        let ops: Vec<(LoweredOp, GpuEstimate)> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let op = GpuOp::parse(s).unwrap();
                let l = LoweredOp {
                    pattern: "test",
                    einsums: vec![format!("E{i}")],
                    spec: s.to_string(),
                    op,
                };
                (l, try_estimate(&op, gpu).unwrap())
            })
            .collect();
        let r = report("c", arch, gpu, &ops);
        (ops, r)
    }

    #[test]
    fn the_report_sums_the_ops_and_prices_hbm_from_the_arch() {
        let arch = cascade_arch::preset("h200").unwrap();
        let (ops, r) = run(
            &arch,
            &[
                "rmsnorm rows=16384 cols=4096 dtype=bf16",
                "gemm m=16384 n=6144 k=4096 dtype=bf16",
                "add elems=1024 dtype=bf16",
            ],
        );
        let secs: f64 = ops.iter().map(|o| o.1.seconds).sum();
        assert_eq!(r.latency_s, secs);
        assert_eq!(r.latency_cycles, secs * 1.83e9);
        // The GEMM takes most of the time and is compute-bound.
        assert_eq!(ops[1].1.bound.name(), "compute");
        assert_eq!(r.bound, "compute");
        let hbm: f64 = ops.iter().map(|o| o.1.hbm_bytes).sum();
        assert_eq!(r.off_chip_bytes, hbm);
        assert_eq!(r.level_bytes("hbm"), hbm);
        // Outputs written: the norm's and the GEMM's outputs and the add's.
        let t = r.traffic_of("hbm", "*").unwrap();
        let written = (16384.0 * 4096.0 + 16384.0 * 6144.0 + 1024.0) * 2.0;
        assert_eq!(t.write_bytes, written);
        // 0.891 nJ per 32-byte access, reads and writes alike (the h200 preset).
        assert!(
            (r.energy_pj / (hbm / 32.0 * 891.0) - 1.0).abs() < 1e-12,
            "{}",
            r.energy_pj
        );
        assert_eq!(r.component_pj("hbm"), r.energy_pj);
        // Utilisation: the GEMM's FLOPs over the bf16 peak, the rest over the FP32 peak.
        let peak = 4096.0 * 132.0 * 1.83e9;
        let want = ops[1].1.flops / peak / secs;
        assert!((r.utilization["tensor"] / want - 1.0).abs() < 1e-12);
        assert!(r.utilization["cuda_core"] > 0.0 && r.utilization["cuda_core"] < 1.0);
        // One group per op, with its spec.
        assert_eq!(r.groups.len(), 3);
        assert_eq!(
            r.groups[1].op.as_deref(),
            Some("gemm m=16384 n=6144 k=4096 dtype=bf16")
        );
        assert_eq!(r.groups[1].einsums, ["E1"]);
        assert_eq!(r.groups[1].cycles, ops[1].1.seconds * 1.83e9);
    }

    #[test]
    fn no_off_chip_level_gives_no_traffic_and_no_energy_rather_than_nan() {
        let mut arch = cascade_arch::preset("h200").unwrap();
        arch.levels[0].kind = cascade_arch::StorageKind::Sram;
        let (_, r) = run(&arch, &["gemm m=64 n=64 k=64"]);
        assert!(r.traffic.is_empty());
        assert_eq!(r.energy_pj, 0.0);
        assert!(r.energy.is_empty());
        // The traffic still counts as off-chip bytes: the GPU model's HBM.
        assert!(r.off_chip_bytes > 0.0 && r.off_chip_bytes.is_finite());
        assert!(r.latency_s > 0.0 && r.latency_s.is_finite());
    }
}
