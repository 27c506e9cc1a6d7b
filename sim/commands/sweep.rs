//! `cascade sweep STUDY.toml` (issue 13): a design-space study as data — designs (an
//! architecture, each with its dataflow constraints and fusion policy), parameter axes given as
//! dotted-path overrides of the architecture, workload points, the mapper's objective and
//! budget, and a sampling of the axes (grid, random or Latin hypercube) — mapped point by point
//! into an append-only results file that a killed run resumes, sharded over processes
//! (`--shard i/n`) and merged (`cascade sweep merge`). `cascade reproduce fusemax` runs the
//! study `studies/fusemax.toml` this way.
//!
//! Study format:
//!
//! ```toml
//! name = "glb"
//! arch = "fusemax"                       # a preset or an architecture TOML
//! [axes]                                 # dotted paths into the architecture
//! "levels.global_buffer.capacity" = ["4 MiB", "8 MiB", "16 MiB"]
//! "levels.rf2d.fanout" = [[64, 64], [128, 128]]
//! "levels.rf2d.fanout,levels.rf1d.fanout" = [[[64, 64], [64]], [[128, 128], [128]]]  # linked
//! [sampling]
//! kind = "grid"                          # grid | random | lhs (of the axes)
//! samples = 50                           # random and lhs
//! seed = 1
//! [workload]
//! name = "bert_base"                     # a built-in workload or a TOML; or a list of them
//! phase = "prefill"                      # optional: the workload's point
//! batch = 1
//! seq = 1024                             # or a list of lengths
//! roles = ["attention"]                  # optional: a subset of the layer's cascades
//! [search]
//! objective = "latency"                  # latency | energy | edp
//! budget = 2000                          # also: seed, restarts, patience
//! [analysis]
//! front = ["latency_s", "energy_j"]      # 2 or 3 columns to minimise (default these two):
//!                                        # latency_s, energy_j, edp_js, off_chip_bytes,
//!                                        # traffic.<level>
//! [[designs]]                            # optional; default: one design, `arch` as it is
//! name = "flat"
//! arch = "flat"                          # default: the study's `arch`
//! attention = "3-pass"                   # optional: the prefill attention cascade
//! fusion = "all"                         # search | all | none | [["QK"], ["GM", "SN"], …]
//! constraints = "flat.toml"              # a constraints file (relative to the study) or a table
//! ```
//!
//! Points are designs × workload cases (names × lengths) × samples of the axes, in that order;
//! every axis applies to every design's architecture. A path names a table key, or the element
//! of an array of tables by its `name` (`levels.glb` is the level named `glb`); paths joined by
//! commas are one linked axis whose values give each path's value. A path that names nothing is
//! an error located in the study file before any point is mapped; so is a value an
//! architecture refuses.
//!
//! Results: one JSON object per line (`results.jsonl`), written and flushed as each point
//! finishes; a rerun skips the points already there. A last line cut short by a kill is
//! detected, dropped and its point redone. Rows carry the point's index, so shards merge into
//! the serial run's order.

use crate::commands::map::{instances, load_cascade, map_instances_with, Target};
use crate::models::spatial::fusion::Fusion;
use anyhow::{anyhow, bail, Result};
use cascade_arch::locate::line_col;
use cascade_arch::Architecture;
use cascade_mappings::{Constraints, Objective, Search};
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
    #[serde(default)]
    axes: toml::Table,
    #[serde(default)]
    sampling: SamplingFile,
    workload: WorkloadFile,
    #[serde(default)]
    search: SearchFile,
    #[serde(default)]
    analysis: AnalysisFile,
    #[serde(default)]
    designs: Vec<DesignFile>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct AnalysisFile {
    #[serde(default)]
    front: Option<Vec<String>>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct SamplingFile {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    samples: Option<u64>,
    #[serde(default)]
    seed: Option<u64>,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    fn list(&self) -> Vec<T> {
        match self {
            OneOrMany::One(x) => vec![x.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct WorkloadFile {
    name: OneOrMany<String>,
    #[serde(default)]
    phase: Option<String>,
    #[serde(default)]
    batch: Option<u64>,
    #[serde(default)]
    seq: Option<OneOrMany<u64>>,
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
    #[serde(default)]
    restarts: Option<usize>,
    #[serde(default)]
    patience: Option<u32>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct DesignFile {
    name: String,
    #[serde(default)]
    arch: Option<String>,
    #[serde(default)]
    attention: Option<String>,
    #[serde(default)]
    fusion: Option<toml::Value>,
    #[serde(default)]
    constraints: Option<toml::Value>,
}

/// How the points of the axes are chosen.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Sampling {
    /// Every combination of the axes' values.
    Grid,
    /// `samples` points, each value drawn uniformly per axis.
    Random { samples: u64, seed: u64 },
    /// `samples` points, each axis's values stratified over the samples and shuffled.
    Lhs { samples: u64, seed: u64 },
}

/// One design of a study: an architecture with its dataflow constraints and fusion policy.
#[derive(Clone, Debug)]
pub struct StudyDesign {
    pub name: String,
    pub arch: Architecture,
    pub fusion: Fusion,
    pub constraints: Constraints,
    /// The prefill attention cascade in place of the workload's (`attention_3pass`, …).
    pub attention: Option<String>,
}

/// One workload case: a workload and, where given, its sequence length.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub workload: String,
    pub seq: Option<u64>,
}

/// A point: a design, a workload case and the value chosen on each axis (indices).
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub design: usize,
    pub case: usize,
    pub choice: Vec<usize>,
}

/// A checked study.
#[derive(Clone, Debug)]
pub struct Study {
    pub name: String,
    pub designs: Vec<StudyDesign>,
    /// (dotted path, or comma-joined linked paths; values).
    pub axes: Vec<(String, Vec<toml::Value>)>,
    pub sampling: Sampling,
    pub cases: Vec<Case>,
    pub phase: Option<String>,
    pub batch: Option<u64>,
    pub roles: Option<Vec<String>>,
    pub search: Search,
    /// The columns of the Pareto front (2 or 3; all minimised).
    pub front: Vec<String>,
    /// The instances of each (design, case) once built: every point of the pair maps them.
    cache: InstanceCache,
}

/// (design name, workload, length).
type CaseKey = (String, String, Option<u64>);

/// Instances by [`CaseKey`], shared by a study's clones and threads.
#[derive(Clone, Default)]
struct InstanceCache(
    std::sync::Arc<std::sync::Mutex<BTreeMap<CaseKey, Vec<crate::commands::map::Instance>>>>,
);

impl std::fmt::Debug for InstanceCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InstanceCache")
    }
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
        if p.contains(',') {
            // A linked axis: one value per path.
            let paths: Vec<&str> = p.split(',').map(str::trim).collect();
            let vals = match val {
                toml::Value::Array(a) if a.len() == paths.len() => a,
                _ => {
                    return Err(format!(
                    "a linked axis of {} paths takes lists of {} values, one per path; got {val}",
                    paths.len(),
                    paths.len()
                ))
                }
            };
            for (q, x) in paths.iter().zip(vals) {
                set_path(&mut v, q, x.clone())?;
            }
        } else {
            set_path(&mut v, p, val.clone())?;
        }
    }
    let text = toml::to_string(&v).map_err(|e| e.to_string())?;
    Architecture::from_toml_str(&text, &base.name).map_err(|e| e.to_string())
}

impl Study {
    /// Parses and checks a study; errors name the file and, where known, the line and column.
    /// Paths in it (architecture and constraints files) are taken as they are written; use
    /// [`Study::load`] for paths relative to the study file.
    pub fn parse(text: &str, file: &str) -> Result<Study> {
        Study::parse_in(text, file, None)
    }

    /// [`Study::parse`] with files named in the study resolved against `dir` when not found
    /// as written.
    pub fn parse_in(text: &str, file: &str, dir: Option<&Path>) -> Result<Study> {
        let f: StudyFile = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(String::new(), |s| {
                let (line, col, _) = line_col(text, s.start);
                format!("{line}:{col}: ")
            });
            anyhow!("{file}:{at}{}", e.message().trim())
        })?;
        let resolve = |name: &str| -> String {
            match dir {
                Some(d) if !Path::new(name).exists() && d.join(name).exists() => {
                    d.join(name).to_string_lossy().into_owned()
                }
                _ => name.to_string(),
            }
        };
        let load_arch = |name: &str, field: &str| {
            crate::cli::load_arch(&resolve(name)).map_err(|e| anyhow!("{file}: {field}: {e:#}"))
        };
        let base = load_arch(&f.arch, "arch")?;
        let mut designs = Vec::new();
        for (k, d) in f.designs.iter().enumerate() {
            let at = |field: &str| {
                let (line, col) = locate(text, &format!("name = \"{}\"", d.name));
                format!("{file}:{line}:{col}: designs[{k}] ({}).{field}", d.name)
            };
            if f.designs[..k].iter().any(|e| e.name == d.name) {
                bail!("{}: `{}` names two designs", at("name"), d.name);
            }
            let arch = match &d.arch {
                Some(a) => load_arch(a, &format!("designs[{k}].arch"))?,
                None => base.clone(),
            };
            let fusion = match &d.fusion {
                None => Fusion::Search,
                Some(v) => fusion_of(v).map_err(|e| anyhow!("{}: {e}", at("fusion")))?,
            };
            let constraints = match &d.constraints {
                None => Constraints::default(),
                Some(toml::Value::String(path)) => Constraints::load(Path::new(&resolve(path)))
                    .map_err(|e| anyhow!("{}: {e}", at("constraints")))?,
                Some(toml::Value::Table(t)) => {
                    let text = toml::to_string(t)?;
                    Constraints::from_toml_str(&text, &at("constraints"))
                        .map_err(|e| anyhow!("{e}"))?
                }
                Some(other) => bail!(
                    "{}: give a constraints file or a table, not a {}",
                    at("constraints"),
                    other.type_str()
                ),
            };
            constraints
                .check_arch(&arch)
                .map_err(|e| anyhow!("{}: {e}", at("constraints")))?;
            let attention = match d.attention.as_deref() {
                None => None,
                Some("1-pass") => Some("attention_1pass".to_string()),
                Some("2-pass") => Some("attention_2pass".to_string()),
                Some("3-pass") => Some("attention_3pass".to_string()),
                Some(x) => bail!(
                    "{}: `{x}`: expected 1-pass, 2-pass or 3-pass",
                    at("attention")
                ),
            };
            designs.push(StudyDesign {
                name: d.name.clone(),
                arch,
                fusion,
                constraints,
                attention,
            });
        }
        if designs.is_empty() {
            designs.push(StudyDesign {
                name: base.name.clone(),
                arch: base.clone(),
                fusion: Fusion::Search,
                constraints: Constraints::default(),
                attention: None,
            });
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
            // Every value of the axis must make a valid architecture of every design.
            for v in vals {
                for d in &designs {
                    apply(&d.arch, &[(path.clone(), v.clone())]).map_err(|e| {
                        if designs.len() > 1 {
                            anyhow!("{at}: {v}: design {}: {e}", d.name)
                        } else {
                            anyhow!("{at}: {v}: {e}")
                        }
                    })?;
                }
            }
            axes.push((path.clone(), vals.clone()));
        }
        let seed = f.sampling.seed.unwrap_or(1);
        let sampling = match f.sampling.kind.as_deref().unwrap_or("grid") {
            "grid" => {
                if f.sampling.samples.is_some() {
                    bail!("{file}: sampling.samples: a grid takes every combination; samples are for random and lhs");
                }
                Sampling::Grid
            }
            k @ ("random" | "lhs") => {
                let samples = f.sampling.samples.filter(|&s| s > 0).ok_or_else(|| {
                    anyhow!("{file}: sampling.samples: a {k} design needs samples ≥ 1")
                })?;
                if axes.is_empty() {
                    bail!("{file}: sampling.kind: {k} samples the axes, and [axes] gives none");
                }
                if k == "random" {
                    Sampling::Random { samples, seed }
                } else {
                    Sampling::Lhs { samples, seed }
                }
            }
            other => bail!("{file}: sampling.kind: `{other}`: expected grid, random or lhs"),
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
        if let Some(r) = f.search.restarts {
            if r == 0 {
                bail!("{file}: search.restarts: must be ≥ 1");
            }
            search.restarts = r;
        }
        if let Some(p) = f.search.patience {
            if p == 0 {
                bail!("{file}: search.patience: must be ≥ 1");
            }
            search.patience = p;
        }
        let front = match f.analysis.front {
            None => default_front(),
            Some(cols) => {
                let (line, col) = locate(text, "front");
                check_front(&cols, &level_names(&designs))
                    .map_err(|e| anyhow!("{file}:{line}:{col}: analysis.front: {e}"))?;
                cols
            }
        };
        let names = f.workload.name.list();
        if names.is_empty() {
            bail!("{file}: workload.name: give a workload (or a list of them)");
        }
        let seqs: Vec<Option<u64>> = match &f.workload.seq {
            None => vec![None],
            Some(s) => s.list().into_iter().map(Some).collect(),
        };
        if seqs.is_empty() {
            bail!("{file}: workload.seq: the list of lengths is empty");
        }
        let cases: Vec<Case> = names
            .iter()
            .flat_map(|w| {
                seqs.iter().map(|&seq| Case {
                    workload: resolve(w),
                    seq,
                })
            })
            .collect();
        let study = Study {
            name: f.name,
            designs,
            axes,
            sampling,
            cases,
            phase: f.workload.phase,
            batch: f.workload.batch,
            roles: f.workload.roles,
            search,
            front,
            cache: InstanceCache::default(),
        };
        // Every workload point resolves, and every design's constraints apply, before any
        // mapping.
        for case in &study.cases {
            for d in &study.designs {
                let insts = study
                    .instances(d, case)
                    .map_err(|e| anyhow!("{file}: workload: {e:#}"))?;
                if insts.is_empty() {
                    bail!("{file}: workload.roles: no cascade of the layer has these roles");
                }
            }
        }
        Ok(study)
    }

    /// The study at `path`, with files it names resolved against its directory.
    pub fn load(path: &str) -> Result<Study> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow!("{path}: {e}"))?;
        Study::parse_in(&text, path, Path::new(path).parent())
    }

    /// The cascades one design maps for one case (built once per design and case; the
    /// study's workload phase, batch and roles are fixed at parse).
    pub fn instances(
        &self,
        d: &StudyDesign,
        case: &Case,
    ) -> Result<Vec<crate::commands::map::Instance>> {
        let key = (d.name.clone(), case.workload.clone(), case.seq);
        let cache = || self.cache.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache().get(&key) {
            return Ok(v.clone());
        }
        let v = self.build_instances(d, case)?;
        cache().insert(key, v.clone());
        Ok(v)
    }

    fn build_instances(
        &self,
        d: &StudyDesign,
        case: &Case,
    ) -> Result<Vec<crate::commands::map::Instance>> {
        let (_, mut insts) = instances(&Target {
            workload: Some(&case.workload),
            cascade: None,
            set: &[],
            phase: self.phase.as_deref(),
            batch: self.batch,
            seq: case.seq,
            dtype_bytes: None,
            skew: 0.0,
        })?;
        if let Some(c) = &d.attention {
            for i in insts.iter_mut().filter(|i| {
                i.role == "attention" && i.phase != Some(crate::workload::Phase::Decode)
            }) {
                i.cascade = load_cascade(c)?;
                i.source = c.clone();
            }
        }
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

    /// The samples of the axes: for each, the index of the value chosen on each axis.
    pub fn samples(&self) -> Vec<Vec<usize>> {
        let sizes: Vec<usize> = self.axes.iter().map(|a| a.1.len()).collect();
        match &self.sampling {
            Sampling::Grid => {
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
            Sampling::Random { samples, seed } => {
                let mut rng = ChaCha8Rng::seed_from_u64(*seed);
                (0..*samples)
                    .map(|_| sizes.iter().map(|&n| rng.random_range(0..n)).collect())
                    .collect()
            }
            Sampling::Lhs { samples, seed } => {
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

    /// Every point, by index: designs × cases × samples of the axes.
    pub fn points(&self) -> Vec<Point> {
        let samples = self.samples();
        let mut v = Vec::with_capacity(self.designs.len() * self.cases.len() * samples.len());
        for design in 0..self.designs.len() {
            for case in 0..self.cases.len() {
                for choice in &samples {
                    v.push(Point {
                        design,
                        case,
                        choice: choice.clone(),
                    });
                }
            }
        }
        v
    }

    /// Maps point `index` and returns its row.
    pub fn evaluate(&self, index: usize, pt: &Point) -> Result<Row> {
        let d = &self.designs[pt.design];
        let case = &self.cases[pt.case];
        let params: Vec<(String, toml::Value)> = self
            .axes
            .iter()
            .zip(&pt.choice)
            .map(|((p, vals), &i)| (p.clone(), vals[i].clone()))
            .collect();
        let arch = apply(&d.arch, &params).map_err(|e| anyhow!("point {index}: {e}"))?;
        let insts = self.instances(d, case)?;
        let search = Search {
            constraints: d.constraints.clone(),
            ..self.search.clone()
        };
        let mapped = map_instances_with(&insts, &arch, &d.fusion, &search, false)?;
        let (mut latency, mut energy, mut off_chip, mut evaluations) = (0.0, 0.0, 0.0, 0);
        let (mut cycles, mut memory_cycles) = (0.0, 0.0);
        let mut traffic: BTreeMap<String, f64> = BTreeMap::new();
        let mut busy: BTreeMap<String, f64> = BTreeMap::new();
        let mut hash = Fnv::new();
        let mut errors = Vec::new();
        for m in &mapped {
            match &m.result {
                Ok(r) => {
                    let c = m.count as f64;
                    let rep = &r.report;
                    latency += rep.latency_s * c;
                    energy += rep.energy_pj * 1e-12 * c;
                    off_chip += rep.off_chip_bytes * c;
                    evaluations += r.evaluations;
                    cycles += rep.latency_cycles * c;
                    memory_cycles += rep
                        .groups
                        .iter()
                        .filter(|g| g.bound != "compute")
                        .map(|g| g.cycles)
                        .sum::<f64>()
                        * c;
                    for t in &rep.traffic {
                        *traffic.entry(t.level.clone()).or_default() +=
                            (t.read_bytes + t.write_bytes) * c;
                    }
                    for (u, x) in &rep.utilization {
                        *busy.entry(u.clone()).or_default() += x * rep.latency_s * c;
                    }
                    hash.add(&serde_json::to_string(&r.mapping).unwrap_or_default());
                }
                Err(e) => errors.push(format!("{}: {e}", m.role)),
            }
        }
        Ok(Row {
            point: index,
            design: d.name.clone(),
            workload: case.workload.clone(),
            seq: case.seq,
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
            utilization: busy
                .into_iter()
                .map(|(u, b)| (u, if latency > 0.0 { b / latency } else { 0.0 }))
                .collect(),
            bound: if memory_cycles * 2.0 > cycles {
                "memory"
            } else {
                "compute"
            }
            .into(),
            evaluations,
            mapping_hash: format!("{:016x}", hash.0),
            errors,
        })
    }
}

/// The storage levels of the designs' architectures, each once, in order.
fn level_names(designs: &[StudyDesign]) -> Vec<String> {
    let mut levels: Vec<String> = Vec::new();
    for l in designs.iter().flat_map(|d| &d.arch.levels) {
        if !levels.contains(&l.name) {
            levels.push(l.name.clone());
        }
    }
    levels
}

/// A design's fusion policy: `search`, `all`, `none`, or groups of Einsum names.
fn fusion_of(v: &toml::Value) -> Result<Fusion, String> {
    match v {
        toml::Value::String(s) => match s.as_str() {
            "search" => Ok(Fusion::Search),
            "all" => Ok(Fusion::All),
            "none" => Ok(Fusion::None),
            x => Err(format!(
                "`{x}`: expected search, all, none or a list of Einsum groups"
            )),
        },
        toml::Value::Array(groups) => groups
            .iter()
            .map(|g| match g {
                toml::Value::Array(names) if !names.is_empty() => names
                    .iter()
                    .map(|n| {
                        n.as_str()
                            .map(String::from)
                            .ok_or_else(|| format!("{n}: an Einsum name is a string"))
                    })
                    .collect(),
                _ => Err(format!("{g}: a group is a non-empty list of Einsum names")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Fusion::Groups),
        other => Err(format!(
            "give search, all, none or a list of Einsum groups, not a {}",
            other.type_str()
        )),
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

/// One point's result (one schema for every study: the common Report's totals).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub point: usize,
    /// The design's name.
    pub design: String,
    /// The workload and, where the study gives it, the sequence length.
    pub workload: String,
    pub seq: Option<u64>,
    /// The point's parameters: dotted path → value (TOML text).
    pub params: BTreeMap<String, String>,
    pub latency_s: f64,
    pub energy_j: f64,
    pub edp_js: f64,
    pub off_chip_bytes: f64,
    /// Bytes moved at each storage level (reads, fills and updates).
    pub traffic_bytes: BTreeMap<String, f64>,
    /// Busy fraction of each compute unit over the point's latency.
    pub utilization: BTreeMap<String, f64>,
    /// `memory` where groups bound by a memory level take over half the cycles, else `compute`.
    pub bound: String,
    /// Mappings the search evaluated.
    pub evaluations: u64,
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
/// `i mod shards`) that `out` does not hold yet, in parallel over rayon's threads
/// (`RAYON_NUM_THREADS`), appending each row as it finishes; when all are done the file is
/// rewritten in point order (through a renamed temporary: a kill leaves either form, both
/// complete). Returns every row of the shard, by point.
pub fn run(
    study: &Study,
    out: &Path,
    shard: (usize, usize),
    on_point: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<Vec<Row>> {
    use rayon::prelude::*;
    let (i, n) = shard;
    if n == 0 || i >= n {
        bail!("--shard {i}/{n}: give i/n with 0 ≤ i < n");
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let rows = read_rows(out)?;
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
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)?;
    let total = mine.len();
    let todo: Vec<usize> = mine.into_iter().filter(|p| !done.contains(p)).collect();
    let finished = done.len();
    let shared = std::sync::Mutex::new((f, rows, finished, on_point));
    todo.par_iter().try_for_each(|&p| -> Result<()> {
        let row = study.evaluate(p, &points[p])?;
        let mut line = serde_json::to_string(&row)?;
        line.push('\n');
        let mut g = shared
            .lock()
            .map_err(|_| anyhow!("a sweep thread panicked"))?;
        let (f, rows, finished, on_point) = &mut *g;
        f.write_all(line.as_bytes())?;
        f.flush()?;
        rows.push(row);
        *finished += 1;
        on_point(*finished, total);
        Ok(())
    })?;
    let (_, mut rows, _, _) = shared
        .into_inner()
        .map_err(|_| anyhow!("a sweep thread panicked"))?;
    rows.sort_by_key(|r| r.point);
    let text = to_jsonl(&rows)?;
    if std::fs::read_to_string(out)? != text {
        let tmp = out.with_extension("jsonl.sorting");
        std::fs::write(&tmp, &text)?;
        std::fs::rename(&tmp, out)?;
    }
    Ok(rows)
}

/// Maps `points` of `study` in parallel (rayon) and returns their rows in the order given,
/// calling `on_point` as each finishes; nothing is written.
pub fn evaluate_all(
    study: &Study,
    points: &[Point],
    on_point: &(dyn Fn() + Sync),
) -> Result<Vec<Row>> {
    use rayon::prelude::*;
    points
        .par_iter()
        .enumerate()
        .map(|(i, p)| {
            let r = study.evaluate(i, p);
            on_point();
            r
        })
        .collect()
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
    let set = |f: fn(&Row) -> Vec<String>| -> Vec<String> {
        rows.iter()
            .flat_map(f)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let levels = set(|r| r.traffic_bytes.keys().cloned().collect());
    let units = set(|r| r.utilization.keys().cloned().collect());
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut s = String::from("point,design,workload,seq");
    for p in &params {
        s += &format!(",{}", q(p));
    }
    s += ",latency_s,energy_j,edp_js,off_chip_bytes";
    for l in &levels {
        s += &format!(",traffic_{l}_bytes");
    }
    for u in &units {
        s += &format!(",utilization_{u}");
    }
    s += ",bound,evaluations,mapping_hash,errors\n";
    for r in rows {
        s += &format!(
            "{},{},{},{}",
            r.point,
            q(&r.design),
            q(&r.workload),
            r.seq.map_or(String::new(), |x| x.to_string())
        );
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
        for u in &units {
            s += &format!(",{:.6}", r.utilization.get(u).copied().unwrap_or(0.0));
        }
        s += &format!(
            ",{},{},{},{}\n",
            r.bound,
            r.evaluations,
            r.mapping_hash,
            q(&r.errors.join("; "))
        );
    }
    s
}

/// The latency × energy front, the default.
pub fn default_front() -> Vec<String> {
    vec!["latency_s".into(), "energy_j".into()]
}

/// A row's value in a front column: `latency_s`, `energy_j`, `edp_js`, `off_chip_bytes` or
/// `traffic.<level>` (0 where the level moved nothing).
pub fn column(r: &Row, name: &str) -> Option<f64> {
    Some(match name {
        "latency_s" => r.latency_s,
        "energy_j" => r.energy_j,
        "edp_js" => r.edp_js,
        "off_chip_bytes" => r.off_chip_bytes,
        _ => {
            let level = name.strip_prefix("traffic.")?;
            r.traffic_bytes.get(level).copied().unwrap_or(0.0)
        }
    })
}

/// Checks front columns: 2 or 3 distinct names of [`column`] (`traffic.<level>` of a level in
/// `levels`).
pub fn check_front(cols: &[String], levels: &[String]) -> Result<(), String> {
    if !(2..=3).contains(&cols.len()) {
        return Err(format!(
            "give 2 or 3 columns, got {} ({})",
            cols.len(),
            cols.join(", ")
        ));
    }
    for (i, c) in cols.iter().enumerate() {
        let known = match c.strip_prefix("traffic.") {
            Some(l) => levels.iter().any(|x| x == l),
            None => ["latency_s", "energy_j", "edp_js", "off_chip_bytes"].contains(&c.as_str()),
        };
        if !known {
            let mut names: Vec<String> = ["latency_s", "energy_j", "edp_js", "off_chip_bytes"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            names.extend(levels.iter().map(|l| format!("traffic.{l}")));
            return Err(format!(
                "`{c}` is not a column (columns: {})",
                names.join(", ")
            ));
        }
        if cols[..i].contains(c) {
            return Err(format!("`{c}` is given twice"));
        }
    }
    Ok(())
}

/// The Pareto front over any columns (all minimised): the points no other point matches or
/// beats in every column while beating in one. Of points equal in every column only the first
/// is kept. Ordered by the first column, then the point.
pub fn pareto_over(rows: &[Row], cols: &[String]) -> Vec<usize> {
    let vals: Vec<(usize, Vec<f64>)> = rows
        .iter()
        .filter_map(|r| {
            let v: Option<Vec<f64>> = cols.iter().map(|c| column(r, c)).collect();
            v.filter(|v| v.iter().all(|x| x.is_finite()))
                .map(|v| (r.point, v))
        })
        .collect();
    let beats = |a: &(usize, Vec<f64>), b: &(usize, Vec<f64>)| {
        let le = a.1.iter().zip(&b.1).all(|(x, y)| x <= y);
        let lt = a.1.iter().zip(&b.1).any(|(x, y)| x < y);
        le && (lt || a.0 < b.0)
    };
    let mut front: Vec<&(usize, Vec<f64>)> = vals
        .iter()
        .filter(|b| !vals.iter().any(|a| a.0 != b.0 && beats(a, b)))
        .collect();
    front.sort_by(|a, b| a.1[0].total_cmp(&b.1[0]).then(a.0.cmp(&b.0)));
    front.iter().map(|e| e.0).collect()
}

/// The study file read and checked (files it names resolved against its directory).
pub fn load(path: &str) -> Result<Study> {
    Study::load(path)
}

/// The summary of a finished study: its points, the best in latency and energy, the Pareto
/// front.
#[derive(Serialize)]
pub struct Summary {
    pub study: String,
    pub points: usize,
    pub failed_points: usize,
    pub best_latency: Option<Row>,
    pub best_energy: Option<Row>,
    /// The columns of the front (all minimised).
    pub front_columns: Vec<String>,
    /// Points on the front, by its first column.
    pub front: Vec<usize>,
}

pub fn summarize(name: &str, rows: &[Row], front: &[String]) -> Summary {
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
        front_columns: front.to_vec(),
        front: pareto_over(&ok, front),
    }
}

/// A column's name as a heading: its unit in brackets.
fn heading(c: &str) -> String {
    match c {
        "latency_s" => "latency (s)".into(),
        "energy_j" => "energy (J)".into(),
        "edp_js" => "EDP (J·s)".into(),
        "off_chip_bytes" => "off-chip (B)".into(),
        _ => format!("{} (B)", c),
    }
}

fn render_summary(s: &Summary, rows: &[Row]) -> String {
    let mut t = format!(
        "# Study `{}`\n\n{} points ({} with a cascade that could not be mapped: left out of the front).\n\n",
        s.study, s.points, s.failed_points
    );
    let heads: Vec<String> = s.front_columns.iter().map(|c| heading(c)).collect();
    t += &format!(
        "## Pareto front over {} ({} point{})\n\n| point | design | workload | parameters | {} |\n|---:|---|---|---|{}\n",
        s.front_columns.join(" × "),
        s.front.len(),
        if s.front.len() == 1 { "" } else { "s" },
        heads.join(" | "),
        "---:|".repeat(heads.len())
    );
    for p in &s.front {
        if let Some(r) = rows.iter().find(|r| r.point == *p) {
            let params: Vec<String> = r.params.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            let vals: Vec<String> = s
                .front_columns
                .iter()
                .map(|c| format!("{:.4e}", column(r, c).unwrap_or(f64::NAN)))
                .collect();
            let case = match r.seq {
                Some(n) => format!("{} at {n}", r.workload),
                None => r.workload.clone(),
            };
            t += &format!(
                "| {} | {} | {} | {} | {} |\n",
                r.point,
                r.design,
                case,
                params.join(", "),
                vals.join(" | ")
            );
        }
    }
    t
}

fn write_outputs(dir: &Path, name: &str, rows: &[Row], front: &[String]) -> Result<Summary> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("results.csv"), to_csv(rows))?;
    let s = summarize(name, rows, front);
    std::fs::write(dir.join("summary.md"), render_summary(&s, rows))?;
    std::fs::write(dir.join("summary.json"), serde_json::to_string_pretty(&s)?)?;
    plot_front(dir, &s, rows)?;
    Ok(s)
}

/// `pareto.png` and `pareto.svg`: every mapped point's latency and energy, the front drawn over
/// them. Nothing is drawn when no point mapped.
fn plot_front(dir: &Path, s: &Summary, rows: &[Row]) -> Result<()> {
    use crate::plot::{render, Chart, ChartKind, Series};
    let (cx, cy) = (&s.front_columns[0], &s.front_columns[1]);
    let pt = |r: &Row| Some((column(r, cx)?, column(r, cy)?)).filter(|(x, y)| *x > 0.0 && *y > 0.0);
    let ok: Vec<(usize, &str, (f64, f64))> = rows
        .iter()
        .filter(|r| r.errors.is_empty())
        .filter_map(|r| Some((r.point, r.design.as_str(), pt(r)?)))
        .collect();
    if ok.is_empty() {
        return Ok(());
    }
    let front: Vec<(f64, f64)> = s
        .front
        .iter()
        .filter_map(|p| ok.iter().find(|(q, _, _)| q == p).map(|(_, _, v)| *v))
        .collect();
    // One series per design (in the rows' order), then the front over them all.
    let mut designs: Vec<&str> = Vec::new();
    for (_, d, _) in &ok {
        if !designs.contains(d) {
            designs.push(d);
        }
    }
    let mut series: Vec<Series> = designs
        .iter()
        .map(|d| {
            let name = if designs.len() > 1 {
                format!("{d} points")
            } else {
                "points".to_string()
            };
            Series::new(
                &name,
                ok.iter().filter(|x| x.1 == *d).map(|x| x.2).collect(),
            )
        })
        .collect();
    series.push(Series::new("Pareto front", front));
    let over = if s.front_columns.len() > 2 {
        format!(
            " (front over {}, drawn on the first two)",
            s.front_columns.join(" × ")
        )
    } else {
        String::new()
    };
    let chart = Chart {
        title: format!("Study {}: {} points{over}", s.study, ok.len()),
        x_label: heading(cx),
        y_label: heading(cy),
        log_x: true,
        log_y: true,
        series,
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
    front: Option<&str>,
    json: bool,
) -> Result<()> {
    let print = |s: &Summary, dir: &Path| -> Result<()> {
        if json {
            crate::cli::write_out(&format!("{}\n", serde_json::to_string_pretty(s)?))?;
        } else {
            crate::cli::write_out(&format!(
                "{}: {} points, {} on the {} front; results in {}\n",
                s.study,
                s.points,
                s.front.len(),
                s.front_columns.join(" × "),
                dir.display()
            ))?;
        }
        Ok(())
    };
    // --front overrides the study's [analysis] front.
    let front_of = |st: Option<&Study>| -> Result<Vec<String>> {
        match front {
            None => Ok(st.map_or_else(default_front, |s| s.front.clone())),
            Some(f) => {
                let cols: Vec<String> = f.split(',').map(|c| c.trim().to_string()).collect();
                let levels = st.map_or_else(Vec::new, |s| level_names(&s.designs));
                check_front(&cols, &levels).map_err(|e| anyhow!("--front {f}: {e}"))?;
                Ok(cols)
            }
        }
    };
    if args[0] == "merge" {
        let files: Vec<&Path> = args[1..].iter().map(Path::new).collect();
        if files.is_empty() {
            bail!("sweep merge: give the results files to merge");
        }
        let st = study.map(load).transpose()?;
        let cols = front_of(st.as_ref())?;
        let rows = merge(&files, st.as_ref().map(|s| s.points().len()))?;
        let name = st.as_ref().map_or("merged".to_string(), |s| s.name.clone());
        let dir = Path::new(out.ok_or_else(|| anyhow!("sweep merge: give --out DIR"))?);
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("results.jsonl"), to_jsonl(&rows)?)?;
        let s = write_outputs(dir, &name, &rows, &cols)?;
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
    let cols = front_of(Some(&st))?;
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
    if shard.is_some() {
        // Shards share the directory: only `sweep merge` writes the study's outputs there.
        let s = summarize(&format!("{} shard {i}/{n}", st.name), &rows, &cols);
        if json {
            return print(&s, &file);
        }
        crate::cli::write_out(&format!(
            "{} shard {i}/{n}: {} points in {}; merge the shards with `cascade sweep merge`\n",
            st.name,
            rows.len(),
            file.display()
        ))?;
        return Ok(());
    }
    let s = write_outputs(&dir, &st.name, &rows, &cols)?;
    print(&s, &dir)
}
