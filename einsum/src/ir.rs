//! The checked Cascade IR: a graph (petgraph) of Einsums over named ranks, acyclic
//! except inside recurrence groups over an iterative rank ([`Einsum::group`]).
//!
//! Produced only by [`crate::check`]; every access in it has been resolved against
//! its tensor's ranks, so later stages (analyses, interpreter, mappers) never
//! re-validate names or index/rank consistency.

use crate::diag::SourceFile;
use crate::syntax::{Access, Expr, ReduceOp, Span};
use petgraph::graph::DiGraph;
use std::collections::{BTreeMap, BTreeSet};

/// The rank of an index variable: its upper-case spelling (`m1` → `M1`).
pub fn rank_of(var: &str) -> String {
    var.to_ascii_uppercase()
}

/// The index variable of a rank (`M1` → `m1`).
pub fn var_of(rank: &str) -> String {
    rank.to_ascii_lowercase()
}

/// A rank (dimension name) and how it relates to rank splits.
#[derive(Clone, Debug, PartialEq)]
pub struct RankInfo {
    pub name: String,
    /// `Some(M)` for `M1` and `M0` of `split M = M1 * M0`.
    pub parent: Option<String>,
    /// Outer to inner parts, for a rank that is split.
    pub parts: Vec<String>,
    pub span: Span,
}

/// One dimension of a tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Dim {
    pub rank: String,
    /// An iterative dimension holds extent+1 elements: `X[0]` (init) … `X[R]` (final).
    pub iterative: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    Input,
    Intermediate,
    Output,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<Dim>,
    pub kind: TensorKind,
    /// Index of the Einsum that writes it (None for inputs).
    pub producer: Option<usize>,
    /// `init` values for iterative tensors: (dimension position, value).
    pub init: Option<f64>,
    pub span: Span,
}

/// How one tensor dimension is addressed by an access.
#[derive(Clone, Debug, PartialEq)]
pub enum DimIndex {
    /// `m` or `m1+1` (shift).
    Var {
        var: String,
        shift: i64,
    },
    /// A split rank addressed by its parts, outer first: `K[e,m1,m0]` on `K[E,M]`.
    Split {
        vars: Vec<String>,
    },
    Const(i64),
    /// Final element of an iterative dimension.
    Last,
    /// `p+r`, `2*p+r`, `p+2*r`, `t+k+1`: `Σ coef·var + offset` on a window rank of an
    /// input (a rank no Einsum iterates, e.g. `H` of `input I[N,C,H,W]`). `terms` are
    /// (index variable, coefficient ≥ 1) in source order, no variable twice;
    /// `offset ≥ 0`. Every index that is not a plain [`DimIndex::Var`], a
    /// [`DimIndex::Split`], [`DimIndex::Const`] or [`DimIndex::Last`] is `Affine`.
    Affine {
        terms: Vec<(String, i64)>,
        offset: i64,
    },
}

impl DimIndex {
    /// The index as `(terms, offset)`: `Var` is one term of coefficient 1 with its
    /// shift as offset; `Affine` its own; `None` for `Split`, `Const` and `Last`.
    pub fn affine_terms(&self) -> Option<(Vec<(String, i64)>, i64)> {
        match self {
            DimIndex::Var { var, shift } => Some((vec![(var.clone(), 1)], *shift)),
            DimIndex::Affine { terms, offset } => Some((terms.clone(), *offset)),
            DimIndex::Split { .. } | DimIndex::Const(_) | DimIndex::Last => None,
        }
    }
    pub fn is_affine(&self) -> bool {
        matches!(self, DimIndex::Affine { .. })
    }
}

/// An access resolved against its tensor's dims (one entry per tensor dimension).
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedAccess {
    pub tensor: String,
    pub dims: Vec<DimIndex>,
    pub span: Span,
}

impl ResolvedAccess {
    /// Index variables the access iterates, in order (an affine index's terms included).
    pub fn vars(&self) -> Vec<String> {
        let mut v = Vec::new();
        for d in &self.dims {
            match d {
                DimIndex::Var { var, .. } => v.push(var.clone()),
                DimIndex::Split { vars } => v.extend(vars.iter().cloned()),
                DimIndex::Affine { terms, .. } => v.extend(terms.iter().map(|(t, _)| t.clone())),
                DimIndex::Const(_) | DimIndex::Last => {}
            }
        }
        v
    }
}

/// What an Einsum does over its reduced indices.
#[derive(Clone, Debug, PartialEq)]
pub enum Reduce {
    /// No index is reduced: a pure map.
    None,
    Op(ReduceOp),
    /// Keep the k largest along `var`, zero the rest (MoE top-k routing).
    TopK {
        var: String,
        k: usize,
    },
}

/// One checked Einsum.
#[derive(Clone, Debug, PartialEq)]
pub struct Einsum {
    /// Name of the tensor it writes (Einsums are named after their outputs).
    pub name: String,
    pub output: ResolvedAccess,
    pub reduce: Reduce,
    /// Iteration space: output variables first (in output order), then reduced ones.
    pub vars: Vec<String>,
    /// Variables absent from the output.
    pub reduced: Vec<String>,
    /// The variable of an iterative rank this Einsum steps (`RM[m1+1] = ...`).
    pub iterative: Option<String>,
    /// The right-hand side with accesses still in source form; `accesses[i]`
    /// resolves the i-th access in left-to-right order.
    pub expr: Expr,
    pub accesses: Vec<ResolvedAccess>,
    pub mask: Option<ResolvedAccess>,
    /// Recurrence group: Einsums that step the same iterative rank together and read
    /// each other's earlier elements. Members are consecutive in `Cascade::einsums`.
    pub group: Option<usize>,
    pub span: Span,
    pub source_output: Access,
}

impl Einsum {
    /// Tensors read (deduplicated, in first-read order), the mask included.
    pub fn reads(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for a in self.accesses.iter().chain(self.mask.iter()) {
            if !v.contains(&a.tensor.as_str()) {
                v.push(&a.tensor);
            }
        }
        v
    }
}

/// A checked cascade.
#[derive(Clone, Debug)]
pub struct Cascade {
    pub name: String,
    pub source: SourceFile,
    pub ranks: BTreeMap<String, RankInfo>,
    pub tensors: BTreeMap<String, TensorInfo>,
    /// Einsums in a topological order of their dependencies.
    pub einsums: Vec<Einsum>,
    /// Edges producer → consumer, labelled by the tensor passed (a recurrence group's
    /// reads of earlier elements make cycles here; see [`Einsum::group`]).
    pub graph: DiGraph<usize, String>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

impl Cascade {
    pub fn einsum(&self, name: &str) -> Option<&Einsum> {
        self.einsums.iter().find(|e| e.name == name)
    }
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }
    /// The rank a split part belongs to, or the rank itself.
    pub fn root_rank<'a>(&'a self, rank: &'a str) -> &'a str {
        // Loops, not recursion: splits of split parts may nest arbitrarily deep.
        let mut rank = rank;
        while let Some(p) = self.ranks.get(rank).and_then(|r| r.parent.as_deref()) {
            rank = p;
        }
        rank
    }
    /// Ranks that are not parts of a split (M, P, E, ...), in name order.
    pub fn root_ranks(&self) -> Vec<&str> {
        self.ranks
            .values()
            .filter(|r| r.parent.is_none())
            .map(|r| r.name.as_str())
            .collect()
    }
    /// The outermost part of a rank (the rank itself when not split).
    pub fn outermost_part<'a>(&'a self, rank: &'a str) -> &'a str {
        let mut rank = rank;
        while let Some(first) = self.ranks.get(rank).and_then(|r| r.parts.first()) {
            rank = first;
        }
        rank
    }
    /// Window ranks: the input ranks addressed by affine indices (`H`, `W` of
    /// `I[n,c,p+r,q+s]` on `input I[N,C,H,W]`). No Einsum iterates them; [`crate::bind`]
    /// derives their extents from the accesses when they are not given.
    pub fn window_ranks(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for e in &self.einsums {
            for a in e.accesses.iter().chain(e.mask.iter()) {
                for (di, d) in a.dims.iter().zip(&self.tensors[&a.tensor].dims) {
                    if di.is_affine() {
                        out.insert(d.rank.clone());
                    }
                }
            }
        }
        out
    }
    /// Every affine access: (Einsum index, access index into `Einsum::accesses`,
    /// dimension position), in Einsum and source order.
    pub fn affine_accesses(&self) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        for (k, e) in self.einsums.iter().enumerate() {
            for (j, a) in e.accesses.iter().enumerate() {
                for (p, di) in a.dims.iter().enumerate() {
                    if di.is_affine() {
                        out.push((k, j, p));
                    }
                }
            }
        }
        out
    }
    /// Leaf ranks (no further split) that make up `rank`, outer first.
    pub fn leaf_ranks(&self, rank: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![rank];
        while let Some(r) = todo.pop() {
            match self.ranks.get(r) {
                Some(info) if !info.parts.is_empty() => {
                    todo.extend(info.parts.iter().rev().map(String::as_str))
                }
                _ => out.push(r.to_string()),
            }
        }
        out
    }
}
