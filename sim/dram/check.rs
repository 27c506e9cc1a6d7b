//! An independent checker of command logs: it replays a log against the spec's timing rules
//! and reports the first command issued before a constraint allows it. It shares nothing with
//! the scheduler but the spec (its own per-bank history of command times, not the scheduler's
//! "ready" registers), so a scheduler bug cannot hide in both.

use super::model::{Command, CommandKind, CommandLog};
use super::spec::{CommandBus, Cycles, DramSpec};
use std::fmt;

/// The first rule a log breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Index of the offending command in the log (the log's length for end-of-run checks).
    pub index: usize,
    pub command: Option<Command>,
    /// The rule: a JEDEC parameter (`tRCD`, `tFAW`, ...) or a state rule (`row open`,
    /// `command bus`, `data bus`, `refresh interval`, `order`).
    pub constraint: &'static str,
    /// The earliest cycle the rule allowed (for timing rules).
    pub earliest: Option<u64>,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.command {
            Some(c) => write!(
                f,
                "command #{} {} at cycle {} (channel {} pc {} rank {} bg {} bank {} row {}) \
                 violates {}",
                self.index,
                c.kind.name(),
                c.cycle,
                c.channel,
                c.pc,
                c.rank,
                c.bg,
                c.bank,
                c.row,
                self.constraint
            )?,
            None => write!(f, "end of run: violates {}", self.constraint)?,
        }
        if let Some(e) = self.earliest {
            write!(f, " (earliest allowed cycle {e})")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for Violation {}

#[derive(Clone, Copy, Default)]
struct BankH {
    open: Option<u32>,
    act: Option<u64>,
    /// When the last precharge (explicit, PREA's, or an auto-precharge's) took effect.
    pre: Option<u64>,
    rd: Option<u64>,
    wr: Option<u64>,
    /// Last refresh of this bank (REF of its rank or its own REFpb), and how many.
    refreshed: Option<u64>,
    refreshes: u64,
    /// Last REFpb of this bank.
    refpb: Option<u64>,
}

#[derive(Clone, Copy, Default)]
struct GroupH {
    act: Option<u64>,
    rd: Option<u64>,
    wr: Option<u64>,
}

#[derive(Clone, Default)]
struct RankH {
    act: Option<u64>,
    rd: Option<u64>,
    wr: Option<u64>,
    /// The last four ACTs, oldest first.
    last_acts: Vec<u64>,
    refresh: Option<u64>,
    /// Last REFpb of any bank of the rank.
    refpb: Option<u64>,
}

#[derive(Clone, Copy, Default)]
struct BusH {
    end: Option<u64>,
    rank: usize,
}

#[derive(Clone, Copy, Default)]
struct ChannelH {
    /// The last command's cycle.
    last: Option<u64>,
    /// The first cycle the (row / column) command bus is free again.
    row_free: u64,
    col_free: u64,
}

/// Replays `log` and checks every command against `spec`'s rules: ACT→RD/WR tRCD, ACT→PRE
/// tRAS, PRE→ACT tRP, ACT→ACT same bank tRC, same bank group tRRD_L, same rank tRRD_S, at most
/// four ACTs per rank in any tFAW window, RD→RD / WR→WR tCCD_L (same bank group) and tCCD_S
/// (rank), WR→RD tCWL + BL + tWTR_L/S, RD→WR tRTW, RD→PRE tRTP, WR→PRE tCWL + BL + tWR
/// (auto-precharges of RDA/WRA included), REF only with every bank of the rank precharged
/// (tRP after the last precharge, tRC after the last ACT), REF→ACT and REF→REF tRFC, bursts
/// on a data bus never overlapping (plus tRTRS between ranks), one command per cycle per
/// channel (one row and one column command with a split bus, unless `commands_per_cycle` is
/// 1), a command bus held for `act_command_cycles` after an ACT and `column_command_cycles`
/// after a RD/WR (the row or column bus where it is split), column commands only to the
/// open row; per-bank refresh: REFpb only to a precharged bank (tRP, tRC), REFpb→ACT same
/// bank tRFCpb, REFpb→REFpb or ACT of the rank tRREFD, ACT→REFpb tRRD_S; and refresh rate:
/// every bank refreshed (by its rank's REF or its own REFpb) at most (postpone_max + 1) ×
/// tREFI after the previous time (or the start), and at the end of the run no more than
/// postpone_max + 1 refreshes behind one per tREFI (not asked with refresh mode `none`).
pub fn check_log(spec: &DramSpec, log: &CommandLog) -> Result<(), Violation> {
    spec.validate().map_err(|e| Violation {
        index: 0,
        command: None,
        constraint: "spec",
        earliest: None,
        detail: e.to_string(),
    })?;
    let t = Cycles::of(spec);
    let o = &spec.organization;
    let (pcs, rpp, gpr, bpg) = (
        o.pseudo_channels as usize,
        o.ranks as usize,
        o.bank_groups as usize,
        o.banks_per_group as usize,
    );
    let ranks_per_ch = pcs * rpp;
    let nch = o.channels as usize;
    let mut banks = vec![BankH::default(); nch * ranks_per_ch * gpr * bpg];
    let mut groups = vec![GroupH::default(); nch * ranks_per_ch * gpr];
    let mut ranks = vec![RankH::default(); nch * ranks_per_ch];
    let mut buses = vec![BusH::default(); nch * pcs];
    let mut chans = vec![ChannelH::default(); nch];
    let split = spec.controller.command_bus == CommandBus::Split;
    let one_per_cycle = spec.commands_per_cycle() == 1;
    let max_gap = (u64::from(spec.refresh.postpone_max) + 1) * t.refi;
    let mut last_cycle = 0;

    for (index, c) in log.commands.iter().enumerate() {
        let fail = |constraint: &'static str, earliest: Option<u64>, detail: String| Violation {
            index,
            command: Some(*c),
            constraint,
            earliest,
            detail,
        };
        // Requires `c.cycle >= base + delta` for a recorded `base`.
        let need = |base: Option<u64>, delta: u64, constraint: &'static str| match base {
            Some(b) if c.cycle < b + delta => Err(fail(constraint, Some(b + delta), String::new())),
            _ => Ok(()),
        };
        if c.cycle < last_cycle {
            return Err(fail(
                "order",
                Some(last_cycle),
                "commands must be in issue order".into(),
            ));
        }
        last_cycle = c.cycle;
        let (ch, pc, rk, bg, bk) = (
            c.channel as usize,
            c.pc as usize,
            c.rank as usize,
            c.bg as usize,
            c.bank as usize,
        );
        if ch >= nch || pc >= pcs || rk >= rpp || bg >= gpr || bk >= bpg || c.row >= o.rows {
            return Err(fail(
                "address",
                None,
                "a field is outside the organisation".into(),
            ));
        }
        let ri = (ch * pcs + pc) * rpp + rk;
        let gi = ri * gpr + bg;
        let bi = gi * bpg + bk;
        let pi = ch * pcs + pc;

        // Command bus.
        let cb = &mut chans[ch];
        if one_per_cycle && cb.last == Some(c.cycle) {
            return Err(fail(
                "command bus",
                Some(c.cycle + 1),
                "two commands in a cycle".into(),
            ));
        }
        cb.last = Some(c.cycle);
        let held = c.cycle + t.command_cycles(c.kind);
        let free = if !split || c.kind.is_row() {
            cb.row_free
        } else {
            cb.col_free
        };
        if c.cycle < free {
            return Err(fail(
                "command bus",
                Some(free),
                format!(
                    "the {} bus is held by the previous command",
                    if !split {
                        "command"
                    } else if c.kind.is_row() {
                        "row command"
                    } else {
                        "column command"
                    }
                ),
            ));
        }
        if !split {
            cb.row_free = held;
            cb.col_free = held;
        } else if c.kind.is_row() {
            cb.row_free = held;
        } else {
            cb.col_free = held;
        }

        // Refresh interval: no bank goes too long unrefreshed.
        if matches!(c.kind, CommandKind::Ref | CommandKind::RefPb) && !t.no_refresh {
            let range = if c.kind == CommandKind::Ref {
                ri * gpr * bpg..(ri + 1) * gpr * bpg
            } else {
                bi..bi + 1
            };
            for j in range {
                let prev = banks[j].refreshed.unwrap_or(0);
                if c.cycle > prev + max_gap {
                    return Err(fail(
                        "refresh interval",
                        None,
                        format!(
                            "bank refreshed {} cycles after its previous refresh (or the \
                             start), more than (postpone_max + 1) × tREFI = {max_gap}",
                            c.cycle - prev
                        ),
                    ));
                }
                banks[j].refreshed = Some(c.cycle);
                banks[j].refreshes += 1;
            }
        }

        match c.kind {
            CommandKind::Act => {
                let b = banks[bi];
                if b.open.is_some() {
                    return Err(fail("row open", None, "ACT to an open bank".into()));
                }
                need(b.pre, t.rp, "tRP")?;
                need(b.act, t.rc, "tRC")?;
                need(groups[gi].act, t.rrd_l, "tRRD_L")?;
                need(ranks[ri].act, t.rrd_s, "tRRD_S")?;
                let r = &ranks[ri];
                if r.last_acts.len() == 4 {
                    need(Some(r.last_acts[0]), t.faw, "tFAW")?;
                }
                need(r.refresh, t.rfc, "tRFC")?;
                need(b.refpb, t.rfc_pb, "tRFCpb")?;
                need(r.refpb, t.rrefd, "tRREFD")?;
                let b = &mut banks[bi];
                b.open = Some(c.row);
                b.act = Some(c.cycle);
                groups[gi].act = Some(c.cycle);
                let r = &mut ranks[ri];
                r.act = Some(c.cycle);
                if r.last_acts.len() == 4 {
                    r.last_acts.remove(0);
                }
                r.last_acts.push(c.cycle);
            }
            CommandKind::Pre | CommandKind::Prea => {
                let range = if c.kind == CommandKind::Pre {
                    bi..bi + 1
                } else {
                    ri * gpr * bpg..(ri + 1) * gpr * bpg
                };
                for j in range {
                    let b = banks[j];
                    if b.open.is_none() {
                        continue; // precharging a closed bank is a no-op
                    }
                    need(b.act, t.ras, "tRAS")?;
                    need(b.rd, t.rtp, "tRTP")?;
                    need(b.wr, t.wr_to_pre(), "tWR")?;
                    banks[j].open = None;
                    banks[j].pre = Some(c.cycle);
                }
            }
            CommandKind::Ref => {
                for b in &banks[ri * gpr * bpg..(ri + 1) * gpr * bpg] {
                    if b.open.is_some() {
                        return Err(fail(
                            "row open",
                            None,
                            "REF with a bank of the rank open".into(),
                        ));
                    }
                    need(b.pre, t.rp, "tRP")?;
                    need(b.act, t.rc, "tRC")?;
                }
                need(ranks[ri].refresh, t.rfc, "tRFC")?;
                ranks[ri].refresh = Some(c.cycle);
            }
            CommandKind::RefPb => {
                let b = banks[bi];
                if b.open.is_some() {
                    return Err(fail("row open", None, "REFpb to an open bank".into()));
                }
                need(b.pre, t.rp, "tRP")?;
                need(b.act, t.rc, "tRC")?;
                need(b.refpb, t.rfc_pb, "tRFCpb")?;
                need(ranks[ri].refpb, t.rrefd, "tRREFD")?;
                need(ranks[ri].act, t.rrd_s, "tRRD_S")?;
                need(ranks[ri].refresh, t.rfc, "tRFC")?;
                banks[bi].refpb = Some(c.cycle);
                ranks[ri].refpb = Some(c.cycle);
            }
            CommandKind::Rd | CommandKind::Rda | CommandKind::Wr | CommandKind::Wra => {
                let write = matches!(c.kind, CommandKind::Wr | CommandKind::Wra);
                let b = banks[bi];
                if b.open != Some(c.row) {
                    return Err(fail(
                        "row open",
                        None,
                        format!("column command to row {} while {:?} is open", c.row, b.open),
                    ));
                }
                let (g, r) = (groups[gi], ranks[ri].clone());
                if write {
                    need(b.act, t.rcd_wr, "tRCD")?;
                    need(g.wr, t.ccd_l_wr, "tCCD_L")?;
                    need(r.wr, t.ccd_s_wr, "tCCD_S")?;
                    need(r.rd, t.rtw, "tRTW")?;
                } else {
                    need(b.act, t.rcd_rd, "tRCD")?;
                    need(g.rd, t.ccd_l, "tCCD_L")?;
                    need(r.rd, t.ccd_s, "tCCD_S")?;
                    need(g.wr, t.wr_to_rd(true), "tWTR_L")?;
                    need(r.wr, t.wr_to_rd(false), "tWTR_S")?;
                }
                // Data bus: this burst starts after the last one ended (plus tRTRS between
                // ranks).
                let lat = if write { t.cwl } else { t.cl };
                let bus = buses[pi];
                if let Some(end) = bus.end {
                    let gap = if bus.rank == ri { 0 } else { t.rtrs };
                    if c.cycle + lat < end + gap {
                        return Err(fail(
                            "data bus",
                            Some((end + gap).saturating_sub(lat)),
                            "bursts overlap on the data bus".into(),
                        ));
                    }
                }
                buses[pi] = BusH {
                    end: Some(c.cycle + lat + t.bl),
                    rank: ri,
                };
                let b = &mut banks[bi];
                if write {
                    b.wr = Some(c.cycle);
                    groups[gi].wr = Some(c.cycle);
                    ranks[ri].wr = Some(c.cycle);
                } else {
                    b.rd = Some(c.cycle);
                    groups[gi].rd = Some(c.cycle);
                    ranks[ri].rd = Some(c.cycle);
                }
                if matches!(c.kind, CommandKind::Rda | CommandKind::Wra) {
                    // The auto-precharge starts once tRAS and tRTP / write recovery allow.
                    let after_cas = if write {
                        c.cycle + t.wr_to_pre()
                    } else {
                        c.cycle + t.rtp
                    };
                    let after_act = b.act.map_or(0, |a| a + t.ras);
                    b.pre = Some(after_cas.max(after_act));
                    b.open = None;
                }
            }
        }
    }

    // End of the run: every bank kept up with refresh.
    if t.no_refresh {
        return Ok(());
    }
    let end = log.end_cycle.max(last_cycle);
    let owed = end / t.refi;
    let allowed = u64::from(spec.refresh.postpone_max) + 1;
    for (bi, b) in banks.iter().enumerate() {
        if b.refreshes + allowed < owed {
            return Err(Violation {
                index: log.commands.len(),
                command: None,
                constraint: "refresh interval",
                earliest: None,
                detail: format!(
                    "bank {bi} (flat index) was refreshed {} times by cycle {end}, {owed} were \
                     due and at most {allowed} may be postponed",
                    b.refreshes
                ),
            });
        }
    }
    Ok(())
}
