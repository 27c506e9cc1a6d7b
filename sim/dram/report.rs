//! What a run reports: bandwidth, read latency, row-buffer outcomes, commands and energy, in
//! total and per channel.

use super::model::{ChannelStats, CommandKind, RawRun};
use super::spec::DramSpec;
use crate::engine::Stats;
use serde::Serialize;

/// Read latency (controller arrival to the last data beat), in cycles and ns; `None` without
/// reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub count: u64,
    pub mean_cycles: Option<f64>,
    pub p50_cycles: Option<f64>,
    pub p99_cycles: Option<f64>,
    pub max_cycles: Option<f64>,
    pub mean_ns: Option<f64>,
    pub p50_ns: Option<f64>,
    pub p99_ns: Option<f64>,
    pub max_ns: Option<f64>,
}

impl Latency {
    fn of(s: &Stats, tck_ns: f64) -> Latency {
        let ns = |v: Option<f64>| v.map(|c| c * tck_ns);
        Latency {
            count: s.count(),
            mean_cycles: s.mean(),
            p50_cycles: s.p50(),
            p99_cycles: s.p99(),
            max_cycles: s.max(),
            mean_ns: ns(s.mean()),
            p50_ns: ns(s.p50()),
            p99_ns: ns(s.p99()),
            max_ns: ns(s.max()),
        }
    }
}

/// Commands issued, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CommandCounts {
    pub act: u64,
    pub pre: u64,
    pub prea: u64,
    pub rd: u64,
    pub wr: u64,
    pub rda: u64,
    pub wra: u64,
    #[serde(rename = "ref")]
    pub refresh: u64,
    #[serde(rename = "ref_pb")]
    pub refresh_pb: u64,
}

impl CommandCounts {
    fn of(c: &[u64; 9]) -> CommandCounts {
        let k = |kind: CommandKind| c[kind as usize];
        CommandCounts {
            act: k(CommandKind::Act),
            pre: k(CommandKind::Pre),
            prea: k(CommandKind::Prea),
            rd: k(CommandKind::Rd),
            wr: k(CommandKind::Wr),
            rda: k(CommandKind::Rda),
            wra: k(CommandKind::Wra),
            refresh: k(CommandKind::Ref),
            refresh_pb: k(CommandKind::RefPb),
        }
    }

    fn add(&mut self, o: &CommandCounts) {
        self.act += o.act;
        self.pre += o.pre;
        self.prea += o.prea;
        self.rd += o.rd;
        self.wr += o.wr;
        self.rda += o.rda;
        self.wra += o.wra;
        self.refresh += o.refresh;
        self.refresh_pb += o.refresh_pb;
    }
}

/// Energy by source, pJ, and per bit moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct EnergyReport {
    /// ACTs with their precharges.
    pub act_pj: f64,
    pub rd_pj: f64,
    pub wr_pj: f64,
    pub ref_pj: f64,
    pub io_pj: f64,
    pub total_pj: f64,
    /// Total over the bits read and written (0 when none moved).
    pub pj_per_bit: f64,
}

impl EnergyReport {
    fn of(spec: &DramSpec, c: &CommandCounts, bytes: u64) -> EnergyReport {
        let e = &spec.energy;
        let act_pj = c.act as f64 * e.act_pj;
        let rd_pj = (c.rd + c.rda) as f64 * e.rd_pj;
        let wr_pj = (c.wr + c.wra) as f64 * e.wr_pj;
        // A REFpb refreshes one bank's share of what a REF refreshes.
        let banks = f64::from(spec.organization.bank_groups * spec.organization.banks_per_group);
        let ref_pj = c.refresh as f64 * e.ref_pj + c.refresh_pb as f64 * e.ref_pj / banks;
        let bits = bytes as f64 * 8.0;
        let io_pj = bits * e.io_pj_per_bit;
        let total_pj = act_pj + rd_pj + wr_pj + ref_pj + io_pj;
        EnergyReport {
            act_pj,
            rd_pj,
            wr_pj,
            ref_pj,
            io_pj,
            total_pj,
            pj_per_bit: ratio(total_pj, bits),
        }
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// One channel's share.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelReport {
    pub channel: u32,
    pub reads: u64,
    pub writes: u64,
    pub forwarded_reads: u64,
    pub bytes: u64,
    pub bandwidth_gb_s: f64,
    pub row_hits: u64,
    pub row_misses: u64,
    pub row_conflicts: u64,
    pub row_hit_rate: f64,
    pub read_latency: Latency,
    pub commands: CommandCounts,
    pub energy: EnergyReport,
}

/// The report of a run. Rates are 0 (never NaN) when their denominator is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DramReport {
    pub memory: String,
    pub page_policy: String,
    /// The mapping with implied fields spelt out, MSB first.
    pub address_mapping: String,
    pub access_bytes: u64,
    /// Accesses served by DRAM (reads + writes), and reads served from the write queue.
    pub accesses: u64,
    pub reads: u64,
    pub writes: u64,
    pub forwarded_reads: u64,
    /// Bytes moved by DRAM accesses.
    pub bytes: u64,
    /// From cycle 0 to the last data beat.
    pub cycles: u64,
    pub time_ns: f64,
    pub bandwidth_gb_s: f64,
    pub peak_bandwidth_gb_s: f64,
    /// bandwidth / peak.
    pub bandwidth_fraction: f64,
    pub read_latency: Latency,
    /// The read latency's distribution: (ns, fraction of reads at most that long), by
    /// histogram bucket (`engine::Stats`); for plots, not in the JSON.
    #[serde(skip)]
    pub read_latency_cdf_ns: Vec<(f64, f64)>,
    /// Each access counted once, by its first command: a column command (hit), ACT (miss:
    /// bank closed) or PRE (conflict: another row open).
    pub row_hits: u64,
    pub row_misses: u64,
    pub row_conflicts: u64,
    pub row_hit_rate: f64,
    pub row_miss_rate: f64,
    pub row_conflict_rate: f64,
    pub commands: CommandCounts,
    /// Refresh commands (REF and REFpb) over all ranks.
    pub refreshes: u64,
    pub energy: EnergyReport,
    pub channels: Vec<ChannelReport>,
}

impl DramReport {
    pub(crate) fn new(spec: &DramSpec, run: &RawRun) -> DramReport {
        let tck = spec.timing.tck_ns;
        let ab = spec.access_bytes();
        let time_ns = run.end_cycle as f64 * tck;
        let gbs = |bytes: u64| ratio(bytes as f64, time_ns);
        let channel = |i: usize, c: &ChannelStats| {
            let bytes = (c.reads + c.writes) * ab;
            let commands = CommandCounts::of(&c.commands);
            ChannelReport {
                channel: i as u32,
                reads: c.reads,
                writes: c.writes,
                forwarded_reads: c.forwarded,
                bytes,
                bandwidth_gb_s: gbs(bytes),
                row_hits: c.hits,
                row_misses: c.misses,
                row_conflicts: c.conflicts,
                row_hit_rate: ratio(c.hits as f64, (c.hits + c.misses + c.conflicts) as f64),
                read_latency: Latency::of(&c.latency, tck),
                commands,
                energy: EnergyReport::of(spec, &commands, bytes),
            }
        };
        let channels: Vec<ChannelReport> = run
            .channels
            .iter()
            .enumerate()
            .map(|(i, c)| channel(i, c))
            .collect();
        let mut latency = Stats::new();
        let mut commands = CommandCounts::default();
        for c in &run.channels {
            latency.merge(&c.latency);
        }
        for c in &channels {
            commands.add(&c.commands);
        }
        let sum = |f: fn(&ChannelReport) -> u64| channels.iter().map(f).sum::<u64>();
        let (reads, writes) = (sum(|c| c.reads), sum(|c| c.writes));
        let (hits, misses, conflicts) = (
            sum(|c| c.row_hits),
            sum(|c| c.row_misses),
            sum(|c| c.row_conflicts),
        );
        let classified = (hits + misses + conflicts) as f64;
        let bytes = (reads + writes) * ab;
        let bandwidth = gbs(bytes);
        let peak = spec.peak_bandwidth() / 1e9;
        DramReport {
            memory: spec.name.clone(),
            page_policy: spec.controller.page_policy.to_string(),
            address_mapping: run.mapping.clone(),
            access_bytes: ab,
            accesses: reads + writes,
            reads,
            writes,
            forwarded_reads: sum(|c| c.forwarded_reads),
            bytes,
            cycles: run.end_cycle,
            time_ns,
            bandwidth_gb_s: bandwidth,
            peak_bandwidth_gb_s: peak,
            bandwidth_fraction: ratio(bandwidth, peak),
            read_latency: Latency::of(&latency, tck),
            read_latency_cdf_ns: latency.cdf(tck),
            row_hits: hits,
            row_misses: misses,
            row_conflicts: conflicts,
            row_hit_rate: ratio(hits as f64, classified),
            row_miss_rate: ratio(misses as f64, classified),
            row_conflict_rate: ratio(conflicts as f64, classified),
            commands,
            refreshes: run.refreshes.iter().sum(),
            energy: EnergyReport::of(spec, &commands, bytes),
            channels,
        }
    }
}
