//! Mapping a whole cascade: choose fusion groups, search each group with the analytical
//! model, and assemble the report.

use super::analytical::{evaluate, Analytical};
use cascade_mappings::model::{ArchP, GroupEval, GroupPlan, Score};
use cascade_mappings::{search_group, Objective, Problem, Report, Search, SearchError, StopReason};
use serde::{Deserialize, Serialize};

/// How Einsums are grouped for fusion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fusion {
    /// One group: every Einsum shares the outer loops.
    All,
    /// Every Einsum alone (intermediates round-trip through the root level).
    None,
    /// Explicit groups of Einsum names, in order.
    Groups(Vec<Vec<String>>),
    /// Try all / one group per pass over the most-passed rank / none; keep the best.
    Search,
}

/// A mapped cascade.
#[derive(Clone, Debug)]
pub struct Mapped {
    pub groups: Vec<(GroupPlan, GroupEval)>,
    pub report: Report,
    pub evaluations: u64,
    pub stop: Vec<StopReason>,
    /// Distinct plans in the searched mapspaces (an upper bound), summed over groups.
    pub space_size: f64,
    pub seconds: f64,
}

fn candidates(p: &Problem, f: &Fusion) -> Result<Vec<Vec<Vec<usize>>>, String> {
    let all: Vec<usize> = (0..p.einsums.len()).collect();
    Ok(match f {
        Fusion::All => vec![vec![all]],
        Fusion::None => vec![all.iter().map(|&e| vec![e]).collect()],
        Fusion::Groups(gs) => {
            let mut v: Vec<Vec<usize>> = Vec::new();
            for (i, g) in gs.iter().enumerate() {
                if g.is_empty() {
                    return Err(format!("fusion group {i} is empty"));
                }
                let mut group = Vec::new();
                for n in g {
                    let e = p
                        .einsum_index(n)
                        .ok_or_else(|| format!("fusion group names unknown Einsum `{n}`"))?;
                    if v.iter().flatten().chain(group.iter()).any(|&x| x == e) {
                        return Err(format!("Einsum `{n}` is in two fusion groups"));
                    }
                    group.push(e);
                }
                group.sort_unstable();
                v.push(group);
            }
            let covered: usize = v.iter().map(|g| g.len()).sum();
            if covered != p.einsums.len() {
                return Err(format!(
                    "fusion groups cover {covered} of {} Einsums",
                    p.einsums.len()
                ));
            }
            vec![v]
        }
        Fusion::Search => {
            // Per pass: consecutive Einsums by their pass over the rank with most passes.
            let root = p.roots.iter().max_by_key(|r| {
                p.einsums
                    .iter()
                    .filter_map(|e| e.pass.get(*r))
                    .max()
                    .copied()
                    .unwrap_or(0)
            });
            let mut per_pass: Vec<Vec<usize>> = Vec::new();
            if let Some(root) = root {
                let mut last = None;
                for (k, e) in p.einsums.iter().enumerate() {
                    let pass = e.pass.get(root).copied();
                    if pass != last || per_pass.is_empty() {
                        per_pass.push(vec![]);
                        last = pass;
                    }
                    if let Some(g) = per_pass.last_mut() {
                        g.push(k);
                    }
                }
            }
            let mut c = vec![vec![all.clone()]];
            if per_pass.len() > 1 {
                c.push(per_pass);
            }
            if p.einsums.len() > 1 {
                c.push(all.iter().map(|&e| vec![e]).collect());
            }
            c
        }
    })
}

/// A fusion candidate's total score, its groups and their stop reasons.
type Candidate = (Score, Vec<(GroupPlan, GroupEval)>, Vec<StopReason>);

/// Map a cascade onto an architecture.
pub fn map_cascade(
    p: &Problem,
    a: &ArchP,
    fusion: &Fusion,
    search: &Search,
) -> Result<Mapped, String> {
    let start = std::time::Instant::now();
    let mut best: Option<Candidate> = None;
    let mut evaluations = 0;
    let mut space_size = 0.0;
    let mut last_err = None;
    for cand in candidates(p, fusion)? {
        // A candidate that cannot beat the best one even at its bound is not searched.
        if let Some(b) = &best {
            if search.objective == Objective::Latency
                && cand.iter().map(|g| lower_bound(p, a, g)).sum::<f64>() >= b.0.cycles
            {
                continue;
            }
        }
        let mut groups = Vec::new();
        let mut stops = Vec::new();
        let mut ok = true;
        let mut score = Score::default();
        for g in &cand {
            match search_group(p, a, g, &Analytical::default(), search) {
                Ok(found) => {
                    evaluations += found.evaluations;
                    space_size += found.space_size;
                    stops.push(found.stop);
                    score.cycles += found.score.cycles;
                    score.energy_pj += found.score.energy_pj;
                    let ev = evaluate(p, a, &found.plan).map_err(|e| e.describe(p, a))?;
                    groups.push((found.plan, ev));
                }
                Err(e) => {
                    if let SearchError::NoValidMapping { evaluations: n, .. } = &e {
                        evaluations += n;
                    }
                    last_err = Some(e.to_string());
                    ok = false;
                    break;
                }
            }
        }
        if ok
            && best
                .as_ref()
                .is_none_or(|b| search.objective.better(&score, &b.0))
        {
            best = Some((score, groups, stops));
        }
    }
    let (_, groups, stop) =
        best.ok_or_else(|| last_err.unwrap_or_else(|| "no fusion candidate".into()))?;
    let report = Report::from_groups(p, a, &groups);
    Ok(Mapped {
        groups,
        report,
        evaluations,
        stop,
        space_size,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// A lower bound of a group's cycles: its work on the fastest unit able to run each Einsum,
/// all units in parallel, and the group's inputs and outputs crossing the root level's ports
/// once.
pub fn lower_bound(p: &Problem, a: &ArchP, einsums: &[usize]) -> f64 {
    let mut compute: f64 = 0.0;
    for &e in einsums {
        let ep = &p.einsums[e];
        let best = a
            .units
            .iter()
            .filter_map(|u| {
                let mut c = 0.0;
                for &(k, n) in &ep.ops {
                    if n > 0 {
                        c += n as f64 * u.op_cycles[k]?;
                    }
                }
                Some(c / u.pes as f64)
            })
            .fold(f64::INFINITY, f64::min);
        if best.is_finite() {
            compute = compute.max(best);
        }
    }
    let in_group = |e: usize| einsums.contains(&e);
    let (mut rd, mut wr) = (0.0, 0.0);
    for (t, tp) in p.tensors.iter().enumerate() {
        let bits = a.bits[t].value * tp.elems as f64;
        let produced = tp.producer.is_some_and(in_group);
        let read = tp.consumers.iter().any(|&c| in_group(c));
        if read && !produced {
            rd += bits;
        }
        if produced && (tp.consumers.iter().any(|&c| !in_group(c)) || tp.consumers.is_empty()) {
            wr += bits;
        }
    }
    compute.max(a.levels[0].port_cycles(rd, wr))
}
