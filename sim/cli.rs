//! The `cascade` command line.

use crate::analyze::{analyze_workload, render_text};
use crate::workload::Workload;
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::Path;

/// Writes to standard output, as an error rather than a panic when it fails (a full disk,
/// `> /dev/full`); a closed pipe ends the process quietly through SIGPIPE (main.rs).
pub fn write_out(text: &str) -> Result<()> {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())
        .and_then(|()| o.flush())
        .map_err(|e| anyhow::Error::new(e).context("writing to standard output"))
}

/// `print!` that returns write errors (see [`write_out`]).
macro_rules! out {
    ($($a:tt)*) => { $crate::cli::write_out(&format!($($a)*))? };
}

/// `println!` that returns write errors (see [`write_out`]).
macro_rules! outln {
    () => { $crate::cli::write_out("\n")? };
    ($($a:tt)*) => { $crate::cli::write_out(&format!("{}\n", format_args!($($a)*)))? };
}

#[derive(Parser, Debug)]
#[command(
    name = "cascade",
    version,
    about = "Einsum-cascade simulator and mapper for LLM layers on accelerators.",
    after_help = "With no command, runs the default job: `cascade reproduce fusemax` — FuseMax, FLAT and an unfused baseline mapped by search for BERT-Base, TrXL-wt103, T5-small and XLM at 1K-1M tokens (a few seconds in a release build); it writes reports/fusemax/ and prints the summary."
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
        /// Print JSON (Einsums, tensors, passes, and every diagnostic with its line and
        /// column, errors included) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Op counts, footprints and passes per layer and Einsum of a workload.
    Analyze {
        /// A workload TOML file, or a built-in name (e.g. bert_base).
        workload: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a design-space study (README, "Sweeps"): `sweep STUDY.toml [--shard i/n]`, or merge
    /// shards: `sweep merge FILE... --study STUDY.toml`.
    Sweep {
        /// The study TOML; or `merge` followed by results files.
        #[arg(required = true)]
        args: Vec<String>,
        /// Output directory (default target/sweeps/<study name>).
        #[arg(long)]
        out: Option<String>,
        /// Only the points whose index is i modulo n ("i/n"), into results.shard-i-of-n.jsonl.
        #[arg(long)]
        shard: Option<String>,
        /// `merge`: the study the files belong to (every point must be in one of them).
        #[arg(long)]
        study: Option<String>,
        /// The Pareto front's 2 or 3 columns, comma-separated (default: the study's
        /// [analysis] front, else latency_s,energy_j): latency_s, energy_j, edp_js,
        /// off_chip_bytes, traffic.<level>.
        #[arg(long)]
        front: Option<String>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Reproduce a paper's results (`fusemax` by search; `duplex`: Duplex's serving results
    /// and the cross-check against its simulator): writes reports/<paper>/.
    Reproduce {
        /// Which paper: `fusemax` or `duplex`.
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
        /// The study to run (default: studies/fusemax.toml as shipped, compiled in); its
        /// designs must include fusemax, flat and unfused.
        #[arg(long)]
        study: Option<String>,
    },
    /// Map the cascades of a workload's layer, or one cascade, onto an architecture: search
    /// fusion, bindings, tiling, loop order, unrolling, bypass and spills; print the reports.
    /// On a GPU architecture (a `[gpu]` section: h100, h200), lower each cascade to the
    /// kernels eager PyTorch launches and estimate each as `cascade estimate` does.
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
        /// latency, energy or edp [default: latency]. A GPU architecture searches each
        /// kernel's mapping for latency only.
        #[arg(long)]
        objective: Option<String>,
        /// search (try all / per pass / none), all, or none [default: search]. Not for a GPU
        /// architecture: its kernels are the ones eager PyTorch launches.
        #[arg(long)]
        fusion: Option<String>,
        /// Constraints TOML (Timeloop style: [[temporal]], [[spatial]], [[bypass]],
        /// [[utilization]], [[bind]]).
        #[arg(long)]
        constraints: Option<String>,
        /// Directory to save each cascade's best mapping as TOML.
        #[arg(long)]
        save: Option<String>,
        /// Seed of the search's random choices (same seed, same inputs: same mapping)
        /// [default: 1]. Not for a GPU architecture (its kernel search is exhaustive).
        #[arg(long)]
        seed: Option<u64>,
        /// Mapping evaluations per search (per fusion group); at least 1 [default: 200000].
        /// Not for a GPU architecture (its kernel search is exhaustive).
        #[arg(long)]
        budget: Option<u64>,
        /// Print the reports and mappings as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Re-evaluate a saved mapping (TOML) and print its report; with --cycle, replay it step by
    /// step with the spatial cycle engine (off-chip transfers through the DRAM model).
    Simulate {
        /// A mapping TOML, as `map --save DIR` writes them.
        #[arg(long)]
        mapping: String,
        /// Architecture (default: the one the mapping names).
        #[arg(long)]
        arch: Option<String>,
        /// Replay the mapping with the spatial cycle engine (tile transfers, double buffering,
        /// pipeline fill and drain) and compare it with the analytical model.
        #[arg(long)]
        cycle: bool,
        /// With --cycle: the DRAM preset behind the root level (default: the one the root level
        /// names with `memory = "…"`, else ideal timing). Presets: hbm3_h100, hbm3e_h200,
        /// ddr5_4800, lpddr5_6400, …
        #[arg(long, requires = "cycle", conflicts_with = "ideal_dram")]
        memory: Option<String>,
        /// With --cycle: ideal root-port timing (its bandwidth every cycle) even when the root
        /// level names a DRAM preset.
        #[arg(long, requires = "cycle")]
        ideal_dram: bool,
        /// Print the report as JSON instead of text.
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
        /// Only these reproductions (comma-separated: fusemax, duplex); default every one.
        #[arg(long, value_delimiter = ',', conflicts_with = "update")]
        only: Vec<String>,
    },
    /// Run a model's inference on a GPU: a static batch's prefill step, then one decode step
    /// per generated token with the KV cache growing; time to first token, time between tokens,
    /// tokens/s, energy per token, the memory held, and the ops of the first and last steps.
    Infer {
        /// An LLM workload TOML or built-in name.
        #[arg(long, default_value = "llama3_8b")]
        workload: String,
        /// Architecture TOML with a [gpu] section, or a preset name.
        #[arg(long, default_value = "h200")]
        arch: String,
        /// Sequences in the batch.
        #[arg(long, default_value_t = 1)]
        batch: u64,
        /// Prompt tokens per sequence.
        #[arg(long, default_value_t = 2048)]
        prompt: u64,
        /// Tokens generated per sequence (the first by the prefill step).
        #[arg(long, default_value_t = 128)]
        generate: u64,
        /// Devices the model is spread over (tp × pp × data-parallel replicas).
        #[arg(long, default_value_t = 1)]
        devices: u64,
        /// Tensor-parallel ranks (heads, FFN columns, vocabulary split).
        #[arg(long, default_value_t = 1)]
        tp: u64,
        /// Pipeline stages (layers split; GPipe micro-batches).
        #[arg(long, default_value_t = 1)]
        pp: u64,
        /// Expert-parallel ranks (MoE experts split over every device of a stage).
        #[arg(long, default_value_t = 1)]
        ep: u64,
        /// The link between devices: a preset of arch/links (nvlink4, pcie4_x16, pcie5_x16,
        /// infiniband_ndr) or a TOML file; default the architecture's `interconnect`.
        #[arg(long)]
        link: Option<String>,
        /// Where the weights live: device (default), host (DRAM over --host-link) or ssd
        /// (--ssd, through the host).
        #[arg(long, default_value = "device")]
        weights_on: String,
        /// Where the KV cache lives: device (default) or host.
        #[arg(long, default_value = "device")]
        kv_on: String,
        /// The device-host link (a preset of arch/links or a TOML file).
        #[arg(long, default_value = "pcie5_x16")]
        host_link: String,
        /// Host DRAM the run may use (e.g. "512 GiB"); needed when anything is on the host.
        #[arg(long)]
        host_memory: Option<String>,
        /// The SSD of --weights-on ssd: a flash preset (ssd980pro, …) or a drive TOML.
        #[arg(long)]
        ssd: Option<String>,
        /// Serve requests arriving as a Poisson process of this many per second (with
        /// --requests, each of --prompt tokens generating --generate) instead of one batch.
        #[arg(long)]
        rate: Option<f64>,
        /// Requests of a --rate run.
        #[arg(long, default_value_t = 1000)]
        requests: u64,
        /// Serve the requests of a trace TOML ([[request]] arrival_s, prompt, generate).
        #[arg(long, conflicts_with = "rate")]
        trace: Option<String>,
        /// Seed of the Poisson arrivals.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Serving: chunked prefill (decode tokens first, prompt chunks fill the token budget).
        #[arg(long)]
        chunked_prefill: bool,
        /// Serving: most tokens a step computes (vLLM max_num_batched_tokens).
        #[arg(long, default_value_t = 8192)]
        token_budget: u64,
        /// Serving: most requests running at once (vLLM max_num_seqs).
        #[arg(long, default_value_t = 256)]
        max_seqs: u64,
        /// Serving: price every token count exactly instead of interpolating on a grid.
        #[arg(long)]
        exact: bool,
        /// PIM units beside the xPU, replacing the architecture's `[pim]`: a PIM preset
        /// (logic_pim, bankgroup_pim, bank_pim), or `none` for the xPU alone.
        #[arg(long)]
        pim: Option<String>,
        /// Price every GPU op at its roofline (max of FLOPs over the dense peak and bytes over
        /// the HBM pin rate, no launches) and PIM paths at their peak: the assumptions of
        /// Duplex's simulator and other analytical LLM simulators, for cross-checks. Not a
        /// prediction of a GPU.
        #[arg(long)]
        roofline: bool,
        #[arg(long)]
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
    ///
    /// Writes to target/crosscheck/ unless --out says otherwise, so a run never overwrites the
    /// committed reports/crosscheck/ by default; pass `--out reports/crosscheck` to refresh them.
    Crosscheck {
        /// Output directory for <gpu>_measured.csv/.md, <gpu>.csv, <gpu>.md and the plots, where
        /// <gpu> is the preset of the GPU found (default: target/crosscheck, outside the
        /// committed reports/).
        #[arg(long)]
        out: Option<String>,
        /// The preset to compare with (default: the one for the GPU found, h100 or h200); a
        /// preset for another GPU than the one found is refused.
        #[arg(long)]
        arch: Option<String>,
    },
    /// Simulate DRAM cycle by cycle on a synthetic workload or a Ramulator load/store trace.
    Dram {
        /// A preset (hbm3_h100, hbm3e_h200, ddr5_4800, lpddr5_6400, …) or a TOML file.
        #[arg(long, default_value = "hbm3_h100")]
        memory: String,
        /// `stream`, `random` or `conflict` (one bank, a new row each request).
        #[arg(long, default_value = "stream")]
        pattern: String,
        /// A Ramulator 2.0 load/store trace (`LD 0x…` / `ST 0x…` lines) instead of a pattern;
        /// one access offered per memory cycle, as Ramulator's front end does.
        #[arg(long, conflicts_with = "pattern")]
        trace: Option<String>,
        /// Bytes the pattern touches (stream) or draws from (random).
        #[arg(long, default_value = "64 MiB")]
        bytes: String,
        /// Requests (random, conflict).
        #[arg(long, default_value_t = 200_000)]
        requests: u64,
        /// Bytes per request, e.g. "64 B".
        #[arg(long, default_value = "64 B")]
        size: String,
        /// Fraction of requests that read.
        #[arg(long, default_value_t = 1.0)]
        read: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        json: bool,
    },
    /// Simulate a NAND-flash SSD on a closed-loop synthetic workload, event by event.
    Flash {
        /// A preset (ssd980pro, mqsim_default, cambricon_llm) or a TOML file.
        #[arg(long, default_value = "ssd980pro")]
        drive: String,
        /// `sequential` or `random`.
        #[arg(long, default_value = "random")]
        pattern: String,
        /// Fraction of requests that read (1 = reads only, 0 = writes only).
        #[arg(long, default_value_t = 1.0)]
        read: f64,
        /// Bytes per request, e.g. "4 KiB", "128 KiB".
        #[arg(long, default_value = "4 KiB")]
        size: String,
        /// Requests outstanding at once.
        #[arg(long, default_value_t = 32)]
        qd: u32,
        /// Requests in all.
        #[arg(long, default_value_t = 100_000)]
        requests: u64,
        /// Bytes of the logical space the requests fall in (default: all of it).
        #[arg(long)]
        span: Option<String>,
        /// Seed of the random addresses and the read/write draw.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        json: bool,
    },
    /// Run the reference interpreter on random inputs of a small instance; print checksums.
    Eval {
        /// A .ein file, or a built-in cascade name.
        cascade: String,
        /// Rank extents, e.g. `--set M=8 --set M0=2` (unset ranks: 4; split parts and window
        /// ranks: derived).
        #[arg(long = "set", value_name = "RANK=N")]
        set: Vec<String>,
        /// Seed of the random inputs (uniform in [-1, 1)).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

use crate::commands::map::load_checked as load_cascade;

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        None => default_job(),
        Some(Command::Check { cascade, json }) => {
            let (name, text) = crate::commands::check::load_source(&cascade)?;
            let (report, checked) = crate::commands::check::check(&name, &text);
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
                return match checked {
                    Ok(_) => Ok(()),
                    Err(e) => Err(anyhow::anyhow!("{e}")),
                };
            }
            let c = checked.map_err(|e| anyhow::anyhow!("{e}"))?;
            if !c.warnings.is_empty() {
                eprintln!("{}", c.render_warnings());
            }
            out!("{}", crate::commands::check::render_text(&c));
            Ok(())
        }
        Some(Command::Analyze { workload, json }) => {
            let w = Workload::load(&workload)?;
            let r = analyze_workload(&w)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                out!("{}", render_text(&r));
            }
            Ok(())
        }
        Some(Command::Reproduce {
            paper,
            out,
            seq,
            json,
            study,
        }) => {
            if paper == "duplex" {
                if !seq.is_empty() || study.is_some() {
                    bail!("reproduce duplex: --seq and --study are FuseMax's options");
                }
                let t = std::time::Instant::now();
                let d = crate::reproduce_duplex::run_all()?;
                let dir = out.map_or_else(
                    || std::path::PathBuf::from("reports/duplex"),
                    std::path::PathBuf::from,
                );
                crate::reproduce_duplex::write_reports(
                    &d.rows, &d.serving, &d.cross, &d.summary, &dir,
                )?;
                if json {
                    outln!("{}", serde_json::to_string_pretty(&d.summary)?);
                } else {
                    outln!(
                        "reproduce duplex: {} static runs, {} served, {} cross-checked in {:.1} s; reports in {}",
                        d.rows.len(),
                        d.serving.len(),
                        d.cross.len(),
                        t.elapsed().as_secs_f64(),
                        dir.display()
                    );
                    outln!("{}", crate::reproduce_duplex::headline(&d.summary));
                }
                return Ok(());
            }
            if paper != "fusemax" {
                bail!("unknown paper `{paper}` (known: fusemax, duplex)");
            }
            let t = std::time::Instant::now();
            let st = crate::reproduce::fusemax_study(study.as_deref())?;
            let rows = crate::reproduce::run_study(
                &st,
                if seq.is_empty() { None } else { Some(&seq) },
                "reproduce fusemax",
            )?;
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
                outln!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            outln!("FuseMax reproduction: {} mapped points ({} models × seq × 3 designs), {evals} mappings evaluated in {secs:.2} s ({:.0}/s)", rows.len(), crate::workload::FUSEMAX_MODELS.len(), evals as f64 / secs.max(1e-9));
            if crate::reproduce::is_subset(&seq) {
                outln!("a subset of the sequence lengths: means are over its points only; figures it does not give are n/a");
            }
            out!("{}", crate::reproduce::render_summary(&s));
            outln!("reports written to {}/ (results.csv, headline.csv, summary.md, speedup/energy_ratio/utilization .png/.svg)", dir.display());
            Ok(())
        }
        Some(Command::Dram {
            memory,
            pattern,
            trace,
            bytes,
            requests,
            size,
            read,
            seed,
            json,
        }) => {
            use crate::dram::{DramSpec, Injection, Pattern, SimOptions, Workload};
            let spec = if crate::dram::PRESETS.iter().any(|(n, _)| *n == memory) {
                DramSpec::preset(&memory).map_err(|e| anyhow::anyhow!("--memory: {e}"))?
            } else if Path::new(&memory).exists() {
                let text = std::fs::read_to_string(&memory)
                    .with_context(|| format!("reading {memory}"))?;
                DramSpec::from_toml(&text).map_err(|e| anyhow::anyhow!("{memory}: {e}"))?
            } else {
                let names: Vec<&str> = crate::dram::PRESETS.iter().map(|(n, _)| *n).collect();
                bail!(
                    "--memory: `{memory}` is neither a preset ({}) nor a file",
                    names.join(", ")
                );
            };
            let parse_bytes = |arg: &str, v: &str| -> Result<u64> {
                let b: cascade_arch::Bytes =
                    v.parse().map_err(|e| anyhow::anyhow!("{arg}: {e}"))?;
                Ok(b.si() as u64)
            };
            let out = if let Some(path) = trace {
                let opts = SimOptions {
                    log: false,
                    injection: Injection::PerCycle(1),
                };
                crate::dram::run_trace(&spec, Path::new(&path), &opts)
                    .map_err(|e| anyhow::anyhow!("{e}"))?
            } else {
                if !(0.0..=1.0).contains(&read) {
                    bail!("--read: must be in [0, 1], got {read}");
                }
                let request_bytes = parse_bytes("--size", &size)?;
                if request_bytes == 0 {
                    bail!("--size: must be at least 1 byte");
                }
                let span = parse_bytes("--bytes", &bytes)?;
                if requests == 0 || span < request_bytes {
                    bail!("--requests and --bytes: at least one request of --size");
                }
                let p = match pattern.as_str() {
                    "stream" => Pattern::Streaming { bytes: span },
                    "random" => Pattern::Random {
                        footprint: span,
                        requests,
                    },
                    "conflict" => Pattern::BankConflict { requests },
                    p => bail!("--pattern: `{p}` (expected stream, random or conflict)"),
                };
                let w = Workload::new(p)
                    .request_bytes(request_bytes)
                    .read_fraction(read)
                    .seed(seed);
                crate::dram::run_workload(&spec, &w, &SimOptions::default())
                    .map_err(|e| anyhow::anyhow!("{memory}: {e}"))?
            };
            let r = out.report;
            if json {
                outln!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.1}"));
                outln!(
                    "{}: {} accesses ({} reads, {} writes) in {} cycles ({:.1} us)",
                    r.memory,
                    r.accesses,
                    r.reads,
                    r.writes,
                    r.cycles,
                    r.time_ns / 1e3
                );
                outln!(
                    "  {:.1} GB/s ({:.1}% of {:.1}); read latency mean {} ns, p50 {}, p99 {}, max {}",
                    r.bandwidth_gb_s, r.bandwidth_fraction * 100.0, r.peak_bandwidth_gb_s,
                    f(r.read_latency.mean_ns), f(r.read_latency.p50_ns), f(r.read_latency.p99_ns), f(r.read_latency.max_ns)
                );
                outln!(
                    "  rows: {:.1}% hits, {:.1}% misses, {:.1}% conflicts; {} refreshes; {:.2} pJ/bit",
                    r.row_hit_rate * 100.0, r.row_miss_rate * 100.0, r.row_conflict_rate * 100.0,
                    r.refreshes, r.energy.pj_per_bit
                );
            }
            Ok(())
        }
        Some(Command::Flash {
            drive,
            pattern,
            read,
            size,
            qd,
            requests,
            span,
            seed,
            json,
        }) => {
            let spec = if crate::flash::PRESETS.iter().any(|(n, _)| *n == drive) {
                crate::flash::preset(&drive).map_err(|e| anyhow::anyhow!(e))?
            } else if Path::new(&drive).exists() {
                let text =
                    std::fs::read_to_string(&drive).with_context(|| format!("reading {drive}"))?;
                crate::flash::FlashSpec::from_toml(&text, &drive).map_err(|e| anyhow::anyhow!(e))?
            } else {
                let names: Vec<&str> = crate::flash::PRESETS.iter().map(|(n, _)| *n).collect();
                bail!(
                    "--drive: `{drive}` is neither a preset ({}) nor a file",
                    names.join(", ")
                );
            };
            let pattern = match pattern.as_str() {
                "sequential" | "seq" => crate::flash::Pattern::Sequential,
                "random" | "rand" => crate::flash::Pattern::Random,
                p => bail!("--pattern: `{p}` (expected sequential or random)"),
            };
            let bytes = |arg: &str, v: &str| -> Result<u64> {
                let b: cascade_arch::Bytes =
                    v.parse().map_err(|e| anyhow::anyhow!("{arg}: {e}"))?;
                Ok(b.si() as u64)
            };
            let work = crate::flash::Workload {
                pattern,
                read_fraction: read,
                request_bytes: bytes("--size", &size)?,
                queue_depth: qd,
                requests,
                span_bytes: span
                    .as_deref()
                    .map(|v| bytes("--span", v))
                    .transpose()?
                    .unwrap_or(0),
                seed,
            };
            let r = crate::flash::run(&spec, &work).map_err(|e| anyhow::anyhow!("{drive}: {e}"))?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                outln!(
                    "{}: {} requests ({} reads, {} writes) of {} bytes at depth {}, {:?}",
                    r.drive,
                    r.requests,
                    r.reads,
                    r.writes,
                    work.request_bytes,
                    qd,
                    pattern
                );
                outln!(
                    "  {:.1} kIOPS, {:.1} MB/s; latency mean {:.1} us, p50 {:.1}, p99 {:.1}, max {:.1}",
                    r.kiops, r.bandwidth_mb_s, r.latency_mean_us, r.latency_p50_us, r.latency_p99_us, r.latency_max_us
                );
                outln!(
                    "  array reads {} (translation {}), programs {}, multi-plane {}; dies {:.0}% busy, link {:.0}% / {:.0}% (out / in)",
                    r.array_reads, r.translation_reads, r.array_programs, r.multi_plane_ops,
                    r.die_utilisation * 100.0, r.host_utilisation_d2h * 100.0, r.host_utilisation_h2d * 100.0
                );
            }
            Ok(())
        }
        Some(Command::Sweep {
            args,
            out,
            shard,
            study,
            front,
            json,
        }) => crate::commands::sweep::command(
            &args,
            out.as_deref(),
            shard.as_deref(),
            study.as_deref(),
            front.as_deref(),
            json,
        ),
        Some(Command::Infer {
            workload,
            arch,
            batch,
            prompt,
            generate,
            devices,
            tp,
            pp,
            ep,
            link,
            rate,
            requests,
            trace,
            seed,
            chunked_prefill,
            token_budget,
            max_seqs,
            exact,
            weights_on,
            kv_on,
            host_link,
            host_memory,
            ssd,
            pim,
            roofline,
            json,
        }) => {
            let mut a = load_arch(&arch)?;
            crate::commands::infer::set_pim(&mut a, pim.as_deref())?;
            let tiers = crate::commands::infer::tiers(
                &weights_on,
                &kv_on,
                &host_link,
                host_memory.as_deref(),
                ssd.as_deref(),
            )?;
            let link = match link.or_else(|| a.interconnect.clone()) {
                Some(l) => Some(cascade_arch::Link::load(&l)?),
                None => None,
            };
            let par = crate::infer::Parallel {
                devices,
                tp,
                pp,
                ep,
            };
            if rate.is_some() || trace.is_some() {
                if tiers.is_some() {
                    anyhow::bail!("--weights-on/--kv-on: offloading is not modelled for serving (--rate, --trace)");
                }
                let reqs = match (&trace, rate) {
                    (Some(path), _) => {
                        let text = std::fs::read_to_string(path)
                            .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
                        crate::infer::parse_trace(&text, path).map_err(anyhow::Error::msg)?
                    }
                    (None, Some(r)) => crate::infer::poisson(requests, r, prompt, generate, seed)
                        .map_err(anyhow::Error::msg)?,
                    (None, None) => unreachable!("checked above"),
                };
                let cfg = crate::infer::ServeConfig {
                    max_seqs,
                    token_budget,
                    chunked: chunked_prefill,
                    exact,
                    ..Default::default()
                };
                let r = crate::commands::infer::serve(&workload, &a, par, link, &reqs, &cfg)?;
                if json {
                    outln!("{}", serde_json::to_string_pretty(&r)?);
                } else {
                    write_out(&crate::commands::infer::render_serve(&r))?;
                }
                return Ok(());
            }
            let r = crate::commands::infer::infer(
                &workload,
                &a,
                crate::infer::StaticRun {
                    batch,
                    prompt,
                    generate,
                },
                par,
                link,
                tiers,
                roofline,
            )?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                write_out(&crate::commands::infer::render(&r))?;
            }
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
                outln!("{}", serde_json::to_string_pretty(&est)?);
            } else {
                // Bounds and kernel names spelled as in the JSON (`Bound::name`).
                outln!(
                    "{op}: {:.4e} s ({}-bound) on {}",
                    est.seconds,
                    est.bound,
                    a.name
                );
                for k in &est.kernels {
                    outln!(
                        "  {:<16} {:.4e} s  {:<7}  {} CTAs in {} waves",
                        k.name,
                        k.seconds,
                        k.bound,
                        k.ctas,
                        k.waves
                    );
                }
            }
            Ok(())
        }
        Some(Command::Crosscheck { out, arch }) => crosscheck(
            Path::new(out.as_deref().unwrap_or(CROSSCHECK_DEFAULT_OUT)),
            arch.as_deref(),
        ),
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
            let target = map::Target {
                workload: workload.as_deref(),
                cascade: cascade.as_deref(),
                set: &set,
                phase: phase.as_deref(),
                batch,
                seq,
                dtype_bytes,
                skew,
            };
            let a = load_arch(&arch)?;
            if a.gpu.is_some() {
                return gpu_map(
                    &a,
                    &target,
                    &GpuMapOptions {
                        objective: objective.as_deref(),
                        fusion: fusion.as_deref(),
                        constraints: constraints.as_deref(),
                        save: save.as_deref(),
                        seed,
                        budget,
                    },
                    json,
                );
            }
            let objective = objective.unwrap_or_else(|| "latency".into());
            let obj = map::check_objective(&objective)?;
            let fusion = map::check_fusion(fusion.as_deref().unwrap_or("search"))?;
            let (seed, budget) = (seed.unwrap_or(1), budget.unwrap_or(200_000));
            if budget == 0 {
                bail!("--budget 0: give at least one evaluation");
            }
            let cons = map::load_constraints(constraints.as_deref())?;
            let (label, insts) = map::instances(&target)?;
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
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "target": label, "arch": a.name, "instances": mapped,
                        "total_latency_s": total,
                        "evaluations": evals, "seconds": secs,
                        "evaluations_per_s": evals as f64 / secs.max(1e-9)
                    }))?
                );
            } else {
                outln!("mapped {label} onto {} — objective {objective}", a.name);
                for m in &mapped {
                    match &m.result {
                        Ok(x) => {
                            report_head(&m.role, &x.report, m.count)?;
                            outln!(
                                "  {:<12} {} evaluations of a mapspace of {:.3e} plans ({:.2e} covered); stopped: {}",
                                "", x.evaluations, x.space_size, x.coverage, x.stop.join("; ")
                            );
                        }
                        Err(e) => outln!("  {:<12} {:<18} not mapped: {e}", m.role, m.cascade),
                    }
                }
                let repeats = occurrences_note(mapped.iter().map(|m| (m.result.is_ok(), m.count)));
                if !ok.is_empty() {
                    outln!(
                        "mapped total {total:.4e} s ({} of {} cascades{repeats}); {evals} mappings evaluated in {secs:.2} s ({:.0}/s)",
                        ok.len(),
                        mapped.len(),
                        evals as f64 / secs.max(1e-9)
                    );
                }
                if let [(_, m)] = ok.as_slice() {
                    outln!("\nbest mapping:\n{}", m.mapping.to_toml()?);
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
            cycle,
            memory,
            ideal_dram,
            json,
        }) => {
            let (m, text) = cascade_mappings::Mapping::load(Path::new(&mapping))?;
            let a = load_arch(arch.as_deref().unwrap_or(&m.arch))?;
            if cycle {
                let preset = if ideal_dram {
                    None
                } else {
                    memory.or_else(|| a.levels.first().and_then(|l| l.memory.clone()))
                };
                let spec = match &preset {
                    Some(name) => Some(
                        crate::dram::DramSpec::preset(name)
                            .map_err(|e| anyhow::anyhow!("--memory {name}: {e}"))?,
                    ),
                    None => None,
                };
                let r =
                    crate::commands::map::simulate_cycle(&m, &text, &mapping, &a, spec.as_ref())?;
                if json {
                    outln!("{}", serde_json::to_string_pretty(&r)?);
                } else {
                    outln!(
                        "{} on {} (DRAM: {}): cycle engine {:.6e} cycles ({:.4e} s), analytical {:.6e} ({:+.2}%)",
                        r.cascade,
                        r.arch,
                        r.memory,
                        r.cycles,
                        r.latency_s,
                        r.analytical_cycles,
                        100.0 * r.difference
                    );
                    for (i, g) in r.groups.iter().enumerate() {
                        outln!(
                            "  group {i} [{}]: {:.6e} cycles vs {:.6e} ({:+.2}%); {} steps{}, work {:.4e}, stalls {:.4e}, fill {:.4e}, drain {:.4e}, root port {:.1}% busy",
                            g.einsums.join(" "),
                            g.cycles,
                            g.analytical_cycles,
                            100.0 * g.difference,
                            g.steps,
                            if g.folded_loops > 0 {
                                format!(" ({} innermost loops folded)", g.folded_loops)
                            } else {
                                String::new()
                            },
                            g.work_cycles,
                            g.stall_cycles,
                            g.fill_cycles,
                            g.drain_cycles,
                            100.0 * g.root_utilization
                        );
                        for m in &g.moves {
                            outln!(
                                "    {:<10} {:<8} read in at {:>6} steps ({:.4e} B), written out after {:>6} ({:.4e} B)",
                                m.tensor,
                                m.pattern,
                                m.reads,
                                m.read_bytes,
                                m.writes,
                                m.write_bytes
                            );
                        }
                        if let Some(d) = &g.dram {
                            outln!(
                                "    DRAM {}: {:.1}% of peak on {} of {} accesses, row hits {:.1}%, conflicts {:.1}%, {} refreshes, mean read {:.1} ns; adds {:.4e} cycles ({:+.2}%) to ideal timing",
                                d.memory,
                                100.0 * d.efficiency,
                                d.accesses_simulated,
                                d.accesses_total,
                                100.0 * d.row_hit_rate,
                                100.0 * d.row_conflict_rate,
                                d.refreshes,
                                d.mean_read_latency_ns,
                                d.added_cycles,
                                100.0 * d.added_cycles / d.ideal_cycles.max(1e-300)
                            );
                        }
                    }
                }
                return Ok(());
            }
            let r = crate::commands::map::simulate(&m, &text, &mapping, &a)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                outln!("{}", crate::commands::map::summary_line(&m.cascade, &r));
                for t in &r.traffic {
                    outln!(
                        "  {:<14} {:<6} reads {:>12.0}  fills {:>12.0}  updates {:>12.0}",
                        t.level,
                        t.tensor,
                        t.reads,
                        t.fills,
                        t.updates
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
            out!(
                "{}",
                parity::render(&results)
                    .split("\n\n###")
                    .next()
                    .unwrap_or("")
            );
            outln!("\nreports written to {out}/ (summary.md, results.csv)");
            Ok(())
        }
        Some(Command::Regress {
            baseline,
            update,
            json,
            only,
        }) => {
            use crate::commands::regress;
            for o in &only {
                if !regress::REPRODUCTIONS.contains(&o.as_str()) {
                    bail!(
                        "--only {o}: no such reproduction (covered: {})",
                        regress::REPRODUCTIONS.join(", ")
                    );
                }
            }
            let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
            // The baseline is checked before the (minutes-long) reproductions run.
            let b = if update {
                None
            } else {
                Some(regress::load_baseline(Path::new(&baseline))?)
            };
            let fusemax_rows_file = "reports/fusemax/results.csv";
            let duplex_rows_file = "reports/duplex/results.csv";
            let fusemax = if wanted("fusemax") {
                Some(crate::reproduce::run_labelled(None, "regress")?)
            } else {
                None
            };
            let duplex = if wanted("duplex") {
                eprintln!("regress: duplex (static grid, serving, cross-check)…");
                Some(crate::reproduce_duplex::run_all()?)
            } else {
                None
            };
            let Some(b) = b else {
                let (Some(rows), Some(d)) = (&fusemax, &duplex) else {
                    bail!("--update writes every reproduction");
                };
                let nb = regress::baseline_of(&[
                    ("fusemax", regress::figures_of(rows), fusemax_rows_file),
                    (
                        "duplex",
                        regress::duplex_figures(&d.summary),
                        duplex_rows_file,
                    ),
                ]);
                std::fs::write(&baseline, toml::to_string_pretty(&nb)?)
                    .with_context(|| format!("{baseline}: cannot write"))?;
                std::fs::write(fusemax_rows_file, crate::reproduce::rows_csv(rows))
                    .with_context(|| format!("{fusemax_rows_file}: cannot write"))?;
                std::fs::write(
                    duplex_rows_file,
                    crate::reproduce_duplex::static_csv(&d.rows),
                )
                .with_context(|| format!("{duplex_rows_file}: cannot write"))?;
                outln!("wrote {baseline}, {fusemax_rows_file} and {duplex_rows_file}");
                return Ok(());
            };
            let mut regs = Vec::new();
            let mut text = String::new();
            for (name, base) in &b.reproductions {
                let text_rows = std::fs::read_to_string(&base.rows).ok();
                let (r, found) = match name.as_str() {
                    "fusemax" => {
                        let Some(rows) = &fusemax else { continue };
                        let reference = text_rows
                            .map(|t| crate::reproduce::parse_rows_csv(&t, &base.rows))
                            .transpose()?;
                        (
                            regress::regression(
                                name,
                                rows,
                                base,
                                reference.as_deref(),
                                &crate::reproduce::FUSEMAX_DESIGNS,
                            ),
                            reference.is_some(),
                        )
                    }
                    _ => {
                        let Some(d) = &duplex else { continue };
                        let reference = text_rows
                            .map(|t| crate::reproduce_duplex::parse_static_csv(&t, &base.rows))
                            .transpose()?;
                        (
                            regress::regression_duplex(d, base, reference.as_deref()),
                            reference.is_some(),
                        )
                    }
                };
                text += &regress::render(&r, found);
                regs.push(r);
            }
            let ok = regs.iter().all(|r| r.pass);
            if json {
                let v = regress::regress_json(&baseline, &regs);
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                out!("{text}");
            }
            if !ok {
                bail!("modeled figures drifted from {baseline}");
            }
            if !json {
                outln!("no drift beyond tolerance");
            }
            Ok(())
        }
        Some(Command::Eval {
            cascade,
            set,
            seed,
            json,
        }) => {
            let c = load_cascade(&cascade)?;
            let r = crate::commands::eval::eval(&c.cascade, &set, seed)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                out!("{}", crate::commands::eval::render_text(&r));
            }
            Ok(())
        }
    }
}

/// The spatial mapper's options as given on the command line (`None`: not given).
struct GpuMapOptions<'a> {
    objective: Option<&'a str>,
    fusion: Option<&'a str>,
    constraints: Option<&'a str>,
    save: Option<&'a str>,
    seed: Option<u64>,
    budget: Option<u64>,
}

/// `cascade map` on a GPU architecture: each cascade lowered to GPU ops and estimated as
/// `cascade estimate` does (`commands::gpu_map`); the spatial mapper's options that have no
/// meaning there are refused, not ignored.
fn gpu_map(
    a: &cascade_arch::Architecture,
    target: &crate::commands::map::Target,
    o: &GpuMapOptions,
    json: bool,
) -> Result<()> {
    use crate::commands::{gpu_map, map};
    let name = &a.name;
    if let Some(obj) = o.objective {
        if map::check_objective(obj)? != cascade_mappings::Objective::Latency {
            bail!("--objective {obj}: on a GPU architecture ({name}) each kernel's mapping is searched for latency only (the GPU model prices no on-chip energy)");
        }
    }
    if let Some(f) = o.fusion {
        bail!("--fusion {f}: on a GPU architecture ({name}) a cascade runs as the kernels eager PyTorch launches for it (attention as one fused kernel); fusion is not searched");
    }
    if let Some(c) = o.constraints {
        bail!("--constraints {c}: constraints pin the spatial mapper's loop nests; a GPU architecture ({name}) maps each kernel (CTA tile, stages, warps, split-K) by its own search");
    }
    if let Some(d) = o.save {
        bail!("--save {d}: a GPU architecture ({name}) has no mapping TOML to save (`simulate` replays spatial mappings); --json prints each op's kernel mappings");
    }
    if let Some(s) = o.seed {
        bail!("--seed {s}: the GPU kernel search ({name}) tries every candidate and has no random choices");
    }
    if let Some(b) = o.budget {
        bail!("--budget {b}: the GPU kernel search ({name}) tries every candidate; it takes no budget");
    }
    let (label, insts) = map::instances(target)?;
    let t = std::time::Instant::now();
    let mapped = gpu_map::map_instances_gpu(&insts, a)?;
    let secs = t.elapsed().as_secs_f64();
    let ok: Vec<&gpu_map::GpuMapped> = mapped
        .iter()
        .filter_map(|m| m.result.as_ref().ok())
        .collect();
    // Repeated instances (a layer list's `count`) each run once per occurrence.
    let total: f64 = mapped
        .iter()
        .filter_map(|m| {
            let r = m.result.as_ref().ok()?;
            Some(m.count as f64 * r.report.latency_s)
        })
        .sum();
    let ops: usize = ok.iter().map(|m| m.ops.len()).sum();
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "target": label, "arch": a.name, "model": "gpu", "instances": mapped,
                "total_latency_s": total, "seconds": secs,
            }))?
        );
    } else {
        outln!(
            "mapped {label} onto {name} — GPU model: each cascade as the kernels eager PyTorch launches, each op modelled as its library runs it (impl= defaults: cuBLAS, cuDNN, ATen), as `cascade estimate` does"
        );
        for m in &mapped {
            match &m.result {
                Ok(x) => {
                    report_head(&m.role, &x.report, m.count)?;
                    for op in &x.ops {
                        // The canonical op: its implementation (the library whose kernel is
                        // modelled) shows.
                        outln!(
                            "  {:<12} {:<66} {:.4e} s  {:<7}  ({})",
                            "",
                            op.estimate.op,
                            op.estimate.seconds,
                            op.estimate.bound,
                            op.einsums.join(" ")
                        );
                    }
                }
                Err(e) => outln!("  {:<12} {:<18} {e}", m.role, m.cascade),
            }
        }
        let repeats = occurrences_note(mapped.iter().map(|m| (m.result.is_ok(), m.count)));
        if !ok.is_empty() {
            outln!(
                "mapped total {total:.4e} s ({} of {} cascades{repeats}); {ops} ops estimated in {secs:.2} s; energy: HBM accesses only (the GPU model counts no on-chip accesses)",
                ok.len(),
                mapped.len(),
            );
        }
    }
    if ok.is_empty() {
        bail!("no cascade could be lowered onto {name}");
    }
    Ok(())
}

/// An architecture from a TOML file or a preset name.
pub fn load_arch(arg: &str) -> Result<cascade_arch::Architecture> {
    if Path::new(arg).exists() {
        Ok(cascade_arch::Architecture::load(arg)?)
    } else {
        cascade_arch::preset(arg).map_err(|e| anyhow::anyhow!("{arg}: no such file, and {e}"))
    }
}

/// Where `cascade crosscheck` writes without `--out`: outside the committed reports/.
pub const CROSSCHECK_DEFAULT_OUT: &str = "target/crosscheck";

#[cfg(feature = "cuda")]
fn crosscheck(out: &Path, arch: Option<&str>) -> Result<()> {
    eprintln!("crosscheck: writing to {}/", out.display());
    crate::commands::crosscheck::main_crosscheck(out, arch)
        .map_err(|e| anyhow::anyhow!("crosscheck: {e}"))
}

#[cfg(not(feature = "cuda"))]
fn crosscheck(_out: &Path, arch: Option<&str>) -> Result<()> {
    if let Some(a) = arch {
        // Refuse what can be refused without a GPU: a preset that is no GPU's.
        let spec = load_arch(a)?;
        if spec.gpu.is_none() {
            bail!("--arch {a}: `{}` has no [gpu] section", spec.name);
        }
    }
    bail!("crosscheck needs the CUDA backend: this binary was built without it; build with `cargo build --release --features cuda` and run on a machine with an NVIDIA GPU")
}

/// `cascade` with no arguments: reproduce FuseMax's attention results by search (all
/// four models, six sequence lengths, three designs) and write reports/fusemax/.
fn default_job() -> Result<()> {
    outln!(
        "cascade: no command given — reproducing FuseMax (MICRO'24) attention results by search:"
    );
    outln!("FuseMax, FLAT and an unfused baseline mapped by the mapper for BERT-Base, TrXL-wt103, T5-small");
    outln!("and XLM at 1K–1M tokens (batch 64). `cascade --help` lists the other commands.\n");
    run(Cli {
        command: Some(Command::Reproduce {
            paper: "fusemax".into(),
            out: None,
            seq: vec![],
            json: false,
            study: None,
        }),
    })
}

/// `, N occurrences` when the mapped cascades (`(mapped, count)` per instance) occur more often
/// than once each in the workload, else nothing: the summary line of `map`, spatial or GPU.
fn occurrences_note(instances: impl Iterator<Item = (bool, u64)>) -> String {
    let (mut ok, mut occurrences) = (0u64, 0u64);
    for (mapped, count) in instances {
        if mapped {
            ok += 1;
            occurrences += count;
        }
    }
    if occurrences != ok {
        format!(", {occurrences} occurrences")
    } else {
        String::new()
    }
}

/// A mapped cascade's summary line, and how often it occurs when more than once: `map`'s
/// per-cascade head, spatial or GPU.
fn report_head(role: &str, report: &cascade_mappings::report::Report, count: u64) -> Result<()> {
    outln!("  {}", crate::commands::map::summary_line(role, report));
    if count > 1 {
        outln!(
            "  {:<12} occurs {count} times: {:.4e} s in all",
            "",
            count as f64 * report.latency_s
        );
    }
    Ok(())
}
