//! The mapper: a mapspace over bindings, spatial unrolling, tiling, loop order and
//! spills of one fusion group, searched exhaustively when small and by seeded
//! random-restart hill climbing otherwise, in parallel with rayon, with explicit
//! stop reasons (egg-style runner). Same seed → same result.

use crate::model::{ArchP, CostModel, GroupEval, GroupPlan, NONE};
use crate::problem::Problem;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use rustc_hash::FxHasher;
use serde::{Deserialize, Serialize};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// What the search minimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    #[default]
    Latency,
    Energy,
    Edp,
}

impl Objective {
    pub fn score(self, e: &GroupEval) -> f64 {
        match self {
            Objective::Latency => e.cycles + e.energy.total() * 1e-18, // energy breaks ties
            Objective::Energy => e.energy.total() + e.cycles * 1e-12,
            Objective::Edp => e.cycles * e.energy.total(),
        }
    }
}

/// Why a search stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Every point of the mapspace was evaluated.
    SpaceExhausted,
    /// The evaluation budget ran out.
    EvaluationBudget,
    /// Every restart ended at a local optimum (no neighbour improves it).
    NoImprovement,
}

/// User constraints on the mapspace (TOML `[constraints]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    /// Pin a rank to a unit dimension: `{ unit = "pe2d", dim = 0, rank = "M0" }`.
    #[serde(default)]
    pub spatial: Vec<SpatialPin>,
    /// Pin an Einsum to a unit: `{ einsum = "BQK", unit = "pe2d" }`.
    #[serde(default)]
    pub bind: Vec<BindPin>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpatialPin {
    pub unit: String,
    pub dim: usize,
    pub rank: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindPin {
    pub einsum: String,
    pub unit: String,
}

/// Search settings (builder style).
#[derive(Clone, Debug)]
pub struct Search {
    pub objective: Objective,
    pub seed: u64,
    /// Evaluations across all restarts.
    pub budget: u64,
    pub restarts: usize,
    /// Kicks in a row without improvement before a restart stops.
    pub patience: u32,
    /// Spaces with at most this many points are enumerated exhaustively.
    pub exhaustive_limit: u64,
    pub constraints: Constraints,
}

impl Default for Search {
    fn default() -> Self {
        Search {
            objective: Objective::Latency,
            seed: 1,
            budget: 200_000,
            restarts: 8,
            patience: 12,
            exhaustive_limit: 20_000,
            constraints: Constraints::default(),
        }
    }
}

impl Search {
    pub fn objective(mut self, o: Objective) -> Self {
        self.objective = o;
        self
    }
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    pub fn budget(mut self, b: u64) -> Self {
        self.budget = b;
        self
    }
    pub fn restarts(mut self, r: usize) -> Self {
        self.restarts = r.max(1);
        self
    }
    pub fn patience(mut self, n: u32) -> Self {
        self.patience = n.max(1);
        self
    }
    pub fn constraints(mut self, c: Constraints) -> Self {
        self.constraints = c;
        self
    }
}

/// The best mapping found and how the search went.
#[derive(Clone, Debug)]
pub struct Found {
    pub plan: GroupPlan,
    pub eval: GroupEval,
    pub evaluations: u64,
    pub valid: u64,
    pub stop: StopReason,
    /// Size of the mapspace (points), saturating.
    pub space_size: u64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SearchError {
    #[error(
        "no valid mapping of group [{group}] in {evaluations} evaluations; last reason: {reason}"
    )]
    NoValidMapping {
        group: String,
        evaluations: u64,
        reason: String,
    },
    #[error("Einsum {einsum} cannot run on {arch}: no compute unit supports {ops}")]
    Unsupported {
        einsum: String,
        arch: String,
        ops: String,
    },
    #[error("constraint names unknown {what} `{name}`")]
    Unknown { what: &'static str, name: String },
}

/// The mapspace of one group: choices per "digit".
#[derive(Clone, Debug)]
pub struct Space {
    pub einsums: Vec<usize>,
    /// Allowed units per Einsum.
    pub units: Vec<Vec<usize>>,
    /// Per unit, per dim: candidate (rank, factor), `NONE` included.
    pub spatial: Vec<Vec<Vec<(usize, u64)>>>,
    /// Per leaf rank: divisors of its extent (candidate outer factors).
    pub divisors: Vec<Vec<u64>>,
    /// Per leaf rank, per outer factor index: divisors of extent / factor.
    pub sub_divisors: Vec<Vec<Vec<u64>>>,
    /// Intermediates that could be spilled (bitmask candidates).
    pub spillable: Vec<usize>,
}

/// A point in the space, as indices (a "genome").
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Point {
    binding: Vec<usize>,
    spatial: Vec<Vec<usize>>,
    /// Per rank: (index of outer factor o1, index of o2 among divisors of extent/o1).
    outer: Vec<(usize, usize)>,
    /// Priority of the 2 loop slots of each rank (lower = outer).
    order: Vec<u32>,
    spill: u64,
}

fn divisors(n: u64) -> Vec<u64> {
    let mut d: Vec<u64> = (1..)
        .take_while(|i| i * i <= n)
        .filter(|i| n.is_multiple_of(*i))
        .flat_map(|i| [i, n / i])
        .collect();
    d.sort_unstable();
    d.dedup();
    d
}

impl Space {
    /// Build the space of a group; `allowed` optionally narrows each Einsum's units.
    pub fn new(
        p: &Problem,
        a: &ArchP,
        einsums: &[usize],
        c: &Constraints,
    ) -> Result<Space, SearchError> {
        let mut units = Vec::new();
        for &e in einsums {
            let ep = &p.einsums[e];
            let mut ok: Vec<usize> = (0..a.units.len())
                .filter(|&u| {
                    ep.ops
                        .iter()
                        .all(|&(k, n)| n == 0 || a.units[u].op_cycles[k].is_some())
                })
                .collect();
            for pin in c.bind.iter().filter(|b| b.einsum == ep.name) {
                let u = a.unit_index(&pin.unit).ok_or(SearchError::Unknown {
                    what: "unit",
                    name: pin.unit.clone(),
                })?;
                ok.retain(|&x| x == u);
            }
            if ok.is_empty() {
                let missing: Vec<&str> = ep
                    .ops
                    .iter()
                    .filter(|&&(k, n)| n > 0 && !a.units.iter().any(|u| u.op_cycles[k].is_some()))
                    .map(|&(k, _)| p.op_kinds[k].as_str())
                    .collect();
                return Err(SearchError::Unsupported {
                    einsum: ep.name.clone(),
                    arch: a.name.clone(),
                    ops: if missing.is_empty() {
                        "its ops together (pinned units)".into()
                    } else {
                        missing.join(", ")
                    },
                });
            }
            units.push(ok);
        }
        for pin in &c.bind {
            if p.einsum_index(&pin.einsum).is_none() {
                return Err(SearchError::Unknown {
                    what: "Einsum",
                    name: pin.einsum.clone(),
                });
            }
        }
        let group_vars: u32 = einsums.iter().fold(0, |m, &e| m | p.einsums[e].vars);
        let mut spatial = Vec::new();
        for unit in &a.units {
            let mut per_dim = Vec::new();
            for (d, &size) in unit.dims.iter().enumerate() {
                let mut cands = vec![(NONE, 1)];
                for (r, rk) in p.ranks.iter().enumerate() {
                    if group_vars & (1 << r) == 0 || rk.extent == 1 {
                        continue;
                    }
                    let f = divisors(rk.extent)
                        .into_iter()
                        .filter(|&x| x <= size)
                        .max()
                        .unwrap_or(1);
                    cands.push((r, f));
                }
                let pins: Vec<&SpatialPin> = c
                    .spatial
                    .iter()
                    .filter(|s| s.unit == unit.name && s.dim == d)
                    .collect();
                for pin in pins {
                    let r = p.rank_index(&pin.rank).ok_or(SearchError::Unknown {
                        what: "rank",
                        name: pin.rank.clone(),
                    })?;
                    cands.retain(|x| x.0 == r);
                }
                per_dim.push(cands);
            }
            spatial.push(per_dim);
        }
        for pin in &c.spatial {
            if a.unit_index(&pin.unit).is_none() {
                return Err(SearchError::Unknown {
                    what: "unit",
                    name: pin.unit.clone(),
                });
            }
        }
        let divs: Vec<Vec<u64>> = p.ranks.iter().map(|r| divisors(r.extent)).collect();
        let sub_divisors = p
            .ranks
            .iter()
            .zip(&divs)
            .map(|(r, d)| d.iter().map(|&o| divisors(r.extent / o)).collect())
            .collect();
        let spillable = p
            .tensors
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                t.producer.is_some_and(|e| einsums.contains(&e))
                    && !t.consumers.is_empty()
                    && t.consumers.iter().all(|c| einsums.contains(c))
                    && t.iterative.is_none()
                    && t.role != crate::problem::Role::Output
            })
            .map(|(t, _)| t)
            .filter(|&t| t < 64)
            .collect();
        Ok(Space {
            einsums: einsums.to_vec(),
            units,
            spatial,
            divisors: divs,
            sub_divisors,
            spillable,
        })
    }

    /// Number of points (saturating).
    pub fn size(&self) -> u64 {
        let mut s: u64 = 1;
        let mul = |s: u64, x: u64| s.saturating_mul(x.max(1));
        for u in &self.units {
            s = mul(s, u.len() as u64);
        }
        for d in self.spatial.iter().flatten() {
            s = mul(s, d.len() as u64);
        }
        // Σ over factor choices of (loops with factor > 1)!, by a DP over ranks on the
        // number of live loops.
        let mut dp: Vec<u64> = vec![1];
        for (r, d) in self.divisors.iter().enumerate() {
            let mut next = vec![0u64; dp.len() + 2];
            for (i1, &o1) in d.iter().enumerate() {
                for &o2 in &self.sub_divisors[r][i1] {
                    let live = usize::from(o1 > 1) + usize::from(o2 > 1);
                    for (l, &n) in dp.iter().enumerate() {
                        next[l + live] = next[l + live].saturating_add(n);
                    }
                }
            }
            dp = next;
        }
        let fact = |n: usize| (1..=n as u64).fold(1u64, |a, b| a.saturating_mul(b));
        let orders = dp.iter().enumerate().fold(0u64, |acc, (l, &n)| {
            acc.saturating_add(n.saturating_mul(fact(l)))
        });
        s = mul(s, orders);
        mul(s, 1 << self.spillable.len().min(20))
    }

    fn plan(&self, pt: &Point) -> GroupPlan {
        let mut slots: Vec<(u32, usize, usize, u64)> = Vec::new(); // (priority, rank, slot, factor)
        for (r, &(i1, i2)) in pt.outer.iter().enumerate() {
            let o1 = self.divisors[r][i1];
            let rest = &self.sub_divisors[r][i1];
            let o2 = rest[i2.min(rest.len() - 1)];
            slots.push((pt.order[2 * r], r, 0, o1));
            slots.push((pt.order[2 * r + 1], r, 1, o2));
        }
        slots.sort();
        let loops = slots
            .into_iter()
            .filter(|s| s.3 > 1)
            .map(|s| (s.1, s.3))
            .collect();
        let spatial = self
            .spatial
            .iter()
            .zip(&pt.spatial)
            .map(|(dims, choice)| dims.iter().zip(choice).map(|(c, &i)| c[i]).collect())
            .collect();
        let binding = self
            .units
            .iter()
            .zip(&pt.binding)
            .map(|(u, &i)| u[i])
            .collect();
        let spill = self
            .spillable
            .iter()
            .enumerate()
            .filter(|(b, _)| pt.spill & (1 << b) != 0)
            .fold(0u64, |m, (_, &t)| m | (1 << t));
        GroupPlan {
            einsums: self.einsums.clone(),
            loops,
            spatial,
            binding,
            spill,
            keep: vec![],
        }
    }

    fn random(&self, rng: &mut ChaCha8Rng) -> Point {
        let outer = self
            .divisors
            .iter()
            .enumerate()
            .map(|(r, d)| {
                let i1 = rng.random_range(0..d.len());
                let rest = self.sub_divisors[r][i1].len();
                (i1, rng.random_range(0..rest))
            })
            .collect();
        Point {
            binding: self
                .units
                .iter()
                .map(|u| rng.random_range(0..u.len()))
                .collect(),
            spatial: self
                .spatial
                .iter()
                .map(|dims| dims.iter().map(|c| rng.random_range(0..c.len())).collect())
                .collect(),
            outer,
            order: (0..self.divisors.len() * 2)
                .map(|_| rng.random_range(0..1000))
                .collect(),
            spill: if self.spillable.is_empty() {
                0
            } else {
                rng.random_range(0..(1u64 << self.spillable.len().min(20)))
            },
        }
    }

    /// A deterministic start: the largest spatial factors, first allowed units, every
    /// rank's extent as one outer loop in rank order, nothing spilled.
    fn heuristic(&self, p: &Problem) -> Point {
        // Spatial: per unit dimension, the rank carrying the most work of the Einsums
        // that may run there, weighted by how many PEs it can fill.
        let work = |e: usize| -> f64 { p.einsums[e].ops.iter().map(|&(_, n)| n as f64).sum() };
        let spatial: Vec<Vec<usize>> = self
            .spatial
            .iter()
            .enumerate()
            .map(|(u, dims)| {
                let mut used: Vec<usize> = vec![NONE];
                dims.iter()
                    .map(|c| {
                        let score = |i: usize| -> f64 {
                            let (r, f) = c[i];
                            if used.contains(&r) {
                                return -1.0;
                            }
                            let w: f64 = self
                                .einsums
                                .iter()
                                .zip(&self.units)
                                .filter(|(&e, units)| {
                                    units.contains(&u) && p.einsums[e].vars & (1 << r) != 0
                                })
                                .map(|(&e, _)| work(e))
                                .sum();
                            w * f as f64
                        };
                        let best = (0..c.len())
                            .max_by(|&x, &y| score(x).total_cmp(&score(y)).then(y.cmp(&x)))
                            .unwrap_or(0);
                        if score(best) <= 0.0 {
                            return c.iter().position(|x| x.0 == NONE).unwrap_or(0);
                        }
                        used.push(c[best].0);
                        best
                    })
                    .collect()
            })
            .collect();
        // Binding: the allowed unit whose spatial ranks the Einsum fills most.
        let binding = self
            .einsums
            .iter()
            .zip(&self.units)
            .map(|(&e, units)| {
                let fill = |u: usize| -> u64 {
                    self.spatial[u]
                        .iter()
                        .zip(&spatial[u])
                        .filter(|(c, &i)| c[i].0 != NONE && p.einsums[e].vars & (1 << c[i].0) != 0)
                        .map(|(c, &i)| c[i].1)
                        .product()
                };
                (0..units.len())
                    .max_by_key(|&i| (fill(units[i]), std::cmp::Reverse(i)))
                    .unwrap_or(0)
            })
            .collect();
        // Tiling: spatial ranks keep their spatial factor inside, reduced ranks stay whole
        // inside, every other rank is stepped entirely by outer loops.
        let reduced: u32 = self
            .einsums
            .iter()
            .fold(0, |m, &e| m | (p.einsums[e].vars & !p.einsums[e].out_vars));
        let outer = (0..p.ranks.len())
            .map(|r| {
                let f = self
                    .spatial
                    .iter()
                    .zip(&spatial)
                    .flat_map(|(dims, ch)| dims.iter().zip(ch).map(|(c, &i)| c[i]))
                    .filter(|x| x.0 == r)
                    .map(|x| x.1)
                    .max();
                let o = match f {
                    Some(f) => p.ranks[r].extent / f,
                    None if reduced & (1 << r) != 0 => 1,
                    None => p.ranks[r].extent,
                };
                (
                    self.divisors[r].iter().position(|&d| d == o).unwrap_or(0),
                    0,
                )
            })
            .collect();
        Point {
            binding,
            spatial,
            outer,
            order: (0..self.divisors.len() as u32 * 2).collect(),
            spill: 0,
        }
    }

    /// Every point of the space (binding × spatial × factors × loop orders × spills), for
    /// spaces small enough to enumerate. Orders are the permutations of the slots whose
    /// factor is > 1 (other slots do not change the plan).
    fn all_points(&self) -> Vec<Point> {
        let mut radices: Vec<usize> = Vec::new();
        radices.extend(self.units.iter().map(|u| u.len()));
        for dims in &self.spatial {
            radices.extend(dims.iter().map(|c| c.len()));
        }
        let pairs: Vec<Vec<(usize, usize)>> = self
            .divisors
            .iter()
            .enumerate()
            .map(|(r, d)| {
                (0..d.len())
                    .flat_map(|i1| (0..self.sub_divisors[r][i1].len()).map(move |i2| (i1, i2)))
                    .collect()
            })
            .collect();
        radices.extend(pairs.iter().map(|v| v.len()));
        radices.push(1 << self.spillable.len().min(20));
        let total: usize = radices.iter().product();
        let mut out = Vec::new();
        let mut digits = vec![0usize; radices.len()];
        for _ in 0..total {
            let mut it = digits.iter();
            let binding = self.units.iter().map(|_| *it.next().unwrap()).collect();
            let spatial = self
                .spatial
                .iter()
                .map(|dims| dims.iter().map(|_| *it.next().unwrap()).collect())
                .collect();
            let outer: Vec<(usize, usize)> = pairs.iter().map(|v| v[*it.next().unwrap()]).collect();
            let spill = *it.next().unwrap() as u64;
            let base = Point {
                binding,
                spatial,
                outer,
                order: (0..self.divisors.len() as u32 * 2).collect(),
                spill,
            };
            let live: Vec<usize> = (0..base.order.len())
                .filter(|&sl| {
                    let (r, which) = (sl / 2, sl % 2);
                    let (i1, i2) = base.outer[r];
                    let f = if which == 0 {
                        self.divisors[r][i1]
                    } else {
                        self.sub_divisors[r][i1][i2]
                    };
                    f > 1
                })
                .collect();
            // Permutations of the live slots' priorities (Heap's algorithm).
            let mut prio: Vec<u32> = live.iter().map(|&i| i as u32).collect();
            let mut c = vec![0usize; prio.len()];
            let emit = |prio: &[u32], out: &mut Vec<Point>| {
                let mut q = base.clone();
                for (k, &sl) in live.iter().enumerate() {
                    q.order[sl] = prio[k];
                }
                out.push(q);
            };
            emit(&prio, &mut out);
            let mut i = 0;
            while i < prio.len() {
                if c[i] < i {
                    if i % 2 == 0 {
                        prio.swap(0, i);
                    } else {
                        prio.swap(c[i], i);
                    }
                    emit(&prio, &mut out);
                    c[i] += 1;
                    i = 0;
                } else {
                    c[i] = 0;
                    i += 1;
                }
            }
            for k in (0..digits.len()).rev() {
                digits[k] += 1;
                if digits[k] < radices[k] {
                    break;
                }
                digits[k] = 0;
            }
        }
        out
    }

    /// Families of heuristic starts: the heuristic point (and variants keeping one rank
    /// whole, or with reduced ranks' loops innermost), each with variants whose tile of
    /// each rank is 2, 4, … times smaller.
    fn heuristics(&self, p: &Problem) -> Vec<Vec<Point>> {
        let base = self.heuristic(p);
        let shrink = |q: &Point, r: usize, up: usize| -> Option<Point> {
            let (i1, i2) = q.outer[r];
            (i1 + up < self.divisors[r].len()).then(|| {
                let mut q = q.clone();
                q.outer[r] = (i1 + up, i2.min(self.sub_divisors[r][i1 + up].len() - 1));
                q
            })
        };
        // Bases: the heuristic, and the heuristic with one rank kept whole inside the tile
        // (a multi-pass fused group needs whole fibres of the passed rank on chip).
        let mut bases = vec![base.clone()];
        for r in 0..self.divisors.len() {
            if base.outer[r].0 != 0 {
                let mut q = base.clone();
                q.outer[r] = (0, 0);
                bases.push(q);
            }
        }
        // The same with the loops of ranks some Einsum reduces innermost: a later pass can
        // then wait on tiles of one outer step instead of whole fibres.
        let reduced: u32 = self
            .einsums
            .iter()
            .fold(0, |m, &e| m | (p.einsums[e].vars & !p.einsums[e].out_vars));
        if reduced != 0 {
            let inner_last = |b: &Point| -> Point {
                let mut q = b.clone();
                let n = q.order.len() as u32;
                for (slot, prio) in q.order.iter_mut().enumerate() {
                    if reduced & (1 << (slot / 2)) != 0 {
                        *prio += n;
                    }
                }
                q
            };
            let extra: Vec<Point> = bases.iter().map(inner_last).collect();
            bases.extend(extra);
        }
        // One family per base: the base and its smaller-tile variants.
        bases
            .iter()
            .map(|b| {
                let mut v = vec![b.clone()];
                for r in 0..self.divisors.len() {
                    for up in 1..=10 {
                        if let Some(q) = shrink(b, r, up) {
                            v.push(q);
                        }
                    }
                }
                v
            })
            .collect()
    }

    /// Change one random digit of a point.
    fn mutate(&self, pt: &mut Point, rng: &mut ChaCha8Rng) {
        match rng.random_range(0..5) {
            0 if !self.units.is_empty() => {
                let k = rng.random_range(0..self.units.len());
                pt.binding[k] = rng.random_range(0..self.units[k].len());
            }
            1 => {
                let u = rng.random_range(0..self.spatial.len());
                if !self.spatial[u].is_empty() {
                    let d = rng.random_range(0..self.spatial[u].len());
                    pt.spatial[u][d] = rng.random_range(0..self.spatial[u][d].len());
                }
            }
            2 if !self.divisors.is_empty() => {
                let r = rng.random_range(0..self.divisors.len());
                let i1 = rng.random_range(0..self.divisors[r].len());
                pt.outer[r] = (i1, rng.random_range(0..self.sub_divisors[r][i1].len()));
            }
            3 if pt.order.len() > 1 => {
                let i = rng.random_range(0..pt.order.len());
                let j = rng.random_range(0..pt.order.len());
                pt.order.swap(i, j);
            }
            _ if !self.spillable.is_empty() => {
                pt.spill ^= 1 << rng.random_range(0..self.spillable.len().min(20));
            }
            _ => {}
        }
    }

    /// All single-digit changes of a point.
    fn neighbours(&self, pt: &Point) -> Vec<Point> {
        let mut v = Vec::new();
        for (k, u) in self.units.iter().enumerate() {
            for i in 0..u.len() {
                if i != pt.binding[k] {
                    let mut q = pt.clone();
                    q.binding[k] = i;
                    v.push(q);
                }
            }
        }
        for (u, dims) in self.spatial.iter().enumerate() {
            for (d, c) in dims.iter().enumerate() {
                for i in 0..c.len() {
                    if i != pt.spatial[u][d] {
                        let mut q = pt.clone();
                        q.spatial[u][d] = i;
                        v.push(q);
                    }
                }
            }
        }
        for r in 0..self.divisors.len() {
            // Any outer factor for either loop of the rank (jumps, not just ×2 steps,
            // so capacity ridges can be crossed in one move).
            let (i1, i2) = pt.outer[r];
            for a in 0..self.divisors[r].len() {
                if a != i1 {
                    let mut q = pt.clone();
                    q.outer[r] = (a, i2.min(self.sub_divisors[r][a].len() - 1));
                    v.push(q);
                }
            }
            for b in 0..self.sub_divisors[r][i1].len() {
                if b != i2 {
                    let mut q = pt.clone();
                    q.outer[r] = (i1, b);
                    v.push(q);
                }
            }
        }
        // Reorder only loops that exist (factor > 1): other swaps give the same plan.
        let live: Vec<usize> = (0..pt.order.len())
            .filter(|&sl| {
                let (r, which) = (sl / 2, sl % 2);
                let (i1, i2) = pt.outer[r];
                let f = if which == 0 {
                    self.divisors[r][i1]
                } else {
                    self.sub_divisors[r][i1][i2.min(self.sub_divisors[r][i1].len() - 1)]
                };
                f > 1
            })
            .collect();
        for (x, &i) in live.iter().enumerate() {
            for &j in &live[x + 1..] {
                let mut q = pt.clone();
                q.order.swap(i, j);
                v.push(q);
            }
        }
        for b in 0..self.spillable.len().min(20) {
            let mut q = pt.clone();
            q.spill ^= 1 << b;
            v.push(q);
        }
        v
    }
}

/// Evaluate every point of a small space (in parallel; ties broken by enumeration order).
fn exhaustive(
    p: &Problem,
    a: &ArchP,
    space: &Space,
    model: &dyn CostModel,
    s: &Search,
    size: u64,
) -> Result<Found, SearchError> {
    let points = space.all_points();
    let results: Vec<Result<(f64, GroupPlan, GroupEval), String>> = points
        .par_iter()
        .map(|pt| {
            let plan = space.plan(pt);
            match model.evaluate(p, a, &plan) {
                Ok(e) => Ok((s.objective.score(&e), plan, e)),
                Err(inv) => Err(inv.describe(p, a)),
            }
        })
        .collect();
    let evaluations = results.len() as u64;
    let valid = results.iter().filter(|r| r.is_ok()).count() as u64;
    let last = results
        .iter()
        .rev()
        .find_map(|r| r.as_ref().err().cloned())
        .unwrap_or_default();
    let best = results
        .into_iter()
        .filter_map(Result::ok)
        .enumerate()
        .min_by(|x, y| x.1 .0.total_cmp(&y.1 .0).then(x.0.cmp(&y.0)));
    match best {
        Some((_, (_, plan, eval))) => Ok(Found {
            plan,
            eval,
            evaluations,
            valid,
            stop: StopReason::SpaceExhausted,
            space_size: size,
        }),
        None => Err(SearchError::NoValidMapping {
            group: space
                .einsums
                .iter()
                .map(|&e| p.einsums[e].name.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            evaluations,
            reason: last,
        }),
    }
}

/// A plan with its score and evaluation.
type Scored = (f64, GroupPlan, GroupEval);

/// Search one group.
pub fn search_group(
    p: &Problem,
    a: &ArchP,
    einsums: &[usize],
    model: &dyn CostModel,
    s: &Search,
) -> Result<Found, SearchError> {
    let space = Space::new(p, a, einsums, &s.constraints)?;
    let size = space.size();
    if size <= s.exhaustive_limit {
        return exhaustive(p, a, &space, model, s, size);
    }
    let evals = AtomicU64::new(0);
    let valid = AtomicU64::new(0);
    let last_err = std::sync::Mutex::new(String::new());
    let eval = |plan: GroupPlan| -> Option<(f64, GroupPlan, GroupEval)> {
        evals.fetch_add(1, Ordering::Relaxed);
        match model.evaluate(p, a, &plan) {
            Ok(e) => {
                valid.fetch_add(1, Ordering::Relaxed);
                Some((s.objective.score(&e), plan, e))
            }
            Err(inv) => {
                if let Ok(mut l) = last_err.try_lock() {
                    if l.is_empty() {
                        *l = inv.describe(p, a);
                    }
                }
                None
            }
        }
    };
    let per_restart = (s.budget / s.restarts as u64).max(1);
    // The heuristic point and its variants, evaluated once and ranked: restart k starts
    // from the k-th best.
    // Diverse starts: the best valid point of each heuristic family, best family first.
    let mut starts: Vec<(Point, f64, GroupPlan, GroupEval)> = space
        .heuristics(p)
        .into_iter()
        .filter_map(|family| {
            family
                .into_iter()
                .filter_map(|pt| eval(space.plan(&pt)).map(|(sc, pl, ev)| (pt, sc, pl, ev)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
        })
        .collect();
    starts.sort_by(|a, b| a.1.total_cmp(&b.1));
    starts.dedup_by(|a, b| a.2 == b.2);
    // Iterated local search per restart: steepest descent over single-digit changes, then
    // a random kick of a few digits from the best point, until the budget or `patience`
    // kicks in a row bring nothing.
    let patience = s.patience;
    let results: Vec<(Option<Scored>, bool)> = (0..s.restarts)
        .into_par_iter()
        .map(|k| {
            let mut rng =
                ChaCha8Rng::seed_from_u64(s.seed.wrapping_mul(0x9E37_79B9).wrapping_add(k as u64));
            let mut spent = 0u64;
            let mut best: Option<(Point, f64, GroupPlan, GroupEval)> = None;
            // Different points often give the same plan: evaluate each plan once.
            let mut seen: std::collections::HashSet<u64, BuildHasherDefault<FxHasher>> =
                Default::default();
            let mut try_point =
                |pt: &Point, spent: &mut u64| -> Option<(f64, GroupPlan, GroupEval)> {
                    let plan = space.plan(pt);
                    let mut h = FxHasher::default();
                    plan.hash(&mut h);
                    if !seen.insert(h.finish()) {
                        return None; // evaluated before: never an improvement
                    }
                    *spent += 1;
                    eval(plan)
                };
            // Start: the heuristic point for restart 0, else random points until one is valid.
            // Start from the k-th best heuristic variant (distinct starts), else a random
            // valid point.
            let mut cur: Option<(Point, f64, GroupPlan, GroupEval)> = starts.get(k).cloned();
            let mut tries = 0;
            while cur.is_none() && spent < per_restart / 4 && tries < per_restart {
                tries += 1;
                let pt = space.random(&mut rng);
                cur = try_point(&pt, &mut spent).map(|(sc, pl, ev)| (pt, sc, pl, ev));
            }
            let mut stale = 0;
            while let Some(c) = cur.take() {
                // Steepest descent from c.
                let mut here = c;
                loop {
                    let mut step: Option<(Point, f64, GroupPlan, GroupEval)> = None;
                    for q in space.neighbours(&here.0) {
                        if spent >= per_restart {
                            break;
                        }
                        if let Some((s2, pl, ev)) = try_point(&q, &mut spent) {
                            if s2 < here.1 * (1.0 - 1e-12) && step.as_ref().is_none_or(|b| s2 < b.1)
                            {
                                step = Some((q, s2, pl, ev));
                            }
                        }
                    }
                    match step {
                        Some(st) => here = st,
                        None => break,
                    }
                }
                if best.as_ref().is_none_or(|b| here.1 < b.1 * (1.0 - 1e-12)) {
                    best = Some(here);
                    stale = 0;
                } else {
                    stale += 1;
                }
                if spent >= per_restart || stale >= patience {
                    break;
                }
                // Kick: change 2–4 random digits of the best point (a few tries for a new, valid plan).
                let b = &best.as_ref().unwrap().0;
                for _ in 0..32 {
                    let mut pt = b.clone();
                    for _ in 0..rng.random_range(2..=4) {
                        space.mutate(&mut pt, &mut rng);
                    }
                    if let Some((sc, pl, ev)) = try_point(&pt, &mut spent) {
                        cur = Some((pt, sc, pl, ev));
                        break;
                    }
                }
                if cur.is_none() {
                    stale += 1;
                    cur = best.clone();
                    if stale >= patience {
                        break;
                    }
                }
            }
            (best.map(|(_, sc, pl, ev)| (sc, pl, ev)), stale >= patience)
        })
        .collect();
    let all_converged = results.iter().all(|r| r.1);
    let best = results
        .into_iter()
        .filter_map(|r| r.0)
        .enumerate()
        .min_by(|x, y| x.1 .0.total_cmp(&y.1 .0).then(x.0.cmp(&y.0)))
        .map(|(_, b)| b);
    let evaluations = evals.load(Ordering::Relaxed);
    match best {
        Some((_, plan, eval)) => Ok(Found {
            plan,
            eval,
            evaluations,
            valid: valid.load(Ordering::Relaxed),
            stop: if all_converged {
                StopReason::NoImprovement
            } else {
                StopReason::EvaluationBudget
            },
            space_size: size,
        }),
        None => Err(SearchError::NoValidMapping {
            group: einsums
                .iter()
                .map(|&e| p.einsums[e].name.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            evaluations,
            reason: last_err.into_inner().unwrap_or_default(),
        }),
    }
}
