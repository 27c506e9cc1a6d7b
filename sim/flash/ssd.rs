//! The event-driven simulation of a NAND-flash SSD (see the module docs).

use std::collections::{BTreeMap, HashMap, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::ftl::{Ftl, GcJob};
use super::spec::FlashSpec;
use crate::engine::{EventQueue, Server, Stats};

/// The request of a page operation no request waits for (a write's translation read).
const BACKGROUND: usize = usize::MAX;

/// How a workload walks the address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pattern {
    /// Request i starts where request i − 1 ended (wrapping at the span).
    Sequential,
    /// Each request starts at a uniformly drawn multiple of its size inside the span.
    Random,
}

/// A closed-loop synthetic workload: `queue_depth` requests outstanding, a new one submitted
/// when one completes, until `requests` have been submitted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    pub pattern: Pattern,
    /// Fraction of requests that read (1.0: reads only, 0.0: writes only).
    pub read_fraction: f64,
    /// Bytes per request.
    pub request_bytes: u64,
    /// Requests outstanding at once.
    pub queue_depth: u32,
    /// Requests in all.
    pub requests: u64,
    /// Bytes of the logical space the requests fall in, from offset 0 (0: the whole drive).
    pub span_bytes: u64,
    /// Seed of the random pattern and the read/write draw.
    pub seed: u64,
}

/// What a run gives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlashReport {
    pub drive: String,
    pub workload: Workload,
    pub requests: u64,
    pub reads: u64,
    pub writes: u64,
    /// Simulated time from the first submission to the last completion, microseconds.
    pub elapsed_us: f64,
    /// Thousands of requests per second.
    pub kiops: f64,
    /// Payload bandwidth, MB/s (10^6 bytes).
    pub bandwidth_mb_s: f64,
    /// Latency from submission to completion, microseconds.
    pub latency_mean_us: f64,
    pub latency_p50_us: f64,
    pub latency_p99_us: f64,
    pub latency_max_us: f64,
    /// The latency's distribution: (µs, fraction of requests at most that long), by histogram
    /// bucket (`engine::Stats`); for plots, not in the JSON.
    #[serde(skip)]
    pub latency_cdf_us: Vec<(f64, f64)>,
    /// Array operations issued: page reads (translation reads included), programs, and how
    /// many of them were multi-plane (more than one plane in one array time).
    pub array_reads: u64,
    pub array_programs: u64,
    pub multi_plane_ops: u64,
    /// Reads of translation pages (mapping-table misses).
    pub translation_reads: u64,
    /// Garbage collection during the run: blocks erased, valid pages moved.
    pub erases: u64,
    pub gc_page_copies: u64,
    /// Flash pages programmed per logical page the host wrote: (host pages + moved pages) /
    /// host pages; 0 when the host wrote nothing.
    pub write_amplification: f64,
    /// Busy fraction of each channel's bus.
    pub channel_utilisation: Vec<f64>,
    /// Mean busy fraction of the dies' arrays.
    pub die_utilisation: f64,
    /// Busy fraction of the host link, device to host and host to device.
    pub host_utilisation_d2h: f64,
    pub host_utilisation_h2d: f64,
}

/// A workload the drive cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlashError {
    #[error("workload field `{field}`: {why}")]
    Workload { field: &'static str, why: String },
}

#[derive(Debug, Clone, Copy)]
enum Event {
    /// Request `r` is submitted.
    Submit(usize),
    /// Request `r`'s command has been fetched and translated: its flash work can start.
    Dispatch(usize),
    /// A write's data has reached the controller.
    DataIn(usize),
    /// Die `d`'s array finished the reads of its batch: their data can leave.
    ArrayReadDone(usize),
    /// Die `d`'s batch is over: its scheduling unit (die or chip) is free for the next.
    DieFree(usize),
    /// Page operation `o` is done (read data at the controller, or page programmed).
    PageDone(usize),
    /// Request `r` is complete at the host.
    Complete(usize),
    /// Page operation `o` of a cached write is in DRAM and can program.
    Flush(usize),
}

#[derive(Debug, Clone)]
struct Request {
    write: bool,
    offset: u64,
    bytes: u64,
    submit: f64,
    /// Page operations outstanding (data, or translations while `translating`).
    left: u32,
    translating: bool,
}

/// What a page operation is besides a host read or program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gc {
    /// A host operation or a translation read.
    No,
    /// A collection's read of a valid page out to the controller; then its program, op `0`.
    Read(usize),
    /// A collection's program of a moved page.
    Program,
    /// A collection's copyback: read and program inside the die.
    Copyback,
    /// A collection's block erase.
    Erase,
}

#[derive(Debug, Clone, Copy)]
struct PageOp {
    req: usize,
    gc: Gc,
    write: bool,
    die: usize,
    plane: u32,
    /// Page index within the plane.
    page: u64,
    /// The translation page a mapping read fetches (`None` for data).
    tpage: Option<u64>,
    page_type: usize,
    bytes: u64,
}

/// The simulation state.
pub struct Ssd<'a> {
    spec: &'a FlashSpec,
    q: EventQueue<Event>,
    channels: Vec<Server>,
    d2h: Server,
    h2d: Server,
    /// The write cache's DRAM.
    dram: Server,
    /// Operations waiting, and whether a batch is running, per scheduling unit: a die, or a
    /// chip without die interleaving ([`Ssd::unit_of`]).
    unit_queue: Vec<VecDeque<usize>>,
    unit_busy: Vec<bool>,
    die_array_busy: Vec<f64>,
    /// The read batch whose array time is running, per die.
    die_batch: Vec<Vec<usize>>,
    ops: Vec<PageOp>,
    reqs: Vec<Request>,
    /// Cached mapping table: translation page → last use; and last use → translation page.
    cmt: HashMap<u64, u64>,
    cmt_lru: BTreeMap<u64, u64>,
    cmt_clock: u64,
    /// Translation pages being read, and the reads waiting for each.
    in_flight: BTreeMap<u64, Vec<usize>>,
    /// Where each logical page lives, blocks, free blocks, garbage collection.
    ftl: Ftl,
    /// Collection operations started by the pages being written, enqueued after them.
    gc_pending: Vec<usize>,
    cache_free: u64,
    /// Bytes of cached writes dispatched to flash and not yet programmed.
    write_back: u64,
    cache_waiting: VecDeque<usize>,
    latency: Stats,
    stats_reads: u64,
    stats_programs: u64,
    stats_multi: u64,
    stats_translations: u64,
    first_submit: f64,
    last_complete: f64,
}

impl<'a> Ssd<'a> {
    fn new(spec: &'a FlashSpec) -> Self {
        let g = &spec.geometry;
        let dies = spec.dies() as usize;
        Ssd {
            spec,
            q: EventQueue::new(),
            channels: vec![Server::new(); g.channels as usize],
            d2h: Server::new(),
            h2d: Server::new(),
            dram: Server::new(),
            unit_queue: vec![VecDeque::new(); dies],
            unit_busy: vec![false; dies],
            die_array_busy: vec![0.0; dies],
            die_batch: vec![Vec::new(); dies],
            ops: Vec::new(),
            reqs: Vec::new(),
            cmt: HashMap::new(),
            cmt_lru: BTreeMap::new(),
            cmt_clock: 0,
            in_flight: BTreeMap::new(),
            ftl: Ftl::new(spec),
            gc_pending: Vec::new(),
            cache_free: spec.controller.write_cache_bytes,
            write_back: 0,
            cache_waiting: VecDeque::new(),
            latency: Stats::new(),
            stats_reads: 0,
            stats_programs: 0,
            stats_multi: 0,
            stats_translations: 0,
            first_submit: f64::INFINITY,
            last_complete: 0.0,
        }
    }

    /// Physical page `ppn` (plane × pages per plane + index) as die, plane of the die, and
    /// page index within the plane. Dies are numbered channel-major, so that a die's channel
    /// is `die % channels`.
    fn place(&self, ppn: u64) -> (usize, u32, u64) {
        let p = self.spec.geometry.planes_per_die as usize;
        let plane = (ppn / self.ftl.per_plane()) as usize;
        (plane / p, (plane % p) as u32, ppn % self.ftl.per_plane())
    }

    /// Where logical page `lpn` lives now: die, plane, and page index within the plane. Pages
    /// are striped channel first, then way, die and plane (MQSim's CWDP order), so
    /// consecutive pages go to different channels; a page moves only within its plane.
    fn locate(&self, lpn: u64) -> (usize, u32, u64) {
        self.place(self.ftl.resolve(lpn))
    }

    /// The operations of collection `job`: each valid page moved (a copyback, or a read out
    /// whose program follows it), then the erase; queued in `gc_pending`.
    fn gc_ops(&mut self, job: &GcJob) {
        let page = u64::from(self.spec.geometry.page_bytes);
        let push = |s: &mut Self, op: PageOp| {
            s.ops.push(op);
            s.ops.len() - 1
        };
        for &(from, to) in &job.moves {
            let (die, plane, idx) = self.place(to);
            let (_, _, old) = self.place(from);
            let prog = PageOp {
                req: BACKGROUND,
                gc: Gc::Program,
                write: true,
                die,
                plane,
                page: idx,
                tpage: None,
                page_type: self.page_type(idx),
                bytes: page,
            };
            if self.spec.controller.gc_copyback {
                let o = push(
                    self,
                    PageOp {
                        gc: Gc::Copyback,
                        ..prog
                    },
                );
                self.gc_pending.push(o);
            } else {
                let p = push(self, prog);
                let read = PageOp {
                    gc: Gc::Read(p),
                    write: false,
                    page: old,
                    page_type: self.page_type(old),
                    ..prog
                };
                let o = push(self, read);
                self.gc_pending.push(o);
            }
        }
        let first = u64::from(job.block) * u64::from(self.spec.geometry.pages_per_block);
        let (die, plane, _) = self.place(job.plane as u64 * self.ftl.per_plane() + first);
        let o = push(
            self,
            PageOp {
                req: BACKGROUND,
                gc: Gc::Erase,
                write: true,
                die,
                plane,
                page: first,
                tpage: None,
                page_type: 0,
                bytes: 0,
            },
        );
        self.gc_pending.push(o);
    }

    /// Enqueues the collection operations the last pages written started.
    fn flush_gc(&mut self, now: f64) {
        for o in std::mem::take(&mut self.gc_pending) {
            self.enqueue(o, now);
        }
    }

    /// The scheduling unit of die `die`: the die itself with die interleaving, else its chip
    /// (die numbers are channel-major within a die position, so `die % (C × W)` is the chip).
    fn unit_of(&self, die: usize) -> usize {
        if self.spec.controller.die_interleaving {
            die
        } else {
            let g = &self.spec.geometry;
            die % (g.channels as usize * g.ways as usize)
        }
    }

    fn channel_of(&self, die: usize) -> usize {
        die % self.spec.geometry.channels as usize
    }

    fn page_type(&self, idx: u64) -> usize {
        let t = self.spec.timing.read_us.len() as u64;
        ((idx % u64::from(self.spec.geometry.pages_per_block)) % t) as usize
    }

    fn host_ns(&self, bytes: f64) -> f64 {
        bytes / self.spec.host_bytes_per_s() * 1e9
    }

    fn chan_ns(&self, bytes: f64) -> f64 {
        bytes / self.spec.channel_bytes_per_s() * 1e9
    }

    /// Splits request `r` into page operations, one per logical page it touches.
    fn page_ops(&mut self, r: usize) -> Vec<usize> {
        let page = u64::from(self.spec.geometry.page_bytes);
        let (offset, bytes, write) = (self.reqs[r].offset, self.reqs[r].bytes, self.reqs[r].write);
        let mut out = Vec::new();
        let mut at = offset;
        while at < offset + bytes {
            let lpn = at / page;
            let end = ((lpn + 1) * page).min(offset + bytes);
            let (die, plane, idx) = if write {
                let (ppn, gc) = self.ftl.write(lpn);
                if let Some(job) = gc {
                    self.gc_ops(&job);
                }
                self.place(ppn)
            } else {
                self.locate(lpn)
            };
            let op = PageOp {
                req: r,
                gc: Gc::No,
                write,
                die,
                plane,
                page: idx,
                tpage: None,
                page_type: self.page_type(idx),
                bytes: end - at,
            };
            self.ops.push(op);
            out.push(self.ops.len() - 1);
            at = end;
        }
        out
    }

    /// Translation pages request `r` misses in the cached mapping table, one per distinct
    /// translation page of its missed entries (the table caches entries, least recently used
    /// out, as DFTL and MQSim do; the entries are cached).
    fn translations(&mut self, r: usize) -> Vec<u64> {
        let cap = self.spec.controller.cmt_entries;
        if cap == 0 {
            return Vec::new();
        }
        let page = u64::from(self.spec.geometry.page_bytes);
        let per_tpage = page / u64::from(self.spec.controller.mapping_entry_bytes);
        let (a, b) = (
            self.reqs[r].offset / page,
            (self.reqs[r].offset + self.reqs[r].bytes - 1) / page,
        );
        let mut missed: Vec<u64> = Vec::new();
        for lpn in a..=b {
            self.cmt_clock += 1;
            if let Some(old) = self.cmt.insert(lpn, self.cmt_clock) {
                self.cmt_lru.remove(&old);
            } else if missed.last() != Some(&(lpn / per_tpage)) {
                missed.push(lpn / per_tpage);
            }
            self.cmt_lru.insert(self.cmt_clock, lpn);
            while self.cmt.len() as u64 > cap {
                let (&stamp, &victim) = self.cmt_lru.iter().next().expect("non-empty");
                self.cmt_lru.remove(&stamp);
                self.cmt.remove(&victim);
            }
        }
        missed
    }

    fn enqueue(&mut self, op: usize, now: f64) {
        let unit = self.unit_of(self.ops[op].die);
        self.unit_queue[unit].push_back(op);
        self.try_start(unit, now);
    }

    /// Starts scheduling unit `unit`'s next batch if it is idle: the oldest queued operation
    /// and, with multi-plane operations, the oldest queued ones of the same kind and die on
    /// the die's other planes.
    fn try_start(&mut self, unit: usize, now: f64) {
        if self.unit_busy[unit] || self.unit_queue[unit].is_empty() {
            return;
        }
        let head = self.unit_queue[unit].pop_front().expect("non-empty");
        let die = self.ops[head].die;
        let ch = self.channel_of(die);
        let cmd = self.spec.timing.command_ns;
        // A collection's erase or copyback: one command, then the die works alone.
        if matches!(self.ops[head].gc, Gc::Erase | Gc::Copyback) {
            self.unit_busy[unit] = true;
            let t = self.channels[ch].reserve(now, cmd);
            let busy = if self.ops[head].gc == Gc::Erase {
                self.spec.timing.erase_us
            } else {
                let ty = self.ops[head].page_type;
                self.stats_reads += 1;
                self.stats_programs += 1;
                self.spec.timing.read_us[ty] + self.spec.timing.program_us[ty]
            } * 1e3;
            self.die_array_busy[die] += busy;
            self.q.push(t + busy, Event::DieFree(die));
            return;
        }
        let mut batch = vec![head];
        if self.spec.timing.multi_plane {
            let planes = self.spec.geometry.planes_per_die as usize;
            let write = self.ops[head].write;
            let mut i = 0;
            while i < self.unit_queue[unit].len() && batch.len() < planes {
                let o = self.unit_queue[unit][i];
                let free = batch
                    .iter()
                    .all(|&b| self.ops[b].plane != self.ops[o].plane);
                // Multi-plane commands address the same page in each plane (ONFI).
                let same_page = self.ops[o].page == self.ops[head].page;
                let plain = !matches!(self.ops[o].gc, Gc::Erase | Gc::Copyback);
                if self.ops[o].write == write
                    && plain
                    && self.ops[o].die == die
                    && free
                    && same_page
                {
                    batch.push(o);
                    self.unit_queue[unit].remove(i);
                } else {
                    i += 1;
                }
            }
        }
        if batch.len() > 1 {
            self.stats_multi += 1;
        }
        self.unit_busy[unit] = true;
        let types = |s: &Self, f: &dyn Fn(usize) -> f64| {
            batch
                .iter()
                .map(|&o| f(s.ops[o].page_type))
                .fold(0.0, f64::max)
        };
        if self.ops[head].write {
            // Command and data in over the channel, page by page, then one program.
            let mut t = now;
            for &o in &batch {
                let xfer = cmd + self.chan_ns(self.ops[o].bytes as f64);
                t = self.channels[ch].reserve(t, xfer);
            }
            let prog = types(self, &|p| self.spec.timing.program_us[p]) * 1e3;
            self.stats_programs += batch.len() as u64;
            self.die_array_busy[die] += prog;
            let done = t + prog;
            for &o in &batch {
                self.q.push(done, Event::PageDone(o));
            }
            self.q.push(done, Event::DieFree(die));
        } else {
            let t = self.channels[ch].reserve(now, cmd);
            let read = types(self, &|p| self.spec.timing.read_us[p]) * 1e3;
            self.stats_reads += batch.len() as u64;
            self.die_array_busy[die] += read;
            self.die_batch[die] = batch;
            self.q.push(t + read, Event::ArrayReadDone(die));
        }
    }

    fn array_read_done(&mut self, die: usize, now: f64) {
        let ch = self.channel_of(die);
        let batch = std::mem::take(&mut self.die_batch[die]);
        let mut last = now;
        for &o in &batch {
            let xfer = self.chan_ns(self.ops[o].bytes as f64);
            last = self.channels[ch].reserve(now, xfer);
            self.q.push(last, Event::PageDone(o));
        }
        // With cache read the page register is free once its data moved to the cache
        // register; otherwise the die holds it until the data has left.
        let free = if self.spec.timing.cache_read {
            now
        } else {
            last
        };
        self.q.push(free, Event::DieFree(die));
    }

    fn page_done(&mut self, o: usize, now: f64) {
        let op = self.ops[o];
        if let Some(tp) = op.tpage {
            // A mapping read: the reads waiting for it go on once all theirs are in.
            for r in self.in_flight.remove(&tp).unwrap_or_default() {
                self.reqs[r].left -= 1;
                if self.reqs[r].left == 0 {
                    self.reqs[r].translating = false;
                    self.issue_data(r, now);
                }
            }
            return;
        }
        match op.gc {
            // A moved page has reached the controller: program it into its new place.
            Gc::Read(program) => return self.enqueue(program, now),
            Gc::Program | Gc::Copyback | Gc::Erase => return,
            Gc::No => {}
        }
        let r = op.req;
        if op.write && self.spec.controller.write_cache_bytes > 0 {
            // A cached write's program frees its cache space; the request completed earlier.
            self.cache_free += self
                .spec
                .controller
                .write_cache_slot_bytes
                .map_or(op.bytes, u64::from);
            self.write_back -= op.bytes;
            self.admit_cached_writes(now);
            return;
        }
        self.reqs[r].left -= 1;
        if self.reqs[r].left > 0 {
            return;
        }
        if self.reqs[r].write {
            self.q.push(now, Event::Complete(r));
        } else {
            let t = self
                .d2h
                .reserve(now, self.host_ns(self.reqs[r].bytes as f64));
            self.q.push(t, Event::Complete(r));
        }
    }

    fn issue_data(&mut self, r: usize, now: f64) {
        let ops = self.page_ops(r);
        self.reqs[r].left = ops.len() as u32;
        for o in ops {
            self.enqueue(o, now);
        }
        self.flush_gc(now);
    }

    fn admit_cached_writes(&mut self, now: f64) {
        while let Some(&r) = self.cache_waiting.front() {
            // Whole slots, one per page touched, when the cache allocates slots.
            let page = u64::from(self.spec.geometry.page_bytes);
            let (a, b) = (
                self.reqs[r].offset / page,
                (self.reqs[r].offset + self.reqs[r].bytes).div_ceil(page),
            );
            let need = match self.spec.controller.write_cache_slot_bytes {
                Some(slot) => (b - a) * u64::from(slot),
                None => self.reqs[r].bytes,
            };
            if need > self.cache_free {
                break;
            }
            // The write-back limit: admitted while less than it is on its way to flash (it
            // may be passed by the last write admitted, as in MQSim).
            if let Some(limit) = self.spec.controller.write_back_limit_bytes {
                if self.write_back >= limit {
                    break;
                }
            }
            self.cache_free -= need;
            self.write_back += self.reqs[r].bytes;
            self.cache_waiting.pop_front();
            // The data enters the cache's DRAM, then the request completes and its pages
            // can program.
            let mb_s = self
                .spec
                .controller
                .write_cache_mb_s
                .unwrap_or(f64::INFINITY);
            let t = self.dram.reserve(now, need as f64 / (mb_s * 1e6) * 1e9);
            let ops = self.page_ops(r);
            self.reqs[r].left = 0;
            // The pages, then the collections they started.
            let gc = std::mem::take(&mut self.gc_pending);
            for o in ops.into_iter().chain(gc) {
                self.q.push(t, Event::Flush(o));
            }
            self.q.push(t, Event::Complete(r));
        }
    }

    fn dispatch(&mut self, r: usize, now: f64) {
        let missed = self.translations(r);
        let write = self.reqs[r].write;
        if write {
            // The data follows the command over the link.
            let t = self
                .h2d
                .reserve(now, self.host_ns(self.reqs[r].bytes as f64));
            self.q.push(t, Event::DataIn(r));
        } else if missed.is_empty() {
            self.issue_data(r, now);
            return;
        } else {
            self.reqs[r].translating = true;
            self.reqs[r].left = missed.len() as u32;
        }
        // Read the translation pages (each lives where its page number stripes to): a read
        // waits for them; a write's are read in the background (the entry is updated in the
        // table, the write does not wait).
        // A translation page already being read is not read again: the request waits for it.
        for tp in missed {
            if let Some(waiters) = self.in_flight.get_mut(&tp) {
                if !write {
                    waiters.push(r);
                }
                continue;
            }
            self.in_flight
                .insert(tp, if write { Vec::new() } else { vec![r] });
            let (die, plane, idx) = self.locate(tp);
            let op = PageOp {
                req: BACKGROUND,
                gc: Gc::No,
                write: false,
                die,
                plane,
                page: idx,
                tpage: Some(tp),
                page_type: self.page_type(idx),
                bytes: u64::from(self.spec.controller.mapping_entry_bytes),
            };
            self.stats_translations += 1;
            self.ops.push(op);
            let o = self.ops.len() - 1;
            self.enqueue(o, now);
        }
    }

    fn data_in(&mut self, r: usize, now: f64) {
        if self.spec.controller.write_cache_bytes > 0 {
            self.cache_waiting.push_back(r);
            self.admit_cached_writes(now);
        } else {
            self.issue_data(r, now);
        }
    }
}

/// Runs `work` on `spec` and reports. The same inputs give the same report, bit for bit.
pub fn run(spec: &FlashSpec, work: &Workload) -> Result<FlashReport, FlashError> {
    let bad = |field, why: String| Err(FlashError::Workload { field, why });
    let logical = spec.logical_bytes();
    let span = if work.span_bytes == 0 {
        logical
    } else {
        work.span_bytes
    };
    if work.request_bytes == 0 {
        return bad("request_bytes", "must be at least 1".into());
    }
    if work.queue_depth == 0 || work.queue_depth > spec.host.queue_entries {
        return bad(
            "queue_depth",
            format!(
                "must be 1..={} (the drive's host.queue_entries), got {}",
                spec.host.queue_entries, work.queue_depth
            ),
        );
    }
    if work.requests == 0 {
        return bad("requests", "must be at least 1".into());
    }
    if !(0.0..=1.0).contains(&work.read_fraction) {
        return bad(
            "read_fraction",
            format!("must be in [0, 1], got {}", work.read_fraction),
        );
    }
    if span > logical || span < work.request_bytes {
        return bad(
            "span_bytes",
            format!(
                "must hold one request and fit the logical space ({logical} bytes), got {span}"
            ),
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(work.seed);
    let slots = span / work.request_bytes;
    let reqs: Vec<(bool, u64, u64)> = (0..work.requests)
        .map(|i| {
            let write = rng.random::<f64>() >= work.read_fraction;
            let offset = match work.pattern {
                Pattern::Sequential => (i % slots) * work.request_bytes,
                Pattern::Random => rng.random_range(0..slots) * work.request_bytes,
            };
            (write, offset, work.request_bytes)
        })
        .collect();
    Ok(simulate(spec, work, &reqs))
}

/// Runs the requests `(write, offset, bytes)` in order, `work.queue_depth` at a time (the
/// rest of `work` is only reported). The caller has checked them against the drive.
pub(crate) fn simulate(
    spec: &FlashSpec,
    work: &Workload,
    reqs: &[(bool, u64, u64)],
) -> FlashReport {
    let mut ssd = Ssd::new(spec);
    if let Some(p) = &spec.precondition {
        precondition(&mut ssd.ftl, p.random_overwrites, p.seed);
    }
    for &(write, offset, bytes) in reqs {
        ssd.reqs.push(Request {
            write,
            offset,
            bytes,
            submit: 0.0,
            left: 0,
            translating: false,
        });
    }
    let n = ssd.reqs.len();
    let first = (work.queue_depth as usize).min(n);
    for r in 0..first {
        ssd.q.push(0.0, Event::Submit(r));
    }
    let mut next = first;
    let sqe = spec.host.command_us * 1e3;
    while let Some((now, e)) = ssd.q.pop() {
        match e {
            Event::Submit(r) => {
                ssd.reqs[r].submit = now;
                ssd.first_submit = ssd.first_submit.min(now);
                // The 64-byte submission entry crosses the link, then the firmware works.
                let t = ssd.h2d.reserve(now, ssd.host_ns(64.0));
                ssd.q.push(t + sqe, Event::Dispatch(r));
            }
            Event::Dispatch(r) => ssd.dispatch(r, now),
            Event::DataIn(r) => ssd.data_in(r, now),
            Event::ArrayReadDone(d) => ssd.array_read_done(d, now),
            Event::DieFree(d) => {
                let unit = ssd.unit_of(d);
                ssd.unit_busy[unit] = false;
                ssd.try_start(unit, now);
            }
            Event::PageDone(o) => ssd.page_done(o, now),
            Event::Flush(o) => ssd.enqueue(o, now),
            Event::Complete(r) => {
                ssd.latency.record((now - ssd.reqs[r].submit) / 1e3);
                ssd.last_complete = ssd.last_complete.max(now);
                if next < n {
                    ssd.q.push(now, Event::Submit(next));
                    next += 1;
                }
            }
        }
    }
    // Cached writes may still be programming after the last completion: the drive is busy
    // until they end, but the host saw the requests complete.
    let elapsed_ns = (ssd.last_complete - ssd.first_submit).max(f64::MIN_POSITIVE);
    let writes = ssd.reqs.iter().filter(|r| r.write).count() as u64;
    let bytes: u64 = ssd.reqs.iter().map(|r| r.bytes).sum();
    let span_all = ssd.q.now().max(elapsed_ns);
    let lat = &ssd.latency;
    FlashReport {
        drive: spec.name.clone(),
        workload: work.clone(),
        requests: n as u64,
        reads: n as u64 - writes,
        writes,
        elapsed_us: elapsed_ns / 1e3,
        kiops: n as f64 / elapsed_ns * 1e9 / 1e3,
        bandwidth_mb_s: bytes as f64 / elapsed_ns * 1e9 / 1e6,
        latency_mean_us: lat.mean().unwrap_or(0.0),
        latency_p50_us: lat.p50().unwrap_or(0.0),
        latency_p99_us: lat.p99().unwrap_or(0.0),
        latency_max_us: lat.max().unwrap_or(0.0),
        latency_cdf_us: lat.cdf(1.0),
        array_reads: ssd.stats_reads,
        array_programs: ssd.stats_programs,
        multi_plane_ops: ssd.stats_multi,
        translation_reads: ssd.stats_translations,
        erases: ssd.ftl.erases,
        gc_page_copies: ssd.ftl.copies,
        write_amplification: if ssd.ftl.host_pages == 0 {
            0.0
        } else {
            (ssd.ftl.host_pages + ssd.ftl.copies) as f64 / ssd.ftl.host_pages as f64
        },
        channel_utilisation: ssd
            .channels
            .iter()
            .map(|c| c.utilisation(span_all))
            .collect(),
        die_utilisation: ssd.die_array_busy.iter().sum::<f64>()
            / (ssd.die_array_busy.len() as f64 * span_all),
        host_utilisation_d2h: ssd.d2h.utilisation(span_all),
        host_utilisation_h2d: ssd.h2d.utilisation(span_all),
    }
}

/// Writes `overwrites` × the logical space in single pages at uniformly drawn logical pages
/// (seeded by `seed`), collecting garbage as the drive would but taking no time, then zeroes
/// the counters: the state a run on a drive written that way starts from. Planes collect
/// independently (a logical page stays in its plane), so plane 0 alone is overwritten,
/// `overwrites` × its logical pages, and its state given to every plane: each plane is in the
/// state random overwrites leave it in, at 1/planes of the work.
pub(crate) fn precondition(ftl: &mut Ftl, overwrites: f64, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let per = ftl.logical_per_plane();
    let n = (overwrites * per as f64).round() as u64;
    for _ in 0..n {
        let lpn = ftl.home_lpn(0, rng.random_range(0..per));
        ftl.write(lpn);
    }
    ftl.replicate_plane_0();
    (ftl.host_pages, ftl.copies, ftl.erases) = (0, 0, 0);
}
