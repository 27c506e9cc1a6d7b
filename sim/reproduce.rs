//! `cascade reproduce fusemax`: FuseMax (MICRO'24) attention results by search — the study
//! `studies/fusemax.toml` (FuseMax, FLAT and an unfused baseline, each a design with its
//! architecture, dataflow constraints and fusion policy; the four FuseMax models × six
//! sequence lengths, batch 64), mapped point by point by the sweep machinery, then FuseMax's
//! figures computed from its rows. The designs are data: `--study` runs an edited copy.

use crate::commands::sweep::{self, Study};
use crate::models::spatial::fusion::{map_cascade, Mapped};
use crate::plot::{render, seq_ticks, Chart, ChartKind, Reference, Series};
use crate::progress::Progress;
use crate::workload::{Workload, FUSEMAX_MODELS};
use anyhow::{anyhow, bail, Context, Result};
use cascade_mappings::constraints::Names;
use cascade_mappings::model::{LoopP, SHARED, TEMPORAL};
use cascade_mappings::{ArchP, Problem, Search};
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

/// The FuseMax study as shipped (`studies/fusemax.toml`, compiled in).
pub const FUSEMAX_STUDY: &str = include_str!("../studies/fusemax.toml");

/// The designs FuseMax's figures compare; a study for `reproduce fusemax` must name them.
pub const FUSEMAX_DESIGNS: [&str; 3] = ["fusemax", "flat", "unfused"];

/// The FuseMax study: the file `path`, or the shipped one. Its designs must include
/// [`FUSEMAX_DESIGNS`] and its workload points must carry sequence lengths.
pub fn fusemax_study(path: Option<&str>) -> Result<Study> {
    let (st, file) = match path {
        Some(p) => (Study::load(p)?, p.to_string()),
        None => (
            Study::parse(FUSEMAX_STUDY, "studies/fusemax.toml (built in)")?,
            "studies/fusemax.toml (built in)".to_string(),
        ),
    };
    for d in FUSEMAX_DESIGNS {
        if !st.designs.iter().any(|x| x.name == d) {
            bail!(
                "{file}: FuseMax's figures compare designs named {}; `{d}` is not one of the study's ({})",
                FUSEMAX_DESIGNS.join(", "),
                st.designs.iter().map(|x| x.name.as_str()).collect::<Vec<_>>().join(", ")
            );
        }
    }
    if let Some(c) = st.cases.iter().find(|c| c.seq.is_none()) {
        bail!(
            "{file}: workload.seq: FuseMax's figures are per sequence length; give lengths for {}",
            c.workload
        );
    }
    Ok(st)
}

/// FuseMax's published Mapping 1 (paper §V) for the 1-pass cascade: shared loops
/// b → h → p2 → m1 above the global buffer, then per array p1 query tiles at the buffer, p0 and
/// m0 unrolled over the 256 × 256 2D array's register files, p0 over the 1D array's; the 2D
/// array runs BQK, LM, SLN, SLD, SLNV and the 1D array the rest. A reference point for the
/// mapper (tests, benchmarks).
pub fn fusemax_mapping_1(p: &Problem, a: &ArchP, p1: u64) -> Result<cascade_mappings::GroupPlan> {
    let r = |n: &str| -> Result<u8> {
        p.rank_index(n)
            .map(|r| r as u8)
            .ok_or_else(|| anyhow!("Mapping 1 needs rank {n} (the 1-pass attention cascade)"))
    };
    let unit = |n: &str| {
        a.unit_index(n)
            .ok_or_else(|| anyhow!("Mapping 1 needs unit {n} (the fusemax preset)"))
    };
    let level = |n: &str| {
        a.level_index(n)
            .map(|l| l as u16)
            .ok_or_else(|| anyhow!("Mapping 1 needs level {n} (the fusemax preset)"))
    };
    let (u2, u1) = (unit("pe2d")?, unit("pe1d")?);
    let (dram, glb, rf2d, rf1d) = (
        level("dram")?,
        level("global_buffer")?,
        level("rf2d")?,
        level("rf1d")?,
    );
    let ext = |n: &str| -> Result<u64> { Ok(p.ranks[usize::from(r(n)?)].extent) };
    let (p0, m0) = (256u64.min(ext("P")?), ext("M0")?);
    let two = ["BQK", "LM", "SLN", "SLD", "SLNV"];
    let einsums: Vec<usize> = (0..p.einsums.len()).collect();
    let binding = einsums
        .iter()
        .map(|&e| {
            if two.contains(&p.einsums[e].name.as_str()) {
                u2
            } else {
                u1
            }
        })
        .collect();
    let p2 = ext("P")? / p0 / p1;
    let lp = |rank: &str, node: u16, dim: u8, owner: u8, factor: u64| -> Result<LoopP> {
        Ok(LoopP {
            rank: r(rank)?,
            node,
            dim,
            owner,
            factor,
        })
    };
    let (o2, o1) = (u2 as u8, u1 as u8);
    let loops = vec![
        lp("B", dram, TEMPORAL, SHARED, ext("B")?)?,
        lp("H", dram, TEMPORAL, SHARED, ext("H")?)?,
        lp("P", dram, TEMPORAL, SHARED, p2)?,
        lp("M1", dram, TEMPORAL, SHARED, ext("M1")?)?,
        lp("P", glb, TEMPORAL, o2, p1)?,
        lp("E", glb, TEMPORAL, o2, ext("E")?)?,
        lp("F", glb, TEMPORAL, o2, ext("F")?)?,
        lp("M0", rf2d, 0, o2, m0)?,
        lp("P", rf2d, 1, o2, p0)?,
        lp("P", glb, TEMPORAL, o1, p1)?,
        lp("F", glb, TEMPORAL, o1, ext("F")?)?,
        lp("P", rf1d, 0, o1, p0)?,
    ];
    Ok(cascade_mappings::GroupPlan {
        einsums,
        binding,
        fuse: usize::from(glb),
        loops,
        keep: vec![],
        derive_keep: true,
        spill: 0,
    })
}

/// One mapped point.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub model: String,
    pub seq_len: u64,
    pub design: String,
    pub latency_s: f64,
    pub energy_j: f64,
    pub dram_bytes: f64,
    pub util_2d: f64,
    pub util_1d: f64,
    pub bound: String,
    pub evaluations: u64,
}

/// Map every (model, seq, design) point of the shipped study (all its sequence lengths, or
/// `seq_lens`), with a progress report labelled `reproduce fusemax` on stderr.
pub fn run(seq_lens: Option<&[u64]>) -> Result<Vec<Row>> {
    run_study(&fusemax_study(None)?, seq_lens, "reproduce fusemax")
}

/// [`run`] with the progress report labelled `label` (e.g. `regress`).
pub fn run_labelled(seq_lens: Option<&[u64]>, label: &str) -> Result<Vec<Row>> {
    run_study(&fusemax_study(None)?, seq_lens, label)
}

/// Maps the points of `study` (its cases restricted to `seq_lens` when given) in parallel and
/// returns FuseMax's rows, by model, sequence length and design.
pub fn run_study(study: &Study, seq_lens: Option<&[u64]>, label: &str) -> Result<Vec<Row>> {
    let mut st = study.clone();
    if let Some(v) = seq_lens {
        for (k, s) in v.iter().enumerate() {
            if v[..k].contains(s) {
                bail!("--seq {s} is given twice");
            }
        }
        let mut names: Vec<String> = Vec::new();
        for c in &st.cases {
            if !names.contains(&c.workload) {
                names.push(c.workload.clone());
            }
        }
        for n in &names {
            let w = Workload::load(n)?;
            for &seq in v {
                check_seq(&w, seq)?;
            }
        }
        st.cases = names
            .iter()
            .flat_map(|n| {
                v.iter().map(|&seq| sweep::Case {
                    workload: n.clone(),
                    seq: Some(seq),
                })
            })
            .collect();
    }
    let points = st.points();
    let progress = Progress::new(label, points.len() as u64).unit("points");
    let rows = sweep::evaluate_all(&st, &points, &|| {
        let _step = progress.step();
    })?;
    progress.finish();
    // Rows by case (model, then length), then design: the order of the reports.
    let mut keyed: Vec<((usize, usize), Row)> = Vec::new();
    for (r, pt) in rows.into_iter().zip(&points) {
        if let Some(e) = r.errors.first() {
            bail!("{} {} {}: {e}", r.workload, r.design, r.seq.unwrap_or(0));
        }
        let util = |u: &str| r.utilization.get(u).copied().unwrap_or(0.0);
        keyed.push((
            (pt.case, pt.design),
            Row {
                model: r.workload.clone(),
                seq_len: r.seq.unwrap_or(0),
                design: r.design.clone(),
                latency_s: r.latency_s,
                energy_j: r.energy_j,
                dram_bytes: r.off_chip_bytes,
                util_2d: util("pe2d"),
                util_1d: util("pe1d"),
                bound: r.bound.clone(),
                evaluations: r.evaluations,
            },
        ));
    }
    keyed.sort_by_key(|(k, _)| *k);
    Ok(keyed.into_iter().map(|(_, r)| r).collect())
}

/// Maps one (model, sequence length, design) point of `study` as the study maps it: its
/// problem, architecture and the mapper's result (seeded: the same every run). For tests
/// that replay the mappings (the cycle engine).
pub fn map_point(
    study: &Study,
    model: &str,
    seq: u64,
    design: &str,
) -> Result<(Problem, ArchP, Mapped)> {
    let d = study
        .designs
        .iter()
        .find(|d| d.name == design)
        .ok_or_else(|| anyhow!("the study has no design `{design}`"))?;
    let case = sweep::Case {
        workload: model.to_string(),
        seq: Some(seq),
    };
    let insts = study.instances(d, &case)?;
    let inst = insts
        .iter()
        .find(|i| i.role == "attention")
        .ok_or_else(|| anyhow!("{model}: no attention cascade"))?;
    let (p, a) = crate::commands::map::lower(inst, &d.arch)?;
    let s = Search {
        constraints: d.constraints.for_cascade(&Names::of(&p)),
        ..study.search.clone()
    };
    let mapped =
        map_cascade(&p, &a, &d.fusion, &s).map_err(|e| anyhow!("{model} {design} {seq}: {e}"))?;
    Ok((p, a, mapped))
}

/// A `--seq` length the FuseMax runs can map: at least 1, and split evenly by the workload's
/// key partition (`M0`; a length below the partition is one partition).
fn check_seq(w: &Workload, seq: u64) -> Result<()> {
    if seq == 0 {
        bail!("--seq 0: give sequence lengths ≥ 1");
    }
    let part = w.run.partition;
    if !w.partition_divides(seq) {
        bail!(
            "--seq {seq}: the partition of {} ({part} keys, `run.partition` of {}) does not divide it; \
             use a multiple of {part} (or at most {part})",
            w.name,
            w.name
        );
    }
    Ok(())
}

/// Headline figures, as FuseMax reports them; `None` where the points run do not give the
/// figure (a `--seq` subset without 1K or without 16K and beyond, or without FLAT points).
/// Serialized without the missing figures: JSON never holds a null, NaN or inf.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speedup_vs_flat_mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speedup_vs_flat_geomean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speedup_vs_flat_min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speedup_vs_flat_max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub energy_ratio_vs_flat_mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speedup_vs_unfused_mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub energy_ratio_vs_unfused_mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fusemax_util_2d_at_1k: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fusemax_util_2d_min_from_16k: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flat_util_2d_mean: Option<f64>,
    /// FuseMax points with a FLAT point to compare with.
    pub points: usize,
}

fn find<'a>(rows: &'a [Row], model: &str, seq: u64, design: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.model == model && r.seq_len == seq && r.design == design)
}

/// A finite value, or `None` (an empty set of points, or a degenerate ratio).
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn mean(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    finite(v.iter().sum::<f64>() / v.len() as f64)
}

fn min(v: &[f64]) -> Option<f64> {
    finite(v.iter().copied().reduce(f64::min)?)
}

fn max(v: &[f64]) -> Option<f64> {
    finite(v.iter().copied().reduce(f64::max)?)
}

pub fn summarize(rows: &[Row]) -> Summary {
    let mut sp = Vec::new();
    let mut er = Vec::new();
    let mut spu = Vec::new();
    let mut eru = Vec::new();
    let mut u1k = Vec::new();
    let mut u16 = Vec::new();
    let mut flat_u = Vec::new();
    for r in rows.iter().filter(|r| r.design == "fusemax") {
        if let Some(f) = find(rows, &r.model, r.seq_len, "flat") {
            sp.push(f.latency_s / r.latency_s);
            er.push(r.energy_j / f.energy_j);
            flat_u.push(f.util_2d);
        }
        if let Some(u) = find(rows, &r.model, r.seq_len, "unfused") {
            spu.push(u.latency_s / r.latency_s);
            eru.push(r.energy_j / u.energy_j);
        }
        if r.seq_len == 1024 {
            u1k.push(r.util_2d);
        }
        if r.seq_len >= 16384 {
            u16.push(r.util_2d);
        }
    }
    let geomean = if sp.is_empty() {
        None
    } else {
        finite((sp.iter().map(|x| x.ln()).sum::<f64>() / sp.len() as f64).exp())
    };
    Summary {
        speedup_vs_flat_mean: mean(&sp),
        speedup_vs_flat_geomean: geomean,
        speedup_vs_flat_min: min(&sp),
        speedup_vs_flat_max: max(&sp),
        energy_ratio_vs_flat_mean: mean(&er),
        speedup_vs_unfused_mean: mean(&spu),
        energy_ratio_vs_unfused_mean: mean(&eru),
        fusemax_util_2d_at_1k: mean(&u1k),
        fusemax_util_2d_min_from_16k: min(&u16),
        flat_util_2d_mean: mean(&flat_u),
        points: sp.len(),
    }
}

/// A paper target and its tolerance.
pub struct Target {
    pub name: &'static str,
    /// The field of [`Summary`] (and of JSON) it reads.
    pub key: &'static str,
    pub paper: f64,
    pub tolerance: f64,
    pub get: fn(&Summary) -> Option<f64>,
}

/// The FuseMax targets the issue names (paper / artifact CSVs).
pub fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "mean attention speedup vs FLAT",
            key: "speedup_vs_flat_mean",
            paper: 6.72,
            tolerance: 0.10,
            get: |s| s.speedup_vs_flat_mean,
        },
        Target {
            name: "mean energy ratio vs FLAT",
            key: "energy_ratio_vs_flat_mean",
            paper: 0.787,
            tolerance: 0.10,
            get: |s| s.energy_ratio_vs_flat_mean,
        },
        Target {
            name: "FuseMax 2D utilization at 1K",
            key: "fusemax_util_2d_at_1k",
            paper: 0.89,
            tolerance: 0.05,
            get: |s| s.fusemax_util_2d_at_1k,
        },
        Target {
            name: "FuseMax 2D utilization from 16K (min)",
            key: "fusemax_util_2d_min_from_16k",
            paper: 0.95,
            tolerance: 0.0,
            get: |s| s.fusemax_util_2d_min_from_16k,
        },
        Target {
            name: "FLAT 2D utilization (mean)",
            key: "flat_util_2d_mean",
            paper: 0.125,
            tolerance: 0.25,
            get: |s| s.flat_util_2d_mean,
        },
        Target {
            name: "mean speedup vs unfused",
            key: "speedup_vs_unfused_mean",
            paper: 10.0,
            tolerance: 0.25,
            get: |s| s.speedup_vs_unfused_mean,
        },
        Target {
            name: "mean energy ratio vs unfused",
            key: "energy_ratio_vs_unfused_mean",
            paper: 0.77,
            tolerance: 0.10,
            get: |s| s.energy_ratio_vs_unfused_mean,
        },
    ]
}

/// Whether a measured value meets a target (`tolerance` 0 = at least the paper figure);
/// `None` where the run lacks the figure (neither met nor missed).
pub fn meets(t: &Target, v: Option<f64>) -> Option<bool> {
    let v = v?;
    Some(if t.tolerance == 0.0 {
        v >= t.paper
    } else {
        (v / t.paper - 1.0).abs() <= t.tolerance
    })
}

impl Target {
    /// `±10%` or `≥ paper`.
    pub fn tolerance_text(&self) -> String {
        if self.tolerance == 0.0 {
            "≥ paper".to_string()
        } else {
            format!("±{:.0}%", self.tolerance * 100.0)
        }
    }
}

/// A figure with 3 decimals, or `n/a`.
fn or_na(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.decimals$}"))
}

fn met_text(m: Option<bool>, markdown: bool) -> &'static str {
    match (m, markdown) {
        (None, _) => "n/a",
        (Some(true), _) => "yes",
        (Some(false), true) => "**no**",
        (Some(false), false) => "no",
    }
}

/// The headline table (Markdown; also what the command prints).
pub fn render_summary(s: &Summary) -> String {
    let mut o = String::new();
    writeln!(o, "| figure | paper | cascade | tolerance | met |").unwrap();
    writeln!(o, "|---|---|---|---|---|").unwrap();
    for t in targets() {
        let v = (t.get)(s);
        writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            t.name,
            t.paper,
            or_na(v, 3),
            t.tolerance_text(),
            met_text(meets(&t, v), true)
        )
        .unwrap();
    }
    match (
        s.speedup_vs_flat_geomean,
        s.speedup_vs_flat_min,
        s.speedup_vs_flat_max,
    ) {
        (Some(g), Some(lo), Some(hi)) => writeln!(
            o,
            "\nspeedup vs FLAT: geomean {g:.2}×, range {lo:.2}–{hi:.2}× over {} points.",
            s.points
        ),
        _ => writeln!(
            o,
            "\nspeedup vs FLAT: n/a (no point with both FuseMax and FLAT)."
        ),
    }
    .unwrap();
    o
}

/// The headline figures as CSV: `figure,key,paper,cascade,tolerance,met` (`n/a` where the run
/// lacks a figure).
pub fn summary_csv(s: &Summary) -> String {
    let mut o = String::from("figure,key,paper,cascade,tolerance,met\n");
    for t in targets() {
        let v = (t.get)(s);
        writeln!(
            o,
            "{},{},{},{},{},{}",
            t.name,
            t.key,
            t.paper,
            or_na(v, 6),
            t.tolerance_text(),
            met_text(meets(&t, v), false)
        )
        .unwrap();
    }
    o
}

/// The headline figures as JSON, null-free: a figure the run lacks has `"cascade": "n/a"` and
/// `"met": "n/a"`.
pub fn summary_json(s: &Summary) -> serde_json::Value {
    let figures: Vec<serde_json::Value> = targets()
        .iter()
        .map(|t| {
            let v = (t.get)(s);
            serde_json::json!({
                "figure": t.name,
                "key": t.key,
                "paper": t.paper,
                "cascade": v.map_or(serde_json::json!("n/a"), |v| serde_json::json!(v)),
                "tolerance": t.tolerance_text(),
                "met": meets(t, v).map_or(serde_json::json!("n/a"), |m| serde_json::json!(m)),
            })
        })
        .collect();
    serde_json::json!({ "summary": s, "targets": figures })
}

/// Where `cascade reproduce <paper>` writes without `--out`: the committed `reports/<paper>`
/// for the full run only; a `--seq` subset goes to `target/reproduce/<paper>-seq-…`, so that
/// it never overwrites the committed reports.
pub fn default_out(paper: &str, seq: &[u64]) -> std::path::PathBuf {
    if seq.is_empty() {
        return Path::new("reports").join(paper);
    }
    let list: Vec<String> = seq.iter().map(|s| s.to_string()).collect();
    Path::new("target")
        .join("reproduce")
        .join(format!("{paper}-seq-{}", list.join("-")))
}

fn table(rows: &[Row]) -> String {
    let mut o = String::new();
    writeln!(o, "| model | seq | FuseMax s | FLAT s | unfused s | ×FLAT | E/FLAT | ×unfused | E/unfused | util2d FuseMax | util2d FLAT | FLAT bound |").unwrap();
    writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|").unwrap();
    for r in rows.iter().filter(|r| r.design == "fusemax") {
        let (Some(f), Some(u)) = (
            find(rows, &r.model, r.seq_len, "flat"),
            find(rows, &r.model, r.seq_len, "unfused"),
        ) else {
            continue;
        };
        writeln!(
            o,
            "| {} | {} | {:.4e} | {:.4e} | {:.4e} | {:.2} | {:.3} | {:.2} | {:.3} | {:.3} | {:.3} | {} |",
            r.model,
            r.seq_len,
            r.latency_s,
            f.latency_s,
            u.latency_s,
            f.latency_s / r.latency_s,
            r.energy_j / f.energy_j,
            u.latency_s / r.latency_s,
            r.energy_j / u.energy_j,
            r.util_2d,
            f.util_2d,
            f.bound
        )
        .unwrap();
    }
    o
}

/// The rows as `results.csv` holds them (7 significant digits; utilizations to 4 decimals).
pub fn rows_csv(rows: &[Row]) -> String {
    let mut csv = String::from(
        "model,seq_len,design,latency_s,energy_j,dram_bytes,util_2d,util_1d,bound,evaluations\n",
    );
    for r in rows {
        writeln!(
            csv,
            "{},{},{},{:.6e},{:.6e},{:.6e},{:.4},{:.4},{},{}",
            r.model,
            r.seq_len,
            r.design,
            r.latency_s,
            r.energy_j,
            r.dram_bytes,
            r.util_2d,
            r.util_1d,
            r.bound,
            r.evaluations
        )
        .unwrap();
    }
    csv
}

/// Rows read back from [`rows_csv`]'s form; errors name the file and line.
pub fn parse_rows_csv(text: &str, file: &str) -> Result<Vec<Row>> {
    let mut lines = text.lines().enumerate();
    let head = lines.next().map(|(_, l)| l).unwrap_or("");
    let want =
        "model,seq_len,design,latency_s,energy_j,dram_bytes,util_2d,util_1d,bound,evaluations";
    if head != want {
        bail!("{file}:1: expected the header `{want}`");
    }
    let mut rows = Vec::new();
    for (i, l) in lines {
        let f: Vec<&str> = l.split(',').collect();
        let at = || format!("{file}:{}", i + 1);
        if f.len() != 10 {
            bail!("{}: expected 10 fields, got {}", at(), f.len());
        }
        let num = |k: usize| -> Result<f64> {
            f[k].parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    anyhow!(
                        "{}: field {}: `{}` is not a finite number",
                        at(),
                        k + 1,
                        f[k]
                    )
                })
        };
        rows.push(Row {
            model: f[0].to_string(),
            seq_len: f[1]
                .parse()
                .map_err(|_| anyhow!("{}: seq_len `{}`", at(), f[1]))?,
            design: f[2].to_string(),
            latency_s: num(3)?,
            energy_j: num(4)?,
            dram_bytes: num(5)?,
            util_2d: num(6)?,
            util_1d: num(7)?,
            bound: f[8].to_string(),
            evaluations: f[9]
                .parse()
                .map_err(|_| anyhow!("{}: evaluations `{}`", at(), f[9]))?,
        });
    }
    Ok(rows)
}

/// Write CSV, Markdown and plots under `dir`.
pub fn write_reports(rows: &[Row], s: &Summary, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let csv = rows_csv(rows);
    let write = |name: &str, text: String| {
        let f = dir.join(name);
        std::fs::write(&f, text).with_context(|| format!("{}: cannot write", f.display()))
    };
    write("results.csv", csv)?;
    write("headline.csv", summary_csv(s))?;
    let seqs: Vec<u64> = {
        let mut v: Vec<u64> = rows.iter().map(|r| r.seq_len).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let md = format!(
        "# FuseMax reproduction (by search)\n\nGenerated by `cascade reproduce fusemax`. Every design is mapped by the mapper \
         (FuseMax: 1-pass cascade, fusion and 2D/1D binding searched; FLAT: 3-pass softmax on the 1D array, fused per row \
         block; unfused: QK, softmax, AV with DRAM round trips) on its architecture preset, batch 64.\n\n## Headline\n\n{}{}\n\
         ## Per point\n\n{}\n{}",
        subset_note(&seqs),
        render_summary(s),
        table(rows),
        EXPLANATION
    );
    write("summary.md", md)?;
    let series = |f: &dyn Fn(&Row) -> Option<f64>| -> Vec<Series> {
        FUSEMAX_MODELS
            .iter()
            .map(|m| Series {
                name: m.to_string(),
                points: seqs
                    .iter()
                    .filter_map(|&q| {
                        find(rows, m, q, "fusemax")
                            .and_then(f)
                            .map(|v| (q as f64, v))
                    })
                    .collect(),
            })
            .filter(|s| !s.points.is_empty())
            .collect()
    };
    let paper = |key: &str| {
        targets()
            .into_iter()
            .find(|t| t.key == key)
            .map(|t| t.paper)
    };
    let (lo, hi) = (
        seqs.first().copied().unwrap_or(1) as f64,
        seqs.last().copied().unwrap_or(1) as f64,
    );
    let mut util_refs = Vec::new();
    if let Some(p) = paper("fusemax_util_2d_at_1k").filter(|_| seqs.contains(&1024)) {
        util_refs.push(Reference::new(format!("paper: {p} at 1K"), p).over(1024.0, 1024.0));
    }
    if let Some(p) = paper("fusemax_util_2d_min_from_16k").filter(|_| hi >= 16384.0) {
        util_refs
            .push(Reference::new(format!("paper: ≥ {p} from 16K"), p).over(16384f64.max(lo), hi));
    }
    let mean_ref = |key: &str, what: &str| {
        paper(key)
            .map(|p| vec![Reference::new(format!("paper: {what} {p}"), p)])
            .unwrap_or_default()
    };
    let charts = [
        (
            "speedup",
            "FuseMax attention speedup over FLAT",
            "speedup (×)",
            series(&|r| find(rows, &r.model, r.seq_len, "flat").map(|f| f.latency_s / r.latency_s)),
            mean_ref("speedup_vs_flat_mean", "mean"),
        ),
        (
            "energy_ratio",
            "FuseMax attention energy / FLAT",
            "energy ratio",
            series(&|r| find(rows, &r.model, r.seq_len, "flat").map(|f| r.energy_j / f.energy_j)),
            mean_ref("energy_ratio_vs_flat_mean", "mean"),
        ),
        (
            "utilization",
            "FuseMax 2D-array utilization",
            "utilization",
            series(&|r| Some(r.util_2d)),
            util_refs,
        ),
    ];
    for (file, title, y, series, references) in charts {
        if series.is_empty() {
            continue;
        }
        let chart = Chart {
            title: title.into(),
            x_label: "sequence length (tokens)".into(),
            y_label: y.into(),
            log_x: true,
            log_y: false,
            series,
            kind: ChartKind::Lines,
            diagonal: false,
            references,
            x_ticks: seq_ticks(&seqs.iter().map(|&q| q as f64).collect::<Vec<_>>()),
        };
        render(
            &chart,
            &dir.join(format!("{file}.png")),
            &dir.join(format!("{file}.svg")),
        )?;
    }
    Ok(())
}

/// The paper's sequence lengths (those of the FuseMax workloads).
fn full_seq_lens() -> Vec<u64> {
    Workload::load(FUSEMAX_MODELS[0])
        .map(|w| w.run.seq_len)
        .unwrap_or_default()
}

/// Whether `seq_lens` (as given to `--seq`) leave out some of the paper's sequence lengths.
pub fn is_subset(seq_lens: &[u64]) -> bool {
    let mut v = seq_lens.to_vec();
    v.sort_unstable();
    !seq_lens.is_empty() && v != full_seq_lens()
}

/// A line above the headline when the run covers only some of the paper's sequence lengths.
fn subset_note(seqs: &[u64]) -> String {
    let full = full_seq_lens();
    if seqs == full.as_slice() {
        return String::new();
    }
    let list: Vec<String> = seqs.iter().map(|s| s.to_string()).collect();
    format!(
        "A subset: sequence lengths {} only. The means are over these points (the paper's over all {} \
         lengths); figures the subset does not give are n/a.\n\n",
        list.join(", "),
        full.len()
    )
}

const EXPLANATION: &str = "## Where the model differs from the paper, and why\n\n\
- **FuseMax** is modelled as the artifact does (latency = max(compute, DRAM), the 2D and 1D arrays pipelined per \
step, the final division as an epilogue); evaluated on the paper's Mapping 1 the model gives the artifact's BERT 1K \
figures (2.0131 ms, 402,653,184 B, 2D utilization 0.890; asserted in tests/spatial.rs). The mapper may find a \
binding the model rates faster (moving per-partition corrections to the 2D array to balance the two arrays), so \
FuseMax here is at least as fast as Mapping 1.\n\
- **FLAT up to 64K** is bound by its 1D array (4 cycles per QK element), as in the artifact.\n\
- **FLAT at 256K–1M**: a fused 3-pass row block must hold whole M fibres of QK/SN on chip. Past what 32 MiB holds, \
the mapper either shrinks the row block (fewer P columns in use, K/V re-read per block) or spills the fibres to DRAM: \
each spilled tensor is written once and read once by the next pass (the row max and the denominator are taken from \
the stream as QK and SN are produced), about 4x the QK tensor in all, as the artifact's FLAT moves about 4.1x \
(16,220 s for BERT at 1M; the table above has ours).\n\
- **Energy**: per-action energies are the artifact's (45 nm; the global buffers' from CACTI as the artifact's \
Accelergy plug-in configures them: 23.9 / 27.1 nJ per 4096-bit row read / write for FLAT's 32 MiB, 12.5 / 15.8 nJ \
for FuseMax's 16 MiB), action counts are ours. The arrays exchange data only through the global buffer, so FLAT \
moves 4 reads and 3 writes per QK element through its 32 MiB buffer (QK to the 1D array for the max and again for \
the exponent, SN for the normalisation, A back to the 2D array), about 690 pJ per element, while FuseMax's 2D \
array keeps its per-element work on chip; that and FLAT's exponent unit on the 1D array make the ratio. Unlike the \
artifact, which counts one PE's register file (per-instance statistics), every op here reads two operands and \
writes one result in its PE's register file (about 250 pJ per QK element in every design), so absolute energies at BERT \
1K are about 8% (FLAT) to 10% (FuseMax) above the artifact's and the ratios slightly closer to 1. The unfused baseline \
also stages QK and A through the buffer on their way to and from DRAM, which puts its energy higher than the \
artifact's relative to FuseMax.\n\
- **Search**: the mapper is a heuristic search with a fixed budget (seeded, deterministic); a point can land above \
the best mapping a longer search finds. `cascade map` and the mapper API take larger budgets.\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn row(model: &str, seq: u64, design: &str, latency_s: f64, util_2d: f64) -> Row {
        Row {
            model: model.into(),
            seq_len: seq,
            design: design.into(),
            latency_s,
            energy_j: latency_s * 2.0,
            dram_bytes: 1.0,
            util_2d,
            util_1d: 0.5,
            bound: "compute".into(),
            evaluations: 1,
        }
    }

    /// One model at 4096 only: neither the 1K nor the from-16K utilization exists.
    fn subset() -> Vec<Row> {
        vec![
            row("bert_base", 4096, "fusemax", 1.0, 0.97),
            row("bert_base", 4096, "flat", 7.0, 0.125),
            row("bert_base", 4096, "unfused", 11.0, 0.1),
        ]
    }

    fn no_bad_numbers(text: &str) {
        for bad in ["NaN", "nan", "inf", "null"] {
            assert!(!text.contains(bad), "{bad} in {text}");
        }
    }

    #[test]
    fn figures_a_subset_lacks_are_n_a_in_text_csv_and_json() {
        let s = summarize(&subset());
        assert_eq!(s.fusemax_util_2d_at_1k, None);
        assert_eq!(s.fusemax_util_2d_min_from_16k, None);
        assert_eq!(s.speedup_vs_flat_mean, Some(7.0));
        let md = render_summary(&s);
        no_bad_numbers(&md);
        assert!(
            md.contains("| FuseMax 2D utilization from 16K (min) | 0.95 | n/a | ≥ paper | n/a |"),
            "{md}"
        );
        assert!(
            md.contains("| FuseMax 2D utilization at 1K | 0.89 | n/a | ±5% | n/a |"),
            "{md}"
        );
        assert!(
            md.contains("| mean attention speedup vs FLAT | 6.72 | 7.000 | ±10% | yes |"),
            "{md}"
        );
        let csv = summary_csv(&s);
        no_bad_numbers(&csv);
        assert!(
            csv.contains("FuseMax 2D utilization at 1K,fusemax_util_2d_at_1k,0.89,n/a,±5%,n/a\n"),
            "{csv}"
        );
        let json = summary_json(&s);
        let text = json.to_string();
        no_bad_numbers(&text);
        assert!(json["summary"].get("fusemax_util_2d_at_1k").is_none());
        let t = json["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == "fusemax_util_2d_min_from_16k")
            .unwrap();
        assert_eq!(
            (t["cascade"].as_str(), t["met"].as_str()),
            (Some("n/a"), Some("n/a"))
        );
        assert_eq!(json["targets"][0]["met"], true);
    }

    #[test]
    fn no_points_at_all_give_n_a_everywhere() {
        let s = summarize(&[]);
        let md = render_summary(&s);
        no_bad_numbers(&md);
        assert!(md.contains("speedup vs FLAT: n/a"), "{md}");
        assert!(!md.contains("yes") && !md.contains("no**"), "{md}");
        no_bad_numbers(&summary_json(&s).to_string());
        // A degenerate ratio (a latency of 0) is n/a too, not inf.
        let mut r = subset();
        r[0].latency_s = 0.0;
        let s = summarize(&r);
        assert_eq!(s.speedup_vs_flat_mean, None);
        no_bad_numbers(&render_summary(&s));
    }

    #[test]
    fn only_the_full_run_writes_the_committed_reports_by_default() {
        assert_eq!(default_out("fusemax", &[]), Path::new("reports/fusemax"));
        assert_eq!(
            default_out("fusemax", &[1024]),
            Path::new("target/reproduce/fusemax-seq-1024")
        );
        assert_eq!(
            default_out("fusemax", &[1024, 16384]),
            Path::new("target/reproduce/fusemax-seq-1024-16384")
        );
    }

    #[test]
    fn a_subset_is_any_seq_list_short_of_the_papers_lengths() {
        assert!(!is_subset(&[]));
        assert!(is_subset(&[1024]));
        assert!(!is_subset(&[1048576, 1024, 4096, 16384, 65536, 262144]));
    }

    #[test]
    fn bad_seq_lengths_are_refused_before_any_search() {
        let e = run(Some(&[1000])).unwrap_err().to_string();
        assert!(e.contains("--seq 1000") && e.contains("256"), "{e}");
        let e = run(Some(&[0])).unwrap_err().to_string();
        assert!(e.contains("--seq 0"), "{e}");
        let e = run(Some(&[1024, 1024])).unwrap_err().to_string();
        assert!(e.contains("--seq 1024 is given twice"), "{e}");
    }
}
