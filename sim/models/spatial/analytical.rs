//! The analytical model of a fusion group on a tree of storage levels: Timeloop-class within
//! an Einsum, FuseMax's inter-Einsum semantics across them.
//!
//! **Within an Einsum** (its view of the group's nest, [`GroupPlan::view`]) each tensor moves
//! along a *chain*: the levels on its unit's path that keep it, from its source level down to
//! the PEs (operands), or up from the PEs to its destination (results). For a parent level `A`
//! kept at view position `iA` and its child `B` (the next level of the chain, or the PEs) at
//! `iB ≥ iA`:
//! * `B`'s tile is what the loops inside `iB` touch: per coordinate of the tensor's projection
//!   the bounding interval `Σ coef·(extent inside − 1) + 1` (a sliding window with its halo);
//! * one instance of `B` holds its first tile, then, each time a temporal loop above `iB` steps
//!   (the temporal loops between it and `iB` wrapping to their start), the part of the new tile
//!   the previous one did not hold: a loop irrelevant to the tensor with only irrelevant loops
//!   inside it reuses the tile; a sliding window adds only its leading edge;
//! * the spatial loops above `iB` give the instances of `B` at work. `A` serves all of them; with
//!   multicast, one read serves every child that needs the same data at the same time, so `A`
//!   reads the union of its children's tiles (children along ranks irrelevant to the tensor
//!   share data, along relevant ones they split it);
//! * results flow the other way: each tile `B` retires updates `A` (the children's partial sums
//!   of one element are added on the way when `A`'s network reduces spatially), and a tile that
//!   comes back to `B` with earlier partial sums is first filled with them (a read at `A`);
//!   results move in the partial-sum precision while incomplete (a reduced loop outside the
//!   tile's stay, or copies not yet added), in the tensor's own once final;
//! * the PEs read every operand and write every result once per operation, so the innermost
//!   level that keeps a result reads it back for every accumulation but the first.
//!
//! **Across Einsums** (FuseMax §III): an intermediate streams from producer to consumer when
//! both run on one unit and step together; it passes through the fusion level when the consumer
//! runs on another unit; it is *held* at the fusion level when a consumer must wait for a whole
//! fibre (a later pass over a rank), skips a shared loop the producer steps, or the tensor is
//! carried over an iterative rank — its tile then spans the shared loops from the first one it
//! must survive; spilled, it goes to the root instead, through the levels between. Transfers
//! between levels the group shares happen once per tensor (the Einsums of a step share the
//! fusion level's copy); transfers into a unit's own levels happen per Einsum.
//!
//! **Compute**: an Einsum takes `temporal iterations × cycles per point` (points after MoE
//! routing; the padding of imperfect factors counts). Units work concurrently: each step of the
//! shared loops takes the slowest unit's share of the Einsums active in it; an Einsum that does
//! not iterate a shared loop runs only at that loop's last iteration (an epilogue, such as
//! 1-pass attention's final division). **Latency** = max(compute, every level's port time: the
//! bits one instance moves over its read and write bandwidth). **Energy** = bits moved per action
//! × energy per bit, plus ops × energy per op.

use cascade_mappings::model::{
    Actions, ArchP, CostModel, GroupEval, GroupPlan, Invalid, Keep, Score, SHARED,
};
use cascade_mappings::problem::{AccessP, Problem, Role};

/// Counting conventions where modelling tools differ (see tests/parity/SEMANTICS.md): cascade's
/// own, and those of the peers it is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conventions {
    /// How a level reuses the overlap of consecutive tiles.
    pub halo: Halo,
    /// Partial sums: the first read of each element is skipped once per copy of a level
    /// (`true`, Timeloop) or once per element over all copies (`false`, ZigZag).
    pub first_read_per_copy: bool,
    /// A level that sends a result up to its parent is charged a read for it (ZigZag); Timeloop
    /// charges only the parent's update.
    pub drain_reads: bool,
    /// Latency adds the load of the first tiles before compute and the drain of the last
    /// results after it (the parts that cannot overlap); Timeloop adds neither.
    pub load_drain: bool,
    /// A PE keeps an operand while its innermost loops leave it unchanged (ZigZag's
    /// stationary operand); Timeloop reads every operand at every operation.
    pub pe_operand_reuse: bool,
    /// Energy counts each transfer (a tile, or a PE's word) in whole port accesses, rounded up
    /// (ZigZag); otherwise words pack into accesses across transfers (Timeloop's vector
    /// accesses).
    pub per_transfer_accesses: bool,
}

impl Conventions {
    /// cascade's defaults: Timeloop's counting, with the read a drain costs, and the load and
    /// drain phases in latency.
    pub const CASCADE: Conventions = Conventions {
        halo: Halo::SameStep,
        first_read_per_copy: true,
        drain_reads: true,
        load_drain: true,
        pe_operand_reuse: false,
        per_transfer_accesses: false,
    };
    /// Timeloop v3.0.3.
    pub const TIMELOOP: Conventions = Conventions {
        halo: Halo::SameStep,
        first_read_per_copy: true,
        drain_reads: false,
        load_drain: false,
        pe_operand_reuse: false,
        per_transfer_accesses: false,
    };
    /// ZigZag 3.9.1.
    pub const ZIGZAG: Conventions = Conventions {
        halo: Halo::Never,
        first_read_per_copy: false,
        drain_reads: true,
        load_drain: true,
        pe_operand_reuse: true,
        per_transfer_accesses: true,
    };
}

/// The analytical spatial model.
#[derive(Clone, Copy, Debug)]
pub struct Analytical {
    pub conventions: Conventions,
}

impl Default for Analytical {
    fn default() -> Self {
        Analytical {
            conventions: Conventions::CASCADE,
        }
    }
}

impl CostModel for Analytical {
    fn evaluate(&self, p: &Problem, a: &ArchP, g: &GroupPlan) -> Result<GroupEval, Invalid> {
        with_scratch(|s| run(s, p, a, g, &self.conventions, true))
            .map(|(_, ev)| ev.unwrap_or_default())
    }
    fn score(&self, p: &Problem, a: &ArchP, g: &GroupPlan) -> Result<Score, Invalid> {
        with_scratch(|s| run(s, p, a, g, &self.conventions, false)).map(|(sc, _)| sc)
    }
}

/// Evaluate one group mapping in full, with cascade's conventions.
pub fn evaluate(p: &Problem, a: &ArchP, g: &GroupPlan) -> Result<GroupEval, Invalid> {
    Analytical::default().evaluate(p, a, g)
}

/// A transfer between the root level and its child in one Einsum's chain: what the spatial
/// cycle engine ([`super::cycle`]) moves through the off-chip port step by step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootHop {
    /// The Einsum's position in the group.
    pub einsum: usize,
    pub tensor: usize,
    /// Results going up (updates, and the partial sums a returning tile reads back).
    pub writes: bool,
    /// Global loop index where the child's tile begins (`loops.len()`: the PEs themselves).
    pub child_pos: usize,
    /// Ranks (bitmask) the access depends on.
    pub ranks: u32,
}

/// What the spatial cycle engine needs of the analytical model's analysis of a group, besides
/// its [`GroupEval`]: the shared temporal loops it steps through, each Einsum's compute and the
/// shared loops it skips, the root hops, and the pipeline fill and drain inside the chip.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepProfile {
    /// Shared temporal loops with a factor above 1, outermost first: (global index, factor).
    pub steps: Vec<(usize, u64)>,
    /// Per Einsum of the group: (unit, compute cycles over the whole run, bitmask over `steps`
    /// of the shared loops it does not iterate, so runs only at their last iteration).
    pub work: Vec<(usize, f64, u32)>,
    /// Per Einsum: temporal iterations of its own loops (inside one shared step).
    pub own_iterations: Vec<f64>,
    pub root_hops: Vec<RootHop>,
    /// Where the shared loops end (the first own loop).
    pub shared_end: usize,
    /// The analytical load (the slowest first tile from the root down to the PEs) as its root
    /// edge and the rest of its chain; the drain (the last results up) likewise.
    pub load: [f64; 2],
    pub drain: [f64; 2],
}

/// The full evaluation of a group with cascade's conventions and its [`StepProfile`].
pub fn step_profile(
    p: &Problem,
    a: &ArchP,
    g: &GroupPlan,
) -> Result<(GroupEval, StepProfile), Invalid> {
    with_scratch(|s| {
        s.trace = true;
        let r = run(s, p, a, g, &Conventions::CASCADE, true);
        s.trace = false;
        let (_, ev) = r?;
        let shared_end = g
            .loops
            .iter()
            .position(|l| l.owner != SHARED)
            .unwrap_or(g.loops.len());
        let prof = StepProfile {
            steps: s.steps.iter().map(|&i| (i, g.loops[i].factor)).collect(),
            work: s.work.clone(),
            own_iterations: s.own_iterations.clone(),
            root_hops: s.root_hops.clone(),
            shared_end,
            load: s.load_split,
            drain: s.drain_split,
        };
        Ok((ev.unwrap_or_default(), prof))
    })
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// Working vectors reused across the evaluations of a thread (the mapper evaluates millions).
#[derive(Default)]
struct Scratch {
    views: Vec<View>,
    /// Per `level × tensor`: actions of transfers into units' own levels (summed over Einsums).
    actions: Vec<Actions>,
    /// Per `level × tensor`: actions of transfers between shared levels (one per tensor).
    shared: Vec<Actions>,
    /// Per `level × tensor`: (read, write) bits per instance of the shared transfers.
    shared_port: Vec<[f64; 2]>,
    /// This Einsum's shared-transfer actions and port bits, before they join `shared`.
    local: Vec<Actions>,
    local_port: Vec<[f64; 2]>,
    /// Per level: (read, write) bits per instance.
    port: Vec<[f64; 2]>,
    /// Per level: bits one instance holds.
    used: Vec<f64>,
    /// Cycles to bring the first tiles down before compute, and the last results up after it.
    load: f64,
    drain: f64,
    /// Per `level × tensor`: the largest tile of a tensor at a shared level.
    shared_tiles: Vec<f64>,
    private_used: Vec<f64>,
    work: Vec<(usize, f64, u32)>,
    per_unit: Vec<f64>,
    steps: Vec<usize>,
    inter: Vec<Inter>,
    chain: Vec<(usize, usize)>,
    /// Keep position of group inputs/outputs at the fusion level (tensor, global index).
    io_pos: Vec<(usize, usize)>,
    live: Vec<(usize, usize, f64)>,
    /// `defpos[u * levels + l]`: where level l's own loops begin for unit u.
    defpos: Vec<usize>,
    /// `keep_tab[l * tensors + t]`: the plan's explicit keep of tensor t at level l
    /// ([`NO_KEEP`], [`BYPASS`] or a loop index).
    keep_tab: Vec<u16>,
    /// Per tensor: its index in `inter` ([`NO_INTER`] if not an intermediate of the group).
    inter_of: Vec<u8>,
    /// Per tensor: its derived keep position at the fusion level ([`NO_KEEP`] if none).
    io_tab: Vec<u16>,
    /// Per tensor: whether it is a held intermediate (live at the fusion level).
    live_tab: Vec<bool>,
    /// Per unit: busy cycles, op energy and ops of the group's Einsums bound to it.
    unit_busy: Vec<f64>,
    unit_pj: Vec<f64>,
    unit_ops: Vec<f64>,
    /// Per level: port cycles and (read, fill, update) energy.
    level_cycles: Vec<f64>,
    level_pj: Vec<[f64; 3]>,
    /// [`check_loops`]' spatial products per (owner, node, dim) and last key per unit.
    fan: Vec<(u8, u16, u8, u64)>,
    last: Vec<usize>,
    /// [`io_positions`]' candidates (tensor, Einsum), traffic and tile bits per position, and
    /// chosen position per candidate.
    io_cands: Vec<(usize, usize)>,
    io_traffic: Vec<f64>,
    io_tile: Vec<f64>,
    io_depth: Vec<usize>,
    /// What the spatial cycle engine replays ([`step_profile`]); filled only when `trace`.
    trace: bool,
    root_hops: Vec<RootHop>,
    own_iterations: Vec<f64>,
    load_split: [f64; 2],
    drain_split: [f64; 2],
}

const NO_KEEP: u16 = u16::MAX;
const BYPASS: u16 = u16::MAX - 1;
const NO_INTER: u8 = u8::MAX;

/// One Einsum's view of the nest: its loops, outermost first, with per-rank tables over the
/// Einsum's own ranks.
#[derive(Default, Clone)]
struct View {
    rank: Vec<u8>,
    factor: Vec<u64>,
    spatial: Vec<bool>,
    global: Vec<u16>,
    /// Local index of each leaf rank among the Einsum's ranks (`NO_RANK` if not one).
    local: [u8; 32],
    nr: usize,
    /// `ins[i * nr + local(r)]`: extent of rank r covered by the loops from index i inward.
    ins: Vec<u64>,
    /// `tpre[i * nr + local(r)]`: product of the temporal factors of rank r above index i.
    tpre: Vec<u64>,
    /// `inst[i]`: product of the spatial factors above index i.
    inst: Vec<f64>,
    /// `tprod[i]`: product of the temporal factors above view index i.
    tprod: Vec<f64>,
    /// Product of every temporal factor.
    temporal: f64,
}

const NO_RANK: u8 = u8::MAX;

impl View {
    fn len(&self) -> usize {
        self.rank.len()
    }
    fn build(&mut self, p: &Problem, g: &GroupPlan, e: usize, u: usize) {
        self.rank.clear();
        self.factor.clear();
        self.spatial.clear();
        self.global.clear();
        for i in g.view(p, e, u) {
            let l = &g.loops[i];
            self.rank.push(l.rank);
            self.factor.push(l.factor);
            self.spatial.push(l.spatial());
            self.global.push(i as u16);
        }
        self.local = [NO_RANK; 32];
        let mut m = p.einsums[e].vars;
        let mut nr = 0;
        while m != 0 {
            let r = m.trailing_zeros() as usize;
            m &= m - 1;
            self.local[r] = nr as u8;
            nr += 1;
        }
        self.nr = nr;
        let n = self.len();
        reset(&mut self.ins, (n + 1) * nr, 1);
        for i in (0..n).rev() {
            let (head, tail) = self.ins.split_at_mut((i + 1) * nr);
            head[i * nr..].copy_from_slice(&tail[..nr]);
            head[i * nr + usize::from(self.local[usize::from(self.rank[i])])] *= self.factor[i];
        }
        reset(&mut self.tpre, (n + 1) * nr, 1);
        self.inst.clear();
        self.inst.push(1.0);
        self.tprod.clear();
        self.tprod.push(1.0);
        let mut temporal = 1.0;
        for i in 0..n {
            let (head, tail) = self.tpre.split_at_mut((i + 1) * nr);
            tail[..nr].copy_from_slice(&head[i * nr..]);
            if !self.spatial[i] {
                tail[usize::from(self.local[usize::from(self.rank[i])])] *= self.factor[i];
                temporal *= self.factor[i] as f64;
            }
            self.tprod.push(temporal);
            let x = self.inst[i]
                * if self.spatial[i] {
                    self.factor[i] as f64
                } else {
                    1.0
                };
            self.inst.push(x);
        }
        self.temporal = temporal;
    }
    /// Product of the temporal factors of rank `r` above view index `i`.
    #[inline]
    fn temporal_above(&self, r: usize, i: usize) -> u64 {
        match self.local[r] {
            NO_RANK => 1,
            x => self.tpre[i * self.nr + usize::from(x)],
        }
    }
    /// Extent of rank `r` covered by the loops from view index `i` inward.
    #[inline]
    fn inside(&self, r: usize, i: usize) -> u64 {
        match self.local[r] {
            NO_RANK => 1,
            x => self.ins[i * self.nr + usize::from(x)],
        }
    }
    /// Instances at work at view index `i`: the product of the spatial factors above it.
    #[inline]
    fn instances(&self, i: usize) -> f64 {
        self.inst[i]
    }
    fn temporal_iterations(&self) -> f64 {
        self.temporal
    }
    /// The view index of a global loop position (the first of the view's loops at or after it).
    fn at(&self, global: usize) -> usize {
        self.global
            .iter()
            .position(|&g| usize::from(g) >= global)
            .unwrap_or(self.len())
    }
}

/// How a level reuses the overlap of consecutive tiles (sliding windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Halo {
    /// Timeloop v3: the new tile minus the previous one while the tile keeps moving by the
    /// same translation; after any change of translation the whole tile is fetched.
    SameStep,
    /// Always the new tile minus the previous one.
    Always,
    /// Never: a tile that moves is fetched whole (ZigZag).
    Never,
}

/// Coordinate extents of `acc`'s tile when rank `r` spans `ext(r)` values.
fn coord_extents(acc: &AccessP, ext: &impl Fn(usize) -> u64, out: &mut [u64; 8]) -> usize {
    let n = acc.coords.len().min(out.len());
    for (c, o) in acc.coords.iter().take(n).zip(out.iter_mut()) {
        *o = 1 + c
            .terms
            .iter()
            .map(|&(r, k)| k * (ext(r).max(1) - 1))
            .sum::<u64>();
    }
    n
}

/// What one instance of a level receives over the run: words, and the transfers (the first
/// tile and every step that brings new data) they arrive in.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Fetch {
    words: f64,
    transfers: f64,
}

impl std::ops::Mul<f64> for Fetch {
    type Output = Fetch;
    fn mul(self, n: f64) -> Fetch {
        Fetch {
            words: self.words * n,
            transfers: self.transfers * n,
        }
    }
}

/// Per-instance entries of a tile kept at view index `ib` whose rank extents are `ext(r)` (the
/// loops inside `ib`, possibly widened to a union over spatial loops above it): the first tile,
/// plus at every step of a temporal loop above `ib` (the temporal loops between it and `ib`
/// wrapping) what the new tile holds that the previous one did not, as `halo` allows.
/// [`entries`] of an access without halos whose tile (elements) is `tile`: a tile that moves
/// shares nothing with the previous one, whatever the halo rule: the first tile, then a whole
/// tile per step that moves it. A loop moves the tile if it is relevant or a relevant temporal
/// loop inside it wraps, so every temporal loop down to the innermost relevant one above `ib`
/// (k) moves it: 1 + Σ_{j ≤ k} (f_j − 1) · Π_{i < j} f_i = Π_{j ≤ k} f_j transfers.
fn plain_entries(v: &View, acc: &AccessP, ib: usize, tile: f64) -> Fetch {
    let k = (0..ib)
        .rev()
        .find(|&j| !v.spatial[j] && v.factor[j] > 1 && acc.ranks & (1 << v.rank[j]) != 0);
    let transfers = k.map_or(1.0, |k| v.tprod[k + 1]);
    Fetch {
        words: tile * transfers,
        transfers,
    }
}

fn entries(v: &View, acc: &AccessP, ib: usize, ext: &impl Fn(usize) -> u64, halo: Halo) -> Fetch {
    if !acc.halo {
        return plain_entries(v, acc, ib, acc.tile(ext));
    }
    let mut exts = [0u64; 8];
    let nc = coord_extents(acc, ext, &mut exts);
    let tile: f64 = acc.density * exts[..nc].iter().map(|&x| x as f64).product::<f64>();
    // With halos: the words each stepping loop brings when the overlap is kept, and its
    // translation (for Timeloop's same-step rule), outermost first.
    let nt = acc.coords.len().min(8);
    let mut steps: [(usize, f64, u64); 32] = [(0, 0.0, 0); 32];
    let mut ns = 0;
    // wrap[c]: how far the temporal loops between j and ib move coordinate c back when they
    // wrap to their start.
    let mut wrap = [0i64; 8];
    let mut relevant_inside = false;
    for j in (0..ib).rev() {
        if v.spatial[j] || v.factor[j] <= 1 {
            continue;
        }
        let r = usize::from(v.rank[j]);
        let rel = acc.ranks & (1 << r) != 0;
        let mut new = 0.0;
        let mut key = 0u64;
        if rel || relevant_inside {
            let mut overlap = 1.0;
            for (c, &e) in exts.iter().enumerate().take(nt) {
                let coef = acc.coords[c]
                    .terms
                    .iter()
                    .find(|t| t.0 == r)
                    .map_or(0, |t| t.1 as i64);
                let delta = coef * v.inside(r, j + 1) as i64 - wrap[c];
                overlap *= (e as i64 - delta.abs()).max(0) as f64;
                key = key
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add((delta as u64) ^ ((c as u64) << 56));
            }
            new = tile - acc.density * overlap;
        }
        if rel {
            for (c, w) in wrap.iter_mut().enumerate().take(nt) {
                if let Some(&(_, coef)) = acc.coords[c].terms.iter().find(|t| t.0 == r) {
                    *w += coef as i64 * v.inside(r, j + 1) as i64 * (v.factor[j] as i64 - 1);
                }
            }
        }
        relevant_inside |= rel;
        if ns == steps.len() {
            break; // deeper than any mapping: keep the 32 innermost stepping loops
        }
        steps[ns] = (j, new, key);
        ns += 1;
    }
    steps[..ns].reverse();
    let steps = &steps[..ns];
    match halo {
        Halo::Always | Halo::Never => {
            let mut f = Fetch {
                words: tile,
                transfers: 1.0,
            };
            let mut outer = 1.0;
            for &(j, new, _) in steps {
                let fj = v.factor[j] as f64;
                if new > 0.0 {
                    let n = outer * (fj - 1.0);
                    f.words += n * if halo == Halo::Always { new } else { tile };
                    f.transfers += n;
                }
                outer *= fj;
            }
            f
        }
        Halo::SameStep => {
            let (words, transfers) = same_step(v, tile, steps);
            Fetch {
                words: tile + words,
                transfers: 1.0 + transfers,
            }
        }
    }
}

/// Timeloop's rule over the walk of the stepping loops: a step keeps the overlap when its
/// translation equals the previous step's (or no translation is remembered: at the start and
/// after a whole refetch), otherwise it fetches the whole tile and forgets the translation.
/// Returns the words and the transfers after the first tile. The walk of loops `i..` from a
/// remembered translation is memoised; the `f − 1` repetitions of a loop settle into a cycle of
/// at most two states, which is extrapolated.
fn same_step(v: &View, tile: f64, steps: &[(usize, f64, u64)]) -> (f64, f64) {
    // Distinct translations as small ids; the state is a remembered id or NONE.
    let mut ids = [0u8; 32];
    let mut keys = [0u64; 32];
    let mut nd = 0;
    for (i, s) in steps.iter().enumerate() {
        let id = match keys[..nd].iter().position(|&k| k == s.2) {
            Some(d) => d,
            None => {
                keys[nd] = s.2;
                nd += 1;
                nd - 1
            }
        };
        ids[i] = id as u8;
    }
    let mut w = Walk {
        v,
        tile,
        steps,
        ids: &ids[..steps.len()],
        nd,
        memo: [(0, 0.0, 0.0, false); 33 * 33],
    };
    let (_, words, transfers) = w.go(0, Walk::NONE);
    (words, transfers)
}

/// The memoised walk of [`same_step`].
struct Walk<'a> {
    v: &'a View,
    tile: f64,
    steps: &'a [(usize, f64, u64)],
    ids: &'a [u8],
    nd: usize,
    /// (state after, words, transfers, known).
    memo: [(u8, f64, f64, bool); 33 * 33],
}

impl Walk<'_> {
    const NONE: u8 = u8::MAX;

    /// From state `state`, walk loops `i..` (the first visit of their nest and all repetitions):
    /// the state after, and the words and transfers fetched after the current tile.
    fn go(&mut self, i: usize, state: u8) -> (u8, f64, f64) {
        if i == self.steps.len() {
            return (state, 0.0, 0.0);
        }
        let key = i * (self.nd + 1)
            + if state == Self::NONE {
                self.nd
            } else {
                usize::from(state)
            };
        if self.memo[key].3 {
            let m = self.memo[key];
            return (m.0, m.1, m.2);
        }
        let (mut st, mut total, mut count) = self.go(i + 1, state);
        let reps = self.v.factor[self.steps[i].0] - 1;
        let id = self.ids[i];
        let mut seen: [(u8, u64, f64, f64); 4] = [(0, 0, 0.0, 0.0); 4];
        let mut nseen = 0;
        let mut k = 0u64;
        while k < reps {
            if let Some(pos) = seen[..nseen].iter().position(|x| x.0 == st) {
                let (_, k0, t0, c0) = seen[pos];
                let period = k - k0;
                let cycles = (reps - k) / period;
                total += (total - t0) * cycles as f64;
                count += (count - c0) * cycles as f64;
                k += cycles * period;
                nseen = 0;
                if k >= reps {
                    break;
                }
            }
            if nseen < seen.len() {
                seen[nseen] = (st, k, total, count);
                nseen += 1;
            }
            let (next, add) = if st == Self::NONE || st == id {
                (id, self.steps[i].1)
            } else {
                (Self::NONE, self.tile)
            };
            let (after, w, c) = self.go(i + 1, next);
            total += add + w;
            count += c + if add > 0.0 { 1.0 } else { 0.0 };
            st = after;
            k += 1;
        }
        self.memo[key] = (st, total, count, true);
        (st, total, count)
    }
}

/// Whether the results a tile kept at view index `ib` sends up to its parent at `iv` are
/// partial sums (the child's side), and whether the parent receives partial sums (and so holds
/// them). A reduced loop above `ib` leaves them partial if it is temporal and outside the
/// innermost temporal loop that moves the tile (the tile leaves before that reduction ends;
/// inside that loop the tile stays and accumulates across it, so what leaves is final), or
/// spatial (each copy holds part of a sum): the parent receives whole sums when its network
/// adds the children's (`reduces`) and the rank is unrolled below it. The PEs (`pes`) write
/// every result, partial while any reduction remains.
fn partial_up(
    v: &View,
    acc: &AccessP,
    reduced: u32,
    iv: usize,
    ib: usize,
    pes: bool,
    reduces: bool,
) -> (bool, bool) {
    let moves = (0..ib)
        .rev()
        .find(|&j| !v.spatial[j] && v.factor[j] > 1 && acc.ranks & (1 << v.rank[j]) != 0);
    let (mut child, mut parent) = (false, false);
    for j in 0..ib {
        if v.factor[j] <= 1 || reduced & (1 << v.rank[j]) == 0 {
            continue;
        }
        if v.spatial[j] {
            child = true;
            parent |= j < iv || !reduces;
        } else if pes || moves.is_some_and(|k| j < k) {
            child = true;
            parent = true;
        }
    }
    (child, parent)
}

/// Distinct elements one instance at view index `iw` ever holds (its tile over all temporal
/// iterations, widened by the spatial loops below `iw`).
fn distinct(v: &View, acc: &AccessP, iw: usize) -> f64 {
    let ext = |r: usize| v.inside(r, iw) * v.temporal_above(r, iw);
    let mut exts = [0u64; 8];
    let nc = coord_extents(acc, &ext, &mut exts);
    acc.density * exts[..nc].iter().map(|&x| x as f64).product::<f64>()
}

/// State of an intermediate of the group.
#[derive(Clone, Copy, Default)]
struct Inter {
    tensor: usize,
    /// Held at the fusion level (some consumer waits, or it is carried over an iterative rank).
    held: bool,
    /// Global loop index where the held copy's tile begins.
    depth: usize,
    /// Consumers (bitmask over the group's Einsums, by position) that read the held copy.
    waiting: u64,
    /// Consumers on another unit than the producer's (staged through the fusion level).
    cross: u64,
    spilled: bool,
}

/// Where a tensor comes from (read) or goes to (written), for one Einsum.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Top {
    /// A level: the root, or the fusion level.
    Level(usize),
    /// Streamed within the unit: only its own levels.
    Stream,
}

fn structure(msg: String) -> Invalid {
    Invalid::Structure(msg)
}

/// Makes `v` hold `n` copies of `x`, reusing its allocation.
#[inline]
fn reset<T: Clone>(v: &mut Vec<T>, n: usize, x: T) {
    if v.len() == n {
        v.fill(x);
    } else {
        v.clear();
        v.resize(n, x);
    }
}

/// Field-wise max of two actions (the larger of two Einsums' needs for one shared transfer).
fn max_actions(a: &mut Actions, b: &Actions) {
    a.reads = a.reads.max(b.reads);
    a.fills = a.fills.max(b.fills);
    a.updates = a.updates.max(b.updates);
    a.read_bits = a.read_bits.max(b.read_bits);
    a.fill_bits = a.fill_bits.max(b.fill_bits);
    a.update_bits = a.update_bits.max(b.update_bits);
    a.read_accesses = a.read_accesses.max(b.read_accesses);
    a.fill_accesses = a.fill_accesses.max(b.fill_accesses);
    a.update_accesses = a.update_accesses.max(b.update_accesses);
}

/// The model: fills the scratch space, returns the score and (when `full`) the evaluation.
fn run(
    s: &mut Scratch,
    p: &Problem,
    a: &ArchP,
    g: &GroupPlan,
    conv: &Conventions,
    full: bool,
) -> Result<(Score, Option<GroupEval>), Invalid> {
    let halo = conv.halo;
    let nl = a.levels.len();
    let nt = p.tensors.len();
    let ne = g.einsums.len();
    if ne == 0 || g.binding.len() != ne || ne > 64 {
        return Err(structure(format!(
            "a group binds {} Einsums to {} units (1 to 64 Einsums, one unit each)",
            ne,
            g.binding.len()
        )));
    }
    if g.fuse >= nl {
        return Err(structure(format!("fusion level {} does not exist", g.fuse)));
    }
    for (k, &u) in g.binding.iter().enumerate() {
        if u >= a.units.len() {
            return Err(structure(format!("unit {u} does not exist")));
        }
        if g.einsums[k] >= p.einsums.len() {
            return Err(structure(format!("Einsum {} does not exist", g.einsums[k])));
        }
        if !a.units[u].path.contains(&g.fuse) {
            return Err(structure(format!(
                "Einsum {} runs on {}, which is not under the fusion level {}",
                p.einsums[g.einsums[k]].name, a.units[u].name, a.levels[g.fuse].name
            )));
        }
    }
    let fuse_depth = a.depth_on_path(g.binding[0], g.fuse).unwrap_or(0);
    check_loops(p, a, g, fuse_depth, &mut s.fan, &mut s.last)?;
    reset(&mut s.keep_tab, nl * nt, NO_KEEP);
    for &(t, l, k) in &g.keep {
        let (t, l) = (usize::from(t), usize::from(l));
        if t < nt && l < nl {
            s.keep_tab[l * nt + t] = match k {
                Keep::Bypass => BYPASS,
                Keep::At(pos) => pos.min(BYPASS - 1),
            };
        }
    }
    let shared_end = g
        .loops
        .iter()
        .position(|l| l.owner != SHARED)
        .unwrap_or(g.loops.len());

    // --- compute per Einsum, and the units pipelined over the shared loops' steps.
    let nu = a.units.len();
    let mut unit_busy = std::mem::take(&mut s.unit_busy);
    let mut unit_pj = std::mem::take(&mut s.unit_pj);
    let mut unit_ops = std::mem::take(&mut s.unit_ops);
    for v in [&mut unit_busy, &mut unit_pj, &mut unit_ops] {
        reset(v, nu, 0.0);
    }
    s.steps.clear();
    s.steps.extend(
        g.loops[..shared_end]
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.spatial() && l.factor > 1)
            .map(|(i, _)| i),
    );
    if s.steps.len() > 31 {
        return Err(structure("more than 31 shared temporal loops".into()));
    }
    s.work.clear();
    s.own_iterations.clear();
    s.views.resize_with(ne.max(s.views.len()), View::default);
    for (k, &e) in g.einsums.iter().enumerate() {
        let ep = &p.einsums[e];
        let u = g.binding[k];
        let unit = &a.units[u];
        let mut raw = 0.0;
        for &(kind, count) in &ep.ops {
            if count == 0 {
                continue;
            }
            let Some(cyc) = unit.op_cycles[kind] else {
                return Err(Invalid::Unsupported {
                    einsum: e,
                    unit: u,
                    op: kind,
                });
            };
            raw += count as f64 * cyc;
            unit_ops[u] += count as f64;
            unit_pj[u] += count as f64 * unit.op_energy_pj[kind];
        }
        for &(x, y, c) in &ep.chains {
            if unit.chains.contains(&(x, y)) {
                raw -= c as f64 * unit.op_cycles[x].unwrap_or(0.0);
            }
        }
        s.views[k].build(p, g, e, u);
        let v = &s.views[k];
        if let Some(rr) = ep.recurrence {
            if (0..v.len()).any(|j| v.spatial[j] && usize::from(v.rank[j]) == rr) {
                return Err(structure(format!(
                    "Einsum {} steps a recurrence over {}: it cannot be unrolled spatially",
                    ep.name, p.ranks[rr].name
                )));
            }
        }
        for (r, rk) in p.ranks.iter().enumerate() {
            if ep.vars & (1 << r) != 0 {
                let product = v.inside(r, 0);
                if product < rk.extent {
                    return Err(Invalid::Factor {
                        einsum: e,
                        rank: r,
                        product,
                        extent: rk.extent,
                    });
                }
            }
        }
        unit_busy[u] += raw / unit.pes as f64;
        // Each temporal iteration gives every PE at work one point (or a padded one).
        let cycles = v.temporal_iterations() * raw / ep.full_points.max(1) as f64;
        let skipped: u32 = s
            .steps
            .iter()
            .enumerate()
            .filter(|(_, &i)| ep.vars & (1 << g.loops[i].rank) == 0)
            .fold(0, |m, (b, _)| m | (1 << b));
        s.work.push((u, cycles, skipped));
        if s.trace {
            let own: f64 = (0..v.len())
                .filter(|&j| !v.spatial[j] && usize::from(v.global[j]) >= shared_end)
                .map(|j| v.factor[j] as f64)
                .product();
            s.own_iterations.push(own);
        }
    }
    let compute_cycles = pipelined(g, s, a.units.len());

    // Default keep positions: where each level's own loops begin, per unit of the group.
    reset(&mut s.defpos, a.units.len() * nl, 0);
    for &u in &g.binding {
        for l in 0..nl {
            s.defpos[u * nl + l] = default_position(a, g, l, u);
        }
    }
    reset(&mut s.inter_of, nt, NO_INTER);
    reset(&mut s.io_tab, nt, NO_KEEP);
    reset(&mut s.live_tab, nt, false);
    // --- intermediates, and where group inputs and outputs are kept at the fusion level.
    intermediates(p, a, g, s, shared_end)?;
    io_positions(p, a, g, s, shared_end)?;

    // --- traffic: every tensor of every Einsum along its chain.
    for buf in [&mut s.actions, &mut s.shared] {
        reset(buf, nl * nt, Actions::default());
    }
    s.shared_port.clear();
    s.shared_port.resize(nl * nt, [0.0; 2]);
    s.port.clear();
    s.port.resize(nl, [0.0; 2]);
    s.load = 0.0;
    s.drain = 0.0;
    s.load_split = [0.0; 2];
    s.drain_split = [0.0; 2];
    s.root_hops.clear();
    reset(&mut s.used, nl, 0.0);
    reset(&mut s.shared_tiles, nl * nt, 0.0);
    for k in 0..ne {
        let e = g.einsums[k];
        let u = g.binding[k];
        let ep = &p.einsums[e];
        reset(&mut s.private_used, nl, 0.0);
        for acc in &ep.accesses {
            let t = acc.tensor;
            let writes = t == ep.write;
            let top = top_of(s, g, k, t, writes);
            chain(p, a, g, s, k, t, top, shared_end)?;
            let v = &s.views[k];
            let n = v.len();
            let bits = a.bits[t];
            let reduced = ep.reduced();
            let it = s.inter.get(usize::from(s.inter_of[t])).copied();
            let spilled_inter = it.is_some_and(|i| i.spilled);
            // Staged between units in the same pass: producer and consumer step together, so
            // it streams through the fusion level (reads and writes there, no tile held).
            let staged = it.is_some_and(|i| !i.held && i.cross != 0);
            if s.local.len() != nl {
                reset(&mut s.local, nl, Actions::default());
                s.local_port.clear();
                s.local_port.resize(nl, [0.0; 2]);
            }
            let mut local_used = false;
            if s.trace && matches!(top, Top::Level(0)) && !s.chain.is_empty() {
                s.root_hops.push(RootHop {
                    einsum: k,
                    tensor: t,
                    writes,
                    child_pos: s.chain.get(1).map_or(g.loops.len(), |c| c.1),
                    ranks: acc.ranks,
                });
            }
            let private = |l: usize| a.depth_on_path(u, l).is_some_and(|d| d > fuse_depth);
            for ci in 0..s.chain.len() {
                let (l, gpos) = s.chain[ci];
                let iv = v.at(gpos);
                let inst = v.instances(iv);
                // The transfer between this level and its child (the next level, or the PEs).
                let child = s.chain.get(ci + 1).map(|&(cl, cp)| (cl, v.at(cp)));
                let (ib, child_level) = match child {
                    Some((cl, ib)) => (ib, Some(cl)),
                    None => (n, None),
                };
                let sb = v.instances(ib);
                let lv = &a.levels[l];
                let widen = if writes {
                    lv.spatial_reduction
                } else {
                    lv.multicast
                };
                let widened = |r: usize| {
                    let mut x = v.inside(r, ib);
                    for j in iv..ib {
                        if v.spatial[j] && usize::from(v.rank[j]) == r {
                            x *= v.factor[j];
                        }
                    }
                    x
                };
                // Child-side entries (all instances), parent-side moves, and first entries.
                // Whether spatial loops lie between this level and its child: only then does
                // the parent serve a union (multicast / spatial reduction) of several children.
                let fans = (iv..ib).any(|j| v.spatial[j]) && widen;
                // Results: whether the child sends partial sums up, and whether the parent
                // receives (and so holds) partial sums.
                let (up_bits, in_bits) = if writes {
                    let (c, p) = partial_up(v, acc, reduced, iv, ib, child_level.is_none(), fans);
                    let b = |partial: bool| if partial { bits.partial } else { bits.value };
                    (b(c), b(p))
                } else {
                    (bits.value, bits.value)
                };
                let tile = acc.tile(|r| v.inside(r, iv)) * in_bits;
                if private(l) {
                    s.private_used[l] += tile;
                } else if !(s.live_tab[t] || staged && l == g.fuse) {
                    let slot = &mut s.shared_tiles[l * nt + t];
                    *slot = slot.max(tile);
                }
                // Child-side entries (all instances) and parent-side moves; for results, the
                // first entries of each element (which resume from nothing).
                let (child_fetch, parent_fetch) = match child_level {
                    Some(_) => {
                        let ce = entries(v, acc, ib, &|r| v.inside(r, ib), halo) * sb;
                        let pm = if fans {
                            entries(v, acc, ib, &widened, halo) * inst
                        } else {
                            ce
                        };
                        (ce, pm)
                    }
                    None if conv.pe_operand_reuse && !writes => {
                        // The PEs keep an operand while the innermost loops do not change it:
                        // one read per change (a one-element tile stepped by the loops).
                        let pe = entries(v, acc, n, &|_| 1, Halo::Never) * sb;
                        let pm = if fans {
                            entries(v, acc, n, &widened, Halo::Never) * inst
                        } else {
                            pe
                        };
                        (pe, pm)
                    }
                    None => {
                        // The PEs: one access per operation and tensor, no reuse.
                        let ops = Fetch {
                            words: v.temporal_iterations() * sb,
                            transfers: v.temporal_iterations() * sb,
                        };
                        let pm = if fans {
                            Fetch {
                                words: v.temporal_iterations() * inst * acc.tile(widened),
                                transfers: v.temporal_iterations() * inst,
                            }
                        } else {
                            ops
                        };
                        (ops, pm)
                    }
                };
                let (child_entries, parent_moves) = (child_fetch.words, parent_fetch.words);
                // Port accesses: `words` in `transfers`, each rounded up to whole accesses of
                // `width` bits (per-transfer rounding), or packed across transfers.
                let accesses = |f: &Fetch, words: f64, bits: f64, width: f64| -> f64 {
                    if words <= 0.0 {
                        0.0
                    } else if conv.per_transfer_accesses && f.transfers > 0.0 {
                        let n = f.transfers * (words / f.words.max(1e-300)).min(1.0);
                        n * (words / n * bits / width).ceil()
                    } else {
                        words * bits / width
                    }
                };
                let (child_first, parent_first) = if writes && conv.first_read_per_copy {
                    // Per copy: the first update of each element a child holds reads nothing
                    // back, and so does the first update of each element a parent holds. Where
                    // children update the same element (a reduced rank unrolled over them) and
                    // the network does not add their partial sums, every child's update lands
                    // in the parent's one copy: all but the first read it back to add to it.
                    // (Without spatial loops between them the two counts are equal.)
                    (sb * distinct(v, acc, ib), inst * distinct(v, acc, iv))
                } else if writes {
                    // The first read of each element skipped once, whatever copy holds it.
                    let all = distinct(v, acc, 0);
                    (all, all)
                } else {
                    (0.0, 0.0)
                };
                let child_private = child_level.is_none_or(private);
                let mut parent = Actions::default();
                let mut kid = Actions::default();
                let lk = child_level.map(|cl| &a.levels[cl]);
                if !writes {
                    // Operands flow down: the parent reads for its child, which is filled.
                    parent.reads = parent_moves;
                    parent.read_bits = parent_moves * bits.value;
                    parent.read_accesses =
                        accesses(&parent_fetch, parent_moves, bits.value, lv.read_width_bits);
                    if let Some(lk) = lk {
                        kid.fills = child_entries;
                        kid.fill_bits = child_entries * bits.value;
                        kid.fill_accesses =
                            accesses(&child_fetch, child_entries, bits.value, lk.write_width_bits);
                    }
                } else {
                    // Results flow up: the parent is updated by each retiring tile and reads back
                    // the partial sums a returning tile resumes from.
                    let resumed_parent = (parent_moves - parent_first).max(0.0);
                    // Per copy, each child resumes its own partial sums; per element (ZigZag),
                    // a returning partial sum is sent to one child of those that share it.
                    let resumed = if conv.first_read_per_copy {
                        (child_entries - child_first).max(0.0)
                    } else {
                        resumed_parent
                    };
                    parent.updates = parent_moves;
                    parent.update_bits = parent_moves * in_bits;
                    parent.update_accesses =
                        accesses(&parent_fetch, parent_moves, in_bits, lv.write_width_bits);
                    parent.reads = resumed_parent;
                    parent.read_bits = resumed_parent * bits.partial;
                    parent.read_accesses = accesses(
                        &parent_fetch,
                        resumed_parent,
                        bits.partial,
                        lv.read_width_bits,
                    );
                    if let Some(lk) = lk {
                        if conv.drain_reads {
                            kid.reads = child_entries;
                            kid.read_bits = child_entries * up_bits;
                            kid.read_accesses =
                                accesses(&child_fetch, child_entries, up_bits, lk.read_width_bits);
                        }
                        kid.fills = resumed;
                        kid.fill_bits = resumed * bits.partial;
                        kid.fill_accesses =
                            accesses(&child_fetch, resumed, bits.partial, lk.write_width_bits);
                    }
                }
                let pp = [
                    parent.read_bits / inst,
                    (parent.fill_bits + parent.update_bits) / inst,
                ];
                let kp = [kid.read_bits / sb, (kid.fill_bits + kid.update_bits) / sb];
                if child_private || spilled_inter {
                    s.actions[l * nt + t].add(&parent);
                    s.port[l][0] += pp[0];
                    s.port[l][1] += pp[1];
                    if let Some(cl) = child_level {
                        s.actions[cl * nt + t].add(&kid);
                        s.port[cl][0] += kp[0];
                        s.port[cl][1] += kp[1];
                    }
                } else {
                    local_used = true;
                    s.local[l].add(&parent);
                    s.local_port[l][0] += pp[0];
                    s.local_port[l][1] += pp[1];
                    if let Some(cl) = child_level {
                        s.local[cl].add(&kid);
                        s.local_port[cl][0] += kp[0];
                        s.local_port[cl][1] += kp[1];
                    }
                }
            }
            // The first tile a PE needs travels down the chain before compute starts, and its
            // last results travel up after compute ends: per edge, the slower of the parent's
            // and the child's port for that one tile; the edges in turn. (The rest of the
            // loading overlaps compute, bounded by the ports' steady-state time.)
            if conv.load_drain && matches!(top, Top::Level(0)) && !s.chain.is_empty() {
                let ik = v.at(s.chain[s.chain.len() - 1].1);
                let tile_bits = acc.tile(|r| v.inside(r, ik)) * bits.value;
                let mut t_cycles = 0.0;
                let mut root_edge = None;
                for w in s.chain.windows(2) {
                    let (pl, cl) = (&a.levels[w[0].0], &a.levels[w[1].0]);
                    t_cycles += if writes {
                        cl.port_cycles(tile_bits, 0.0)
                            .max(pl.port_cycles(0.0, tile_bits))
                    } else {
                        pl.port_cycles(tile_bits, 0.0)
                            .max(cl.port_cycles(0.0, tile_bits))
                    };
                    root_edge.get_or_insert(t_cycles);
                }
                let slot = if writes { &mut s.drain } else { &mut s.load };
                if t_cycles > *slot {
                    // The root edge and the rest of the chain of the slowest first tile, which
                    // the cycle engine times apart.
                    let root = root_edge.unwrap_or(0.0);
                    let split = if writes {
                        &mut s.drain_split
                    } else {
                        &mut s.load_split
                    };
                    *split = [root, t_cycles - root];
                }
                *slot = slot.max(t_cycles);
            }
            if local_used {
                for l in 0..nl {
                    if !s.local[l].is_empty() {
                        let at = l * nt + t;
                        let loc = s.local[l];
                        max_actions(&mut s.shared[at], &loc);
                        s.shared_port[at][0] = s.shared_port[at][0].max(s.local_port[l][0]);
                        s.shared_port[at][1] = s.shared_port[at][1].max(s.local_port[l][1]);
                    }
                    s.local[l] = Actions::default();
                    s.local_port[l] = [0.0; 2];
                }
            }
        }
        for l in 0..nl {
            s.used[l] = s.used[l].max(s.private_used[l]);
        }
    }
    for (l, port) in s.port.iter_mut().enumerate().take(nl) {
        for i in l * nt..(l + 1) * nt {
            s.actions[i].add(&s.shared[i]);
            port[0] += s.shared_port[i][0];
            port[1] += s.shared_port[i][1];
        }
    }
    // Shared levels hold every tensor's tile at once; held intermediates only while live.
    let peak = live_peak(g, s);
    for l in 0..nl {
        let mut sum: f64 = s.shared_tiles[l * nt..(l + 1) * nt].iter().sum();
        if l == g.fuse {
            sum += peak;
        }
        s.used[l] = s.used[l].max(sum);
        if s.used[l] > a.levels[l].capacity_bits {
            return Err(Invalid::Capacity {
                level: l,
                need_bits: s.used[l],
                have_bits: a.levels[l].capacity_bits,
            });
        }
    }

    // --- latency and energy.
    let mut level_cycles = std::mem::take(&mut s.level_cycles);
    level_cycles.clear();
    level_cycles.extend(
        a.levels
            .iter()
            .zip(&s.port)
            .map(|(lv, &[r, w])| lv.port_cycles(r, w)),
    );
    let mem = level_cycles.iter().copied().fold(0.0, f64::max);
    let mut level_pj = std::mem::take(&mut s.level_pj);
    level_pj.clear();
    level_pj.extend(a.levels.iter().enumerate().map(|(l, lv)| {
        let (rw, ww) = (lv.read_width_bits, lv.write_width_bits);
        s.actions[l * nt..(l + 1) * nt]
            .iter()
            .fold([0.0; 3], |e, x| {
                [
                    e[0] + x.read_accesses * lv.read_pj_per_bit * rw,
                    e[1] + x.fill_accesses * lv.fill_pj_per_bit * ww,
                    e[2] + x.update_accesses * lv.update_pj_per_bit * ww,
                ]
            })
    }));
    // Loading the first tiles and draining the last results cannot overlap compute; the
    // steady state overlaps transfers with compute.
    let (load, drain) = (s.load, s.drain);
    let cycles = (compute_cycles + load + drain).max(mem);
    let energy: f64 = level_pj.iter().flatten().sum::<f64>() + unit_pj.iter().sum::<f64>();
    let score = Score {
        cycles,
        energy_pj: energy,
    };
    let eval = full.then(|| {
        (
            level_cycles.clone(),
            level_pj.clone(),
            unit_pj.clone(),
            unit_ops.clone(),
            unit_busy.clone(),
        )
    });
    s.level_cycles = level_cycles;
    s.level_pj = level_pj;
    s.unit_pj = unit_pj;
    s.unit_ops = unit_ops;
    s.unit_busy = unit_busy;
    let Some((level_cycles, level_pj, unit_pj, unit_ops, unit_busy)) = eval else {
        return Ok((score, None));
    };
    // The keep positions the model chose (held intermediates, derived tiles), so a saved
    // mapping replays them.
    let mut keep = g.keep.clone();
    for &(t, pos) in &s.io_pos {
        if !keep
            .iter()
            .any(|&(kt, kl, _)| usize::from(kt) == t && usize::from(kl) == g.fuse)
        {
            keep.push((t as u8, g.fuse as u16, Keep::At(pos as u16)));
        }
    }
    keep.sort_unstable_by_key(|&(t, l, _)| (l, t));
    Ok((
        score,
        Some(GroupEval {
            cycles,
            compute_cycles,
            level_cycles,
            actions: s.actions.clone(),
            level_energy_pj: level_pj,
            unit_energy_pj: unit_pj,
            unit_ops,
            unit_busy,
            used_bits: s.used.clone(),
            keep,
        }),
    ))
}

/// Structural checks of the nest: nodes on their owner's path in nest order, spatial factors
/// within each fanout.
fn check_loops(
    p: &Problem,
    a: &ArchP,
    g: &GroupPlan,
    fuse_depth: usize,
    fan: &mut Vec<(u8, u16, u8, u64)>,
    last: &mut Vec<usize>,
) -> Result<(), Invalid> {
    let nl = a.levels.len();
    fan.clear();
    // The last (depth, kind) key seen per unit: shared loops count for every bound unit.
    reset(last, a.units.len(), 0);
    let mut private_seen = false;
    for (i, l) in g.loops.iter().enumerate() {
        let node = usize::from(l.node);
        if usize::from(l.rank) >= p.ranks.len() || node >= a.nodes() || l.factor == 0 {
            return Err(structure(format!(
                "loop {i} is malformed (rank, node or factor 0)"
            )));
        }
        if l.owner == SHARED && private_seen {
            return Err(structure(format!(
                "shared loop {i} comes after a unit's own loops (shared loops go first)"
            )));
        }
        private_seen |= l.owner != SHARED;
        let owner_units = if l.owner == SHARED {
            &g.binding[..]
        } else {
            std::slice::from_ref(&g.binding[0])
        };
        let check = |u: usize, last: &mut [usize]| -> Result<(), Invalid> {
            let Some(depth) = a.depth_on_path(u, node) else {
                return Err(structure(format!(
                    "loop {i} over {} is at {}, which is not on unit {}'s path",
                    p.ranks[usize::from(l.rank)].name,
                    a.node_name(node),
                    a.units[u].name
                )));
            };
            if l.owner == SHARED && (depth > fuse_depth || depth == fuse_depth && !l.spatial()) {
                return Err(structure(format!(
                    "shared loop {i} is at {}, inside the fusion level's tile (the fusion level's temporal loops and those below belong to each unit)",
                    a.node_name(node)
                )));
            }
            if l.owner != SHARED && (depth < fuse_depth || depth == fuse_depth && l.spatial()) {
                return Err(structure(format!(
                    "unit {}'s loop {i} is at {}, outside the fusion level {}'s tile (loops there are shared)",
                    a.units[u].name,
                    a.node_name(node),
                    a.levels[g.fuse].name
                )));
            }
            let key = 2 * depth + usize::from(!l.spatial());
            if key < last[u] {
                return Err(structure(format!(
                    "loop {i} at {} comes after loops of levels below it (the nest goes outermost first, a node's spatial loops before its temporal ones)",
                    a.node_name(node)
                )));
            }
            last[u] = key;
            Ok(())
        };
        if l.owner == SHARED {
            for &u in owner_units {
                check(u, last)?;
            }
        } else {
            let u = usize::from(l.owner);
            if u >= a.units.len() || !g.binding.contains(&u) {
                return Err(structure(format!(
                    "loop {i} belongs to a unit no Einsum of the group runs on"
                )));
            }
            check(u, last)?;
        }
        if l.spatial() {
            let fanout = a.fanout(node);
            if node == 0 || usize::from(l.dim) >= fanout.len() {
                return Err(structure(format!(
                    "loop {i} unrolls over dimension {} of {}, which has {} fanout dimension(s)",
                    l.dim,
                    a.node_name(node),
                    if node == 0 { 0 } else { fanout.len() }
                )));
            }
            match fan
                .iter_mut()
                .find(|f| (f.0, f.1, f.2) == (l.owner, l.node, l.dim))
            {
                Some(f) => f.3 = f.3.saturating_mul(l.factor),
                None => fan.push((l.owner, l.node, l.dim, l.factor)),
            }
        } else if node >= nl {
            return Err(structure(format!(
                "loop {i} is temporal at unit {}: a unit only unrolls spatially",
                a.node_name(node)
            )));
        }
    }
    for &(_, node, dim, product) in fan.iter() {
        let size = a.fanout(usize::from(node))[usize::from(dim)];
        if product > size {
            return Err(Invalid::Fanout {
                node: usize::from(node),
                dim: usize::from(dim),
                product,
                size,
            });
        }
    }
    Ok(())
}

/// Compute cycles with the units pipelined across the steps of the shared loops.
fn pipelined(g: &GroupPlan, s: &mut Scratch, units: usize) -> f64 {
    let steps = &s.steps;
    let u_mask: u32 = s.work.iter().fold(0, |m, w| m | w.2);
    let factor = |b: usize| g.loops[steps[b]].factor as f64;
    let total_steps: f64 = (0..steps.len()).map(factor).product();
    let activations = |skipped: u32| -> f64 {
        total_steps
            / (0..steps.len())
                .filter(|b| skipped & (1 << b) != 0)
                .map(factor)
                .product::<f64>()
    };
    // Shared loops some Einsum skips: enumerate which of them are at their last iteration.
    let skippable: Vec<usize> = (0..steps.len())
        .filter(|b| u_mask & (1 << b) != 0)
        .collect();
    let mut compute = 0.0;
    reset(&mut s.per_unit, units, 0.0);
    for pat in 0u32..(1 << skippable.len()) {
        let mut last: u32 = 0;
        let mut count = total_steps;
        for (bi, &b) in skippable.iter().enumerate() {
            let f = factor(b);
            if pat & (1 << bi) != 0 {
                last |= 1 << b;
                count /= f;
            } else {
                count = count / f * (f - 1.0);
            }
        }
        s.per_unit.iter_mut().for_each(|x| *x = 0.0);
        for &(u, cyc, skipped) in s.work.iter() {
            if skipped & !last == 0 {
                s.per_unit[u] += cyc / activations(skipped);
            }
        }
        compute += count * s.per_unit.iter().cloned().fold(0.0, f64::max);
    }
    compute
}

/// Classifies the group's intermediates: held, staged, streamed, spilled.
fn intermediates(
    p: &Problem,
    a: &ArchP,
    g: &GroupPlan,
    s: &mut Scratch,
    shared_end: usize,
) -> Result<(), Invalid> {
    s.inter.clear();
    let pos = |e: usize| g.einsums.iter().position(|&x| x == e);
    for (t, tp) in p.tensors.iter().enumerate() {
        let Some((pe, pk)) = tp.producer.and_then(|e| pos(e).map(|k| (e, k))) else {
            continue;
        };
        if tp.role == Role::Output
            || tp.consumers.is_empty()
            || tp.consumers.iter().any(|&c| pos(c).is_none())
        {
            continue; // it leaves the group
        }
        let mut it = Inter {
            tensor: t,
            depth: shared_end,
            spilled: g.spill & (1 << t) != 0,
            ..Default::default()
        };
        for &c in &tp.consumers {
            let ck = pos(c).unwrap_or(0);
            let bnd = p.boundary(pe, c);
            let mut waits = bnd & tp.ranks != 0; // a later pass re-reads whole fibres
            for (i, l) in g.loops[..shared_end].iter().enumerate() {
                if l.factor <= 1 || l.spatial() {
                    continue;
                }
                let rb = 1u32 << l.rank;
                let pass_wait = bnd & rb != 0;
                // The consumer skips a loop the producer's result varies over (it waits for the
                // whole fibre), or steps a loop the producer does not (it reads the one result
                // at every step): either way the result is held across that loop.
                let skips = p.einsums[pe].out_vars & rb != 0 && p.einsums[c].vars & rb == 0;
                let repeats = p.einsums[pe].vars & rb == 0 && p.einsums[c].vars & rb != 0;
                if pass_wait || skips || repeats {
                    it.depth = it.depth.min(i);
                    waits = true;
                }
            }
            if waits {
                it.waiting |= 1 << ck;
            }
            if g.binding[ck] != g.binding[pk] {
                it.cross |= 1 << ck;
            }
            it.held |= waits;
        }
        if let Some(itr) = tp.iterative {
            it.held = true;
            it.waiting = tp
                .consumers
                .iter()
                .filter_map(|&c| pos(c))
                .fold(0, |m, k| m | (1 << k));
            if let Some(i) = g.loops[..shared_end]
                .iter()
                .position(|l| usize::from(l.rank) == itr && l.factor > 1 && !l.spatial())
            {
                it.depth = it.depth.min(i);
            }
        }
        if it.cross != 0 && !kept(a, s, t, g.fuse) {
            return Err(structure(format!(
                "{} passes between units through the fusion level {}, which does not keep it",
                tp.name, a.levels[g.fuse].name
            )));
        }
        if it.spilled {
            if a.levels[0].holds & (1 << t) == 0 {
                return Err(structure(format!(
                    "{} is spilled to {}, which cannot hold it",
                    tp.name, a.levels[0].name
                )));
            }
            if tp.iterative.is_some() {
                return Err(structure(format!(
                    "{} is carried over an iterative rank: it cannot be spilled",
                    tp.name
                )));
            }
        } else if (it.held || it.cross != 0) && !kept(a, s, t, g.fuse) {
            return Err(structure(format!(
                "{} must be {} at the fusion level {}, which does not keep it",
                tp.name,
                if it.held { "held" } else { "staged" },
                a.levels[g.fuse].name
            )));
        }
        s.inter.push(it);
    }
    // A held intermediate is live at the fusion level from its producer to its last consumer,
    // with the producer's tile from its depth inward.
    s.live.clear();
    for it in s.inter.iter().filter(|i| i.held && !i.spilled) {
        let t = it.tensor;
        let tp = &p.tensors[t];
        let first = tp.producer.and_then(pos).unwrap_or(0);
        let last = tp
            .consumers
            .iter()
            .filter_map(|&c| pos(c))
            .max()
            .unwrap_or(first);
        let v = &s.views[first];
        let iv = v.at(it.depth);
        let tile = p.einsums[g.einsums[first]]
            .access(t)
            .map_or(0.0, |acc| acc.tile(|r| v.inside(r, iv)));
        s.live
            .push((t, (first << 16) | last, tile * a.bits[t].value));
    }
    for (i, it) in s.inter.iter().enumerate() {
        s.inter_of[it.tensor] = i as u8;
        s.live_tab[it.tensor] = it.held && !it.spilled;
    }
    Ok(())
}

/// Where tensor `t` comes from (read) or goes to (written) for the `k`-th Einsum of the group.
fn top_of(s: &Scratch, g: &GroupPlan, k: usize, t: usize, writes: bool) -> Top {
    let Some(it) = s.inter.get(usize::from(s.inter_of[t])) else {
        return Top::Level(0); // a group input or output
    };
    if it.spilled && (writes || it.waiting & (1 << k) != 0) {
        // Spilled: written to the root, read back by the consumers that wait for it; the others
        // take it as it is produced.
        Top::Level(0)
    } else if it.spilled {
        if it.cross & (1 << k) != 0 {
            Top::Level(g.fuse)
        } else {
            Top::Stream
        }
    } else if writes && (it.held || it.cross != 0)
        || !writes && (it.held && it.waiting & (1 << k) != 0 || it.cross & (1 << k) != 0)
    {
        Top::Level(g.fuse)
    } else {
        Top::Stream
    }
}

/// Whether level `l` may keep tensor `t` (it holds it and the plan does not bypass it).
fn kept(a: &ArchP, s: &Scratch, t: usize, l: usize) -> bool {
    a.levels[l].holds & (1 << t) != 0 && s.keep_tab[l * s.inter_of.len() + t] != BYPASS
}

/// The default keep position of level `l` for unit `u`: where its own loops begin.
fn default_position(a: &ArchP, g: &GroupPlan, l: usize, u: usize) -> usize {
    let depth = a.depth_on_path(u, l).unwrap_or(0);
    g.loops
        .iter()
        .position(|x| {
            (x.owner == SHARED || usize::from(x.owner) == u)
                && a.depth_on_path(u, usize::from(x.node))
                    .is_some_and(|d| d > depth || d == depth && !x.spatial())
        })
        .unwrap_or(g.loops.len())
}

/// The keep position of tensor `t` at level `l` for the `k`-th Einsum.
fn position(a: &ArchP, g: &GroupPlan, s: &Scratch, k: usize, t: usize, l: usize) -> usize {
    if l == 0 {
        return 0;
    }
    let nt = s.inter_of.len();
    if l == g.fuse {
        if s.live_tab[t] {
            return s.inter[usize::from(s.inter_of[t])].depth;
        }
        if s.io_tab[t] != NO_KEEP {
            return usize::from(s.io_tab[t]);
        }
    }
    match s.keep_tab[l * nt + t] {
        NO_KEEP | BYPASS => s.defpos[g.binding[k] * a.levels.len() + l],
        pos => usize::from(pos),
    }
}

/// Builds the chain of tensor `t` for the `k`-th Einsum into `s.chain`: (level, global keep
/// position), from the top down.
#[allow(clippy::too_many_arguments)]
fn chain(
    p: &Problem,
    a: &ArchP,
    g: &GroupPlan,
    s: &mut Scratch,
    k: usize,
    t: usize,
    top: Top,
    shared_end: usize,
) -> Result<(), Invalid> {
    let u = g.binding[k];
    let path = &a.units[u].path;
    s.chain.clear();
    let fuse_at = path.iter().position(|&l| l == g.fuse).unwrap_or(0);
    match top {
        Top::Level(tl) => {
            let start = path.iter().position(|&l| l == tl).unwrap_or(0);
            s.chain.push((tl, position(a, g, s, k, t, tl)));
            for &l in &path[start + 1..] {
                if kept(a, s, t, l) {
                    s.chain.push((l, position(a, g, s, k, t, l)));
                }
            }
        }
        Top::Stream => {
            if let Some(&l) = path[fuse_at + 1..]
                .iter()
                .rev()
                .find(|&&l| kept(a, s, t, l))
            {
                s.chain.push((l, position(a, g, s, k, t, l)));
            }
        }
    }
    for w in s.chain.windows(2) {
        if w[1].1 < w[0].1 {
            return Err(structure(format!(
                "{} is kept at {} from loop {}, a larger tile than at {} above it (from loop {})",
                p.tensors[t].name, a.levels[w[1].0].name, w[1].1, a.levels[w[0].0].name, w[0].1
            )));
        }
    }
    for &(l, pos) in s.chain.iter() {
        if pos > g.loops.len()
            || (l != 0 && l != g.fuse && pos < shared_end && private_level(a, u, l, g.fuse))
        {
            return Err(structure(format!(
                "{} at {}: keep position {pos} is outside the unit's own loops",
                p.tensors[t].name, a.levels[l].name
            )));
        }
    }
    Ok(())
}

fn private_level(a: &ArchP, u: usize, l: usize, fuse: usize) -> bool {
    match (a.depth_on_path(u, l), a.depth_on_path(u, fuse)) {
        (Some(d), Some(f)) => d > f,
        _ => false,
    }
}

/// Peak bits of held intermediates at the fusion level over the group's Einsum order (an
/// intermediate is freed when its last consumer runs, which may write in its place).
fn live_peak(g: &GroupPlan, s: &Scratch) -> f64 {
    let mut peak: f64 = 0.0;
    for k in 0..g.einsums.len() {
        let at: f64 = s
            .live
            .iter()
            .filter(|&&(_, range, _)| {
                let (a0, b0) = (range >> 16, range & 0xffff);
                a0 <= k && (k < b0 || (k == a0 && a0 == b0))
            })
            .map(|l| l.2)
            .sum();
        peak = peak.max(at);
    }
    peak
}

/// Keep positions of the group's inputs and outputs at the fusion level: explicit ones, else,
/// with `derive_keep`, greedily above the default while the level has room (best refetches
/// saved per byte first), else the default.
fn io_positions(
    p: &Problem,
    a: &ArchP,
    g: &GroupPlan,
    s: &mut Scratch,
    shared_end: usize,
) -> Result<(), Invalid> {
    s.io_pos.clear();
    if !g.derive_keep || g.fuse == 0 {
        return Ok(());
    }
    // Candidates: tensors of the group that are not its intermediates, kept at the fusion
    // level without an explicit position.
    let mut cands = std::mem::take(&mut s.io_cands); // (tensor, k of an Einsum touching it)
    cands.clear();
    for (k, &e) in g.einsums.iter().enumerate() {
        for acc in &p.einsums[e].accesses {
            let t = acc.tensor;
            if s.inter_of[t] != NO_INTER
                || cands.iter().any(|c| c.0 == t)
                || !kept(a, s, t, g.fuse)
                || s.keep_tab[g.fuse * s.inter_of.len() + t] != NO_KEEP
            {
                continue;
            }
            cands.push((t, k));
        }
    }
    if cands.is_empty() || shared_end == 0 {
        s.io_cands = cands;
        return Ok(());
    }
    // Traffic from the root and tile bits of each candidate at each shared position.
    let n = shared_end + 1;
    let mut traffic = std::mem::take(&mut s.io_traffic);
    let mut tile = std::mem::take(&mut s.io_tile);
    reset(&mut traffic, cands.len() * n, 0.0);
    reset(&mut tile, cands.len() * n, 0.0);
    for (j, &(t, k)) in cands.iter().enumerate() {
        let v = &s.views[k];
        let acc = p.einsums[g.einsums[k]]
            .access(t)
            .ok_or_else(|| structure(format!("{} has no access", p.tensors[t].name)))?;
        let bits = a.bits[t].value;
        let cap = a.levels[g.fuse].capacity_bits;
        // Inward to outward: a tile only grows outward, so once one alone overflows the level
        // no position above it can be chosen (marked by an infinite tile).
        for pos in (0..n).rev() {
            let iv = v.at(pos);
            let elems = acc.tile(|r| v.inside(r, iv));
            let bits_here = elems * bits;
            if bits_here > cap && pos < shared_end {
                for q in 0..=pos {
                    tile[j * n + q] = f64::INFINITY;
                }
                break;
            }
            tile[j * n + pos] = bits_here;
            let fetch = if acc.halo {
                entries(v, acc, iv, &|r| v.inside(r, iv), Halo::SameStep)
            } else {
                plain_entries(v, acc, iv, elems)
            };
            traffic[j * n + pos] = fetch.words * v.instances(iv);
        }
    }
    // What else the fusion level holds: the other tensors' tiles at their default positions
    // and the held intermediates' peak (computed with the defaults).
    let mut depth = std::mem::take(&mut s.io_depth);
    reset(&mut depth, cands.len(), shared_end);
    let mut used: f64 = (0..cands.len()).map(|j| tile[j * n + shared_end]).sum();
    used += other_fuse_bits(p, a, g, s, &cands);
    let cap = a.levels[g.fuse].capacity_bits;
    loop {
        let mut best: Option<(f64, usize, usize)> = None;
        for j in 0..cands.len() {
            let (cur_tr, cur_tile) = (traffic[j * n + depth[j]], tile[j * n + depth[j]]);
            for pos in 0..depth[j] {
                let extra = tile[j * n + pos] - cur_tile;
                let saved = cur_tr - traffic[j * n + pos];
                if saved <= 0.0 || used + extra > cap {
                    continue;
                }
                let score = saved / extra.max(1.0);
                if best.is_none_or(|b| score > b.0) {
                    best = Some((score, j, pos));
                }
            }
        }
        match best {
            Some((_, j, pos)) => {
                used += tile[j * n + pos] - tile[j * n + depth[j]];
                depth[j] = pos;
            }
            None => break,
        }
    }
    for (j, &(t, _)) in cands.iter().enumerate() {
        s.io_pos.push((t, depth[j]));
        s.io_tab[t] = depth[j] as u16;
    }
    s.io_cands = cands;
    s.io_traffic = traffic;
    s.io_tile = tile;
    s.io_depth = depth;
    Ok(())
}

/// Bits the fusion level holds besides the candidates of [`io_positions`]: the held
/// intermediates' live peak and the tiles of spilled intermediates passing through it.
fn other_fuse_bits(
    p: &Problem,
    a: &ArchP,
    g: &GroupPlan,
    s: &Scratch,
    cands: &[(usize, usize)],
) -> f64 {
    let mut sum = live_peak(g, s);
    for it in s
        .inter
        .iter()
        .filter(|i| i.spilled && kept(a, s, i.tensor, g.fuse))
    {
        let t = it.tensor;
        if cands.iter().any(|c| c.0 == t) {
            continue;
        }
        let Some(pk) = p.tensors[t]
            .producer
            .and_then(|e| g.einsums.iter().position(|&x| x == e))
        else {
            continue;
        };
        let v = &s.views[pk];
        let iv = v.at(s.defpos[g.binding[pk] * a.levels.len() + g.fuse]);
        if let Some(acc) = p.einsums[g.einsums[pk]].access(t) {
            sum += acc.tile(|r| v.inside(r, iv)) * a.bits[t].value;
        }
    }
    sum
}
