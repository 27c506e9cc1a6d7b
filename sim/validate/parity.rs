//! Parity with the peers: each case under `tests/parity/<case>/` holds a peer's golden output
//! (`golden.json`, Timeloop v3.0.3 or ZigZag 3.9.1) and the same problem, architecture and
//! mapping written for cascade (`cascade/`). Replaying cascade's mapping with the peer's counting
//! conventions gives, per level and tensor, the accesses to compare, and the energy and cycles.

use crate::commands::map::replay;
use crate::models::spatial::analytical::{Analytical, Conventions};
use anyhow::{anyhow, bail, Context, Result};
use cascade_mappings::{Mapping, Report};
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// One compared count.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Row {
    pub level: String,
    pub tensor: String,
    /// `reads`, `fills` or `updates` (Timeloop's names).
    pub action: String,
    pub peer: f64,
    pub ours: f64,
}

/// Energy of one tensor at one level.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EnergyRow {
    pub level: String,
    pub tensor: String,
    pub peer_pj: f64,
    pub ours_pj: f64,
}

/// One case compared.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Case {
    pub case: String,
    pub tool: String,
    pub rows: Vec<Row>,
    pub energy_rows: Vec<EnergyRow>,
    pub energy_peer_pj: f64,
    pub energy_ours_pj: f64,
    pub cycles_peer: f64,
    pub cycles_ours: f64,
    /// cascade's own conventions on the same mapping (what a user of cascade gets).
    pub cycles_cascade: f64,
    pub energy_cascade_pj: f64,
}

impl Case {
    /// Counts that differ.
    pub fn mismatches(&self) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| (r.ours - r.peer).abs() > 1e-6 * r.peer.abs().max(1.0))
            .collect()
    }
    pub fn energy_error(&self) -> f64 {
        self.energy_ours_pj / self.energy_peer_pj - 1.0
    }
    pub fn cycles_error(&self) -> f64 {
        self.cycles_ours / self.cycles_peer - 1.0
    }
}

fn num(v: &Value, key: &str) -> Result<f64> {
    v.get(key)
        .and_then(Value::as_f64)
        .ok_or_else(|| anyhow!("golden.json: missing number `{key}`"))
}

/// The cases under `dir` (each a directory with a golden.json and a cascade/ mapping).
pub fn cases(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("golden.json").exists() && p.join("cascade/mapping.toml").exists())
        .collect();
    v.sort();
    Ok(v)
}

/// Where `cascade parity` writes without `--out`: the committed `reports/parity` for the
/// committed cases (`tests/parity`), `target/parity/<name>` for any other directory of cases
/// (a subset, or cases of one's own), so that such a run never overwrites the committed
/// reports.
pub fn default_out(cases: &str) -> std::path::PathBuf {
    let committed = Path::new("tests/parity");
    let same = match (
        std::fs::canonicalize(cases),
        std::fs::canonicalize(committed),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => Path::new(cases.trim_end_matches('/')) == committed,
    };
    if same {
        return Path::new("reports").join("parity");
    }
    let name = std::fs::canonicalize(cases)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "cases".into());
    Path::new("target").join("parity").join(name)
}

/// A relative error in percent, or `n/a` where it is not a number (a peer figure of 0).
fn percent(x: f64) -> String {
    if x.is_finite() {
        format!("{:+.3}%", x * 100.0)
    } else {
        "n/a".into()
    }
}

/// Compare one case: replay cascade's mapping of it with the peer's conventions.
pub fn compare(case_dir: &Path) -> Result<Case> {
    let golden_path = case_dir.join("golden.json");
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(&golden_path)
            .with_context(|| format!("{}: cannot read", golden_path.display()))?,
    )
    .with_context(|| format!("{}: not JSON", golden_path.display()))?;
    let tool = golden["tool"].as_str().unwrap_or("").to_string();
    let zigzag = tool.starts_with("zigzag");
    let conventions = if tool.starts_with("timeloop") {
        Conventions::TIMELOOP
    } else if zigzag {
        Conventions::ZIGZAG
    } else {
        bail!(
            "{}: no conventions for peer `{tool}`",
            golden_path.display()
        );
    };
    let map_path = case_dir.join("cascade/mapping.toml");
    let (m, text) = Mapping::load(&map_path)?;
    let arch = cascade_arch::Architecture::load(&m.arch)?;
    let file = map_path.display().to_string();
    let (p, a, groups) = replay(&m, &text, &file, &arch, &Analytical { conventions })?;
    let ours = Report::from_groups(&p, &a, &groups);
    let (p2, a2, own) = replay(&m, &text, &file, &arch, &Analytical::default())?;
    let cascade = Report::from_groups(&p2, &a2, &own);
    let results = &golden["results"];
    let mut rows = Vec::new();
    let mut energy_rows = Vec::new();
    for e in results["per_level"]
        .as_array()
        .ok_or_else(|| anyhow!("golden.json: results.per_level"))?
    {
        let level = e["level"].as_str().unwrap_or("").to_string();
        let key = if zigzag { "operand" } else { "tensor" };
        let tensor = e[key].as_str().unwrap_or("").to_string();
        // Peer counts as (reads, fills, updates) of all instances. ZigZag counts elements per
        // direction: reads go down (to the child or the MACs) and up (drains); fills arrive
        // from above; updates from below.
        let peer: [f64; 3] = if zigzag {
            let d = &e["data_elem_move_count"];
            [
                num(d, "rd_out_to_low")? + num(d, "rd_out_to_high")?,
                num(d, "wr_in_by_high")?,
                num(d, "wr_in_by_low")?,
            ]
        } else {
            let inst = num(e, "utilized_instances")?;
            [
                num(e, "reads")? * inst,
                num(e, "fills")? * inst,
                num(e, "updates")? * inst,
            ]
        };
        let t = ours.traffic_of(&level, &tensor);
        let mine = t.map_or([0.0; 3], |t| [t.reads, t.fills, t.updates]);
        // Our energy of this tensor at this level: its bits moved by action, priced per bit.
        let ours_pj = match (a.level_index(&level), p.tensor_index(&tensor)) {
            (Some(l), Some(ti)) => groups
                .iter()
                .map(|(_, ev)| {
                    let x = &ev.actions[l * p.tensors.len() + ti];
                    let lv = &a.levels[l];
                    x.read_accesses * lv.read_pj_per_bit * lv.read_width_bits
                        + x.fill_accesses * lv.fill_pj_per_bit * lv.write_width_bits
                        + x.update_accesses * lv.update_pj_per_bit * lv.write_width_bits
                })
                .sum(),
            _ => 0.0,
        };
        energy_rows.push(EnergyRow {
            level: level.clone(),
            tensor: tensor.clone(),
            peer_pj: num(
                e,
                if zigzag {
                    "energy_pj_total"
                } else {
                    "energy_pj"
                },
            )?,
            ours_pj,
        });
        for (i, action) in ["reads", "fills", "updates"].iter().enumerate() {
            rows.push(Row {
                level: level.clone(),
                tensor: tensor.clone(),
                action: action.to_string(),
                peer: peer[i],
                ours: mine[i],
            });
        }
    }
    Ok(Case {
        case: golden["case"].as_str().unwrap_or("").to_string(),
        tool,
        rows,
        energy_rows,
        energy_peer_pj: num(results, "energy_pj_total")?,
        energy_ours_pj: ours.energy_pj,
        cycles_peer: num(results, "cycles")?,
        cycles_ours: ours.latency_cycles,
        cycles_cascade: cascade.latency_cycles,
        energy_cascade_pj: cascade.energy_pj,
    })
}

/// The per-level comparison table (Markdown).
pub fn render(cases: &[Case]) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    writeln!(
        o,
        "| case | peer | accesses equal | energy (peer) | energy (cascade) | Δ | cycles (peer) | cycles (cascade) | Δ |"
    )
    .unwrap();
    writeln!(o, "|---|---|---|---:|---:|---:|---:|---:|---:|").unwrap();
    for c in cases {
        writeln!(
            o,
            "| {} | {} | {}/{} | {:.6e} | {:.6e} | {} | {:.0} | {:.0} | {} |",
            c.case,
            c.tool,
            c.rows.len() - c.mismatches().len(),
            c.rows.len(),
            c.energy_peer_pj,
            c.energy_ours_pj,
            percent(c.energy_error()),
            c.cycles_peer,
            c.cycles_ours,
            percent(c.cycles_error())
        )
        .unwrap();
    }
    for c in cases {
        writeln!(o, "\n### {} ({})\n", c.case, c.tool).unwrap();
        writeln!(
            o,
            "cascade's own conventions on this mapping: {:.0} cycles, {:.6e} pJ.\n",
            c.cycles_cascade, c.energy_cascade_pj
        )
        .unwrap();
        writeln!(
            o,
            "| level | tensor | energy (peer, pJ) | energy (cascade, pJ) | Δ |"
        )
        .unwrap();
        writeln!(o, "|---|---|---:|---:|---:|").unwrap();
        for r in &c.energy_rows {
            let d = if r.peer_pj != 0.0 {
                format!("{:+.2}%", (r.ours_pj / r.peer_pj - 1.0) * 100.0)
            } else {
                "".into()
            };
            writeln!(
                o,
                "| {} | {} | {:.4} | {:.4} | {d} |",
                r.level, r.tensor, r.peer_pj, r.ours_pj
            )
            .unwrap();
        }
        writeln!(o).unwrap();
        writeln!(o, "| level | tensor | action | peer | cascade | equal |").unwrap();
        writeln!(o, "|---|---|---|---:|---:|---|").unwrap();
        for r in &c.rows {
            if r.peer == 0.0 && r.ours == 0.0 {
                continue;
            }
            let eq = (r.ours - r.peer).abs() <= 1e-6 * r.peer.abs().max(1.0);
            writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                r.level,
                r.tensor,
                r.action,
                r.peer,
                r.ours,
                if eq { "yes" } else { "**no**" }
            )
            .unwrap();
        }
    }
    o
}

/// Every compared count, one row each (CSV).
pub fn csv(cases: &[Case]) -> String {
    use std::fmt::Write;
    let mut o = String::from("case,tool,level,tensor,action,peer,cascade\n");
    for c in cases {
        for r in &c.rows {
            writeln!(
                o,
                "{},{},{},{},{},{},{}",
                c.case, c.tool, r.level, r.tensor, r.action, r.peer, r.ours
            )
            .unwrap();
        }
    }
    o
}

/// What differs from the peers, and why (written below the tables).
pub const EXPLANATION: &str = "## Conventions, and where cascade differs\n\n\
- **Timeloop v3.0.3** (`tl_*`): cascade counts as Timeloop does — a tile is refetched by the part the previous one did \
not hold while it keeps moving by the same step, and whole after any change of step; partial sums resume by a fill of \
the child and a read of the parent, the first read and fill of each element skipped per copy; one operand read per \
MAC; multicast and spatial reduction through the union of the children's tiles; energy per access of the level's \
width; cycles the slowest of compute and each level's ports. Every count, the energy and the cycles are equal.\n\
- **ZigZag 3.9.1** (`zz_*`): its conventions — no reuse of a tile's overlap with the previous one, the first \
partial-sum read skipped once per element (not per copy) and returned partial sums sent to one of the copies that \
share them, drains read from the child, operands held in the PE while the innermost loops leave them unchanged, \
each transfer priced in whole accesses of the port's granularity, the first tile loaded and the last results drained \
outside compute — give equal counts. Every operand's energy is equal at every level; the outputs' differ because \
ZigZag prices the outputs' transfers per period, including partial-sum transfers its own counts elide (tpu_like's \
O register file: 262,144 refills priced, 4,096 counted). Cycles: ZigZag also adds per-port stalls from its \
period-window model and, for systolic arrays, a drain of (rows − 1) + (columns − 1) cycles, which cascade does not \
model (its steady state is the slowest port over the whole run).\n\
- **cascade's own conventions** (the default, shown per case): Timeloop's counting, plus the read a level spends to \
send results up and the load of the first tile and drain of the last results in latency.\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_committed_cases_write_the_committed_reports_by_default() {
        // Run from the repository root, as the tests are.
        assert_eq!(default_out("tests/parity"), Path::new("reports/parity"));
        assert_eq!(default_out("tests/parity/"), Path::new("reports/parity"));
        assert_eq!(default_out("./tests/parity"), Path::new("reports/parity"));
        assert_eq!(
            default_out("tests/parity/tl_1level"),
            Path::new("target/parity/tl_1level")
        );
        assert_eq!(
            default_out("no/such/cases"),
            Path::new("target/parity/cases")
        );
    }
}
