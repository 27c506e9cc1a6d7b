//! Analyses of a cascade with bound shapes: operation counts by kind, tensor
//! footprints, and FuseMax's pass count per rank.

use crate::ir::*;
use crate::shapes::Shapes;
use crate::syntax::{BinOp, Expr, ReduceOp, UnOp};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Operation counts by kind (`mac`, `mul`, `add`, `max`, `exp`, `div`, …).
pub type OpCounts = BTreeMap<String, u64>;

fn bump(ops: &mut OpCounts, kind: &str, n: u64) {
    let c = ops.entry(kind.to_string()).or_insert(0);
    *c = c.saturating_add(n);
}

/// Token routing of a MoE layer: how many tokens each expert receives.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Routing {
    /// The expert rank (e.g. `X`).
    pub expert_rank: String,
    /// Tokens routed (each picks k experts).
    pub tokens: u64,
    pub tokens_per_expert: Vec<u64>,
}

impl Routing {
    /// Spread `tokens × k` assignments over `experts` with a Zipf-like skew
    /// (`skew = 0` is balanced). Each expert gets at most `tokens` (a token picks
    /// k distinct experts); rounding by largest remainder, ties to lower index,
    /// so the result is deterministic and sums exactly to `tokens × k`.
    pub fn zipf(expert_rank: &str, experts: u64, tokens: u64, k: u64, skew: f64) -> Routing {
        let w: Vec<f64> = (1..=experts).map(|r| 1.0 / (r as f64).powf(skew)).collect();
        Routing::weighted(expert_rank, tokens, k, &w)
    }

    /// Spread `tokens × k` assignments over `weights.len()` experts in proportion to `weights`
    /// (e.g. measured router counts), with the same cap, water-filling and rounding as
    /// [`Routing::zipf`]. Weights must be finite and ≥ 0 with a positive sum.
    pub fn weighted(expert_rank: &str, tokens: u64, k: u64, weights: &[f64]) -> Routing {
        let experts = weights.len() as u64;
        let total = tokens * k.min(experts);
        let w: Vec<f64> = weights.to_vec();
        let mut remaining = total;
        let mut counts = vec![0u64; experts as usize];
        // Experts of weight 0 get no token.
        let mut open: Vec<usize> = (0..experts as usize)
            .filter(|&i| w[i].is_finite() && w[i] > 0.0)
            .collect();
        // Water-filling: cap at `tokens`, redistribute the excess among the rest.
        while remaining > 0 && !open.is_empty() {
            let wsum: f64 = open.iter().map(|&i| w[i]).sum();
            let share: Vec<f64> = open
                .iter()
                .map(|&i| remaining as f64 * w[i] / wsum)
                .collect();
            let mut floor: Vec<u64> = share.iter().map(|s| s.floor() as u64).collect();
            let mut left = remaining - floor.iter().sum::<u64>();
            let mut order: Vec<usize> = (0..open.len()).collect();
            order.sort_by(|&a, &b| {
                (share[b] - share[b].floor())
                    .total_cmp(&(share[a] - share[a].floor()))
                    .then(a.cmp(&b))
            });
            for &j in &order {
                if left == 0 {
                    break;
                }
                floor[j] += 1;
                left -= 1;
            }
            let mut next_open = Vec::new();
            let mut given = 0;
            for (j, &i) in open.iter().enumerate() {
                let room = tokens - counts[i];
                let add = floor[j].min(room);
                counts[i] += add;
                given += add;
                if counts[i] < tokens {
                    next_open.push(i);
                }
            }
            remaining -= given;
            if given == 0 {
                break;
            }
            open = next_open;
        }
        Routing {
            expert_rank: expert_rank.to_string(),
            tokens,
            tokens_per_expert: counts,
        }
    }

    /// Each of `tokens` tokens picks `k` distinct experts of `experts` uniformly at random (a
    /// draw seeded by `seed` and the token count, so the same count always routes the same):
    /// what Duplex's simulator does for "uniform routing" (LLMSimulator's `getRandomExpert`).
    pub fn random(expert_rank: &str, experts: u64, tokens: u64, k: u64, seed: u64) -> Routing {
        use rand::{Rng, SeedableRng};
        let k = k.min(experts);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
            seed ^ tokens.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let mut counts = vec![0u64; experts as usize];
        let mut picked: Vec<usize> = Vec::with_capacity(k as usize);
        for _ in 0..tokens {
            picked.clear();
            while (picked.len() as u64) < k {
                let e = rng.random_range(0..experts as usize);
                if !picked.contains(&e) {
                    picked.push(e);
                }
            }
            for &e in &picked {
                counts[e] += 1;
            }
        }
        Routing {
            expert_rank: expert_rank.to_string(),
            tokens,
            tokens_per_expert: counts,
        }
    }

    pub fn active_experts(&self) -> u64 {
        self.tokens_per_expert.iter().filter(|&&t| t > 0).count() as u64
    }
    pub fn max_tokens(&self) -> u64 {
        self.tokens_per_expert.iter().copied().max().unwrap_or(0)
    }
}

/// Options of [`analyze`].
#[derive(Clone, Debug, Default)]
pub struct AnalysisOptions {
    /// Bytes per element (2 for bf16/fp16).
    pub dtype_bytes: u64,
    /// Routing for Einsums masked by a tensor over the expert rank.
    pub routing: Option<Routing>,
}

/// Per-Einsum results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EinsumStats {
    pub name: String,
    /// Points of the (dense) iteration space.
    pub iteration_points: u64,
    /// Points actually computed (after a routing mask).
    pub computed_points: u64,
    pub ops: OpCounts,
    /// Elements written.
    pub output_elems: u64,
    /// For each pass-carrying root rank: the pass in which this Einsum runs.
    pub pass: BTreeMap<String, u32>,
    /// Routed Einsums: experts with at least one token, and the busiest expert's tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_experts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens_per_expert: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorStats {
    pub name: String,
    pub kind: String,
    pub dims: Vec<u64>,
    pub elems: u64,
    pub bytes: u64,
    /// Elements actually touched: an input read through affine indices counts the
    /// distinct elements its windows read (halos once, rows a stride skips not at
    /// all); expert weights of idle experts are not read.
    pub touched_elems: u64,
    /// `touched_elems` in bytes.
    pub touched_bytes: u64,
}

/// The whole analysis of one cascade instance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Analysis {
    pub cascade: String,
    pub extents: BTreeMap<String, u64>,
    pub einsums: Vec<EinsumStats>,
    pub tensors: Vec<TensorStats>,
    /// Passes over each root rank (FuseMax §III): 1 + the number of dependencies
    /// that need a whole fiber of the rank before it can be traversed again.
    pub passes: BTreeMap<String, u32>,
    pub total_ops: OpCounts,
}

impl Analysis {
    pub fn einsum(&self, name: &str) -> Option<&EinsumStats> {
        self.einsums.iter().find(|e| e.name == name)
    }
    pub fn op(&self, kind: &str) -> u64 {
        self.total_ops.get(kind).copied().unwrap_or(0)
    }
}

/// Count the map operators of `e`: each node runs once per point of its own index
/// set (operands broadcast), never over indices it does not use.
fn count_map_ops(
    e: &Expr,
    einsum: &Einsum,
    sh: &Shapes,
    next: &mut usize,
    ops: &mut OpCounts,
    scale: f64,
) -> BTreeSet<String> {
    let points = |s: &BTreeSet<String>| -> u64 {
        (s.iter().map(|v| sh.extent(&rank_of(v))).product::<u64>() as f64 * scale).round() as u64
    };
    match e {
        Expr::Num(..) | Expr::Extent(_) => BTreeSet::new(),
        Expr::Access(_) => {
            *next += 1;
            einsum.accesses[*next - 1].vars().into_iter().collect()
        }
        Expr::Unary(op, x, _) => {
            let s = count_map_ops(x, einsum, sh, next, ops, scale);
            let n = points(&s).max(1);
            match op {
                // Composite activations count their parts.
                UnOp::Silu | UnOp::Sigmoid => {
                    bump(ops, "exp", n);
                    bump(ops, "add", n);
                    bump(ops, "div", n);
                    if *op == UnOp::Silu {
                        bump(ops, "mul", n);
                    }
                }
                UnOp::Gelu => {
                    bump(ops, "tanh", n);
                    bump(ops, "mul", 4 * n);
                    bump(ops, "add", 2 * n);
                }
                _ => bump(ops, op.name(), n),
            }
            s
        }
        Expr::Binary(op, a, b, _) => {
            let mut s = count_map_ops(a, einsum, sh, next, ops, scale);
            s.extend(count_map_ops(b, einsum, sh, next, ops, scale));
            let kind = match op {
                BinOp::Add => "add",
                BinOp::Sub => "sub",
                BinOp::Mul => "mul",
                BinOp::Div => "div",
                BinOp::Max => "max",
                BinOp::Min => "min",
            };
            bump(ops, kind, points(&s).max(1));
            s
        }
    }
}

/// Analyse a cascade for given shapes.
pub fn analyze(c: &Cascade, sh: &Shapes, opts: &AnalysisOptions) -> Analysis {
    let passes_by_einsum = pass_analysis(c);
    let mut einsums = Vec::new();
    let mut total = OpCounts::new();
    let mut touched_frac: BTreeMap<String, f64> = BTreeMap::new();
    for (k, e) in c.einsums.iter().enumerate() {
        let dense: u64 = e.vars.iter().map(|v| sh.extent(&rank_of(v))).product();
        // Routing mask: the fraction of mask points that are computed.
        let mut scale = 1.0;
        let mut active = None;
        let mut max_tok = None;
        if let Some(m) = &e.mask {
            let mask_vars = m.vars();
            let mask_points: u64 = mask_vars.iter().map(|v| sh.extent(&rank_of(v))).product();
            let nnz = mask_nnz(c, sh, &m.tensor, opts, mask_points);
            scale = nnz as f64 / mask_points as f64;
            if let Some(r) = &opts.routing {
                if mask_vars.iter().any(|v| rank_of(v) == r.expert_rank) {
                    active = Some(r.active_experts());
                    max_tok = Some(r.max_tokens());
                    let frac = r.active_experts() as f64 / r.tokens_per_expert.len().max(1) as f64;
                    for a in &e.accesses {
                        let t = &c.tensors[&a.tensor];
                        if t.kind == TensorKind::Input
                            && t.dims.iter().any(|d| d.rank == r.expert_rank)
                        {
                            touched_frac.insert(a.tensor.clone(), frac);
                        }
                    }
                }
            }
        }
        let computed = (dense as f64 * scale).round() as u64;
        let mut ops = OpCounts::new();
        let is_mac = matches!(
            (&e.reduce, &e.expr),
            (Reduce::Op(ReduceOp::Sum), Expr::Binary(BinOp::Mul, ..))
        );
        if is_mac {
            // mul feeding a sum-reduction: one MAC per point (Timeloop's convention).
            let mut next = 0;
            if let Expr::Binary(_, a, b, _) = &e.expr {
                count_map_ops(a, e, sh, &mut next, &mut ops, scale);
                count_map_ops(b, e, sh, &mut next, &mut ops, scale);
            }
            bump(&mut ops, "mac", computed);
        } else {
            let mut next = 0;
            count_map_ops(&e.expr, e, sh, &mut next, &mut ops, scale);
            match &e.reduce {
                Reduce::Op(op) => {
                    let kind = match op {
                        ReduceOp::Sum => "add",
                        ReduceOp::Max => "max",
                        ReduceOp::Min => "min",
                        ReduceOp::Prod => "mul",
                    };
                    bump(&mut ops, kind, computed);
                }
                Reduce::TopK { var, k } => {
                    // A k-deep insertion over the fiber: about k compares per element.
                    let n = sh.extent(&rank_of(var));
                    bump(&mut ops, "cmp", computed.saturating_mul((*k as u64).min(n)));
                }
                Reduce::None => {}
            }
        }
        // The iterative rank contributes its extent (not extent + 1) to the space.
        for (kind, n) in &ops {
            bump(&mut total, kind, *n);
        }
        let out_elems: u64 = {
            let t = &c.tensors[&e.name];
            let mut n: u64 = t.dims.iter().map(|d| sh.extent(&d.rank)).product();
            if e.mask.is_some() {
                n = (n as f64 * scale).round() as u64;
            }
            n
        };
        einsums.push(EinsumStats {
            name: e.name.clone(),
            iteration_points: dense,
            computed_points: computed,
            ops,
            output_elems: out_elems,
            pass: passes_by_einsum[k].clone(),
            active_experts: active,
            max_tokens_per_expert: max_tok,
        });
    }
    let tensors = c
        .tensors
        .values()
        .map(|t| {
            let elems = sh.tensor_elems(t);
            let bytes = elems * opts.dtype_bytes;
            let frac = touched_frac.get(&t.name).copied().unwrap_or(1.0);
            let touched = touched_elems(c, sh, t);
            TensorStats {
                name: t.name.clone(),
                kind: format!("{:?}", t.kind).to_lowercase(),
                dims: sh.tensor_dims(t),
                elems,
                bytes,
                touched_elems: (touched as f64 * frac).round() as u64,
                touched_bytes: ((touched * opts.dtype_bytes) as f64 * frac).round() as u64,
            }
        })
        .collect();
    Analysis {
        cascade: c.name.clone(),
        extents: sh.extents().clone(),
        einsums,
        tensors,
        passes: pass_counts(c),
        total_ops: total,
    }
}

/// An affine index with its variables' extents: ((coefficient, extent) per term, offset).
type Window = (Vec<(u64, u64)>, u64);

/// Elements of `t` that some access reads: per dimension, the distinct values of the
/// affine indices addressing it (the whole extent when none does), multiplied across
/// dimensions. Exact when no variable addresses two dimensions of the tensor; an
/// upper bound otherwise (`I[p+r, p+s]`).
fn touched_elems(c: &Cascade, sh: &Shapes, t: &TensorInfo) -> u64 {
    let dims = sh.tensor_dims(t);
    let mut windows: Vec<Vec<Window>> = vec![Vec::new(); dims.len()];
    for e in &c.einsums {
        for a in e.accesses.iter().filter(|a| a.tensor == t.name) {
            for (p, di) in a.dims.iter().enumerate() {
                if let DimIndex::Affine { terms, offset } = di {
                    let ts = terms
                        .iter()
                        .map(|(v, coef)| (*coef as u64, sh.extent(&rank_of(v))))
                        .collect();
                    windows[p].push((ts, *offset as u64));
                }
            }
        }
    }
    dims.iter()
        .zip(&windows)
        .map(|(&n, ws)| match ws.as_slice() {
            [] => n,
            [(terms, _)] => affine_distinct(terms),
            _ if n <= BITSET_LIMIT => {
                let mut all = Bits::new(n);
                for (terms, offset) in ws {
                    all.or(&window_bits(terms, *offset, n));
                }
                all.count()
            }
            _ => ws
                .iter()
                .fold(0u64, |s, (terms, _)| {
                    s.saturating_add(affine_distinct(terms))
                })
                .min(n),
        })
        .fold(1u64, |p, n| p.saturating_mul(n))
}

/// Widest window (in elements) counted exactly with a bitset; wider windows with gaps
/// get an upper bound.
const BITSET_LIMIT: u64 = 1 << 26;

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Distinct values of `Σ coef·x` with each `x` in `0..extent` (`terms` = (coef ≥ 1,
/// extent ≥ 1)): the elements an affine index reads along its rank. `p+r` over P, R
/// gives P + R − 1; `2*p` gives P; `2*p+r` with R = 3 gives 2P + 1.
///
/// Exact: terms sorted by coefficient (after dividing out their gcd) extend a
/// contiguous range while each coefficient is at most the range's length; the rest
/// are added to a bitset by Minkowski sums (doubling, O(log extent) shifts each). A
/// window wider than 2^26 elements that has gaps gets an upper bound instead.
pub fn affine_distinct(terms: &[(u64, u64)]) -> u64 {
    let mut ts: Vec<(u64, u64)> = terms.iter().copied().filter(|&(_, e)| e > 1).collect();
    if ts.is_empty() {
        return 1;
    }
    let g = ts.iter().fold(0, |g, &(c, _)| gcd(g, c)).max(1);
    for t in &mut ts {
        t.0 /= g;
    }
    ts.sort_unstable();
    let mut span: u64 = 1;
    let mut k = 0;
    while k < ts.len() && ts[k].0 <= span {
        span = span.saturating_add(ts[k].0.saturating_mul(ts[k].1 - 1));
        k += 1;
    }
    if k == ts.len() {
        return span;
    }
    let rest = &ts[k..];
    let width = rest
        .iter()
        .fold(span, |w, &(c, e)| w.saturating_add(c.saturating_mul(e - 1)));
    if width > BITSET_LIMIT {
        let points = rest.iter().fold(span, |p, &(_, e)| p.saturating_mul(e));
        return width.min(points);
    }
    let mut bits = Bits::new(width);
    bits.set_range(0, span);
    for &(c, e) in rest {
        bits = bits.minkowski_ap(c, e);
    }
    bits.count()
}

/// The values of `Σ coef·x + offset` as a bitset over `0..width` (width ≤ the limit).
fn window_bits(terms: &[(u64, u64)], offset: u64, width: u64) -> Bits {
    let mut bits = Bits::new(width);
    bits.set_range(offset, offset + 1);
    for &(c, e) in terms {
        bits = bits.minkowski_ap(c, e);
    }
    bits
}

/// A fixed-width bitset for window counts.
#[derive(Clone)]
struct Bits {
    width: u64,
    words: Vec<u64>,
}

impl Bits {
    fn new(width: u64) -> Bits {
        Bits {
            width,
            words: vec![0; width.div_ceil(64) as usize],
        }
    }
    fn set_range(&mut self, lo: u64, hi: u64) {
        for b in lo..hi.min(self.width) {
            self.words[(b / 64) as usize] |= 1 << (b % 64);
        }
    }
    fn or(&mut self, o: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&o.words) {
            *a |= b;
        }
    }
    /// `self |= src << shift`, dropping bits past the width.
    fn or_shifted(&mut self, src: &Bits, shift: u64) {
        let n = self.words.len();
        let (ws, bs) = ((shift / 64) as usize, (shift % 64) as u32);
        if ws >= n {
            return;
        }
        for i in 0..n - ws {
            let v = src.words[i];
            if v == 0 {
                continue;
            }
            self.words[i + ws] |= v << bs;
            if bs > 0 && i + ws + 1 < n {
                self.words[i + ws + 1] |= v >> (64 - bs);
            }
        }
    }
    /// `{a + c·x : a ∈ self, 0 ≤ x < e}` by doubling.
    fn minkowski_ap(&self, c: u64, e: u64) -> Bits {
        let mut s = self.clone();
        let mut n: u64 = 1;
        for bit in (0..63 - e.leading_zeros()).rev() {
            let copy = s.clone();
            s.or_shifted(&copy, c.saturating_mul(n));
            n *= 2;
            if e >> bit & 1 == 1 {
                s.or_shifted(self, c.saturating_mul(n));
                n += 1;
            }
        }
        s
    }
    fn count(&self) -> u64 {
        let full = self.width / 64;
        let mut n: u64 = self.words[..full as usize]
            .iter()
            .map(|w| u64::from(w.count_ones()))
            .sum();
        if !self.width.is_multiple_of(64) {
            let mask = (1u64 << (self.width % 64)) - 1;
            n += u64::from((self.words[full as usize] & mask).count_ones());
        }
        n
    }
}

/// Non-zeros of a mask tensor: from a top-k Einsum, k per fiber; else dense.
fn mask_nnz(c: &Cascade, sh: &Shapes, mask: &str, opts: &AnalysisOptions, dense: u64) -> u64 {
    if let Some(r) = &opts.routing {
        let t = &c.tensors[mask];
        if t.dims.iter().any(|d| d.rank == r.expert_rank) {
            // Other mask ranks (beyond experts × tokens) repeat the routing.
            let per_routing = (sh.extent(&r.expert_rank) * r.tokens).max(1);
            return r.tokens_per_expert.iter().sum::<u64>() * (dense / per_routing).max(1);
        }
    }
    if let Some(p) = c.tensors[mask].producer {
        if let Reduce::TopK { var, k } = &c.einsums[p].reduce {
            let n = sh.extent(&rank_of(var));
            return dense / n * (*k as u64).min(n);
        }
    }
    dense
}

/// Does the Einsum iterate any part of root rank `root`?
fn iterates(c: &Cascade, e: &Einsum, root: &str) -> bool {
    e.vars.iter().any(|v| c.root_rank(&rank_of(v)) == root)
}

/// FuseMax's pass analysis, per root rank, per Einsum.
///
/// For rank R, `L(t)` counts the full traversals of R that must finish before the
/// elements of tensor t exist. An Einsum that iterates R runs in pass
/// `1 + max L(read)`; its output is complete over R (L = its pass) when it
/// reduces R's outermost part, else available within the pass (L = pass − 1).
/// Reading the final element `X[R1]` of an iterative rank also waits for the
/// whole traversal. Einsums that do not iterate R pass L through.
fn pass_analysis(c: &Cascade) -> Vec<BTreeMap<String, u32>> {
    let mut per: Vec<BTreeMap<String, u32>> = vec![BTreeMap::new(); c.einsums.len()];
    for root in c.root_ranks() {
        let outer = c.outermost_part(root).to_string();
        let mut l: BTreeMap<&str, u32> = BTreeMap::new();
        let mut pass_of: BTreeMap<&str, u32> = BTreeMap::new();
        for (k, e) in c.einsums.iter().enumerate() {
            let mut need = 0;
            for a in e.accesses.iter().chain(e.mask.iter()) {
                if a.tensor == e.name {
                    continue;
                }
                let mut lt = l.get(a.tensor.as_str()).copied().unwrap_or(0);
                let reads_last = a
                    .dims
                    .iter()
                    .zip(&c.tensors[&a.tensor].dims)
                    .any(|(di, d)| matches!(di, DimIndex::Last) && c.root_rank(&d.rank) == root);
                if reads_last {
                    if let Some(&p) = pass_of.get(a.tensor.as_str()) {
                        lt = lt.max(p);
                    }
                }
                need = need.max(lt);
            }
            if iterates(c, e, root) {
                let pass = need + 1;
                per[k].insert(root.to_string(), pass);
                pass_of.insert(&e.name, pass);
                // Reducing the outermost part, or a top-k over it, needs the whole fiber.
                let topk_over =
                    matches!(&e.reduce, Reduce::TopK { var, .. } if rank_of(var) == outer);
                let completes = topk_over
                    || e.reduced
                        .iter()
                        .any(|v| rank_of(v) == outer || rank_of(v) == root);
                l.insert(&e.name, if completes { pass } else { pass - 1 });
            } else {
                l.insert(&e.name, need);
            }
        }
    }
    per
}

/// Passes over each root rank: the largest pass of any Einsum iterating it. Window
/// ranks (addressed only by affine indices) are never traversed and are left out.
pub fn pass_counts(c: &Cascade) -> BTreeMap<String, u32> {
    let per = pass_analysis(c);
    let windows = c.window_ranks();
    let mut out = BTreeMap::new();
    for root in c.root_ranks() {
        if windows.contains(root) {
            continue;
        }
        let m = per
            .iter()
            .filter_map(|p| p.get(root))
            .copied()
            .max()
            .unwrap_or(0);
        out.insert(root.to_string(), m);
    }
    out
}
