//! The mapspace of one fusion group at a chosen fusion level: bindings of Einsums to units,
//! each rank's factorization over the loop *slots* (the temporal block of every level and every
//! fanout dimension, shared above the fusion level, per unit below it), loop orders, bypasses
//! and spills. A [`Point`] holds one digit per choice; [`Space::plan`] decodes it into a
//! [`GroupPlan`], always a well-formed one. A factor digit names the factor wanted (a divisor
//! of the rank's extent, or over a fanout "fill it"); decoding takes the largest factor not
//! above it that divides what is left of the rank and fits the slot (over a fanout, the largest
//! value that fits when no divisor fills it — an imperfect factor); each unit's temporal loop
//! at the fusion level takes the remainder. Changing one digit thus changes one factor, which
//! keeps the search's neighbourhoods smooth.

use crate::constraints::Constraints;
use crate::model::{ArchP, GroupPlan, Keep, LoopP, SHARED, TEMPORAL};
use crate::problem::{Problem, Role};
use crate::SearchError;
use std::collections::BTreeMap;

/// One place loops can sit.
#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    pub node: usize,
    /// A fanout dimension, or [`TEMPORAL`].
    pub dim: u8,
    /// [`SHARED`] or the owning unit.
    pub owner: u8,
    /// Most a factor product may be here (a fanout dimension's size; unbounded for temporal).
    pub limit: u64,
    /// The unit's temporal block at the fusion level: it takes each rank's remainder.
    pub residual: bool,
}

impl Slot {
    pub fn temporal(&self) -> bool {
        self.dim == TEMPORAL
    }
}

/// A point of the space as digits (indices into the candidates each choice has).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Point {
    /// Per Einsum: index into its allowed units.
    pub binding: Vec<u8>,
    /// Per (rank, slot), row-major over `Space::ranks × Space::slots`: the factor wanted, as an
    /// index into the divisors of the rank's extent; over a fanout, one past them means "fill
    /// the fanout".
    pub factors: Vec<u16>,
    /// Per (rank, slot): loop-order priority in temporal slots (lower = outer).
    pub prio: Vec<u16>,
    /// Per level: tensors bypassed.
    pub bypass: Vec<u64>,
    /// Spilled intermediates (bit i = `Space::spillable[i]`).
    pub spill: u64,
}

/// The mapspace of a group at one fusion level.
#[derive(Clone, Debug)]
pub struct Space {
    pub einsums: Vec<usize>,
    /// Allowed units per Einsum.
    pub units: Vec<Vec<usize>>,
    pub fuse: usize,
    /// Leaf ranks some Einsum of the group iterates.
    pub ranks: Vec<usize>,
    pub slots: Vec<Slot>,
    /// Fixed factor per (rank, slot) from constraints.
    pub fixed: Vec<Option<u64>>,
    /// Ranks that may unroll per spatial slot (empty = any).
    pub spatial_ranks: Vec<u32>,
    /// Most ranks per spatial slot (`usize::MAX` = any number).
    pub max_ranks: Vec<usize>,
    /// Fixed priority per (rank, slot) from constraint permutations.
    pub fixed_prio: Vec<Option<u16>>,
    /// Per level: tensors whose bypass bit is free to change, and those bypassed by force.
    pub bypass_free: Vec<u64>,
    pub bypass_forced: Vec<u64>,
    /// Intermediates that may be spilled.
    pub spillable: Vec<usize>,
    /// Minimum utilisation per node (of the product of its fanout).
    pub min_util: Vec<(usize, f64)>,
    /// Ranks each unit's Einsums may iterate (mask; by allowed units).
    unit_ranks: Vec<u32>,
    /// Per rank (index into `ranks`): the divisors of its extent.
    pub rank_divs: Vec<Vec<u64>>,
    divisors: BTreeMap<u64, Vec<u64>>,
    /// Per spatial slot: the other spatial slots over the same node for the same owner (a rank
    /// unrolls over at most one dimension of a node).
    siblings: Vec<Vec<usize>>,
}

/// [`Space::factors`]' working vectors, reused across the decodes of a thread.
#[derive(Default)]
struct FactorScratch {
    cap: Vec<u64>,
    used_ranks: Vec<usize>,
    node_ranks: Vec<u32>,
}

thread_local! {
    static FACTOR_SCRATCH: std::cell::RefCell<FactorScratch> =
        std::cell::RefCell::new(FactorScratch::default());
}

/// Divisors of `n`, ascending.
pub fn divisors(n: u64) -> Vec<u64> {
    let mut d: Vec<u64> = (1..)
        .take_while(|i| i * i <= n)
        .filter(|i| n.is_multiple_of(*i))
        .flat_map(|i| [i, n / i])
        .collect();
    d.sort_unstable();
    d.dedup();
    d
}

/// Levels every one of `units`' paths passes through (outermost first).
pub fn common_levels(a: &ArchP, units: &[usize]) -> Vec<usize> {
    let Some(&first) = units.first() else {
        return vec![];
    };
    a.units[first]
        .path
        .iter()
        .copied()
        .filter(|l| units.iter().all(|&u| a.units[u].path.contains(l)))
        .collect()
}

impl Space {
    /// The space of `einsums` fused at level `fuse` (which every allowed unit must reach).
    pub fn new(
        p: &Problem,
        a: &ArchP,
        einsums: &[usize],
        units: Vec<Vec<usize>>,
        fuse: usize,
        c: &Constraints,
    ) -> Result<Space, SearchError> {
        let mut all_units: Vec<usize> = units.iter().flatten().copied().collect();
        all_units.sort_unstable();
        all_units.dedup();
        let group_vars: u32 = einsums.iter().fold(0, |m, &e| m | p.einsums[e].vars);
        let ranks: Vec<usize> = (0..p.ranks.len())
            .filter(|&r| group_vars & (1 << r) != 0)
            .collect();
        let mut unit_ranks = vec![0u32; a.units.len()];
        for (k, &e) in einsums.iter().enumerate() {
            for &u in &units[k] {
                unit_ranks[u] |= p.einsums[e].vars;
            }
        }
        // Slots: the shared ones along the common path down to the fusion level, then each
        // unit's own below it.
        let mut slots = Vec::new();
        let first = all_units[0];
        let path = &a.units[first].path;
        let fuse_at = path.iter().position(|&l| l == fuse).ok_or_else(|| {
            SearchError::Invalid(format!(
                "fusion level {} is not on unit {}'s path",
                a.levels[fuse].name, a.units[first].name
            ))
        })?;
        let push_spatial = |slots: &mut Vec<Slot>, node: usize, owner: u8| {
            for (d, &size) in a.fanout(node).iter().enumerate() {
                if size > 1 {
                    slots.push(Slot {
                        node,
                        dim: d as u8,
                        owner,
                        limit: size,
                        residual: false,
                    });
                }
            }
        };
        for (i, &l) in path[..=fuse_at].iter().enumerate() {
            if i > 0 {
                push_spatial(&mut slots, l, SHARED);
            }
            if l != fuse {
                slots.push(Slot {
                    node: l,
                    dim: TEMPORAL,
                    owner: SHARED,
                    limit: u64::MAX,
                    residual: false,
                });
            }
        }
        for &u in &all_units {
            let owner = u as u8;
            slots.push(Slot {
                node: fuse,
                dim: TEMPORAL,
                owner,
                limit: u64::MAX,
                residual: true,
            });
            let upath = &a.units[u].path;
            let at = upath.iter().position(|&l| l == fuse).unwrap_or(0);
            for &l in &upath[at + 1..] {
                push_spatial(&mut slots, l, owner);
                slots.push(Slot {
                    node: l,
                    dim: TEMPORAL,
                    owner,
                    limit: u64::MAX,
                    residual: false,
                });
            }
            push_spatial(&mut slots, a.unit_node(u), owner);
        }
        let ns = slots.len();
        let nr = ranks.len();
        let mut fixed = vec![None; nr * ns];
        let mut fixed_prio = vec![None; nr * ns];
        let mut spatial_ranks = vec![0u32; ns];
        let mut max_ranks = vec![usize::MAX; ns];
        let rank_pos = |name: &str| {
            p.rank_index(name)
                .and_then(|r| ranks.iter().position(|&x| x == r))
        };
        let level = |name: &str| {
            a.level_index(name).ok_or_else(|| SearchError::Unknown {
                what: "level",
                name: name.to_string(),
            })
        };
        let unit = |name: &str| {
            a.unit_index(name).ok_or_else(|| SearchError::Unknown {
                what: "unit",
                name: name.to_string(),
            })
        };
        for t in &c.temporal {
            let l = level(&t.level)?;
            let owner = t.unit.as_deref().map(unit).transpose()?;
            for (si, s) in slots.iter().enumerate() {
                if s.node != l || !s.temporal() || owner.is_some_and(|u| usize::from(s.owner) != u)
                {
                    continue;
                }
                for (rn, &f) in &t.factors {
                    if rn == "*" {
                        for ri in 0..nr {
                            let name = &p.ranks[ranks[ri]].name;
                            if !t.factors.contains_key(name) {
                                fixed[ri * ns + si] = Some(f);
                            }
                        }
                    } else if let Some(ri) = rank_pos(rn) {
                        fixed[ri * ns + si] = Some(f);
                    }
                }
                for (k, rn) in t.permutation.iter().enumerate() {
                    if let Some(ri) = rank_pos(rn) {
                        fixed_prio[ri * ns + si] = Some(k as u16);
                    }
                }
            }
        }
        for sc in &c.spatial {
            let node = match (&sc.level, &sc.unit) {
                (Some(l), _) => level(l)?,
                (_, Some(u)) => a.unit_node(unit(u)?),
                _ => continue,
            };
            for (si, s) in slots.iter().enumerate() {
                if s.node != node || s.temporal() || sc.dim.is_some_and(|d| usize::from(s.dim) != d)
                {
                    continue;
                }
                for (rn, &f) in &sc.factors {
                    if let Some(ri) = rank_pos(rn) {
                        fixed[ri * ns + si] = Some(f);
                    }
                }
                if let Some(m) = sc.max_ranks {
                    max_ranks[si] = m;
                }
                if !sc.ranks.is_empty() {
                    spatial_ranks[si] = sc
                        .ranks
                        .iter()
                        .filter_map(|r| p.rank_index(r))
                        .fold(0, |m, r| m | (1 << r));
                    if spatial_ranks[si] == 0 {
                        spatial_ranks[si] = 1 << 31; // none of the listed ranks: nothing unrolls
                    }
                }
            }
        }
        // Bypass: every non-root level may bypass what it holds, unless pinned.
        let nl = a.levels.len();
        let touched: u64 = einsums
            .iter()
            .flat_map(|&e| p.einsums[e].accesses.iter().map(|x| x.tensor))
            .fold(0, |m, t| m | (1 << t));
        let mut bypass_free = vec![0u64; nl];
        let mut bypass_forced = vec![0u64; nl];
        for (l, free) in bypass_free.iter_mut().enumerate().skip(1) {
            *free = a.levels[l].holds & touched;
        }
        for b in &c.bypass {
            let l = level(&b.level)?;
            // "*" names every tensor not named elsewhere in the entry.
            let named = |t: &str| b.bypass.iter().chain(&b.keep).any(|x| x == t);
            let expand = |list: &[String]| -> u64 {
                let mut m = 0u64;
                for t in list {
                    if t == "*" {
                        for (ti, tp) in p.tensors.iter().enumerate() {
                            if !named(&tp.name) {
                                m |= 1 << ti;
                            }
                        }
                    } else if let Some(ti) = p.tensor_index(t) {
                        m |= 1 << ti;
                    }
                }
                m
            };
            let (by, keep) = (expand(&b.bypass), expand(&b.keep));
            bypass_free[l] &= !(by | keep);
            bypass_forced[l] |= by;
        }
        let spillable = p
            .tensors
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                t.producer.is_some_and(|e| einsums.contains(&e))
                    && !t.consumers.is_empty()
                    && t.consumers.iter().all(|c| einsums.contains(c))
                    && t.iterative.is_none()
                    && t.role != Role::Output
            })
            .map(|(t, _)| t)
            .take(20)
            .collect();
        let mut min_util = Vec::new();
        for u in &c.utilization {
            let node = match (&u.level, &u.unit) {
                (Some(l), _) => level(l)?,
                (_, Some(x)) => a.unit_node(unit(x)?),
                _ => continue,
            };
            min_util.push((node, u.min));
        }
        let mut sp = Space {
            einsums: einsums.to_vec(),
            units,
            fuse,
            ranks,
            slots,
            fixed,
            spatial_ranks,
            max_ranks,
            fixed_prio,
            bypass_free,
            bypass_forced,
            spillable,
            min_util,
            unit_ranks,
            rank_divs: vec![],
            divisors: BTreeMap::new(),
            siblings: vec![],
        };
        sp.siblings = (0..sp.slots.len())
            .map(|si| {
                let s = &sp.slots[si];
                (0..sp.slots.len())
                    .filter(|&sj| {
                        let x = &sp.slots[sj];
                        sj != si
                            && !s.temporal()
                            && x.node == s.node
                            && x.owner == s.owner
                            && !x.temporal()
                    })
                    .collect()
            })
            .collect();
        sp.rank_divs = sp
            .ranks
            .iter()
            .map(|&r| divisors(p.ranks[r].extent))
            .collect();
        for &r in &sp.ranks.clone() {
            let ext = p.ranks[r].extent;
            for d in divisors(ext) {
                sp.divisors.entry(d).or_insert_with(|| divisors(d));
            }
        }
        Ok(sp)
    }

    /// Divisors of `n` (cached for the divisors of the group's extents).
    fn divs(&self, n: u64) -> std::borrow::Cow<'_, [u64]> {
        match self.divisors.get(&n) {
            Some(d) => std::borrow::Cow::Borrowed(d),
            None => std::borrow::Cow::Owned(divisors(n)),
        }
    }

    /// The largest divisor of `rem` not above `limit` (at least 1).
    fn best_divisor(&self, rem: u64, limit: u64) -> u64 {
        let d = self.divs(rem);
        match d.binary_search(&limit) {
            Ok(i) => d[i],
            Err(0) => 1,
            Err(i) => d[i - 1],
        }
    }

    /// The factor a slot takes with `rem` of the rank left and room `cap`: the largest divisor
    /// of `rem` not above `want` and `cap`; over a fanout, a `want` past the room (the digit
    /// past the divisors that fit, or none) fills it: the largest divisor that fits, or `cap`
    /// itself (an imperfect factor, the remainder padded) when no divisor fills it.
    fn pick_factor(&self, rem: u64, cap: u64, spatial: bool, want: Option<u64>) -> u64 {
        match want {
            Some(w) if !spatial || w <= cap => self.best_divisor(rem, w),
            _ => {
                let best = self.best_divisor(rem, cap);
                if spatial && rem > cap && cap > 1 && best < cap {
                    cap
                } else {
                    best
                }
            }
        }
    }

    /// Candidate factors for a slot with `rem` of the rank left and room `cap`.
    pub fn candidates(&self, rem: u64, cap: u64, spatial: bool, out: &mut Vec<u64>) {
        out.clear();
        let d = self.divs(rem);
        out.extend(d.iter().copied().filter(|&x| x <= cap));
        // Over a fanout, the largest factor that fits when no divisor comes close to filling it
        // (an imperfect factor: the remainder is rounded up and padded).
        if spatial && rem > cap && cap > 1 {
            let best = out.last().copied().unwrap_or(1);
            if best < cap {
                out.push(cap);
            }
        }
        if out.is_empty() {
            out.push(1);
        }
    }

    pub fn n_slots(&self) -> usize {
        self.slots.len()
    }

    /// The unit of the `k`-th Einsum at a point.
    pub fn unit_of(&self, pt: &Point, k: usize) -> usize {
        let u = &self.units[k];
        u[usize::from(pt.binding[k]) % u.len()]
    }

    /// Decode a point into the factor of every (rank, slot); `None` if a constraint cannot be met.
    pub fn factors(&self, p: &Problem, pt: &Point, out: &mut Vec<u64>) -> Option<()> {
        FACTOR_SCRATCH.with(|fs| match fs.try_borrow_mut() {
            Ok(mut fs) => self.factors_in(p, pt, out, &mut fs, None),
            Err(_) => self.factors_in(p, pt, out, &mut FactorScratch::default(), None),
        })
    }

    /// [`Space::factors`], also marking in `open` each factor digit whose larger values could
    /// still change its factor (given the digits before it). Decoding is sequential in digit
    /// order and a factor grows with its digit, so a digit that is not open (at its largest
    /// effect, never read, or after the point where decoding failed) can skip its larger values
    /// without losing a distinct factorization: the exhaustive enumeration relies on it.
    pub fn factors_open(
        &self,
        p: &Problem,
        pt: &Point,
        out: &mut Vec<u64>,
        open: &mut Vec<bool>,
    ) -> Option<()> {
        FACTOR_SCRATCH.with(|fs| match fs.try_borrow_mut() {
            Ok(mut fs) => self.factors_in(p, pt, out, &mut fs, Some(open)),
            Err(_) => self.factors_in(p, pt, out, &mut FactorScratch::default(), Some(open)),
        })
    }

    fn factors_in(
        &self,
        p: &Problem,
        pt: &Point,
        out: &mut Vec<u64>,
        fs: &mut FactorScratch,
        mut open: Option<&mut Vec<bool>>,
    ) -> Option<()> {
        let ns = self.slots.len();
        out.clear();
        out.resize(self.ranks.len() * ns, 1);
        if let Some(o) = open.as_deref_mut() {
            o.clear();
            o.resize(self.ranks.len() * ns, false);
        }
        // Ranks the Einsums bound to each unit iterate.
        let mut bound_ranks = [0u32; 64];
        for k in 0..self.einsums.len() {
            let u = self.unit_of(pt, k);
            bound_ranks[u.min(63)] |= p.einsums[self.einsums[k]].vars;
        }
        let FactorScratch {
            cap,
            used_ranks,
            node_ranks,
        } = fs;
        cap.clear();
        cap.extend(self.slots.iter().map(|s| s.limit));
        used_ranks.clear();
        used_ranks.resize(ns, 0);
        // Ranks already unrolled over some dimension of each slot's node (by owner): a rank
        // unrolls over at most one dimension of a node, as in Timeloop.
        node_ranks.clear();
        node_ranks.resize(ns, 0);
        let shared_end = self
            .slots
            .iter()
            .position(|s| s.owner != SHARED)
            .unwrap_or(ns);
        let mut pick = |ri: usize, si: usize, left: u64, cap: &mut [u64]| -> Option<u64> {
            let s = &self.slots[si];
            let r = self.ranks[ri];
            let allowed = self.spatial_ranks[si];
            let twice = self.siblings[si]
                .iter()
                .any(|&sj| node_ranks[sj] & (1 << r) != 0);
            let full = !s.temporal() && (used_ranks[si] >= self.max_ranks[si] || twice);
            let f = match self.fixed[ri * ns + si] {
                Some(f) => {
                    if !s.temporal() && (f > cap[si] || f > 1 && full) {
                        return None;
                    }
                    f
                }
                None if !s.temporal() && allowed != 0 && allowed & (1 << r) == 0 => 1,
                None if full => 1,
                None => {
                    // The digit names the factor wanted (past the rank's divisors: "fill the
                    // fanout").
                    let divs = &self.rank_divs[ri];
                    let d = usize::from(pt.factors[ri * ns + si]);
                    let f = self.pick_factor(left, cap[si], !s.temporal(), divs.get(d).copied());
                    if let Some(o) = open.as_deref_mut() {
                        // The largest digit (as `radices` counts them) asks for the most.
                        let top = divs.iter().filter(|&&x| x <= s.limit).count()
                            - usize::from(s.temporal());
                        let most =
                            self.pick_factor(left, cap[si], !s.temporal(), divs.get(top).copied());
                        o[ri * ns + si] = most != f;
                    }
                    f
                }
            };
            if f > 1 && !s.temporal() {
                cap[si] /= f;
                used_ranks[si] += 1;
                node_ranks[si] |= 1 << r;
            }
            Some(f)
        };
        for (ri, &r) in self.ranks.iter().enumerate() {
            let mut rem = p.ranks[r].extent;
            for si in 0..shared_end {
                let f = pick(ri, si, rem, &mut cap[..])?;
                out[ri * ns + si] = f;
                rem = rem.div_ceil(f);
            }
            // Each unit whose Einsums iterate the rank splits what is left over its own slots;
            // its temporal block at the fusion level takes the remainder.
            let mut si = shared_end;
            while si < ns {
                let owner = self.slots[si].owner;
                let end = (si..ns)
                    .find(|&x| self.slots[x].owner != owner)
                    .unwrap_or(ns);
                if bound_ranks[usize::from(owner).min(63)] & (1 << r) != 0 {
                    let mut left = rem;
                    let mut residual = None;
                    for sj in si..end {
                        if self.slots[sj].residual {
                            residual = Some(sj);
                            continue;
                        }
                        let f = pick(ri, sj, left, &mut cap[..])?;
                        out[ri * ns + sj] = f;
                        left = left.div_ceil(f);
                    }
                    if let Some(res) = residual {
                        if self.fixed[ri * ns + res].is_some_and(|f| f != left) {
                            return None; // a fixed factor at the fusion level cannot be met
                        }
                        out[ri * ns + res] = left;
                    }
                }
                si = end;
            }
        }
        Some(())
    }

    /// Decode a point into a plan (`None` when it cannot meet a constraint).
    pub fn plan(&self, p: &Problem, pt: &Point, f: &mut Vec<u64>) -> Option<GroupPlan> {
        self.factors(p, pt, f)?;
        let ns = self.slots.len();
        let binding: Vec<usize> = (0..self.einsums.len())
            .map(|k| self.unit_of(pt, k))
            .collect();
        let mut loops: Vec<LoopP> = Vec::new();
        let mut order: Vec<(u16, usize)> = Vec::new();
        for (si, s) in self.slots.iter().enumerate() {
            if s.owner != SHARED && !binding.contains(&usize::from(s.owner)) {
                continue;
            }
            order.clear();
            for (ri, _) in self.ranks.iter().enumerate() {
                if f[ri * ns + si] > 1 {
                    let prio = if s.temporal() {
                        self.fixed_prio[ri * ns + si].unwrap_or(1000 + pt.prio[ri * ns + si])
                    } else {
                        ri as u16
                    };
                    order.push((prio, ri));
                }
            }
            order.sort_unstable();
            for &(_, ri) in &order {
                loops.push(LoopP {
                    rank: self.ranks[ri] as u8,
                    node: s.node as u16,
                    dim: s.dim,
                    owner: s.owner,
                    factor: f[ri * ns + si],
                });
            }
        }
        let mut keep = Vec::new();
        for (l, &free) in self.bypass_free.iter().enumerate() {
            let mask = (pt.bypass.get(l).copied().unwrap_or(0) & free) | self.bypass_forced[l];
            let mut m = mask;
            while m != 0 {
                let t = m.trailing_zeros() as usize;
                m &= m - 1;
                keep.push((t as u8, l as u16, Keep::Bypass));
            }
        }
        let spill = self
            .spillable
            .iter()
            .enumerate()
            .filter(|(b, _)| pt.spill & (1 << b) != 0)
            .fold(0u64, |m, (_, &t)| m | (1 << t));
        Some(GroupPlan {
            einsums: self.einsums.clone(),
            binding,
            fuse: self.fuse,
            loops,
            keep,
            derive_keep: true,
            spill,
        })
    }

    /// Whether a plan meets the minimum utilisations of the constraints.
    pub fn utilization_ok(&self, a: &ArchP, g: &GroupPlan) -> bool {
        self.min_util.iter().all(|&(node, min)| {
            let size: u64 = a.fanout(node).iter().product();
            // Per owner, the product of the spatial factors over this node.
            let mut best = 0u64;
            for &u in &g.binding {
                let used: u64 = g
                    .loops
                    .iter()
                    .filter(|l| {
                        usize::from(l.node) == node
                            && l.spatial()
                            && (l.owner == SHARED || usize::from(l.owner) == u)
                    })
                    .map(|l| l.factor)
                    .product();
                best = best.max(used);
            }
            best as f64 >= min * size as f64
        })
    }

    /// A point with every digit at 0 (no loops in the shared slots, nothing bypassed).
    pub fn zero(&self, a: &ArchP) -> Point {
        let n = self.ranks.len() * self.slots.len();
        Point {
            binding: vec![0; self.einsums.len()],
            factors: vec![0; n],
            prio: vec![0; n],
            bypass: vec![0; a.levels.len()],
            spill: 0,
        }
    }

    /// Number of values of every factor digit (1 where the factor is fixed or a remainder),
    /// row-major like [`Point::factors`].
    pub fn radices(&self, out: &mut Vec<u16>) {
        let ns = self.slots.len();
        out.clear();
        out.resize(self.ranks.len() * ns, 1);
        for (ri, divs) in self.rank_divs.iter().enumerate() {
            for (si, s) in self.slots.iter().enumerate() {
                if s.residual || self.fixed[ri * ns + si].is_some() {
                    continue;
                }
                let limit = divs.iter().filter(|&&d| d <= s.limit).count();
                out[ri * ns + si] = (limit + usize::from(!s.temporal())) as u16;
            }
        }
    }

    /// The digit asking for factor `f` of rank index `ri`.
    pub fn digit_of(&self, ri: usize, f: u64) -> u16 {
        let divs = &self.rank_divs[ri];
        divs.iter().rposition(|&d| d <= f).unwrap_or(0) as u16
    }

    /// Upper bound of the number of distinct plans: bindings × every rank's factorizations
    /// over its slots × the orders of the loops in each temporal block × bypasses × spills.
    /// Fanout limits are applied per rank (not jointly), so this slightly overcounts.
    pub fn size(&self, p: &Problem) -> f64 {
        // The state (loops per temporal slot) is packed 8 bits a slot, first slot highest, so
        // its order, and with it the floating-point sum, is that of the byte vector it stands
        // for; wider spaces keep the vector.
        let (masks_per_rank, nt) = self.rank_masks(p);
        let fact = |n: u8| (1..=u32::from(n)).map(f64::from).product::<f64>();
        let sum = if nt <= 16 && self.ranks.len() < 256 {
            // Each state is a sorted vector; a rank's masks add their packed increments. Every
            // state's contributions arrive in the order of the byte-vector version (states,
            // then masks, ascending), so the sums are the same to the bit.
            let shift = |ti: usize| 8 * (nt - 1 - ti) as u32;
            let mut dp: Vec<(u128, f64)> = vec![(0, 1.0)];
            for masks in &masks_per_rank {
                let incs: Vec<(u128, f64)> = masks
                    .iter()
                    .map(|(&mask, &m)| {
                        let inc = (0..nt)
                            .filter(|&ti| mask & (1 << ti) != 0)
                            .map(|ti| 1u128 << shift(ti))
                            .sum::<u128>();
                        (inc, m)
                    })
                    .collect();
                let mut next: rustc_hash::FxHashMap<u128, f64> = Default::default();
                next.reserve(dp.len() * 2);
                for &(state, n) in &dp {
                    for &(inc, m) in &incs {
                        *next.entry(state + inc).or_insert(0.0) += n * m;
                    }
                }
                dp = next.into_iter().collect();
                dp.sort_unstable_by_key(|e| e.0);
            }
            dp.iter()
                .map(|&(state, n)| {
                    n * (0..nt)
                        .map(|ti| fact((state >> shift(ti)) as u8))
                        .product::<f64>()
                })
                .sum::<f64>()
        } else {
            Self::vector_sum(&masks_per_rank, nt)
        };
        self.outer_ways() * sum
    }

    /// [`Space::size`] by the byte-vector states alone (what spaces of more than 16 temporal
    /// slots use); the packed count must equal it to the bit (tests/finite.rs checks).
    #[doc(hidden)]
    pub fn size_by_vectors(&self, p: &Problem) -> f64 {
        let (masks_per_rank, nt) = self.rank_masks(p);
        self.outer_ways() * Self::vector_sum(&masks_per_rank, nt)
    }

    /// Per rank: how many of its factorizations put a loop in each set of temporal slots
    /// (bit `i`: the `i`-th temporal slot); and the number of temporal slots.
    fn rank_masks(&self, p: &Problem) -> (Vec<BTreeMap<u64, f64>>, usize) {
        let ns = self.slots.len();
        let temporal: Vec<usize> = (0..ns).filter(|&s| self.slots[s].temporal()).collect();
        let masks = self
            .ranks
            .iter()
            .enumerate()
            .map(|(ri, &r)| {
                let mut masks: BTreeMap<u64, f64> = BTreeMap::new();
                self.count_factorizations(ri, p.ranks[r].extent, 0, 0, &temporal, &mut masks);
                masks
            })
            .collect();
        (masks, temporal.len())
    }

    /// Bindings × bypass choices × spill choices (the factors of the size outside the loops).
    fn outer_ways(&self) -> f64 {
        let bindings: f64 = self.units.iter().map(|u| u.len() as f64).product();
        let bypass_bits: u32 = self.bypass_free.iter().map(|m| m.count_ones()).sum();
        bindings * 2f64.powi(bypass_bits as i32) * 2f64.powi(self.spillable.len() as i32)
    }

    /// Σ over loop-count states of (ways × Π per slot count!), states as byte vectors.
    fn vector_sum(masks_per_rank: &[BTreeMap<u64, f64>], nt: usize) -> f64 {
        let fact = |n: u8| (1..=u32::from(n)).map(f64::from).product::<f64>();
        let mut dp: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
        dp.insert(vec![0; nt], 1.0);
        for masks in masks_per_rank {
            let mut next: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
            for (state, &n) in &dp {
                for (&mask, &m) in masks {
                    let mut s2 = state.clone();
                    for (ti, x) in s2.iter_mut().enumerate() {
                        if mask & (1 << ti) != 0 {
                            *x += 1;
                        }
                    }
                    *next.entry(s2).or_insert(0.0) += n * m;
                }
            }
            dp = next;
        }
        dp.iter()
            .map(|(state, &n)| n * state.iter().map(|&c| fact(c)).product::<f64>())
            .sum::<f64>()
    }

    /// Counts the factorizations of `rem` over slots from `si` (per owner, each unit's slots
    /// start from what the shared slots left), by the set of temporal slots with a factor > 1.
    fn count_factorizations(
        &self,
        ri: usize,
        rem: u64,
        si: usize,
        mask: u64,
        temporal: &[usize],
        out: &mut BTreeMap<u64, f64>,
    ) {
        let ns = self.slots.len();
        // Shared slots first, recursively; then each unit independently from the same rem.
        if si < ns && self.slots[si].owner == SHARED {
            let s = &self.slots[si];
            let mut c = Vec::new();
            match self.fixed[ri * ns + si] {
                Some(f) => c.push(f),
                None => self.candidates(rem, s.limit, !s.temporal(), &mut c),
            }
            for f in c {
                let m = if f > 1 && s.temporal() {
                    mask | 1 << temporal.iter().position(|&t| t == si).unwrap_or(0)
                } else {
                    mask
                };
                self.count_factorizations(ri, rem.div_ceil(f), si + 1, m, temporal, out);
            }
            return;
        }
        // Private slots: per unit, the ways to split `rem`; units combine independently.
        let mut combos: BTreeMap<u64, f64> = BTreeMap::new();
        combos.insert(mask, 1.0);
        let mut s = si;
        while s < ns {
            let owner = self.slots[s].owner;
            let end = (s..ns)
                .find(|&x| self.slots[x].owner != owner)
                .unwrap_or(ns);
            let mut per_unit: BTreeMap<u64, f64> = BTreeMap::new();
            self.count_private(ri, rem, s, end, 0, temporal, &mut per_unit);
            let mut next = BTreeMap::new();
            for (&m1, &n1) in &combos {
                for (&m2, &n2) in &per_unit {
                    *next.entry(m1 | m2).or_insert(0.0) += n1 * n2;
                }
            }
            combos = next;
            s = end;
        }
        for (m, n) in combos {
            *out.entry(m).or_insert(0.0) += n;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn count_private(
        &self,
        ri: usize,
        rem: u64,
        si: usize,
        end: usize,
        mask: u64,
        temporal: &[usize],
        out: &mut BTreeMap<u64, f64>,
    ) {
        let ns = self.slots.len();
        if si == end {
            *out.entry(mask).or_insert(0.0) += 1.0;
            return;
        }
        let s = &self.slots[si];
        let bit = |m: u64, f: u64| {
            if f > 1 && s.temporal() {
                m | 1 << temporal.iter().position(|&t| t == si).unwrap_or(0)
            } else {
                m
            }
        };
        if s.residual {
            // The residual takes what the unit's other slots leave: count those first.
            let mut sub = BTreeMap::new();
            self.count_private_rest(ri, rem, si + 1, end, mask, temporal, &mut sub);
            for ((m, left), n) in sub {
                *out.entry(bit(m, left)).or_insert(0.0) += n;
            }
            return;
        }
        let mut c = Vec::new();
        match self.fixed[ri * ns + si] {
            Some(f) => c.push(f),
            None => self.candidates(rem, s.limit, !s.temporal(), &mut c),
        }
        for f in c {
            self.count_private(
                ri,
                rem.div_ceil(f),
                si + 1,
                end,
                bit(mask, f),
                temporal,
                out,
            );
        }
    }

    /// Like [`Self::count_private`] but keyed by (mask, what is left) for the residual.
    #[allow(clippy::too_many_arguments)]
    fn count_private_rest(
        &self,
        ri: usize,
        rem: u64,
        si: usize,
        end: usize,
        mask: u64,
        temporal: &[usize],
        out: &mut BTreeMap<(u64, u64), f64>,
    ) {
        let ns = self.slots.len();
        if si == end {
            *out.entry((mask, rem)).or_insert(0.0) += 1.0;
            return;
        }
        let s = &self.slots[si];
        let mut c = Vec::new();
        match self.fixed[ri * ns + si] {
            Some(f) => c.push(f),
            None => self.candidates(rem, s.limit, !s.temporal(), &mut c),
        }
        for f in c {
            let m = if f > 1 && s.temporal() {
                mask | 1 << temporal.iter().position(|&t| t == si).unwrap_or(0)
            } else {
                mask
            };
            self.count_private_rest(ri, rem.div_ceil(f), si + 1, end, m, temporal, out);
        }
    }

    /// Ranks any Einsum on unit `u` may iterate.
    pub fn unit_ranks(&self, u: usize) -> u32 {
        self.unit_ranks[u]
    }
}
