//! Reports of a mapped cascade: latency, energy by component, traffic per level × tensor,
//! utilisation per unit; and conversion between compact plans and saved [`Mapping`]s.

use cascade_mappings::model::{ArchP, GroupEval, GroupPlan, NONE};
use cascade_mappings::{GroupMapping, Loop, Mapping, Problem, Spatial};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Traffic {
    pub level: String,
    pub tensor: String,
    pub read_bytes: f64,
    pub write_bytes: f64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GroupReport {
    pub einsums: Vec<String>,
    pub cycles: f64,
    pub compute_cycles: f64,
    pub memory_cycles: f64,
    /// "compute" or "memory".
    pub bound: String,
}

/// What every model returns for a mapped cascade.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    pub cascade: String,
    pub arch: String,
    pub latency_cycles: f64,
    pub latency_s: f64,
    pub energy_pj: f64,
    /// Energy by component: `dram`, the global buffer, `regfile`, and each unit's ops.
    pub energy_by_component_pj: BTreeMap<String, f64>,
    pub traffic: Vec<Traffic>,
    /// Busy fraction of each compute unit over the whole latency.
    pub utilization: BTreeMap<String, f64>,
    pub groups: Vec<GroupReport>,
}

impl Report {
    /// Combine the evaluations of a cascade's groups (run one after another).
    pub fn from_groups(p: &Problem, a: &ArchP, groups: &[(GroupPlan, GroupEval)]) -> Report {
        let cycles: f64 = groups.iter().map(|g| g.1.cycles).sum();
        let mut comp: BTreeMap<String, f64> = BTreeMap::new();
        let mut traffic: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
        let mut busy = vec![0.0; a.units.len()];
        for (_, ev) in groups {
            *comp.entry("dram".into()).or_default() += ev.energy.dram;
            *comp.entry(a.glb_name.clone()).or_default() += ev.energy.glb;
            *comp.entry("regfile".into()).or_default() += ev.energy.rf;
            for (u, e) in ev.energy.compute.iter().enumerate() {
                *comp.entry(format!("{} ops", a.units[u].name)).or_default() += e;
            }
            for &(t, r, w) in &ev.dram {
                let e = traffic
                    .entry(("dram".into(), p.tensors[t].name.clone()))
                    .or_default();
                e.0 += r;
                e.1 += w;
            }
            for &(t, r, w) in &ev.glb {
                let e = traffic
                    .entry((a.glb_name.clone(), p.tensors[t].name.clone()))
                    .or_default();
                e.0 += r;
                e.1 += w;
            }
            for (u, b) in ev.unit_busy.iter().enumerate() {
                busy[u] += b;
            }
        }
        Report {
            cascade: p.cascade.clone(),
            arch: a.name.clone(),
            latency_cycles: cycles,
            latency_s: cycles / a.clock_hz,
            energy_pj: comp.values().sum(),
            energy_by_component_pj: comp,
            traffic: traffic
                .into_iter()
                .map(|((level, tensor), (r, w))| Traffic {
                    level,
                    tensor,
                    read_bytes: r,
                    write_bytes: w,
                })
                .collect(),
            utilization: a
                .units
                .iter()
                .zip(&busy)
                .map(|(u, b)| (u.name.clone(), if cycles > 0.0 { b / cycles } else { 0.0 }))
                .collect(),
            groups: groups
                .iter()
                .map(|(plan, ev)| GroupReport {
                    einsums: plan
                        .einsums
                        .iter()
                        .map(|&e| p.einsums[e].name.clone())
                        .collect(),
                    cycles: ev.cycles,
                    compute_cycles: ev.compute_cycles,
                    memory_cycles: ev.mem_cycles,
                    bound: if ev.compute_cycles >= ev.mem_cycles {
                        "compute"
                    } else {
                        "memory"
                    }
                    .into(),
                })
                .collect(),
        }
    }

    /// DRAM bytes moved (read + written).
    pub fn dram_bytes(&self) -> f64 {
        self.traffic
            .iter()
            .filter(|t| t.level == "dram")
            .map(|t| t.read_bytes + t.write_bytes)
            .sum()
    }
}

/// A compact plan as a saved group mapping.
pub fn to_group_mapping(p: &Problem, a: &ArchP, plan: &GroupPlan, ev: &GroupEval) -> GroupMapping {
    GroupMapping {
        einsums: plan
            .einsums
            .iter()
            .map(|&e| p.einsums[e].name.clone())
            .collect(),
        loops: plan
            .loops
            .iter()
            .map(|&(r, f)| Loop {
                rank: p.ranks[r].name.clone(),
                factor: f,
            })
            .collect(),
        spatial: plan
            .spatial
            .iter()
            .enumerate()
            .flat_map(|(u, dims)| {
                dims.iter()
                    .enumerate()
                    .filter(|(_, d)| d.0 != NONE)
                    .map(move |(d, &(r, f))| Spatial {
                        unit: a.units[u].name.clone(),
                        dim: d,
                        rank: p.ranks[r].name.clone(),
                        factor: f,
                    })
            })
            .collect(),
        bindings: plan
            .einsums
            .iter()
            .zip(&plan.binding)
            .map(|(&e, &u)| (p.einsums[e].name.clone(), a.units[u].name.clone()))
            .collect(),
        keep: ev
            .keep
            .iter()
            .map(|&(t, k)| (p.tensors[t].name.clone(), k))
            .collect(),
        spill: (0..p.tensors.len())
            .filter(|t| plan.spill & (1 << t) != 0)
            .map(|t| p.tensors[t].name.clone())
            .collect(),
    }
}

/// A saved group mapping back to a compact plan; errors name the unknown item.
pub fn from_group_mapping(p: &Problem, a: &ArchP, g: &GroupMapping) -> Result<GroupPlan, String> {
    let rank = |n: &str| {
        p.rank_index(n).ok_or_else(|| {
            format!(
                "unknown rank `{n}` (ranks: {})",
                p.ranks
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    };
    let unit = |n: &str| {
        a.unit_index(n)
            .ok_or_else(|| format!("unknown compute unit `{n}` in {}", a.name))
    };
    let tensor = |n: &str| {
        p.tensor_index(n)
            .ok_or_else(|| format!("unknown tensor `{n}`"))
    };
    let einsums = g
        .einsums
        .iter()
        .map(|n| {
            p.einsum_index(n)
                .ok_or_else(|| format!("unknown Einsum `{n}`"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(l) = g.loops.iter().find(|l| l.factor == 0) {
        return Err(format!(
            "loop over rank `{}` has factor 0 (factors are ≥ 1)",
            l.rank
        ));
    }
    if let Some(s) = g.spatial.iter().find(|s| s.factor == 0) {
        return Err(format!(
            "spatial factor of rank `{}` on unit `{}` is 0 (factors are ≥ 1)",
            s.rank, s.unit
        ));
    }
    let loops = g
        .loops
        .iter()
        .map(|l| Ok((rank(&l.rank)?, l.factor)))
        .collect::<Result<Vec<_>, String>>()?;
    let mut spatial: Vec<Vec<(usize, u64)>> = a
        .units
        .iter()
        .map(|u| vec![(NONE, 1); u.dims.len()])
        .collect();
    for s in &g.spatial {
        let u = unit(&s.unit)?;
        if s.dim >= spatial[u].len() {
            return Err(format!(
                "unit `{}` has {} dimension(s); dim {} does not exist",
                s.unit,
                spatial[u].len(),
                s.dim
            ));
        }
        spatial[u][s.dim] = (rank(&s.rank)?, s.factor);
    }
    let binding = g
        .einsums
        .iter()
        .map(|e| {
            unit(
                g.bindings
                    .get(e)
                    .ok_or_else(|| format!("Einsum `{e}` has no binding"))?,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut spill = 0u64;
    for t in &g.spill {
        spill |= 1 << tensor(t)?;
    }
    let keep = g
        .keep
        .iter()
        .map(|(t, &k)| Ok((tensor(t)?, k)))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(GroupPlan {
        einsums,
        loops,
        spatial,
        binding,
        spill,
        keep,
    })
}

/// Assemble a saved mapping.
pub fn to_mapping(
    p: &Problem,
    a: &ArchP,
    extents: &BTreeMap<String, u64>,
    groups: &[(GroupPlan, GroupEval)],
) -> Mapping {
    Mapping {
        cascade: p.cascade.clone(),
        arch: a.name.clone(),
        extents: extents.clone(),
        groups: groups
            .iter()
            .map(|(pl, ev)| to_group_mapping(p, a, pl, ev))
            .collect(),
    }
}
