//! `cascade map` and `cascade simulate`: map the cascades of a workload's layer, or one cascade
//! with rank extents given on the command line, onto an architecture; replay a saved mapping.

use crate::models::spatial::analytical::Analytical;
use crate::models::spatial::cycle::{simulate_group, CycleOptions, DramTiming, GroupCycles};
use crate::models::spatial::fusion::{map_cascade, Fusion};
use crate::workload::{Phase, Point, Precision, Workload, WorkloadKind};
use anyhow::{anyhow, bail, Result};
use cascade_einsum::ir::{rank_of, Cascade, Reduce};
use cascade_einsum::{bind, check_source, Checked, Routing};
use cascade_mappings::constraints::Names;
use cascade_mappings::mapping::{locate, GroupMapping, RoutingMapping};
use cascade_mappings::model::{CostModel, GroupEval, GroupPlan};
use cascade_mappings::{ArchP, Constraints, Mapping, Objective, Problem, Report, Search};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One cascade instance to map: its checked cascade, extents, element size and routing.
#[derive(Clone)]
pub struct Instance {
    pub role: String,
    /// The built-in name or the file it came from (what a saved mapping names).
    pub source: String,
    pub cascade: Cascade,
    pub extents: BTreeMap<String, u64>,
    pub dtype_bytes: u64,
    pub routing: Option<Routing>,
    /// Occurrences in the target (a layer list's repeated layers; 1 otherwise): totals weigh
    /// the instance's latency and energy by it.
    pub count: u64,
    /// The phase of an LLM workload's point (`None` for a lone cascade or a layer list):
    /// the GPU lowering runs a decode step's attention as decode attention.
    pub phase: Option<Phase>,
    /// The workload's element type, when `dtype_bytes` is its size (`None` otherwise: the
    /// GPU lowering then takes the type from the size).
    pub precision: Option<Precision>,
}

/// A cascade from a `.ein` file or the built-in library, checked (with its warnings).
pub fn load_checked(arg: &str) -> Result<Checked> {
    let (name, text) = super::check::load_source(arg)?;
    check_source(&name, &text).map_err(|e| anyhow!("{e}"))
}

/// A cascade from a `.ein` file or the built-in library.
pub fn load_cascade(arg: &str) -> Result<Cascade> {
    Ok(load_checked(arg)?.cascade)
}

/// `RANK=N` pairs; errors name the argument.
pub fn parse_sets(sets: &[String]) -> Result<BTreeMap<String, u64>> {
    let mut m = BTreeMap::new();
    for s in sets {
        let Some((k, v)) = s.split_once('=') else {
            bail!("--set {s}: expected RANK=N, e.g. M=16")
        };
        let k = k.trim();
        if k.is_empty() {
            bail!("--set {s}: the rank name is empty");
        }
        let n: u64 = v
            .trim()
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| anyhow!("--set {s}: `{}` is not a positive integer", v.trim()))?;
        if m.insert(k.to_string(), n).is_some() {
            bail!("--set {s}: rank {k} is set twice");
        }
    }
    Ok(m)
}

/// Balanced (or Zipf-skewed) routing for a cascade with a top-k Einsum: the top-k's variable
/// is the expert rank, the other ranks of its output count the tokens.
pub fn routing_for(c: &Cascade, extents: &BTreeMap<String, u64>, skew: f64) -> Option<Routing> {
    let e = c
        .einsums
        .iter()
        .find(|e| matches!(e.reduce, Reduce::TopK { .. }))?;
    let Reduce::TopK { var, k } = &e.reduce else {
        return None;
    };
    let expert = rank_of(var);
    let experts = *extents.get(&expert)?;
    let tokens: u64 = e
        .output
        .vars()
        .iter()
        .map(|v| rank_of(v))
        .filter(|r| *r != expert)
        .map(|r| extents.get(&r).copied().unwrap_or(1))
        .product();
    Some(Routing::zipf(&expert, experts, tokens, *k as u64, skew))
}

/// What to map: a workload's layer at a point, or one cascade.
pub struct Target<'a> {
    pub workload: Option<&'a str>,
    pub cascade: Option<&'a str>,
    pub set: &'a [String],
    pub phase: Option<&'a str>,
    pub batch: Option<u64>,
    pub seq: Option<u64>,
    pub dtype_bytes: Option<u64>,
    pub skew: f64,
}

/// The instances a target names, and a label for the output.
pub fn instances(t: &Target) -> Result<(String, Vec<Instance>)> {
    if t.dtype_bytes == Some(0) {
        bail!("--dtype-bytes 0: bytes per element must be ≥ 1");
    }
    if !t.skew.is_finite() || t.skew < 0.0 {
        bail!("--skew {}: must be a finite number ≥ 0", t.skew);
    }
    match (t.workload, t.cascade) {
        (Some(_), Some(_)) => bail!("give either --workload or --cascade, not both"),
        (None, None) => {
            bail!("give --workload W (a layer of a model) or --cascade C --set RANK=N …")
        }
        (None, Some(c)) => {
            if t.phase.is_some() || t.batch.is_some() || t.seq.is_some() {
                bail!(
                    "--phase, --batch and --seq choose a workload point: use them with --workload"
                );
            }
            let cascade = load_cascade(c)?;
            let extents = parse_sets(t.set)?;
            for r in extents.keys() {
                if !cascade.ranks.contains_key(r) {
                    bail!(
                        "--set {r}=…: cascade {} has no rank {r} (ranks: {})",
                        cascade.name,
                        cascade.ranks.keys().cloned().collect::<Vec<_>>().join(", ")
                    );
                }
            }
            // Extents the cascade cannot take (a rank left without a size, a split that does
            // not divide) are the user's input: a located error before any search.
            bind(&cascade, &extents).map_err(|e| anyhow!("{e}"))?;
            let routing = routing_for(&cascade, &extents, t.skew);
            let label = format!("{} with {}", c, fmt_extents(&extents));
            Ok((
                label,
                vec![Instance {
                    role: cascade.name.clone(),
                    source: c.to_string(),
                    cascade,
                    extents,
                    dtype_bytes: t.dtype_bytes.unwrap_or(2),
                    routing,
                    count: 1,
                    phase: None,
                    precision: None,
                }],
            ))
        }
        (Some(w), None) => {
            if !t.set.is_empty() {
                bail!("--set gives rank extents of --cascade; a workload's point is chosen with --phase, --batch and --seq");
            }
            let w = Workload::load(w)?;
            let list = w.kind() == WorkloadKind::LayerList;
            if list && (t.phase.is_some() || t.seq.is_some()) {
                bail!(
                    "--phase and --seq choose a point of an LLM workload; {} lists its layers: choose its point with --batch",
                    w.name
                );
            }
            let first = w.points()[0];
            let phase = match t.phase {
                None => first.phase,
                Some("prefill") => Phase::Prefill,
                Some("decode") => Phase::Decode,
                Some(x) => bail!("--phase {x}: expected prefill or decode"),
            };
            let pt = Point {
                phase,
                batch: t.batch.unwrap_or(first.batch),
                seq_len: t.seq.unwrap_or(first.seq_len),
            };
            if pt.batch == 0 || (!list && pt.seq_len == 0) {
                bail!("--batch and --seq must be ≥ 1");
            }
            if !list && !w.partition_divides(pt.seq_len) {
                bail!(
                    "--seq {}: {}'s run.partition {} does not divide it: the keys are split in partitions of that size (M0), so a sequence longer than it must be a multiple of it",
                    pt.seq_len,
                    w.name,
                    w.run.partition
                );
            }
            let dtype = t.dtype_bytes.unwrap_or(w.run.precision.bytes());
            let mut out = Vec::new();
            for inst in crate::workload::merge_equal(w.layer(&pt)) {
                let cascade = load_cascade(&inst.cascade)?;
                // The file's own points bind (checked at load); a point chosen here may not.
                if let Err(e) = bind(&cascade, &inst.extents) {
                    let why = e
                        .diagnostics
                        .first()
                        .map_or_else(|| e.to_string(), |d| d.message.clone());
                    bail!(
                        "--batch {} --seq {}: {why} (cascade `{}` of {}'s {})",
                        pt.batch,
                        pt.seq_len,
                        inst.cascade,
                        w.name,
                        inst.role
                    );
                }
                out.push(Instance {
                    role: inst.role.clone(),
                    source: inst.cascade.clone(),
                    cascade,
                    extents: inst.extents.clone(),
                    dtype_bytes: dtype,
                    routing: inst.routing.clone(),
                    count: inst.count,
                    phase: (!list).then_some(pt.phase),
                    precision: (dtype == w.run.precision.bytes()).then_some(w.run.precision),
                });
            }
            let label = if list {
                format!("the layers of {} (batch {})", w.name, pt.batch)
            } else {
                format!(
                    "one {} of {} ({:?}, batch {}, seq {})",
                    if w.block() > 1 {
                        format!("block of {} layers", w.block())
                    } else {
                        "layer".to_string()
                    },
                    w.name,
                    pt.phase,
                    pt.batch,
                    pt.seq_len
                )
            };
            Ok((label, out))
        }
    }
}

fn fmt_extents(e: &BTreeMap<String, u64>) -> String {
    e.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One mapped instance.
#[derive(Clone, Debug, Serialize)]
pub struct Mapped1 {
    pub report: Report,
    pub mapping: Mapping,
    pub evaluations: u64,
    /// Distinct plans in the mapspaces searched (an upper bound) and the fraction evaluated.
    pub space_size: f64,
    pub coverage: f64,
    pub stop: Vec<String>,
    pub seconds: f64,
}

/// One instance's result (or why it could not be mapped).
#[derive(Clone, Debug, Serialize)]
pub struct MappedInstance {
    pub role: String,
    pub cascade: String,
    /// Occurrences of the instance in the target ([`Instance::count`]).
    pub count: u64,
    pub result: Result<Mapped1, String>,
}

/// Lower an instance for an architecture.
pub fn lower(inst: &Instance, arch: &cascade_arch::Architecture) -> Result<(Problem, ArchP)> {
    let sh = bind(&inst.cascade, &inst.extents).map_err(|e| anyhow!("{e}"))?;
    let p = Problem::new(&inst.cascade, &sh, inst.dtype_bytes, inst.routing.clone())?;
    let a = ArchP::new(arch, &p).map_err(|e| anyhow!(e))?;
    Ok((p, a))
}

/// Map every instance (each searched with the same settings), with a progress report on
/// stderr.
pub fn map_instances(
    insts: &[Instance],
    arch: &cascade_arch::Architecture,
    fusion: &Fusion,
    search: &Search,
) -> Result<Vec<MappedInstance>> {
    map_instances_with(insts, arch, fusion, search, true)
}

/// [`map_instances`], with the progress report only where `show_progress` (a sweep reports
/// its points instead).
pub fn map_instances_with(
    insts: &[Instance],
    arch: &cascade_arch::Architecture,
    fusion: &Fusion,
    search: &Search,
    show_progress: bool,
) -> Result<Vec<MappedInstance>> {
    let lowered: Vec<Result<(Problem, ArchP), String>> = insts
        .iter()
        .map(|inst| lower(inst, arch).map_err(|e| e.to_string()))
        .collect();
    // Constraints name levels and units of the architecture and ranks, tensors and Einsums of
    // the cascades: a name found nowhere, or an entry that applies to no cascade mapped, is an
    // error (not a search that silently ignores it); each cascade is searched under the
    // entries that apply to it.
    let cons = &search.constraints;
    if !cons.is_empty() {
        cons.check_arch(arch)?;
        let names: Vec<Names> = lowered
            .iter()
            .filter_map(|l| l.as_ref().ok())
            .map(|(p, _)| Names::of(p))
            .collect();
        if !names.is_empty() {
            cons.check_names(&names)?;
        }
    }
    let mut out = Vec::new();
    let progress = if show_progress {
        crate::progress::Progress::new("map", insts.len() as u64).unit("cascades")
    } else {
        crate::progress::Progress::hidden(insts.len() as u64)
    };
    for (inst, low) in insts.iter().zip(lowered) {
        let _step = progress.step();
        let result = low.and_then(|(p, a)| {
            let search = Search {
                constraints: cons.for_cascade(&Names::of(&p)),
                ..search.clone()
            };
            let m = map_cascade(&p, &a, fusion, &search)?;
            let sh = bind(&inst.cascade, &inst.extents).map_err(|e| e.to_string())?;
            Ok(Mapped1 {
                mapping: Mapping {
                    cascade: inst.source.clone(),
                    arch: arch.name.clone(),
                    dtype_bytes: inst.dtype_bytes,
                    extents: sh.extents().clone(),
                    routing: inst.routing.as_ref().map(RoutingMapping::from),
                    groups: m
                        .groups
                        .iter()
                        .map(|(g, ev)| GroupMapping::from_plan(&p, &a, g, &ev.keep))
                        .collect(),
                },
                coverage: if m.space_size > 0.0 {
                    (m.evaluations as f64 / m.space_size).min(1.0)
                } else {
                    1.0
                },
                space_size: m.space_size,
                stop: m.stop.iter().map(|s| s.to_string()).collect(),
                report: m.report,
                evaluations: m.evaluations,
                seconds: m.seconds,
            })
        });
        out.push(MappedInstance {
            role: inst.role.clone(),
            cascade: inst.source.clone(),
            count: inst.count,
            result,
        });
    }
    progress.finish();
    Ok(out)
}

/// Re-evaluate a saved mapping (its text locates errors) on an architecture.
pub fn simulate(
    m: &Mapping,
    text: &str,
    file: &str,
    arch: &cascade_arch::Architecture,
) -> Result<Report> {
    let (p, a, groups) = replay(m, text, file, arch, &Analytical::default())?;
    Ok(Report::from_groups(&p, &a, &groups))
}

/// `cascade simulate --cycle`: a saved mapping replayed by the spatial cycle engine.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CycleReport {
    pub cascade: String,
    pub arch: String,
    /// The DRAM preset behind the root level, or `ideal`.
    pub memory: String,
    pub analytical_cycles: f64,
    pub cycles: f64,
    pub latency_s: f64,
    /// `cycles / analytical_cycles − 1`.
    pub difference: f64,
    pub groups: Vec<GroupCycles>,
}

/// Replays a saved mapping group by group with the spatial cycle engine; `memory` is the DRAM
/// preset behind the root level (`None`: ideal timing).
pub fn simulate_cycle(
    m: &Mapping,
    text: &str,
    file: &str,
    arch: &cascade_arch::Architecture,
    memory: Option<&crate::dram::DramSpec>,
) -> Result<CycleReport> {
    let (p, a, groups) = replay(m, text, file, arch, &Analytical::default())?;
    let opts = CycleOptions {
        dram: memory.map_or(DramTiming::Ideal, DramTiming::Timed),
        ..CycleOptions::default()
    };
    let mut out = Vec::new();
    for (i, (g, _)) in groups.iter().enumerate() {
        let c = simulate_group(&p, &a, g, &opts)
            .map_err(|e| cannot_run(text, file, i, &e.describe(&p, &a)))?;
        out.push(c);
    }
    let analytical: f64 = out.iter().map(|g| g.analytical_cycles).sum();
    let cycles: f64 = out.iter().map(|g| g.cycles).sum();
    Ok(CycleReport {
        cascade: m.cascade.clone(),
        arch: a.name.clone(),
        memory: memory.map_or_else(|| "ideal".to_string(), |s| s.name.clone()),
        analytical_cycles: analytical,
        cycles,
        latency_s: cycles / a.clock_hz,
        difference: if analytical > 0.0 {
            cycles / analytical - 1.0
        } else {
            0.0
        },
        groups: out,
    })
}

/// A group of a saved mapping that a model refuses, located at `groups[i]` in its text.
fn cannot_run(text: &str, file: &str, i: usize, why: &str) -> anyhow::Error {
    let e = field(&format!("groups[{i}]"), &format!("cannot run: {why}"));
    anyhow!("{}", locate(text, file, e))
}

/// A replayed mapping: the problem, the architecture and every group's plan with its evaluation.
pub type Replayed = (Problem, ArchP, Vec<(GroupPlan, GroupEval)>);

/// A saved mapping evaluated group by group with `model`: the problem, the architecture and
/// every group's plan with its evaluation.
pub fn replay(
    m: &Mapping,
    text: &str,
    file: &str,
    arch: &cascade_arch::Architecture,
    model: &Analytical,
) -> Result<Replayed> {
    let cascade = load_cascade(&m.cascade)
        .map_err(|e| anyhow!("{}", locate(text, file, field("cascade", &e.to_string()))))?;
    let inst = Instance {
        role: cascade.name.clone(),
        source: m.cascade.clone(),
        cascade,
        extents: m.extents.clone(),
        dtype_bytes: m.dtype_bytes,
        routing: m.routing(),
        count: 1,
        phase: None,
        precision: None,
    };
    for r in inst.extents.keys() {
        if !inst.cascade.ranks.contains_key(r) {
            let e = field(
                &format!("extents.{r}"),
                &format!("cascade {} has no rank {r}", inst.cascade.name),
            );
            return Err(anyhow!("{}", locate(text, file, e)));
        }
    }
    let (p, a) = lower(&inst, arch)?;
    let plans = m
        .plans(&p, &a)
        .map_err(|e| anyhow!("{}", locate(text, file, e)))?;
    let mut groups = Vec::new();
    for (i, g) in plans.into_iter().enumerate() {
        let ev = model
            .evaluate(&p, &a, &g)
            .map_err(|e| cannot_run(text, file, i, &e.describe(&p, &a)))?;
        groups.push((g, ev));
    }
    Ok((p, a, groups))
}

fn field(path: &str, message: &str) -> cascade_mappings::mapping::FieldError {
    cascade_mappings::mapping::FieldError {
        path: path.to_string(),
        message: message.to_string(),
    }
}

pub fn check_objective(s: &str) -> Result<Objective> {
    match s {
        "latency" => Ok(Objective::Latency),
        "energy" => Ok(Objective::Energy),
        "edp" => Ok(Objective::Edp),
        _ => bail!("--objective {s}: expected latency, energy or edp"),
    }
}

pub fn check_fusion(s: &str) -> Result<Fusion> {
    match s {
        "search" => Ok(Fusion::Search),
        "all" => Ok(Fusion::All),
        "none" => Ok(Fusion::None),
        _ => bail!("--fusion {s}: expected search, all or none"),
    }
}

/// Constraints from a file (located errors), or none.
pub fn load_constraints(f: Option<&str>) -> Result<Constraints> {
    match f {
        Some(f) => Ok(Constraints::load(Path::new(f))?),
        None => Ok(Constraints::default()),
    }
}

/// The text summary of one report.
pub fn summary_line(role: &str, r: &Report) -> String {
    let util: Vec<String> = r
        .utilization
        .iter()
        .map(|(u, v)| format!("{u} {v:.3}"))
        .collect();
    format!(
        "{role:<12} {:<18} {:.4e} s ({:.0} cycles, {}-bound)  {:.4e} J  off-chip {:.4e} B  util {}  groups {}",
        r.cascade,
        r.latency_s,
        r.latency_cycles,
        r.bound,
        r.energy_pj * 1e-12,
        r.off_chip_bytes,
        util.join(", "),
        r.groups.len()
    )
}
