//! A cycle-level DRAM timing model (issue 11, item 2): channels with pseudo-channels, ranks,
//! bank groups and banks with row buffers (open or closed page); JEDEC command timing (tRCD,
//! tRP, tRAS, tRC, tCL, tCWL, tCCD_S/L, tRRD_S/L, tFAW, tWTR_S/L, tRTP, tWR, tRTW, tREFI,
//! tRFC, tRFCpb, tRREFD); all-bank or per-bank refresh; an FR-FCFS controller per channel with
//! read and write queues and watermark write draining (row-hit-first, or Ramulator 2.0's
//! first-ready variant with its activated-request buffer); a configurable address mapping;
//! energy per ACT, RD, WR, REF and I/O bit.
//!
//! - [`DramSpec`] (`spec.rs`): the TOML description, validated field by field; the presets
//!   live in `arch/memory/*.toml` ([`PRESETS`], [`DramSpec::preset`]).
//! - [`AddressMapping`] (`mapping.rs`): Ramulator-style field strings (`RoBaRaCoCh`, ...).
//! - `model.rs`: the controllers and the front end ([`simulate`], [`SimOptions`],
//!   [`Injection`]); the optional [`CommandLog`].
//! - [`check_log`] (`check.rs`): an independent replay of a command log against the timing
//!   rules.
//! - `frontend.rs`: Ramulator 2.0's load/store traces ([`TraceReader`], [`run_trace`]) and
//!   synthetic [`Workload`]s (streaming, random, read/write mixes, bank conflicts).
//! - [`SustainedRates`] (`sustained.rs`): the rates a preset sustains on the streams a GPU's L2
//!   sends it (reads, writes, copies), which the GPU models take as their HBM bandwidth.
//! - [`DramReport`] (`report.rs`): bandwidth, read latency (via [`crate::engine::Stats`]),
//!   row hits, commands, refreshes and energy, in total and per channel.
//!
//! **What is modelled, and what is not.** A channel has one controller: a read and a write
//! queue (sizes per pseudo-channel, or per channel), FR-FCFS over the queue being served
//! (`scheduler`: `row_hit_first`, or `first_ready` with an optional activated buffer, see
//! [`Scheduler`]), one command per cycle on its command bus, or one row and one column command
//! with a split bus (HBM's separate row and column buses; `commands_per_cycle = 1` keeps one
//! per cycle); each pseudo-channel has its own data bus and banks. A command holds its bus one
//! cycle, an ACT `act_command_cycles` and a RD/WR `column_command_cycles` (DDR5's two-cycle
//! commands, HBM's two-cycle ACT). Refresh is per rank (per pseudo-channel's rank
//! for HBM), either all-bank (at each tREFI the rank stops taking new commands, precharges
//! with PREA and refreshes with REF for tRFC; DDR5, LPDDR5) or per-bank (every tREFI / banks
//! one bank, in turn, is precharged and refreshed with REFpb for tRFCpb while the others keep
//! working, tRREFD between it and the rank's next REFpb or ACT; HBM3's REFpb), or, for peer
//! comparison only, none (`RefreshMode::None`). The controller never postpones a refresh; the
//! checker accepts JEDEC's postponement allowance. Not modelled: DDR5 same-bank refresh,
//! tPPD, HBM's SID timing (SIDs are folded into banks), LPDDR5's CAS/WCK-sync command, power-down
//! and background power, ECC, the command queue / PHY delays of a real controller. Reads that
//! find their address in the write queue are answered from it (as Ramulator's generic
//! controller does) and move no DRAM data.
//!
//! **Checked against Ramulator 2.0.** `tests/golden_ramulator.rs` runs the twelve traces
//! Ramulator 2.0 (v2.0a) was recorded on (`reports/golden/ramulator2/`) through the presets
//! `ddr5_3200_ramulator` and `hbm3_2gbps_ramulator`, which set the options above the way
//! Ramulator's generic controller works, and renders `reports/memory/ramulator.md`.
//!
//! Deterministic: no hash maps, no wall clock; the random workloads draw from seeded ChaCha8
//! streams; channels are visited in index order and requests age by arrival sequence.

mod check;
mod frontend;
mod mapping;
mod model;
mod report;
mod spec;
pub mod sustained;
#[cfg(test)]
mod tests;

pub use check::{check_log, Violation};
pub use frontend::{Generator, Pattern, TraceError, TraceReader, Workload};
pub use mapping::{AddressMapping, Field, Location};
pub use model::{Access, Command, CommandKind, CommandLog, Injection, SimOptions};
pub use report::{ChannelReport, CommandCounts, DramReport, EnergyReport, Latency};
pub use spec::{
    CommandBus, Controller, DramSpec, Energy, Organization, PagePolicy, QueueScope, Refresh,
    RefreshMode, Scheduler, SpecError, Timing, PRESETS,
};
pub use sustained::SustainedRates;

use std::path::Path;

/// A run's report and, if [`SimOptions::log`] asked for it, its command log.
#[derive(Debug, Clone)]
pub struct DramOutput {
    pub report: DramReport,
    pub log: Option<CommandLog>,
}

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DramError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Trace { path: String, source: TraceError },
}

/// Runs `accesses` through the memory `spec` describes (validated first).
pub fn simulate<I: IntoIterator<Item = Access>>(
    spec: &DramSpec,
    accesses: I,
    opts: &SimOptions,
) -> Result<DramOutput, SpecError> {
    spec.validate()?;
    let run = model::run(spec, accesses.into_iter(), opts);
    Ok(DramOutput {
        report: DramReport::new(spec, &run),
        log: run.log,
    })
}

/// Runs a synthetic workload.
pub fn run_workload(
    spec: &DramSpec,
    workload: &Workload,
    opts: &SimOptions,
) -> Result<DramOutput, SpecError> {
    spec.validate()?;
    simulate(spec, workload.accesses(spec), opts)
}

/// Runs a Ramulator 2.0 load/store trace file (see [`TraceReader`]). Ramulator's trace front
/// end offers one access per front-end tick; pass `Injection::PerCycle(1)` to match it (at a
/// front-end clock equal to the memory's command clock; Ramulator 2.1's HBM3 ticks twice per
/// CK, `PerCycle(2)`; a front-end clock n times slower, `Every(n)`). Differences to keep in
/// mind when comparing: Ramulator 2.0 stops when the front end has sent the last access, this
/// model when the last data beat is done (`DramReport::cycles`); Ramulator labels a request's
/// arrival with the controller cycle before the first one in which it can be scheduled, this
/// model with that cycle itself, so Ramulator's read latencies are one cycle longer for the
/// same schedule. Ramulator 2.0's controller policy (first-ready, an activated buffer, 33-entry
/// queues) is the `ddr5_3200_ramulator` / `hbm3_2gbps_ramulator` presets' `[controller]`.
pub fn run_trace(spec: &DramSpec, path: &Path, opts: &SimOptions) -> Result<DramOutput, DramError> {
    spec.validate()?;
    let file = std::fs::File::open(path).map_err(|source| DramError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut reader = TraceReader::new(std::io::BufReader::with_capacity(1 << 20, file));
    let out = simulate(spec, reader.by_ref(), opts)?;
    if let Some(e) = reader.error() {
        return Err(DramError::Trace {
            path: path.display().to_string(),
            source: e.clone(),
        });
    }
    Ok(out)
}
