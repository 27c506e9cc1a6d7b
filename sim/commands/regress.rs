//! `cascade regress`: the modeled FuseMax figures against the checked-in baseline
//! (`reports/baseline.toml`), for CI.

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

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

/// The modeled figures `regress` tracks, from a reproduction summary.
pub fn tracked(s: &crate::reproduce::Summary) -> BTreeMap<String, f64> {
    [
        ("speedup_vs_flat_mean", s.speedup_vs_flat_mean),
        ("speedup_vs_flat_geomean", s.speedup_vs_flat_geomean),
        ("energy_ratio_vs_flat_mean", s.energy_ratio_vs_flat_mean),
        ("speedup_vs_unfused_mean", s.speedup_vs_unfused_mean),
        (
            "energy_ratio_vs_unfused_mean",
            s.energy_ratio_vs_unfused_mean,
        ),
        ("fusemax_util_2d_at_1k", s.fusemax_util_2d_at_1k),
        (
            "fusemax_util_2d_min_from_16k",
            s.fusemax_util_2d_min_from_16k,
        ),
        ("flat_util_2d_mean", s.flat_util_2d_mean),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), *v))
    .collect()
}

/// Compare current figures with a baseline; returns the report and whether all hold.
pub fn regress(current: &BTreeMap<String, f64>, base: &Baseline) -> (String, bool) {
    let mut ok = true;
    let mut s = format!(
        "{:<32} {:>10} {:>10} {:>8} {:>6}\n",
        "figure", "baseline", "now", "drift", "ok"
    );
    for (k, b) in &base.figures {
        let Some(&v) = current.get(k) else {
            s.push_str(&format!("{k:<32} missing from the current run\n"));
            ok = false;
            continue;
        };
        let drift = if b.value == 0.0 {
            v.abs()
        } else {
            v / b.value - 1.0
        };
        let pass = drift.is_finite() && drift.abs() <= b.tolerance;
        ok &= pass;
        s.push_str(&format!(
            "{k:<32} {:>10.4} {:>10.4} {:>+7.2}% {:>6}\n",
            b.value,
            v,
            drift * 100.0,
            if pass { "yes" } else { "NO" }
        ));
    }
    (s, ok)
}

pub fn load_baseline(path: &Path) -> Result<Baseline> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow!("{}: {}", path.display(), e.message()))
}
