//! Binding ranks to extents, with the shape checks that need numbers
//! (rank splits that do not divide, tensors of the wrong shape).

use crate::diag::{CheckError, Diagnostic};
use crate::ir::{rank_of, Cascade, DimIndex, TensorInfo};
use crate::syntax::Span;
use crate::syntax::{printer, Access};
use std::collections::BTreeMap;

/// Extents of every rank of a cascade (split parts included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shapes {
    extents: BTreeMap<String, u64>,
}

impl Shapes {
    pub fn extent(&self, rank: &str) -> u64 {
        self.extents[rank]
    }
    pub fn get(&self, rank: &str) -> Option<u64> {
        self.extents.get(rank).copied()
    }
    pub fn extents(&self) -> &BTreeMap<String, u64> {
        &self.extents
    }
    /// Dimension sizes of a tensor (an iterative dimension holds extent + 1).
    pub fn tensor_dims(&self, t: &TensorInfo) -> Vec<u64> {
        t.dims
            .iter()
            .map(|d| self.extent(&d.rank).saturating_add(u64::from(d.iterative)))
            .collect()
    }
    pub fn tensor_elems(&self, t: &TensorInfo) -> u64 {
        self.tensor_dims(t).iter().product()
    }
}

fn shape_err(c: &Cascade, span: Span, msg: String, label: &str) -> CheckError {
    CheckError {
        source: c.source.clone(),
        diagnostics: vec![Diagnostic::error(span, msg, label)],
    }
}

/// Bind extents to ranks. `given` may name ranks the cascade does not use (they are
/// ignored), and may leave one rank of each split open: it is derived.
pub fn bind(c: &Cascade, given: &BTreeMap<String, u64>) -> Result<Shapes, CheckError> {
    let mut ext: BTreeMap<String, u64> = BTreeMap::new();
    for r in c.ranks.keys() {
        if let Some(&v) = given.get(r) {
            if v == 0 {
                return Err(shape_err(
                    c,
                    c.ranks[r].span,
                    format!("shape mismatch after binding: rank `{r}` has extent 0"),
                    "extents must be ≥ 1",
                ));
            }
            ext.insert(r.clone(), v);
        }
    }
    // Resolve splits until nothing changes (nested splits resolve in turn).
    loop {
        let mut changed = false;
        for info in c.ranks.values().filter(|r| !r.parts.is_empty()) {
            let root = ext.get(&info.name).copied();
            let known: Vec<Option<u64>> = info.parts.iter().map(|p| ext.get(p).copied()).collect();
            let unknown = known.iter().filter(|k| k.is_none()).count();
            // Saturating: absurd parts fail the size check below instead of overflowing.
            let prod_known: u64 = known.iter().flatten().fold(1, |a, &b| a.saturating_mul(b));
            let split_text = format!("split {} = {}", info.name, info.parts.join(" * "));
            match (root, unknown) {
                (None, 0) => {
                    ext.insert(info.name.clone(), prod_known);
                    changed = true;
                }
                (Some(r), 0) if r != prod_known => {
                    return Err(shape_err(
                        c,
                        info.span,
                        format!("shape mismatch after binding: {split_text} gives {prod_known}, but {} = {r}", info.name),
                        "the parts must multiply to the rank",
                    ));
                }
                (Some(r), 1) => {
                    if r % prod_known != 0 {
                        return Err(shape_err(
                            c,
                            info.span,
                            format!("shape mismatch after binding: {split_text}: {} = {r} is not divisible by {prod_known}", info.name),
                            "rank splits must divide evenly",
                        ));
                    }
                    let idx = known.iter().position(|k| k.is_none()).unwrap();
                    ext.insert(info.parts[idx].clone(), r / prod_known);
                    changed = true;
                }
                _ => {}
            }
        }
        if !changed {
            break;
        }
    }
    bind_windows(c, given, &mut ext)?;
    // Window ranks last: a missing window extent is usually a missing variable extent.
    let windows = c.window_ranks();
    let mut order: Vec<&crate::ir::RankInfo> = c.ranks.values().collect();
    order.sort_by_key(|r| windows.contains(&r.name));
    for r in order {
        if !ext.contains_key(&r.name) {
            return Err(shape_err(
                c,
                r.span,
                format!("rank `{}` has no extent", r.name),
                "give it a size (or enough of its split to derive it)",
            ));
        }
    }
    let shapes = Shapes { extents: ext };
    // Element and iteration-point counts must fit in u64 with room to spare: the
    // analyses multiply them by bytes per element and per-point op counts.
    fn fits(mut dims: impl Iterator<Item = u64>) -> bool {
        dims.try_fold(1u64, |acc, d| {
            acc.checked_mul(d).filter(|&p| p <= MAX_POINTS)
        })
        .is_some()
    }
    for t in c.tensors.values() {
        if !fits(shapes.tensor_dims(t).into_iter()) {
            return Err(shape_err(
                c,
                t.span,
                format!(
                    "shape mismatch after binding: tensor `{}` has more than 2^60 elements",
                    t.name
                ),
                "too large",
            ));
        }
    }
    for e in &c.einsums {
        if !fits(e.vars.iter().map(|v| shapes.extent(&rank_of(v)))) {
            return Err(shape_err(
                c,
                e.output.span,
                format!(
                    "shape mismatch after binding: the iteration space of `{}` has more than 2^60 points",
                    e.name
                ),
                "too large",
            ));
        }
    }
    Ok(shapes)
}

/// One past the largest value of `Σ coef·var + offset` when each variable ranges over
/// its rank's extent (`extent_of` gives it; `None` while unbound): the extent a window
/// rank needs. Saturates instead of overflowing.
pub fn affine_need(
    terms: &[(String, i64)],
    offset: i64,
    extent_of: impl Fn(&str) -> Option<u64>,
) -> Option<u128> {
    let mut n = offset.max(0) as u128 + 1;
    for (v, coef) in terms {
        let e = extent_of(&rank_of(v))?;
        n = n.saturating_add((*coef).max(0) as u128 * u128::from(e.saturating_sub(1)));
    }
    Some(n)
}

/// The span of the source index that addresses dimension `pos` of a resolved access.
fn index_span(ast: &Access, dims: &[DimIndex], pos: usize) -> Span {
    let mut j = 0;
    for (k, d) in dims.iter().enumerate() {
        if k == pos {
            break;
        }
        j += match d {
            DimIndex::Split { vars } => vars.len(),
            _ => 1,
        };
    }
    ast.indices.get(j).map_or(ast.tensor.span, |i| i.span())
}

/// Window ranks (addressed by affine indices): derive the extents not given — the
/// largest index any access reads, plus one — and check the given ones are large
/// enough for every access (larger is fine: e.g. padding rows never read). After
/// this no affine index can leave its tensor.
fn bind_windows(
    c: &Cascade,
    given: &BTreeMap<String, u64>,
    ext: &mut BTreeMap<String, u64>,
) -> Result<(), CheckError> {
    let mut derived: BTreeMap<String, u128> = BTreeMap::new();
    let mut checks = Vec::new();
    for (k, j, pos) in c.affine_accesses() {
        let e = &c.einsums[k];
        let a = &e.accesses[j];
        let DimIndex::Affine { terms, offset } = &a.dims[pos] else {
            continue;
        };
        let rank = &c.tensors[&a.tensor].dims[pos].rank;
        let Some(need) = affine_need(terms, *offset, |r| ext.get(r).copied()) else {
            continue; // a variable's rank is unbound: reported below
        };
        checks.push((k, j, pos, rank.clone(), need));
        if !given.contains_key(rank) {
            let n = derived.entry(rank.clone()).or_insert(0);
            *n = (*n).max(need);
        }
    }
    for (rank, need) in derived {
        ext.insert(rank, u64::try_from(need).unwrap_or(u64::MAX));
    }
    for (k, j, pos, rank, need) in checks {
        let have = ext[&rank];
        let e = &c.einsums[k];
        let a = &e.accesses[j];
        let ast = e.expr.accesses()[j];
        let span = index_span(ast, &a.dims, pos);
        let DimIndex::Affine { terms, .. } = &a.dims[pos] else {
            continue;
        };
        let vars: Vec<String> = terms
            .iter()
            .map(|(v, _)| format!("{} = {}", rank_of(v), ext[&rank_of(v)]))
            .collect();
        let text = printer::access(ast);
        let ix = ast
            .indices
            .iter()
            .find(|i| i.span().start == span.start)
            .map(printer::index)
            .unwrap_or_default();
        if need > u128::from(MAX_POINTS) {
            return Err(shape_err(
                c,
                span,
                format!(
                    "shape mismatch after binding: `{text}` needs rank `{rank}` of {need} elements (more than 2^60) with {}",
                    vars.join(", ")
                ),
                "too large",
            ));
        }
        if u128::from(have) < need {
            return Err(shape_err(
                c,
                span,
                format!(
                    "shape mismatch after binding: `{text}` reads `{ix}` up to {} with {}, so `{rank}` needs extent {need}, but {rank} = {have}",
                    need - 1,
                    vars.join(", ")
                ),
                "index out of range",
            ));
        }
    }
    Ok(())
}

/// Largest element count of a tensor, or iteration space of an Einsum, that
/// [`bind`] accepts (2^60).
pub const MAX_POINTS: u64 = 1 << 60;

/// Check that a tensor supplied for an input has the bound shape.
pub fn check_input_shape(
    c: &Cascade,
    s: &Shapes,
    name: &str,
    shape: &[usize],
) -> Result<(), CheckError> {
    let t = &c.tensors[name];
    let want: Vec<usize> = s.tensor_dims(t).iter().map(|&d| d as usize).collect();
    if want != shape {
        let ranks: Vec<&str> = t.dims.iter().map(|d| d.rank.as_str()).collect();
        return Err(shape_err(
            c,
            t.span,
            format!(
                "shape mismatch after binding: input `{name}[{}]` was given shape {shape:?}, but its ranks bind to {want:?}",
                ranks.join(",")
            ),
            "declared here",
        ));
    }
    Ok(())
}
