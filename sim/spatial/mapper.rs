//! Mapping a whole cascade: choose fusion groups, search each group with the
//! analytical model, and assemble the report.

use super::analytical::Analytical;
use super::report::Report;
use cascade_mappings::model::{ArchP, GroupEval, GroupPlan};
use cascade_mappings::{search_group, Found, Problem, Search, SearchError, StopReason};
use serde::{Deserialize, Serialize};

/// How Einsums are grouped for fusion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fusion {
    /// One group: every Einsum shares the outer loops.
    All,
    /// Every Einsum alone (intermediates round-trip through DRAM).
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
    pub seconds: f64,
}

fn candidates(p: &Problem, f: &Fusion) -> Result<Vec<Vec<Vec<usize>>>, String> {
    let all: Vec<usize> = (0..p.einsums.len()).collect();
    Ok(match f {
        Fusion::All => vec![vec![all]],
        Fusion::None => vec![all.iter().map(|&e| vec![e]).collect()],
        Fusion::Groups(gs) => {
            let mut v = Vec::new();
            for g in gs {
                v.push(
                    g.iter()
                        .map(|n| {
                            p.einsum_index(n)
                                .ok_or_else(|| format!("fusion group names unknown Einsum `{n}`"))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                );
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
            // Per pass: group consecutive Einsums by their pass over the rank with most passes.
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
                    per_pass.last_mut().unwrap().push(k);
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
type Candidate = (f64, Vec<(GroupPlan, GroupEval)>, Vec<StopReason>);

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
    let mut last_err = None;
    for cand in candidates(p, fusion)? {
        let mut groups = Vec::new();
        let mut stops = Vec::new();
        let mut ok = true;
        for g in &cand {
            match search_group(p, a, g, &Analytical, search) {
                Ok(Found {
                    plan,
                    eval,
                    evaluations: n,
                    stop,
                    ..
                }) => {
                    evaluations += n;
                    stops.push(stop);
                    groups.push((plan, eval));
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
        if !ok {
            continue;
        }
        let score: f64 = groups.iter().map(|(_, e)| search.objective.score(e)).sum();
        if best.as_ref().is_none_or(|b| score < b.0) {
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
        seconds: start.elapsed().as_secs_f64(),
    })
}
