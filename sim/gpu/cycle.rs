//! Cycle-level discrete-event simulation of a GPU mapping.
//!
//! The simulation replays the same [`KernelPlan`]s as the analytical model, event by event, in
//! core-clock cycles:
//!
//! - **SMs and CTAs.** CTAs are dispatched in grid order. Because all SMs run the same kind of
//!   CTA, one SM is simulated and the others are aggregated into it: the SM's slots (as many as
//!   the occupancy allows) run *chunks* of up to one CTA per SM (`sms` consecutive CTAs), and a
//!   slot takes the next chunk as soon as its previous one finishes (the hardware block
//!   scheduler's greedy refill). A chunk's memory requests carry the bytes of all its CTAs, so
//!   the shared servers see the whole GPU's traffic. Kernels whose CTAs have different step
//!   counts (causal attention) are simulated on every SM, one CTA per chunk: the first CTAs
//!   go round-robin over the SMs, then each to the slot that frees first, so SMs that receive
//!   long CTAs late finish last, as on the hardware.
//! - **CTA pipeline.** A CTA issues loads for its first `stages` steps, runs each step's
//!   arithmetic on the SM's compute server once that step's tile has arrived (tensor cores or
//!   CUDA cores, one step at a time; among the resident CTAs with a tile ready, the oldest goes
//!   first, as the warp schedulers' greedy-then-oldest policy does), and reuses a buffer for
//!   the load `stages` steps ahead when the step that used it finishes. After the last step it
//!   writes its epilogue; the CTA ends when the stores are acknowledged by L2.
//! - **Memory.** Every load and store passes the L2 server (bandwidth `l2_bandwidth`); L2
//!   misses and all stores also pass the HBM channel servers (`hbm_channels` servers of
//!   `hbm_bandwidth / hbm_channels` each; a chunk's request comes from all SMs and spreads
//!   evenly across channels, as addresses interleave across controllers at fine granularity).
//!   A load completes after its transfer plus the L2 hit latency, or the L2 + DRAM latency
//!   when it missed. A store is done for the SM once L2 has taken it (plus the L2 latency);
//!   its write-back waits in the channels' write buffers, which drain while no read is being
//!   served (controllers favour reads), and the kernel ends when they are empty.
//! - **L2 reuse.** A set (reference counts) of the operand tiles held by resident CTAs: a
//!   tile already held by a running CTA is an L2 hit, otherwise a miss. When the kernel's
//!   shared operands fit in L2, tiles are never dropped (each is fetched from HBM once).
//! - **Launch.** Each kernel starts after the launch overhead; kernels run back to back.
//!
//! The events wait in an [`EventQueue`] (earliest first, ties in scheduling order) and L2 and
//! each channel's reads are [`Server`]s, both from [`crate::engine`]; the channels' write
//! buffers are modelled here.
//!
//! Events are per step per chunk (a load completion and a compute completion), so the event
//! count is about `2 × total steps / SMs` (`2 × total steps` for causal attention, simulated
//! per SM) — under 2·10⁶ for every op of the test suite.

use super::analytical::DirtyWriteback;
use super::error::GpuError;
use super::hw::GpuParams;
use super::mapping::GpuMapping;
use super::op::GpuOp;
use super::plan::{plan_op, KernelPlan, Key, Steps};
use crate::engine::{EventQueue, Server};
use cascade_arch::GpuSpec;
use serde::Serialize;

/// One kernel's simulated result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CycleKernel {
    /// Kernel name.
    pub name: String,
    /// Seconds including the launch overhead.
    pub seconds: f64,
    /// Core cycles from the first CTA's start to the last CTA's end.
    pub cycles: f64,
    /// CTAs.
    pub ctas: u64,
    /// Events processed.
    pub events: u64,
    /// Bytes moved to and from HBM.
    pub hbm_bytes: f64,
    /// Bytes moved between SMs and L2.
    pub l2_bytes: f64,
}

/// A simulated op.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CycleEstimate {
    /// Seconds for the whole op (kernels back to back).
    pub seconds: f64,
    /// Per kernel.
    pub kernels: Vec<CycleKernel>,
    /// Events processed over all kernels.
    pub events: u64,
}

/// Simulates `op` under `mapping` (one entry per kernel) on `spec`.
pub fn simulate(
    op: &GpuOp,
    mapping: &[GpuMapping],
    spec: &GpuSpec,
) -> Result<CycleEstimate, GpuError> {
    let hw = super::search::params(spec);
    let plans = plan_op(op, mapping, &hw)?;
    Ok(simulate_plans(&plans, &hw))
}

/// Simulates lowered kernels.
pub fn simulate_plans(plans: &[KernelPlan], hw: &GpuParams) -> CycleEstimate {
    // The dirty lines L2 holds when the op starts: each kernel's share of their write-backs
    // (`analytical::dirty_writebacks`) is spread over its HBM reads.
    let wbs = super::analytical::dirty_writebacks(plans, hw);
    let kernels: Vec<CycleKernel> = plans
        .iter()
        .zip(wbs)
        .map(|(p, wb)| simulate_kernel(p, hw, wb))
        .collect();
    CycleEstimate {
        seconds: hw.op_start_s + kernels.iter().map(|k| k.seconds).sum::<f64>(),
        events: kernels.iter().map(|k| k.events).sum(),
        kernels,
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Loaded { slot: usize, step: u64 },
    Computed { slot: usize },
    Filled { slot: usize },
    Finished { slot: usize },
}

/// One HBM channel: reads are served first-come first-served; writes (L2 write-backs) wait
/// in a write buffer and drain whenever no read is being served, and at the end of the kernel
/// (memory controllers prioritize reads and drain writes in batches).
#[derive(Debug, Clone, Copy, Default)]
struct Channel {
    /// The read side: reads are served in arrival order.
    reads: Server,
    /// Write bytes waiting.
    debt: f64,
    /// Time up to which idle periods have drained the write buffer.
    drained_to: f64,
}

impl Channel {
    /// Drains the write buffer during the idle time before `now`.
    fn drain(&mut self, now: f64, cyc_per_byte: f64) {
        let idle_from = self.reads.busy_until().max(self.drained_to);
        if now > idle_from {
            self.debt = (self.debt - (now - idle_from) / cyc_per_byte).max(0.0);
            self.drained_to = now;
        }
    }

    /// When everything, writes included, has passed the channel.
    fn end(&self, cyc_per_byte: f64) -> f64 {
        self.reads.busy_until().max(self.drained_to) + self.debt * cyc_per_byte
    }
}

/// Bandwidth servers: HBM channels and L2 (FIFO for everything between SMs and L2).
struct Memory {
    channels: Vec<Channel>,
    cyc_per_byte_channel: f64,
    l2: Server,
    cyc_per_byte_l2: f64,
    hbm_bytes: f64,
    l2_bytes: f64,
    /// Write-back bytes of dirty lines L2 held before the kernel, still to be charged.
    dirty: f64,
    /// Of those, bytes charged per byte the kernel reads from HBM; they join the channels'
    /// write buffers.
    dirty_per_read: f64,
}

impl Memory {
    fn l2(&mut self, now: f64, bytes: f64) -> f64 {
        if bytes <= 0.0 {
            return now;
        }
        self.l2_bytes += bytes;
        self.l2.reserve(now, bytes * self.cyc_per_byte_l2)
    }

    /// A load issued at `now` of `hbm` bytes from HBM (L2 misses) and `l2` bytes through L2;
    /// returns when its data has passed both.
    fn load(&mut self, now: f64, hbm: f64, l2: f64) -> f64 {
        let mut done = self.l2(now, l2);
        if hbm > 0.0 {
            let evicted = self.dirty.min(hbm * self.dirty_per_read);
            self.dirty -= evicted;
            self.hbm_bytes += hbm + evicted;
            let per = hbm / self.channels.len() as f64 * self.cyc_per_byte_channel;
            let wb = evicted / self.channels.len() as f64;
            let cpb = self.cyc_per_byte_channel;
            for ch in &mut self.channels {
                ch.drain(now, cpb);
                done = done.max(ch.reads.reserve(now, per));
                ch.debt += wb;
            }
        }
        done
    }

    /// A store issued at `now`: done for the SM when L2 has taken it; its write-back joins the
    /// channels' write buffers.
    fn store(&mut self, now: f64, bytes: f64) -> f64 {
        let done = self.l2(now, bytes);
        if bytes > 0.0 {
            self.hbm_bytes += bytes;
            let per = bytes / self.channels.len() as f64;
            let cpb = self.cyc_per_byte_channel;
            for ch in &mut self.channels {
                ch.drain(now, cpb);
                ch.debt += per;
            }
        }
        done
    }

    /// When the last write-back has reached HBM.
    fn drained(&self) -> f64 {
        self.channels
            .iter()
            .map(|c| c.end(self.cyc_per_byte_channel))
            .fold(0.0, f64::max)
    }
}

/// Reference counts of the operand tiles held by resident CTAs.
struct L2Set {
    persist: bool,
    row: Vec<u32>,
    col: Vec<u32>,
    group: Vec<u32>,
}

impl L2Set {
    fn new(p: &KernelPlan) -> L2Set {
        let o = &p.order;
        let has = |k: Key| p.streams.iter().any(|s| s.key == k);
        let len = |k: Key, n: u64| if has(k) { n as usize } else { 0 };
        L2Set {
            persist: p.persist,
            row: vec![0; len(Key::Row, o.groups * o.rows)],
            col: vec![0; len(Key::Col, o.groups * o.cols)],
            group: vec![0; len(Key::Group, o.groups)],
        }
    }

    fn counter(&mut self, p: &KernelPlan, key: Key, i: u64) -> Option<&mut u32> {
        let (g, r, c) = p.order.coords(i);
        match key {
            Key::Cta => None,
            Key::Row => Some(&mut self.row[(g * p.order.rows + r) as usize]),
            Key::Col => Some(&mut self.col[(g * p.order.cols + c) as usize]),
            Key::Group => Some(&mut self.group[g as usize]),
        }
    }

    /// Registers CTAs `[a, b)`; returns (miss bytes, all stream bytes), both step-weighted.
    fn acquire(&mut self, p: &KernelPlan, a: u64, b: u64) -> (f64, f64) {
        let (mut miss, mut all) = (0.0, 0.0);
        for i in a..b {
            let steps = p.steps_of(i) as f64;
            for s in &p.streams {
                let bytes = s.bytes * steps;
                all += bytes;
                match self.counter(p, s.key, i) {
                    None => miss += bytes,
                    Some(c) => {
                        if *c == 0 {
                            miss += bytes;
                        }
                        *c += 1;
                    }
                }
            }
        }
        (miss, all)
    }

    fn release(&mut self, p: &KernelPlan, a: u64, b: u64) {
        if self.persist {
            return;
        }
        for i in a..b {
            for s in &p.streams {
                if let Some(c) = self.counter(p, s.key, i) {
                    *c -= 1;
                }
            }
        }
    }
}

/// A chunk running in a slot.
#[derive(Debug, Clone, Default)]
struct Run {
    range: (u64, u64),
    steps: u64,
    load_hbm: f64,
    load_l2: f64,
    first_extra: f64,
    write_step: f64,
    epilogue: f64,
    fill: f64,
    miss_latency: bool,
    next_load: u64,
    next_compute: u64,
    ready: Vec<bool>,
    chunk: u64,
    last_store: f64,
}

struct Sim<'a> {
    p: &'a KernelPlan,
    /// Pending events, in core cycles.
    queue: EventQueue<Kind>,
    mem: Memory,
    l2: L2Set,
    /// Per simulated SM: whether its compute server is busy.
    compute_busy: Vec<bool>,
    /// CTAs per chunk: all SMs (`sms`) when one SM stands for all, 1 when every SM is
    /// simulated.
    unit: u64,
    /// Slots (resident chunks) per simulated SM.
    per_server: usize,
    step_cyc: f64,
    l2_lat: f64,
    miss_lat: f64,
    /// Cycles each step adds to its load's round trip (`KernelPlan::step_latency_s`).
    step_lat: f64,
    /// A row kernel's extra cycles per round trip by the chunks resident on the SM when the
    /// load is issued (`KernelPlan::row_chain`); empty for other kernels. Known differences from
    /// the analytical model: the issue contention it includes partly repeats the queueing of
    /// this simulation's compute servers, and at the start the slots fill one by one, so the
    /// first loads see fewer residents (`gpu::tests::analytical_and_cycle_models_agree_on_the_
    /// library_kernels` holds the two within 5% on layer norm 16384 × 4096).
    row_lat: Vec<f64>,
    /// Cycles a fragment epilogue's stores hold the SM (`KernelPlan::epilogue_issue_s`).
    issue_cyc: f64,
    slots: Vec<Option<Run>>,
    next_chunk: u64,
    chunks: u64,
    end: f64,
}

impl Sim<'_> {
    fn push(&mut self, t: f64, kind: Kind) {
        self.queue.push(t, kind);
    }

    fn start_chunk(&mut self, slot: usize, now: f64) {
        let (a, b) = self.p.chunk_range(self.next_chunk, self.unit);
        self.next_chunk += 1;
        let n = (b - a) as f64;
        let total_steps = self.p.steps_sum(a, b);
        let steps = ((total_steps as f64 / n).round() as u64).max(1);
        let (miss, all) = self.l2.acquire(self.p, a, b);
        let resident = self.p.resident * n;
        let per = steps as f64;
        let run = Run {
            range: (a, b),
            steps,
            load_hbm: miss / per,
            load_l2: all / per,
            first_extra: resident,
            write_step: self.p.write_per_step * total_steps as f64 / per,
            epilogue: self.p.epilogue * n,
            fill: self.p.epilogue_fill * n,
            miss_latency: miss + resident > 0.0,
            ready: vec![false; self.p.stages as usize],
            chunk: self.next_chunk - 1,
            ..Run::default()
        };
        let first = run.steps.min(u64::from(self.p.stages));
        self.slots[slot] = Some(run);
        for _ in 0..first {
            self.issue_load(slot, now);
        }
    }

    fn issue_load(&mut self, slot: usize, now: f64) {
        let resident = {
            let first = (slot / self.per_server) * self.per_server;
            self.slots[first..first + self.per_server]
                .iter()
                .filter(|r| r.is_some())
                .count()
        };
        let run = self.slots[slot].as_mut().expect("slot runs a chunk");
        let step = run.next_load;
        run.next_load += 1;
        let extra = if step == 0 { run.first_extra } else { 0.0 };
        let (hbm, l2) = (run.load_hbm + extra, run.load_l2 + extra);
        let lat = self.step_lat
            + self.row_lat.get(resident).copied().unwrap_or(0.0)
            + if run.miss_latency {
                self.miss_lat
            } else {
                self.l2_lat
            };
        let done = self.mem.load(now, hbm, l2) + lat;
        self.push(done, Kind::Loaded { slot, step });
    }

    /// Starts the next step on the compute server of the SM holding `slot` if it is idle:
    /// among its resident CTAs whose next step's tile has arrived, the oldest goes first
    /// (greedy-then-oldest).
    fn dispatch_compute(&mut self, slot: usize, now: f64) {
        let server = slot / self.per_server;
        if self.compute_busy[server] {
            return;
        }
        let stages = u64::from(self.p.stages);
        let first = server * self.per_server;
        let pick = self.slots[first..first + self.per_server]
            .iter()
            .enumerate()
            .map(|(i, r)| (first + i, r))
            .filter_map(|(i, r)| {
                let r = r.as_ref()?;
                let ready = r.next_compute < r.steps && r.ready[(r.next_compute % stages) as usize];
                ready.then_some((r.chunk, i))
            })
            .min();
        if let Some((_, slot)) = pick {
            let run = self.slots[slot].as_mut().expect("slot runs a chunk");
            let idx = (run.next_compute % stages) as usize;
            run.ready[idx] = false;
            self.compute_busy[server] = true;
            self.push(now + self.step_cyc, Kind::Computed { slot });
        }
    }

    fn compute_done(&mut self, slot: usize, now: f64) {
        let server = slot / self.per_server;
        self.compute_busy[server] = false;
        let (write, more_loads, finished, epilogue) = {
            let run = self.slots[slot].as_mut().expect("slot runs a chunk");
            run.next_compute += 1;
            (
                run.write_step,
                run.next_load < run.steps,
                run.next_compute == run.steps,
                run.epilogue,
            )
        };
        if write > 0.0 {
            let done = self.mem.store(now, write) + self.l2_lat;
            let run = self.slots[slot].as_mut().expect("slot runs a chunk");
            run.last_store = run.last_store.max(done);
        }
        if more_loads {
            self.issue_load(slot, now);
        }
        if finished {
            let fill = self.slots[slot].as_ref().map_or(0.0, |r| r.fill);
            if fill > 0.0 {
                // Fragment epilogue: the partial sectors come from HBM first and the merged
                // sectors go back to it; the SM's load/store pipe (and so its compute) is held
                // until both have passed the channels.
                self.compute_busy[server] = true;
                // The stores issue while the fills are under way.
                let done = (self.mem.load(now, fill + epilogue, 0.0) + self.miss_lat)
                    .max(now + self.issue_cyc);
                self.mem.hbm_bytes -= epilogue;
                self.push(done, Kind::Filled { slot });
                return;
            }
            self.store_epilogue(slot, now, epilogue);
        }
        self.dispatch_compute(slot, now);
    }

    fn store_epilogue(&mut self, slot: usize, now: f64, epilogue: f64) {
        let stored = if epilogue > 0.0 {
            self.mem.store(now, epilogue) + self.l2_lat
        } else {
            now
        };
        let last = self.slots[slot].as_ref().map_or(now, |r| r.last_store);
        self.push(stored.max(last), Kind::Finished { slot });
    }

    fn fill_done(&mut self, slot: usize, now: f64) {
        self.compute_busy[slot / self.per_server] = false;
        // The write-back already passed the channels with the fill: only L2 takes the stores.
        let epilogue = self.slots[slot].as_ref().map_or(0.0, |r| r.epilogue);
        let stored = self.mem.l2(now, epilogue) + self.l2_lat;
        self.mem.hbm_bytes += epilogue;
        let last = self.slots[slot].as_ref().map_or(now, |r| r.last_store);
        self.push(stored.max(last), Kind::Finished { slot });
        self.dispatch_compute(slot, now);
    }

    fn cta_done(&mut self, slot: usize, now: f64) {
        let run = self.slots[slot].take().expect("slot runs a chunk");
        self.l2.release(self.p, run.range.0, run.range.1);
        self.end = self.end.max(now);
        if self.p.lockstep {
            // Lockstep CTAs (`KernelPlan::lockstep`): the SM's next chunks start together,
            // when the last of its resident chunks has finished.
            let server = slot / self.per_server;
            let first = server * self.per_server;
            let range = first..first + self.per_server;
            if self.slots[range.clone()].iter().all(|r| r.is_none()) {
                for s in range {
                    if self.next_chunk < self.chunks {
                        self.start_chunk(s, now);
                    }
                }
            }
        } else if self.next_chunk < self.chunks {
            self.start_chunk(slot, now);
        }
        self.dispatch_compute(slot, now);
    }

    fn run(&mut self) {
        // The first chunks go round-robin over the simulated SMs, as the block scheduler
        // spreads the first CTAs over the SMs.
        let servers = self.compute_busy.len();
        for k in 0..self.per_server {
            for server in 0..servers {
                if self.next_chunk < self.chunks {
                    self.start_chunk(server * self.per_server + k, 0.0);
                }
            }
        }
        while let Some((t, kind)) = self.queue.pop() {
            match kind {
                Kind::Loaded { slot, step } => {
                    let stages = self.p.stages as u64;
                    let run = self.slots[slot].as_mut().expect("slot runs a chunk");
                    run.ready[(step % stages) as usize] = true;
                    self.dispatch_compute(slot, t);
                }
                Kind::Computed { slot } => self.compute_done(slot, t),
                Kind::Filled { slot } => self.fill_done(slot, t),
                Kind::Finished { slot } => self.cta_done(slot, t),
            }
        }
    }
}

/// Simulates one kernel that also writes back the dirty lines `wb` it found in L2.
fn simulate_kernel(p: &KernelPlan, hw: &GpuParams, wb: DirtyWriteback) -> CycleKernel {
    let clock = hw.clock_hz;
    let sms = u64::from(hw.sms);
    // CTAs of different lengths (per-row steps: causal attention) are simulated one by one on
    // every SM, so that the SMs that receive the long CTAs late can finish last; otherwise one
    // SM stands for all and a chunk carries one CTA per SM.
    let per_sm = matches!(p.steps, Steps::PerRow { .. });
    let unit = if per_sm { 1 } else { sms };
    let chunks = p.chunks(unit);
    let occ = (p.occupancy as u64).max(1);
    let (servers, per_server) = if per_sm {
        (sms.min(chunks).max(1), occ)
    } else {
        (1, occ.min(chunks).max(1))
    };
    let mut sim = Sim {
        p,
        queue: EventQueue::new(),
        mem: Memory {
            channels: vec![Channel::default(); hw.hbm_channels as usize],
            cyc_per_byte_channel: clock * f64::from(hw.hbm_channels)
                / hw.hbm_bw_for(p.hbm_read_share(sms, wb.bytes)),
            l2: Server::new(),
            cyc_per_byte_l2: clock / hw.l2_bw_for(p.vector),
            hbm_bytes: 0.0,
            l2_bytes: 0.0,
            dirty: wb.bytes.max(0.0),
            dirty_per_read: if wb.reads > 0.0 {
                wb.bytes / wb.reads
            } else {
                0.0
            },
        },
        l2: L2Set::new(p),
        compute_busy: vec![false; servers as usize],
        unit,
        per_server: per_server as usize,
        step_cyc: p.sm_step_s(sms) * clock,
        l2_lat: hw.l2_latency_s * clock,
        miss_lat: hw.miss_latency_s * clock,
        step_lat: p.step_latency_s * clock,
        row_lat: p.row_chain.map_or_else(Vec::new, |rc| {
            (0..=per_server)
                .map(|r| rc.extra_s(hw, r as f64) * clock)
                .collect()
        }),
        issue_cyc: p.epilogue_issue_s * clock,
        slots: vec![None; (servers * per_server) as usize],
        next_chunk: 0,
        chunks,
        end: 0.0,
    };
    sim.run();
    // The kernel is over when its last CTA has finished and its write-backs have reached HBM
    // (a back-to-back launch would otherwise find them still queued).
    sim.end = sim.end.max(sim.mem.drained());
    CycleKernel {
        name: p.name.clone(),
        seconds: hw.start_s(p.mapping.instr) + sim.end / clock,
        cycles: sim.end,
        ctas: p.ctas(),
        events: sim.queue.processed(),
        hbm_bytes: sim.mem.hbm_bytes,
        l2_bytes: sim.mem.l2_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel's expected result: name, then `to_bits` of seconds and cycles, CTAs, events,
    /// `to_bits` of HBM and L2 bytes.
    type Kernel = (&'static str, u64, u64, u64, u64, u64, u64);

    /// Results the simulation gave before it moved onto `crate::engine` (commit 0feb0f2, its
    /// private event heap and hand-kept server times), recorded with
    /// `gpu::tests::dump_cycle_bits`: preset, op, `to_bits` of the op's seconds, its events, and
    /// per kernel. They cover one SM standing for all (GEMMs, BMM, copy, softmax, norms), every
    /// SM simulated (causal attention), lockstep FA2 CTAs, split-K and split-KV combines and
    /// multi-kernel ops whose dirty L2 lines are written back by the next kernel.
    #[rustfmt::skip]
    const PINNED: &[(&str, &str, u64, u64, &[Kernel])] = &[
    (
        "h100",
        "gemm m=4096 n=4096 k=4096 dtype=bf16",
        0x3f27f5257f5104ec,
        1028,
        &[
            ("gemm", 0x3f27f5257f5104ec, 0x41143b878081e31f, 512, 1028, 0x41a8600000000000, 0x41d8800000000000),
        ],
    ),
    (
        "h100",
        "gemm m=1 n=4096 k=4096 dtype=bf16",
        0x3eec01b4ecab42ee,
        129,
        &[
            ("gemm", 0x3eec01b4ecab42ee, 0x40d4ef703b967c0a, 64, 129, 0x4180020000000000, 0x4180410000000000),
        ],
    ),
    (
        "h100",
        "bmm batch=8 m=64 n=14336 k=4096 dtype=bf16",
        0x3f34f9815499b6d8,
        3598,
        &[
            ("gemm", 0x3f34f9815499b6d8, 0x4121c83b44411bee, 1792, 3598, 0x41cc900000000000, 0x41dc380000000000),
        ],
    ),
    (
        "h100",
        "attention b=2 h=16 n=4096 d=128 causal=1 impl=fa2",
        0x3f3c55bc44a33149,
        68608,
        &[
            ("fa2_fwd", 0x3f3c55bc44a33149, 0x41280de5be21a5f5, 1024, 68608, 0x41a0100000000000, 0x41d1820000000000),
        ],
    ),
    (
        "h100",
        "attention b=16 h=16 n=512 d=128 causal=0 impl=fa2",
        0x3f19c4f5db695ae5,
        136,
        &[
            ("fa2_fwd", 0x3f19c4f5db695ae5, 0x410597e118c7d6b5, 1024, 136, 0x41a0100000000000, 0x41b4080000000000),
        ],
    ),
    (
        "h100",
        "attention_unfused b=1 h=32 n=1024 d=128",
        0x3f1be25085017784,
        3148,
        &[
            ("qk_gemm", 0x3f000eeed135c17f, 0x40e9e73247b11fcf, 5632, 387, 0x4194000000000000, 0x41b1800000000001),
            ("softmax", 0x3f083d044c0e9f4a, 0x40f3ec17d3788f73, 32768, 2241, 0x41a0000000000000, 0x41a0000000000000),
            ("pv_gemm", 0x3efef15bd97d1c7e, 0x40e8e71dc856b374, 1024, 520, 0x4194000000000000, 0x41b0800000000000),
        ],
    ),
    (
        "h100",
        "decode_attention b=8 hq=32 hkv=8 l=4096 d=128",
        0x3f0ac0e822e6e0dc,
        38,
        &[
            ("cudnn_sdpa_decode", 0x3f099563175b6bd6, 0x40f5118d3ce0da7b, 128, 33, 0x41a00c1000000000, 0x41a00c1000000000),
            ("cudnn_lean_reduction", 0x3ec2b850b8b75062, 0x4090ea7b0d6a68d3, 16, 5, 0x4114200000000000, 0x4114200000000000),
        ],
    ),
    (
        "h100",
        "copy bytes=16777216",
        0x3eeaf799d0e7e7c1,
        2079,
        &[
            ("copy", 0x3eeaf799d0e7e7c1, 0x40d40cac6f1e57f9, 8192, 2079, 0x4180000000000000, 0x4180000000000000),
        ],
    ),
    (
        "h100",
        "softmax rows=65536 cols=4096 dtype=bf16",
        0x3f50876bb835ff85,
        1491,
        &[
            ("softmax", 0x3f50876bb835ff85, 0x413c1ff912d91452, 65536, 1491, 0x41d0000000000000, 0x41d0000000000000),
        ],
    ),
    (
        "h200",
        "gemm m=1 n=4096 k=14336 dtype=bf16",
        0x3f06a2ead7dc4bc7,
        455,
        &[
            ("gemm", 0x3f0461bd7921497f, 0x40ef80a01faa0cce, 256, 450, 0x41a2378b7a41c036, 0x419c740000000000),
            ("splitk_reduce", 0x3ec234b2097dbfcc, 0x408e53abf6d9df06, 2, 5, 0x40f2000000000000, 0x40f2000000000000),
        ],
    ),
    (
        "h200",
        "gemm m=4096 n=4095 k=4096",
        0x3f4dce7294166c97,
        1028,
        &[
            ("gemm_align1", 0x3f4dbc9470343a32, 0x41394b69eda34d29, 512, 1028, 0x41ac45eca1b80175, 0x41d87f7800000000),
        ],
    ),
    (
        "h200",
        "attention b=1 h=32 n=4096 d=128 causal=1",
        0x3f3012eacd9e1921,
        34816,
        &[
            ("cudnn_sdpa_fwd", 0x3f2fde5d0bb368b0, 0x411ac0b91016ca0c, 1024, 34816, 0x41a30b3b74311eb4, 0x41d1820000000000),
        ],
    ),
    (
        "h200",
        "attention b=16 h=16 n=512 d=64 causal=0 impl=fa3",
        0x3f028094cf6d7d83,
        144,
        &[
            ("fa3_fwd", 0x3f0162b2914a5738, 0x40ea6556d5cfaacd, 2048, 144, 0x419663611dc47712, 0x41b2080000000000),
        ],
    ),
    (
        "h200",
        "decode_attention b=8 hq=64 hkv=8 l=8192 d=128 impl=flash",
        0x3f192dd525a8f698,
        71,
        &[
            ("flash_fwd_splitkv", 0x3f17e0552a395e61, 0x4103fae61c02fd9a, 256, 66, 0x41b230a6f5d15a55, 0x41b0182000000000),
            ("flash_fwd_splitkv_combine", 0x3ec7d1db8bc0a235, 0x40a1264d75020380, 32, 5, 0x4132200000000000, 0x4132200000000000),
        ],
    ),
    (
        "h200",
        "layernorm rows=16384 cols=4096",
        0x3f1cfd1e3ac5b6e8,
        2125,
        &[
            ("layernorm", 0x3f1c6e2d1bb423c3, 0x4107dc625f5e98f3, 16384, 2125, 0x41b10f2faa0abe69, 0x41b0020000000000),
        ],
    ),
    (
        "h200",
        "rmsnorm rows=1 cols=4096",
        0x3ee66c519104f73d,
        17,
        &[
            ("rmsnorm", 0x3ee1f4c898785e12, 0x40c8bdcaa76d3e83, 1, 17, 0x40d401800ffe0040, 0x40d0020000000000),
        ],
    ),
    ];

    /// The port onto the event engine changed no number: same event order, same server times.
    /// The specs drop their memory preset, so that HBM runs at the measured copy fraction as
    /// when the results were recorded (the DRAM model's rates came later).
    #[test]
    fn results_are_bit_identical_to_the_pre_engine_simulation() {
        for &(preset, s, seconds, events, kernels) in PINNED {
            let mut spec = cascade_arch::preset(preset).unwrap().gpu.unwrap();
            spec.memory = None;
            let op = GpuOp::parse(s).unwrap();
            let best = super::super::estimate(&op, &spec);
            let c = simulate(&op, &best.mapping, &spec).unwrap();
            let got: Vec<Kernel> = c
                .kernels
                .iter()
                .map(|k| {
                    (
                        "",
                        k.seconds.to_bits(),
                        k.cycles.to_bits(),
                        k.ctas,
                        k.events,
                        k.hbm_bytes.to_bits(),
                        k.l2_bytes.to_bits(),
                    )
                })
                .collect();
            let names: Vec<&str> = c.kernels.iter().map(|k| k.name.as_str()).collect();
            let want_names: Vec<&str> = kernels.iter().map(|k| k.0).collect();
            let want: Vec<Kernel> = kernels
                .iter()
                .map(|k| ("", k.1, k.2, k.3, k.4, k.5, k.6))
                .collect();
            assert_eq!(names, want_names, "{preset} {s}");
            assert_eq!(got, want, "{preset} {s}: {c:#?}");
            assert_eq!(
                (c.seconds.to_bits(), c.events),
                (seconds, events),
                "{preset} {s}"
            );
        }
    }
}
