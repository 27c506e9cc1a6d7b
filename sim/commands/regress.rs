//! `cascade regress`: every reproduction's modeled figures against the checked-in baseline
//! (`reports/baseline.toml`), for CI, each figure with its own tolerance; where a figure moved,
//! which design's rows moved it. The baseline is validated before any search runs.
//!
//! Reproductions covered: FuseMax (`cascade reproduce fusemax`, the study
//! `studies/fusemax.toml`; what moved is named by design) and Duplex (`cascade reproduce
//! duplex`; what moved is named by system, from its static rows). Each later reproduction adds
//! its name to [`REPRODUCTIONS`], its figures ([`tracked_of`]) and its rows, and a
//! `[reproductions.<name>]` table to the baseline.

use crate::reproduce::Row;
use anyhow::{anyhow, Result};
use cascade_einsum::SourceFile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use toml::Spanned;

/// The reproductions `regress` covers; the baseline must have each, and no other.
pub const REPRODUCTIONS: [&str; 2] = ["fusemax", "duplex"];

/// The baseline file: per reproduction, modeled figures with tolerances (relative) and the rows
/// they came from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub note: String,
    pub reproductions: BTreeMap<String, ReproductionBaseline>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReproductionBaseline {
    /// The reproduction's rows (CSV) at the baseline: what the current rows are compared with
    /// to tell which design moved a figure.
    pub rows: String,
    pub figures: BTreeMap<String, BaselineFigure>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BaselineFigure {
    pub value: f64,
    /// Allowed relative drift.
    pub tolerance: f64,
}

/// The figures `regress` tracks of FuseMax (the keys of its `figures`), with the tolerance
/// `--update` writes: 1% for speedups and energy ratios (means over 24 points), 0.5% for
/// utilizations (one point each, or a mean of near-constant values).
pub const TRACKED: [(&str, f64); 8] = [
    ("speedup_vs_flat_mean", 0.01),
    ("speedup_vs_flat_geomean", 0.01),
    ("energy_ratio_vs_flat_mean", 0.01),
    ("speedup_vs_unfused_mean", 0.01),
    ("energy_ratio_vs_unfused_mean", 0.01),
    ("fusemax_util_2d_at_1k", 0.005),
    ("fusemax_util_2d_min_from_16k", 0.005),
    ("flat_util_2d_mean", 0.005),
];

/// The figures `regress` tracks of Duplex (the keys of [`crate::reproduce_duplex::Summary`]),
/// 1% each: every one is a mean or extreme over runs of a deterministic model.
pub const DUPLEX_TRACKED: [(&str, f64); 10] = [
    ("speedup_mean", 0.01),
    ("speedup_max", 0.01),
    ("energy_reduction_mean", 0.01),
    ("tbt_reduction_mean", 0.01),
    ("serving_tbt_reduction_mean", 0.01),
    ("over_bank_pim_max", 0.01),
    ("over_bankgroup_pim_max", 0.01),
    ("crosscheck_max_abs_error", 0.01),
    ("energy_reduction_glam", 0.01),
    ("slo_rate_ratio", 0.01),
];

/// The tracked figures of reproduction `name` (empty for an unknown one).
pub fn tracked_of(name: &str) -> &'static [(&'static str, f64)] {
    match name {
        "fusemax" => &TRACKED,
        "duplex" => &DUPLEX_TRACKED,
        _ => &[],
    }
}

fn tracked_names(name: &str) -> Vec<&'static str> {
    tracked_of(name).iter().map(|t| t.0).collect()
}

/// Duplex's tracked figures of a summary.
pub fn duplex_figures(s: &crate::reproduce_duplex::Summary) -> BTreeMap<String, f64> {
    let get = |k: &str| match k {
        "speedup_mean" => Some(s.speedup_mean),
        "speedup_max" => Some(s.speedup_max),
        "energy_reduction_mean" => Some(s.energy_reduction_mean),
        "tbt_reduction_mean" => Some(s.tbt_reduction_mean),
        "serving_tbt_reduction_mean" => s.serving_tbt_reduction_mean,
        "over_bank_pim_max" => Some(s.over_bank_pim_max),
        "over_bankgroup_pim_max" => Some(s.over_bankgroup_pim_max),
        "crosscheck_max_abs_error" => s.crosscheck_max_abs_error,
        "energy_reduction_glam" => s
            .energy_reduction_by_model
            .iter()
            .find(|m| m.0 == "glam")
            .map(|m| m.1),
        "slo_rate_ratio" => s.slo_rate_ratio,
        _ => None,
    };
    DUPLEX_TRACKED
        .iter()
        .filter_map(|(k, _)| Some((k.to_string(), get(k)?)))
        .collect()
}

/// Per system, how many static runs moved (time per token or energy per token beyond
/// `resolution`, relative) against the baseline's rows, and the one that moved most.
pub fn duplex_point_moves(
    current: &[crate::reproduce_duplex::StaticRow],
    reference: &[crate::reproduce_duplex::StaticRow],
    resolution: f64,
) -> Vec<PointMove> {
    let mut out = Vec::new();
    for (sys, _) in crate::reproduce_duplex::SYSTEMS {
        let mut moved = 0;
        let mut most: Option<(f64, &crate::reproduce_duplex::StaticRow, f64, f64)> = None;
        for r in current.iter().filter(|r| r.system == sys) {
            let Some(b) = reference.iter().find(|b| {
                b.system == r.system
                    && b.model == r.model
                    && b.batch == r.batch
                    && b.input == r.input
                    && b.output == r.output
            }) else {
                continue;
            };
            let (Some(t), Some(tb), Some(e), Some(eb)) = (
                r.tokens_per_s,
                b.tokens_per_s,
                r.energy_per_token_j,
                b.energy_per_token_j,
            ) else {
                continue;
            };
            let dl = tb / t - 1.0;
            let de = e / eb - 1.0;
            let m = dl.abs().max(de.abs());
            if m > resolution {
                moved += 1;
                if most.is_none_or(|x| m > x.0) {
                    most = Some((m, r, dl, de));
                }
            }
        }
        if let Some((_, r, dl, de)) = most {
            out.push(PointMove {
                design: sys.to_string(),
                points_moved: moved,
                model: format!("{} batch {} out {}", r.model, r.batch, r.output),
                seq_len: r.input,
                latency: dl,
                energy: de,
            });
        }
    }
    out
}

/// The modeled figures `regress` tracks, from a reproduction summary (those it gives).
pub fn tracked(s: &crate::reproduce::Summary) -> BTreeMap<String, f64> {
    let get = |k: &str| match k {
        "speedup_vs_flat_mean" => s.speedup_vs_flat_mean,
        "speedup_vs_flat_geomean" => s.speedup_vs_flat_geomean,
        "energy_ratio_vs_flat_mean" => s.energy_ratio_vs_flat_mean,
        "speedup_vs_unfused_mean" => s.speedup_vs_unfused_mean,
        "energy_ratio_vs_unfused_mean" => s.energy_ratio_vs_unfused_mean,
        "fusemax_util_2d_at_1k" => s.fusemax_util_2d_at_1k,
        "fusemax_util_2d_min_from_16k" => s.fusemax_util_2d_min_from_16k,
        "flat_util_2d_mean" => s.flat_util_2d_mean,
        _ => None,
    };
    TRACKED
        .iter()
        .filter_map(|(k, _)| Some((k.to_string(), get(k)?)))
        .collect()
}

/// FuseMax's tracked figures of a set of rows.
pub fn figures_of(rows: &[Row]) -> BTreeMap<String, f64> {
    tracked(&crate::reproduce::summarize(rows))
}

/// A new baseline from each reproduction's current figures (rounded to 6 decimals) and rows
/// file: `(name, figures, rows file)`.
pub fn baseline_of(current: &[(&str, BTreeMap<String, f64>, &str)]) -> Baseline {
    let reproductions = current
        .iter()
        .map(|(name, cur, rows)| {
            let figures = tracked_of(name)
                .iter()
                .filter_map(|(k, tol)| {
                    let v = cur.get(*k)?;
                    Some((
                        k.to_string(),
                        BaselineFigure {
                            value: (v * 1e6).round() / 1e6,
                            tolerance: *tol,
                        },
                    ))
                })
                .collect();
            (
                name.to_string(),
                ReproductionBaseline {
                    rows: rows.to_string(),
                    figures,
                },
            )
        })
        .collect();
    Baseline {
        note: "Modeled figures of every reproduction (cascade reproduce <paper>), each with its tolerance, and the rows they came from; regenerate with `cascade regress --update` when a model change is intended.".into(),
        reproductions,
    }
}

/// One figure compared.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Compared {
    pub figure: String,
    pub baseline: f64,
    /// `None` when the current run does not give the figure.
    pub value: Option<f64>,
    pub tolerance: f64,
    /// Relative drift (`value / baseline − 1`; the absolute value where the baseline is 0).
    pub drift: Option<f64>,
    pub pass: bool,
}

/// Compare current figures with a reproduction's baseline, figure by figure.
pub fn compare(current: &BTreeMap<String, f64>, base: &ReproductionBaseline) -> Vec<Compared> {
    base.figures
        .iter()
        .map(|(k, b)| {
            let value = current.get(k).copied().filter(|v| v.is_finite());
            let drift = value
                .map(|v| {
                    if b.value == 0.0 {
                        v.abs()
                    } else {
                        v / b.value - 1.0
                    }
                })
                .filter(|d| d.is_finite());
            Compared {
                figure: k.clone(),
                baseline: b.value,
                value,
                tolerance: b.tolerance,
                drift,
                pass: drift.is_some_and(|d| d.abs() <= b.tolerance),
            }
        })
        .collect()
}

/// What moved one figure: per design, the figure's change when that design's rows alone are
/// put back to the baseline's (`now − with the design's baseline rows`, relative to the
/// baseline figure).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Moved {
    pub figure: String,
    pub drift: f64,
    /// (design, its share of the drift).
    pub by_design: Vec<(String, f64)>,
}

/// A design's largest change of a point (relative latency and energy change).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PointMove {
    pub design: String,
    pub points_moved: usize,
    pub model: String,
    pub seq_len: u64,
    pub latency: f64,
    pub energy: f64,
}

/// `r`'s point (design, model, length) among `rows`.
fn same_point<'a>(rows: &'a [Row], r: &Row) -> Option<&'a Row> {
    rows.iter()
        .find(|b| b.design == r.design && b.model == r.model && b.seq_len == r.seq_len)
}

/// Rows of `rows` with `design`'s replaced by `reference`'s (the points both have).
fn with_design_from(rows: &[Row], reference: &[Row], design: &str) -> Vec<Row> {
    rows.iter()
        .map(|r| {
            if r.design != design {
                return r.clone();
            }
            same_point(reference, r)
                .cloned()
                .unwrap_or_else(|| r.clone())
        })
        .collect()
}

/// Which design moved which figure: for every figure whose value differs from the reference
/// rows' (beyond `resolution`, relative), each design's share of the change.
pub fn attribute(
    current: &[Row],
    reference: &[Row],
    designs: &[&str],
    resolution: f64,
) -> Vec<Moved> {
    let now = figures_of(current);
    let then = figures_of(reference);
    let swapped: Vec<(&str, BTreeMap<String, f64>)> = designs
        .iter()
        .map(|d| (*d, figures_of(&with_design_from(current, reference, d))))
        .collect();
    let mut out = Vec::new();
    for (k, v) in &now {
        let Some(b) = then.get(k).filter(|b| **b != 0.0) else {
            continue;
        };
        let drift = v / b - 1.0;
        if drift.abs() <= resolution {
            continue;
        }
        let by_design = swapped
            .iter()
            .filter_map(|(d, f)| Some((d.to_string(), (v - f.get(k)?) / b)))
            .collect();
        out.push(Moved {
            figure: k.clone(),
            drift,
            by_design,
        });
    }
    out
}

/// Per design, how many points moved (latency or energy beyond `resolution`, relative) and the
/// one that moved most.
pub fn point_moves(
    current: &[Row],
    reference: &[Row],
    designs: &[&str],
    resolution: f64,
) -> Vec<PointMove> {
    let mut out = Vec::new();
    for d in designs {
        let mut moved = 0;
        let mut most: Option<(f64, &Row, f64, f64)> = None;
        for r in current.iter().filter(|r| r.design == *d) {
            let Some(b) = same_point(reference, r) else {
                continue;
            };
            let dl = r.latency_s / b.latency_s - 1.0;
            let de = r.energy_j / b.energy_j - 1.0;
            let m = dl.abs().max(de.abs());
            if m > resolution {
                moved += 1;
                if most.is_none_or(|x| m > x.0) {
                    most = Some((m, r, dl, de));
                }
            }
        }
        if let Some((_, r, dl, de)) = most {
            out.push(PointMove {
                design: d.to_string(),
                points_moved: moved,
                model: r.model.clone(),
                seq_len: r.seq_len,
                latency: dl,
                energy: de,
            });
        }
    }
    out
}

/// One reproduction's comparison: the figures and what moved them.
#[derive(Clone, Debug, Serialize)]
pub struct Regression {
    pub reproduction: String,
    pub rows: String,
    pub figures: Vec<Compared>,
    pub moved: Vec<Moved>,
    pub points: Vec<PointMove>,
    pub pass: bool,
}

/// Compares a reproduction's current rows with its baseline (figures) and with the baseline's
/// rows (what moved). `reference` is `None` when the rows file cannot be read (then nothing is
/// attributed, and the text says so).
pub fn regression(
    name: &str,
    current: &[Row],
    base: &ReproductionBaseline,
    reference: Option<&[Row]>,
    designs: &[&str],
) -> Regression {
    let figures = compare(&figures_of(current), base);
    // The rows file holds 7 significant digits and utilizations to 4 decimals: changes below
    // 5·10⁻⁴ are within its rounding.
    let resolution = 5e-4;
    let (moved, points) = match reference {
        Some(r) => (
            attribute(current, r, designs, resolution),
            point_moves(current, r, designs, resolution),
        ),
        None => (Vec::new(), Vec::new()),
    };
    Regression {
        reproduction: name.to_string(),
        rows: base.rows.clone(),
        pass: figures.iter().all(|c| c.pass),
        figures,
        moved,
        points,
    }
}

/// Duplex's comparison: its figures against the baseline, and per system the static runs
/// that moved against the baseline's rows (`None`: unreadable, nothing named).
pub fn regression_duplex(
    d: &crate::reproduce_duplex::Reproduction,
    base: &ReproductionBaseline,
    reference: Option<&[crate::reproduce_duplex::StaticRow]>,
) -> Regression {
    let figures = compare(&duplex_figures(&d.summary), base);
    let points = reference.map_or_else(Vec::new, |r| duplex_point_moves(&d.rows, r, 5e-4));
    Regression {
        reproduction: "duplex".into(),
        rows: base.rows.clone(),
        pass: figures.iter().all(|c| c.pass),
        figures,
        moved: Vec::new(),
        points,
    }
}

/// The text report of one reproduction's regression.
pub fn render(r: &Regression, reference_found: bool) -> String {
    let mut s = format!(
        "== {} (rows at the baseline: {})\n{:<32} {:>10} {:>10} {:>8} {:>6} {:>4}\n",
        r.reproduction, r.rows, "figure", "baseline", "now", "drift", "tol", "ok"
    );
    for c in &r.figures {
        let tol = format!("{:.1}%", c.tolerance * 100.0);
        match (c.value, c.drift) {
            (Some(v), Some(d)) => s.push_str(&format!(
                "{:<32} {:>10.4} {:>10.4} {:>+7.2}% {:>6} {:>4}\n",
                c.figure,
                c.baseline,
                v,
                d * 100.0,
                tol,
                if c.pass { "yes" } else { "NO" }
            )),
            _ => s.push_str(&format!(
                "{:<32} {:>10.4} {:>10} {:>8} {:>6} {:>4}\n",
                c.figure, c.baseline, "n/a", "n/a", tol, "NO"
            )),
        }
    }
    if !reference_found {
        s.push_str(&format!(
            "what moved: {} cannot be read, so no design is named\n",
            r.rows
        ));
    } else if r.moved.is_empty() && r.points.is_empty() {
        s.push_str("what moved: no figure moved from the baseline's rows\n");
    } else if r.moved.is_empty() {
        s.push_str("what moved (runs against the baseline's rows, by system):\n");
        for p in &r.points {
            s.push_str(&format!(
                "  system {}: {} runs moved; most {} in {}: time per token {:+.2}%, energy per token {:+.2}%\n",
                p.design,
                p.points_moved,
                p.model,
                p.seq_len,
                p.latency * 100.0,
                p.energy * 100.0
            ));
        }
    } else {
        s.push_str("what moved (each design's rows put back to the baseline's, one at a time):\n");
        for m in &r.moved {
            let parts: Vec<String> = m
                .by_design
                .iter()
                .map(|(d, x)| format!("{d} {:+.2}%", x * 100.0))
                .collect();
            s.push_str(&format!(
                "  {:<30} {:+.2}% = {}\n",
                m.figure,
                m.drift * 100.0,
                parts.join(", ")
            ));
        }
        for p in &r.points {
            s.push_str(&format!(
                "  design {}: {} points moved; most {} at {}: latency {:+.2}%, energy {:+.2}%\n",
                p.design,
                p.points_moved,
                p.model,
                p.seq_len,
                p.latency * 100.0,
                p.energy * 100.0
            ));
        }
    }
    s
}

/// The comparison as JSON (null-free: a figure the run does not give reads `"n/a"`).
pub fn regress_json(path: &str, regs: &[Regression]) -> serde_json::Value {
    let na = |v: Option<f64>| v.map_or(serde_json::json!("n/a"), |v| serde_json::json!(v));
    let repro: Vec<serde_json::Value> = regs
        .iter()
        .map(|r| {
            let figures: Vec<serde_json::Value> = r
                .figures
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "figure": c.figure,
                        "baseline": c.baseline,
                        "value": na(c.value),
                        "tolerance": c.tolerance,
                        "drift": na(c.drift),
                        "pass": c.pass,
                    })
                })
                .collect();
            serde_json::json!({
                "reproduction": r.reproduction,
                "rows": r.rows,
                "pass": r.pass,
                "figures": figures,
                "moved": r.moved,
                "points_moved": r.points,
            })
        })
        .collect();
    serde_json::json!({
        "baseline": path,
        "pass": regs.iter().all(|r| r.pass),
        "reproductions": repro,
    })
}

/// The baseline as written in the file, with positions for the errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineFile {
    note: String,
    reproductions: Spanned<BTreeMap<Spanned<String>, Spanned<ReproductionFile>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReproductionFile {
    rows: String,
    figures: Spanned<BTreeMap<Spanned<String>, Spanned<FigureFile>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FigureFile {
    value: Spanned<f64>,
    tolerance: Spanned<f64>,
}

/// Read and validate a baseline: every reproduction present once and no other, each with every
/// tracked figure once and no other, each value a finite number and each tolerance a finite
/// number ≥ 0. Errors name the file, the line:col and the field.
pub fn load_baseline(path: &Path) -> Result<Baseline> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("{file}: cannot read: {e}"))?;
    parse_baseline(&text, &file)
}

/// [`load_baseline`] on text; `file` names it in errors.
pub fn parse_baseline(text: &str, file: &str) -> Result<Baseline> {
    let at = |span: std::ops::Range<usize>| {
        let (l, c) = SourceFile::new(file, text).line_col(span.start);
        format!("{file}:{l}:{c}")
    };
    let b: BaselineFile = toml::from_str(text).map_err(|e| match e.span() {
        Some(s) => anyhow!("{}: {}", at(s), e.message().trim_end()),
        None => anyhow!("{file}: {}", e.message().trim_end()),
    })?;
    let repro_span = b.reproductions.span();
    let mut reproductions = BTreeMap::new();
    for (rk, rf) in b.reproductions.into_inner() {
        let rname = rk.get_ref().clone();
        if !REPRODUCTIONS.contains(&rname.as_str()) {
            return Err(anyhow!(
                "{}: reproductions.{rname}: unknown reproduction (covered: {})",
                at(rk.span()),
                REPRODUCTIONS.join(", ")
            ));
        }
        let rf = rf.into_inner();
        let figures_span = rf.figures.span();
        let mut out = BTreeMap::new();
        for (k, f) in rf.figures.into_inner() {
            let name = k.get_ref();
            let p = format!("reproductions.{rname}.figures.{name}");
            if !tracked_names(&rname).contains(&name.as_str()) {
                return Err(anyhow!(
                    "{}: {p}: unknown figure (tracked: {})",
                    at(k.span()),
                    tracked_names(&rname).join(", ")
                ));
            }
            let f = f.into_inner();
            let v = *f.value.get_ref();
            if !v.is_finite() {
                return Err(anyhow!(
                    "{}: {p}.value: must be a finite number, got {v}",
                    at(f.value.span())
                ));
            }
            let t = *f.tolerance.get_ref();
            if !t.is_finite() || t < 0.0 {
                return Err(anyhow!(
                    "{}: {p}.tolerance: must be a finite number ≥ 0 (a relative drift), got {t}",
                    at(f.tolerance.span())
                ));
            }
            out.insert(
                name.clone(),
                BaselineFigure {
                    value: v,
                    tolerance: t,
                },
            );
        }
        let missing: Vec<&str> = tracked_names(&rname)
            .into_iter()
            .filter(|k| !out.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            return Err(anyhow!(
                "{}: reproductions.{rname}.figures: missing {} (every tracked figure needs a value and a tolerance; `cascade regress --update` writes them all)",
                at(figures_span),
                missing.join(", ")
            ));
        }
        reproductions.insert(
            rname,
            ReproductionBaseline {
                rows: rf.rows,
                figures: out,
            },
        );
    }
    let missing: Vec<&str> = REPRODUCTIONS
        .iter()
        .copied()
        .filter(|k| !reproductions.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(anyhow!(
            "{}: reproductions: missing {} (every reproduction is covered; `cascade regress --update` writes them all)",
            at(repro_span),
            missing.join(", ")
        ));
    }
    Ok(Baseline {
        note: b.note,
        reproductions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = include_str!("../../reports/baseline.toml");

    fn row(design: &str, seq: u64, latency_s: f64, energy_j: f64, util_2d: f64) -> Row {
        Row {
            model: "m".into(),
            seq_len: seq,
            design: design.into(),
            latency_s,
            energy_j,
            dram_bytes: 0.0,
            util_2d,
            util_1d: 1.0,
            bound: "compute".into(),
            evaluations: 1,
        }
    }

    fn rows(fusemax_latency: f64, flat_latency: f64) -> Vec<Row> {
        vec![
            row("fusemax", 1024, fusemax_latency, 1.0, 0.9),
            row("flat", 1024, flat_latency, 2.0, 0.125),
            row("unfused", 1024, 10.0, 3.0, 0.1),
            row("fusemax", 16384, fusemax_latency * 16.0, 16.0, 0.99),
            row("flat", 16384, flat_latency * 16.0, 32.0, 0.125),
            row("unfused", 16384, 160.0, 48.0, 0.1),
        ]
    }

    #[test]
    fn the_committed_baseline_is_valid_and_covers_every_reproduction() {
        let b = parse_baseline(GOOD, "b.toml").unwrap();
        assert_eq!(b.reproductions.len(), REPRODUCTIONS.len());
        assert_eq!(b.reproductions["fusemax"].figures.len(), TRACKED.len());
        assert_eq!(
            b.reproductions["duplex"].figures.len(),
            DUPLEX_TRACKED.len()
        );
        // Per-figure tolerances: the utilizations' are tighter than the speedups'.
        let f = &b.reproductions["fusemax"].figures;
        assert!(f["fusemax_util_2d_at_1k"].tolerance < f["speedup_vs_flat_mean"].tolerance);
    }

    #[test]
    fn comparison_without_a_figure_is_n_a_and_fails() {
        let b = parse_baseline(GOOD, "b.toml").unwrap();
        let base = &b.reproductions["fusemax"];
        let mut cur: BTreeMap<String, f64> = base
            .figures
            .iter()
            .map(|(k, f)| (k.clone(), f.value))
            .collect();
        assert!(compare(&cur, base).iter().all(|c| c.pass));
        cur.remove("fusemax_util_2d_at_1k");
        let c = compare(&cur, base);
        assert!(c.iter().any(|c| !c.pass && c.value.is_none()));
    }

    #[test]
    fn a_moved_figure_is_put_on_the_design_that_moved_it() {
        // FLAT got 10% slower: the speedup over FLAT moves by +10%, all of it FLAT's; FuseMax
        // and unfused moved nothing. The speedup over unfused did not move.
        let before = rows(1.0, 6.0);
        let after = rows(1.0, 6.6);
        let m = attribute(&after, &before, &crate::reproduce::FUSEMAX_DESIGNS, 5e-4);
        let flat = m
            .iter()
            .find(|m| m.figure == "speedup_vs_flat_mean")
            .unwrap();
        assert!((flat.drift - 0.10).abs() < 1e-9, "{flat:?}");
        let share = |d: &str| flat.by_design.iter().find(|x| x.0 == d).unwrap().1;
        assert!((share("flat") - 0.10).abs() < 1e-9);
        assert_eq!(share("fusemax"), 0.0);
        assert_eq!(share("unfused"), 0.0);
        assert!(!m.iter().any(|m| m.figure == "speedup_vs_unfused_mean"));
        let p = point_moves(&after, &before, &crate::reproduce::FUSEMAX_DESIGNS, 5e-4);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].design.as_str(), p[0].points_moved), ("flat", 2));
        assert!((p[0].latency - 0.10).abs() < 1e-9);
        // FuseMax 5% faster: both speedups move, each put on FuseMax.
        let after = rows(1.0 / 1.05, 6.0);
        let m = attribute(&after, &before, &crate::reproduce::FUSEMAX_DESIGNS, 5e-4);
        for f in ["speedup_vs_flat_mean", "speedup_vs_unfused_mean"] {
            let x = m.iter().find(|m| m.figure == f).unwrap();
            let fm = x.by_design.iter().find(|d| d.0 == "fusemax").unwrap().1;
            assert!((fm - x.drift).abs() < 1e-9, "{x:?}");
        }
        // The text names it.
        let b = parse_baseline(GOOD, "b.toml").unwrap();
        let r = regression(
            "fusemax",
            &after,
            &b.reproductions["fusemax"],
            Some(&before),
            &crate::reproduce::FUSEMAX_DESIGNS,
        );
        let t = render(&r, true);
        assert!(t.contains("design fusemax: 2 points moved"), "{t}");
        assert!(t.contains("speedup_vs_flat_mean"), "{t}");
    }
}
