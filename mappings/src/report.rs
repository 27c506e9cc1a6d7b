//! The one report every model returns for a mapped cascade: latency (seconds, cycles, what
//! bounds it), energy by component and action, traffic per level and tensor, utilisation per
//! unit, and the groups it ran as. Sweeps, the inference system and the CLI read this alone.

use crate::model::{ArchP, GroupEval, GroupPlan};
use crate::problem::Problem;
use serde::Serialize;
use std::collections::BTreeMap;

/// Traffic of one tensor at one level (summed over its instances).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Traffic {
    pub level: String,
    pub tensor: String,
    /// Words read out, filled from the parent, updated from a child or the PEs.
    pub reads: f64,
    pub fills: f64,
    pub updates: f64,
    pub read_bytes: f64,
    pub write_bytes: f64,
}

/// Energy of one action of one component.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EnergyEntry {
    /// A level or a compute unit.
    pub component: String,
    /// `read`, `fill`, `update` (levels) or an op (`mac`, `exp`, … for units).
    pub action: String,
    pub pj: f64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GroupReport {
    pub einsums: Vec<String>,
    pub cycles: f64,
    pub compute_cycles: f64,
    /// `compute`, or the level whose ports bound the group (GPU models: `compute`, `memory`
    /// or `latency`).
    pub bound: String,
    /// The kernel op the group ran as, for models that run ops rather than loop nests (the GPU
    /// model: its `cascade estimate --op` spec); absent for the spatial models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
}

/// What every model returns for a mapped cascade.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    pub cascade: String,
    pub arch: String,
    pub latency_s: f64,
    pub latency_cycles: f64,
    /// `compute`, or the level whose ports bound most of the latency (GPU models: `compute`,
    /// `memory` or `latency`, as `cascade estimate` spells them).
    pub bound: String,
    pub energy_pj: f64,
    /// Energy by component × action (levels: read, fill, update; units: ops).
    pub energy: Vec<EnergyEntry>,
    pub traffic: Vec<Traffic>,
    /// Busy fraction of each compute unit over the whole latency (≤ 1).
    pub utilization: BTreeMap<String, f64>,
    /// Bytes moved to and from off-chip levels (DRAM, HBM, DDR, flash).
    pub off_chip_bytes: f64,
    pub groups: Vec<GroupReport>,
}

impl Report {
    /// Combine the evaluations of a cascade's groups (they run one after another).
    pub fn from_groups(p: &Problem, a: &ArchP, groups: &[(GroupPlan, GroupEval)]) -> Report {
        let nt = p.tensors.len();
        let cycles: f64 = groups.iter().map(|g| g.1.cycles).sum();
        let mut energy: BTreeMap<(String, String), f64> = BTreeMap::new();
        let mut traffic: BTreeMap<(usize, usize), crate::model::Actions> = BTreeMap::new();
        let mut busy = vec![0.0; a.units.len()];
        let mut bound_cycles: BTreeMap<String, f64> = BTreeMap::new();
        for (plan, ev) in groups {
            for (l, e) in ev.level_energy_pj.iter().enumerate() {
                for (action, pj) in ["read", "fill", "update"].iter().zip(e) {
                    if *pj != 0.0 {
                        *energy
                            .entry((a.levels[l].name.clone(), action.to_string()))
                            .or_default() += pj;
                    }
                }
            }
            for (u, pj) in ev.unit_energy_pj.iter().enumerate() {
                if *pj != 0.0 {
                    *energy
                        .entry((a.units[u].name.clone(), "ops".into()))
                        .or_default() += pj;
                }
            }
            for (i, x) in ev.actions.iter().enumerate() {
                if !x.is_empty() {
                    traffic.entry((i / nt, i % nt)).or_default().add(x);
                }
            }
            for (u, b) in ev.unit_busy.iter().enumerate() {
                busy[u] += b;
            }
            let _ = plan;
            let b = ev
                .bound()
                .map_or("compute".to_string(), |l| a.levels[l].name.clone());
            *bound_cycles.entry(b).or_default() += ev.cycles;
        }
        let traffic: Vec<Traffic> = traffic
            .into_iter()
            .map(|((l, t), x)| Traffic {
                level: a.levels[l].name.clone(),
                tensor: p.tensors[t].name.clone(),
                reads: x.reads,
                fills: x.fills,
                updates: x.updates,
                read_bytes: x.read_bits / 8.0,
                write_bytes: (x.fill_bits + x.update_bits) / 8.0,
            })
            .collect();
        let off_chip_bytes = traffic
            .iter()
            .filter(|t| {
                a.level_index(&t.level)
                    .is_some_and(|l| a.levels[l].off_chip)
            })
            .map(|t| t.read_bytes + t.write_bytes)
            .fold(0.0, |a, b| a + b);
        let bound = bound_cycles
            .iter()
            .max_by(|x, y| x.1.total_cmp(y.1).then(y.0.cmp(x.0)))
            .map_or("compute".to_string(), |b| b.0.clone());
        Report {
            cascade: p.cascade.clone(),
            arch: a.name.clone(),
            latency_cycles: cycles,
            latency_s: cycles / a.clock_hz,
            bound,
            energy_pj: energy.values().sum(),
            energy: energy
                .into_iter()
                .map(|((component, action), pj)| EnergyEntry {
                    component,
                    action,
                    pj,
                })
                .collect(),
            traffic,
            utilization: a
                .units
                .iter()
                .zip(&busy)
                .map(|(u, b)| (u.name.clone(), if cycles > 0.0 { b / cycles } else { 0.0 }))
                .collect(),
            off_chip_bytes,
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
                    bound: ev
                        .bound()
                        .map_or("compute".to_string(), |l| a.levels[l].name.clone()),
                    op: None,
                })
                .collect(),
        }
    }

    /// Energy of one component (all its actions), pJ.
    pub fn component_pj(&self, component: &str) -> f64 {
        self.energy
            .iter()
            .filter(|e| e.component == component)
            .map(|e| e.pj)
            .sum()
    }

    /// Bytes read and written at one level.
    pub fn level_bytes(&self, level: &str) -> f64 {
        self.traffic
            .iter()
            .filter(|t| t.level == level)
            .map(|t| t.read_bytes + t.write_bytes)
            .sum()
    }

    /// The traffic of one tensor at one level.
    pub fn traffic_of(&self, level: &str, tensor: &str) -> Option<&Traffic> {
        self.traffic
            .iter()
            .find(|t| t.level == level && t.tensor == tensor)
    }
}
