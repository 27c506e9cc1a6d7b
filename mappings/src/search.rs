//! The mapper's runner (egg-style): searches one fusion group's mapspace ([`Space`]) against a
//! [`CostModel`] — exhaustively when the space is small, otherwise by iterated local search from
//! heuristic starts (first-improvement descent over one-digit changes in a seeded random order,
//! then random kicks), restarts in parallel with rayon — and stops for a reason that carries
//! its data. Same seed → same result.

use crate::constraints::Constraints;
use crate::model::{ArchP, CostModel, GroupPlan, Score};
use crate::problem::Problem;
use crate::space::{common_levels, Point, Space};
use crate::starts::families;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use rustc_hash::FxHasher;
use serde::{Deserialize, Serialize};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
    /// The quantity minimised, on a log scale, with the other metric weighted 1/1000 so that
    /// it decides between near-equal mappings: under `Latency` a mapping may be up to 0.07%
    /// slower if it halves the energy (and the other way round for `Energy`); `Edp` weighs both
    /// equally. Smooth and transitive, unlike a lexicographic order with a tolerance.
    pub fn key(self, s: &Score) -> f64 {
        let (c, e) = (s.cycles.max(1e-300).ln(), s.energy_pj.max(1e-300).ln());
        match self {
            Objective::Latency => c + 1e-3 * e,
            Objective::Energy => e + 1e-3 * c,
            Objective::Edp => c + e,
        }
    }
    /// Whether `a` is strictly better than `b`.
    pub fn better(self, a: &Score, b: &Score) -> bool {
        self.key(a) < self.key(b) - 1e-12
    }
    /// A total order for ranking.
    pub fn cmp(self, a: &Score, b: &Score) -> std::cmp::Ordering {
        self.key(a).total_cmp(&self.key(b))
    }
}

/// Why a search stopped, with its data.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum StopReason {
    /// Every point of the mapspace was evaluated.
    SpaceExhausted { points: u64 },
    /// The evaluation budget ran out.
    Budget { evaluations: u64 },
    /// The time limit passed.
    TimeLimit { seconds: f64 },
    /// Every restart ended after `kicks` kicks in a row without improvement.
    NoImprovement { kicks: u32 },
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::SpaceExhausted { points } => write!(f, "space exhausted ({points} points)"),
            StopReason::Budget { evaluations } => write!(f, "budget of {evaluations} evaluations"),
            StopReason::TimeLimit { seconds } => write!(f, "time limit of {seconds} s"),
            StopReason::NoImprovement { kicks } => {
                write!(f, "no improvement in {kicks} kicks per restart")
            }
        }
    }
}

/// Search settings (builder style).
#[derive(Clone, Debug)]
pub struct Search {
    pub objective: Objective,
    pub seed: u64,
    /// Evaluations across all restarts (and fusion levels).
    pub budget: u64,
    pub restarts: usize,
    /// Kicks in a row without improvement before a restart stops.
    pub patience: u32,
    /// Spaces with at most this many points are enumerated exhaustively.
    pub exhaustive_limit: f64,
    /// Stop after this long (`None`: no limit; a limit makes results depend on the machine).
    pub time_limit: Option<Duration>,
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
            exhaustive_limit: 20_000.0,
            time_limit: None,
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
        self.budget = b.max(1);
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
    pub fn exhaustive_limit(mut self, n: f64) -> Self {
        self.exhaustive_limit = n;
        self
    }
    pub fn time_limit(mut self, d: Duration) -> Self {
        self.time_limit = Some(d);
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
    pub score: Score,
    pub evaluations: u64,
    pub valid: u64,
    pub stop: StopReason,
    /// Size of the mapspace (distinct plans, an upper bound), over every fusion level tried.
    pub space_size: f64,
}

impl Found {
    /// Fraction of the mapspace evaluated (at most 1).
    pub fn coverage(&self) -> f64 {
        if self.space_size > 0.0 {
            (self.evaluations as f64 / self.space_size).min(1.0)
        } else {
            1.0
        }
    }
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
    #[error("{0}")]
    Invalid(String),
}

/// The units each Einsum of a group may run on (supporting its ops, narrowed by bindings).
pub fn allowed_units(
    p: &Problem,
    a: &ArchP,
    einsums: &[usize],
    c: &Constraints,
) -> Result<Vec<Vec<usize>>, SearchError> {
    for pin in &c.bind {
        if a.unit_index(&pin.unit).is_none() {
            return Err(SearchError::Unknown {
                what: "unit",
                name: pin.unit.clone(),
            });
        }
    }
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
            let u = a.unit_index(&pin.unit).unwrap_or(usize::MAX);
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
    Ok(units)
}

/// Fusion levels to try for a group: a single Einsum on one possible unit needs no choice (the
/// first level below the root); otherwise every level all the allowed units share below the
/// root (the root itself if they share nothing else).
pub fn fuse_candidates(a: &ArchP, units: &[Vec<usize>]) -> Vec<usize> {
    let mut all: Vec<usize> = units.iter().flatten().copied().collect();
    all.sort_unstable();
    all.dedup();
    let common = common_levels(a, &all);
    let below_root: Vec<usize> = common.iter().copied().filter(|&l| l != 0).collect();
    if below_root.is_empty() {
        return vec![0];
    }
    if units.len() == 1 {
        return vec![below_root[0]];
    }
    below_root
}

/// A plan with its score.
type Scored = (GroupPlan, Score);

/// Search one group.
pub fn search_group(
    p: &Problem,
    a: &ArchP,
    einsums: &[usize],
    model: &dyn CostModel,
    s: &Search,
) -> Result<Found, SearchError> {
    let start = Instant::now();
    let units = allowed_units(p, a, einsums, &s.constraints)?;
    let fuses = fuse_candidates(a, &units);
    let mut best: Option<Found> = None;
    let mut evaluations = 0;
    let mut space_size = 0.0;
    let mut last_err = String::new();
    let per_fuse = (s.budget / fuses.len() as u64).max(1);
    for &fuse in &fuses {
        let space = Space::new(p, a, einsums, units.clone(), fuse, &s.constraints)?;
        let size = space.size(p);
        space_size += size;
        let sub = Search {
            budget: per_fuse,
            ..s.clone()
        };
        let r = if size <= s.exhaustive_limit {
            exhaustive(p, a, &space, model, &sub)
        } else {
            local_search(p, a, &space, model, &sub, start)
        };
        match r {
            Ok(f) => {
                evaluations += f.evaluations;
                if best
                    .as_ref()
                    .is_none_or(|b| s.objective.better(&f.score, &b.score))
                {
                    best = Some(f);
                }
            }
            Err(SearchError::NoValidMapping {
                evaluations: n,
                reason,
                ..
            }) => {
                evaluations += n;
                last_err = reason;
            }
            Err(e) => return Err(e),
        }
    }
    match best {
        Some(mut f) => {
            f.evaluations = evaluations;
            f.space_size = space_size;
            Ok(f)
        }
        None => Err(SearchError::NoValidMapping {
            group: group_name(p, einsums),
            evaluations,
            reason: last_err,
        }),
    }
}

fn group_name(p: &Problem, einsums: &[usize]) -> String {
    einsums
        .iter()
        .map(|&e| p.einsums[e].name.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Evaluates a decoded point: the objective, the plan and its score, or why it is invalid.
fn eval_point(
    p: &Problem,
    a: &ArchP,
    space: &Space,
    model: &dyn CostModel,
    pt: &Point,
    f: &mut Vec<u64>,
) -> Result<Scored, String> {
    let plan = space
        .plan(p, pt, f)
        .ok_or_else(|| Refusal::FixedFactor.describe(p, a))?;
    eval_plan(p, a, space, model, plan).map_err(|r| r.describe(p, a))
}

/// Why a point was not scored (described only when the search reports it).
enum Refusal {
    FixedFactor,
    Utilization,
    Model(crate::Invalid),
}

impl Refusal {
    fn describe(&self, p: &Problem, a: &ArchP) -> String {
        match self {
            Refusal::FixedFactor => "a fixed factor of the constraints cannot be met".into(),
            Refusal::Utilization => "below the constraints' minimum utilisation".into(),
            Refusal::Model(inv) => inv.describe(p, a),
        }
    }
}

/// Score a decoded plan (refused below the constraints' minimum utilisation).
fn eval_plan(
    p: &Problem,
    a: &ArchP,
    space: &Space,
    model: &dyn CostModel,
    plan: GroupPlan,
) -> Result<Scored, Refusal> {
    if !space.utilization_ok(a, &plan) {
        return Err(Refusal::Utilization);
    }
    match model.score(p, a, &plan) {
        Ok(sc) => Ok((plan, sc)),
        Err(inv) => Err(Refusal::Model(inv)),
    }
}

/// Every point of a small space, in parallel; ties go to the first in enumeration order.
fn exhaustive(
    p: &Problem,
    a: &ArchP,
    space: &Space,
    model: &dyn CostModel,
    s: &Search,
) -> Result<Found, SearchError> {
    let points = enumerate(p, a, space);
    let results: Vec<Result<Scored, String>> = points
        .par_iter()
        .map_init(Vec::new, |f, pt| eval_point(p, a, space, model, pt, f))
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
        .min_by(|x, y| s.objective.cmp(&x.1 .1, &y.1 .1).then(x.0.cmp(&y.0)));
    match best {
        Some((_, (plan, score))) => Ok(Found {
            plan,
            score,
            evaluations,
            valid,
            stop: StopReason::SpaceExhausted {
                points: evaluations,
            },
            space_size: evaluations as f64,
        }),
        None => Err(SearchError::NoValidMapping {
            group: group_name(p, &space.einsums),
            evaluations,
            reason: last,
        }),
    }
}

/// Every distinct point of a small space: bindings × factor digits (each over its candidates,
/// given the digits before it) × loop orders × bypasses × spills, one point per distinct plan.
fn enumerate(p: &Problem, a: &ArchP, space: &Space) -> Vec<Point> {
    let ns = space.slots.len();
    let mut out: Vec<Point> = Vec::new();
    let mut seen: std::collections::HashSet<GroupPlan, BuildHasherDefault<FxHasher>> =
        Default::default();
    let mut f = Vec::new();
    let mut radix = Vec::new();
    // Bindings.
    let nb: usize = space.units.iter().map(|u| u.len()).product();
    for b in 0..nb {
        let mut pt = space.zero(a);
        let mut x = b;
        for (k, u) in space.units.iter().enumerate() {
            pt.binding[k] = (x % u.len()) as u8;
            x /= u.len();
        }
        // Factor digits: odometer over digits whose radix depends on the digits before them.
        let mut digits = vec![0u16; space.ranks.len() * ns];
        let mut open = Vec::new();
        loop {
            pt.factors.clone_from(&digits);
            space.radices(&mut radix);
            // Orders: permutations of the loops of each temporal slot with a factor > 1.
            if space.factors_open(p, &pt, &mut f, &mut open).is_some() {
                for order in orders(space, &f) {
                    let mut q = pt.clone();
                    q.prio = order;
                    for bypass in bypasses(space) {
                        q.bypass.clone_from(&bypass);
                        for spill in 0..(1u64 << space.spillable.len()) {
                            q.spill = spill;
                            if let Some(plan) = space.plan(p, &q, &mut f) {
                                if seen.insert(plan) {
                                    out.push(q.clone());
                                }
                            }
                        }
                    }
                }
            }
            // Next digits (last digit fastest), each below its radix at the current point
            // (the radices of later digits are recomputed once they restart from 0). A digit
            // whose larger values cannot change its factor is not advanced: they would decode
            // to factorizations already seen (`Space::factors_open`).
            let mut k = digits.len();
            let mut wrapped = true;
            while k > 0 {
                k -= 1;
                if open[k] {
                    digits[k] += 1;
                    if digits[k] < radix[k] {
                        wrapped = false;
                        break;
                    }
                }
                digits[k] = 0;
            }
            if wrapped {
                break;
            }
        }
    }
    out
}

/// Priority vectors giving every order of the loops with a factor > 1 in each temporal slot.
fn orders(space: &Space, f: &[u64]) -> Vec<Vec<u16>> {
    let ns = space.slots.len();
    let nr = space.ranks.len();
    let mut all = vec![vec![0u16; nr * ns]];
    for (si, s) in space.slots.iter().enumerate() {
        if !s.temporal() {
            continue;
        }
        let live: Vec<usize> = (0..nr)
            .filter(|&ri| f[ri * ns + si] > 1 && space.fixed_prio[ri * ns + si].is_none())
            .collect();
        if live.len() < 2 {
            continue;
        }
        let perms = permutations(live.len());
        let mut next = Vec::with_capacity(all.len() * perms.len());
        for base in &all {
            for perm in &perms {
                let mut q = base.clone();
                for (k, &ri) in live.iter().enumerate() {
                    q[ri * ns + si] = perm[k] as u16;
                }
                next.push(q);
            }
        }
        all = next;
    }
    all
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for rest in permutations(n - 1) {
        for i in 0..=rest.len() {
            let mut v = rest.clone();
            v.insert(i, n - 1);
            out.push(v);
        }
    }
    out
}

/// Every combination of the free bypass bits.
fn bypasses(space: &Space) -> Vec<Vec<u64>> {
    let mut all = vec![vec![0u64; space.bypass_free.len()]];
    for (l, &free) in space.bypass_free.iter().enumerate() {
        let mut m = free;
        while m != 0 {
            let t = m.trailing_zeros();
            m &= m - 1;
            let with: Vec<Vec<u64>> = all
                .iter()
                .map(|v| {
                    let mut v = v.clone();
                    v[l] |= 1 << t;
                    v
                })
                .collect();
            all.extend(with);
        }
    }
    all
}

/// A one-digit change of a point.
#[derive(Clone, Copy, Debug)]
enum Move {
    Bind(usize, u8),
    Factor(usize, u16),
    Swap(usize, usize),
    Bypass(usize, u32),
    Spill(usize),
}

impl Move {
    fn apply(self, pt: &mut Point) {
        match self {
            Move::Bind(k, i) => pt.binding[k] = i,
            Move::Factor(d, x) => pt.factors[d] = x,
            Move::Swap(a, b) => {
                let (pa, pb) = (pt.prio[a], pt.prio[b]);
                pt.prio[a] = pb;
                pt.prio[b] = if pa == pb { pb + 1 } else { pa };
            }
            Move::Bypass(l, t) => pt.bypass[l] ^= 1 << t,
            Move::Spill(b) => pt.spill ^= 1 << b,
        }
    }
}

/// All one-digit changes of a point.
fn neighbours(p: &Problem, space: &Space, pt: &Point, radix: &mut Vec<u16>, out: &mut Vec<Move>) {
    out.clear();
    let ns = space.slots.len();
    for (k, u) in space.units.iter().enumerate() {
        for i in 0..u.len() {
            if i != usize::from(pt.binding[k]) % u.len() {
                out.push(Move::Bind(k, i as u8));
            }
        }
    }
    space.radices(radix);
    for (d, &rad) in radix.iter().enumerate() {
        let cur = usize::from(pt.factors[d]) % usize::from(rad.max(1));
        for i in 0..usize::from(rad) {
            if i != cur {
                out.push(Move::Factor(d, i as u16));
            }
        }
    }
    // Swap the priorities of two loops of one temporal slot.
    let mut f = Vec::new();
    if space.factors(p, pt, &mut f).is_some() {
        for (si, s) in space.slots.iter().enumerate() {
            if !s.temporal() {
                continue;
            }
            let live: Vec<usize> = (0..space.ranks.len())
                .filter(|&ri| f[ri * ns + si] > 1)
                .collect();
            for (x, &i) in live.iter().enumerate() {
                for &j in &live[x + 1..] {
                    out.push(Move::Swap(i * ns + si, j * ns + si));
                }
            }
        }
    }
    for (l, &free) in space.bypass_free.iter().enumerate() {
        let mut m = free;
        while m != 0 {
            let t = m.trailing_zeros();
            m &= m - 1;
            out.push(Move::Bypass(l, t));
        }
    }
    for b in 0..space.spillable.len() {
        out.push(Move::Spill(b));
    }
}

/// Change one random digit.
fn mutate(_p: &Problem, space: &Space, pt: &mut Point, rng: &mut ChaCha8Rng, radix: &mut Vec<u16>) {
    match rng.random_range(0..5) {
        0 if !space.units.is_empty() => {
            let k = rng.random_range(0..space.units.len());
            pt.binding[k] = rng.random_range(0..space.units[k].len()) as u8;
        }
        1 | 2 if !pt.factors.is_empty() => {
            space.radices(radix);
            let d = rng.random_range(0..pt.factors.len());
            pt.factors[d] = rng.random_range(0..radix[d].max(1));
        }
        3 if pt.prio.len() > 1 => {
            let i = rng.random_range(0..pt.prio.len());
            let j = rng.random_range(0..pt.prio.len());
            pt.prio.swap(i, j);
        }
        _ => {
            let bits: u32 = space.bypass_free.iter().map(|m| m.count_ones()).sum();
            let n = bits as usize + space.spillable.len();
            if n == 0 {
                return;
            }
            let mut i = rng.random_range(0..n);
            for (l, &free) in space.bypass_free.iter().enumerate() {
                let c = free.count_ones() as usize;
                if i < c {
                    let mut m = free;
                    for _ in 0..i {
                        m &= m - 1;
                    }
                    pt.bypass[l] ^= 1 << m.trailing_zeros();
                    return;
                }
                i -= c;
            }
            pt.spill ^= 1 << i;
        }
    }
}

/// A random point.
fn random(_p: &Problem, a: &ArchP, space: &Space, rng: &mut ChaCha8Rng) -> Point {
    let mut pt = space.zero(a);
    for (k, u) in space.units.iter().enumerate() {
        pt.binding[k] = rng.random_range(0..u.len()) as u8;
    }
    let mut radix = Vec::new();
    // Draw digits in order: each one's radix depends on the ones before it.
    for d in 0..pt.factors.len() {
        space.radices(&mut radix);
        pt.factors[d] = rng.random_range(0..radix[d].max(1));
    }
    for x in pt.prio.iter_mut() {
        *x = rng.random_range(0..1000);
    }
    for (l, &free) in space.bypass_free.iter().enumerate() {
        pt.bypass[l] = rng.random::<u64>() & free;
    }
    if !space.spillable.is_empty() {
        pt.spill = rng.random_range(0..(1u64 << space.spillable.len()));
    }
    pt
}

/// Iterated local search from the heuristic starts, one restart per thread task.
fn local_search(
    p: &Problem,
    a: &ArchP,
    space: &Space,
    model: &dyn CostModel,
    s: &Search,
    start: Instant,
) -> Result<Found, SearchError> {
    let evals = AtomicU64::new(0);
    let valid = AtomicU64::new(0);
    let timed_out = std::sync::atomic::AtomicBool::new(false);
    let last_err = std::sync::Mutex::new(String::new());
    let refused = |r: Refusal| {
        if let Ok(mut l) = last_err.try_lock() {
            if l.is_empty() {
                *l = r.describe(p, a);
            }
        }
    };
    let eval_decoded = |plan: GroupPlan| -> Option<Scored> {
        evals.fetch_add(1, Ordering::Relaxed);
        match eval_plan(p, a, space, model, plan) {
            Ok(x) => {
                valid.fetch_add(1, Ordering::Relaxed);
                Some(x)
            }
            Err(r) => {
                refused(r);
                None
            }
        }
    };
    let eval = |pt: &Point, f: &mut Vec<u64>| -> Option<Scored> {
        match space.plan(p, pt, f) {
            Some(plan) => eval_decoded(plan),
            None => {
                evals.fetch_add(1, Ordering::Relaxed);
                refused(Refusal::FixedFactor);
                None
            }
        }
    };
    let per_restart = (s.budget / s.restarts as u64).max(1);
    // Diverse starts: the best valid point of each heuristic family, best family first.
    let mut f0 = Vec::new();
    let mut starts: Vec<(Point, Scored)> = families(space, p, a)
        .into_iter()
        .filter_map(|family| {
            family
                .into_iter()
                .filter_map(|pt| eval(&pt, &mut f0).map(|x| (pt, x)))
                .min_by(|x, y| s.objective.cmp(&x.1 .1, &y.1 .1))
        })
        .collect();
    if std::env::var_os("CASCADE_SEARCH_DEBUG").is_some() {
        eprintln!(
            "search [{}]: {} start evaluations, {} starts",
            group_name(p, &space.einsums),
            evals.load(Ordering::Relaxed),
            starts.len()
        );
    }
    starts.sort_by(|x, y| s.objective.cmp(&x.1 .1, &y.1 .1));
    starts.dedup_by(|x, y| x.1 .0 == y.1 .0);
    let patience = s.patience;
    let results: Vec<(Option<Scored>, bool)> = (0..s.restarts)
        .into_par_iter()
        .map(|k| {
            let mut rng =
                ChaCha8Rng::seed_from_u64(s.seed.wrapping_mul(0x9E37_79B9).wrapping_add(k as u64));
            let mut spent = 0u64;
            let mut f = Vec::new();
            let mut radix = Vec::new();
            let mut best: Option<(Point, Scored)> = None;
            // Different points often decode to the same plan: evaluate each plan once.
            let mut seen: std::collections::HashSet<u64, BuildHasherDefault<FxHasher>> =
                Default::default();
            let mut try_point = |pt: &Point, spent: &mut u64, f: &mut Vec<u64>| -> Option<Scored> {
                let plan = space.plan(p, pt, f)?;
                let mut h = FxHasher::default();
                plan.hash(&mut h);
                if !seen.insert(h.finish()) {
                    return None; // evaluated before: never an improvement
                }
                *spent += 1;
                eval_decoded(plan)
            };
            let out_of_time = || {
                s.time_limit.is_some_and(|t| start.elapsed() >= t) && {
                    timed_out.store(true, Ordering::Relaxed);
                    true
                }
            };
            let mut cur: Option<(Point, Scored)> = starts.get(k).cloned();
            let mut tries = 0;
            while cur.is_none() && spent < per_restart / 4 && tries < per_restart {
                tries += 1;
                let pt = random(p, a, space, &mut rng);
                cur = try_point(&pt, &mut spent, &mut f).map(|x| (pt, x));
            }
            let mut stale = 0;
            while let Some(c) = cur.take() {
                let mut here = c;
                // First-improvement descent over one-digit changes, in a seeded random order:
                // move as soon as a neighbour is better; stop when none is.
                let mut moves = Vec::new();
                loop {
                    neighbours(p, space, &here.0, &mut radix, &mut moves);
                    for i in (1..moves.len()).rev() {
                        moves.swap(i, rng.random_range(0..=i));
                    }
                    let mut step: Option<(Point, Scored)> = None;
                    for mv in moves.iter() {
                        if spent >= per_restart || out_of_time() {
                            break;
                        }
                        let mut q = here.0.clone();
                        mv.apply(&mut q);
                        if let Some(x) = try_point(&q, &mut spent, &mut f) {
                            if s.objective.better(&x.1, &here.1 .1) {
                                step = Some((q, x));
                                break;
                            }
                        }
                    }
                    match step {
                        Some(st) => here = st,
                        None => break,
                    }
                }
                if best
                    .as_ref()
                    .is_none_or(|b| s.objective.better(&here.1 .1, &b.1 .1))
                {
                    best = Some(here);
                    stale = 0;
                } else {
                    stale += 1;
                }
                if spent >= per_restart || stale >= patience || out_of_time() {
                    break;
                }
                // Kick: change 2–4 random digits of the best point.
                let b = best
                    .as_ref()
                    .map(|x| x.0.clone())
                    .unwrap_or_else(|| space.zero(a));
                for _ in 0..32 {
                    let mut pt = b.clone();
                    for _ in 0..rng.random_range(2..=4) {
                        mutate(p, space, &mut pt, &mut rng, &mut radix);
                    }
                    if let Some(x) = try_point(&pt, &mut spent, &mut f) {
                        cur = Some((pt, x));
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
            (best.map(|(_, x)| x), stale >= patience)
        })
        .collect();
    let all_converged = results.iter().all(|r| r.1);
    let best = results
        .into_iter()
        .filter_map(|r| r.0)
        .enumerate()
        .min_by(|x, y| s.objective.cmp(&x.1 .1, &y.1 .1).then(x.0.cmp(&y.0)))
        .map(|(_, b)| b);
    let evaluations = evals.load(Ordering::Relaxed);
    let stop = if timed_out.load(Ordering::Relaxed) {
        StopReason::TimeLimit {
            seconds: s.time_limit.map_or(0.0, |t| t.as_secs_f64()),
        }
    } else if all_converged {
        StopReason::NoImprovement { kicks: patience }
    } else {
        StopReason::Budget { evaluations }
    };
    match best {
        Some((plan, score)) => Ok(Found {
            plan,
            score,
            evaluations,
            valid: valid.load(Ordering::Relaxed),
            stop,
            // Set by `search_group`, which has already sized the space (the count is costly).
            space_size: 0.0,
        }),
        None => Err(SearchError::NoValidMapping {
            group: group_name(p, &space.einsums),
            evaluations,
            reason: last_err.into_inner().unwrap_or_default(),
        }),
    }
}
