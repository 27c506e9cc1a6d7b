//! The spatial cycle-level engine (`cascade simulate --cycle`): replays a group's mapping step
//! by step on [`crate::engine`], with the off-chip transfers behind the root level timed ideally
//! or by the DRAM model.
//!
//! **What a step is.** The group's shared temporal loops (those above the fusion level's tile,
//! [`StepProfile::steps`]) are walked in nest order; each iteration is a *step*. At a step the
//! fusion level's tile of each tensor either stays or moves: a tensor's tile kept at its root
//! child from loop `c` moves whenever a shared loop at or outside the innermost temporal loop
//! above `c` that the tensor depends on steps (the analytical model's hop analysis; a loop the
//! tensor ignores, with only ignored loops inside it, reuses the tile). A move brings its share
//! of the tensor's root reads in before the step and, for results, sends the tile's updates out
//! after the last step of its stay. A tensor whose innermost moving loop is inside the step (an
//! own loop, or a shared loop folded into the step, below) streams: its traffic is spread over
//! the steps in which its Einsum runs. The bits per tensor are the analytical model's root
//! traffic; when they move is the mapping's.
//!
//! **Timing.** Each step's root reads are one request to the root's read port (a
//! [`Server`]; one server for reads and writes when the level has one shared port), issued in
//! step order into `buffers` slots (double buffering: the load of step `s` waits for the slot
//! step `s − buffers` frees when its compute ends). A step's work is its compute (each unit the
//! sum of its active Einsums' share, the slowest unit — as the analytical model pipelines the
//! units) or its share of the on-chip ports' time, whichever is longer. Data streams through a
//! step in `n` chunks (the temporal iterations inside it): the array starts when the first
//! chunk has arrived (the first step also waits for the first tile to go down the on-chip
//! levels: the pipeline fill), cannot finish before the last chunk plus its work, and its
//! results leave in chunks too, the last ones after the pipeline drain. Events (loads, compute
//! ends, drains) pop from an [`EventQueue`] in time order, so a shared port serves loads and
//! drains as they come.
//!
//! **DRAM.** With ideal timing the root port moves bits at its bandwidth. With a DRAM preset,
//! the group's own transfer stream — per step the moving tiles' reads, interleaved with the
//! previous step's writes, each tensor streaming through its own address region — runs through
//! [`crate::dram::simulate`] (up to `dram_requests` accesses); the bandwidth it achieves there
//! (the preset's peak × the fraction of it reached) bounds the root port's rate where it is
//! below the port's bandwidth, and its mean read latency delays the first load. The report
//! says what that adds: row conflicts, refreshes, read/write turns, a memory slower than the
//! port.
//!
//! **Bounded work.** More than `max_steps` steps fold the innermost shared loops into the step
//! (their moves then stream within it); the report says how many loops were folded.
//!
//! Caveat: on streams that mix reads and writes the write queues decide how often the bus turns
//! around. The GPU HBM presets hold 1024 writes per pseudo-channel (the H200's copy within
//! +4.5%, `reports/memory/h200_hbm.md`); with the DDR5 and LPDDR5 presets' 32-entry queues
//! writes drain in short batches (the H200's copy was −34% with them), so a memory-bound group
//! that reads and writes about equally (a norm, an elementwise op) shows that as DRAM time.
//!
//! Not modelled: tile layouts in DRAM (each tensor streams sequentially through its region);
//! moves between on-chip levels step by step (their port time is spread evenly over the steps);
//! more than one fusion level's double buffer.

use super::analytical::{step_profile, StepProfile};
use crate::dram::{self, Access, DramSpec, SimOptions};
use crate::engine::{EventQueue, Server};
use cascade_mappings::model::{ArchP, GroupEval, GroupPlan, Invalid, SHARED};
use cascade_mappings::problem::Problem;
use serde::Serialize;

/// How transfers to and from the root level are timed.
#[derive(Clone, Copy, Debug)]
pub enum DramTiming<'a> {
    /// The root port's bandwidth, every cycle.
    Ideal,
    /// The DRAM model with this preset behind the root port.
    Timed(&'a DramSpec),
}

/// The engine's settings.
#[derive(Clone, Copy, Debug)]
pub struct CycleOptions<'a> {
    /// Tile slots at the root's child (2: double buffering).
    pub buffers: usize,
    pub dram: DramTiming<'a>,
    /// Steps above which the innermost shared loops fold into the step.
    pub max_steps: u64,
    /// Accesses of the transfer stream the DRAM model runs (the rest is assumed alike).
    pub dram_requests: u64,
}

impl Default for CycleOptions<'_> {
    fn default() -> Self {
        CycleOptions {
            buffers: 2,
            dram: DramTiming::Ideal,
            max_steps: 1 << 16,
            dram_requests: 1 << 20,
        }
    }
}

/// What the DRAM model found on a group's transfer stream.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DramEffect {
    pub memory: String,
    /// Accesses simulated, of the stream's total.
    pub accesses_simulated: u64,
    pub accesses_total: u64,
    /// Bandwidth achieved / the preset's peak.
    pub efficiency: f64,
    /// The root port's rate as a fraction of its bandwidth: 1, or less where the DRAM's
    /// achieved bandwidth (peak × efficiency) is below the port's.
    pub port_rate: f64,
    pub row_hit_rate: f64,
    pub row_conflict_rate: f64,
    pub refreshes: u64,
    pub mean_read_latency_ns: f64,
    /// The engine's cycles with ideal timing, and what DRAM timing adds to them.
    pub ideal_cycles: f64,
    pub added_cycles: f64,
}

/// How one tensor crossed the root level's port in the replay.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TensorMoves {
    pub tensor: String,
    /// `once` (before the first step / after the last), `steps` (at the steps of the shared
    /// loops that move its tile) or `streamed` (spread over the steps its Einsum runs in).
    pub pattern: String,
    /// Steps at which it was read in, and after which it was written out.
    pub reads: u64,
    pub writes: u64,
    pub read_bytes: f64,
    pub write_bytes: f64,
}

/// One group replayed.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GroupCycles {
    pub einsums: Vec<String>,
    pub cycles: f64,
    pub analytical_cycles: f64,
    /// `cycles / analytical_cycles − 1`.
    pub difference: f64,
    pub steps: u64,
    /// Innermost shared loops folded into the step to bound the work.
    pub folded_loops: usize,
    /// Σ per step of its work (compute, or the on-chip ports where slower).
    pub work_cycles: f64,
    /// Cycles the array waited between the first op and the last for data or a free slot.
    pub stall_cycles: f64,
    /// Before the first op, and after the last.
    pub fill_cycles: f64,
    pub drain_cycles: f64,
    pub root_read_bytes: f64,
    pub root_write_bytes: f64,
    /// Busy fraction of the root's port(s) over the run (the busier one when separate).
    pub root_utilization: f64,
    /// Per tensor with root traffic, in tensor order.
    pub moves: Vec<TensorMoves>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dram: Option<DramEffect>,
}

/// When a tensor's root tile moves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Moves {
    /// Once: read before the first step, written after the last.
    Once,
    /// At steps whose outermost changing kept loop is at most this index.
    At(usize),
    /// Spread over the steps where Einsum `k` runs.
    Stream(usize),
}

/// Per-step demands of a group, after folding.
struct Plan {
    count: u64,
    folded: usize,
    read_bits: Vec<f64>,
    write_bits: Vec<f64>,
    work: Vec<f64>,
    chunks: Vec<f64>,
    /// Per step, per tensor: (read bits, write bits) for the DRAM stream.
    per_tensor: Vec<Vec<(usize, f64, f64)>>,
    /// Per tensor with root traffic: its pattern and its reads and writes over the steps.
    moves: Vec<(usize, Moves, u64, u64, f64, f64)>,
}

/// Replays group `g` (see the module's description).
pub fn simulate_group(
    p: &Problem,
    a: &ArchP,
    g: &GroupPlan,
    opts: &CycleOptions,
) -> Result<GroupCycles, Invalid> {
    let (ev, prof) = step_profile(p, a, g)?;
    let plan = plan(p, a, g, &ev, &prof, opts);
    let root = &a.levels[0];
    let einsums = g
        .einsums
        .iter()
        .map(|&e| p.einsums[e].name.clone())
        .collect();
    let ideal = replay(a, &plan, &prof, 1.0, 0.0, opts.buffers);
    let (timed, dram) = match opts.dram {
        DramTiming::Ideal => (ideal, None),
        DramTiming::Timed(spec) => {
            let run = dram_stream(p, a, &plan, spec, opts.dram_requests);
            match run {
                None => (ideal, None),
                Some((report, simulated, total)) => {
                    let eff = report.bandwidth_fraction.clamp(1e-6, 1.0);
                    // The DRAM delivers at most what it achieved on this stream; the port may
                    // be the narrower of the two.
                    let dram_bits = spec.peak_bandwidth() * eff * 8.0 / a.clock_hz;
                    let port_bits = if root.shared_bits_per_cycle.is_finite() {
                        root.shared_bits_per_cycle
                    } else {
                        root.read_bits_per_cycle
                    };
                    let rate = if port_bits.is_finite() {
                        (dram_bits / port_bits).min(1.0)
                    } else {
                        1.0
                    };
                    let lat_cycles = report.read_latency.mean_ns.unwrap_or(0.0) * 1e-9 * a.clock_hz;
                    let t = replay(a, &plan, &prof, rate, lat_cycles, opts.buffers);
                    let effect = DramEffect {
                        memory: report.memory.clone(),
                        accesses_simulated: simulated,
                        accesses_total: total,
                        efficiency: eff,
                        port_rate: rate,
                        row_hit_rate: report.row_hit_rate,
                        row_conflict_rate: report.row_conflict_rate,
                        refreshes: report.refreshes,
                        mean_read_latency_ns: report.read_latency.mean_ns.unwrap_or(0.0),
                        ideal_cycles: ideal.end,
                        added_cycles: t.end - ideal.end,
                    };
                    (t, Some(effect))
                }
            }
        }
    };
    let span = timed.end.max(1e-300);
    let bpb = 1.0 / 8.0;
    Ok(GroupCycles {
        einsums,
        cycles: timed.end,
        analytical_cycles: ev.cycles,
        difference: if ev.cycles > 0.0 {
            timed.end / ev.cycles - 1.0
        } else {
            0.0
        },
        steps: plan.count,
        folded_loops: plan.folded,
        work_cycles: timed.work,
        stall_cycles: timed.stall,
        fill_cycles: timed.first_start,
        drain_cycles: timed.end - timed.last_end,
        root_read_bytes: plan.read_bits.iter().sum::<f64>() * bpb,
        root_write_bytes: plan.write_bits.iter().sum::<f64>() * bpb,
        moves: plan
            .moves
            .iter()
            .map(|&(t, m, reads, writes, rb, wb)| TensorMoves {
                tensor: p.tensors[t].name.clone(),
                pattern: match m {
                    Moves::Once => "once",
                    Moves::At(_) => "steps",
                    Moves::Stream(_) => "streamed",
                }
                .to_string(),
                reads,
                writes,
                read_bytes: rb,
                write_bytes: wb,
            })
            .collect(),
        root_utilization: if root.shared_bits_per_cycle.is_finite() || timed.end <= 0.0 {
            (timed.read_busy / span).min(1.0)
        } else {
            (timed.read_busy.max(timed.write_busy) / span).min(1.0)
        },
        dram,
    })
}

/// Builds the per-step demands.
fn plan(
    p: &Problem,
    a: &ArchP,
    g: &GroupPlan,
    ev: &GroupEval,
    prof: &StepProfile,
    opts: &CycleOptions,
) -> Plan {
    let nt = p.tensors.len();
    // Fold the innermost shared loops until the steps are few enough.
    let mut kept = prof.steps.len();
    let mut count: u64 = prof.steps.iter().map(|s| s.1).product();
    while kept > 0 && count > opts.max_steps.max(1) {
        kept -= 1;
        count /= prof.steps[kept].1;
    }
    let factors: Vec<u64> = prof.steps[..kept].iter().map(|s| s.1).collect();
    let folded_iterations: f64 = prof.steps[kept..].iter().map(|s| s.1 as f64).product();
    let kept_mask: u32 = if kept >= 32 {
        u32::MAX
    } else {
        (1u32 << kept) - 1
    };
    let n = count as usize;
    // Per Einsum: activations over the kept loops and per-step cycles when active.
    let activations = |skipped: u32| -> f64 {
        (0..kept)
            .filter(|b| skipped & (1 << b) == 0)
            .map(|b| factors[b] as f64)
            .product()
    };
    // Per tensor at the root: the bits, and when they move.
    let mut tensors: Vec<(usize, f64, f64, Moves)> = Vec::new();
    for t in 0..nt {
        let x = &ev.actions[t];
        let (r, w) = (x.read_bits, x.update_bits + x.fill_bits);
        if r <= 0.0 && w <= 0.0 {
            continue;
        }
        let Some(hop) = prof
            .root_hops
            .iter()
            .filter(|h| h.tensor == t)
            .min_by_key(|h| h.child_pos)
        else {
            // Root traffic without a hop (cannot happen for a valid plan): stream it.
            tensors.push((t, r, w, Moves::Stream(0)));
            continue;
        };
        let unit = g.binding[hop.einsum];
        let relevant = |i: usize| {
            let l = &g.loops[i];
            !l.spatial()
                && l.factor > 1
                && hop.ranks & (1 << l.rank) != 0
                && (l.owner == SHARED || usize::from(l.owner) == unit)
        };
        let innermost = (0..hop.child_pos.min(g.loops.len()))
            .rev()
            .find(|&i| relevant(i));
        let moves = match innermost {
            None => Moves::Once,
            Some(i) => match prof.steps[..kept].iter().position(|s| s.0 == i) {
                Some(m) => Moves::At(m),
                None => Moves::Stream(hop.einsum),
            },
        };
        tensors.push((t, r, w, moves));
    }
    let mut plan = Plan {
        count,
        folded: prof.steps.len() - kept,
        read_bits: vec![0.0; n],
        write_bits: vec![0.0; n],
        work: vec![0.0; n],
        chunks: vec![1.0; n],
        per_tensor: vec![Vec::new(); n],
        moves: tensors
            .iter()
            .map(|&(t, _, _, m)| (t, m, 0, 0, 0.0, 0.0))
            .collect(),
    };
    // The on-chip levels' port time, spread evenly.
    let on_chip = ev.level_cycles.iter().skip(1).copied().fold(0.0, f64::max) / count as f64;
    let units = a.units.len();
    let mut per_unit = vec![0.0; units];
    let mut digits = vec![0u64; kept];
    // changed[s]: the outermost kept loop whose digit changes entering step s (0 at s = 0 and
    // after the last step, where every tile leaves).
    let mut changed = vec![0usize; n + 1];
    for ch in changed.iter_mut().take(n).skip(1) {
        *ch = advance(&mut digits, &factors);
    }
    digits.iter_mut().for_each(|d| *d = 0);
    let active = |digits: &[u64], skipped: u32| {
        (0..kept).all(|b| skipped & (1 << b) == 0 || digits[b] + 1 == factors[b])
    };
    let moves_at = |m: usize| -> f64 { factors[..=m].iter().map(|&f| f as f64).product() };
    // How many active steps each Einsum has (for streamed tensors).
    let act_count: Vec<f64> = prof
        .work
        .iter()
        .map(|w| activations(w.2 & kept_mask))
        .collect();
    for s in 0..n {
        if s > 0 {
            advance(&mut digits, &factors);
        }
        per_unit.iter_mut().for_each(|x| *x = 0.0);
        let mut chunks: f64 = 1.0;
        for (k, &(u, cyc, skipped)) in prof.work.iter().enumerate() {
            if active(&digits, skipped & kept_mask) {
                per_unit[u] += cyc / activations(skipped & kept_mask).max(1.0);
                chunks = chunks.max(prof.own_iterations.get(k).copied().unwrap_or(1.0));
            }
        }
        let compute = per_unit.iter().copied().fold(0.0, f64::max);
        plan.work[s] = compute.max(on_chip);
        plan.chunks[s] = (chunks * folded_iterations).max(1.0);
        for (i, &(t, r, w, moves)) in tensors.iter().enumerate() {
            let (rs, ws) = match moves {
                Moves::Once => (
                    if s == 0 { r } else { 0.0 },
                    if s + 1 == n { w } else { 0.0 },
                ),
                Moves::At(m) => {
                    let per = moves_at(m);
                    (
                        if s == 0 || changed[s] <= m {
                            r / per
                        } else {
                            0.0
                        },
                        if s + 1 == n || changed[s + 1] <= m {
                            w / per
                        } else {
                            0.0
                        },
                    )
                }
                Moves::Stream(k) => {
                    let skipped = prof.work.get(k).map_or(0, |w| w.2) & kept_mask;
                    if active(&digits, skipped) {
                        let c = act_count.get(k).copied().unwrap_or(1.0).max(1.0);
                        (r / c, w / c)
                    } else {
                        (0.0, 0.0)
                    }
                }
            };
            if rs > 0.0 || ws > 0.0 {
                plan.read_bits[s] += rs;
                plan.write_bits[s] += ws;
                plan.per_tensor[s].push((t, rs, ws));
                let m = &mut plan.moves[i];
                m.2 += u64::from(rs > 0.0);
                m.3 += u64::from(ws > 0.0);
                m.4 += rs / 8.0;
                m.5 += ws / 8.0;
            }
        }
    }
    plan
}

/// Steps a mixed-radix counter (outermost digit first); returns the outermost digit that
/// changed.
fn advance(digits: &mut [u64], factors: &[u64]) -> usize {
    let mut b = digits.len();
    while b > 0 {
        b -= 1;
        digits[b] += 1;
        if digits[b] < factors[b] {
            break;
        }
        digits[b] = 0;
    }
    b
}

/// The replay's timeline.
#[derive(Clone, Copy, Debug, Default)]
struct Timeline {
    end: f64,
    work: f64,
    stall: f64,
    first_start: f64,
    last_end: f64,
    read_busy: f64,
    write_busy: f64,
}

/// Per step: when its load starts and ends, its compute starts and ends, its results are out
/// (NaN until known).
struct Times {
    load_start: Vec<f64>,
    load_end: Vec<f64>,
    start: Vec<f64>,
    end: Vec<f64>,
    drain_end: Vec<f64>,
}

#[derive(Clone, Copy, Debug)]
enum Event {
    /// Issue step s's load (its slot is free and the loads before it are issued).
    Load(usize),
    /// Step s's compute ends (its results are then reserved on the write port).
    Done(usize),
}

/// Runs the steps through the ports and the array. `rate` scales the root port's bandwidth
/// (the DRAM efficiency); `latency` delays the first data.
fn replay(
    a: &ArchP,
    plan: &Plan,
    prof: &StepProfile,
    rate: f64,
    latency: f64,
    buffers: usize,
) -> Timeline {
    let root = &a.levels[0];
    let shared_port = root.shared_bits_per_cycle.is_finite();
    let read_time = |bits: f64| root.port_cycles(bits, 0.0) / rate;
    let write_time = |bits: f64| root.port_cycles(0.0, bits) / rate;
    let n = plan.count as usize;
    let b = buffers.max(1);
    let mut q: EventQueue<Event> = EventQueue::new();
    let mut read = Server::new();
    let mut write = Server::new();
    let mut st = Times {
        load_start: vec![f64::NAN; n],
        load_end: vec![f64::NAN; n],
        start: vec![f64::NAN; n],
        end: vec![f64::NAN; n],
        drain_end: vec![f64::NAN; n],
    };
    let mut issued = 0usize; // loads issued so far
    let mut line = Timeline::default();
    q.push(0.0, Event::Load(0));
    // Starts step s's compute once its load is issued and step s − 1 is done.
    let try_start = |s: usize, q: &mut EventQueue<Event>, st: &mut Times| {
        if s >= n || !st.start[s].is_nan() || st.load_start[s].is_nan() {
            return;
        }
        if s > 0 && st.end[s - 1].is_nan() {
            return;
        }
        let chunks = plan.chunks[s];
        let x = plan.work[s];
        let ld = st.load_end[s] - st.load_start[s];
        let mut t0 = st.load_start[s] + ld / chunks;
        if s == 0 {
            // The first tile down the chain: its root edge (at the port's rate) and the rest.
            t0 = st.load_start[s] + (ld / chunks).max(prof.load[0] / rate) + prof.load[1];
        } else {
            t0 = t0.max(st.end[s - 1]);
        }
        if s >= b && !st.drain_end[s - b].is_nan() {
            t0 = t0.max(st.drain_end[s - b]);
        }
        st.start[s] = t0;
        let mut t1 = (t0 + x).max(st.load_end[s] + x / chunks);
        if s == 0 {
            t1 = t1.max(st.load_end[s] + prof.load[1] + x / chunks);
        }
        q.push(t1, Event::Done(s));
    };
    while let Some((t, e)) = q.pop() {
        match e {
            Event::Load(s) => {
                if s != issued || s >= n {
                    continue;
                }
                issued += 1;
                let dur = read_time(plan.read_bits[s]);
                let at = if s == 0 { t + latency } else { t };
                let port = &mut read;
                let begin = port.busy_until().max(at);
                st.load_start[s] = begin;
                st.load_end[s] = port.reserve(at, dur);
                // Fill the other slots at once; later loads wait for a slot.
                if s + 1 < n && s + 1 < b {
                    q.push(t, Event::Load(s + 1));
                }
                try_start(s, &mut q, &mut st);
            }
            Event::Done(s) => {
                let x = plan.work[s];
                let chunks = plan.chunks[s];
                let mut done = t;
                let mut last_chunk = 0.0;
                if s + 1 == n {
                    // The last results up the chain, their root edge at least one chunk.
                    done += prof.drain[1];
                    last_chunk = prof.drain[0] / rate;
                }
                st.end[s] = t;
                let wbits = plan.write_bits[s];
                if wbits > 0.0 {
                    let dur = write_time(wbits);
                    // Results leave in chunks: the first after one chunk's work, the last
                    // after the step (and, at the end, the pipeline drain).
                    let ready =
                        (st.start[s] + x / chunks).max(done + (dur / chunks).max(last_chunk) - dur);
                    let port = if shared_port { &mut read } else { &mut write };
                    st.drain_end[s] = port.reserve(ready, dur);
                } else {
                    st.drain_end[s] = done;
                }
                if s + b < n {
                    q.push(t, Event::Load(s + b));
                }
                try_start(s + 1, &mut q, &mut st);
            }
        }
    }
    let last = n - 1;
    line.first_start = st.start[0];
    line.last_end = st.end[last];
    line.end = st
        .drain_end
        .iter()
        .chain(std::iter::once(
            &(st.end[last] + prof.drain[1] + prof.drain[0] / rate),
        ))
        .copied()
        .filter(|x| !x.is_nan())
        .fold(0.0, f64::max);
    line.work = plan.work.iter().sum();
    line.stall = (st.end[last] - st.start[0] - line.work).max(0.0);
    line.read_busy = read.busy_time();
    line.write_busy = write.busy_time();
    line
}

/// Runs the group's transfer stream through the DRAM model: per step the moving tiles' reads,
/// interleaved access by access with the previous step's writes, each tensor streaming through
/// its own region. Returns the report, the accesses simulated and the stream's total, or `None`
/// when nothing moves.
fn dram_stream(
    p: &Problem,
    a: &ArchP,
    plan: &Plan,
    spec: &DramSpec,
    cap: u64,
) -> Option<(dram::DramReport, u64, u64)> {
    let ab = spec.access_bytes().max(1);
    let cap_bytes = spec.capacity_bytes().max(ab);
    let nt = p.tensors.len();
    // Regions: each tensor's bytes, from a 1 MiB boundary.
    let mut base = vec![0u64; nt];
    let mut size = vec![ab; nt];
    let mut next = 0u64;
    for t in 0..nt {
        let bytes = (p.tensors[t].elems as f64 * a.bits[t].value / 8.0).ceil() as u64;
        size[t] = bytes.div_ceil(ab).max(1) * ab;
        base[t] = next;
        next = (next + size[t]).div_ceil(1 << 20) * (1 << 20);
    }
    let mut cursor = vec![0u64; nt];
    let accesses = |bits: f64| ((bits / 8.0) / ab as f64).ceil() as u64;
    let total: u64 = plan
        .per_tensor
        .iter()
        .flatten()
        .map(|&(_, r, w)| accesses(r) + accesses(w))
        .sum();
    if total == 0 {
        return None;
    }
    let mut stream: Vec<Access> = Vec::with_capacity(total.min(cap) as usize);
    let mut pending_writes: Vec<(usize, u64)> = Vec::new();
    'steps: for step in &plan.per_tensor {
        let mut lanes: Vec<(usize, u64, bool)> = step
            .iter()
            .filter(|x| x.1 > 0.0)
            .map(|&(t, r, _)| (t, accesses(r), false))
            .collect();
        lanes.extend(pending_writes.drain(..).map(|(t, k)| (t, k, true)));
        // Round robin over the lanes, one access each.
        loop {
            let mut any = false;
            for lane in lanes.iter_mut() {
                if lane.1 == 0 {
                    continue;
                }
                any = true;
                lane.1 -= 1;
                let t = lane.0;
                let addr = (base[t] + cursor[t]) % cap_bytes;
                cursor[t] = (cursor[t] + ab) % size[t];
                stream.push(Access {
                    addr,
                    write: lane.2,
                });
                if stream.len() as u64 >= cap {
                    break 'steps;
                }
            }
            if !any {
                break;
            }
        }
        pending_writes.extend(
            step.iter()
                .filter(|x| x.2 > 0.0)
                .map(|&(t, _, w)| (t, accesses(w))),
        );
    }
    if stream.len() < cap as usize {
        for (t, k) in pending_writes {
            for _ in 0..k {
                let addr = (base[t] + cursor[t]) % cap_bytes;
                cursor[t] = (cursor[t] + ab) % size[t];
                stream.push(Access { addr, write: true });
                if stream.len() as u64 >= cap {
                    break;
                }
            }
        }
    }
    let simulated = stream.len() as u64;
    let out = dram::simulate(spec, stream, &SimOptions::default()).ok()?;
    Some((out.report, simulated, total))
}
