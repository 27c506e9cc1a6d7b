//! Abstract syntax of the Einsum-cascade language, as written in `.ein` files.
//!
//! Every node that a diagnostic can point at carries a [`Span`]. Spans are excluded
//! from equality so that `parse → print → parse` can be compared structurally.

use std::fmt;

/// A byte range in the source text.
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

impl PartialEq for Span {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A name together with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// One term `coef*var` of an affine index (`2*p` in `I[n,c,2*p+r]`).
#[derive(Clone, Debug, PartialEq)]
pub struct AffineTerm {
    /// As written: `p` is 1, `2*p` is 2, `-r` is −1 (the checker refuses ≤ 0).
    pub coef: i64,
    pub var: Ident,
    /// The whole term, coefficient included.
    pub span: Span,
}

/// One index position of a tensor access.
///
/// The parser classifies an index by its value, not its spelling: a lone variable
/// (`p`, `1*p`, `p+0`) is [`IndexExpr::Var`], a lone variable plus a positive
/// constant (`m1+1`) is [`IndexExpr::Shift`], and every other combination of
/// variables (`p+r`, `2*p+r`, `t+k-1`, `2*p`) is [`IndexExpr::Affine`]. Constants are
/// summed into one offset, so the printer's `terms…±offset` parses back to the same AST.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexExpr {
    /// `m1`: an index variable; its rank is the upper-case spelling (`M1`).
    Var(Ident),
    /// `m1+1`: the next element of an iterative rank (or, on an input's window
    /// rank, the affine index `m1+1`).
    Shift(Ident, i64),
    /// `0`: a constant coordinate (used by `init`).
    Const(i64, Span),
    /// `M1`: the final element of an iterative rank (its extent).
    Last(Ident),
    /// `p+r`, `2*p+r`, `p+2*r`, `t+k+1`: terms in source order and their summed constant.
    Affine {
        terms: Vec<AffineTerm>,
        offset: i64,
        span: Span,
    },
}

impl IndexExpr {
    pub fn span(&self) -> Span {
        match self {
            IndexExpr::Var(i) | IndexExpr::Shift(i, _) | IndexExpr::Last(i) => i.span,
            IndexExpr::Const(_, s) | IndexExpr::Affine { span: s, .. } => *s,
        }
    }
    /// The index variable, if the position iterates exactly one.
    pub fn var(&self) -> Option<&Ident> {
        match self {
            IndexExpr::Var(i) | IndexExpr::Shift(i, _) => Some(i),
            _ => None,
        }
    }
    /// Every index variable the position uses, in source order.
    pub fn vars(&self) -> Vec<&Ident> {
        match self {
            IndexExpr::Var(i) | IndexExpr::Shift(i, _) => vec![i],
            IndexExpr::Affine { terms, .. } => terms.iter().map(|t| &t.var).collect(),
            IndexExpr::Const(..) | IndexExpr::Last(_) => vec![],
        }
    }
}

/// `T[i, j, ...]` (or a scalar `T`).
#[derive(Clone, Debug, PartialEq)]
pub struct Access {
    pub tensor: Ident,
    pub indices: Vec<IndexExpr>,
}

/// Unary map operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnOp {
    Neg,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Recip,
    Abs,
    Tanh,
    Sigmoid,
    Silu,
    Gelu,
    Relu,
}

impl UnOp {
    pub const ALL: [UnOp; 12] = [
        UnOp::Neg,
        UnOp::Exp,
        UnOp::Log,
        UnOp::Sqrt,
        UnOp::Rsqrt,
        UnOp::Recip,
        UnOp::Abs,
        UnOp::Tanh,
        UnOp::Sigmoid,
        UnOp::Silu,
        UnOp::Gelu,
        UnOp::Relu,
    ];
    pub fn name(self) -> &'static str {
        match self {
            UnOp::Neg => "neg",
            UnOp::Exp => "exp",
            UnOp::Log => "log",
            UnOp::Sqrt => "sqrt",
            UnOp::Rsqrt => "rsqrt",
            UnOp::Recip => "recip",
            UnOp::Abs => "abs",
            UnOp::Tanh => "tanh",
            UnOp::Sigmoid => "sigmoid",
            UnOp::Silu => "silu",
            UnOp::Gelu => "gelu",
            UnOp::Relu => "relu",
        }
    }
    pub fn from_name(s: &str) -> Option<UnOp> {
        UnOp::ALL.into_iter().find(|u| u.name() == s)
    }
    pub fn apply(self, x: f64) -> f64 {
        match self {
            UnOp::Neg => -x,
            UnOp::Exp => x.exp(),
            UnOp::Log => x.ln(),
            UnOp::Sqrt => x.sqrt(),
            UnOp::Rsqrt => 1.0 / x.sqrt(),
            UnOp::Recip => 1.0 / x,
            UnOp::Abs => x.abs(),
            UnOp::Tanh => x.tanh(),
            UnOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            UnOp::Silu => x / (1.0 + (-x).exp()),
            // tanh approximation of GELU (Hendrycks & Gimpel), as GPT-2/BERT kernels use.
            UnOp::Gelu => {
                0.5 * x
                    * (1.0
                        + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
            }
            UnOp::Relu => x.max(0.0),
        }
    }
}

/// Binary map operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Max => "max",
            BinOp::Min => "min",
        }
    }
    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            BinOp::Max => a.max(b),
            BinOp::Min => a.min(b),
        }
    }
}

/// Right-hand-side expressions (map operators over accesses and constants).
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Num(f64, Span),
    /// `size(D)`: the extent of a rank, as a number (e.g. a mean's divisor).
    Extent(Ident),
    Access(Access),
    Unary(UnOp, Box<Expr>, Span),
    Binary(BinOp, Box<Expr>, Box<Expr>, Span),
}

impl Expr {
    pub fn span(&self) -> Span {
        match self {
            Expr::Num(_, s) | Expr::Unary(_, _, s) | Expr::Binary(_, _, _, s) => *s,
            Expr::Extent(i) => i.span,
            Expr::Access(a) => Span::new(a.tensor.span.start, a.tensor.span.end),
        }
    }
    /// Every access in the expression, left to right.
    pub fn accesses(&self) -> Vec<&Access> {
        let mut out = Vec::new();
        self.visit_accesses(&mut |a| out.push(a));
        out
    }
    fn visit_accesses<'a>(&'a self, f: &mut impl FnMut(&'a Access)) {
        match self {
            Expr::Num(..) | Expr::Extent(_) => {}
            Expr::Access(a) => f(a),
            Expr::Unary(_, e, _) => e.visit_accesses(f),
            Expr::Binary(_, a, b, _) => {
                a.visit_accesses(f);
                b.visit_accesses(f);
            }
        }
    }
}

/// Reduction operators, for indices on the right that are absent on the left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReduceOp {
    Sum,
    Max,
    Min,
    Prod,
}

impl ReduceOp {
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
            ReduceOp::Prod => "prod",
        }
    }
    pub fn from_name(s: &str) -> Option<Self> {
        [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Prod]
            .into_iter()
            .find(|r| r.name() == s)
    }
    pub fn identity(self) -> f64 {
        match self {
            ReduceOp::Sum => 0.0,
            ReduceOp::Max => f64::NEG_INFINITY,
            ReduceOp::Min => f64::INFINITY,
            ReduceOp::Prod => 1.0,
        }
    }
    pub fn combine(self, a: f64, b: f64) -> f64 {
        match self {
            ReduceOp::Sum => a + b,
            ReduceOp::Max => a.max(b),
            ReduceOp::Min => a.min(b),
            ReduceOp::Prod => a * b,
        }
    }
}

/// What an Einsum does with its right-hand side over the iteration space.
#[derive(Clone, Debug, PartialEq)]
pub enum Reduction {
    /// No operator written: reduced indices (if any) are summed.
    Implicit,
    /// `max[m0] expr`: the reduced indices are named explicitly.
    Explicit(ReduceOp, Vec<Ident>, Span),
    /// `topk[x, 2] expr`: keep the k largest values along `x`, zero the others
    /// (MoE routing). Not a reduction: the output keeps `x`.
    TopK(Ident, usize, Span),
}

/// `LHS[...] = [reduction] expr [where MASK[...]]`
#[derive(Clone, Debug, PartialEq)]
pub struct EinsumStmt {
    pub output: Access,
    pub reduction: Reduction,
    pub expr: Expr,
    /// Sparse iteration: only points where the mask tensor is non-zero are computed
    /// (e.g. expert FFNs over the tokens routed to each expert).
    pub mask: Option<Access>,
    /// Marked with `output`.
    pub is_output: bool,
    pub span: Span,
}

/// `T[R1, R2, ...]` in an `input` statement.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorDecl {
    pub name: Ident,
    pub ranks: Vec<Ident>,
}

/// `split M = M1 * M0`: rank M is partitioned into the outer rank M1 and inner M0.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitStmt {
    pub rank: Ident,
    pub parts: Vec<Ident>,
    pub span: Span,
}

/// `init RM[0,p] = -inf`: initial value of an iterative tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct InitStmt {
    pub target: Access,
    pub value: f64,
    pub span: Span,
}

/// One statement of a cascade file.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    Input(Vec<TensorDecl>),
    Split(SplitStmt),
    Init(Vec<InitStmt>),
    Einsum(EinsumStmt),
    /// `output A, B`: marks tensors defined elsewhere as outputs.
    OutputDecl(Vec<Ident>),
}

/// A parsed `.ein` file.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Program {
    pub stmts: Vec<Stmt>,
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::syntax::printer::print(self))
    }
}
