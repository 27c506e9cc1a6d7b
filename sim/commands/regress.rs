//! `cascade regress`: the modeled FuseMax figures against the checked-in baseline
//! (`reports/baseline.toml`), for CI. The baseline is validated before any search runs.

use anyhow::{anyhow, Result};
use cascade_einsum::SourceFile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use toml::Spanned;

/// The baseline file: modeled figures with tolerances (relative).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub note: String,
    pub figures: BTreeMap<String, BaselineFigure>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BaselineFigure {
    pub value: f64,
    /// Allowed relative drift.
    pub tolerance: f64,
}

/// The figures `regress` tracks (the keys of a baseline's `[figures]`).
pub const TRACKED: [&str; 8] = [
    "speedup_vs_flat_mean",
    "speedup_vs_flat_geomean",
    "energy_ratio_vs_flat_mean",
    "speedup_vs_unfused_mean",
    "energy_ratio_vs_unfused_mean",
    "fusemax_util_2d_at_1k",
    "fusemax_util_2d_min_from_16k",
    "flat_util_2d_mean",
];

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
        .filter_map(|k| Some((k.to_string(), get(k)?)))
        .collect()
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

/// Compare current figures with a baseline, figure by figure.
pub fn compare(current: &BTreeMap<String, f64>, base: &Baseline) -> Vec<Compared> {
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

/// Compare current figures with a baseline; returns the report and whether all hold.
pub fn regress(current: &BTreeMap<String, f64>, base: &Baseline) -> (String, bool) {
    let rows = compare(current, base);
    let mut s = format!(
        "{:<32} {:>10} {:>10} {:>8} {:>6}\n",
        "figure", "baseline", "now", "drift", "ok"
    );
    for r in &rows {
        match (r.value, r.drift) {
            (Some(v), Some(d)) => s.push_str(&format!(
                "{:<32} {:>10.4} {:>10.4} {:>+7.2}% {:>6}\n",
                r.figure,
                r.baseline,
                v,
                d * 100.0,
                if r.pass { "yes" } else { "NO" }
            )),
            _ => s.push_str(&format!(
                "{:<32} {:>10.4} {:>10} {:>8} {:>6}\n",
                r.figure, r.baseline, "n/a", "n/a", "NO"
            )),
        }
    }
    (s, rows.iter().all(|r| r.pass))
}

/// The comparison as JSON (null-free: a figure the run does not give reads `"n/a"`).
pub fn regress_json(
    path: &str,
    current: &BTreeMap<String, f64>,
    base: &Baseline,
) -> serde_json::Value {
    let rows = compare(current, base);
    let na = |v: Option<f64>| v.map_or(serde_json::json!("n/a"), |v| serde_json::json!(v));
    let figures: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "figure": r.figure,
                "baseline": r.baseline,
                "value": na(r.value),
                "tolerance": r.tolerance,
                "drift": na(r.drift),
                "pass": r.pass,
            })
        })
        .collect();
    serde_json::json!({
        "baseline": path,
        "pass": rows.iter().all(|r| r.pass),
        "figures": figures,
    })
}

/// The baseline as written in the file, with positions for the errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineFile {
    note: String,
    figures: Spanned<BTreeMap<Spanned<String>, Spanned<FigureFile>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FigureFile {
    value: Spanned<f64>,
    tolerance: Spanned<f64>,
}

/// Read and validate a baseline: every tracked figure present once, no other, each value a
/// finite number and each tolerance a finite number ≥ 0. Errors name the file, the line:col
/// and the field.
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
    let figures_span = b.figures.span();
    let figures = b.figures.into_inner();
    let mut out = BTreeMap::new();
    for (k, f) in figures {
        let name = k.get_ref();
        if !TRACKED.contains(&name.as_str()) {
            return Err(anyhow!(
                "{}: figures.{name}: unknown figure (tracked: {})",
                at(k.span()),
                TRACKED.join(", ")
            ));
        }
        let f = f.into_inner();
        let v = *f.value.get_ref();
        if !v.is_finite() {
            return Err(anyhow!(
                "{}: figures.{name}.value: must be a finite number, got {v}",
                at(f.value.span())
            ));
        }
        let t = *f.tolerance.get_ref();
        if !t.is_finite() || t < 0.0 {
            return Err(anyhow!(
                "{}: figures.{name}.tolerance: must be a finite number ≥ 0 (a relative drift), got {t}",
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
    let missing: Vec<&str> = TRACKED
        .iter()
        .copied()
        .filter(|k| !out.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(anyhow!(
            "{}: figures: missing {} (every tracked figure needs a value and a tolerance; `cascade regress --update` writes them all)",
            at(figures_span),
            missing.join(", ")
        ));
    }
    Ok(Baseline {
        note: b.note,
        figures: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = include_str!("../../reports/baseline.toml");

    #[test]
    fn the_committed_baseline_is_valid() {
        let b = parse_baseline(GOOD, "b.toml").unwrap();
        assert_eq!(b.figures.len(), TRACKED.len());
    }

    #[test]
    fn comparison_without_a_figure_is_n_a_and_fails() {
        let b = parse_baseline(GOOD, "b.toml").unwrap();
        let mut cur: BTreeMap<String, f64> = b
            .figures
            .iter()
            .map(|(k, f)| (k.clone(), f.value))
            .collect();
        let (_, ok) = regress(&cur, &b);
        assert!(ok);
        cur.remove("fusemax_util_2d_at_1k");
        let (text, ok) = regress(&cur, &b);
        assert!(!ok && text.contains("n/a"), "{text}");
        let j = regress_json("b.toml", &cur, &b).to_string();
        assert!(!j.contains("null") && j.contains("\"n/a\""), "{j}");
    }
}
