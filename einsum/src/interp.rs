//! Reference interpreter: evaluates a checked cascade in f64, Einsum by Einsum in
//! topological order. Iterative Einsums step their iterative rank outermost, so a
//! recurrence `X[r+1] = f(X[r], ...)` sees every earlier element.

use crate::diag::CheckError;
use crate::ir::*;
use crate::shapes::{check_input_shape, Shapes};
use crate::syntax::{BinOp, Expr, UnOp};
use std::collections::BTreeMap;

/// A dense row-major f64 tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f64>) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "tensor data does not match its shape"
        );
        Tensor { shape, data }
    }
    pub fn filled(shape: Vec<usize>, v: f64) -> Self {
        let n = shape.iter().product();
        Tensor {
            shape,
            data: vec![v; n],
        }
    }
    pub fn strides(&self) -> Vec<usize> {
        strides(&self.shape)
    }
    pub fn at(&self, idx: &[usize]) -> f64 {
        let s = self.strides();
        self.data[idx.iter().zip(&s).map(|(i, s)| i * s).sum::<usize>()]
    }
    /// Deterministic order-independent summary used by `cascade eval`.
    pub fn checksum(&self) -> f64 {
        self.data
            .iter()
            .enumerate()
            .map(|(i, v)| v * (1.0 + (i % 7) as f64 / 7.0))
            .sum()
    }
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1];
    }
    s
}

/// An access compiled to `offset = constant + Σ coeff[v] * point[v]`.
struct Lin {
    tensor: String,
    constant: usize,
    coeffs: Vec<usize>,
}

fn compile_access(a: &ResolvedAccess, vars: &[String], shapes: &Shapes, c: &Cascade) -> Lin {
    let t = &c.tensors[&a.tensor];
    let dims = shapes.tensor_dims(t);
    let dims_us: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    let st = strides(&dims_us);
    let mut constant = 0usize;
    let mut coeffs = vec![0usize; vars.len()];
    let vpos = |v: &str| {
        vars.iter()
            .position(|x| x == v)
            .expect("variable in iteration space")
    };
    for (k, di) in a.dims.iter().enumerate() {
        match di {
            DimIndex::Var { var, shift } => {
                coeffs[vpos(var)] += st[k];
                constant += *shift as usize * st[k];
            }
            DimIndex::Split { vars: parts } => {
                let mut inner = 1usize;
                for p in parts.iter().rev() {
                    coeffs[vpos(p)] += inner * st[k];
                    inner *= shapes.extent(&rank_of(p)) as usize;
                }
            }
            DimIndex::Affine { terms, offset } => {
                // In range by construction: `bind` sized the window for every access.
                for (v, coef) in terms {
                    coeffs[vpos(v)] += *coef as usize * st[k];
                }
                constant += *offset as usize * st[k];
            }
            DimIndex::Const(v) => constant += *v as usize * st[k],
            DimIndex::Last => constant += (dims_us[k] - 1) * st[k],
        }
    }
    Lin {
        tensor: a.tensor.clone(),
        constant,
        coeffs,
    }
}

enum CExpr {
    Num(f64),
    Load(usize),
    Un(UnOp, Box<CExpr>),
    Bin(BinOp, Box<CExpr>, Box<CExpr>),
}

fn compile_expr(e: &Expr, next: &mut usize, shapes: &Shapes) -> CExpr {
    match e {
        Expr::Num(v, _) => CExpr::Num(*v),
        Expr::Extent(r) => CExpr::Num(shapes.extent(&r.name) as f64),
        Expr::Access(_) => {
            *next += 1;
            CExpr::Load(*next - 1)
        }
        Expr::Unary(op, x, _) => CExpr::Un(*op, Box::new(compile_expr(x, next, shapes))),
        Expr::Binary(op, a, b, _) => CExpr::Bin(
            *op,
            Box::new(compile_expr(a, next, shapes)),
            Box::new(compile_expr(b, next, shapes)),
        ),
    }
}

fn eval_c(e: &CExpr, loads: &[f64]) -> f64 {
    match e {
        CExpr::Num(v) => *v,
        CExpr::Load(k) => loads[*k],
        CExpr::Un(op, x) => op.apply(eval_c(x, loads)),
        CExpr::Bin(op, a, b) => op.apply(eval_c(a, loads), eval_c(b, loads)),
    }
}

fn offset(l: &Lin, point: &[usize]) -> usize {
    l.constant
        + l.coeffs
            .iter()
            .zip(point)
            .map(|(c, p)| c * p)
            .sum::<usize>()
}

/// Evaluate a cascade on the given inputs; returns every tensor (inputs,
/// intermediates and outputs) by name.
pub fn evaluate(
    c: &Cascade,
    shapes: &Shapes,
    inputs: &BTreeMap<String, Tensor>,
) -> Result<BTreeMap<String, Tensor>, CheckError> {
    let mut env: BTreeMap<String, Tensor> = BTreeMap::new();
    for name in &c.inputs {
        let Some(t) = inputs.get(name) else {
            return Err(CheckError {
                source: c.source.clone(),
                diagnostics: vec![crate::diag::Diagnostic::error(
                    c.tensors[name].span,
                    format!("no data was given for input `{name}`"),
                    "declared here",
                )],
            });
        };
        check_input_shape(c, shapes, name, &t.shape)?;
        env.insert(name.clone(), t.clone());
    }
    for e in &c.einsums {
        env.insert(e.name.clone(), allocate(c, shapes, e));
    }
    let mut k = 0;
    while k < c.einsums.len() {
        match c.einsums[k].group {
            Some(g) => {
                // A recurrence group steps its iterative variable outermost, all members per step.
                let end = k + c.einsums[k..]
                    .iter()
                    .take_while(|e| e.group == Some(g))
                    .count();
                let v = c.einsums[k..end]
                    .iter()
                    .find_map(|e| e.iterative.clone())
                    .expect("group steps a rank");
                for step in 0..shapes.extent(&rank_of(&v)) as usize {
                    for e in &c.einsums[k..end] {
                        eval_einsum(c, shapes, e, &mut env, Some((&v, step)));
                    }
                }
                k = end;
            }
            None => {
                eval_einsum(c, shapes, &c.einsums[k], &mut env, None);
                k += 1;
            }
        }
    }
    Ok(env)
}

/// The output tensor of an Einsum: NaN (never read unwritten) except its `init` slice.
fn allocate(c: &Cascade, shapes: &Shapes, e: &Einsum) -> Tensor {
    let info = &c.tensors[&e.name];
    let dims: Vec<usize> = shapes
        .tensor_dims(info)
        .iter()
        .map(|&d| d as usize)
        .collect();
    let mut out = Tensor::filled(dims, f64::NAN);
    if let Some(v) = info.init {
        let k = info.dims.iter().position(|d| d.iterative).unwrap();
        let st = out.strides();
        let n = out.shape[k];
        for (i, x) in out.data.iter_mut().enumerate() {
            if (i / st[k]).is_multiple_of(n) {
                *x = v;
            }
        }
    }
    out
}

/// Evaluate one Einsum into its output tensor in `env`; `slice` restricts one
/// variable to a single value (one step of a recurrence group).
fn eval_einsum(
    c: &Cascade,
    shapes: &Shapes,
    e: &Einsum,
    env: &mut BTreeMap<String, Tensor>,
    slice: Option<(&str, usize)>,
) {
    let mut out = env.remove(&e.name).expect("allocated");
    // Iteration order: the iterative variable outermost, then output vars, then reduced.
    let mut vars = e.vars.clone();
    if let Some(it) = &e.iterative {
        vars.retain(|v| v != it);
        vars.insert(0, it.clone());
    }
    let n_out = vars.len() - e.reduced.len();
    let mut lo = vec![0usize; vars.len()];
    let mut hi: Vec<usize> = vars
        .iter()
        .map(|v| shapes.extent(&rank_of(v)) as usize)
        .collect();
    if let Some((v, step)) = slice {
        let k = vars
            .iter()
            .position(|x| x == v)
            .expect("group members iterate the group's rank");
        lo[k] = step;
        hi[k] = step + 1;
    }
    let lins: Vec<Lin> = e
        .accesses
        .iter()
        .map(|a| compile_access(a, &vars, shapes, c))
        .collect();
    let out_lin = compile_access(&e.output, &vars, shapes, c);
    let mask_lin = e.mask.as_ref().map(|m| compile_access(m, &vars, shapes, c));
    let mut next = 0;
    let body = compile_expr(&e.expr, &mut next, shapes);
    let op = match &e.reduce {
        Reduce::Op(op) => Some(*op),
        _ => None,
    };
    let mut point = lo.clone();
    let total_out: usize = (0..n_out).map(|k| hi[k] - lo[k]).product();
    let total_red: usize = (n_out..vars.len()).map(|k| hi[k] - lo[k]).product();
    let mut buf = Vec::new();
    for _ in 0..total_out {
        let mut acc = op.map_or(0.0, |o| o.identity());
        for r in 0..total_red {
            let on = mask_lin
                .as_ref()
                .is_none_or(|m| env[&m.tensor].data[offset(m, &point)] != 0.0);
            if on {
                buf.clear();
                for l in &lins {
                    let src = if l.tensor == e.name {
                        &out
                    } else {
                        &env[&l.tensor]
                    };
                    buf.push(src.data[offset(l, &point)]);
                }
                let v = eval_c(&body, &buf);
                acc = match op {
                    Some(o) => o.combine(acc, v),
                    None => v,
                };
            }
            if r + 1 < total_red {
                advance(&mut point[n_out..], &lo[n_out..], &hi[n_out..]);
            }
        }
        point[n_out..].copy_from_slice(&lo[n_out..]);
        let o = offset(&out_lin, &point);
        out.data[o] = acc;
        advance(&mut point[..n_out], &lo[..n_out], &hi[..n_out]);
    }
    if let Reduce::TopK { var, k } = &e.reduce {
        let pos = e
            .output
            .dims
            .iter()
            .position(|d| matches!(d, DimIndex::Var { var: v, .. } if v == var))
            .unwrap();
        top_k_along(&mut out, pos, *k);
    }
    env.insert(e.name.clone(), out);
}

/// Odometer increment over `lo..hi` per position (last index fastest).
fn advance(point: &mut [usize], lo: &[usize], hi: &[usize]) {
    for k in (0..point.len()).rev() {
        point[k] += 1;
        if point[k] < hi[k] {
            return;
        }
        point[k] = lo[k];
    }
}

/// Keep the k largest values of every fiber along `dim` (ties: lower index first), zero the rest.
fn top_k_along(t: &mut Tensor, dim: usize, k: usize) {
    let st = t.strides();
    let n = t.shape[dim];
    let fibers = t.data.len() / n;
    for f in 0..fibers {
        // Base offset of fiber f: split f into (outer, inner) around `dim`.
        let inner = st[dim];
        let base = (f / inner) * inner * n + f % inner;
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by(|&a, &b| {
            t.data[base + b * inner]
                .total_cmp(&t.data[base + a * inner])
                .then(a.cmp(&b))
        });
        for &i in idx.iter().skip(k) {
            t.data[base + i * inner] = 0.0;
        }
    }
}

/// Random inputs in [-1, 1) from a seeded generator (SplitMix64; no dependency).
pub fn random_inputs(c: &Cascade, shapes: &Shapes, seed: u64) -> BTreeMap<String, Tensor> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    c.inputs
        .iter()
        .map(|name| {
            let dims: Vec<usize> = shapes
                .tensor_dims(&c.tensors[name])
                .iter()
                .map(|&d| d as usize)
                .collect();
            let n = dims.iter().product();
            (
                name.clone(),
                Tensor::new(dims, (0..n).map(|_| next()).collect()),
            )
        })
        .collect()
}
