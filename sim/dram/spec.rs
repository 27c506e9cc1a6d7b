//! The memory description: organisation, timing, refresh, energy and controller settings,
//! read from TOML (`arch/memory/*.toml`) and checked before any simulation runs.

use super::mapping::AddressMapping;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A DRAM memory system: what [`super::simulate`] models. Every field is read by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DramSpec {
    /// A name for reports (`"HBM3 (H100 SXM5)"`).
    pub name: String,
    pub organization: Organization,
    pub timing: Timing,
    pub refresh: Refresh,
    pub energy: Energy,
    pub controller: Controller,
}

/// How the memory is built. A **channel** has its own controller (read and write queues, command
/// bus); its **pseudo-channels** each have their own data bus and banks (HBM; 1 elsewhere);
/// a pseudo-channel's **ranks** share its data bus; a rank has `bank_groups` ×
/// `banks_per_group` banks of `rows` rows, a row being `columns` columns of `bus_width_bits`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    pub channels: u32,
    pub pseudo_channels: u32,
    pub ranks: u32,
    pub bank_groups: u32,
    pub banks_per_group: u32,
    pub rows: u32,
    /// Columns per row; a column is one beat of the data bus (`bus_width_bits`).
    pub columns: u32,
    /// Data bus width of one pseudo-channel (of the channel where there are none), bits.
    pub bus_width_bits: u32,
    /// Beats per column access (BL): an access moves `bus_width_bits × burst_length / 8` bytes.
    pub burst_length: u32,
    /// Data beats per clock cycle of `tCK_ns` (2 for DDR, 4 for HBM3's 2:1 WDQS:CK, 8 for
    /// LPDDR5 at a 4:1 WCK:CK ratio). A burst holds the bus `burst_length /
    /// transfers_per_clock` cycles.
    pub transfers_per_clock: u32,
}

/// Timing in clock cycles of `tCK_ns` (the command clock), JEDEC names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// The clock period, ns.
    #[serde(rename = "tCK_ns")]
    pub tck_ns: f64,
    /// Read latency: RD to the first data beat.
    #[serde(rename = "tCL")]
    pub cl: u32,
    /// Write latency: WR to the first data beat.
    #[serde(rename = "tCWL")]
    pub cwl: u32,
    /// ACT to RD (and to WR unless `tRCDWR` is given).
    #[serde(rename = "tRCD")]
    pub rcd: u32,
    /// ACT to WR where it differs from ACT to RD (HBM3).
    #[serde(rename = "tRCDWR", default, skip_serializing_if = "Option::is_none")]
    pub rcd_wr: Option<u32>,
    /// PRE to ACT, same bank.
    #[serde(rename = "tRP")]
    pub rp: u32,
    /// ACT to PRE, same bank.
    #[serde(rename = "tRAS")]
    pub ras: u32,
    /// ACT to ACT, same bank.
    #[serde(rename = "tRC")]
    pub rc: u32,
    /// Write recovery: end of the write burst to PRE.
    #[serde(rename = "tWR")]
    pub wr: u32,
    /// RD to PRE.
    #[serde(rename = "tRTP")]
    pub rtp: u32,
    /// Column to column, different bank groups.
    #[serde(rename = "tCCD_S")]
    pub ccd_s: u32,
    /// Column to column, same bank group.
    #[serde(rename = "tCCD_L")]
    pub ccd_l: u32,
    /// WR to WR, different bank groups, where it differs from `tCCD_S` (DDR5).
    #[serde(rename = "tCCD_S_WR", default, skip_serializing_if = "Option::is_none")]
    pub ccd_s_wr: Option<u32>,
    /// WR to WR, same bank group, where it differs from `tCCD_L` (DDR5).
    #[serde(rename = "tCCD_L_WR", default, skip_serializing_if = "Option::is_none")]
    pub ccd_l_wr: Option<u32>,
    /// ACT to ACT, different bank groups of a rank.
    #[serde(rename = "tRRD_S")]
    pub rrd_s: u32,
    /// ACT to ACT, same bank group.
    #[serde(rename = "tRRD_L")]
    pub rrd_l: u32,
    /// Window in which a rank takes at most four ACTs.
    #[serde(rename = "tFAW")]
    pub faw: u32,
    /// End of a write burst to RD, different bank groups.
    #[serde(rename = "tWTR_S")]
    pub wtr_s: u32,
    /// End of a write burst to RD, same bank group.
    #[serde(rename = "tWTR_L")]
    pub wtr_l: u32,
    /// RD to WR, same rank (bus turnaround).
    #[serde(rename = "tRTW")]
    pub rtw: u32,
    /// Idle cycles between bursts of different ranks on one data bus (0 if not given).
    #[serde(rename = "tRTRS", default, skip_serializing_if = "Option::is_none")]
    pub rtrs: Option<u32>,
    /// Cycles an ACT holds the command bus (the row bus where it is split): 2 for DDR5's
    /// two-cycle ACT and HBM's two-cycle row-bus ACT; 1 if not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act_command_cycles: Option<u32>,
    /// Cycles a RD/WR (RDA/WRA) holds the command bus (the column bus where it is split): 2
    /// for DDR5's two-cycle column commands; 1 if not given. PRE, PREA, REF and REFpb always
    /// take one cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_command_cycles: Option<u32>,
}

/// How ranks refresh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshMode {
    /// A REF (all banks of the rank) every `tREFI`, blocking the rank for `tRFC`.
    #[default]
    AllBank,
    /// A REFpb to one bank every `tREFI / banks per rank`, banks in turn (each bank once per
    /// `tREFI`), blocking that bank for `tRFCpb` and the rank's other banks for `tRREFD` (HBM3's
    /// REFpb, LPDDR5's per-bank refresh).
    PerBank,
    /// No refresh at all: `tREFI`/`tRFC` are kept as the device's figures but never used, and
    /// the checker does not ask for refreshes. Not a way to run a real device (it would lose
    /// its data): it exists for peer comparison, to match Ramulator 2.0, whose all-bank
    /// refresh manager issues nothing on HBM3 (`reports/golden/ramulator2/README.md`, quirk 1).
    None,
}

/// Refresh of each rank (of each pseudo-channel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    #[serde(default)]
    pub mode: RefreshMode,
    #[serde(rename = "tREFI")]
    pub refi: u32,
    /// All-bank refresh cycle time (per_bank mode: the bound tRFCpb must stay under).
    #[serde(rename = "tRFC")]
    pub rfc: u32,
    /// Per-bank refresh cycle time (per_bank mode only).
    #[serde(rename = "tRFCpb", default, skip_serializing_if = "Option::is_none")]
    pub rfc_pb: Option<u32>,
    /// REFpb to REFpb or ACT of another bank of the rank (per_bank mode only).
    #[serde(rename = "tRREFD", default, skip_serializing_if = "Option::is_none")]
    pub rrefd: Option<u32>,
    /// REFs a rank may fall behind (JEDEC's postponement allowance); the checker accepts a
    /// schedule within it, the controller itself never postpones.
    pub postpone_max: u32,
}

/// Energy per command, pJ. `act_pj` is one ACT with its PRE; `rd_pj`/`wr_pj` one column access
/// (a burst) inside the device; `ref_pj` one REF of one rank; `io_pj_per_bit` every bit on the
/// data bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Energy {
    pub act_pj: f64,
    pub rd_pj: f64,
    pub wr_pj: f64,
    pub ref_pj: f64,
    pub io_pj_per_bit: f64,
}

/// Row-buffer policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PagePolicy {
    /// Rows stay open until a conflict or a refresh closes them.
    Open,
    /// Every column access auto-precharges (RDA/WRA).
    Closed,
}

/// Command bus of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandBus {
    /// One command per cycle (DDR5, LPDDR5).
    Shared,
    /// One row command (ACT, PRE, PREA, REF) and one column command per cycle (HBM's separate
    /// row and column buses).
    Split,
}

/// How the controller picks the next command among its queued requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheduler {
    /// FR-FCFS as Rixner et al. describe it: a ready row hit (column command) first, then the
    /// oldest ready row command; an open row is not precharged while a queued request of the
    /// served queue still hits it.
    #[default]
    RowHitFirst,
    /// Ramulator 2.0's `FRFCFS` with its generic controller: the **oldest** request whose next
    /// command (RD/WR, PRE or ACT) can issue this cycle, whatever its kind, so an older
    /// request's PRE beats a younger row hit; only requests that have activated their row (see
    /// `active_buffer`) hold it open. One command per cycle.
    FirstReady,
}

/// What a queue-size figure counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueScope {
    /// `read_queue` / `write_queue` requests for each pseudo-channel of the channel.
    #[default]
    PseudoChannel,
    /// `read_queue` / `write_queue` requests for the whole channel, shared by its
    /// pseudo-channels (Ramulator 2.0's HBM controller).
    Channel,
}

/// The memory controller of each channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Controller {
    /// Address fields MSB → LSB, Ramulator-style (`"RoBaRaCoCh"`); see [`AddressMapping`].
    pub address_mapping: String,
    /// Queue sizes are per pseudo-channel (per channel where there are none): a channel's
    /// controller holds up to `read_queue` reads for each of its pseudo-channels.
    pub read_queue: u32,
    pub write_queue: u32,
    /// Writes drain once the write queues hold more than this fraction (or no read waits)...
    pub write_high_watermark: f64,
    /// ...until it holds fewer than this fraction and a read waits.
    pub write_low_watermark: f64,
    pub page_policy: PagePolicy,
    pub command_bus: CommandBus,
    /// Spread addresses over the channels with a hash of the other fields (GPUs do, so that
    /// strided streams reach every channel); default false, the plain interleave.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub channel_hash: bool,
    /// Commands the controller issues per cycle: 1 with a shared bus; with a split bus 2 (one
    /// row and one column command, the default) or 1 (Ramulator 2.0's controller, which
    /// issues one command per cycle whatever the buses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands_per_cycle: Option<u32>,
    /// `row_hit_first` (default) or `first_ready`; see [`Scheduler`].
    #[serde(default)]
    pub scheduler: Scheduler,
    /// With `first_ready` only: a request whose ACT issued leaves its read or write queue (its
    /// slot is free for a new request) for an "activated" buffer of this many entries, if it
    /// has room; activated requests are served before anything else (whichever queue is being
    /// drained), and their bank is not precharged until they are (Ramulator 2.0's
    /// `m_active_buffer`). 0 (default): a request keeps its slot until its column command.
    #[serde(default)]
    pub active_buffer: u32,
    /// Whether queue sizes are per pseudo-channel (default) or per channel.
    #[serde(default)]
    pub queue_scope: QueueScope,
}

/// A field outside its range, named by its path (`timing.tRCD`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("memory spec: {0}")]
    Toml(String),
    #[error("memory spec `{spec}`: field `{field}`: {message}")]
    Field {
        spec: String,
        field: String,
        message: String,
    },
}

/// The presets under `arch/memory/`, by name.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "hbm3_h100",
        include_str!("../../arch/memory/hbm3_h100.toml"),
    ),
    (
        "hbm3_logic_pim",
        include_str!("../../arch/memory/hbm3_logic_pim.toml"),
    ),
    (
        "hbm3_bankgroup_pim",
        include_str!("../../arch/memory/hbm3_bankgroup_pim.toml"),
    ),
    (
        "hbm3_bank_pim",
        include_str!("../../arch/memory/hbm3_bank_pim.toml"),
    ),
    (
        "hbm3e_h200",
        include_str!("../../arch/memory/hbm3e_h200.toml"),
    ),
    (
        "hbm3_2gbps_ramulator",
        include_str!("../../arch/memory/hbm3_2gbps_ramulator.toml"),
    ),
    (
        "ddr5_4800",
        include_str!("../../arch/memory/ddr5_4800.toml"),
    ),
    (
        "ddr5_3200_ramulator",
        include_str!("../../arch/memory/ddr5_3200_ramulator.toml"),
    ),
    (
        "lpddr5_6400",
        include_str!("../../arch/memory/lpddr5_6400.toml"),
    ),
];

impl DramSpec {
    /// Parses and validates a spec.
    pub fn from_toml(text: &str) -> Result<DramSpec, SpecError> {
        let spec: DramSpec = toml::from_str(text).map_err(|e| SpecError::Toml(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// A preset by name (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<DramSpec, SpecError> {
        let text = PRESETS
            .iter()
            .find(|p| p.0 == name)
            .map(|p| p.1)
            .ok_or_else(|| {
                let names: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
                SpecError::Toml(format!(
                    "no memory preset `{name}` (presets: {})",
                    names.join(", ")
                ))
            })?;
        DramSpec::from_toml(text)
    }

    fn err(&self, field: &str, message: String) -> SpecError {
        SpecError::Field {
            spec: self.name.clone(),
            field: field.to_string(),
            message,
        }
    }

    /// Checks every field's range and the relations between them; the model never sees a spec
    /// that fails here, so it neither panics nor produces NaN.
    pub fn validate(&self) -> Result<(), SpecError> {
        let o = &self.organization;
        let int = |field: &str, v: u32, lo: u32, hi: u32| -> Result<(), SpecError> {
            if v < lo || v > hi {
                Err(self.err(field, format!("must be in {lo}..={hi}, got {v}")))
            } else {
                Ok(())
            }
        };
        int("organization.channels", o.channels, 1, 16384)?;
        int("organization.pseudo_channels", o.pseudo_channels, 1, 16)?;
        int("organization.ranks", o.ranks, 1, 16)?;
        int("organization.bank_groups", o.bank_groups, 1, 64)?;
        int("organization.banks_per_group", o.banks_per_group, 1, 64)?;
        int("organization.rows", o.rows, 1, 1 << 24)?;
        int("organization.columns", o.columns, 1, 1 << 16)?;
        int("organization.bus_width_bits", o.bus_width_bits, 1, 1024)?;
        int("organization.burst_length", o.burst_length, 1, 64)?;
        int(
            "organization.transfers_per_clock",
            o.transfers_per_clock,
            1,
            16,
        )?;
        let banks = u64::from(o.pseudo_channels)
            * u64::from(o.ranks)
            * u64::from(o.bank_groups)
            * u64::from(o.banks_per_group);
        if banks > 8192 {
            return Err(self.err(
                "organization.banks_per_group",
                format!("a channel may hold at most 8192 banks, this one has {banks}"),
            ));
        }
        if !o.burst_length.is_multiple_of(o.transfers_per_clock) {
            return Err(self.err(
                "organization.burst_length",
                format!(
                    "must be a multiple of transfers_per_clock ({}) so a burst takes whole \
                     cycles, got {}",
                    o.transfers_per_clock, o.burst_length
                ),
            ));
        }
        if !o.columns.is_multiple_of(o.burst_length) {
            return Err(self.err(
                "organization.columns",
                format!(
                    "must be a multiple of burst_length ({}), got {}",
                    o.burst_length, o.columns
                ),
            ));
        }
        if !(o.bus_width_bits * o.burst_length).is_multiple_of(8) {
            return Err(self.err(
                "organization.bus_width_bits",
                format!(
                    "bus_width_bits × burst_length must be whole bytes, got {} × {}",
                    o.bus_width_bits, o.burst_length
                ),
            ));
        }

        let t = &self.timing;
        if !(t.tck_ns.is_finite() && (0.01..=100.0).contains(&t.tck_ns)) {
            return Err(self.err(
                "timing.tCK_ns",
                format!("must be a clock period in 0.01..=100 ns, got {}", t.tck_ns),
            ));
        }
        const MAX: u32 = 1_000_000;
        for (name, v) in [
            ("tCL", t.cl),
            ("tCWL", t.cwl),
            ("tRCD", t.rcd),
            ("tRP", t.rp),
            ("tRAS", t.ras),
            ("tRC", t.rc),
            ("tWR", t.wr),
            ("tRTP", t.rtp),
            ("tCCD_S", t.ccd_s),
            ("tCCD_L", t.ccd_l),
            ("tRRD_S", t.rrd_s),
            ("tRRD_L", t.rrd_l),
            ("tFAW", t.faw),
            ("tWTR_S", t.wtr_s),
            ("tWTR_L", t.wtr_l),
            ("tRTW", t.rtw),
        ] {
            int(&format!("timing.{name}"), v, 1, MAX)?;
        }
        for (name, v) in [
            ("tRCDWR", t.rcd_wr),
            ("tCCD_S_WR", t.ccd_s_wr),
            ("tCCD_L_WR", t.ccd_l_wr),
        ] {
            if let Some(v) = v {
                int(&format!("timing.{name}"), v, 1, MAX)?;
            }
        }
        if let Some(v) = t.rtrs {
            int("timing.tRTRS", v, 0, MAX)?;
        }
        for (name, v) in [
            ("act_command_cycles", t.act_command_cycles),
            ("column_command_cycles", t.column_command_cycles),
        ] {
            if let Some(v) = v {
                int(&format!("timing.{name}"), v, 1, 8)?;
            }
        }
        let r = &self.refresh;
        int("refresh.tRFC", r.rfc, 1, MAX)?;
        int("refresh.tREFI", r.refi, 1, 100_000_000)?;
        if r.refi <= r.rfc {
            return Err(self.err(
                "refresh.tREFI",
                format!(
                    "must exceed tRFC ({}) or the rank never leaves refresh, got {}",
                    r.rfc, r.refi
                ),
            ));
        }
        int("refresh.postpone_max", r.postpone_max, 0, 64)?;
        match r.mode {
            RefreshMode::AllBank | RefreshMode::None => {
                for (name, v) in [("tRFCpb", r.rfc_pb), ("tRREFD", r.rrefd)] {
                    if v.is_some() {
                        return Err(self.err(
                            &format!("refresh.{name}"),
                            "only read with mode = \"per_bank\"".into(),
                        ));
                    }
                }
            }
            RefreshMode::PerBank => {
                let need = |name: &str, v: Option<u32>| {
                    v.ok_or_else(|| {
                        self.err(
                            &format!("refresh.{name}"),
                            "required with mode = \"per_bank\"".into(),
                        )
                    })
                };
                let rfc_pb = need("tRFCpb", r.rfc_pb)?;
                let rrefd = need("tRREFD", r.rrefd)?;
                int("refresh.tRFCpb", rfc_pb, 1, r.rfc)?;
                int("refresh.tRREFD", rrefd, 1, MAX)?;
                let banks = o.bank_groups * o.banks_per_group;
                if r.refi / banks < rrefd.max(1) {
                    return Err(self.err(
                        "refresh.tREFI",
                        format!(
                            "per-bank refresh of {banks} banks every tREFI = {} needs a REFpb \
                             every {} cycles, less than tRREFD ({rrefd})",
                            r.refi,
                            r.refi / banks
                        ),
                    ));
                }
            }
        }

        let e = &self.energy;
        for (name, v) in [
            ("act_pj", e.act_pj),
            ("rd_pj", e.rd_pj),
            ("wr_pj", e.wr_pj),
            ("ref_pj", e.ref_pj),
            ("io_pj_per_bit", e.io_pj_per_bit),
        ] {
            if !(v.is_finite() && (0.0..=1e9).contains(&v)) {
                return Err(self.err(
                    &format!("energy.{name}"),
                    format!("must be in 0..=1e9 pJ, got {v}"),
                ));
            }
        }

        let c = &self.controller;
        int("controller.read_queue", c.read_queue, 1, 4096)?;
        int("controller.write_queue", c.write_queue, 1, 4096)?;
        for (name, v) in [
            ("write_high_watermark", c.write_high_watermark),
            ("write_low_watermark", c.write_low_watermark),
        ] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return Err(self.err(
                    &format!("controller.{name}"),
                    format!("must be a fraction in 0..=1, got {v}"),
                ));
            }
        }
        if c.write_low_watermark > c.write_high_watermark {
            return Err(self.err(
                "controller.write_low_watermark",
                format!(
                    "must not exceed write_high_watermark ({}), got {}",
                    c.write_high_watermark, c.write_low_watermark
                ),
            ));
        }
        if let Some(n) = c.commands_per_cycle {
            let max = match c.command_bus {
                CommandBus::Shared => 1,
                CommandBus::Split => 2,
            };
            if n < 1 || n > max {
                return Err(self.err(
                    "controller.commands_per_cycle",
                    format!(
                        "must be in 1..={max} with a {} command bus, got {n}",
                        c.command_bus
                    ),
                ));
            }
        }
        match c.scheduler {
            Scheduler::RowHitFirst => {
                if c.active_buffer > 0 {
                    return Err(self.err(
                        "controller.active_buffer",
                        "only read with scheduler = \"first_ready\"".into(),
                    ));
                }
            }
            Scheduler::FirstReady => {
                if self.commands_per_cycle() != 1 {
                    return Err(self.err(
                        "controller.commands_per_cycle",
                        "scheduler = \"first_ready\" issues one command per cycle: set it to 1"
                            .into(),
                    ));
                }
                int("controller.active_buffer", c.active_buffer, 0, 4096)?;
            }
        }
        AddressMapping::parse(&c.address_mapping, o)
            .map_err(|m| self.err("controller.address_mapping", m))?;
        Ok(())
    }

    /// Commands the controller may issue in one cycle (see [`Controller::commands_per_cycle`]).
    pub fn commands_per_cycle(&self) -> u32 {
        let c = &self.controller;
        c.commands_per_cycle.unwrap_or(match c.command_bus {
            CommandBus::Shared => 1,
            CommandBus::Split => 2,
        })
    }

    /// Bytes one column access moves.
    pub fn access_bytes(&self) -> u64 {
        let o = &self.organization;
        u64::from(o.bus_width_bits) * u64::from(o.burst_length) / 8
    }

    /// Cycles a burst holds the data bus.
    pub fn burst_cycles(&self) -> u64 {
        let o = &self.organization;
        u64::from(o.burst_length / o.transfers_per_clock)
    }

    /// Data buses (channels × pseudo-channels).
    pub fn data_buses(&self) -> u64 {
        u64::from(self.organization.channels) * u64::from(self.organization.pseudo_channels)
    }

    /// The peak data rate, bytes per second: every data bus busy every cycle
    /// (channels × pseudo-channels × bus width × transfers per clock / tCK). The ideal-timing
    /// figure for analytical models.
    pub fn peak_bandwidth(&self) -> f64 {
        let o = &self.organization;
        self.data_buses() as f64 * f64::from(o.bus_width_bits) / 8.0
            * f64::from(o.transfers_per_clock)
            / (self.timing.tck_ns * 1e-9)
    }

    /// Bytes of storage.
    pub fn capacity_bytes(&self) -> u64 {
        let o = &self.organization;
        self.data_buses()
            * u64::from(o.ranks)
            * u64::from(o.bank_groups)
            * u64::from(o.banks_per_group)
            * u64::from(o.rows)
            * u64::from(o.columns)
            * u64::from(o.bus_width_bits)
            / 8
    }
}

impl fmt::Display for CommandBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CommandBus::Shared => "shared",
            CommandBus::Split => "split",
        })
    }
}

impl fmt::Display for PagePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PagePolicy::Open => "open",
            PagePolicy::Closed => "closed",
        })
    }
}

/// Timing in cycles as the model and the checker use it (optional fields resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cycles {
    pub cl: u64,
    pub cwl: u64,
    pub bl: u64,
    pub rcd_rd: u64,
    pub rcd_wr: u64,
    pub rp: u64,
    pub ras: u64,
    pub rc: u64,
    pub wr: u64,
    pub rtp: u64,
    pub ccd_s: u64,
    pub ccd_l: u64,
    pub ccd_s_wr: u64,
    pub ccd_l_wr: u64,
    pub rrd_s: u64,
    pub rrd_l: u64,
    pub faw: u64,
    pub wtr_s: u64,
    pub wtr_l: u64,
    pub rtw: u64,
    pub rtrs: u64,
    /// Cycles an ACT / a column command holds its command bus.
    pub act_cmd: u64,
    pub cas_cmd: u64,
    /// No refresh (mode `none`).
    pub no_refresh: bool,
    pub refi: u64,
    pub rfc: u64,
    pub per_bank: bool,
    /// tREFI / banks per rank: the spacing of REFpbs (per_bank mode).
    pub refi_pb: u64,
    pub rfc_pb: u64,
    pub rrefd: u64,
}

impl Cycles {
    pub fn of(spec: &DramSpec) -> Cycles {
        let t = &spec.timing;
        let u = u64::from;
        Cycles {
            cl: u(t.cl),
            cwl: u(t.cwl),
            bl: spec.burst_cycles(),
            rcd_rd: u(t.rcd),
            rcd_wr: u(t.rcd_wr.unwrap_or(t.rcd)),
            rp: u(t.rp),
            ras: u(t.ras),
            rc: u(t.rc),
            wr: u(t.wr),
            rtp: u(t.rtp),
            ccd_s: u(t.ccd_s),
            ccd_l: u(t.ccd_l),
            ccd_s_wr: u(t.ccd_s_wr.unwrap_or(t.ccd_s)),
            ccd_l_wr: u(t.ccd_l_wr.unwrap_or(t.ccd_l)),
            rrd_s: u(t.rrd_s),
            rrd_l: u(t.rrd_l),
            faw: u(t.faw),
            wtr_s: u(t.wtr_s),
            wtr_l: u(t.wtr_l),
            rtw: u(t.rtw),
            rtrs: u(t.rtrs.unwrap_or(0)),
            act_cmd: u(t.act_command_cycles.unwrap_or(1)),
            cas_cmd: u(t.column_command_cycles.unwrap_or(1)),
            no_refresh: spec.refresh.mode == RefreshMode::None,
            refi: u(spec.refresh.refi),
            rfc: u(spec.refresh.rfc),
            per_bank: spec.refresh.mode == RefreshMode::PerBank,
            refi_pb: u(spec.refresh.refi)
                / u(spec.organization.bank_groups * spec.organization.banks_per_group),
            rfc_pb: u(spec.refresh.rfc_pb.unwrap_or(0)),
            rrefd: u(spec.refresh.rrefd.unwrap_or(0)),
        }
    }

    /// Cycles a command of `kind` holds its command bus.
    #[inline]
    pub fn command_cycles(&self, kind: super::model::CommandKind) -> u64 {
        use super::model::CommandKind::*;
        match kind {
            Act => self.act_cmd,
            Rd | Wr | Rda | Wra => self.cas_cmd,
            Pre | Prea | Ref | RefPb => 1,
        }
    }

    /// WR to PRE, same bank: the burst ends, then write recovery.
    pub fn wr_to_pre(&self) -> u64 {
        self.cwl + self.bl + self.wr
    }

    /// WR to RD: the burst ends, then tWTR (same or other bank group).
    pub fn wr_to_rd(&self, same_bg: bool) -> u64 {
        self.cwl + self.bl + if same_bg { self.wtr_l } else { self.wtr_s }
    }
}
