//! Lowering an Einsum cascade (checked, with bound shapes) to the GPU ops of [`GpuOp`]'s
//! grammar: the kernels eager PyTorch would launch for it.
//!
//! Patterns are recognised from the Einsums' structure — which tensors they read, which index
//! variables are shared, reduced or kept, which operators they apply — never from the
//! cascade's or the tensors' names:
//!
//! - **attention**: a contraction of two inputs (Q·K over their shared head variables) whose
//!   descendants — a softmax in any of its 1-, 2- or 3-pass forms (max, exp, sums, divisions,
//!   rescaling recurrences) — end in a contraction with a third input (V) and a tensor read
//!   by nothing else of the group → `attention b= h= n= m= d= causal=0` (prefill), or with
//!   [`LowerOptions::decode`] → `decode_attention b= hq= hkv= l= d=` (the query variables of Q
//!   count the query heads that share one key/value head). The Einsums carry no mask, so
//!   every score is computed: `causal=0`, unless [`LowerOptions::causal`] says the model masks
//!   the future (an LLM prefill's self-attention, `n = m`).
//! - **softmax**: `max` over a variable, `exp(x − max)`, the sum over the same variable and
//!   the division → `softmax rows= cols=`.
//! - **norms**: a sum of squares over a variable, `rsqrt` of it, and the product of the
//!   normalised tensor with weights over that variable → `rmsnorm rows= cols=`; with a mean
//!   subtracted first (a sum of the input over the variable and a difference) →
//!   `layernorm rows= cols=`.
//! - **contractions** `C = A·B` summed over the variables both share and the output lacks →
//!   `gemm m= n= k=` (m: A's own variables, n: B's own, k: the reduced ones) or
//!   `bmm batch=` when variables of A, B and C remain (batch); a contraction masked by a
//!   top-k routing (`where G[t,x]`, MoE experts) runs per expert over its routed tokens:
//!   one `bmm` per distinct token count (a `gemm` where one expert has it).
//! - **elementwise**: `silu(a)·b` → `silu_mul rows= cols=` (SwiGLU's gate); `a + b` →
//!   `add elems=` (a residual).
//!
//! Op specs carry no `impl=` key: the GPU model's default (what PyTorch would dispatch)
//! applies. What has no op in the grammar — other elementwise functions (gelu, relu), top-k,
//! convolution windows, a sum over the routed experts, lone reductions — is reported with the
//! Einsums it concerns and why ([`Unlowered`]); a cascade with any such Einsum does not run as
//! a whole ([`Lowering::into_ops`]), so no total leaves part of it out.

use super::op::{Dtype, GpuOp};
use cascade_einsum::ir::{rank_of, var_of, Cascade, DimIndex, Einsum, Reduce, ResolvedAccess};
use cascade_einsum::syntax::{printer, BinOp, Expr, ReduceOp, UnOp};
use cascade_einsum::{Routing, Shapes};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// How to lower.
#[derive(Clone, Debug)]
pub struct LowerOptions<'a> {
    /// Element type of every op.
    pub dtype: Dtype,
    /// A decode step: attention lowers to `decode_attention` (one query per sequence and
    /// query head against the KV cache) instead of the prefill kernel.
    pub decode: bool,
    /// Tokens per expert of a top-k routing: masked (`where`) Einsums run over the routed
    /// (token, expert) pairs only.
    pub routing: Option<&'a Routing>,
    /// Self-attention of an autoregressive model's prefill: the cascade computes every score
    /// (it has no mask), but the model masks the future, so an attention whose queries and keys
    /// are the same tokens (`n = m`) lowers with `causal=1` (what `cascade infer` asks for).
    pub causal: bool,
}

/// One GPU op and the Einsums it computes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoweredOp {
    /// The pattern recognised (`attention`, `contraction`, `routed contraction`, `softmax`,
    /// `rmsnorm`, `layernorm`, `silu_mul`, `add`).
    pub pattern: &'static str,
    /// The Einsums (named after the tensors they write), in cascade order.
    pub einsums: Vec<String>,
    /// The op spec, as `cascade estimate --op` takes it (no `impl=`).
    pub spec: String,
    /// The parsed spec.
    #[serde(skip)]
    pub op: GpuOp,
}

/// Einsums that have no GPU op, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Unlowered {
    pub einsums: Vec<String>,
    pub reason: String,
}

/// A cascade's lowering: the ops in cascade order, and what did not lower.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Lowering {
    pub ops: Vec<LoweredOp>,
    pub unlowered: Vec<Unlowered>,
}

impl Lowering {
    /// The ops, if every Einsum lowered; otherwise one message naming each Einsum that did
    /// not and why, then what the rest would run as.
    pub fn into_ops(self) -> Result<Vec<LoweredOp>, String> {
        if self.unlowered.is_empty() {
            return Ok(self.ops);
        }
        let why: Vec<String> = self
            .unlowered
            .iter()
            .map(|u| format!("{}: {}", u.einsums.join(", "), u.reason))
            .collect();
        let mut msg = why.join("; ");
        if !self.ops.is_empty() {
            let rest: Vec<String> = self
                .ops
                .iter()
                .map(|o| format!("{} → {}", o.einsums.join(" "), o.spec))
                .collect();
            msg.push_str(&format!(" (the rest would lower: {})", rest.join(", ")));
        }
        Err(msg)
    }
}

/// Lowers every Einsum of `c` (with shapes `sh`) to GPU ops (see the module documentation).
/// Never panics on a checked cascade whose shapes bind.
pub fn lower(c: &Cascade, sh: &Shapes, opts: &LowerOptions) -> Lowering {
    let mut l = Lowerer::new(c, sh, opts);
    l.patterns();
    for i in 0..c.einsums.len() {
        if !l.covered[i] {
            l.single(i);
        }
    }
    l.finish()
}

/// The ops (pattern, spec) of a group of Einsums, or why it has none.
type Specs = Result<Vec<(&'static str, String)>, String>;

/// A recognised group of Einsums and its ops.
type Group = Option<(BTreeSet<usize>, Specs)>;

/// A group's first Einsum, its ops and its Einsums.
type Found = (usize, Specs, Vec<usize>);

struct Lowerer<'a> {
    c: &'a Cascade,
    sh: &'a Shapes,
    opts: &'a LowerOptions<'a>,
    covered: Vec<bool>,
    /// Readers of each tensor (Einsum indices), mask reads included.
    readers: BTreeMap<&'a str, Vec<usize>>,
    found: Vec<Found>,
}

/// The index variables of an access when every dimension is one plain variable (no shift,
/// constant, final element or affine window), none twice.
fn plain_vars(a: &ResolvedAccess) -> Option<Vec<String>> {
    let mut v = Vec::new();
    for d in &a.dims {
        match d {
            DimIndex::Var { var, shift: 0 } => v.push(var.clone()),
            DimIndex::Split { vars } => v.extend(vars.iter().cloned()),
            _ => return None,
        }
    }
    let set: BTreeSet<&String> = v.iter().collect();
    (set.len() == v.len()).then_some(v)
}

fn set(v: &[String]) -> BTreeSet<&str> {
    v.iter().map(String::as_str).collect()
}

/// `A * B` (two accesses), the access indices in `Einsum::accesses`.
fn as_product(e: &Expr) -> Option<(usize, usize)> {
    match e {
        Expr::Binary(BinOp::Mul, a, b, _)
            if matches!(**a, Expr::Access(_)) && matches!(**b, Expr::Access(_)) =>
        {
            Some((0, 1))
        }
        _ => None,
    }
}

/// Every unary and binary operator of an expression.
fn operators(e: &Expr, un: &mut BTreeSet<UnOp>, bin: &mut BTreeSet<BinOp>) {
    match e {
        Expr::Num(..) | Expr::Extent(_) | Expr::Access(_) => {}
        Expr::Unary(op, x, _) => {
            un.insert(*op);
            operators(x, un, bin);
        }
        Expr::Binary(op, a, b, _) => {
            bin.insert(*op);
            operators(a, un, bin);
            operators(b, un, bin);
        }
    }
}

/// The Einsum as written: `A[t,f] = gelu(H[t,f])`.
fn show(e: &Einsum) -> String {
    let red = match &e.reduce {
        Reduce::Op(op) if *op != ReduceOp::Sum => {
            format!("{}[{}] ", op.name(), e.reduced.join(","))
        }
        Reduce::TopK { var, k } => format!("topk[{var},{k}] "),
        _ => String::new(),
    };
    let mask = e
        .mask
        .as_ref()
        .map(|m| format!(" where {}[{}]", m.tensor, m.vars().join(",")))
        .unwrap_or_default();
    format!(
        "{} = {red}{}{mask}",
        printer::access(&e.source_output),
        printer::expr(&e.expr)
    )
}

/// A contraction's variables: batch (A, B and C), m (A and C), n (B and C), k (reduced).
struct Vars {
    batch: Vec<String>,
    m: Vec<String>,
    n: Vec<String>,
    k: Vec<String>,
}

/// Classifies `C[out] = Σ_k A[a]·B[b]`; an error says why it is no matrix product.
fn classify(
    a: &[String],
    b: &[String],
    out: &[String],
    reduced: &[String],
) -> Result<Vars, String> {
    let (sa, sb, so) = (set(a), set(b), set(out));
    if let Some(v) = reduced
        .iter()
        .find(|v| !(sa.contains(v.as_str()) && sb.contains(v.as_str())))
    {
        return Err(format!(
            "it sums over `{v}`, which only one operand has: no matrix product"
        ));
    }
    if let Some(v) = out
        .iter()
        .find(|v| !sa.contains(v.as_str()) && !sb.contains(v.as_str()))
    {
        return Err(format!(
            "its output broadcasts over `{v}`: no matrix product"
        ));
    }
    if sa == sb && reduced.is_empty() {
        return Err("nothing is summed: an elementwise product, no matrix product".into());
    }
    Ok(Vars {
        batch: a
            .iter()
            .filter(|v| sb.contains(v.as_str()) && so.contains(v.as_str()))
            .cloned()
            .collect(),
        m: a.iter()
            .filter(|v| !sb.contains(v.as_str()))
            .cloned()
            .collect(),
        n: b.iter()
            .filter(|v| !sa.contains(v.as_str()))
            .cloned()
            .collect(),
        k: reduced.to_vec(),
    })
}

impl<'a> Lowerer<'a> {
    fn new(c: &'a Cascade, sh: &'a Shapes, opts: &'a LowerOptions<'a>) -> Self {
        let mut readers: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, e) in c.einsums.iter().enumerate() {
            for t in e.reads() {
                readers.entry(t).or_default().push(i);
            }
        }
        Lowerer {
            c,
            sh,
            opts,
            covered: vec![false; c.einsums.len()],
            readers,
            found: Vec::new(),
        }
    }

    fn dtype(&self) -> &'static str {
        self.opts.dtype.name()
    }

    /// The extent of a variable's rank.
    fn ext(&self, var: &str) -> Result<u64, String> {
        let r = rank_of(var);
        self.sh
            .get(&r)
            .ok_or_else(|| format!("rank {r} has no extent"))
    }

    /// The product of the variables' extents (1 for none).
    fn prod<S: AsRef<str>>(&self, vars: &[S]) -> Result<u64, String> {
        vars.iter().try_fold(1u64, |acc, v| {
            acc.checked_mul(self.ext(v.as_ref())?)
                .ok_or_else(|| "a size overflows 64 bits".to_string())
        })
    }

    /// The Einsum writing tensor `t`, if any.
    fn producer(&self, t: &str) -> Option<usize> {
        self.c.tensors.get(t).and_then(|x| x.producer)
    }

    fn readers_of(&self, t: &str) -> &[usize] {
        self.readers.get(t).map_or(&[], |v| v.as_slice())
    }

    fn is_input(&self, t: &str) -> bool {
        self.c.inputs.iter().any(|i| i == t)
    }

    /// Whether every tensor the group writes, but its sink, is read only inside the group
    /// and is no cascade output (a fused kernel keeps them on chip).
    fn closed(&self, group: &BTreeSet<usize>, sink: usize) -> bool {
        group.iter().filter(|&&i| i != sink).all(|&i| {
            let t = self.c.einsums[i].name.as_str();
            !self.c.outputs.iter().any(|o| o == t)
                && self.readers_of(t).iter().all(|r| group.contains(r))
        })
    }

    fn record(&mut self, group: &BTreeSet<usize>, r: Specs) {
        for &i in group {
            self.covered[i] = true;
        }
        let first = group.iter().next().copied().unwrap_or(0);
        self.found.push((first, r, group.iter().copied().collect()));
    }

    fn patterns(&mut self) {
        for i in 0..self.c.einsums.len() {
            if !self.covered[i] {
                if let Some((group, r)) = self.attention(i) {
                    self.record(&group, r);
                }
            }
        }
        for i in 0..self.c.einsums.len() {
            if !self.covered[i] {
                if let Some((group, r)) = self.softmax(i) {
                    self.record(&group, r);
                }
            }
        }
        for i in 0..self.c.einsums.len() {
            if !self.covered[i] {
                if let Some((group, r)) = self.norm(i) {
                    self.record(&group, r);
                }
            }
        }
        for i in 0..self.c.einsums.len() {
            if !self.covered[i] {
                if let Some((group, r)) = self.top_k(i) {
                    self.record(&group, r);
                }
            }
        }
    }

    /// A router's top-k `G = topk[x,k] P` over a plain tensor, with its renormalisation when
    /// the cascade has one (`S = Σ_x G`, `W = G / S`) → `topk rows= cols= k=`.
    fn top_k(&self, gi: usize) -> Group {
        let c = self.c;
        let g = &c.einsums[gi];
        let Reduce::TopK { var, k } = &g.reduce else {
            return None;
        };
        if g.mask.is_some() || !matches!(g.expr, Expr::Access(_)) {
            return None;
        }
        let pv = plain_vars(&g.accesses[0])?;
        let mut group = BTreeSet::from([gi]);
        // Σ_x G and G / Σ_x G.
        let sum = self.readers_of(&g.name).iter().copied().find(|&i| {
            let e = &c.einsums[i];
            e.reduce == Reduce::Op(ReduceOp::Sum)
                && e.mask.is_none()
                && matches!(e.expr, Expr::Access(_))
                && e.accesses[0].tensor == g.name
                && e.reduced == [var.clone()]
        });
        if let Some(si) = sum {
            let sname = &c.einsums[si].name;
            let div = self.readers_of(sname).iter().copied().find(|&i| {
                let e = &c.einsums[i];
                matches!(&e.expr, Expr::Binary(BinOp::Div, a, b, _)
                    if matches!(**a, Expr::Access(_)) && matches!(**b, Expr::Access(_)))
                    && e.reduce == Reduce::None
                    && e.mask.is_none()
                    && e.accesses[0].tensor == g.name
                    && e.accesses[1].tensor == *sname
            });
            if let Some(di) = div {
                group.extend([si, di]);
            }
        }
        if group.iter().any(|&i| i != gi && self.covered[i]) {
            return None;
        }
        let r = (|| {
            let rows: Vec<&String> = pv.iter().filter(|v| *v != var).collect();
            let rows = self.prod(&rows)?;
            let cols = self.ext(var)?;
            Ok(vec![(
                "top-k",
                format!(
                    "topk rows={rows} cols={cols} k={} dtype={}",
                    (*k as u64).min(cols),
                    self.dtype()
                ),
            )])
        })();
        Some((group, r))
    }

    /// Attention starting at the score contraction `si` (see the module documentation).
    fn attention(&self, si: usize) -> Group {
        let c = self.c;
        let s = &c.einsums[si];
        if s.reduce != Reduce::Op(ReduceOp::Sum) || s.mask.is_some() {
            return None;
        }
        let (ia, ib) = as_product(&s.expr)?;
        let (q, k) = (&s.accesses[ia], &s.accesses[ib]);
        if q.tensor == k.tensor || !self.is_input(&q.tensor) || !self.is_input(&k.tensor) {
            return None;
        }
        let (qv, kv, ov) = (plain_vars(q)?, plain_vars(k)?, plain_vars(&s.output)?);
        let vars = classify(&qv, &kv, &ov, &s.reduced).ok()?;
        if vars.k.is_empty() || vars.n.is_empty() {
            return None;
        }
        // Everything downstream of the scores, up to (not into) Einsums that read another
        // input than Q, K and the first such input that a contraction multiplies in (V).
        let mut down: BTreeSet<usize> = BTreeSet::from([si]);
        let mut todo = vec![si];
        while let Some(i) = todo.pop() {
            for &r in self.readers_of(&c.einsums[i].name) {
                if !self.covered[r] && down.insert(r) {
                    todo.push(r);
                }
            }
        }
        let v_tensor = down.iter().filter(|&&i| i != si).find_map(|&i| {
            let e = &c.einsums[i];
            let (a, b) = as_product(&e.expr)?;
            [&e.accesses[a], &e.accesses[b]]
                .into_iter()
                .find(|x| self.is_input(&x.tensor) && x.tensor != q.tensor && x.tensor != k.tensor)
                .map(|x| x.tensor.clone())
        })?;
        let allowed = [q.tensor.as_str(), k.tensor.as_str(), v_tensor.as_str()];
        let outside: Vec<usize> = down
            .iter()
            .copied()
            .filter(|&i| {
                c.einsums[i]
                    .reads()
                    .iter()
                    .any(|t| self.is_input(t) && !allowed.contains(t))
            })
            .collect();
        let mut group = down.clone();
        for o in outside {
            // The Einsum and everything downstream of it stay out.
            let mut todo = vec![o];
            while let Some(i) = todo.pop() {
                if group.remove(&i) {
                    todo.extend(self.readers_of(&c.einsums[i].name).iter().copied());
                }
            }
        }
        if !group.contains(&si) {
            return None;
        }
        // A softmax between the products: exp and a max, only the operators of its forms,
        // no mask, no top-k.
        let (mut un, mut bin) = (BTreeSet::new(), BTreeSet::new());
        for &i in &group {
            let e = &c.einsums[i];
            if e.mask.is_some()
                || !matches!(
                    e.reduce,
                    Reduce::None | Reduce::Op(ReduceOp::Sum) | Reduce::Op(ReduceOp::Max)
                )
            {
                return None;
            }
            operators(&e.expr, &mut un, &mut bin);
        }
        let has_max = bin.contains(&BinOp::Max)
            || group
                .iter()
                .any(|&i| c.einsums[i].reduce == Reduce::Op(ReduceOp::Max));
        if !un.contains(&UnOp::Exp)
            || !has_max
            || un.iter().any(|u| *u != UnOp::Exp)
            || bin.iter().any(|b| {
                !matches!(
                    b,
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Max
                )
            })
        {
            return None;
        }
        let sinks: Vec<usize> = group
            .iter()
            .copied()
            .filter(|&i| {
                self.readers_of(&c.einsums[i].name)
                    .iter()
                    .all(|r| !group.contains(r) || *r == i)
            })
            .collect();
        let [sink] = sinks[..] else {
            return None;
        };
        // V must be read by the group.
        if !group
            .iter()
            .any(|&i| c.einsums[i].reads().contains(&v_tensor.as_str()))
        {
            return None;
        }
        let r = self.attention_op(&vars, &v_tensor, &group, sink);
        Some((group, r.map(|s| vec![("attention", s)])))
    }

    fn attention_op(
        &self,
        vars: &Vars,
        v_tensor: &str,
        group: &BTreeSet<usize>,
        sink: usize,
    ) -> Result<String, String> {
        let c = self.c;
        if !self.closed(group, sink) {
            return Err("an attention whose intermediate tensors are read outside it: a fused attention kernel keeps them on chip".into());
        }
        // V's variables, from the Einsum that multiplies it in.
        let v_vars = group
            .iter()
            .flat_map(|&i| c.einsums[i].accesses.iter())
            .find(|a| a.tensor == v_tensor)
            .and_then(plain_vars)
            .ok_or("V is read with shifted, constant or window indices")?;
        let sv = set(&v_vars);
        if let Some(x) = vars
            .batch
            .iter()
            .chain(&vars.n)
            .find(|x| !sv.contains(x.as_str()))
        {
            return Err(format!(
                "V lacks `{x}`, a variable Q and K share or K's key variable: no attention"
            ));
        }
        let value: Vec<&String> = v_vars
            .iter()
            .filter(|x| !vars.batch.contains(x) && !vars.n.contains(x))
            .collect();
        let b = match vars.batch.first() {
            Some(v) => self.ext(v)?,
            None => 1,
        };
        let h = self.prod(vars.batch.get(1..).unwrap_or(&[]))?;
        let n = self.prod(&vars.m)?;
        let m = self.prod(&vars.n)?;
        let d = self.prod(&vars.k)?;
        let dv = self.prod(&value)?;
        if dv != d {
            return Err(format!(
                "the value head dimension ({dv}) differs from the query/key head dimension ({d}); the GPU attention ops take one d"
            ));
        }
        let dt = self.dtype();
        Ok(if self.opts.decode {
            let hq = h
                .checked_mul(n)
                .ok_or_else(|| "a size overflows 64 bits".to_string())?;
            format!("decode_attention b={b} hq={hq} hkv={h} l={m} d={d} dtype={dt}")
        } else if m == n {
            let causal = u8::from(self.opts.causal);
            format!("attention b={b} h={h} n={n} d={d} causal={causal} dtype={dt}")
        } else {
            format!("attention b={b} h={h} n={n} m={m} d={d} causal=0 dtype={dt}")
        })
    }

    /// A softmax starting at the max reduction `mi`.
    fn softmax(&self, mi: usize) -> Group {
        let c = self.c;
        let mx = &c.einsums[mi];
        if mx.reduce != Reduce::Op(ReduceOp::Max) || mx.mask.is_some() {
            return None;
        }
        let Expr::Access(_) = &mx.expr else {
            return None;
        };
        let x = &mx.accesses[0];
        let xv = plain_vars(x)?;
        // exp(X − MX)
        let ei = self.readers_of(&mx.name).iter().copied().find(|&i| {
            let e = &c.einsums[i];
            matches!(&e.expr, Expr::Unary(UnOp::Exp, inner, _)
                if matches!(&**inner, Expr::Binary(BinOp::Sub, a, b, _)
                    if matches!(**a, Expr::Access(_)) && matches!(**b, Expr::Access(_))))
                && e.reduce == Reduce::None
                && e.mask.is_none()
                && e.accesses[0].tensor == x.tensor
                && plain_vars(&e.accesses[0]).as_ref() == Some(&xv)
                && e.accesses[1].tensor == mx.name
        })?;
        let ex = &c.einsums[ei];
        // Σ EX over the same variables, and EX / Σ.
        let si = self.readers_of(&ex.name).iter().copied().find(|&i| {
            let e = &c.einsums[i];
            e.reduce == Reduce::Op(ReduceOp::Sum)
                && e.mask.is_none()
                && matches!(e.expr, Expr::Access(_))
                && set(&e.reduced) == set(&mx.reduced)
        })?;
        let sm = &c.einsums[si];
        let pi = self.readers_of(&sm.name).iter().copied().find(|&i| {
            let e = &c.einsums[i];
            matches!(&e.expr, Expr::Binary(BinOp::Div, a, b, _)
                if matches!(**a, Expr::Access(_)) && matches!(**b, Expr::Access(_)))
                && e.reduce == Reduce::None
                && e.mask.is_none()
                && e.accesses[0].tensor == ex.name
                && e.accesses[1].tensor == sm.name
        })?;
        let group = BTreeSet::from([mi, ei, si, pi]);
        if group.iter().any(|&i| self.covered[i]) || !self.closed(&group, pi) {
            return None;
        }
        let r = (|| {
            let rows: Vec<&String> = xv.iter().filter(|v| !mx.reduced.contains(v)).collect();
            let rows = self.prod(&rows)?;
            let cols = self.prod(&mx.reduced)?;
            Ok(vec![(
                "softmax",
                format!("softmax rows={rows} cols={cols} dtype={}", self.dtype()),
            )])
        })();
        Some((group, r))
    }

    /// RMS or layer norm around the `rsqrt` Einsum `ri`.
    fn norm(&self, ri: usize) -> Group {
        let c = self.c;
        let rr = &c.einsums[ri];
        let (mut un, mut bin) = (BTreeSet::new(), BTreeSet::new());
        operators(&rr.expr, &mut un, &mut bin);
        if rr.reduce != Reduce::None || rr.mask.is_some() || !un.contains(&UnOp::Rsqrt) {
            return None;
        }
        let reads = rr.reads();
        let [ss_t] = reads[..] else {
            return None;
        };
        // SS = Σ_d T·T
        let ssi = self.producer(ss_t)?;
        let ss = &c.einsums[ssi];
        let (a, b) = as_product(&ss.expr)?;
        let (ta, tb) = (&ss.accesses[a], &ss.accesses[b]);
        if ss.reduce != Reduce::Op(ReduceOp::Sum) || ss.mask.is_some() || ta != tb {
            return None;
        }
        let tv = plain_vars(ta)?;
        let d = &ss.reduced;
        // Y = T · R · weights over d (+ bias over d)
        let [yi] = self.readers_of(&rr.name)[..] else {
            return None;
        };
        let y = &c.einsums[yi];
        let (mut yun, mut ybin) = (BTreeSet::new(), BTreeSet::new());
        operators(&y.expr, &mut yun, &mut ybin);
        let y_ok = y.reduce == Reduce::None
            && y.mask.is_none()
            && yun.is_empty()
            && ybin.iter().all(|b| matches!(b, BinOp::Mul | BinOp::Add))
            && y.accesses.iter().all(|x| {
                if x.tensor == ta.tensor {
                    plain_vars(x).as_ref() == Some(&tv)
                } else if x.tensor == rr.name {
                    true
                } else {
                    self.is_input(&x.tensor)
                        && plain_vars(x).is_some_and(|w| w.iter().all(|v| d.contains(v)))
                }
            })
            && y.accesses.iter().any(|x| x.tensor == ta.tensor);
        if !y_ok {
            return None;
        }
        // Layer norm: T = X − MU with MU = Σ_d X (/ size(D)).
        let centred = self.producer(&ta.tensor).and_then(|xi| {
            let xc = &c.einsums[xi];
            let Expr::Binary(BinOp::Sub, l, r, _) = &xc.expr else {
                return None;
            };
            if !matches!(**l, Expr::Access(_)) || !matches!(**r, Expr::Access(_)) {
                return None;
            }
            if xc.reduce != Reduce::None || xc.mask.is_some() {
                return None;
            }
            let (x, mu_t) = (&xc.accesses[0], &xc.accesses[1]);
            let mi = self.producer(&mu_t.tensor)?;
            let mu = &c.einsums[mi];
            let mean_of_x = match &mu.expr {
                Expr::Access(_) => true,
                Expr::Binary(BinOp::Div, a, b, _) => {
                    matches!(**a, Expr::Access(_)) && matches!(**b, Expr::Extent(_) | Expr::Num(..))
                }
                _ => false,
            };
            (mean_of_x
                && mu.reduce == Reduce::Op(ReduceOp::Sum)
                && mu.mask.is_none()
                && mu.accesses[0].tensor == x.tensor
                && set(&mu.reduced) == set(d))
            .then_some((mi, xi))
        });
        let (kind, group) = match centred {
            Some((mi, xi)) => ("layernorm", BTreeSet::from([mi, xi, ssi, ri, yi])),
            None => ("rmsnorm", BTreeSet::from([ssi, ri, yi])),
        };
        if group.iter().any(|&i| self.covered[i]) || !self.closed(&group, yi) {
            return None;
        }
        let r = (|| {
            let rows: Vec<&String> = tv.iter().filter(|v| !d.contains(v)).collect();
            let rows = self.prod(&rows)?;
            let cols = self.prod(d)?;
            Ok(vec![(
                kind,
                format!("{kind} rows={rows} cols={cols} dtype={}", self.dtype()),
            )])
        })();
        Some((group, r))
    }

    /// One Einsum on its own: a contraction or an elementwise op, else why not.
    fn single(&mut self, i: usize) {
        let c = self.c;
        let e = &c.einsums[i];
        let r = self
            .single_op(e)
            .map_err(|why| format!("`{}`: {why}", show(e)));
        self.record(&BTreeSet::from([i]), r);
    }

    fn single_op(&self, e: &Einsum) -> Specs {
        let dt = self.dtype();
        if let Some(a) = e
            .accesses
            .iter()
            .chain(e.mask.iter())
            .chain(std::iter::once(&e.output))
            .find(|a| plain_vars(a).is_none())
        {
            let what = if a.dims.iter().any(DimIndex::is_affine) {
                "a sliding window (affine index: a convolution or pooling), which no GPU op of the grammar computes"
            } else {
                "shifted, constant or final-element indices (a recurrence) outside an attention"
            };
            return Err(format!("{} is read with {what}", a.tensor));
        }
        let out = plain_vars(&e.output).unwrap_or_default();
        match &e.reduce {
            Reduce::TopK { .. } => {
                return Err("top-k selection (routing): the GPU op grammar has no top-k".into())
            }
            Reduce::Op(ReduceOp::Sum) if as_product(&e.expr).is_some() => {
                return self.contraction(e, &out);
            }
            Reduce::Op(op) => {
                return Err(format!(
                    "a {} over {} outside a softmax, norm or matrix product: no GPU op",
                    match op {
                        ReduceOp::Sum => "sum",
                        ReduceOp::Max => "max reduction",
                        ReduceOp::Min => "min reduction",
                        ReduceOp::Prod => "product reduction",
                    },
                    e.reduced.join(",")
                ))
            }
            Reduce::None => {}
        }
        // Elementwise maps.
        let so = set(&out);
        let same = |k: usize| plain_vars(&e.accesses[k]).is_some_and(|v| set(&v) == so);
        let silu_mul = match &e.expr {
            Expr::Binary(BinOp::Mul, a, b, _) => match (&**a, &**b) {
                (Expr::Unary(UnOp::Silu, x, _), Expr::Access(_))
                | (Expr::Access(_), Expr::Unary(UnOp::Silu, x, _)) => {
                    matches!(**x, Expr::Access(_))
                }
                _ => false,
            },
            _ => false,
        };
        let add = matches!(&e.expr, Expr::Binary(BinOp::Add, a, b, _)
            if matches!(**a, Expr::Access(_)) && matches!(**b, Expr::Access(_)));
        if (silu_mul || add) && !(same(0) && same(1)) {
            return Err(
                "its operands broadcast (they lack some of the output's variables): the GPU elementwise ops take equal shapes"
                    .into(),
            );
        }
        let act = match &e.expr {
            Expr::Unary(u @ (UnOp::Relu | UnOp::Gelu), x, _) if matches!(**x, Expr::Access(_)) => {
                Some(*u)
            }
            _ => None,
        };
        // The rows of a row-wise op: the output's outer variables, or under a routing mask
        // the routed (token, expert) pairs times the other outer variables.
        let rows_of = |rest: &[String], last: &String| -> Result<u64, String> {
            match &e.mask {
                None => self.prod(rest),
                Some(m) => {
                    let (pairs, mask_vars) = self.routed_pairs(m)?;
                    if mask_vars.contains(last) {
                        return Err("the routing mask covers the innermost variable".into());
                    }
                    let other: Vec<String> = rest
                        .iter()
                        .filter(|v| !mask_vars.contains(v))
                        .cloned()
                        .collect();
                    pairs
                        .checked_mul(self.prod(&other)?)
                        .ok_or_else(|| "a size overflows 64 bits".to_string())
                }
            }
        };
        if let Some(u) = act {
            if !same(0) {
                return Err(format!("a broadcast {}: no GPU op", u.name()));
            }
            let (last, rest) = out.split_last().ok_or("a scalar output")?;
            // Masked: over the routed rows only (an MoE's GELU experts).
            let (rows, cols) = (rows_of(rest, last)?, self.ext(last)?);
            let name = if u == UnOp::Relu { "relu" } else { "gelu" };
            return Ok(vec![(
                name,
                format!("{name} rows={rows} cols={cols} dtype={dt}"),
            )]);
        }
        if add {
            if e.mask.is_some() {
                return Err("a masked (where) add: no GPU op".into());
            }
            let elems = self.prod(&out)?;
            return Ok(vec![("add", format!("add elems={elems} dtype={dt}"))]);
        }
        if silu_mul {
            let (last, rest) = out.split_last().ok_or("a scalar output")?;
            let (rows, cols) = (rows_of(rest, last)?, self.ext(last)?);
            return Ok(vec![(
                "silu_mul",
                format!("silu_mul rows={rows} cols={cols} dtype={dt}"),
            )]);
        }
        let (mut un, mut bin) = (BTreeSet::new(), BTreeSet::new());
        operators(&e.expr, &mut un, &mut bin);
        let mut what: Vec<&str> = un.iter().map(|u| u.name()).collect();
        what.extend(bin.iter().map(|b| b.symbol()));
        Err(format!(
            "an elementwise {}: no GPU op (the grammar's elementwise ops are add, relu, gelu, silu(a)·b, and the rows of softmax, rmsnorm and layernorm)",
            if what.is_empty() {
                "copy".to_string()
            } else {
                what.join(", ")
            }
        ))
    }

    /// The routed (token, expert) pairs of a mask over the routing's expert rank and token
    /// ranks, and the mask's variables.
    fn routed_pairs(&self, mask: &ResolvedAccess) -> Result<(u64, Vec<String>), String> {
        let r = self.routing(mask)?;
        Ok((r.0.tokens_per_expert.iter().sum(), r.1))
    }

    /// The routing of a masked Einsum and the mask's variables (expert variable included);
    /// checks that the mask's other variables count the routed tokens.
    fn routing(&self, mask: &ResolvedAccess) -> Result<(&'a Routing, Vec<String>), String> {
        let Some(r) = self.opts.routing else {
            return Err(format!(
                "masked by {} without a routing (tokens per expert): give the workload's MoE routing",
                mask.tensor
            ));
        };
        let mv = plain_vars(mask).ok_or("the mask is read with non-plain indices")?;
        let xv = var_of(&r.expert_rank);
        if !mv.contains(&xv) {
            return Err(format!(
                "the mask {} does not range over the routing's expert rank {}",
                mask.tensor, r.expert_rank
            ));
        }
        let tokens: Vec<&String> = mv.iter().filter(|v| **v != xv).collect();
        let t = self.prod(&tokens)?;
        if t != r.tokens || r.tokens_per_expert.len() as u64 != self.ext(&xv)? {
            return Err(format!(
                "the routing ({} tokens over {} experts) does not match the mask's ranks ({t} tokens over {} experts)",
                r.tokens,
                r.tokens_per_expert.len(),
                self.ext(&xv)?
            ));
        }
        Ok((r, mv))
    }

    fn contraction(&self, e: &Einsum, out: &[String]) -> Specs {
        let dt = self.dtype();
        let (ia, ib) = as_product(&e.expr).ok_or("not a product of two tensors")?;
        let (a, b) = (&e.accesses[ia], &e.accesses[ib]);
        let (av, bv) = (
            plain_vars(a).unwrap_or_default(),
            plain_vars(b).unwrap_or_default(),
        );
        if a.tensor == b.tensor && av == bv {
            return Err("a sum of squares outside a norm: no GPU op".into());
        }
        let Some(mask) = &e.mask else {
            let v = classify(&av, &bv, out, &e.reduced)?;
            let (batch, m, n, k) = (
                self.prod(&v.batch)?,
                self.prod(&v.m)?,
                self.prod(&v.n)?,
                self.prod(&v.k)?,
            );
            return Ok(vec![(
                "contraction",
                if batch == 1 {
                    format!("gemm m={m} n={n} k={k} dtype={dt}")
                } else {
                    format!("bmm batch={batch} m={m} n={n} k={k} dtype={dt}")
                },
            )]);
        };
        // Routed: one product per expert over its tokens.
        let (r, mv) = self.routing(mask)?;
        let xv = var_of(&r.expert_rank);
        if e.reduced.contains(&xv) {
            // The weighted combine: each token's routed expert rows summed.
            if e.reduced.len() != 1 {
                return Err(format!(
                    "a sum over the routed experts ({xv}) and over {}: no GPU op",
                    e.reduced.join(",")
                ));
            }
            let (last, rest) = out.split_last().ok_or("a scalar output")?;
            let (rows, cols) = (self.prod(rest)?, self.ext(last)?);
            let k = r
                .tokens_per_expert
                .iter()
                .sum::<u64>()
                .div_ceil(r.tokens.max(1));
            return Ok(vec![(
                "combine",
                format!("moe_combine rows={rows} cols={cols} k={k} dtype={dt}"),
            )]);
        }
        let drop =
            |v: &[String]| -> Vec<String> { v.iter().filter(|x| **x != xv).cloned().collect() };
        let v = classify(&drop(&av), &drop(&bv), &drop(out), &e.reduced)?;
        let tokens: Vec<String> = mv.into_iter().filter(|x| *x != xv).collect();
        if let Some(t) = tokens.iter().find(|t| !v.m.contains(t)) {
            return Err(format!(
                "the routed tokens ({t}) are not rows of the first operand: no per-expert GEMM"
            ));
        }
        let rows: Vec<&String> = v.m.iter().filter(|x| !tokens.contains(x)).collect();
        let (m_rest, batch, n, k) = (
            self.prod(&rows)?,
            self.prod(&v.batch)?,
            self.prod(&v.n)?,
            self.prod(&v.k)?,
        );
        // Experts of equal token counts share one batched GEMM; largest counts first.
        let mut by_count: BTreeMap<u64, u64> = BTreeMap::new();
        for &t in r.tokens_per_expert.iter().filter(|&&t| t > 0) {
            *by_count.entry(t).or_default() += 1;
        }
        let mut ops = Vec::new();
        for (&t, &experts) in by_count.iter().rev() {
            let m = t.checked_mul(m_rest).ok_or("a size overflows 64 bits")?;
            let nb = experts
                .checked_mul(batch)
                .ok_or("a size overflows 64 bits")?;
            ops.push((
                "routed contraction",
                if nb == 1 {
                    format!("gemm m={m} n={n} k={k} dtype={dt}")
                } else {
                    format!("bmm batch={nb} m={m} n={n} k={k} dtype={dt}")
                },
            ));
        }
        if ops.is_empty() {
            return Err("no token is routed to any expert".into());
        }
        Ok(ops)
    }

    fn finish(mut self) -> Lowering {
        self.found.sort_by_key(|f| f.0);
        let mut ops = Vec::new();
        let mut unlowered = Vec::new();
        for (_, r, group) in self.found {
            let einsums: Vec<String> = group
                .iter()
                .map(|&i| self.c.einsums[i].name.clone())
                .collect();
            match r {
                Ok(specs) => {
                    for (pattern, spec) in specs {
                        match GpuOp::parse(&spec) {
                            Ok(op) => ops.push(LoweredOp {
                                pattern,
                                einsums: einsums.clone(),
                                spec,
                                op,
                            }),
                            Err(e) => unlowered.push(Unlowered {
                                einsums: einsums.clone(),
                                reason: format!("`{spec}`: {e}"),
                            }),
                        }
                    }
                }
                Err(reason) => unlowered.push(Unlowered { einsums, reason }),
            }
        }
        Lowering { ops, unlowered }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_einsum::{bind, check_source, library};

    fn ext(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn opts() -> LowerOptions<'static> {
        LowerOptions {
            dtype: Dtype::Bf16,
            decode: false,
            routing: None,
            causal: false,
        }
    }

    fn lower_cascade(c: &Cascade, e: &[(&str, u64)], o: &LowerOptions) -> Lowering {
        let sh = bind(c, &ext(e)).unwrap_or_else(|e| panic!("{e}"));
        lower(c, &sh, o)
    }

    fn lib(name: &str, e: &[(&str, u64)], o: &LowerOptions) -> Lowering {
        lower_cascade(&library::load(name).unwrap().cascade, e, o)
    }

    fn text(src: &str, e: &[(&str, u64)], o: &LowerOptions) -> Lowering {
        let c = check_source("t.ein", src).unwrap_or_else(|e| panic!("{e}"));
        lower_cascade(&c.cascade, e, o)
    }

    /// The specs of a complete lowering.
    fn specs(l: Lowering) -> Vec<String> {
        l.into_ops()
            .unwrap_or_else(|e| panic!("not lowered: {e}"))
            .into_iter()
            .map(|o| o.spec)
            .collect()
    }

    const ATTN: &[(&str, u64)] = &[
        ("B", 2),
        ("H", 4),
        ("E", 64),
        ("F", 64),
        ("M", 1024),
        ("P", 1024),
        ("M0", 256),
    ];

    #[test]
    fn a_contraction_is_a_gemm_with_m_n_k_from_its_variables() {
        let l = lib("gemm", &[("T", 16384), ("K", 4096), ("N", 6144)], &opts());
        let ops = l.into_ops().unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].spec, "gemm m=16384 n=6144 k=4096 dtype=bf16");
        assert_eq!(ops[0].pattern, "contraction");
        assert_eq!(ops[0].einsums, ["C"]);
        // The spec parses to the op it carries.
        assert_eq!(GpuOp::parse(&ops[0].spec).unwrap(), ops[0].op);
        assert!(!ops[0].spec.contains("impl="));
    }

    #[test]
    fn shared_kept_variables_batch_the_product_and_split_ranks_multiply() {
        // Batch b kept by both operands, m from A (two variables), n from B, k over a split.
        let src = "input A[B,I,J,K], W[B,K,N]\nsplit K = K1 * K0\noutput C[b,i,j,n] = A[b,i,j,k1,k0] * W[b,k1,k0,n]\n";
        let l = text(
            src,
            &[
                ("B", 3),
                ("I", 4),
                ("J", 5),
                ("K", 64),
                ("K0", 16),
                ("N", 7),
            ],
            &opts(),
        );
        assert_eq!(specs(l), ["bmm batch=3 m=20 n=7 k=64 dtype=bf16"]);
    }

    #[test]
    fn every_attention_form_lowers_to_one_attention_op() {
        let want = "attention b=2 h=4 n=1024 d=64 causal=0 dtype=bf16";
        for name in ["attention_1pass", "attention_2pass", "attention_3pass"] {
            let ops = lib(name, ATTN, &opts()).into_ops().unwrap();
            assert_eq!(ops.len(), 1, "{name}");
            assert_eq!(ops[0].spec, want, "{name}");
            assert_eq!(ops[0].pattern, "attention");
            // Every Einsum of the cascade is in the one op.
            let c = library::load(name).unwrap().cascade;
            assert_eq!(ops[0].einsums.len(), c.einsums.len(), "{name}");
        }
        // Cross-attention: keys ≠ queries gives m.
        let mut e = ATTN.to_vec();
        e[4] = ("M", 4096);
        assert_eq!(
            specs(lib("attention_3pass", &e, &opts())),
            ["attention b=2 h=4 n=1024 m=4096 d=64 causal=0 dtype=bf16"]
        );
    }

    #[test]
    fn decode_attention_counts_query_heads_per_kv_head() {
        let e = [
            ("B", 8),
            ("H", 8),
            ("G", 4),
            ("E", 128),
            ("F", 128),
            ("M", 2048),
            ("M0", 256),
        ];
        let decode = LowerOptions {
            decode: true,
            ..opts()
        };
        assert_eq!(
            specs(lib("gqa_decode", &e, &decode)),
            ["decode_attention b=8 hq=32 hkv=8 l=2048 d=128 dtype=bf16"]
        );
        // Without the decode phase the same Einsums are G queries per head against the keys.
        assert_eq!(
            specs(lib("gqa_decode", &e, &opts())),
            ["attention b=8 h=8 n=4 m=2048 d=128 causal=0 dtype=bf16"]
        );
    }

    #[test]
    fn patterns_follow_structure_not_names() {
        // attention_3pass and rmsnorm with every tensor and rank renamed.
        let src = "input X1[Z,Y,R,S], X2[Z,Y,R,T], X3[Z,Y,U,T]
S1[z,y,t,s] = X1[z,y,r,s] * X2[z,y,r,t]
S2[z,y,s] = max[t] S1[z,y,t,s]
S3[z,y,t,s] = exp(S1[z,y,t,s] - S2[z,y,s])
S4[z,y,s] = S3[z,y,t,s]
S5[z,y,t,s] = S3[z,y,t,s] / S4[z,y,s]
output O[z,y,u,s] = S5[z,y,t,s] * X3[z,y,u,t]
";
        let e = [
            ("Z", 2),
            ("Y", 3),
            ("R", 32),
            ("U", 32),
            ("S", 100),
            ("T", 300),
        ];
        assert_eq!(
            specs(text(src, &e, &opts())),
            ["attention b=2 h=3 n=100 m=300 d=32 causal=0 dtype=bf16"]
        );
        let norm = "input A[Q,W], G[W]
P[q] = A[q,w] * A[q,w]
K[q] = rsqrt(P[q] / size(W) + 0.000001)
output Z[q,w] = G[w] * A[q,w] * K[q]
";
        assert_eq!(
            specs(text(norm, &[("Q", 10), ("W", 20)], &opts())),
            ["rmsnorm rows=10 cols=20 dtype=bf16"]
        );
    }

    #[test]
    fn norms_softmax_and_elementwise_ops() {
        let o = opts();
        assert_eq!(
            specs(lib("rmsnorm", &[("T", 16384), ("D", 4096)], &o)),
            ["rmsnorm rows=16384 cols=4096 dtype=bf16"]
        );
        let ln = lib("layernorm", &[("T", 512), ("D", 768)], &o);
        assert_eq!(ln.ops[0].einsums, ["MU", "XC", "VAR", "R", "Y"]);
        assert_eq!(specs(ln), ["layernorm rows=512 cols=768 dtype=bf16"]);
        let sm = "input X[R,C]
MX[r] = max[c] X[r,c]
E[r,c] = exp(X[r,c] - MX[r])
S[r] = E[r,c]
output P[r,c] = E[r,c] / S[r]
";
        assert_eq!(
            specs(text(sm, &[("R", 65536), ("C", 4096)], &o)),
            ["softmax rows=65536 cols=4096 dtype=bf16"]
        );
        let residual = "input X[T,D], Y[T,D]\noutput Z[t,d] = X[t,d] + Y[t,d]\n";
        assert_eq!(
            specs(text(residual, &[("T", 8), ("D", 4096)], &o)),
            ["add elems=32768 dtype=bf16"]
        );
        let fp16 = LowerOptions {
            dtype: Dtype::Fp16,
            ..opts()
        };
        assert_eq!(
            specs(lib("rmsnorm", &[("T", 2), ("D", 8)], &fp16)),
            ["rmsnorm rows=2 cols=8 dtype=fp16"]
        );
    }

    #[test]
    fn swiglu_is_two_gemms_silu_mul_and_a_gemm() {
        let l = lib(
            "ffn_swiglu",
            &[("T", 16), ("D", 4096), ("F", 14336)],
            &opts(),
        );
        let ops = l.into_ops().unwrap();
        let by_einsum: Vec<(String, String)> = ops
            .iter()
            .map(|o| (o.einsums.join(" "), o.spec.clone()))
            .collect();
        let mut sorted = by_einsum.clone();
        sorted.sort();
        let want = [
            ("A", "silu_mul rows=16 cols=14336 dtype=bf16"),
            ("HG", "gemm m=16 n=14336 k=4096 dtype=bf16"),
            ("HU", "gemm m=16 n=14336 k=4096 dtype=bf16"),
            ("Y", "gemm m=16 n=4096 k=14336 dtype=bf16"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()));
        assert_eq!(sorted, want);
        // In cascade order: the down projection last, after the gate.
        assert_eq!(by_einsum[3].0, "Y");
        assert_eq!(by_einsum[2].0, "A");
    }

    #[test]
    fn what_has_no_op_is_named_with_its_reason() {
        // GELU and ReLU FFNs lower whole: a GEMM, the activation, a GEMM.
        for (c, act) in [("ffn_gelu", "gelu"), ("ffn_relu", "relu")] {
            let l = lib(c, &[("T", 16), ("D", 768), ("F", 3072)], &opts());
            assert!(l.unlowered.is_empty(), "{:?}", l.unlowered);
            let specs: Vec<String> = l.into_ops().unwrap().into_iter().map(|o| o.spec).collect();
            assert_eq!(
                specs,
                [
                    "gemm m=16 n=3072 k=768 dtype=bf16".to_string(),
                    format!("{act} rows=16 cols=3072 dtype=bf16"),
                    "gemm m=16 n=768 k=3072 dtype=bf16".to_string(),
                ]
            );
        }
        // An elementwise exp has no GPU op: named, with what the rest would lower to.
        let src = "input X[T,F], W[F,D]\nH[t,d] = X[t,f] * W[f,d]\noutput A[t,d] = exp(H[t,d])\n";
        let l = text(src, &[("T", 16), ("F", 768), ("D", 3072)], &opts());
        assert_eq!(l.unlowered.len(), 1);
        assert_eq!(l.unlowered[0].einsums, ["A"]);
        let e = l.into_ops().unwrap_err();
        assert!(
            e.starts_with("A: `A[t,d] = exp(H[t,d])`: an elementwise exp: no GPU op"),
            "{e}"
        );
        assert!(e.contains("H → gemm m=16 n=3072 k=768"), "{e}");
        // A convolution window.
        let conv = lib(
            "conv2d",
            &[
                ("N", 1),
                ("C", 3),
                ("K", 8),
                ("P", 4),
                ("Q", 4),
                ("R", 3),
                ("S", 3),
            ],
            &opts(),
        );
        let e = conv.into_ops().unwrap_err();
        assert!(e.contains("sliding window"), "{e}");
        // A head dimension beyond the attention kernels' 256: the parse error, not a panic.
        let mut big = ATTN.to_vec();
        big[2] = ("E", 512);
        big[3] = ("F", 512);
        let e = lib("attention_1pass", &big, &opts())
            .into_ops()
            .unwrap_err();
        assert!(e.contains("head dimension must be at most 256"), "{e}");
        // Value and query head dimensions that differ.
        let mut odd = ATTN.to_vec();
        odd[3] = ("F", 32);
        let e = lib("attention_3pass", &odd, &opts())
            .into_ops()
            .unwrap_err();
        assert!(e.contains("value head dimension (32)"), "{e}");
    }

    fn moe_ext(t: u64) -> Vec<(&'static str, u64)> {
        vec![("T", t), ("D", 64), ("X", 4), ("F", 128)]
    }

    /// MoE cascade `name` at 32 tokens over 4 experts lowered with routing `r`, and its ops as
    /// (Einsums, spec) pairs.
    fn routed(name: &str, r: &Routing) -> (Lowering, Vec<(String, String)>) {
        let o = LowerOptions {
            routing: Some(r),
            causal: false,
            ..opts()
        };
        let l = lib(name, &moe_ext(32), &o);
        let got = l
            .ops
            .iter()
            .map(|o| (o.einsums.join(" "), o.spec.clone()))
            .collect();
        (l, got)
    }

    #[test]
    fn moe_lowers_router_softmax_top_k_experts_and_combine() {
        let (l, got) = routed("moe", &Routing::zipf("X", 4, 32, 2, 0.0));
        // 32 tokens × top-2 over 4 experts: 16 tokens each.
        for want in [
            ("RL", "gemm m=32 n=4 k=64 dtype=bf16"),
            ("RMX RE RS RP", "softmax rows=32 cols=4 dtype=bf16"),
            ("HG", "bmm batch=4 m=16 n=128 k=64 dtype=bf16"),
            ("HU", "bmm batch=4 m=16 n=128 k=64 dtype=bf16"),
            ("HA", "silu_mul rows=64 cols=128 dtype=bf16"),
            ("HO", "bmm batch=4 m=16 n=64 k=128 dtype=bf16"),
        ] {
            assert!(
                got.contains(&(want.0.to_string(), want.1.to_string())),
                "{want:?} in {got:?}"
            );
        }
        // The router's top-2 with its renormalisation is one op; the weighted combine reads
        // each token's two expert rows.
        for want in [
            ("G GS GW", "topk rows=32 cols=4 k=2 dtype=bf16"),
            ("OUT", "moe_combine rows=32 cols=64 k=2 dtype=bf16"),
        ] {
            assert!(
                got.contains(&(want.0.to_string(), want.1.to_string())),
                "{want:?} in {got:?}"
            );
        }
        assert!(l.unlowered.is_empty(), "{:?}", l.unlowered);
        assert_eq!(l.into_ops().unwrap().len(), 8);
        // Skewed routing: one product per distinct token count, largest first.
        let r = Routing::zipf("X", 4, 32, 2, 1.0);
        let (_, got) = routed("moe", &r);
        let hg: Vec<&str> = got
            .iter()
            .filter(|o| o.0 == "HG")
            .map(|o| o.1.as_str())
            .collect();
        let mut counts: Vec<u64> = r.tokens_per_expert.clone();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        counts.dedup();
        assert_eq!(
            hg.len(),
            counts.len(),
            "{hg:?} for {:?}",
            r.tokens_per_expert
        );
        assert!(hg[0].contains(&format!("m={} ", counts[0])), "{hg:?}");
        // Without a routing the masked Einsums say what they need.
        let e = lib("moe", &moe_ext(32), &opts()).into_ops().unwrap_err();
        assert!(e.contains("without a routing"), "{e}");
    }

    /// GLaM's two-matrix GELU experts: the GELU runs over the routed rows only, as SwiGLU's
    /// gate does; a random routing's uneven experts get one product per distinct count.
    #[test]
    fn gelu_experts_lower_to_two_products_and_a_gelu_over_the_routed_rows() {
        let (l, got) = routed("moe_gelu", &Routing::zipf("X", 4, 32, 2, 0.0));
        for want in [
            ("HH", "bmm batch=4 m=16 n=128 k=64 dtype=bf16"),
            ("HA", "gelu rows=64 cols=128 dtype=bf16"),
            ("HO", "bmm batch=4 m=16 n=64 k=128 dtype=bf16"),
            ("OUT", "moe_combine rows=32 cols=64 k=2 dtype=bf16"),
        ] {
            assert!(
                got.contains(&(want.0.to_string(), want.1.to_string())),
                "{want:?} in {got:?}"
            );
        }
        assert!(l.unlowered.is_empty(), "{:?}", l.unlowered);
        assert_eq!(l.into_ops().unwrap().len(), 7);
        let r = Routing::random("X", 4, 32, 2, 777);
        assert_eq!(r.tokens_per_expert.iter().sum::<u64>(), 64);
        let (_, got) = routed("moe_gelu", &r);
        let gelu: Vec<&str> = got
            .iter()
            .filter(|o| o.0 == "HA")
            .map(|o| o.1.as_str())
            .collect();
        assert_eq!(gelu, ["gelu rows=64 cols=128 dtype=bf16"]);
    }
}
