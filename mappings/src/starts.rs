//! Heuristic starting points of the search: each fanout dimension unrolls the rank that brings
//! the most work of the Einsums that may run there; the shared loops step every rank that is not
//! reduced through its whole extent (small tiles), reduced ranks stay whole inside the fusion
//! level's tile; the units' own levels below it hold one element per tensor. Variants keep one
//! rank whole inside the tile, put reduced ranks' loops innermost, or shrink a rank's tile, in
//! families from which the runner starts its restarts.

use crate::model::{ArchP, SHARED};
use crate::problem::Problem;
use crate::space::{Point, Space};

/// Desired factors per (rank, slot), before encoding into digits.
struct Want {
    f: Vec<u64>,
}

/// Encode desired factors into a point's digits.
fn encode(sp: &Space, _p: &Problem, base: &Point, want: &Want) -> Point {
    let ns = sp.slots.len();
    let mut pt = base.clone();
    for ri in 0..sp.ranks.len() {
        for (si, s) in sp.slots.iter().enumerate() {
            if !s.residual {
                pt.factors[ri * ns + si] = sp.digit_of(ri, want.f[ri * ns + si]);
            }
        }
    }
    pt
}

/// Tile-size variants per rank and direction in each family.
const VARIANTS: usize = 16;

/// The families of heuristic starts.
pub fn families(sp: &Space, p: &Problem, a: &ArchP) -> Vec<Vec<Point>> {
    let ns = sp.slots.len();
    let nr = sp.ranks.len();
    let work = |e: usize| -> f64 { p.einsums[e].ops.iter().map(|&(_, n)| n as f64).sum() };
    let reduced: u32 = sp
        .einsums
        .iter()
        .fold(0, |m, &e| m | p.einsums[e].reduced());
    // Ranks a recurrence steps: never unrolled, and stepped innermost among the shared loops
    // (the running values then live for one tile of the other ranks).
    let recurrent: u32 = sp
        .einsums
        .iter()
        .filter_map(|&e| p.einsums[e].recurrence)
        .fold(0, |m, r| m | (1 << r));
    // Spatial: per spatial slot, the rank carrying the most work of the Einsums that may run on
    // the slot's units, times the factor it can fill.
    let mut want = Want {
        f: vec![1; nr * ns],
    };
    let mut spatial_f = vec![1u64; nr * ns];
    let mut used_by_owner: Vec<(u8, u32)> = Vec::new();
    for (si, s) in sp.slots.iter().enumerate() {
        if s.temporal() {
            continue;
        }
        let used = used_by_owner
            .iter()
            .find(|x| x.0 == s.owner)
            .map_or(0, |x| x.1);
        let mut best: Option<(f64, usize, u64)> = None;
        for (ri, &r) in sp.ranks.iter().enumerate() {
            if used & (1 << r) != 0 || recurrent & (1 << r) != 0 {
                continue;
            }
            let allowed = sp.spatial_ranks[si];
            if allowed != 0 && allowed & (1 << r) == 0 {
                continue;
            }
            let w: f64 = sp
                .einsums
                .iter()
                .zip(&sp.units)
                .filter(|(&e, units)| {
                    p.einsums[e].vars & (1 << r) != 0
                        && (s.owner == SHARED || units.contains(&usize::from(s.owner)))
                })
                .map(|(&e, _)| work(e))
                .sum();
            let ext = p.ranks[r].extent;
            let f = crate::space::divisors(ext)
                .into_iter()
                .filter(|&d| d <= s.limit)
                .max()
                .unwrap_or(1);
            let score = w * f as f64;
            if f > 1 && w > 0.0 && best.is_none_or(|b| score > b.0) {
                best = Some((score, ri, f));
            }
        }
        if let Some((_, ri, f)) = best {
            spatial_f[ri * ns + si] = f;
            want.f[ri * ns + si] = f;
            match used_by_owner.iter_mut().find(|x| x.0 == s.owner) {
                Some(x) => x.1 |= 1 << sp.ranks[ri],
                None => used_by_owner.push((s.owner, 1 << sp.ranks[ri])),
            }
        }
    }
    // Binding: the allowed unit whose spatial slots the Einsum fills most.
    let mut base = sp.zero(a);
    for (k, &e) in sp.einsums.iter().enumerate() {
        let fill = |u: usize| -> u64 {
            sp.slots
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.temporal() && (s.owner == SHARED || usize::from(s.owner) == u))
                .map(|(si, _)| {
                    sp.ranks
                        .iter()
                        .enumerate()
                        .filter(|(_, &r)| p.einsums[e].vars & (1 << r) != 0)
                        .map(|(ri, _)| spatial_f[ri * ns + si])
                        .product::<u64>()
                })
                .product()
        };
        let units = &sp.units[k];
        let best = (0..units.len())
            .max_by_key(|&i| (fill(units[i]), std::cmp::Reverse(i)))
            .unwrap_or(0);
        base.binding[k] = best as u8;
    }
    // Temporal: ranks that are not reduced step through their extent (beyond the spatial
    // factor) at the outermost shared temporal slot; reduced ranks stay inside.
    let outer_slot = sp
        .slots
        .iter()
        .position(|s| s.temporal() && s.owner == SHARED && !s.residual);
    let max_spatial = |ri: usize| -> u64 {
        (0..ns)
            .filter(|&si| !sp.slots[si].temporal())
            .map(|si| spatial_f[ri * ns + si])
            .max()
            .unwrap_or(1)
    };
    for (ri, &r) in sp.ranks.iter().enumerate() {
        if let Some(os) = outer_slot {
            if reduced & (1 << r) == 0 {
                want.f[ri * ns + os] = p.ranks[r].extent / max_spatial(ri).max(1);
            }
        }
    }
    // Loop order: rank order, recurrent ranks innermost.
    for (i, x) in base.prio.iter_mut().enumerate() {
        let r = sp.ranks[i / ns];
        *x = (i / ns) as u16
            + if recurrent & (1 << r) != 0 {
                nr as u16
            } else {
                0
            };
    }
    let base_pt = encode(sp, p, &base, &want);
    // Variants: one rank whole inside the fusion level's tile; reduced ranks' loops innermost.
    let mut bases = vec![(base_pt.clone(), want.f.clone())];
    if let Some(os) = outer_slot {
        for ri in 0..nr {
            if want.f[ri * ns + os] > 1 {
                let mut w = want.f.clone();
                w[ri * ns + os] = 1;
                bases.push((encode(sp, p, &base, &Want { f: w.clone() }), w));
            }
        }
    }
    if reduced != 0 {
        let extra: Vec<(Point, Vec<u64>)> = bases
            .iter()
            .map(|(q, w)| {
                let mut q = q.clone();
                for (ri, &r) in sp.ranks.iter().enumerate() {
                    if reduced & (1 << r) != 0 {
                        for si in 0..ns {
                            q.prio[ri * ns + si] += 2 * nr as u16;
                        }
                    }
                }
                (q, w.clone())
            })
            .collect();
        bases.extend(extra);
    }
    // With every spillable intermediate spilled too: a rank stepped by the shared loops that a
    // later pass waits on then needs no fibre held on chip.
    if !sp.spillable.is_empty() {
        let spilled: Vec<(Point, Vec<u64>)> = bases
            .iter()
            .map(|(q, w)| {
                let mut q = q.clone();
                q.spill = (1u64 << sp.spillable.len()) - 1;
                (q, w.clone())
            })
            .collect();
        bases.extend(spilled);
    }
    // Families: each base and its variants with one rank's tile 2, 4, … times smaller (more of
    // the rank stepped by the outer loop) or larger (more of it inside the fusion level's tile).
    bases
        .into_iter()
        .map(|(b, w)| {
            let mut v = vec![b.clone()];
            if let Some(os) = outer_slot {
                for (ri, &r) in sp.ranks.iter().enumerate() {
                    let ext = p.ranks[r].extent;
                    let base_f = w[ri * ns + os].max(1);
                    let mut push = |f: u64| {
                        let mut w2 = w.clone();
                        w2[ri * ns + os] = f;
                        let mut q = encode(sp, p, &b, &Want { f: w2 });
                        q.prio.clone_from(&b.prio);
                        v.push(q);
                    };
                    let mut f = base_f;
                    for _ in 0..VARIANTS {
                        f *= 2;
                        if f > ext {
                            break;
                        }
                        push(f);
                    }
                    let mut f = base_f;
                    for _ in 0..VARIANTS {
                        f /= 2;
                        if f < 1 {
                            break;
                        }
                        push(f);
                    }
                }
            }
            v
        })
        .collect()
}
