//! `cascade eval`: run the reference interpreter on random inputs of a small instance and
//! print a checksum per output. The interpreter holds every tensor densely in f64 and visits
//! every point of every Einsum's iteration space, so instances are bounded before anything is
//! allocated.

use super::map::parse_sets;
use anyhow::{anyhow, bail, Result};
use cascade_einsum::ir::{rank_of, Cascade};
use cascade_einsum::{bind, evaluate, random_inputs, Shapes};
use serde::Serialize;
use std::collections::BTreeMap;

/// Most tensor elements (all tensors together, 8 bytes each: 400 MB) `eval` allocates.
pub const MAX_ELEMENTS: u64 = 50_000_000;
/// Most iteration points (all Einsums together; about 3 s at the interpreter's ~15 M
/// points/s) `eval` visits.
pub const MAX_POINTS: u64 = 50_000_000;

#[derive(Serialize, Debug)]
pub struct OutputSum {
    pub tensor: String,
    pub shape: Vec<usize>,
    /// Sum of the elements; absent where some element is not finite.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<f64>,
    /// Elements that are NaN or infinite (a division by zero, an exp overflow, …).
    pub non_finite: u64,
}

#[derive(Serialize, Debug)]
pub struct EvalReport {
    pub cascade: String,
    pub seed: u64,
    pub extents: BTreeMap<String, u64>,
    pub elements: u64,
    pub points: u64,
    pub outputs: Vec<OutputSum>,
}

/// Extents for `eval`: the ranks given (refused when the cascade has no such rank), 4 for
/// other ranks, 8 for a split root with parts of 2 (or 1) and the outermost derived; window
/// ranks derived from their affine indices.
pub fn extents(cas: &Cascade, sets: &[String]) -> Result<Shapes> {
    let mut given = parse_sets(sets)?;
    for r in given.keys() {
        if !cas.ranks.contains_key(r) {
            bail!(
                "--set {r}=…: cascade {} has no rank {r} (ranks: {})",
                cas.name,
                cas.ranks.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    let windows = cas.window_ranks();
    for r in cas.ranks.values() {
        let in_split = r.parent.is_some() || !r.parts.is_empty();
        if !given.contains_key(&r.name) && !in_split && !windows.contains(&r.name) {
            given.insert(r.name.clone(), 4);
        }
    }
    for r in cas.ranks.values().filter(|r| !r.parts.is_empty()) {
        let root = *given.entry(r.name.clone()).or_insert(8);
        let mut rest = root;
        for p in r.parts.iter().skip(1) {
            let v = *given
                .entry(p.clone())
                .or_insert(if rest % 2 == 0 { 2 } else { 1 });
            rest /= v.max(1);
        }
    }
    bind(cas, &given).map_err(|e| anyhow!("{e}"))
}

/// Elements of all tensors and points of all Einsums' iteration spaces (saturating).
pub fn work(cas: &Cascade, sh: &Shapes) -> (u64, u64) {
    let elements = cas.tensors.values().fold(0u64, |acc, t| {
        let n = sh
            .tensor_dims(t)
            .iter()
            .fold(1u64, |a, &d| a.saturating_mul(d));
        acc.saturating_add(n)
    });
    let points = cas.einsums.iter().fold(0u64, |acc, e| {
        let n = e
            .vars
            .iter()
            .fold(1u64, |a, v| a.saturating_mul(sh.extent(&rank_of(v))));
        acc.saturating_add(n)
    });
    (elements, points)
}

/// Evaluate `cas` on random inputs of `seed`, after checking the instance is small enough.
pub fn eval(cas: &Cascade, sets: &[String], seed: u64) -> Result<EvalReport> {
    let shapes = extents(cas, sets)?;
    let (elements, points) = work(cas, &shapes);
    let ext = fmt_extents(shapes.extents());
    if elements > MAX_ELEMENTS {
        bail!("{}: {ext} needs {elements:.3e} tensor elements; eval holds at most {MAX_ELEMENTS:.0e} (f64, dense): choose smaller extents with --set", cas.name);
    }
    if points > MAX_POINTS {
        bail!("{}: {ext} visits {points:.3e} iteration points; eval visits at most {MAX_POINTS:.0e} (about 3 s): choose smaller extents with --set", cas.name);
    }
    let inputs = random_inputs(cas, &shapes, seed);
    let env = evaluate(cas, &shapes, &inputs).map_err(|e| anyhow!("{e}"))?;
    let outputs = cas
        .outputs
        .iter()
        .map(|o| {
            let t = &env[o];
            let non_finite = t.data.iter().filter(|v| !v.is_finite()).count() as u64;
            OutputSum {
                tensor: o.clone(),
                shape: t.shape.clone(),
                checksum: (non_finite == 0).then(|| t.checksum()),
                non_finite,
            }
        })
        .collect();
    Ok(EvalReport {
        cascade: cas.source.name.clone(),
        seed,
        extents: shapes.extents().clone(),
        elements,
        points,
        outputs,
    })
}

fn fmt_extents(e: &BTreeMap<String, u64>) -> String {
    e.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn render_text(r: &EvalReport) -> String {
    let mut s = format!(
        "evaluated {} on random inputs in [-1, 1) (seed {}) with {}\n",
        r.cascade,
        r.seed,
        fmt_extents(&r.extents)
    );
    for o in &r.outputs {
        match o.checksum {
            Some(c) => s.push_str(&format!("  {}{:?}: checksum {c:.12e}\n", o.tensor, o.shape)),
            None => s.push_str(&format!(
                "  {}{:?}: {} non-finite values (no checksum)\n",
                o.tensor, o.shape, o.non_finite
            )),
        }
    }
    s
}
