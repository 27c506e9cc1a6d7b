//! The `cascade` command line.

use crate::analyze::{analyze_workload, render_text};
use crate::workload::Workload;
use anyhow::{bail, Context, Result};
use cascade_einsum::{bind, evaluate, random_inputs};
use clap::{Parser, Subcommand};
use std::path::Path;

#[derive(Parser, Debug)]
#[command(
    name = "cascade",
    version,
    about = "Einsum-cascade simulator and mapper for LLM layers on accelerators.\n\nWith no command, analyses the built-in BERT-Base workload (FuseMax's first model)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per run
pub enum Command {
    /// Parse and check a cascade (.ein file or built-in name); report passes per rank.
    Check {
        /// A .ein file, or a built-in cascade name (e.g. attention_1pass).
        cascade: String,
    },
    /// Op counts, footprints and passes per layer and Einsum of a workload.
    Analyze {
        /// A workload TOML file, or a built-in name (e.g. bert_base).
        workload: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Reproduce a paper's results by search (`fusemax`): writes reports/<paper>/.
    Reproduce {
        /// Which paper: `fusemax`.
        paper: String,
        /// Output directory (default: reports/<paper> for the full run; for a `--seq` subset
        /// target/reproduce/<paper>-seq-…, so that a subset never overwrites the committed
        /// reports).
        #[arg(long)]
        out: Option<String>,
        /// Only these sequence lengths (comma-separated), e.g. `--seq 1024,16384`; figures
        /// the subset does not give are n/a.
        #[arg(long, value_delimiter = ',')]
        seq: Vec<u64>,
        /// Print the headline figures and every point as JSON (still writes the reports).
        #[arg(long)]
        json: bool,
    },
    /// Map the cascades of a workload's layer, or one cascade, onto an architecture: search
    /// fusion, bindings, tiling, loop order, unrolling, bypass and spills; print the reports.
    Map {
        /// Workload TOML or built-in name (maps one layer at a point).
        #[arg(long, conflicts_with = "cascade")]
        workload: Option<String>,
        /// A .ein file or a built-in cascade name (e.g. gemm, conv2d) with `--set` extents.
        #[arg(long)]
        cascade: Option<String>,
        /// Rank extents of `--cascade`, e.g. `--set M=64 --set N=64 --set K=64`.
        #[arg(long = "set", value_name = "RANK=N")]
        set: Vec<String>,
        /// Workload point: prefill or decode (default: the workload's first).
        #[arg(long)]
        phase: Option<String>,
        /// Workload point: batch size (default: the workload's).
        #[arg(long)]
        batch: Option<u64>,
        /// Workload point: sequence length (default: the workload's first).
        #[arg(long)]
        seq: Option<u64>,
        /// Bytes per element (default: the workload's precision; 2 for --cascade).
        #[arg(long)]
        dtype_bytes: Option<u64>,
        /// Zipf skew of tokens per expert for a routing cascade given with --cascade (0 = balanced).
        #[arg(long, default_value_t = 0.0)]
        skew: f64,
        /// Architecture TOML or preset name (fusemax, flat, flat_edge, h100, …).
        #[arg(long)]
        arch: String,
        /// latency, energy or edp.
        #[arg(long, default_value = "latency")]
        objective: String,
        /// search (try all / per pass / none), all, or none.
        #[arg(long, default_value = "search")]
        fusion: String,
        /// Constraints TOML (Timeloop style: [[temporal]], [[spatial]], [[bypass]],
        /// [[utilization]], [[bind]]).
        #[arg(long)]
        constraints: Option<String>,
        /// Directory to save each cascade's best mapping as TOML.
        #[arg(long)]
        save: Option<String>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Mapping evaluations per search (per fusion group).
        #[arg(long, default_value_t = 200_000)]
        budget: u64,
        #[arg(long)]
        json: bool,
    },
    /// Re-evaluate a saved mapping (TOML) and print its report.
    Simulate {
        #[arg(long)]
        mapping: String,
        /// Architecture (default: the one the mapping names).
        #[arg(long)]
        arch: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Compare cascade with Timeloop and ZigZag on the recorded parity cases; write the tables.
    Parity {
        /// Directory of cases (each with golden.json and cascade/mapping.toml).
        #[arg(long, default_value = "tests/parity")]
        cases: String,
        /// Output directory for summary.md and results.csv (default: reports/parity for the
        /// committed cases, tests/parity; target/parity/<name> for any other --cases, so that
        /// such a run never overwrites the committed reports).
        #[arg(long)]
        out: Option<String>,
    },
    /// Recompute the modeled FuseMax figures and compare them with reports/baseline.toml.
    Regress {
        /// The baseline TOML (validated before anything runs).
        #[arg(long, default_value = "reports/baseline.toml")]
        baseline: String,
        /// Write the current figures as the new baseline instead of comparing.
        #[arg(long)]
        update: bool,
        /// Print the comparison as JSON: each figure, baseline, value, tolerance, drift, pass.
        #[arg(long, conflicts_with = "update")]
        json: bool,
    },
    /// Predict one GPU operation from a one-line spec (see README, "GPU estimates").
    Estimate {
        /// Architecture TOML with a [gpu] section, or a preset name.
        #[arg(long, default_value = "h100")]
        arch: String,
        /// e.g. "gemm m=4096 n=4096 k=4096 dtype=bf16".
        #[arg(long)]
        op: String,
        #[arg(long)]
        json: bool,
    },
    /// Run the CUDA suite on the GPU (feature `cuda`), compare with the model, write reports.
    Crosscheck {
        /// Output directory for h100.csv / h100.md / plots.
        #[arg(long, default_value = "reports/crosscheck")]
        out: String,
    },
    /// Run the reference interpreter on random inputs of a small instance; print checksums.
    Eval {
        /// A .ein file, or a built-in cascade name.
        cascade: String,
        /// Rank extents, e.g. `--set M=8 --set M0=2` (unset ranks: 4; split parts and window
        /// ranks: derived).
        #[arg(long = "set", value_name = "RANK=N")]
        set: Vec<String>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

use crate::commands::map::{load_checked as load_cascade, parse_sets};

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        None => default_job(),
        Some(Command::Check { cascade }) => {
            let c = load_cascade(&cascade)?;
            if !c.warnings.is_empty() {
                eprintln!("{}", c.render_warnings());
            }
            let cas = &c.cascade;
            println!(
                "ok: {} — {} Einsums, inputs {}, outputs {}",
                cas.source.name,
                cas.einsums.len(),
                cas.inputs.join(", "),
                cas.outputs.join(", ")
            );
            let passes = cascade_einsum::pass_counts(cas);
            let p: Vec<String> = passes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            println!("passes per rank: {}", p.join(", "));
            Ok(())
        }
        Some(Command::Analyze { workload, json }) => {
            let w = Workload::load(&workload)?;
            let r = analyze_workload(&w)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", render_text(&r));
            }
            Ok(())
        }
        Some(Command::Reproduce {
            paper,
            out,
            seq,
            json,
        }) => {
            if paper != "fusemax" {
                bail!("unknown paper `{paper}` (known: fusemax)");
            }
            let t = std::time::Instant::now();
            let rows = crate::reproduce::run(if seq.is_empty() { None } else { Some(&seq) })?;
            let s = crate::reproduce::summarize(&rows);
            let dir = out.map_or_else(
                || crate::reproduce::default_out(&paper, &seq),
                std::path::PathBuf::from,
            );
            crate::reproduce::write_reports(&rows, &s, &dir)?;
            let evals: u64 = rows.iter().map(|r| r.evaluations).sum();
            let secs = t.elapsed().as_secs_f64();
            if json {
                let mut v = crate::reproduce::summary_json(&s);
                v["paper"] = serde_json::json!(paper);
                v["out"] = serde_json::json!(dir.display().to_string());
                v["evaluations"] = serde_json::json!(evals);
                v["seconds"] = serde_json::json!(secs);
                v["rows"] = serde_json::to_value(&rows)?;
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!("FuseMax reproduction: {} mapped points ({} models × seq × 3 designs), {evals} mappings evaluated in {secs:.2} s ({:.0}/s)", rows.len(), crate::workload::FUSEMAX_MODELS.len(), evals as f64 / secs.max(1e-9));
            if crate::reproduce::is_subset(&seq) {
                println!("a subset of the sequence lengths: means are over its points only; figures it does not give are n/a");
            }
            print!("{}", crate::reproduce::render_summary(&s));
            println!("reports written to {}/ (results.csv, headline.csv, summary.md, speedup/energy_ratio/utilization .png/.svg)", dir.display());
            Ok(())
        }
        Some(Command::Estimate { arch, op, json }) => {
            let a = load_arch(&arch)?;
            let gpu = a.gpu.as_ref().ok_or_else(|| {
                anyhow::anyhow!("{arch}: architecture `{}` has no [gpu] section", a.name)
            })?;
            let op = crate::gpu::GpuOp::parse(&op).map_err(|e| anyhow::anyhow!("--op: {e}"))?;
            let est = crate::gpu::try_estimate(&op, gpu).map_err(|e| anyhow::anyhow!("{e}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&est)?);
            } else {
                println!(
                    "{op}: {:.4e} s ({:?}-bound) on {}",
                    est.seconds, est.bound, a.name
                );
                for k in &est.kernels {
                    println!(
                        "  {:<16} {:.4e} s  {:?}  {} CTAs in {} waves",
                        k.name, k.seconds, k.bound, k.ctas, k.waves
                    );
                }
            }
            Ok(())
        }
        Some(Command::Crosscheck { out }) => crosscheck(Path::new(&out)),
        Some(Command::Map {
            workload,
            cascade,
            set,
            phase,
            batch,
            seq,
            dtype_bytes,
            skew,
            arch,
            objective,
            fusion,
            constraints,
            save,
            seed,
            budget,
            json,
        }) => {
            use crate::commands::map;
            let obj = map::check_objective(&objective)?;
            let fusion = map::check_fusion(&fusion)?;
            if budget == 0 {
                bail!("--budget 0: give at least one evaluation");
            }
            let a = load_arch(&arch)?;
            let cons = map::load_constraints(constraints.as_deref())?;
            let (label, insts) = map::instances(&map::Target {
                workload: workload.as_deref(),
                cascade: cascade.as_deref(),
                set: &set,
                phase: phase.as_deref(),
                batch,
                seq,
                dtype_bytes,
                skew,
            })?;
            let search = cascade_mappings::Search::default()
                .objective(obj)
                .seed(seed)
                .budget(budget)
                .constraints(cons);
            let t = std::time::Instant::now();
            let mapped = map::map_instances(&insts, &a, &fusion, &search)?;
            let secs = t.elapsed().as_secs_f64();
            let ok: Vec<(&str, &map::Mapped1)> = mapped
                .iter()
                .filter_map(|m| m.result.as_ref().ok().map(|r| (m.role.as_str(), r)))
                .collect();
            // Repeated instances (a layer list's `count`) each run once per occurrence.
            let total: f64 = mapped
                .iter()
                .filter_map(|m| {
                    let r = m.result.as_ref().ok()?;
                    Some(m.count as f64 * r.report.latency_s)
                })
                .sum();
            let evals: u64 = ok.iter().map(|m| m.1.evaluations).sum();
            if let Some(dir) = &save {
                std::fs::create_dir_all(dir).with_context(|| format!("{dir}: cannot create"))?;
                let prefix = workload
                    .as_deref()
                    .map(|w| {
                        Path::new(w)
                            .file_stem()
                            .map_or(w.to_string(), |s| s.to_string_lossy().into_owned())
                    })
                    .unwrap_or_else(|| "cascade".into());
                for (role, m) in &ok {
                    let f = Path::new(dir).join(format!("{prefix}_{role}_{}.toml", a.name));
                    std::fs::write(&f, m.mapping.to_toml()?)
                        .with_context(|| format!("{}: cannot write", f.display()))?;
                }
            }
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "target": label, "arch": a.name, "instances": mapped,
                        "total_latency_s": total,
                        "evaluations": evals, "seconds": secs,
                        "evaluations_per_s": evals as f64 / secs.max(1e-9)
                    }))?
                );
            } else {
                println!("mapped {label} onto {} — objective {objective}", a.name);
                for m in &mapped {
                    match &m.result {
                        Ok(x) => {
                            println!("  {}", map::summary_line(&m.role, &x.report));
                            if m.count > 1 {
                                println!(
                                    "  {:<12} occurs {} times: {:.4e} s in all",
                                    "",
                                    m.count,
                                    m.count as f64 * x.report.latency_s
                                );
                            }
                            println!(
                                "  {:<12} {} evaluations of a mapspace of {:.3e} plans ({:.2e} covered); stopped: {}",
                                "", x.evaluations, x.space_size, x.coverage, x.stop.join("; ")
                            );
                        }
                        Err(e) => println!("  {:<12} {:<18} not mapped: {e}", m.role, m.cascade),
                    }
                }
                let occurrences: u64 = mapped
                    .iter()
                    .filter(|m| m.result.is_ok())
                    .map(|m| m.count)
                    .sum();
                let repeats = if occurrences != ok.len() as u64 {
                    format!(", {occurrences} occurrences")
                } else {
                    String::new()
                };
                println!(
                    "mapped total {total:.4e} s ({} of {} cascades{repeats}); {evals} mappings evaluated in {secs:.2} s ({:.0}/s)",
                    ok.len(),
                    mapped.len(),
                    evals as f64 / secs.max(1e-9)
                );
                if let [(_, m)] = ok.as_slice() {
                    println!("\nbest mapping:\n{}", m.mapping.to_toml()?);
                }
            }
            if ok.is_empty() {
                bail!("no cascade could be mapped onto {}", a.name);
            }
            Ok(())
        }
        Some(Command::Simulate {
            mapping,
            arch,
            json,
        }) => {
            let (m, text) = cascade_mappings::Mapping::load(Path::new(&mapping))?;
            let a = load_arch(arch.as_deref().unwrap_or(&m.arch))?;
            let r = crate::commands::map::simulate(&m, &text, &mapping, &a)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("{}", crate::commands::map::summary_line(&m.cascade, &r));
                for t in &r.traffic {
                    println!(
                        "  {:<14} {:<6} reads {:>12.0}  fills {:>12.0}  updates {:>12.0}",
                        t.level, t.tensor, t.reads, t.fills, t.updates
                    );
                }
            }
            Ok(())
        }
        Some(Command::Parity { cases, out }) => {
            use crate::validate::parity;
            let dirs = parity::cases(Path::new(&cases))?;
            if dirs.is_empty() {
                bail!("{cases}: no parity cases (directories with golden.json and cascade/mapping.toml)");
            }
            let progress =
                crate::progress::Progress::new("parity", dirs.len() as u64).unit("cases");
            let results = dirs
                .iter()
                .map(|d| {
                    let _step = progress.step();
                    parity::compare(d).with_context(|| d.display().to_string())
                })
                .collect::<Result<Vec<_>>>()?;
            progress.finish();
            let out = out.unwrap_or_else(|| parity::default_out(&cases).display().to_string());
            std::fs::create_dir_all(&out).with_context(|| format!("{out}: cannot create"))?;
            let md = format!(
                "# Parity with Timeloop and ZigZag\n\nGenerated by `cascade parity`: every case of `{cases}/` replayed by cascade's analytical \
                 model with the peer's counting conventions, on the same problem, architecture and mapping (the `cascade/` inputs \
                 of each case, converted from the peer's). Counts are per level and tensor over all instances.\n\n{}\n{}",
                parity::render(&results),
                parity::EXPLANATION
            );
            for (name, text) in [("summary.md", md), ("results.csv", parity::csv(&results))] {
                let f = Path::new(&out).join(name);
                std::fs::write(&f, text)
                    .with_context(|| format!("{}: cannot write", f.display()))?;
            }
            print!(
                "{}",
                parity::render(&results)
                    .split("\n\n###")
                    .next()
                    .unwrap_or("")
            );
            println!("\nreports written to {out}/ (summary.md, results.csv)");
            Ok(())
        }
        Some(Command::Regress {
            baseline,
            update,
            json,
        }) => {
            use crate::commands::regress;
            // The baseline is checked before the (minutes-long) reproduction runs.
            let b = if update {
                None
            } else {
                Some(regress::load_baseline(Path::new(&baseline))?)
            };
            let rows = crate::reproduce::run_labelled(None, "regress")?;
            let cur = regress::tracked(&crate::reproduce::summarize(&rows));
            let Some(b) = b else {
                let b = regress::Baseline {
                    note: "Modeled FuseMax reproduction figures (cascade reproduce fusemax); regenerate with `cascade regress --update` when a model change is intended.".into(),
                    figures: cur.iter().map(|(k, v)| (k.clone(), regress::BaselineFigure { value: (v * 1e6).round() / 1e6, tolerance: 0.01 })).collect(),
                };
                std::fs::write(&baseline, toml::to_string_pretty(&b)?)
                    .with_context(|| format!("{baseline}: cannot write"))?;
                println!("wrote {baseline}");
                return Ok(());
            };
            let (text, ok) = regress::regress(&cur, &b);
            if json {
                let v = regress::regress_json(&baseline, &cur, &b);
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{text}");
            }
            if !ok {
                bail!("modeled figures drifted from {baseline}");
            }
            if !json {
                println!("no drift beyond tolerance");
            }
            Ok(())
        }
        Some(Command::Eval { cascade, set, seed }) => {
            let c = load_cascade(&cascade)?;
            let cas = &c.cascade;
            let mut given = parse_sets(&set)?;
            // Window ranks (`H` of `I[n,c,p+r,…]`) are left unset so that `bind` derives
            // them from the ranks their affine indices combine.
            let windows = cas.window_ranks();
            for r in cas.ranks.values() {
                let in_split = r.parent.is_some() || !r.parts.is_empty();
                if !given.contains_key(&r.name) && !in_split && !windows.contains(&r.name) {
                    given.insert(r.name.clone(), 4);
                }
            }
            // A split root defaults to 8; its parts but the outermost default to 2
            // (or 1 where 2 does not divide), so the outermost is derived.
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
            let shapes = bind(cas, &given).map_err(|e| anyhow::anyhow!("{e}"))?;
            let inputs = random_inputs(cas, &shapes, seed);
            let env = evaluate(cas, &shapes, &inputs).map_err(|e| anyhow::anyhow!("{e}"))?;
            let ext: Vec<String> = shapes
                .extents()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            println!(
                "evaluated {} on random inputs in [-1, 1) (seed {seed}) with {}",
                cas.source.name,
                ext.join(" ")
            );
            for o in &cas.outputs {
                let t = &env[o];
                let finite = t.data.iter().all(|v| v.is_finite());
                println!(
                    "  {o}{:?}: checksum {:.12e}{}",
                    t.shape,
                    t.checksum(),
                    if finite { "" } else { "  (non-finite values!)" }
                );
            }
            Ok(())
        }
    }
}

/// An architecture from a TOML file or a preset name.
pub fn load_arch(arg: &str) -> Result<cascade_arch::Architecture> {
    if Path::new(arg).exists() {
        Ok(cascade_arch::Architecture::load(arg)?)
    } else {
        cascade_arch::preset(arg).map_err(|e| anyhow::anyhow!("{arg}: no such file, and {e}"))
    }
}

#[cfg(feature = "cuda")]
fn crosscheck(out: &Path) -> Result<()> {
    crate::cuda::main_crosscheck(out).map_err(|e| anyhow::anyhow!("crosscheck: {e}"))
}

#[cfg(not(feature = "cuda"))]
fn crosscheck(_out: &Path) -> Result<()> {
    bail!("crosscheck needs the CUDA backend: this binary was built without it; build with `cargo build --release --features cuda` and run on a machine with an NVIDIA GPU")
}

/// `cascade` with no arguments: reproduce FuseMax's attention results by search (all
/// four models, six sequence lengths, three designs) and write reports/fusemax/.
fn default_job() -> Result<()> {
    println!(
        "cascade: no command given — reproducing FuseMax (MICRO'24) attention results by search:"
    );
    println!("FuseMax, FLAT and an unfused baseline mapped by the mapper for BERT-Base, TrXL-wt103, T5-small");
    println!("and XLM at 1K–1M tokens (batch 64). `cascade --help` lists the other commands.\n");
    run(Cli {
        command: Some(Command::Reproduce {
            paper: "fusemax".into(),
            out: None,
            seq: vec![],
            json: false,
        }),
    })
}
