//! Binding ranks to extents, with the shape checks that need numbers
//! (rank splits that do not divide, tensors of the wrong shape).

use crate::diag::{CheckError, Diagnostic};
use crate::ir::{rank_of, Cascade, TensorInfo};
use crate::syntax::Span;
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
    for r in c.ranks.values() {
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
