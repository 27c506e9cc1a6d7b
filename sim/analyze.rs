//! `cascade analyze`: per-layer, per-Einsum op counts, footprints and passes of a workload.

use crate::workload::{Instance, Point, Workload, WorkloadKind};
use anyhow::{Context, Result};
use cascade_einsum::analysis::OpCounts;
use cascade_einsum::{analyze, bind, library, Analysis, AnalysisOptions};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Clone, Debug, Serialize)]
pub struct InstanceReport {
    pub role: String,
    /// Occurrences per layer (a layer list's `count`; 1 for an LLM's cascades).
    pub count: u64,
    pub analysis: Analysis,
    /// Bytes of all inputs and outputs of the cascade (each once).
    pub io_bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PointReport {
    pub point: Point,
    pub layer: Vec<InstanceReport>,
    /// Ops of one layer by kind (each instance × its count).
    pub layer_ops: OpCounts,
    /// Ops of the whole model (repeats × one layer), as u128: 1M-token points overflow u64.
    pub model_ops: BTreeMap<String, u128>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkloadReport {
    pub workload: String,
    pub kind: WorkloadKind,
    /// How many times one layer (a block of `block` layers) repeats: the LLM's layers over
    /// `block`, 1 for a layer list.
    pub layers: u64,
    /// Transformer layers per repeat: 1, or 2 when dense and MoE layers alternate.
    pub block: u64,
    pub precision_bytes: u64,
    pub points: Vec<PointReport>,
}

/// Analyse one cascade instance.
pub fn analyze_instance(inst: &Instance, dtype_bytes: u64) -> Result<InstanceReport> {
    let checked = library::load(&inst.cascade).map_err(|e| anyhow::anyhow!("{e}"))?;
    let c = &checked.cascade;
    let shapes = bind(c, &inst.extents).map_err(|e| anyhow::anyhow!("{e}"))?;
    let analysis = analyze(
        c,
        &shapes,
        &AnalysisOptions {
            dtype_bytes,
            routing: inst.routing.clone(),
        },
    );
    let io_bytes = analysis
        .tensors
        .iter()
        .filter(|t| t.kind == "input" || t.kind == "output")
        .map(|t| t.touched_bytes)
        .sum();
    Ok(InstanceReport {
        role: inst.role.clone(),
        count: inst.count,
        analysis,
        io_bytes,
    })
}

pub fn analyze_workload(w: &Workload) -> Result<WorkloadReport> {
    let bytes = w.run.precision.bytes();
    let mut points = Vec::new();
    for pt in w.points() {
        let mut layer = Vec::new();
        let mut layer_ops = OpCounts::new();
        for inst in crate::workload::merge_equal(w.layer(&pt)) {
            let r = analyze_instance(&inst, bytes)
                .with_context(|| format!("{} ({})", inst.role, inst.cascade))?;
            for (k, v) in &r.analysis.total_ops {
                let n = layer_ops.entry(k.clone()).or_insert(0);
                *n = n.saturating_add(v.saturating_mul(inst.count));
            }
            layer.push(r);
        }
        let model_ops = layer_ops
            .iter()
            .map(|(k, v)| (k.clone(), *v as u128 * w.repeats() as u128))
            .collect();
        points.push(PointReport {
            point: pt,
            layer,
            layer_ops,
            model_ops,
        });
    }
    Ok(WorkloadReport {
        workload: w.name.clone(),
        kind: w.kind(),
        layers: w.repeats(),
        block: w.block(),
        precision_bytes: bytes,
        points,
    })
}

/// Engineering notation for big counts (`1.23e12`).
pub fn eng(v: f64) -> String {
    if v.abs() < 1e6 {
        format!("{v:.0}")
    } else {
        format!("{v:.3e}")
    }
}

/// Human-readable table of a workload report.
pub fn render_text(r: &WorkloadReport) -> String {
    let mut s = String::new();
    let list = r.kind == WorkloadKind::LayerList;
    if list {
        let listed = r.points.first().map_or(0, |p| p.layer.len());
        let all: u64 = r
            .points
            .first()
            .map_or(0, |p| p.layer.iter().map(|i| i.count).sum());
        writeln!(
            s,
            "workload {} — {listed} listed layers ({all} with repeats), {} B/element",
            r.workload, r.precision_bytes
        )
        .unwrap();
    } else {
        let blocks = if r.block > 1 {
            format!(
                "{} layers: {} blocks of {} (dense FFN, then MoE), counts per block",
                r.layers * r.block,
                r.layers,
                r.block
            )
        } else {
            format!("{} layers", r.layers)
        };
        writeln!(
            s,
            "workload {} — {blocks}, {} B/element",
            r.workload, r.precision_bytes
        )
        .unwrap();
    }
    for p in &r.points {
        if list {
            writeln!(s, "\nbatch {}", p.point.batch).unwrap();
        } else {
            writeln!(
                s,
                "\n{:?} batch {} seq {}",
                p.point.phase, p.point.batch, p.point.seq_len
            )
            .unwrap();
        }
        writeln!(
            s,
            "  {:<10} {:<16} {:>5} {:>12} {:>12} {:>12} {:>12}  passes",
            "role", "cascade", "count", "MACs", "other ops", "io bytes", "footprint"
        )
        .unwrap();
        for i in &p.layer {
            let a = &i.analysis;
            let macs = a.op("mac");
            let other: u64 = a
                .total_ops
                .iter()
                .filter(|(k, _)| *k != "mac")
                .map(|(_, v)| v)
                .sum();
            let foot: u64 = a.tensors.iter().map(|t| t.bytes).sum();
            let passes: Vec<String> = a
                .passes
                .iter()
                .filter(|(_, v)| **v > 1)
                .map(|(k, v)| format!("{k}:{v}"))
                .collect();
            writeln!(
                s,
                "  {:<10} {:<16} {:>5} {:>12} {:>12} {:>12} {:>12}  {}",
                i.role,
                a.cascade,
                i.count,
                eng(macs as f64),
                eng(other as f64),
                eng(i.io_bytes as f64),
                eng(foot as f64),
                if passes.is_empty() {
                    "1".to_string()
                } else {
                    passes.join(" ")
                }
            )
            .unwrap();
        }
        let total: u128 = p.model_ops.values().sum();
        writeln!(
            s,
            "  {} total: {} MACs, {} ops of all kinds",
            if list { "network" } else { "model" },
            eng(*p.model_ops.get("mac").unwrap_or(&0) as f64),
            eng(total as f64)
        )
        .unwrap();
    }
    s
}
