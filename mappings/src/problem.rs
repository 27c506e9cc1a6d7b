//! A cascade lowered to numbers for the mapper's inner loop: leaf ranks with extents, tensors
//! as rank bitmasks, Einsums with op counts, pass boundaries and, per tensor an Einsum touches,
//! its **projection**: the tensor's coordinates as affine forms over the Einsum's leaf ranks
//! (`I[c, p+r]` → coordinates `c` and `p + r`), from which the models derive tile sizes (with
//! halos) and the data that changes when a loop steps.

use cascade_einsum::ir::{rank_of, Cascade, DimIndex, ResolvedAccess, TensorKind};
use cascade_einsum::syntax::{BinOp, Expr};
use cascade_einsum::{analyze, AnalysisOptions, Routing, Shapes};
use std::collections::BTreeMap;

/// Bitmask over leaf ranks (at most [`MAX_RANKS`] per cascade).
pub type RankMask = u32;

/// Most leaf ranks a cascade may have (the width of [`RankMask`]).
pub const MAX_RANKS: usize = 32;
/// Most tensors a cascade may have (tensor sets are `u64` bitmasks).
pub const MAX_TENSORS: usize = 64;

/// A leaf rank (a rank that is not split further) and its extent.
#[derive(Clone, Debug, PartialEq)]
pub struct RankP {
    pub name: String,
    pub extent: u64,
}

/// A tensor's role in the cascade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Input,
    Intermediate,
    Output,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TensorP {
    pub name: String,
    /// Each declared dimension as the leaf ranks that address it (a split dim has several).
    pub dims: Vec<RankMask>,
    pub ranks: RankMask,
    /// Leaf rank stepped by an iterative dimension (held as a running value).
    pub iterative: Option<usize>,
    /// Elements of the whole tensor (iterative dims hold extent + 1).
    pub elems: u64,
    pub role: Role,
    pub producer: Option<usize>,
    pub consumers: Vec<usize>,
}

/// One coordinate of a tensor as an Einsum addresses it: `Σ coef · rank` (a plain index has one
/// term with coefficient 1; a split dimension contributes one coordinate per part, which makes
/// the projection a bijection on the parts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coord {
    /// `(leaf rank, coefficient ≥ 1)`.
    pub terms: Vec<(usize, u64)>,
}

/// How an Einsum addresses one tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessP {
    pub tensor: usize,
    /// Coordinates that vary with the Einsum's ranks (constant ones, `X[0]`, `X[M1]`, and the
    /// running dimension of an iterative tensor, are left out: they do not grow a tile).
    pub coords: Vec<Coord>,
    /// Leaf ranks the tensor's tile depends on (the union of the coordinates' ranks).
    pub ranks: RankMask,
    /// Whether some coordinate combines ranks or scales one (`p+r`, `2*p`): consecutive tiles
    /// can then overlap (halos).
    pub halo: bool,
    /// Fraction of the tensor's elements that exist: a tensor of a routed Einsum (`where
    /// G[t,x]`) spanning the mask's ranks holds only the routed (token, expert) pairs.
    pub density: f64,
}

impl AccessP {
    /// Tile elements when each leaf rank `r` spans `inside(r)` consecutive values: per
    /// coordinate the bounding interval `Σ coef · (inside − 1) + 1` (a window with its halo).
    pub fn tile(&self, inside: impl Fn(usize) -> u64) -> f64 {
        if !self.halo && self.ranks.count_ones() as usize == self.coords.len() {
            // Plain projection (each coordinate one rank, each rank once): the product of the
            // ranks' extents.
            let mut m = self.ranks;
            let mut n = 1.0;
            while m != 0 {
                let r = m.trailing_zeros() as usize;
                m &= m - 1;
                n *= inside(r).max(1) as f64;
            }
            return self.density * n;
        }
        self.density
            * self
                .coords
                .iter()
                .map(|c| {
                    1 + c
                        .terms
                        .iter()
                        .map(|&(r, k)| k * (inside(r).max(1) - 1))
                        .sum::<u64>()
                })
                .map(|x| x as f64)
                .product::<f64>()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct EinsumP {
    pub name: String,
    pub vars: RankMask,
    pub out_vars: RankMask,
    /// Iteration points actually computed (after routing masks).
    pub points: u64,
    /// Points of the full iteration space (product of the extents of `vars`).
    pub full_points: u64,
    /// (op kind index into `Problem::op_kinds`, count).
    pub ops: Vec<(usize, u64)>,
    pub reads: Vec<usize>,
    pub write: usize,
    /// Projections of every tensor read (in `reads` order) and, last, of the one written.
    pub accesses: Vec<AccessP>,
    /// The leaf rank this Einsum's recurrence steps (`RM[m1+1] = …`): it cannot be unrolled
    /// spatially, each step needs the previous one.
    pub recurrence: Option<usize>,
    /// Pass of this Einsum per root rank name (FuseMax pass analysis).
    pub pass: BTreeMap<String, u32>,
    /// Chained ops `("sub", "exp", n)`: n results of the first feed the second directly
    /// (`exp(a - b)`), which a unit with that chain issues as one operation.
    pub chains: Vec<(usize, usize, u64)>,
}

impl EinsumP {
    /// The projection of tensor `t`, if this Einsum touches it.
    pub fn access(&self, t: usize) -> Option<&AccessP> {
        self.accesses.iter().find(|a| a.tensor == t)
    }
    /// Ranks this Einsum reduces (iterates but does not write).
    pub fn reduced(&self) -> RankMask {
        self.vars & !self.out_vars
    }
}

/// A cascade instance ready for mapping.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub cascade: String,
    pub ranks: Vec<RankP>,
    /// Root rank name of each leaf rank.
    pub roots: Vec<String>,
    pub tensors: Vec<TensorP>,
    pub einsums: Vec<EinsumP>,
    pub op_kinds: Vec<String>,
    /// Bytes per element given by the workload (an architecture's `precision` may override).
    pub dtype_bytes: u64,
    /// Tokens per expert when the cascade routes (MoE); travels with saved mappings.
    pub routing: Option<Routing>,
    /// `boundaries[p][c]`: see [`Problem::boundary`] (precomputed for the inner loop).
    pub boundaries: Vec<Vec<RankMask>>,
}

/// Why a cascade cannot be lowered.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ProblemError {
    #[error("cascade `{cascade}` has {n} leaf ranks; the mapper handles at most {MAX_RANKS}")]
    TooManyRanks { cascade: String, n: usize },
    #[error("cascade `{cascade}` has {n} tensors; the mapper handles at most {MAX_TENSORS}")]
    TooManyTensors { cascade: String, n: usize },
    #[error("bytes per element must be ≥ 1")]
    ZeroDtype,
}

/// `(inner binary op, outer unary op)` pairs such as `exp(a - b)` → ("sub", "exp").
fn chain_pairs(e: &Expr) -> Vec<(String, String)> {
    let mut v = Vec::new();
    match e {
        Expr::Unary(op, x, _) => {
            if let Expr::Binary(b, ..) = &**x {
                let inner = match b {
                    BinOp::Add => "add",
                    BinOp::Sub => "sub",
                    BinOp::Mul => "mul",
                    BinOp::Div => "div",
                    BinOp::Max => "max",
                    BinOp::Min => "min",
                };
                v.push((inner.to_string(), op.name().to_string()));
            }
            v.extend(chain_pairs(x));
        }
        Expr::Binary(_, a, b, _) => {
            v.extend(chain_pairs(a));
            v.extend(chain_pairs(b));
        }
        _ => {}
    }
    v
}

impl Problem {
    /// Lower a checked cascade with bound shapes.
    pub fn new(
        c: &Cascade,
        sh: &Shapes,
        dtype_bytes: u64,
        routing: Option<Routing>,
    ) -> Result<Problem, ProblemError> {
        if dtype_bytes == 0 {
            return Err(ProblemError::ZeroDtype);
        }
        let a = analyze(
            c,
            sh,
            &AnalysisOptions {
                dtype_bytes,
                routing: routing.clone(),
            },
        );
        // Leaf ranks: ranks that are not split further, in name order.
        let leaves: Vec<&str> = c
            .ranks
            .values()
            .filter(|r| r.parts.is_empty())
            .map(|r| r.name.as_str())
            .collect();
        if leaves.len() > MAX_RANKS {
            return Err(ProblemError::TooManyRanks {
                cascade: c.name.clone(),
                n: leaves.len(),
            });
        }
        if c.tensors.len() > MAX_TENSORS {
            return Err(ProblemError::TooManyTensors {
                cascade: c.name.clone(),
                n: c.tensors.len(),
            });
        }
        let idx = |r: &str| leaves.iter().position(|l| *l == r);
        let mask_of_rank = |r: &str| -> RankMask {
            c.leaf_ranks(r)
                .iter()
                .filter_map(|l| idx(l))
                .fold(0, |m, l| m | (1 << l))
        };
        let ranks: Vec<RankP> = leaves
            .iter()
            .map(|l| RankP {
                name: l.to_string(),
                extent: sh.extent(l),
            })
            .collect();
        let roots: Vec<String> = leaves.iter().map(|l| c.root_rank(l).to_string()).collect();
        let names: Vec<&String> = c.tensors.keys().collect();
        let tidx = |t: &str| names.iter().position(|n| *n == t).unwrap_or(0);
        let mut tensors: Vec<TensorP> = c
            .tensors
            .values()
            .map(|t| {
                let dims: Vec<RankMask> = t.dims.iter().map(|d| mask_of_rank(&d.rank)).collect();
                TensorP {
                    name: t.name.clone(),
                    ranks: dims.iter().fold(0, |m, d| m | d),
                    iterative: t
                        .dims
                        .iter()
                        .find(|d| d.iterative)
                        .and_then(|d| idx(&d.rank)),
                    dims,
                    elems: sh.tensor_elems(t),
                    role: match t.kind {
                        TensorKind::Input => Role::Input,
                        TensorKind::Intermediate => Role::Intermediate,
                        TensorKind::Output => Role::Output,
                    },
                    producer: None,
                    consumers: vec![],
                }
            })
            .collect();
        // The projection of one access: a coordinate per varying dimension.
        let project = |acc: &ResolvedAccess| -> AccessP {
            let t = tidx(&acc.tensor);
            let info = &c.tensors[&acc.tensor];
            let var = |v: &str| idx(&rank_of(v));
            let mut coords = Vec::new();
            for (d, di) in acc.dims.iter().enumerate() {
                let iterative = info.dims.get(d).is_some_and(|x| x.iterative);
                match di {
                    DimIndex::Var { var: v, .. } => {
                        if !iterative {
                            if let Some(r) = var(v) {
                                coords.push(Coord {
                                    terms: vec![(r, 1)],
                                });
                            }
                        }
                    }
                    DimIndex::Split { vars } => {
                        for v in vars {
                            if let Some(r) = var(v) {
                                coords.push(Coord {
                                    terms: vec![(r, 1)],
                                });
                            }
                        }
                    }
                    DimIndex::Affine { terms, .. } => {
                        // `p + r`, `2*p + r`: one coordinate over several ranks (the offset
                        // shifts the window, it does not grow it).
                        let terms: Vec<(usize, u64)> = terms
                            .iter()
                            .filter_map(|(v, k)| Some((var(v)?, (*k).max(1) as u64)))
                            .collect();
                        if !terms.is_empty() {
                            coords.push(Coord { terms });
                        }
                    }
                    DimIndex::Const(_) | DimIndex::Last => {}
                }
            }
            let ranks = coords
                .iter()
                .flat_map(|c| c.terms.iter())
                .fold(0, |m, &(r, _)| m | (1 << r));
            let halo = coords
                .iter()
                .any(|c| c.terms.len() > 1 || c.terms.iter().any(|&(_, k)| k != 1));
            AccessP {
                tensor: t,
                coords,
                ranks,
                halo,
                density: 1.0,
            }
        };
        let mut op_kinds: Vec<String> = Vec::new();
        let mut einsums = Vec::new();
        for (k, e) in c.einsums.iter().enumerate() {
            let st = &a.einsums[k];
            let mask = |vs: &[String]| {
                vs.iter()
                    .filter_map(|v| idx(&rank_of(v)))
                    .fold(0, |m, r| m | (1 << r))
            };
            let vars: RankMask = mask(&e.vars);
            let out_vars = mask(&e.output.vars());
            let ops = st
                .ops
                .iter()
                .map(|(kind, n)| {
                    let i = op_kinds.iter().position(|o| o == kind).unwrap_or_else(|| {
                        op_kinds.push(kind.clone());
                        op_kinds.len() - 1
                    });
                    (i, *n)
                })
                .collect();
            let reads: Vec<usize> = e
                .reads()
                .iter()
                .filter(|t| **t != e.name)
                .map(|t| tidx(t))
                .collect();
            let write = tidx(&e.name);
            tensors[write].producer = Some(k);
            for &r in &reads {
                tensors[r].consumers.push(k);
            }
            // One projection per tensor: the first access of each tensor read, then the output.
            let mut accesses: Vec<AccessP> = Vec::new();
            for acc in e.accesses.iter().chain(e.mask.iter()) {
                let t = tidx(&acc.tensor);
                if t != write && !accesses.iter().any(|x| x.tensor == t) {
                    accesses.push(project(acc));
                }
            }
            accesses.push(project(&e.output));
            // A routed Einsum touches only the routed pairs of the tensors that span the mask's
            // ranks (not the mask itself).
            if let Some(m) = &e.mask {
                let mask_ranks: RankMask = m
                    .vars()
                    .iter()
                    .filter_map(|v| idx(&rank_of(v)))
                    .fold(0, |x, r| x | (1 << r));
                let full: u64 = (0..ranks.len())
                    .filter(|r| vars & (1 << r) != 0)
                    .map(|r| ranks[r].extent)
                    .fold(1u64, |a, b| a.saturating_mul(b));
                let density = (st.computed_points as f64 / full.max(1) as f64).min(1.0);
                let mask_t = tidx(&m.tensor);
                // Tensors over the expert rank but not over every mask rank (an expert's
                // weights) are touched only for experts that receive a token.
                let expert: RankMask = match (&routing, st.active_experts) {
                    (Some(r), Some(_)) => idx(&r.expert_rank).map_or(0, |x| 1 << x),
                    _ => 0,
                };
                let active = match (&routing, st.active_experts) {
                    (Some(r), Some(n)) => {
                        (n as f64 / r.tokens_per_expert.len().max(1) as f64).min(1.0)
                    }
                    _ => 1.0,
                };
                for acc in accesses.iter_mut() {
                    if acc.tensor == mask_t {
                        continue;
                    }
                    if acc.ranks & mask_ranks == mask_ranks {
                        acc.density = density;
                    } else if expert != 0 && acc.ranks & expert != 0 {
                        acc.density = active;
                    }
                }
            }
            let mut chains = Vec::new();
            for (inner, outer) in chain_pairs(&e.expr) {
                let (Some(a), Some(b)) = (
                    op_kinds.iter().position(|o| *o == inner),
                    op_kinds.iter().position(|o| *o == outer),
                ) else {
                    continue;
                };
                let n = st
                    .ops
                    .get(&inner)
                    .copied()
                    .unwrap_or(0)
                    .min(st.ops.get(&outer).copied().unwrap_or(0));
                if !chains.iter().any(|&(x, y, _)| (x, y) == (a, b)) {
                    chains.push((a, b, n));
                }
            }
            let full_points = (0..ranks.len())
                .filter(|r| vars & (1 << r) != 0)
                .map(|r| ranks[r].extent)
                .fold(1u64, |a, b| a.saturating_mul(b));
            einsums.push(EinsumP {
                name: e.name.clone(),
                recurrence: e.iterative.as_ref().and_then(|v| idx(&rank_of(v))),
                chains,
                vars,
                out_vars,
                points: st.computed_points,
                full_points,
                ops,
                reads,
                write,
                accesses,
                pass: st.pass.clone(),
            });
        }
        let mut p = Problem {
            cascade: c.name.clone(),
            ranks,
            roots,
            tensors,
            einsums,
            op_kinds,
            dtype_bytes,
            routing,
            boundaries: vec![],
        };
        let n = p.einsums.len();
        p.boundaries = (0..n)
            .map(|a| (0..n).map(|b| p.compute_boundary(a, b)).collect())
            .collect();
        Ok(p)
    }

    pub fn rank_index(&self, name: &str) -> Option<usize> {
        self.ranks.iter().position(|r| r.name == name)
    }
    pub fn einsum_index(&self, name: &str) -> Option<usize> {
        self.einsums.iter().position(|e| e.name == name)
    }
    pub fn tensor_index(&self, name: &str) -> Option<usize> {
        self.tensors.iter().position(|t| t.name == name)
    }

    /// Leaf ranks across which consumer `c` must wait for producer `p` to finish a whole
    /// fiber (a later pass over that rank's root).
    pub fn boundary(&self, p: usize, c: usize) -> RankMask {
        self.boundaries[p][c]
    }

    fn compute_boundary(&self, p: usize, c: usize) -> RankMask {
        let (pe, ce) = (&self.einsums[p], &self.einsums[c]);
        let mut m = 0;
        for (i, root) in self.roots.iter().enumerate() {
            if let (Some(a), Some(b)) = (pe.pass.get(root), ce.pass.get(root)) {
                if b > a {
                    m |= 1 << i;
                }
            }
        }
        m
    }

    /// Total ops of an Einsum (all kinds).
    pub fn ops_total(&self, e: usize) -> u64 {
        self.einsums[e].ops.iter().map(|&(_, n)| n).sum()
    }
}
