//! `cascade sweep STUDY.toml` (issue 13, first part): a design-space study as data — an
//! architecture with parameter axes given as dotted-path overrides, a workload point, the
//! mapper's objective and budget, and a design (grid, random or Latin hypercube) — mapped point
//! by point into an append-only results file that a killed run resumes, sharded over processes
//! (`--shard i/n`) and merged (`cascade sweep merge`).
//!
//! Study format:
//!
//! ```toml
//! name = "glb"
//! arch = "fusemax"                       # a preset or an architecture TOML
//! [axes]                                 # dotted paths into the architecture
//! "levels.glb.capacity" = ["4 MiB", "8 MiB", "16 MiB"]
//! "compute.pe2d.fanout" = [[64, 64], [128, 128]]
//! [design]
//! kind = "grid"                          # grid | random | lhs
//! samples = 50                           # random and lhs
//! seed = 1
//! [workload]
//! name = "bert_base"                     # a built-in workload or a TOML
//! phase = "prefill"                      # optional: the workload's point
//! batch = 1
//! seq = 1024
//! roles = ["attention"]                  # optional: a subset of the layer's cascades
//! [search]
//! objective = "latency"                  # latency | energy | edp
//! budget = 2000
//! ```
//!
//! A path names a table key, or the element of an array of tables by its `name` (`levels.glb`
//! is the level named `glb`). A path that names nothing is an error located in the study file
//! before any point is mapped; so is a value the architecture refuses at any point.
//!
//! Results: one JSON object per line (`results.jsonl`), written and flushed as each point
//! finishes; a rerun skips the points already there. A last line cut short by a kill is
//! detected, dropped and its point redone. Rows carry the point's index, so shards merge into
//! the serial run's order.

use crate::commands::map::{instances, map_instances, Target};
use crate::models::spatial::fusion::Fusion;
use anyhow::{anyhow, bail, Result};
use cascade_arch::locate::line_col;
use cascade_arch::Architecture;
use cascade_mappings::{Objective, Search};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct StudyFile {
    name: String,
    arch: String,
    axes: toml::Table,
    #[serde(default)]
    design: DesignFile,
    workload: WorkloadFile,
    #[serde(default)]
    search: SearchFile,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct DesignFile {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    samples: Option<u64>,
    #[serde(default)]
    seed: Option<u64>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct WorkloadFile {
    name: String,
    #[serde(default)]
    phase: Option<String>,
    #[serde(default)]
    batch: Option<u64>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    roles: Option<Vec<String>>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct SearchFile {
    #[serde(default)]
    objective: Option<String>,
    #[serde(default)]
    budget: Option<u64>,
    #[serde(default)]
    seed: Option<u64>,
}

/// How the points of a study are chosen.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Design {
    /// Every combination of the axes' values.
    Grid,
    /// `samples` points, each value drawn uniformly per axis.
    Random { samples: u64, seed: u64 },
    /// `samples` points, each axis's values stratified over the samples and shuffled.
    Lhs { samples: u64, seed: u64 },
}

/// A checked study.
#[derive(Clone, Debug)]
pub struct Study {
    pub name: String,
    pub arch: Architecture,
    /// (dotted path, values).
    pub axes: Vec<(String, Vec<toml::Value>)>,
    pub design: Design,
    pub workload: String,
    pub phase: Option<String>,
    pub batch: Option<u64>,
    pub seq: Option<u64>,
    pub roles: Option<Vec<String>>,
    pub search: Search,
}

/// 1-based line and column of the first occurrence of `needle` in `text` (for errors).
fn locate(text: &str, needle: &str) -> (usize, usize) {
    text.find(needle).map_or((0, 0), |off| {
        let (line, col, _) = line_col(text, off);
        (line, col)
    })
}

/// Sets `path` (dotted; an array of tables is entered by its elements' `name`) in `root` to
/// `value`. `Err` says which segment names nothing and what was there.
pub fn set_path(root: &mut toml::Value, path: &str, value: toml::Value) -> Result<(), String> {
    let segs: Vec<&str> = path.split('.').collect();
    let mut cur = root;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let here = segs[..i].join(".");
        cur = match cur {
            toml::Value::Table(t) => {
                if !t.contains_key(*seg) {
                    let keys: Vec<&str> = t.keys().map(String::as_str).collect();
                    return Err(format!(
                        "`{seg}` is not a field of {} (fields: {})",
                        if here.is_empty() {
                            "the architecture".to_string()
                        } else {
                            format!("`{here}`")
                        },
                        keys.join(", ")
                    ));
                }
                if last {
                    let old = &t[*seg];
                    if old.type_str() != value.type_str() {
                        return Err(format!(
                            "`{path}` is a {} and the axis gives a {}",
                            old.type_str(),
                            value.type_str()
                        ));
                    }
                    t.insert(seg.to_string(), value);
                    return Ok(());
                }
                t.get_mut(*seg).expect("checked")
            }
            toml::Value::Array(a) => {
                let names: Vec<String> = a
                    .iter()
                    .filter_map(|e| e.get("name").and_then(|n| n.as_str()).map(String::from))
                    .collect();
                let Some(e) = a
                    .iter_mut()
                    .find(|e| e.get("name").and_then(|n| n.as_str()) == Some(*seg))
                else {
                    return Err(format!(
                        "`{here}` has no element named `{seg}` (names: {})",
                        names.join(", ")
                    ));
                };
                if last {
                    return Err(format!(
                        "`{path}` names a whole element: name a field of it"
                    ));
                }
                e
            }
            _ => {
                return Err(format!(
                    "`{here}` is a value, not a table: `{seg}` cannot be in it"
                ))
            }
        };
    }
    Err(format!("`{path}` is empty"))
}

/// The architecture with `params` applied; errors say which override at which point.
pub fn apply(
    base: &Architecture,
    params: &[(String, toml::Value)],
) -> Result<Architecture, String> {
    let text = base.to_toml_string().map_err(|e| e.to_string())?;
    let mut v: toml::Value = toml::from_str(&text).map_err(|e| e.to_string())?;
    for (p, val) in params {
        set_path(&mut v, p, val.clone())?;
    }
    let text = toml::to_string(&v).map_err(|e| e.to_string())?;
    Architecture::from_toml_str(&text, &base.name).map_err(|e| e.to_string())
}

impl Study {
    /// Parses and checks a study; errors name the file and, where known, the line and column.
    pub fn parse(text: &str, file: &str) -> Result<Study> {
        let f: StudyFile = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(String::new(), |s| {
                let (line, col, _) = line_col(text, s.start);
                format!("{line}:{col}: ")
            });
            anyhow!("{file}:{at}{}", e.message().trim())
        })?;
        let arch = crate::cli::load_arch(&f.arch).map_err(|e| anyhow!("{file}: arch: {e:#}"))?;
        if f.axes.is_empty() {
            bail!("{file}: [axes] is empty: give at least one parameter axis");
        }
        let mut axes = Vec::new();
        for (path, vals) in &f.axes {
            let (line, col) = locate(text, &format!("\"{path}\""));
            let at = format!("{file}:{line}:{col}: axes.\"{path}\"");
            let toml::Value::Array(vals) = vals else {
                bail!("{at}: give a list of values");
            };
            if vals.is_empty() {
                bail!("{at}: the list of values is empty");
            }
            // Every value of the axis must make a valid architecture on its own.
            for v in vals {
                apply(&arch, &[(path.clone(), v.clone())])
                    .map_err(|e| anyhow!("{at}: {v}: {e}"))?;
            }
            axes.push((path.clone(), vals.clone()));
        }
        let seed = f.design.seed.unwrap_or(1);
        let design = match f.design.kind.as_deref().unwrap_or("grid") {
            "grid" => {
                if f.design.samples.is_some() {
                    bail!("{file}: design.samples: a grid takes every combination; samples are for random and lhs");
                }
                Design::Grid
            }
            k @ ("random" | "lhs") => {
                let samples = f.design.samples.filter(|&s| s > 0).ok_or_else(|| {
                    anyhow!("{file}: design.samples: a {k} design needs samples ≥ 1")
                })?;
                if k == "random" {
                    Design::Random { samples, seed }
                } else {
                    Design::Lhs { samples, seed }
                }
            }
            other => bail!("{file}: design.kind: `{other}`: expected grid, random or lhs"),
        };
        let objective = match f.search.objective.as_deref().unwrap_or("latency") {
            "latency" => Objective::Latency,
            "energy" => Objective::Energy,
            "edp" => Objective::Edp,
            o => bail!("{file}: search.objective: `{o}`: expected latency, energy or edp"),
        };
        let mut search = Search {
            objective,
            ..Search::default()
        };
        if let Some(b) = f.search.budget {
            if b == 0 {
                bail!("{file}: search.budget: must be ≥ 1");
            }
            search.budget = b;
        }
        if let Some(s) = f.search.seed {
            search.seed = s;
        }
        let study = Study {
            name: f.name,
            arch,
            axes,
            design,
            workload: f.workload.name,
            phase: f.workload.phase,
            batch: f.workload.batch,
            seq: f.workload.seq,
            roles: f.workload.roles,
            search,
        };
        // The workload point resolves before any mapping.
        let insts = study
            .instances()
            .map_err(|e| anyhow!("{file}: workload: {e:#}"))?;
        if insts.is_empty() {
            bail!("{file}: workload.roles: no cascade of the layer has these roles");
        }
        Ok(study)
    }

    fn instances(&self) -> Result<Vec<crate::commands::map::Instance>> {
        let (_, insts) = instances(&Target {
            workload: Some(&self.workload),
            cascade: None,
            set: &[],
            phase: self.phase.as_deref(),
            batch: self.batch,
            seq: self.seq,
            dtype_bytes: None,
            skew: 0.0,
        })?;
        Ok(match &self.roles {
            Some(r) => {
                for role in r {
                    if !insts.iter().any(|i| &i.role == role) {
                        bail!(
                            "workload.roles: `{role}` is not a role of the layer ({})",
                            insts
                                .iter()
                                .map(|i| i.role.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                    }
                }
                insts.into_iter().filter(|i| r.contains(&i.role)).collect()
            }
            None => insts,
        })
    }

    /// The design's points: for each, the index of the value chosen on each axis.
    pub fn points(&self) -> Vec<Vec<usize>> {
        let sizes: Vec<usize> = self.axes.iter().map(|a| a.1.len()).collect();
        match &self.design {
            Design::Grid => {
                let total: usize = sizes.iter().product();
                (0..total)
                    .map(|mut i| {
                        let mut v = vec![0; sizes.len()];
                        for (k, &n) in sizes.iter().enumerate().rev() {
                            v[k] = i % n;
                            i /= n;
                        }
                        v
                    })
                    .collect()
            }
            Design::Random { samples, seed } => {
                let mut rng = ChaCha8Rng::seed_from_u64(*seed);
                (0..*samples)
                    .map(|_| sizes.iter().map(|&n| rng.random_range(0..n)).collect())
                    .collect()
            }
            Design::Lhs { samples, seed } => {
                let mut rng = ChaCha8Rng::seed_from_u64(*seed);
                let s = *samples as usize;
                // Per axis: sample j falls in stratum j of [0, 1), mapped onto the values; the
                // strata are shuffled independently per axis.
                let cols: Vec<Vec<usize>> = sizes
                    .iter()
                    .map(|&n| {
                        let mut c: Vec<usize> = (0..s)
                            .map(|j| {
                                let u = (j as f64 + rng.random::<f64>()) / s as f64;
                                ((u * n as f64) as usize).min(n - 1)
                            })
                            .collect();
                        for i in (1..s).rev() {
                            let k = rng.random_range(0..=i);
                            c.swap(i, k);
                        }
                        c
                    })
                    .collect();
                (0..s)
                    .map(|j| cols.iter().map(|c| c[j]).collect())
                    .collect()
            }
        }
    }

    /// Maps point `index` (value indices `choice`) and returns its row.
    pub fn evaluate(&self, index: usize, choice: &[usize]) -> Result<Row> {
        let params: Vec<(String, toml::Value)> = self
            .axes
            .iter()
            .zip(choice)
            .map(|((p, vals), &i)| (p.clone(), vals[i].clone()))
            .collect();
        let arch = apply(&self.arch, &params).map_err(|e| anyhow!("point {index}: {e}"))?;
        let insts = self.instances()?;
        let mapped = map_instances(&insts, &arch, &Fusion::Search, &self.search)?;
        let (mut latency, mut energy, mut off_chip) = (0.0, 0.0, 0.0);
        let mut traffic: BTreeMap<String, f64> = BTreeMap::new();
        let mut hash = Fnv::new();
        let mut errors = Vec::new();
        for m in &mapped {
            match &m.result {
                Ok(r) => {
                    let c = m.count as f64;
                    latency += r.report.latency_s * c;
                    energy += r.report.energy_pj * 1e-12 * c;
                    off_chip += r.report.off_chip_bytes * c;
                    for t in &r.report.traffic {
                        *traffic.entry(t.level.clone()).or_default() +=
                            (t.read_bytes + t.write_bytes) * c;
                    }
                    hash.add(&serde_json::to_string(&r.mapping).unwrap_or_default());
                }
                Err(e) => errors.push(format!("{}: {e}", m.role)),
            }
        }
        Ok(Row {
            point: index,
            params: params
                .iter()
                .map(|(p, v)| {
                    let text = match v {
                        toml::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (p.clone(), text)
                })
                .collect(),
            latency_s: latency,
            energy_j: energy,
            edp_js: latency * energy,
            off_chip_bytes: off_chip,
            traffic_bytes: traffic,
            mapping_hash: format!("{:016x}", hash.0),
            errors,
        })
    }
}

/// FNV-1a, 64 bits: a stable hash of the mappings (the same mapping, the same hash).
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn add(&mut self, s: &str) {
        for b in s.bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// One point's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub point: usize,
    /// The point's parameters: dotted path → value (TOML text).
    pub params: BTreeMap<String, String>,
    pub latency_s: f64,
    pub energy_j: f64,
    pub edp_js: f64,
    pub off_chip_bytes: f64,
    /// Bytes moved at each storage level (reads, fills and updates).
    pub traffic_bytes: BTreeMap<String, f64>,
    /// A hash of the point's mappings.
    pub mapping_hash: String,
    /// Cascades that could not be mapped at this point (their latency and energy are not in
    /// the totals).
    pub errors: Vec<String>,
}

/// The rows of a results file; a last line cut short (a killed run) is dropped and the file
/// truncated to its complete lines. A damaged line elsewhere is an error naming it.
pub fn read_rows(path: &Path) -> Result<Vec<Row>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::new();
    let mut good = 0usize;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, l) in lines.iter().enumerate() {
        let complete = l.ends_with('\n');
        match serde_json::from_str::<Row>(l.trim_end()) {
            Ok(r) if complete => {
                rows.push(r);
                good += l.len();
            }
            _ if i + 1 == lines.len() => {
                // The last line, unfinished or damaged: a run killed while writing it.
                let f = std::fs::OpenOptions::new().write(true).open(path)?;
                f.set_len(good as u64)?;
                break;
            }
            Err(e) => bail!("{}:{}: not a result row: {e}", path.display(), i + 1),
            Ok(_) => unreachable!("complete checked above"),
        }
    }
    Ok(rows)
}

/// Runs the study's points of shard `shard` of `shards` (point `i` belongs to shard
/// `i mod shards`) that `out` does not hold yet, appending each row as it finishes. Returns
/// every row of the shard, by point.
pub fn run(
    study: &Study,
    out: &Path,
    shard: (usize, usize),
    on_point: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Row>> {
    let (i, n) = shard;
    if n == 0 || i >= n {
        bail!("--shard {i}/{n}: give i/n with 0 ≤ i < n");
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut rows = read_rows(out)?;
    let points = study.points();
    let mine: Vec<usize> = (0..points.len()).filter(|p| p % n == i).collect();
    if let Some(r) = rows
        .iter()
        .find(|r| r.point >= points.len() || r.point % n != i)
    {
        bail!(
            "{}: holds point {}, which is not of this study's shard {i}/{n}: another study's or shard's results",
            out.display(),
            r.point
        );
    }
    let done: std::collections::BTreeSet<usize> = rows.iter().map(|r| r.point).collect();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)?;
    let total = mine.len();
    let mut finished = done.len();
    for p in mine.into_iter().filter(|p| !done.contains(p)) {
        let row = study.evaluate(p, &points[p])?;
        let mut line = serde_json::to_string(&row)?;
        line.push('\n');
        f.write_all(line.as_bytes())?;
        f.flush()?;
        rows.push(row);
        finished += 1;
        on_point(finished, total);
    }
    rows.sort_by_key(|r| r.point);
    Ok(rows)
}

/// Merges results files into one, by point; a point in two files, or missing from all, is an
/// error naming it.
pub fn merge(files: &[&Path], expected: Option<usize>) -> Result<Vec<Row>> {
    let mut rows: Vec<Row> = Vec::new();
    for f in files {
        if !f.exists() {
            bail!("{}: no such results file", f.display());
        }
        rows.extend(read_rows(f)?);
    }
    rows.sort_by_key(|r| r.point);
    for w in rows.windows(2) {
        if w[0].point == w[1].point {
            bail!("point {} is in more than one results file", w[0].point);
        }
    }
    if let Some(n) = expected {
        if let Some(p) = (0..n).find(|p| rows.get(*p).map(|r| r.point) != Some(*p)) {
            bail!("point {p} of {n} is in no results file: a shard did not finish");
        }
    }
    Ok(rows)
}

/// Rows as JSON lines (the results file's own form).
pub fn to_jsonl(rows: &[Row]) -> Result<String> {
    let mut s = String::new();
    for r in rows {
        s += &serde_json::to_string(r)?;
        s.push('\n');
    }
    Ok(s)
}

/// Rows as CSV: the point, each parameter, the totals, the traffic per level, the hash.
pub fn to_csv(rows: &[Row]) -> String {
    let params: Vec<String> = rows
        .first()
        .map_or(Vec::new(), |r| r.params.keys().cloned().collect());
    let levels: Vec<String> = rows
        .iter()
        .flat_map(|r| r.traffic_bytes.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut s = String::from("point");
    for p in &params {
        s += &format!(",{}", q(p));
    }
    s += ",latency_s,energy_j,edp_js,off_chip_bytes";
    for l in &levels {
        s += &format!(",traffic_{l}_bytes");
    }
    s += ",mapping_hash,errors\n";
    for r in rows {
        s += &r.point.to_string();
        for p in &params {
            s += &format!(",{}", q(r.params.get(p).map_or("", String::as_str)));
        }
        s += &format!(
            ",{:e},{:e},{:e},{:e}",
            r.latency_s, r.energy_j, r.edp_js, r.off_chip_bytes
        );
        for l in &levels {
            s += &format!(",{:e}", r.traffic_bytes.get(l).copied().unwrap_or(0.0));
        }
        s += &format!(",{},{}\n", r.mapping_hash, q(&r.errors.join("; ")));
    }
    s
}

/// The points on the Pareto front of two columns, both minimised: no other point is at least
/// as good in both and better in one. Returned by the first column, ascending.
pub fn pareto(rows: &[Row], x: fn(&Row) -> f64, y: fn(&Row) -> f64) -> Vec<usize> {
    let mut v: Vec<&Row> = rows
        .iter()
        .filter(|r| x(r).is_finite() && y(r).is_finite())
        .collect();
    v.sort_by(|a, b| x(a).total_cmp(&x(b)).then(y(a).total_cmp(&y(b))));
    let mut front = Vec::new();
    let mut best_y = f64::INFINITY;
    for r in v {
        if y(r) < best_y {
            best_y = y(r);
            front.push(r.point);
        }
    }
    front
}

/// The study file read and checked.
pub fn load(path: &str) -> Result<Study> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("{path}: {e}"))?;
    Study::parse(&text, path)
}

/// The summary of a finished study: its points, the latency × energy Pareto front.
#[derive(Serialize)]
pub struct Summary {
    pub study: String,
    pub points: usize,
    pub failed_points: usize,
    pub best_latency: Option<Row>,
    pub best_energy: Option<Row>,
    /// Points on the latency × energy front, by latency.
    pub pareto_latency_energy: Vec<usize>,
}

pub fn summarize(name: &str, rows: &[Row]) -> Summary {
    let ok: Vec<Row> = rows
        .iter()
        .filter(|r| r.errors.is_empty())
        .cloned()
        .collect();
    let min_by = |f: fn(&Row) -> f64| {
        ok.iter()
            .min_by(|a, b| f(a).total_cmp(&f(b)).then(a.point.cmp(&b.point)))
            .cloned()
    };
    Summary {
        study: name.to_string(),
        points: rows.len(),
        failed_points: rows.len() - ok.len(),
        best_latency: min_by(|r| r.latency_s),
        best_energy: min_by(|r| r.energy_j),
        pareto_latency_energy: pareto(&ok, |r| r.latency_s, |r| r.energy_j),
    }
}

fn render_summary(s: &Summary, rows: &[Row]) -> String {
    let mut t = format!(
        "# Study `{}`\n\n{} points ({} with a cascade that could not be mapped: left out of the front).\n\n",
        s.study, s.points, s.failed_points
    );
    t += "## Latency × energy Pareto front\n\n| point | parameters | latency (s) | energy (J) |\n|---:|---|---:|---:|\n";
    for p in &s.pareto_latency_energy {
        if let Some(r) = rows.iter().find(|r| r.point == *p) {
            let params: Vec<String> = r.params.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            t += &format!(
                "| {} | {} | {:.4e} | {:.4e} |\n",
                r.point,
                params.join(", "),
                r.latency_s,
                r.energy_j
            );
        }
    }
    t
}

fn write_outputs(dir: &Path, name: &str, rows: &[Row]) -> Result<Summary> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("results.csv"), to_csv(rows))?;
    let s = summarize(name, rows);
    std::fs::write(dir.join("summary.md"), render_summary(&s, rows))?;
    std::fs::write(dir.join("summary.json"), serde_json::to_string_pretty(&s)?)?;
    plot_front(dir, &s, rows)?;
    Ok(s)
}

/// `pareto.png` and `pareto.svg`: every mapped point's latency and energy, the front drawn over
/// them. Nothing is drawn when no point mapped.
fn plot_front(dir: &Path, s: &Summary, rows: &[Row]) -> Result<()> {
    use crate::plot::{render, Chart, ChartKind, Series};
    let ok: Vec<&Row> = rows
        .iter()
        .filter(|r| r.errors.is_empty() && r.latency_s > 0.0 && r.energy_j > 0.0)
        .collect();
    if ok.is_empty() {
        return Ok(());
    }
    let pt = |r: &Row| (r.latency_s * 1e3, r.energy_j);
    let front: Vec<(f64, f64)> = s
        .pareto_latency_energy
        .iter()
        .filter_map(|p| ok.iter().find(|r| r.point == *p).map(|r| pt(r)))
        .collect();
    let chart = Chart {
        title: format!(
            "Study {}: latency and energy of {} points",
            s.study,
            ok.len()
        ),
        x_label: "latency (ms)".into(),
        y_label: "energy (J)".into(),
        log_x: true,
        log_y: true,
        series: vec![
            Series::new("points", ok.iter().map(|r| pt(r)).collect()),
            Series::new("Pareto front", front),
        ],
        kind: ChartKind::Scatter,
        ..Chart::default()
    };
    render(&chart, &dir.join("pareto.png"), &dir.join("pareto.svg"))?;
    Ok(())
}

/// `cascade sweep`.
pub fn command(
    args: &[String],
    out: Option<&str>,
    shard: Option<&str>,
    study: Option<&str>,
    json: bool,
) -> Result<()> {
    let print = |s: &Summary, dir: &Path| -> Result<()> {
        if json {
            crate::cli::write_out(&format!("{}\n", serde_json::to_string_pretty(s)?))?;
        } else {
            crate::cli::write_out(&format!(
                "{}: {} points, {} on the latency × energy front; results in {}\n",
                s.study,
                s.points,
                s.pareto_latency_energy.len(),
                dir.display()
            ))?;
        }
        Ok(())
    };
    if args[0] == "merge" {
        let files: Vec<&Path> = args[1..].iter().map(Path::new).collect();
        if files.is_empty() {
            bail!("sweep merge: give the results files to merge");
        }
        let st = study.map(load).transpose()?;
        let rows = merge(&files, st.as_ref().map(|s| s.points().len()))?;
        let name = st.as_ref().map_or("merged".to_string(), |s| s.name.clone());
        let dir = Path::new(out.ok_or_else(|| anyhow!("sweep merge: give --out DIR"))?);
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("results.jsonl"), to_jsonl(&rows)?)?;
        let s = write_outputs(dir, &name, &rows)?;
        return print(&s, dir);
    }
    if args.len() > 1 {
        bail!(
            "sweep: one study file (or `merge FILE...`), got {}",
            args.join(" ")
        );
    }
    if study.is_some() {
        bail!("--study names the study of `sweep merge`");
    }
    let st = load(&args[0])?;
    let (i, n) = match shard {
        None => (0, 1),
        Some(sh) => {
            let (a, b) = sh
                .split_once('/')
                .ok_or_else(|| anyhow!("--shard {sh}: give i/n, e.g. 0/4"))?;
            let p = |x: &str| {
                x.trim()
                    .parse::<usize>()
                    .map_err(|_| anyhow!("--shard {sh}: give i/n with integers"))
            };
            (p(a)?, p(b)?)
        }
    };
    let dir = out.map_or_else(
        || Path::new("target/sweeps").join(&st.name),
        |o| Path::new(o).to_path_buf(),
    );
    let file = if shard.is_some() {
        dir.join(format!("results.shard-{i}-of-{n}.jsonl"))
    } else {
        dir.join("results.jsonl")
    };
    let total = st
        .points()
        .iter()
        .enumerate()
        .filter(|(p, _)| p % n.max(1) == i)
        .count();
    let progress = crate::progress::Progress::new("sweep", total as u64).unit("points");
    let mut seen = 0;
    let rows = run(&st, &file, (i, n), &mut |done, _| {
        while seen < done {
            let _s = progress.step();
            seen += 1;
        }
    })?;
    progress.finish();
    let s = write_outputs(&dir, &st.name, &rows)?;
    print(&s, &dir)
}
