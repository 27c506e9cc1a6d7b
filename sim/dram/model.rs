//! The cycle-level model: one FR-FCFS controller per channel over banks with their timing
//! state, and the front end that feeds them.
//!
//! **Time** is in cycles of the spec's command clock (`tCK_ns`). Each channel keeps the cycle
//! at which it next needs attention (`wake`): the next cycle after it issued a command, else
//! the earliest cycle at which one of its queued requests' next command or a refresh can
//! issue. The loop jumps from one such cycle (or front-end arrival) to the next, so idle
//! cycles cost nothing; at each cycle it visits channels in index order (deterministic).
//!
//! **Scheduling** (per channel, per cycle), `Scheduler::RowHitFirst`: refresh commands of a
//! rank (or bank) that is due come first; then, from the queue being served (reads, or writes
//! while draining), FR-FCFS: among requests whose next command can issue this cycle, row hits
//! (a column command) first, then the oldest. A request's next command is RD/WR if its row is
//! open, PRE if another row is open (never while a queued request of the served queue still
//! hits that row), ACT if the bank is closed. With a `split` command bus a row command and a
//! column command may issue in the same cycle (unless `commands_per_cycle` is 1); with
//! `shared`, one command. `Scheduler::FirstReady` is `step_first_ready` (Ramulator 2.0's
//! generic controller): activated requests first, then refresh, then the oldest ready request
//! of the served queue whatever its command. A command holds its bus
//! `Cycles::command_cycles` cycles.
//!
//! **Speed.** Queues keep arrival order (served requests are tombstones until swept), so a
//! scan meets the oldest request first and stops at the first ready row hit unless a row
//! command is still wanted; a queue counts its row hits, so the scan also knows when no
//! request needing a row command is left. Nothing is allocated per access: queues, banks and
//! the log (when kept) are vectors that only grow.

use super::mapping::{AddressMapping, Location};
use super::spec::{CommandBus, Cycles, DramSpec, PagePolicy, QueueScope, Scheduler};
use crate::engine::Stats;
use serde::{Deserialize, Serialize};

/// One access of the memory: `access_bytes` at `addr` (the spec's column-access size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub addr: u64,
    pub write: bool,
}

/// A DRAM command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CommandKind {
    Act,
    Pre,
    /// Precharge all banks of a rank (before a refresh).
    Prea,
    Rd,
    Wr,
    /// Read with auto-precharge (closed page).
    Rda,
    /// Write with auto-precharge (closed page).
    Wra,
    /// All-bank refresh of a rank.
    Ref,
    /// Per-bank refresh of one bank.
    RefPb,
}

impl CommandKind {
    /// A row command (ACT, PRE, PREA, REF) rather than a column command.
    pub fn is_row(self) -> bool {
        matches!(
            self,
            CommandKind::Act
                | CommandKind::Pre
                | CommandKind::Prea
                | CommandKind::Ref
                | CommandKind::RefPb
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            CommandKind::Act => "ACT",
            CommandKind::Pre => "PRE",
            CommandKind::Prea => "PREA",
            CommandKind::Rd => "RD",
            CommandKind::Wr => "WR",
            CommandKind::Rda => "RDA",
            CommandKind::Wra => "WRA",
            CommandKind::Ref => "REF",
            CommandKind::RefPb => "REFpb",
        }
    }
}

/// One issued command. `rank` is within the pseudo-channel, `bg` within the rank, `bank`
/// within the bank group; `col` counts column accesses (bursts) within the row. PRE names the
/// row it closes; PREA and REF name only their rank (bank group, bank, row and column 0), REFpb
/// its bank (row and column 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub cycle: u64,
    pub channel: u32,
    pub pc: u8,
    pub rank: u8,
    pub bg: u8,
    pub bank: u8,
    pub row: u32,
    pub col: u32,
    pub kind: CommandKind,
}

/// Every command of a run, in issue order, and the cycle the run ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommandLog {
    pub commands: Vec<Command>,
    pub end_cycle: u64,
}

/// How fast the front end offers accesses. Whichever, it offers them in order and stalls on
/// one whose channel's queue is full until that channel frees a slot (Ramulator 2.0's
/// memory-trace front ends do the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    /// At most this many accesses per cycle (Ramulator's LoadStoreTrace: 1 per front-end tick).
    PerCycle(u32),
    /// At most one access every this many cycles, at cycles 0, n, 2n, ...; an access refused
    /// for a full queue is offered again at the next such cycle after a slot frees
    /// (Ramulator's LoadStoreTrace with a front-end clock n times slower than the memory's).
    Every(u32),
    /// As many as the queues take.
    Unlimited,
}

/// Options of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimOptions {
    /// Keep the command log (for [`super::check_log`]).
    pub log: bool,
    pub injection: Injection,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            log: false,
            injection: Injection::Unlimited,
        }
    }
}

const NO_ROW: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Req {
    arrive: u64,
    addr: u64,
    row: u32,
    col: u32,
    /// Flat indices within the channel.
    bank: u32,
    group: u32,
    rank: u32,
    pc: u8,
    classified: bool,
    /// In the activated buffer (`Controller::active_buffer`): its slot in the queue is free.
    active: bool,
    /// Served: a tombstone until the queue compacts.
    dead: bool,
}

/// A request queue in arrival order (so a scan meets the oldest first). Served requests
/// become tombstones, swept out once they outnumber the live ones: removal is O(1) amortised
/// and the order is kept without shifting.
struct Queue {
    items: Vec<Req>,
    live: usize,
    dead: usize,
    /// Live requests holding a queue slot, per pseudo-channel (per channel: index 0 only,
    /// with `QueueScope::Channel`).
    per_pc: Vec<u32>,
    /// Whether the slots are shared by the pseudo-channels.
    shared: bool,
    /// Live requests in the activated buffer (they hold no slot).
    active: usize,
    /// Live requests that hit their bank's open row (the sum of the banks' `hits`).
    hits: u32,
}

impl Queue {
    fn new(cap: usize, pcs: usize, shared: bool, active_cap: usize) -> Queue {
        let slots = if shared { cap } else { cap * pcs };
        Queue {
            items: Vec::with_capacity(2 * (slots + active_cap) + 1),
            live: 0,
            dead: 0,
            per_pc: vec![0; if shared { 1 } else { pcs }],
            shared,
            active: 0,
            hits: 0,
        }
    }

    /// The slot counter a request of pseudo-channel `pc` uses.
    #[inline]
    fn slot(&self, pc: u8) -> usize {
        if self.shared {
            0
        } else {
            pc as usize
        }
    }

    /// Requests holding a slot (Ramulator's read or write buffer size).
    #[inline]
    fn queued(&self) -> usize {
        self.live - self.active
    }

    fn push(&mut self, r: Req) {
        if self.items.len() == self.items.capacity() {
            self.compact();
        }
        let s = self.slot(r.pc);
        self.per_pc[s] += 1;
        self.live += 1;
        self.items.push(r);
    }

    /// Moves `items[i]` to the activated buffer: its slot frees.
    fn activate(&mut self, i: usize) {
        let s = self.slot(self.items[i].pc);
        self.items[i].active = true;
        self.per_pc[s] -= 1;
        self.active += 1;
    }

    /// Marks `items[i]` served; may compact (indices are stale afterwards).
    fn remove(&mut self, i: usize) -> Req {
        let r = self.items[i];
        self.items[i].dead = true;
        if r.active {
            self.active -= 1;
        } else {
            let s = self.slot(r.pc);
            self.per_pc[s] -= 1;
        }
        self.live -= 1;
        self.dead += 1;
        if self.dead > self.live.max(8) {
            self.compact();
        }
        r
    }

    fn compact(&mut self) {
        self.items.retain(|r| !r.dead);
        self.dead = 0;
    }

    fn iter(&self) -> impl Iterator<Item = &Req> {
        self.items.iter().filter(|r| !r.dead)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bank {
    open: u32,
    act_ready: u64,
    pre_ready: u64,
    rd_ready: u64,
    wr_ready: u64,
    /// Queued reads / writes that hit the open row.
    hits: [u32; 2],
    /// Waiting for its per-bank refresh: takes no request's command.
    refresh_pending: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Group {
    act_ready: u64,
    rd_ready: u64,
    wr_ready: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Rank {
    act_ready: u64,
    rd_ready: u64,
    wr_ready: u64,
    /// The last four ACT times (ring), and how many ACTs there were.
    faw: [u64; 4],
    faw_next: usize,
    acts: u64,
    ref_due: u64,
    /// All-bank: the rank waits for REF. Per-bank: `pb_bank` waits for REFpb.
    ref_pending: bool,
    /// Per-bank refresh: the next bank (within the rank) to refresh.
    pb_bank: u32,
    open_banks: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bus {
    /// End of the last burst.
    end: u64,
    /// Flat rank that sent it (u32::MAX: none yet).
    rank: u32,
}

/// Counters of one channel.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChannelStats {
    pub reads: u64,
    pub writes: u64,
    pub forwarded: u64,
    pub hits: u64,
    pub misses: u64,
    pub conflicts: u64,
    /// Per [`CommandKind`] in declaration order.
    pub commands: [u64; 9],
    pub latency: Stats,
    pub last_done: u64,
}

struct Channel {
    id: u32,
    /// Reads and writes.
    queues: [Queue; 2],
    banks: Vec<Bank>,
    groups: Vec<Group>,
    ranks: Vec<Rank>,
    buses: Vec<Bus>,
    write_mode: bool,
    /// The first cycle the row / column command bus is free (the same with a shared bus).
    row_free: u64,
    col_free: u64,
    wake: u64,
    /// No request's row command (ACT, PRE) can issue before this cycle: the last full search
    /// found none sooner, and every event that could enable one sooner lowers it.
    row_wake: u64,
    any_ref_pending: bool,
    next_ref_due: u64,
    stats: ChannelStats,
}

/// The fixed part of the model, shared by every channel.
struct Ctx<'a> {
    t: Cycles,
    ranks_per_pc: u32,
    groups_per_rank: u32,
    banks_per_group: u32,
    read_cap: usize,
    write_cap: usize,
    high: f64,
    low: f64,
    closed: bool,
    split: bool,
    /// A row and a column command may issue in one cycle (split bus, 2 commands per cycle).
    dual: bool,
    /// `Scheduler::FirstReady`, and its activated-buffer size.
    first_ready: bool,
    active_cap: usize,
    log: Option<&'a mut Vec<Command>>,
}

enum Enqueue {
    Queued,
    Forwarded,
    Full,
}

impl Channel {
    fn new(id: u32, spec: &DramSpec, t: &Cycles) -> Channel {
        let o = &spec.organization;
        let ranks = (o.pseudo_channels * o.ranks) as usize;
        let groups = ranks * o.bank_groups as usize;
        let banks = groups * o.banks_per_group as usize;
        let c = &spec.controller;
        let first_due = if t.no_refresh {
            u64::MAX
        } else if t.per_bank {
            t.refi_pb
        } else {
            t.refi
        };
        let r = Rank {
            ref_due: first_due,
            ..Rank::default()
        };
        let pcs = o.pseudo_channels as usize;
        let shared = c.queue_scope == QueueScope::Channel;
        let active = c.active_buffer as usize;
        Channel {
            id,
            queues: [
                Queue::new(c.read_queue as usize, pcs, shared, active),
                Queue::new(c.write_queue as usize, pcs, shared, active),
            ],
            banks: vec![
                Bank {
                    open: NO_ROW,
                    act_ready: 0,
                    pre_ready: 0,
                    rd_ready: 0,
                    wr_ready: 0,
                    hits: [0; 2],
                    refresh_pending: false,
                };
                banks
            ],
            groups: vec![Group::default(); groups],
            ranks: vec![r; ranks],
            buses: vec![
                Bus {
                    end: 0,
                    rank: u32::MAX
                };
                o.pseudo_channels as usize
            ],
            write_mode: false,
            row_free: 0,
            col_free: 0,
            wake: first_due,
            row_wake: 0,
            any_ref_pending: false,
            next_ref_due: first_due,
            stats: ChannelStats::default(),
        }
    }

    fn is_empty(&self) -> bool {
        self.queues[0].live == 0 && self.queues[1].live == 0
    }

    fn enqueue(&mut self, ctx: &Ctx, mut r: Req, write: bool, now: u64) -> Enqueue {
        if !write && self.queues[1].live > 0 && self.queues[1].iter().any(|w| w.addr == r.addr) {
            // Served from the write queue (as Ramulator's generic controller does): no DRAM
            // access; the data is back the next cycle.
            self.stats.forwarded += 1;
            self.stats.last_done = self.stats.last_done.max(now + 1);
            return Enqueue::Forwarded;
        }
        let (mode, cap) = if write {
            (1, ctx.write_cap)
        } else {
            (0, ctx.read_cap)
        };
        let q = &mut self.queues[mode];
        if q.per_pc[q.slot(r.pc)] as usize >= cap {
            return Enqueue::Full;
        }
        r.arrive = now;
        let b = &mut self.banks[r.bank as usize];
        if b.open == r.row {
            b.hits[mode] += 1;
            q.hits += 1;
        } else {
            self.row_wake = self.row_wake.min(now);
        }
        q.push(r);
        self.wake = self.wake.min(now);
        Enqueue::Queued
    }

    /// Marks the refreshes that fall due by `now`.
    #[inline]
    fn refreshes_due(&mut self, ctx: &Ctx, now: u64) {
        let t = ctx.t;
        let per_rank = (ctx.groups_per_rank * ctx.banks_per_group) as usize;
        if now >= self.next_ref_due {
            let mut next = u64::MAX;
            for (ri, r) in self.ranks.iter_mut().enumerate() {
                if !r.ref_pending {
                    if r.ref_due <= now {
                        r.ref_pending = true;
                        self.any_ref_pending = true;
                        if t.per_bank {
                            self.banks[ri * per_rank + r.pb_bank as usize].refresh_pending = true;
                        }
                    } else {
                        next = next.min(r.ref_due);
                    }
                }
            }
            self.next_ref_due = next;
        }
    }

    /// The refresh command rank `ri` (which waits for one) needs next: (kind, flat bank, the
    /// cycle it can issue).
    fn refresh_next(&self, ctx: &Ctx, ri: usize) -> (CommandKind, usize, u64) {
        let t = ctx.t;
        let per_rank = (ctx.groups_per_rank * ctx.banks_per_group) as usize;
        let r = &self.ranks[ri];
        let base = ri * per_rank;
        let (kind, bank, ready) = if t.per_bank {
            let bi = base + r.pb_bank as usize;
            let b = &self.banks[bi];
            if b.open != NO_ROW {
                (CommandKind::Pre, bi, b.pre_ready)
            } else {
                (CommandKind::RefPb, bi, b.act_ready.max(r.act_ready))
            }
        } else {
            let banks = &self.banks[base..base + per_rank];
            if r.open_banks > 0 {
                let ready = banks
                    .iter()
                    .filter(|b| b.open != NO_ROW)
                    .map(|b| b.pre_ready)
                    .max()
                    .unwrap_or(0);
                (CommandKind::Prea, base, ready)
            } else {
                let ready = banks.iter().map(|b| b.act_ready).max().unwrap_or(0);
                (CommandKind::Ref, base, ready.max(r.act_ready))
            }
        };
        (kind, bank, ready.max(self.row_free))
    }

    /// When request `r`'s column command (RD or WR) can issue, its row being open.
    #[inline(always)]
    fn cas_ready(&self, t: &Cycles, r: &Req, write: bool) -> u64 {
        let b = &self.banks[r.bank as usize];
        let g = &self.groups[r.group as usize];
        let rank = &self.ranks[r.rank as usize];
        let bus = &self.buses[r.pc as usize];
        let gap = if bus.rank == r.rank { 0 } else { t.rtrs };
        let ready = if write {
            b.wr_ready
                .max(g.wr_ready)
                .max(rank.wr_ready)
                .max((bus.end + gap).saturating_sub(t.cwl))
        } else {
            b.rd_ready
                .max(g.rd_ready)
                .max(rank.rd_ready)
                .max((bus.end + gap).saturating_sub(t.cl))
        };
        ready.max(self.col_free)
    }

    /// When request `r`'s ACT can issue, its bank being closed.
    #[inline(always)]
    fn act_ready(&self, t: &Cycles, r: &Req) -> u64 {
        let b = &self.banks[r.bank as usize];
        let g = &self.groups[r.group as usize];
        let rank = &self.ranks[r.rank as usize];
        let faw = if rank.acts >= 4 {
            rank.faw[rank.faw_next] + t.faw
        } else {
            0
        };
        b.act_ready
            .max(g.act_ready)
            .max(rank.act_ready)
            .max(faw)
            .max(self.row_free)
    }

    /// One scheduling decision at cycle `now`; returns whether a queue slot was freed.
    fn step(&mut self, ctx: &mut Ctx, now: u64) -> bool {
        if ctx.first_ready {
            return self.step_first_ready(ctx, now);
        }
        let t = ctx.t;
        self.refreshes_due(ctx, now);
        // Write drain.
        let write_mode = self.next_write_mode(ctx);
        if write_mode != self.write_mode {
            self.write_mode = write_mode;
            self.row_wake = 0;
        }

        let mut min_ready = u64::MAX;
        // Whether every candidate's readiness was looked at and every ready one issues: then
        // `min_ready` bounds when anything can issue next, even after this cycle's commands.
        let mut complete = true;
        // A refresh command ready now: (rank, kind, flat bank).
        let mut refresh: Option<(usize, CommandKind, usize)> = None;
        if self.any_ref_pending {
            for ri in 0..self.ranks.len() {
                if !self.ranks[ri].ref_pending {
                    continue;
                }
                let (kind, bank, ready) = self.refresh_next(ctx, ri);
                if ready <= now {
                    if refresh.is_none() {
                        refresh = Some((ri, kind, bank));
                    } else {
                        complete = false;
                    }
                } else {
                    min_ready = min_ready.min(ready);
                }
            }
        }

        let write = self.write_mode;
        let mode = usize::from(write);
        let rank_blocks = !t.per_bank;
        let q = &self.queues[mode];
        debug_assert_eq!(
            q.hits as usize,
            q.iter()
                .filter(|r| self.banks[r.bank as usize].open == r.row)
                .count(),
            "hit count out of step"
        );
        // Oldest first: the first ready row hit is the one FR-FCFS takes. The scan stops as soon
        // as nothing it could still find would issue this cycle.
        let nonhits = q.live - q.hits as usize;
        let row_bus_free = !(ctx.dual && refresh.is_some());
        // Whether to look for a row command at all (else none can be ready yet).
        let row_search = row_bus_free && now >= self.row_wake;
        let mut row_min = u64::MAX;
        let mut row_complete = true;
        let mut seen_nonhits = 0;
        let mut best_cas: Option<usize> = None;
        let mut best_row: Option<(usize, CommandKind)> = None;
        for (i, r) in q.items.iter().enumerate() {
            if r.dead {
                continue;
            }
            let b = &self.banks[r.bank as usize];
            let hit = b.open == r.row;
            if !hit {
                seen_nonhits += 1;
            }
            let rank = &self.ranks[r.rank as usize];
            if (rank_blocks && rank.ref_pending) || b.refresh_pending {
                continue;
            }
            if hit {
                if best_cas.is_some() {
                    complete = false;
                    continue;
                }
                let ready = self.cas_ready(&t, r, write);
                if ready <= now {
                    best_cas = Some(i);
                    // One command per cycle takes the hit; a dual-issue split bus may still
                    // want a row command.
                    if !ctx.dual || !row_search || best_row.is_some() || seen_nonhits == nonhits {
                        complete = false;
                        row_complete = seen_nonhits == nonhits;
                        break;
                    }
                } else {
                    min_ready = min_ready.min(ready);
                }
            } else {
                if !row_search {
                    if !row_bus_free {
                        complete = false;
                    }
                    if best_cas.is_some() && seen_nonhits == nonhits {
                        break;
                    }
                    continue;
                }
                if best_row.is_some() {
                    complete = false;
                    if best_cas.is_some() && seen_nonhits == nonhits {
                        break;
                    }
                    continue;
                }
                let ready = if b.open != NO_ROW {
                    if b.hits[mode] > 0 {
                        // Row hits still queued: keep the row open for them (a column
                        // command that empties them lowers `row_wake`).
                        if best_cas.is_some() && seen_nonhits == nonhits {
                            complete = false;
                            break;
                        }
                        continue;
                    }
                    b.pre_ready.max(self.row_free)
                } else {
                    self.act_ready(&t, r)
                };
                if ready <= now {
                    let kind = if b.open != NO_ROW {
                        CommandKind::Pre
                    } else {
                        CommandKind::Act
                    };
                    best_row = Some((i, kind));
                    if best_cas.is_some() {
                        complete = false;
                        row_complete = false;
                        break;
                    }
                } else {
                    min_ready = min_ready.min(ready);
                    row_min = row_min.min(ready);
                    if best_cas.is_some() && seen_nonhits == nonhits {
                        complete = false;
                        break;
                    }
                }
            }
        }

        if row_search {
            // A full search bounds the next row command; after finding one (it issues now) or
            // stopping early, search again next cycle.
            self.row_wake = if row_complete && best_row.is_none() {
                row_min
            } else {
                now + 1
            };
        } else if row_bus_free {
            min_ready = min_ready.min(self.row_wake);
        }
        // What issues this cycle: refresh first; then, one command per cycle, a row hit before
        // anything else; dual issue (split bus), a row and a column command.
        let (row, cas) = if ctx.dual {
            let row = match refresh {
                Some(_) => None,
                None => best_row,
            };
            (row, best_cas)
        } else if refresh.is_some() {
            (None, None)
        } else if best_cas.is_some() {
            (None, best_cas)
        } else {
            (best_row, None)
        };
        if row.is_none() && best_row.is_some() || cas.is_none() && best_cas.is_some() {
            complete = false; // ready, but the bus went to something else
        }
        let mut issued = false;
        let mut freed = false;
        // The earliest cycle a request that this cycle's commands enable could issue.
        let mut enabled = u64::MAX;
        if let Some((ri, kind, bank)) = refresh {
            enabled = enabled.min(self.refresh_command(ctx, ri, kind, bank, now));
            self.row_wake = self.row_wake.min(now + 1);
            issued = true;
        }
        if let Some((i, kind)) = row {
            enabled = enabled.min(self.row_command(ctx, mode, i, kind, now));
            self.row_wake = self.row_wake.min(now + 1);
            issued = true;
        }
        if let Some(i) = cas {
            let e = self.column_command(ctx, mode, i, now);
            enabled = enabled.min(e);
            self.row_wake = self.row_wake.min(e);
            issued = true;
            freed = true;
        }
        // Commands only ever push other commands later, except those they enable (`enabled`):
        // with a complete scan, sleep until the earliest of those, the candidates' `min_ready`
        // and the next refresh; after an incomplete one, look again next cycle.
        self.wake = if issued && !complete {
            now + 1
        } else {
            min_ready.min(enabled).min(self.next_ref_due).max(now + 1)
        };
        freed
    }

    /// One decision of `Scheduler::FirstReady` (Ramulator 2.0's generic controller with its
    /// FRFCFS scheduler) at cycle `now`; returns whether a queue slot was freed. In order:
    /// 1. the activated buffer: the oldest request whose column command can issue now;
    /// 2. a refresh that waits: its PREA/PRE or REF/REFpb issues if ready and if it closes no
    ///    row an activated request still needs; while it waits, the requests of its rank
    ///    (all-bank) or bank (per-bank) are held back;
    /// 3. the queue being served (reads, or writes while draining; the watermark rule is
    ///    applied here): the oldest request whose next command (RD/WR, PRE or ACT) can issue
    ///    now, whatever its kind. If that command is a PRE of a bank an activated request
    ///    still needs, nothing issues this cycle (as in Ramulator, which does not fall back to
    ///    the next candidate); so does a column command that auto-precharges (closed page).
    ///
    /// Every candidate is looked at, so when nothing issues the channel sleeps until the
    /// earliest of their ready cycles.
    fn step_first_ready(&mut self, ctx: &mut Ctx, now: u64) -> bool {
        let t = ctx.t;
        self.refreshes_due(ctx, now);
        let mut min_ready = self.next_ref_due;
        // 1. Activated requests.
        if self.queues[0].active + self.queues[1].active > 0 {
            let mut best: Option<(usize, usize, u64)> = None;
            for m in 0..2 {
                for (i, r) in self.queues[m].items.iter().enumerate() {
                    if r.dead || !r.active {
                        continue;
                    }
                    debug_assert_eq!(
                        self.banks[r.bank as usize].open, r.row,
                        "activated row closed"
                    );
                    let ready = self.cas_ready(&t, r, m == 1);
                    if ready <= now {
                        if best.is_none_or(|b| r.arrive < b.2) {
                            best = Some((m, i, r.arrive));
                        }
                    } else {
                        min_ready = min_ready.min(ready);
                    }
                }
            }
            if let Some((m, i, _)) = best {
                self.column_command(ctx, m, i, now);
                self.wake = now + 1;
                // The slot it held was freed when it activated.
                return false;
            }
        }
        // 2. Refresh.
        if self.any_ref_pending {
            for ri in 0..self.ranks.len() {
                if !self.ranks[ri].ref_pending {
                    continue;
                }
                let (kind, bank, ready) = self.refresh_next(ctx, ri);
                if ready > now {
                    min_ready = min_ready.min(ready);
                    continue;
                }
                let needed = match kind {
                    CommandKind::Prea => self.activated(|r| r.rank as usize == ri),
                    CommandKind::Pre => self.activated(|r| r.bank as usize == bank),
                    _ => false,
                };
                if needed {
                    // Waits for the activated requests (their readiness is in `min_ready`).
                    continue;
                }
                self.refresh_command(ctx, ri, kind, bank, now);
                self.wake = now + 1;
                return false;
            }
        }
        // 3. The queue being served.
        self.write_mode = self.next_write_mode(ctx);
        let mode = usize::from(self.write_mode);
        let mut best: Option<(usize, CommandKind)> = None;
        for (i, r) in self.queues[mode].items.iter().enumerate() {
            if r.dead || r.active {
                continue;
            }
            let b = &self.banks[r.bank as usize];
            if (!t.per_bank && self.ranks[r.rank as usize].ref_pending) || b.refresh_pending {
                continue;
            }
            let (kind, ready) = if b.open == r.row {
                (CommandKind::Rd, self.cas_ready(&t, r, mode == 1))
            } else if b.open != NO_ROW {
                (CommandKind::Pre, b.pre_ready.max(self.row_free))
            } else {
                (CommandKind::Act, self.act_ready(&t, r))
            };
            if ready <= now {
                // Arrival order: the first ready request is the oldest.
                best = Some((i, kind));
                break;
            }
            min_ready = min_ready.min(ready);
        }
        let Some((i, kind)) = best else {
            self.wake = min_ready.max(now + 1);
            return false;
        };
        // A closing command (PRE, or a column command with auto-precharge) waits while an
        // activated request still needs the bank.
        if kind == CommandKind::Pre || ctx.closed {
            let bank = self.queues[mode].items[i].bank;
            if self.activated(|r| r.bank == bank) {
                self.wake = now + 1;
                return false;
            }
        }
        self.wake = now + 1;
        if kind == CommandKind::Rd {
            self.column_command(ctx, mode, i, now);
            true
        } else {
            let before = self.queues[mode].per_pc.iter().sum::<u32>();
            self.row_command(ctx, mode, i, kind, now);
            // An ACT that moved its request to the activated buffer freed a slot.
            self.queues[mode].per_pc.iter().sum::<u32>() < before
        }
    }

    /// Whether an activated request satisfies `f`.
    fn activated(&self, f: impl Fn(&Req) -> bool) -> bool {
        self.queues
            .iter()
            .any(|q| q.active > 0 && q.items.iter().any(|r| !r.dead && r.active && f(r)))
    }

    /// The read/write mode the next step will serve (Ramulator's watermark rule, and never an
    /// empty write queue while reads wait).
    fn next_write_mode(&self, ctx: &Ctx) -> bool {
        let (rq, wq) = (self.queues[0].queued(), self.queues[1].queued());
        if !self.write_mode {
            wq as f64 > ctx.high || (rq == 0 && wq > 0)
        } else {
            !(((wq as f64) < ctx.low && rq != 0) || wq == 0)
        }
    }

    /// Counts and logs a command on flat bank `bank` (the rank's first bank for PREA and REF),
    /// and occupies its command bus.
    #[allow(clippy::too_many_arguments)]
    fn log(&mut self, ctx: &mut Ctx, now: u64, kind: CommandKind, bank: usize, row: u32, col: u32) {
        self.stats.commands[kind as usize] += 1;
        let free = now + ctx.t.command_cycles(kind);
        if !ctx.split {
            self.row_free = free;
            self.col_free = free;
        } else if kind.is_row() {
            self.row_free = free;
        } else {
            self.col_free = free;
        }
        if let Some(log) = ctx.log.as_deref_mut() {
            let bpg = ctx.banks_per_group as usize;
            let gpr = ctx.groups_per_rank as usize;
            let rpp = ctx.ranks_per_pc as usize;
            let group = bank / bpg;
            let rank = group / gpr;
            log.push(Command {
                cycle: now,
                channel: self.id,
                pc: (rank / rpp) as u8,
                rank: (rank % rpp) as u8,
                bg: (group % gpr) as u8,
                bank: (bank % bpg) as u8,
                row,
                col,
                kind,
            });
        }
    }

    /// Closes flat bank `bi`: a PRE now (explicit or part of a PREA).
    fn close(&mut self, t: &Cycles, bi: usize, ri: usize, now: u64) {
        let b = &mut self.banks[bi];
        b.open = NO_ROW;
        self.queues[0].hits -= b.hits[0];
        self.queues[1].hits -= b.hits[1];
        b.hits = [0; 2];
        b.act_ready = b.act_ready.max(now + t.rp);
        self.ranks[ri].open_banks -= 1;
    }

    fn refresh_command(
        &mut self,
        ctx: &mut Ctx,
        ri: usize,
        kind: CommandKind,
        bi: usize,
        now: u64,
    ) -> u64 {
        let t = ctx.t;
        let per_rank = (ctx.groups_per_rank * ctx.banks_per_group) as usize;
        match kind {
            CommandKind::Prea => {
                for j in bi..bi + per_rank {
                    if self.banks[j].open != NO_ROW {
                        self.close(&t, j, ri, now);
                    }
                }
                self.log(ctx, now, kind, bi, 0, 0);
                now + t.rp // the REF
            }
            CommandKind::Pre => {
                let row = self.banks[bi].open;
                self.close(&t, bi, ri, now);
                self.log(ctx, now, kind, bi, row, 0);
                now + t.rp // the REFpb
            }
            CommandKind::Ref | CommandKind::RefPb => {
                let r = &mut self.ranks[ri];
                if kind == CommandKind::Ref {
                    r.act_ready = r.act_ready.max(now + t.rfc);
                    r.ref_due += t.refi;
                } else {
                    let b = &mut self.banks[bi];
                    b.act_ready = b.act_ready.max(now + t.rfc_pb);
                    b.refresh_pending = false;
                    r.act_ready = r.act_ready.max(now + t.rrefd);
                    r.pb_bank = (r.pb_bank + 1) % per_rank as u32;
                    r.ref_due += t.refi_pb;
                }
                r.ref_pending = false;
                self.next_ref_due = self.next_ref_due.min(r.ref_due);
                self.any_ref_pending = self.ranks.iter().any(|r| r.ref_pending);
                self.log(ctx, now, kind, bi, 0, 0);
                // The requests it held back (their ACTs wait at least this long).
                now + if kind == CommandKind::Ref {
                    t.rfc
                } else {
                    t.rrefd.min(t.rfc_pb)
                }
            }
            _ => unreachable!("not a refresh command"),
        }
    }

    fn classify(&mut self, mode: usize, i: usize, kind: CommandKind) {
        let r = &mut self.queues[mode].items[i];
        if !r.classified {
            r.classified = true;
            match kind {
                CommandKind::Act => self.stats.misses += 1,
                CommandKind::Pre => self.stats.conflicts += 1,
                _ => self.stats.hits += 1,
            }
        }
    }

    /// Issues the ACT or PRE of request `i` of queue `mode` (0 reads, 1 writes); returns the
    /// earliest cycle a command it enables (the row hits' column commands, the next ACT) could
    /// issue.
    fn row_command(
        &mut self,
        ctx: &mut Ctx,
        mode: usize,
        i: usize,
        kind: CommandKind,
        now: u64,
    ) -> u64 {
        let t = ctx.t;
        self.classify(mode, i, kind);
        let r = self.queues[mode].items[i];
        match kind {
            CommandKind::Act => {
                let mut hits = [0u32; 2];
                for (m, q) in self.queues.iter_mut().enumerate() {
                    hits[m] = q
                        .iter()
                        .filter(|q| q.bank == r.bank && q.row == r.row)
                        .count() as u32;
                    q.hits += hits[m];
                }
                let b = &mut self.banks[r.bank as usize];
                debug_assert_eq!(b.hits, [0, 0], "a closed bank has no hits");
                b.open = r.row;
                b.hits = hits;
                b.act_ready = now + t.rc;
                b.pre_ready = now + t.ras;
                b.rd_ready = now + t.rcd_rd;
                b.wr_ready = now + t.rcd_wr;
                let g = &mut self.groups[r.group as usize];
                g.act_ready = g.act_ready.max(now + t.rrd_l);
                let rk = &mut self.ranks[r.rank as usize];
                rk.act_ready = rk.act_ready.max(now + t.rrd_s);
                rk.faw[rk.faw_next] = now;
                rk.faw_next = (rk.faw_next + 1) % 4;
                rk.acts += 1;
                rk.open_banks += 1;
                let active = self.queues[0].active + self.queues[1].active;
                if active < ctx.active_cap {
                    self.queues[mode].activate(i);
                }
                self.log(ctx, now, kind, r.bank as usize, r.row, r.col);
                now + t.rcd_rd.min(t.rcd_wr)
            }
            CommandKind::Pre => {
                let row = self.banks[r.bank as usize].open;
                self.close(&t, r.bank as usize, r.rank as usize, now);
                self.log(ctx, now, kind, r.bank as usize, row, 0);
                now + t.rp
            }
            _ => unreachable!("not a row command"),
        }
    }

    /// Issues the RD or WR (RDA/WRA closed page) of request `i` of queue `mode` and removes
    /// it; returns the earliest cycle a command it enables could issue (a PRE it no longer
    /// holds back, the ACT after an auto-precharge, anything in the other queue if the mode
    /// turns).
    fn column_command(&mut self, ctx: &mut Ctx, mode: usize, i: usize, now: u64) -> u64 {
        let t = ctx.t;
        let write = mode == 1;
        let kind = match (write, ctx.closed) {
            (false, false) => CommandKind::Rd,
            (false, true) => CommandKind::Rda,
            (true, false) => CommandKind::Wr,
            (true, true) => CommandKind::Wra,
        };
        self.classify(mode, i, kind);
        let q = &mut self.queues[mode];
        let r = q.remove(i);
        let b = &mut self.banks[r.bank as usize];
        debug_assert!(b.hits[mode] > 0, "a row hit was not counted");
        b.hits[mode] = b.hits[mode].saturating_sub(1);
        q.hits = q.hits.saturating_sub(1);
        let g = &mut self.groups[r.group as usize];
        let rk = &mut self.ranks[r.rank as usize];
        let bus = &mut self.buses[r.pc as usize];
        let done;
        if write {
            b.pre_ready = b.pre_ready.max(now + t.wr_to_pre());
            g.wr_ready = g.wr_ready.max(now + t.ccd_l_wr);
            g.rd_ready = g.rd_ready.max(now + t.wr_to_rd(true));
            rk.wr_ready = rk.wr_ready.max(now + t.ccd_s_wr);
            rk.rd_ready = rk.rd_ready.max(now + t.wr_to_rd(false));
            done = now + t.cwl + t.bl;
            self.stats.writes += 1;
        } else {
            b.pre_ready = b.pre_ready.max(now + t.rtp);
            g.rd_ready = g.rd_ready.max(now + t.ccd_l);
            rk.rd_ready = rk.rd_ready.max(now + t.ccd_s);
            rk.wr_ready = rk.wr_ready.max(now + t.rtw);
            done = now + t.cl + t.bl;
            self.stats.reads += 1;
            self.stats.latency.record((done - r.arrive) as f64);
        }
        bus.end = done;
        bus.rank = r.rank;
        if ctx.closed {
            // Auto-precharge once tRTP / write recovery and tRAS allow.
            b.open = NO_ROW;
            self.queues[0].hits -= b.hits[0];
            self.queues[1].hits -= b.hits[1];
            b.hits = [0; 2];
            b.act_ready = b.act_ready.max(b.pre_ready + t.rp);
            rk.open_banks -= 1;
        }
        self.stats.last_done = self.stats.last_done.max(done);
        let b = &self.banks[r.bank as usize];
        let enabled = if ctx.closed {
            b.act_ready
        } else if b.hits[mode] == 0 {
            b.pre_ready
        } else {
            u64::MAX
        };
        self.log(ctx, now, kind, r.bank as usize, r.row, r.col);
        if self.next_write_mode(ctx) != self.write_mode {
            return now + 1;
        }
        enabled
    }
}

/// What a run gives: its counters per channel and, if asked for, its command log.
pub(crate) struct RawRun {
    pub channels: Vec<ChannelStats>,
    pub refreshes: Vec<u64>,
    pub end_cycle: u64,
    pub log: Option<CommandLog>,
    pub mapping: String,
}

/// Runs `accesses` through the memory of a validated `spec`.
pub(crate) fn run<I: Iterator<Item = Access>>(
    spec: &DramSpec,
    accesses: I,
    opts: &SimOptions,
) -> RawRun {
    let o = &spec.organization;
    let mapping = AddressMapping::parse(&spec.controller.address_mapping, o)
        .expect("the spec was validated")
        .hashed(spec.controller.channel_hash);
    let t = Cycles::of(spec);
    let mut log_vec = Vec::new();
    let c = &spec.controller;
    let write_slots = match c.queue_scope {
        QueueScope::PseudoChannel => c.write_queue * o.pseudo_channels,
        QueueScope::Channel => c.write_queue,
    };
    let mut ctx = Ctx {
        t,
        ranks_per_pc: o.ranks,
        groups_per_rank: o.bank_groups,
        banks_per_group: o.banks_per_group,
        read_cap: c.read_queue as usize,
        write_cap: c.write_queue as usize,
        high: c.write_high_watermark * f64::from(write_slots),
        low: c.write_low_watermark * f64::from(write_slots),
        closed: c.page_policy == PagePolicy::Closed,
        split: c.command_bus == CommandBus::Split,
        dual: c.command_bus == CommandBus::Split && spec.commands_per_cycle() == 2,
        first_ready: c.scheduler == Scheduler::FirstReady,
        active_cap: c.active_buffer as usize,
        log: opts.log.then_some(&mut log_vec),
    };
    let mut channels: Vec<Channel> = (0..o.channels).map(|i| Channel::new(i, spec, &t)).collect();
    let (per_cycle, every) = match opts.injection {
        Injection::PerCycle(n) => (n.max(1) as u64, 1),
        Injection::Every(n) => (1, n.max(1) as u64),
        Injection::Unlimited => (u64::MAX, 1),
    };
    // The first offer cycle at or after `c`.
    let offer_at = |c: u64| c.div_ceil(every) * every;

    let mut accesses = accesses;
    let mut head: Option<(Access, Location)> = None;
    let mut exhausted = false;
    let mut blocked_on: Option<u32> = None;
    let mut fe_next = 0u64;
    let mut now = 0u64;
    let (rpp, gpr, bpg) = (o.ranks, o.bank_groups, o.banks_per_group);
    loop {
        // Front end: offer accesses in order.
        if !exhausted && blocked_on.is_none() && now >= fe_next {
            let mut sent = 0u64;
            while sent < per_cycle {
                let (a, l) = match head.take() {
                    Some(x) => x,
                    None => match accesses.next() {
                        Some(a) => (a, mapping.decode(a.addr)),
                        None => {
                            exhausted = true;
                            break;
                        }
                    },
                };
                let rank = l.pc * rpp + l.rank;
                let group = rank * gpr + l.bg;
                let req = Req {
                    arrive: now,
                    addr: a.addr,
                    row: l.row,
                    col: l.col,
                    bank: group * bpg + l.bank,
                    group,
                    rank,
                    pc: l.pc as u8,
                    classified: false,
                    active: false,
                    dead: false,
                };
                match channels[l.channel as usize].enqueue(&ctx, req, a.write, now) {
                    Enqueue::Queued | Enqueue::Forwarded => sent += 1,
                    Enqueue::Full => {
                        head = Some((a, l));
                        blocked_on = Some(l.channel);
                        break;
                    }
                }
            }
            fe_next = offer_at(now + 1);
        }
        // Channels, in index order.
        let mut next = u64::MAX;
        let mut busy = false;
        for ch in &mut channels {
            if ch.wake <= now {
                let freed = ch.step(&mut ctx, now);
                if freed && blocked_on == Some(ch.id) {
                    blocked_on = None;
                    fe_next = offer_at(now + 1);
                }
            }
            busy |= !ch.is_empty();
            next = next.min(ch.wake);
        }
        let fe_active = !exhausted || head.is_some();
        if !fe_active && !busy {
            break;
        }
        if fe_active && blocked_on.is_none() {
            next = next.min(fe_next);
        }
        debug_assert!(next > now && next != u64::MAX, "the simulation would stall");
        now = next;
    }
    let end_cycle = channels
        .iter()
        .map(|c| c.stats.last_done)
        .max()
        .unwrap_or(0)
        .max(now);
    let refreshes = channels
        .iter()
        .map(|c| {
            c.stats.commands[CommandKind::Ref as usize]
                + c.stats.commands[CommandKind::RefPb as usize]
        })
        .collect();
    RawRun {
        channels: channels.into_iter().map(|c| c.stats).collect(),
        refreshes,
        end_cycle,
        log: opts.log.then_some(CommandLog {
            commands: log_vec,
            end_cycle,
        }),
        mapping: if spec.controller.channel_hash {
            format!("{} (channels hashed)", mapping.canonical())
        } else {
            mapping.canonical()
        },
    }
}
