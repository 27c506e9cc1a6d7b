//! A cascade lowered to numbers for the mapper's inner loop: leaf ranks with extents,
//! tensors as rank bitmasks, Einsums with op counts and pass boundaries.

use cascade_einsum::ir::{rank_of, Cascade, TensorKind};
use cascade_einsum::syntax::{BinOp, Expr};
use cascade_einsum::{analyze, AnalysisOptions, Routing, Shapes};
use std::collections::BTreeMap;

/// Bitmask over leaf ranks (at most 32 per cascade).
pub type RankMask = u32;

#[derive(Clone, Debug, PartialEq)]
pub struct RankP {
    pub name: String,
    pub extent: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Input,
    Intermediate,
    Output,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TensorP {
    pub name: String,
    /// Each dimension as the leaf ranks that address it (a split dim has several).
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

#[derive(Clone, Debug, PartialEq)]
pub struct EinsumP {
    pub name: String,
    pub vars: RankMask,
    pub out_vars: RankMask,
    /// Iteration points actually computed (after routing masks).
    pub points: u64,
    /// (op kind index into `Problem::op_kinds`, count).
    pub ops: Vec<(usize, u64)>,
    pub reads: Vec<usize>,
    pub write: usize,
    /// Pass of this Einsum per root rank name (FuseMax pass analysis).
    pub pass: BTreeMap<String, u32>,
    /// Chained ops `("sub", "exp", n)`: n results of the first feed the second directly
    /// (`exp(a - b)`), which a unit with that chain issues as one operation.
    pub chains: Vec<(usize, usize, u64)>,
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
    pub dtype_bytes: u64,
    /// `boundaries[p][c]`: see [`Problem::boundary`] (precomputed for the inner loop).
    pub boundaries: Vec<Vec<RankMask>>,
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
    pub fn new(c: &Cascade, sh: &Shapes, dtype_bytes: u64, routing: Option<Routing>) -> Problem {
        let a = analyze(
            c,
            sh,
            &AnalysisOptions {
                dtype_bytes,
                routing,
            },
        );
        // Leaf ranks: ranks that are not split further, in name order.
        let leaves: Vec<&str> = c
            .ranks
            .values()
            .filter(|r| r.parts.is_empty())
            .map(|r| r.name.as_str())
            .collect();
        assert!(leaves.len() <= 32, "at most 32 leaf ranks");
        let idx = |r: &str| leaves.iter().position(|l| *l == r).expect("leaf rank");
        let mask_of_rank =
            |r: &str| -> RankMask { c.leaf_ranks(r).iter().fold(0, |m, l| m | (1 << idx(l))) };
        let ranks: Vec<RankP> = leaves
            .iter()
            .map(|l| RankP {
                name: l.to_string(),
                extent: sh.extent(l),
            })
            .collect();
        let roots: Vec<String> = leaves.iter().map(|l| c.root_rank(l).to_string()).collect();
        let names: Vec<&String> = c.tensors.keys().collect();
        let tidx = |t: &str| names.iter().position(|n| *n == t).unwrap();
        let mut tensors: Vec<TensorP> = c
            .tensors
            .values()
            .map(|t| {
                let dims: Vec<RankMask> = t.dims.iter().map(|d| mask_of_rank(&d.rank)).collect();
                TensorP {
                    name: t.name.clone(),
                    ranks: dims.iter().fold(0, |m, d| m | d),
                    iterative: t.dims.iter().find(|d| d.iterative).map(|d| idx(&d.rank)),
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
        let mut op_kinds: Vec<String> = Vec::new();
        let mut einsums = Vec::new();
        for (k, e) in c.einsums.iter().enumerate() {
            let st = &a.einsums[k];
            let mask = |vs: &[String]| vs.iter().fold(0, |m, v| m | (1 << idx(&rank_of(v))));
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
            einsums.push(EinsumP {
                name: e.name.clone(),
                chains,
                vars: mask(&e.vars),
                out_vars,
                points: st.computed_points,
                ops,
                reads,
                write,
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
            boundaries: vec![],
        };
        let n = p.einsums.len();
        p.boundaries = (0..n)
            .map(|a| (0..n).map(|b| p.compute_boundary(a, b)).collect())
            .collect();
        p
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
}
