//! The `cascade` command line.

use crate::analyze::{analyze_workload, render_text};
use crate::workload::Workload;
use anyhow::{bail, Context, Result};
use cascade_einsum::{bind, check_source, evaluate, library, random_inputs, Checked};
use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
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
        /// Output directory (default reports/<paper>).
        #[arg(long)]
        out: Option<String>,
        /// Only these sequence lengths (comma-separated), e.g. `--seq 1024,16384`.
        #[arg(long, value_delimiter = ',')]
        seq: Vec<u64>,
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
        /// Rank extents, e.g. `--set M=8 --set M0=2` (unset ranks: 4; split parts: derived).
        #[arg(long = "set", value_name = "RANK=N")]
        set: Vec<String>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Load a cascade from a file or the built-in library.
pub fn load_cascade(arg: &str) -> Result<Checked> {
    let p = Path::new(arg);
    let (name, text) = if p.exists() {
        (
            arg.to_string(),
            std::fs::read_to_string(p).with_context(|| format!("{arg}: cannot read"))?,
        )
    } else if let Some(src) = library::source(arg) {
        (format!("einsum/cascades/{arg}.ein"), src.to_string())
    } else {
        bail!(
            "{arg}: no such file, and not a built-in cascade (built in: {})",
            library::names().join(", ")
        );
    };
    check_source(&name, &text).map_err(|e| anyhow::anyhow!("{e}"))
}

fn parse_sets(sets: &[String]) -> Result<BTreeMap<String, u64>> {
    let mut m = BTreeMap::new();
    for s in sets {
        let Some((k, v)) = s.split_once('=') else {
            bail!("--set {s}: expected RANK=N, e.g. M=16")
        };
        let n: u64 = v
            .trim()
            .parse()
            .with_context(|| format!("--set {s}: `{v}` is not a positive integer"))?;
        m.insert(k.trim().to_string(), n);
    }
    Ok(m)
}

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
        Some(Command::Reproduce { paper, out, seq }) => {
            if paper != "fusemax" {
                bail!("unknown paper `{paper}` (known: fusemax)");
            }
            let t = std::time::Instant::now();
            let rows = crate::reproduce::run(if seq.is_empty() { None } else { Some(&seq) })?;
            let s = crate::reproduce::summarize(&rows);
            let dir = out.unwrap_or_else(|| "reports/fusemax".into());
            crate::reproduce::write_reports(&rows, &s, Path::new(&dir))?;
            let evals: u64 = rows.iter().map(|r| r.evaluations).sum();
            let secs = t.elapsed().as_secs_f64();
            println!("FuseMax reproduction: {} mapped points ({} models × seq × 3 designs), {evals} mappings evaluated in {secs:.2} s ({:.0}/s)", rows.len(), crate::workload::FUSEMAX_MODELS.len(), evals as f64 / secs);
            print!("{}", crate::reproduce::render_summary(&s));
            println!("reports written to {dir}/ (results.csv, summary.md, speedup/energy_ratio/utilization .png/.svg)");
            Ok(())
        }
        Some(Command::Estimate { arch, op, json }) => {
            let a = load_arch(&arch)?;
            let gpu = a.gpu.as_ref().ok_or_else(|| anyhow::anyhow!("{arch}: architecture `{}` has no [gpu] section", a.name))?;
            let op = crate::gpu::GpuOp::parse(&op).map_err(|e| anyhow::anyhow!("--op: {e}"))?;
            let est = crate::gpu::try_estimate(&op, gpu).map_err(|e| anyhow::anyhow!("{e}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&est)?);
            } else {
                println!("{op}: {:.4e} s ({:?}-bound) on {}", est.seconds, est.bound, a.name);
                for k in &est.kernels {
                    println!("  {:<16} {:.4e} s  {:?}  {} CTAs in {} waves", k.name, k.seconds, k.bound, k.ctas, k.waves);
                }
            }
            Ok(())
        }
        Some(Command::Crosscheck { out }) => crosscheck(Path::new(&out)),
        Some(Command::Eval { cascade, set, seed }) => {
            let c = load_cascade(&cascade)?;
            let cas = &c.cascade;
            let mut given = parse_sets(&set)?;
            for r in cas.ranks.values() {
                let in_split = r.parent.is_some() || !r.parts.is_empty();
                if !given.contains_key(&r.name) && !in_split {
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

/// `cascade` with no arguments: analyse BERT-Base at its first point and show the
/// pass counts of the three attention cascades.
fn default_job() -> Result<()> {
    let mut w = Workload::load("bert_base")?;
    w.run.seq_len.truncate(1);
    println!("cascade: no command given — analysing the built-in workload `bert_base` (FuseMax's first model)");
    println!("at its first point; `cascade --help` lists the commands.\n");
    print!("{}", render_text(&analyze_workload(&w)?));
    println!("\nattention cascades (FuseMax Table I) — passes over the key rank M:");
    for name in ["attention_3pass", "attention_2pass", "attention_1pass"] {
        let c = library::load(name).map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "  {name:<16} {} pass(es)",
            cascade_einsum::pass_counts(&c.cascade)["M"]
        );
    }
    Ok(())
}
