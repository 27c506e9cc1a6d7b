//! `cascade map`, `cascade simulate` and `cascade regress`: map a workload's layer onto a
//! spatial architecture, replay a saved mapping, and check the modeled FuseMax figures
//! against the checked-in baseline.

use super::analytical::evaluate;
use super::mapper::{map_cascade, Fusion};
use super::report::{from_group_mapping, to_mapping, Report};
use crate::workload::Workload;
use anyhow::{anyhow, bail, Context, Result};
use cascade_einsum::{bind, library};
use cascade_mappings::{ArchP, Constraints, Mapping, Objective, Problem, Search};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One mapped cascade instance of a layer (or why it could not be mapped).
#[derive(Clone, Debug, Serialize)]
pub struct MappedInstance {
    pub role: String,
    pub cascade: String,
    pub result: Result<Mapped1, String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Mapped1 {
    pub report: Report,
    pub mapping: Mapping,
    pub evaluations: u64,
    pub seconds: f64,
}

/// Map every cascade of one layer of a workload (its first point).
pub fn map_workload(
    w: &Workload,
    arch: &cascade_arch::Architecture,
    objective: Objective,
    constraints: &Constraints,
    seed: u64,
    budget: u64,
) -> Result<Vec<MappedInstance>> {
    let pt = w.points()[0];
    let mut out = Vec::new();
    for inst in w.layer(&pt) {
        let c = library::load(&inst.cascade)
            .map_err(|e| anyhow!("{e}"))?
            .cascade;
        let sh = bind(&c, &inst.extents).map_err(|e| anyhow!("{e}"))?;
        let p = Problem::new(&c, &sh, w.run.precision.bytes(), inst.routing.clone());
        let a = ArchP::new(arch, &p).map_err(|e| anyhow!(e))?;
        let s = Search::default()
            .objective(objective)
            .seed(seed)
            .budget(budget)
            .constraints(constraints.clone());
        let result = map_cascade(&p, &a, &Fusion::Search, &s).map(|m| Mapped1 {
            mapping: to_mapping(&p, &a, sh.extents(), &m.groups),
            report: m.report,
            evaluations: m.evaluations,
            seconds: m.seconds,
        });
        out.push(MappedInstance {
            role: inst.role.clone(),
            cascade: inst.cascade.clone(),
            result,
        });
    }
    Ok(out)
}

/// Re-evaluate a saved mapping on an architecture (by default the one it names).
pub fn simulate(
    mapping: &Mapping,
    arch: &cascade_arch::Architecture,
    dtype_bytes: u64,
) -> Result<Report> {
    if library::source(&mapping.cascade).is_none() {
        bail!(
            "mapping names cascade `{}`, which is not a built-in cascade (built in: {})",
            mapping.cascade,
            library::names().join(", ")
        );
    }
    let c = library::load(&mapping.cascade)
        .map_err(|e| anyhow!("mapping names cascade `{}`: {e}", mapping.cascade))?
        .cascade;
    let sh = bind(&c, &mapping.extents).map_err(|e| anyhow!("{e}"))?;
    let p = Problem::new(&c, &sh, dtype_bytes, None);
    let a = ArchP::new(arch, &p).map_err(|e| anyhow!(e))?;
    let mut groups = Vec::new();
    for (i, g) in mapping.groups.iter().enumerate() {
        let plan = from_group_mapping(&p, &a, g).map_err(|e| anyhow!("groups[{i}]: {e}"))?;
        let ev = evaluate(&p, &a, &plan)
            .map_err(|e| anyhow!("groups[{i}] is invalid: {}", e.describe(&p, &a)))?;
        groups.push((plan, ev));
    }
    Ok(Report::from_groups(&p, &a, &groups))
}

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

pub fn check_objective(s: &str) -> Result<Objective> {
    match s {
        "latency" => Ok(Objective::Latency),
        "energy" => Ok(Objective::Energy),
        "edp" => Ok(Objective::Edp),
        _ => bail!("--objective {s}: expected latency, energy or edp"),
    }
}
