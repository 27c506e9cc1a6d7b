//! Analytical model of a fusion group on a spatial architecture (DRAM → global buffer →
//! PE arrays): per-level traffic from the loop nest, capacity checks, compute cycles per
//! unit with pipelining across loop steps, energy from action counts.
//!
//! * **Tiles and reuse.** A tensor kept at loop depth `k` holds, in the global buffer, the
//!   part of it touched by the loops inside `k`; it is fetched once per iteration of the
//!   loops outside `k`, except that loops irrelevant to it that sit inside its innermost
//!   relevant loop reuse the held tile (Timeloop's rule). Inputs and outputs of a group
//!   get keep depths greedily (best traffic saved per byte, while the buffer has room).
//! * **Intermediates** of a fused group stream through the arrays when producer and
//!   consumers step together; they must be buffered when a consumer waits for a whole
//!   fiber (a later pass, FuseMax §III), skips a loop the producer steps, or the tensor
//!   is carried over an iterative rank. A buffered intermediate is written once and read
//!   by each consumer that waits for it; consumers in the producer's pass take it as it is
//!   produced (FLAT's pass 1 computes the row max while QK is written out). Spilled, the
//!   same counts go to DRAM, passing the global buffer on the way out and back in.
//! * **Between units** data passes through the global buffer (the FuseMax artifact models
//!   no array-to-array path, for FuseMax or FLAT): an intermediate consumed on another unit
//!   than its producer's is written there once and read once by each such consumer, for
//!   energy and buffer traffic (the buffer's bandwidth is not bounded, as in the artifact).
//! * **Compute.** An Einsum on a unit takes Σ ops × cycles / used PEs (spatial factors of
//!   ranks it iterates, with quantisation). Units work concurrently: each step of the
//!   group's loop nest takes the slowest unit's share of the Einsums active in it; an
//!   Einsum that does not iterate a loop runs only at that loop's last iteration (the
//!   epilogue, e.g. 1-pass attention's final division).
//! * **Latency** = max(compute, DRAM bytes / bandwidth) per group (transfers overlap
//!   compute, as in the FuseMax artifact), groups in sequence.

use cascade_mappings::model::{ArchP, CostModel, Energy, GroupEval, GroupPlan, Invalid, NONE};
use cascade_mappings::problem::{Problem, Role};

/// The analytical spatial-array model.
#[derive(Clone, Copy, Debug, Default)]
pub struct Analytical;

impl CostModel for Analytical {
    fn evaluate(&self, p: &Problem, a: &ArchP, g: &GroupPlan) -> Result<GroupEval, Invalid> {
        evaluate(p, a, g)
    }
}

/// The loop nest with `inside[k][r]` = extent of leaf rank r inside depth k, precomputed.
struct Nest<'a> {
    loops: &'a [(usize, u64)],
    ranks: usize,
    /// Row-major `[depth][rank]` (in the evaluation's scratch space).
    inside: &'a [u64],
}

impl<'a> Nest<'a> {
    fn new(loops: &'a [(usize, u64)], p: &Problem, inside: &'a mut Vec<u64>) -> Self {
        let ranks = p.ranks.len();
        inside.clear();
        inside.extend(p.ranks.iter().map(|r| r.extent));
        for (k, &(r, f)) in loops.iter().enumerate() {
            inside.extend_from_within(k * ranks..(k + 1) * ranks);
            inside[(k + 1) * ranks + r] /= f;
        }
        Nest {
            loops,
            ranks,
            inside,
        }
    }
    /// Extent of a leaf rank inside loop depth `k`.
    fn inside(&self, rank: usize, k: usize) -> u64 {
        self.inside[k * self.ranks + rank]
    }
    /// Elements of tensor `t`'s tile at depth `k` (iterative dims hold one running value).
    fn tile(&self, p: &Problem, t: usize, k: usize) -> f64 {
        let tp = &p.tensors[t];
        let mask = match tp.iterative {
            Some(it) => tp.ranks & !(1 << it),
            None => tp.ranks,
        };
        bits(mask).map(|r| self.inside(r, k) as f64).product()
    }
    /// Times tensor `t`'s tile at depth `k` is (re)fetched.
    fn fetches(&self, p: &Problem, t: usize, k: usize) -> f64 {
        let ranks = p.tensors[t].ranks;
        let j = (0..k)
            .rev()
            .find(|&i| self.loops[i].1 > 1 && ranks & (1 << self.loops[i].0) != 0);
        match j {
            Some(j) => self.loops[..=j].iter().map(|l| l.1 as f64).product(),
            None => 1.0,
        }
    }
}

fn bits(mut m: u32) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if m == 0 {
            None
        } else {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            Some(i)
        }
    })
}

/// Working vectors of one evaluation, reused across the evaluations of a thread (the mapper
/// evaluates millions of plans; allocating these each time cost a third of an evaluation).
#[derive(Default)]
struct Scratch {
    outer: Vec<u64>,
    inside: Vec<u64>,
    work: Vec<(usize, f64, u32)>,
    u_loops: Vec<usize>,
    per_unit: Vec<f64>,
    io: Vec<(usize, bool)>,
    live: Vec<(usize, usize, f64)>,
    depth: Vec<usize>,
    tiles: Vec<f64>,
    moves: Vec<f64>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Evaluate one group mapping.
pub fn evaluate(p: &Problem, a: &ArchP, g: &GroupPlan) -> Result<GroupEval, Invalid> {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => evaluate_in(&mut s, p, a, g),
        // Only if a caller re-entered from inside an evaluation: use fresh vectors.
        Err(_) => evaluate_in(&mut Scratch::default(), p, a, g),
    })
}

fn evaluate_in(
    s: &mut Scratch,
    p: &Problem,
    a: &ArchP,
    g: &GroupPlan,
) -> Result<GroupEval, Invalid> {
    let Scratch {
        outer,
        inside,
        work,
        u_loops,
        per_unit,
        io,
        live,
        depth,
        tiles,
        moves,
    } = s;
    let n = g.loops.len();
    let bytes = p.dtype_bytes as f64;
    // --- factors: loops × spatial must divide each extent (spatial may be partial).
    outer.clear();
    outer.resize(p.ranks.len(), 1);
    for &(r, f) in &g.loops {
        outer[r] *= f;
    }
    for (r, rk) in p.ranks.iter().enumerate() {
        if outer[r] == 0 || !rk.extent.is_multiple_of(outer[r]) {
            return Err(Invalid::Factor {
                rank: r,
                product: outer[r],
                extent: rk.extent,
            });
        }
    }
    for (u, dims) in g.spatial.iter().enumerate() {
        for (i, &(r, _)) in dims.iter().enumerate() {
            if r != NONE && dims[..i].iter().any(|&(r2, _)| r2 == r) {
                return Err(Invalid::SpatialTwice { unit: u, rank: r });
            }
        }
    }
    let nest = Nest::new(&g.loops, p, inside);
    let group_mask: u64 = g.einsums.iter().fold(0, |m, &e| m | (1 << e));
    let in_group = |e: usize| group_mask & (1 << e) != 0;
    // Unit of each Einsum of the group (Einsums are < 64: they are bits of `group_mask`).
    let mut unit_at = [0usize; 64];
    for (i, &e) in g.einsums.iter().enumerate() {
        unit_at[e] = g.binding[i];
    }

    // --- compute per Einsum.
    let mut unit_busy = vec![0.0; a.units.len()];
    let mut compute_pj = vec![0.0; a.units.len()];
    let mut rf_pj = 0.0;
    work.clear(); // (unit, cycles, skipped-loop mask)
    for (k, &e) in g.einsums.iter().enumerate() {
        let ep = &p.einsums[e];
        let u = g.binding[k];
        let unit = &a.units[u];
        let mut raw = 0.0;
        let mut ops_total = 0.0;
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
            ops_total += count as f64;
            compute_pj[u] += count as f64 * unit.op_energy_pj[kind];
        }
        for &(x, y, c) in &ep.chains {
            if unit.chains.contains(&(x, y)) {
                raw -= c as f64 * unit.op_cycles[x].unwrap_or(0.0);
            }
        }
        // Two operand reads and one result write per op in the PE register file.
        rf_pj += ops_total * (2.0 * a.rf_read_pj + a.rf_write_pj);
        let mut used = 1.0;
        for &(r, s) in &g.spatial[u] {
            if r == NONE || ep.vars & (1 << r) == 0 {
                continue;
            }
            let t = nest.inside(r, n);
            let s_used = s.min(t).max(1);
            let steps = t.div_ceil(s_used);
            used *= t as f64 / steps as f64; // = s_used × quantisation efficiency
        }
        unit_busy[u] += raw / unit.pes as f64;
        let skipped: u32 = (0..n)
            .filter(|&i| g.loops[i].1 > 1 && ep.vars & (1 << g.loops[i].0) == 0)
            .fold(0, |m, i| m | (1 << i));
        work.push((u, raw / used, skipped));
    }
    // Pipelined steps: enumerate which of the "skippable" loops are at their last iteration.
    let u_mask: u32 = work.iter().fold(0, |m, w| m | w.2);
    u_loops.clear();
    u_loops.extend(bits(u_mask));
    let total_steps: f64 = g.loops.iter().map(|l| l.1 as f64).product();
    let activations = |skipped: u32| -> f64 {
        total_steps / bits(skipped).map(|i| g.loops[i].1 as f64).product::<f64>()
    };
    let mut compute = 0.0;
    per_unit.clear();
    per_unit.resize(a.units.len(), 0.0);
    for pat in 0u32..(1 << u_loops.len()) {
        let mut last: u32 = 0;
        let mut count = total_steps;
        for (b, &i) in u_loops.iter().enumerate() {
            let f = g.loops[i].1 as f64;
            if pat & (1 << b) != 0 {
                last |= 1 << i;
                count /= f;
            } else {
                count = count / f * (f - 1.0);
            }
        }
        per_unit.iter_mut().for_each(|x| *x = 0.0);
        for &(u, cyc, skipped) in work.iter() {
            if skipped & !last == 0 {
                per_unit[u] += cyc / activations(skipped);
            }
        }
        compute += count * per_unit.iter().cloned().fold(0.0, f64::max);
    }

    // --- tensors of the group.
    let mut dram: Vec<(usize, f64, f64)> = Vec::new();
    let mut glb: Vec<(usize, f64, f64)> = Vec::new();
    let mut keep: Vec<(usize, usize)> = Vec::new();
    let mut glb_used: f64 = 0.0;
    io.clear(); // (tensor, is_output)
    live.clear(); // (first, last position, bytes)
    for (t, tp) in p.tensors.iter().enumerate() {
        let produced_here = tp.producer.is_some_and(in_group);
        let read_here = tp.consumers.iter().any(|&c| in_group(c));
        if !produced_here {
            if read_here {
                io.push((t, false));
            }
            continue;
        }
        let leaves = tp.role == Role::Output || tp.consumers.iter().any(|&c| !in_group(c));
        if leaves {
            io.push((t, true));
            continue;
        }
        // An intermediate of the group: does it need buffering, and at which depth?
        let pe = tp.producer.unwrap();
        let mut depth = n;
        let mut buffered = false;
        // Consumers that read the held copy; the others (same pass, same loops as the
        // producer) take each element as it is produced — from the producer's array if they
        // run on the same unit, else staged through the global buffer (`cross`).
        let mut readers = 0usize;
        let mut cross = 0usize;
        for &c in &tp.consumers {
            let bnd = p.boundary(pe, c);
            let mut waits = bnd & tp.ranks != 0; // a later pass re-reads whole fibers
            for (i, &(r, f)) in g.loops.iter().enumerate() {
                if f <= 1 {
                    continue;
                }
                let rb = 1u32 << r;
                let pass_wait = bnd & rb != 0;
                let skips = p.einsums[pe].out_vars & rb != 0 && p.einsums[c].vars & rb == 0;
                if pass_wait || skips {
                    depth = depth.min(i);
                    waits = true;
                }
            }
            buffered |= waits;
            readers += usize::from(waits);
            cross += usize::from(!waits && unit_at[c] != unit_at[pe]);
        }
        if let Some(it) = tp.iterative {
            buffered = true;
            readers = tp.consumers.len(); // every consumer reads the carried value
            cross = 0; // ... from the buffer, wherever it runs
            if let Some(i) = g.loops.iter().position(|&(r, f)| r == it && f > 1) {
                depth = depth.min(i);
            }
        }
        // Units exchange data only through the global buffer (no array-to-array path, as the
        // FuseMax artifact models both FuseMax and FLAT): a consumer on another unit reads what
        // the producer wrote there.
        let whole = tp.elems as f64 * bytes;
        if !buffered {
            if cross > 0 {
                glb.push((t, whole * cross as f64, whole));
            }
            continue; // streams through the arrays
        }
        let readers = readers.max(1) as f64;
        if g.spill & (1 << t) != 0 {
            dram.push((t, whole * readers, whole));
            // DRAM traffic passes the global buffer like every group input and output: the
            // producer's write goes out through it (and feeds a cross-unit consumer of the same
            // pass from there), each DRAM read comes back in through it.
            glb.push((
                t,
                whole * (1.0 + readers) + whole * cross as f64,
                whole * (1.0 + readers),
            ));
        } else {
            // Live from its producer until its last consumer, whose output may take its place.
            let pos = |e: usize| g.einsums.iter().position(|&x| x == e).unwrap();
            let last = tp
                .consumers
                .iter()
                .map(|&c| pos(c))
                .max()
                .unwrap_or(pos(pe));
            live.push((pos(pe), last, nest.tile(p, t, depth) * bytes));
            keep.push((t, depth));
            let held = nest.tile(p, t, depth) * nest.fetches(p, t, depth) * bytes;
            glb.push((t, held * (readers + cross as f64), held));
        }
    }
    // Peak of buffered intermediates over the group's Einsum order (freed in place).
    for k in 0..g.einsums.len() {
        let at: f64 = live
            .iter()
            .filter(|&&(a0, b0, _)| a0 <= k && (k < b0 || (k == a0 && a0 == b0)))
            .map(|l| l.2)
            .sum();
        glb_used = glb_used.max(at);
    }
    if glb_used > a.glb_capacity {
        return Err(Invalid::Capacity {
            need: glb_used,
            have: a.glb_capacity,
        });
    }
    // Inputs and outputs: keep depths (explicit, or greedy from the innermost).
    depth.clear();
    depth.resize(io.len(), n);
    if !g.keep.is_empty() {
        for (j, &(t, _)) in io.iter().enumerate() {
            match g.keep.iter().find(|k| k.0 == t) {
                Some(&(_, d)) if d <= n => depth[j] = d,
                Some(&(_, d)) => {
                    return Err(Invalid::Keep {
                        tensor: t,
                        depth: d,
                    })
                }
                None => {}
            }
        }
    }
    // Tile bytes and traffic of every input/output at every depth, computed once.
    // (flat `[io][depth]` tables, one allocation each)
    let nest_ref = &nest;
    tiles.clear();
    tiles.extend(
        io.iter()
            .flat_map(|&(t, _)| (0..=n).map(move |k| nest_ref.tile(p, t, k) * bytes)),
    );
    moves.clear();
    moves.extend(io.iter().enumerate().flat_map(|(j, &(t, _))| {
        let tiles = &*tiles;
        (0..=n).map(move |k| tiles[j * (n + 1) + k] * nest_ref.fetches(p, t, k))
    }));
    let io_pos = |t: usize| io.iter().position(|x| x.0 == t).unwrap();
    let tile_b = |t: usize, k: usize| tiles[io_pos(t) * (n + 1) + k];
    let traffic = |t: usize, k: usize| moves[io_pos(t) * (n + 1) + k];
    let mut used: f64 = glb_used
        + io.iter()
            .zip(depth.iter())
            .map(|(&(t, _), &k)| tile_b(t, k))
            .sum::<f64>();
    if used > a.glb_capacity {
        return Err(Invalid::Capacity {
            need: used,
            have: a.glb_capacity,
        });
    }
    if g.keep.is_empty() {
        loop {
            let mut best: Option<(f64, usize, usize)> = None;
            for (j, &(t, _)) in io.iter().enumerate() {
                let (cur_tr, cur_tile) = (traffic(t, depth[j]), tile_b(t, depth[j]));
                for k in 0..depth[j] {
                    let extra = tile_b(t, k) - cur_tile;
                    let saved = cur_tr - traffic(t, k);
                    if saved <= 0.0 || used + extra > a.glb_capacity {
                        continue;
                    }
                    let score = saved / extra.max(1.0);
                    if best.is_none_or(|b| score > b.0) {
                        best = Some((score, j, k));
                    }
                }
            }
            match best {
                Some((_, j, k)) => {
                    used += tile_b(io[j].0, k) - tile_b(io[j].0, depth[j]);
                    depth[j] = k;
                }
                None => break,
            }
        }
    }
    for (j, &(t, is_out)) in io.iter().enumerate() {
        let moved = traffic(t, depth[j]);
        let full = p.tensors[t].elems as f64 * bytes;
        if is_out {
            // Partial results written more than once are read back to accumulate.
            dram.push((t, (moved - full).max(0.0), moved));
            glb.push((t, moved, moved));
        } else {
            dram.push((t, moved, 0.0));
            glb.push((t, moved, moved));
        }
        keep.push((t, depth[j]));
    }
    let dram_bytes: f64 = dram.iter().map(|d| d.1 + d.2).sum();
    let mem_cycles = dram_bytes / a.dram_bytes_per_cycle;
    let energy = Energy {
        dram: dram
            .iter()
            .map(|d| d.1 * a.dram_read_pj_per_byte + d.2 * a.dram_write_pj_per_byte)
            .sum(),
        glb: glb
            .iter()
            .map(|d| d.1 * a.glb_read_pj_per_byte + d.2 * a.glb_write_pj_per_byte)
            .sum(),
        rf: rf_pj,
        compute: compute_pj,
    };
    Ok(GroupEval {
        cycles: compute.max(mem_cycles),
        compute_cycles: compute,
        mem_cycles,
        energy,
        dram,
        glb,
        glb_bytes_used: used,
        unit_busy,
        keep,
    })
}
