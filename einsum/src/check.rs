//! Semantic checks: turn a parsed [`Program`] into a [`Cascade`] or located errors.
//!
//! Checks, each with its own test: syntax, unknown tensor, unknown rank, index used
//! with an inconsistent rank, dependency cycle, iterative rank without `init`,
//! output never written, duplicate writers, reduction list mismatch; warnings for
//! unused inputs and dead Einsums. Shape mismatches are found when shapes are bound
//! ([`crate::shapes`]).

use crate::diag::{CheckError, Diagnostic, SourceFile};
use crate::ir::*;
use crate::syntax::*;
use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{BTreeMap, BTreeSet};

/// A checked cascade and the warnings found on the way.
#[derive(Clone, Debug)]
pub struct Checked {
    pub cascade: Cascade,
    pub warnings: Vec<Diagnostic>,
}

impl Checked {
    /// Warnings rendered with their locations.
    pub fn render_warnings(&self) -> String {
        self.cascade.source.render_all(&self.warnings)
    }
}

/// Parse and check a cascade. `name` is the file name used in messages.
pub fn check_source(name: &str, text: &str) -> Result<Checked, CheckError> {
    let source = SourceFile::new(name, text);
    let program = parse_program(text).map_err(|e| CheckError {
        source: source.clone(),
        diagnostics: vec![Diagnostic::error(
            Span::new(e.offset, e.offset + 1),
            format!("syntax error: {}", e.message),
            "here",
        )],
    })?;
    check_program(source, &program)
}

/// Check a parsed program.
pub fn check_program(source: SourceFile, program: &Program) -> Result<Checked, CheckError> {
    let mut cx = Cx::default();
    cx.run(program);
    let (errors, warnings): (Vec<_>, Vec<_>) = cx.diags.into_iter().partition(|d| d.is_error());
    if !errors.is_empty() {
        let mut diagnostics = errors;
        diagnostics.extend(warnings);
        return Err(CheckError {
            source,
            diagnostics,
        });
    }
    let name = std::path::Path::new(&source.name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cascade = Cascade {
        name,
        source,
        ranks: cx.ranks,
        tensors: cx.tensors,
        einsums: cx.einsums,
        graph: cx.graph,
        inputs: cx.inputs,
        outputs: cx.outputs,
    };
    Ok(Checked { cascade, warnings })
}

fn extents_in(e: &Expr) -> Vec<&Ident> {
    match e {
        Expr::Extent(r) => vec![r],
        Expr::Unary(_, x, _) => extents_in(x),
        Expr::Binary(_, a, b, _) => {
            let mut v = extents_in(a);
            v.extend(extents_in(b));
            v
        }
        _ => vec![],
    }
}

#[derive(Default)]
struct Cx {
    diags: Vec<Diagnostic>,
    ranks: BTreeMap<String, RankInfo>,
    tensors: BTreeMap<String, TensorInfo>,
    einsums: Vec<Einsum>,
    graph: DiGraph<usize, String>,
    inputs: Vec<String>,
    outputs: Vec<String>,
    /// Rank → where an index variable first iterates it.
    iter_uses: BTreeMap<String, (Span, String)>,
    /// Window rank → the first affine index addressing it (span, tensor, index text).
    window_uses: BTreeMap<String, (Span, String, String)>,
    /// Tensors and ranks whose declaring statement was rejected (an Einsum's left-hand
    /// side, a split): later uses fail only because of that error, so they say nothing.
    rejected_tensors: BTreeSet<String>,
    rejected_ranks: BTreeSet<String>,
}

impl Cx {
    fn err(&mut self, span: Span, msg: impl Into<String>, label: impl Into<String>) {
        self.diags.push(Diagnostic::error(span, msg, label));
    }

    fn run(&mut self, p: &Program) {
        // 1. Ranks and inputs.
        for st in &p.stmts {
            if let Stmt::Input(ds) = st {
                for d in ds {
                    self.declare_input(d);
                }
            }
        }
        for st in &p.stmts {
            if let Stmt::Split(s) = st {
                self.declare_split(s);
            }
        }
        // The variables of affine indices declare their ranks when no input does:
        // `O[n,k,p,q] = I[n,c,p+r,q+s] * F[k,c,r,s]` iterates the output extent `P`.
        for st in &p.stmts {
            if let Stmt::Einsum(e) = st {
                for a in e.expr.accesses() {
                    for ix in &a.indices {
                        if matches!(ix, IndexExpr::Affine { .. } | IndexExpr::Shift(..)) {
                            for v in ix.vars() {
                                self.declare_rank(&Ident {
                                    name: rank_of(&v.name),
                                    span: v.span,
                                });
                            }
                        }
                    }
                }
            }
        }
        // 2. Output tensors of Einsums (their dims come from the left-hand side).
        let stmts: Vec<&EinsumStmt> = p
            .stmts
            .iter()
            .filter_map(|s| {
                if let Stmt::Einsum(e) = s {
                    Some(e)
                } else {
                    None
                }
            })
            .collect();
        let mut lhs_ok = vec![false; stmts.len()];
        for (k, e) in stmts.iter().enumerate() {
            lhs_ok[k] = self.declare_output(e, k);
            let name = &e.output.tensor.name;
            if !lhs_ok[k] && !self.tensors.contains_key(name) {
                self.rejected_tensors.insert(name.clone());
            }
        }
        // 3. Inits.
        let mut inits: BTreeMap<String, Span> = BTreeMap::new();
        for st in &p.stmts {
            if let Stmt::Init(items) = st {
                for it in items {
                    // A rejected init was reported: the tensor's "no init" would repeat it.
                    let _ = self.check_init(it);
                    inits.insert(it.target.tensor.name.clone(), it.span);
                }
            }
        }
        // 4. Einsum bodies.
        let mut built: Vec<Option<Einsum>> = Vec::new();
        for (k, e) in stmts.iter().enumerate() {
            built.push(if lhs_ok[k] {
                self.build_einsum(e)
            } else {
                None
            });
        }
        // A window rank's extent follows from its accesses: no variable may iterate it.
        let windows: Vec<(String, (Span, String, String))> = self
            .window_uses
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (rank, (_, tensor, text)) in windows {
            if let Some((span, var)) = self.iter_uses.get(&rank).cloned() {
                self.diags.push(
                    Diagnostic::error(
                        span,
                        format!("`{var}` iterates rank `{rank}`, which `{tensor}` addresses as a window with `{text}`"),
                        "a window rank is never iterated",
                    )
                    .with_note(format!(
                        "the extent of `{rank}` follows from its affine indices; give the window its own rank name"
                    )),
                );
            }
        }
        // 5. Iterative tensors need an init.
        for e in built.iter().flatten() {
            if e.iterative.is_some() && !inits.contains_key(&e.name) {
                let it = e.iterative.clone().unwrap();
                self.diags.push(
                    Diagnostic::error(
                        e.output.span,
                        format!(
                            "iterative rank `{}` of `{}` has no `init`",
                            rank_of(&it),
                            e.name
                        ),
                        format!(
                            "`{}` steps `{}+1` from `{}`, but `{}[..0..]` is never set",
                            e.name, it, it, e.name
                        ),
                    )
                    .with_note(format!(
                        "add e.g. `init {}[...0...] = 0` for the first element",
                        e.name
                    )),
                );
            }
        }
        // 6. Outputs.
        for st in &p.stmts {
            match st {
                Stmt::OutputDecl(names) => {
                    for n in names {
                        match self.tensors.get(&n.name) {
                            Some(t) if t.producer.is_some() => self.mark_output(&n.name),
                            None if self.rejected_tensors.contains(&n.name) => {}
                            Some(_) => self.err(
                                n.span,
                                format!("output `{}` is never written", n.name),
                                "an input, not the result of any Einsum",
                            ),
                            None => self.err(
                                n.span,
                                format!("output `{}` is never written", n.name),
                                "no Einsum writes this tensor",
                            ),
                        }
                    }
                }
                Stmt::Einsum(e) if e.is_output => self.mark_output(&e.output.tensor.name),
                _ => {}
            }
        }
        if self.outputs.is_empty() && !self.diags.iter().any(|d| d.is_error()) {
            let span = stmts.last().map_or(Span::new(0, 0), |e| e.span);
            self.err(
                span,
                "the cascade has no output",
                "mark the result with `output`",
            );
        }
        if self.diags.iter().any(|d| d.is_error()) {
            return;
        }
        let einsums: Vec<Einsum> = built.into_iter().flatten().collect();
        self.order(einsums);
        if self.diags.iter().any(|d| d.is_error()) {
            return;
        }
        self.warn_unused();
    }

    fn declare_rank(&mut self, r: &Ident) {
        self.ranks
            .entry(r.name.clone())
            .or_insert_with(|| RankInfo {
                name: r.name.clone(),
                parent: None,
                parts: vec![],
                span: r.span,
            });
    }

    fn declare_input(&mut self, d: &TensorDecl) {
        if self.tensors.contains_key(&d.name.name) {
            self.err(
                d.name.span,
                format!("tensor `{}` is declared twice", d.name.name),
                "declared again here",
            );
            return;
        }
        for r in &d.ranks {
            self.declare_rank(r);
        }
        let span = d.name.span;
        self.tensors.insert(
            d.name.name.clone(),
            TensorInfo {
                name: d.name.name.clone(),
                dims: d
                    .ranks
                    .iter()
                    .map(|r| Dim {
                        rank: r.name.clone(),
                        iterative: false,
                    })
                    .collect(),
                kind: TensorKind::Input,
                producer: None,
                init: None,
                span,
            },
        );
        self.inputs.push(d.name.name.clone());
    }

    fn declare_split(&mut self, s: &SplitStmt) {
        if self.rejected_ranks.contains(&s.rank.name) {
            self.reject_parts(s); // a part of a rejected split: that error says it
            return;
        }
        if !self.ranks.contains_key(&s.rank.name) {
            self.err(
                s.rank.span,
                format!("split of unknown rank `{}`", s.rank.name),
                "no input has this rank",
            );
            self.reject_parts(s);
            return;
        }
        if !self.ranks[&s.rank.name].parts.is_empty() {
            self.err(
                s.rank.span,
                format!("rank `{}` is split twice", s.rank.name),
                "second split",
            );
            self.reject_parts(s);
            return;
        }
        let mut seen = BTreeSet::new();
        for p in &s.parts {
            if self.ranks.contains_key(&p.name) || !seen.insert(p.name.clone()) {
                self.err(
                    p.span,
                    format!("split part `{}` is already a rank", p.name),
                    "choose a new rank name",
                );
                self.reject_parts(s);
                return;
            }
        }
        for p in &s.parts {
            self.ranks.insert(
                p.name.clone(),
                RankInfo {
                    name: p.name.clone(),
                    parent: Some(s.rank.name.clone()),
                    parts: vec![],
                    span: p.span,
                },
            );
        }
        self.ranks.get_mut(&s.rank.name).unwrap().parts =
            s.parts.iter().map(|p| p.name.clone()).collect();
    }

    /// The new parts of a rejected split: their uses fail only because of it.
    fn reject_parts(&mut self, s: &SplitStmt) {
        for p in &s.parts {
            if !self.ranks.contains_key(&p.name) {
                self.rejected_ranks.insert(p.name.clone());
            }
        }
    }

    fn known_rank(&mut self, id: &Ident) -> bool {
        let r = rank_of(&id.name);
        if self.ranks.contains_key(&r) {
            true
        } else if self.rejected_ranks.contains(&r) {
            false
        } else {
            self.err(
                id.span,
                format!(
                    "index `{}` iterates rank `{r}`, which no input or split declares",
                    id.name
                ),
                "unknown rank",
            );
            false
        }
    }

    fn declare_output(&mut self, e: &EinsumStmt, k: usize) -> bool {
        let name = &e.output.tensor.name;
        if let Some(t) = self.tensors.get(name) {
            let msg = if t.kind == TensorKind::Input {
                format!("Einsum writes input `{name}`")
            } else {
                format!("tensor `{name}` is written by two Einsums")
            };
            self.err(
                e.output.tensor.span,
                msg,
                "each tensor has exactly one writer",
            );
            return false;
        }
        let mut dims = Vec::new();
        let mut seen = BTreeSet::new();
        for ix in &e.output.indices {
            match ix {
                IndexExpr::Var(v) | IndexExpr::Shift(v, _) => {
                    if !self.known_rank(v) {
                        return false;
                    }
                    self.note_iter(v);
                    if !seen.insert(v.name.clone()) {
                        self.err(
                            v.span,
                            format!("index `{}` appears twice on the left", v.name),
                            "repeated",
                        );
                        return false;
                    }
                    let iterative = match ix {
                        IndexExpr::Shift(_, 1) => true,
                        IndexExpr::Shift(_, s) => {
                            self.err(
                                v.span,
                                format!("an iterative rank steps by +1, not +{s}"),
                                "write `+1`",
                            );
                            return false;
                        }
                        _ => false,
                    };
                    dims.push(Dim {
                        rank: rank_of(&v.name),
                        iterative,
                    });
                }
                IndexExpr::Affine { .. } => {
                    self.err(
                        ix.span(),
                        format!(
                            "affine index `{}` on the left-hand side",
                            crate::syntax::printer::index(ix)
                        ),
                        "outputs are written with plain variables",
                    );
                    return false;
                }
                other => {
                    self.err(
                        other.span(),
                        "the left-hand side must be indexed by variables",
                        "not a variable",
                    );
                    return false;
                }
            }
        }
        if dims.iter().filter(|d| d.iterative).count() > 1 {
            self.err(
                e.output.tensor.span,
                "an Einsum may step at most one iterative rank",
                "two `+1` indices",
            );
            return false;
        }
        self.tensors.insert(
            name.clone(),
            TensorInfo {
                name: name.clone(),
                dims,
                kind: TensorKind::Intermediate,
                producer: Some(k),
                init: None,
                span: e.output.tensor.span,
            },
        );
        true
    }

    fn check_init(&mut self, it: &InitStmt) -> bool {
        let name = &it.target.tensor.name;
        let Some(t) = self.tensors.get(name).cloned() else {
            if self.rejected_tensors.contains(name) {
                return false;
            }
            self.err(
                it.target.tensor.span,
                format!("unknown tensor `{name}` in `init`"),
                "not written by any Einsum",
            );
            return false;
        };
        if !t.dims.iter().any(|d| d.iterative) {
            self.err(
                it.target.tensor.span,
                format!("`init` of `{name}`, which has no iterative rank"),
                "only tensors written as `X[r+1,..] = ..` take an init",
            );
            return false;
        }
        if it.target.indices.len() != t.dims.len() {
            self.err(
                it.target.tensor.span,
                format!(
                    "`{name}` has {} ranks but the init gives {} indices",
                    t.dims.len(),
                    it.target.indices.len()
                ),
                "wrong number of indices",
            );
            return false;
        }
        for (ix, d) in it.target.indices.iter().zip(&t.dims) {
            let ok = match (ix, d.iterative) {
                (IndexExpr::Const(0, _), true) => true,
                (IndexExpr::Var(v), false) => rank_of(&v.name) == d.rank,
                _ => false,
            };
            if !ok {
                let want = if d.iterative {
                    "0".to_string()
                } else {
                    var_of(&d.rank)
                };
                self.err(
                    ix.span(),
                    format!(
                        "init index for rank `{}` of `{name}` must be `{want}`",
                        d.rank
                    ),
                    "here",
                );
                return false;
            }
        }
        self.tensors.get_mut(name).unwrap().init = Some(it.value);
        true
    }

    /// Match an access's indices against its tensor's dims.
    fn resolve(&mut self, a: &Access, writer: Option<&str>) -> Option<ResolvedAccess> {
        let name = &a.tensor.name;
        let Some(t) = self.tensors.get(name).cloned() else {
            if self.rejected_tensors.contains(name) {
                return None;
            }
            self.err(
                a.tensor.span,
                format!("unknown tensor `{name}`"),
                "not an input and not written by any Einsum",
            );
            return None;
        };
        let mut dims = Vec::new();
        let mut j = 0usize;
        let end_span = a.indices.last().map_or(a.tensor.span, |i| i.span());
        let ranks_text = t
            .dims
            .iter()
            .map(|d| d.rank.clone())
            .collect::<Vec<_>>()
            .join(",");
        for (pos, d) in t.dims.iter().enumerate() {
            let Some(ix) = a.indices.get(j) else {
                self.err(
                    end_span,
                    format!(
                        "`{name}[{ranks_text}]` has {} ranks but is accessed with {} indices",
                        t.dims.len(),
                        a.indices.len()
                    ),
                    format!("missing index for rank `{}`", d.rank),
                );
                return None;
            };
            let inconsistent = |cx: &mut Cx, got: &str| {
                cx.err(
                    ix.span(),
                    format!("index used with inconsistent rank: `{got}` at position {} of `{name}[{ranks_text}]`", pos + 1),
                    format!("this position has rank `{}`", d.rank),
                );
            };
            match ix {
                IndexExpr::Const(c, _) => {
                    if !(d.iterative && *c == 0) {
                        self.err(
                            ix.span(),
                            "constant index outside an iterative rank's init",
                            "only `0` of an iterative rank, in `init`",
                        );
                        return None;
                    }
                    dims.push(DimIndex::Const(*c));
                    j += 1;
                }
                IndexExpr::Last(r) => {
                    if r.name != d.rank {
                        inconsistent(self, &r.name);
                        return None;
                    }
                    if !d.iterative {
                        self.err(
                            r.span,
                            format!("`{}` selects the final element, but rank `{}` of `{name}` is not iterative", r.name, d.rank),
                            "only iterative ranks have a final element",
                        );
                        return None;
                    }
                    dims.push(DimIndex::Last);
                    j += 1;
                }
                IndexExpr::Affine { terms, offset, .. } => {
                    let di = self.resolve_affine(ix, terms, *offset, d, &t)?;
                    dims.push(di);
                    j += 1;
                }
                IndexExpr::Var(v) | IndexExpr::Shift(v, _) => {
                    if !self.known_rank(v) {
                        return None;
                    }
                    let vr = rank_of(&v.name);
                    let shift = if let IndexExpr::Shift(_, s) = ix {
                        *s
                    } else {
                        0
                    };
                    if vr == d.rank {
                        if shift != 0 && !d.iterative {
                            self.err(
                                ix.span(),
                                format!(
                                    "`{}+{shift}` on rank `{}` of `{name}`, which is not iterative",
                                    v.name, d.rank
                                ),
                                "out of range",
                            );
                            return None;
                        }
                        if shift > 1 {
                            self.err(
                                ix.span(),
                                "an iterative rank is read at `r` or `r+1` only",
                                "out of range",
                            );
                            return None;
                        }
                        if writer == Some(name.as_str()) && shift != 0 {
                            self.err(
                                ix.span(),
                                format!("dependency cycle: `{name}` reads `{}+{shift}`, the element it is writing", v.name),
                                "read the previous element instead",
                            );
                            return None;
                        }
                        self.note_iter(v);
                        dims.push(DimIndex::Var {
                            var: v.name.clone(),
                            shift,
                        });
                        j += 1;
                        continue;
                    }
                    if shift != 0 {
                        // `t+3` on another rank: a one-term affine index (a window).
                        let term = AffineTerm {
                            coef: 1,
                            var: v.clone(),
                            span: v.span,
                        };
                        let di = self.resolve_affine(ix, &[term], shift, d, &t)?;
                        dims.push(di);
                        j += 1;
                        continue;
                    }
                    let parts = self
                        .ranks
                        .get(&d.rank)
                        .map(|r| r.parts.clone())
                        .unwrap_or_default();
                    if !parts.is_empty() && parts[0] == vr && shift == 0 {
                        let mut vars = Vec::new();
                        for (k, p) in parts.iter().enumerate() {
                            match a.indices.get(j + k) {
                                Some(IndexExpr::Var(v2)) if rank_of(&v2.name) == *p => {
                                    self.note_iter(v2);
                                    vars.push(v2.name.clone())
                                }
                                Some(other) => {
                                    self.err(
                                        other.span(),
                                        format!("rank `{}` of `{name}` is split into {}; expected index `{}` here", d.rank, parts.join("*"), var_of(p)),
                                        "index used with inconsistent rank",
                                    );
                                    return None;
                                }
                                None => {
                                    self.err(
                                        end_span,
                                        format!(
                                            "split rank `{}` needs indices {}",
                                            d.rank,
                                            parts
                                                .iter()
                                                .map(|p| var_of(p))
                                                .collect::<Vec<_>>()
                                                .join(",")
                                        ),
                                        "missing",
                                    );
                                    return None;
                                }
                            }
                        }
                        j += parts.len();
                        dims.push(DimIndex::Split { vars });
                        continue;
                    }
                    inconsistent(self, &v.name);
                    return None;
                }
            }
        }
        if j < a.indices.len() {
            self.err(
                a.indices[j].span(),
                format!(
                    "`{name}[{ranks_text}]` has {} ranks but is accessed with {} indices",
                    t.dims.len(),
                    a.indices.len()
                ),
                "extra index",
            );
            return None;
        }
        // An Einsum may read its own output only at earlier elements of its
        // iterative rank (`R[m1]` or `R[0]` while writing `R[m1+1]`).
        if writer == Some(name.as_str()) {
            let earlier = t.dims.iter().zip(&dims).any(|(d, di)| {
                d.iterative && matches!(di, DimIndex::Var { shift: 0, .. } | DimIndex::Const(0))
            });
            if !earlier {
                self.err(
                    a.tensor.span,
                    format!("dependency cycle: `{name}` reads its own result"),
                    "only earlier elements of an iterative rank may be read",
                );
                return None;
            }
        }
        Some(ResolvedAccess {
            tensor: name.clone(),
            dims,
            span: a.tensor.span,
        })
    }

    /// Remember where a variable first iterates its rank (for the window-rank check).
    fn note_iter(&mut self, v: &Ident) {
        self.iter_uses
            .entry(rank_of(&v.name))
            .or_insert_with(|| (v.span, v.name.clone()));
    }

    /// Check an affine index (`p+r`, `2*p+r`, `t+3`) against the dimension it addresses.
    fn resolve_affine(
        &mut self,
        ix: &IndexExpr,
        terms: &[AffineTerm],
        offset: i64,
        d: &Dim,
        t: &TensorInfo,
    ) -> Option<DimIndex> {
        let text = crate::syntax::printer::index(ix);
        let name = &t.name;
        if d.iterative {
            self.err(
                ix.span(),
                format!(
                    "affine index `{text}` on iterative rank `{}` of `{name}`",
                    d.rank
                ),
                format!(
                    "an iterative rank is read at `{0}`, `{0}+1`, `0` or `{1}`",
                    var_of(&d.rank),
                    d.rank
                ),
            );
            return None;
        }
        if let Some(parts) = self.ranks.get(&d.rank).map(|r| r.parts.clone()) {
            if !parts.is_empty() {
                self.err(
                    ix.span(),
                    format!(
                        "affine index `{text}` on rank `{}` of `{name}`, which is split into {}",
                        d.rank,
                        parts.join("*")
                    ),
                    format!(
                        "a split rank is addressed by its parts ({})",
                        parts
                            .iter()
                            .map(|p| var_of(p))
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                );
                return None;
            }
        }
        if t.kind != TensorKind::Input {
            self.err(
                ix.span(),
                format!("affine index `{text}` into `{name}`, which is not an input"),
                "affine indices read windows of input tensors",
            );
            return None;
        }
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut out = Vec::new();
        for term in terms {
            let v = &term.var;
            if term.coef == 0 {
                self.err(
                    term.span,
                    format!("zero coefficient in affine index `{text}`"),
                    "coefficients are integers ≥ 1",
                );
                return None;
            }
            if term.coef < 0 {
                self.err(
                    term.span,
                    format!("negative coefficient in affine index `{text}`"),
                    "coefficients are integers ≥ 1",
                );
                return None;
            }
            if !seen.insert(v.name.as_str()) {
                self.err(
                    term.span,
                    format!("`{}` appears twice in affine index `{text}`", v.name),
                    format!("write a coefficient instead (e.g. `2*{}`)", v.name),
                );
                return None;
            }
            if !self.known_rank(v) {
                return None;
            }
            let vr = rank_of(&v.name);
            let info = &self.ranks[&vr];
            if let Some(parent) = info.parent.clone() {
                self.err(
                    term.span,
                    format!(
                        "`{}` in affine index `{text}` iterates `{vr}`, a part of split rank `{parent}`",
                        v.name
                    ),
                    "affine indices use ranks that are not split",
                );
                return None;
            }
            if !info.parts.is_empty() {
                self.err(
                    term.span,
                    format!(
                        "`{}` in affine index `{text}` iterates `{vr}`, which is split into {}",
                        v.name,
                        info.parts.join("*")
                    ),
                    "affine indices use ranks that are not split",
                );
                return None;
            }
            if self
                .tensors
                .values()
                .any(|x| x.dims.iter().any(|dd| dd.iterative && dd.rank == vr))
            {
                self.err(
                    term.span,
                    format!(
                        "`{}` in affine index `{text}` iterates `{vr}`, an iterative rank",
                        v.name
                    ),
                    format!(
                        "an iterative rank is stepped by `{}+1`, never read through a window",
                        v.name
                    ),
                );
                return None;
            }
            if vr == d.rank {
                self.err(
                    ix.span(),
                    format!(
                        "index used with inconsistent rank: affine index `{text}` on rank `{}` of `{name}`, which its own variable `{}` iterates",
                        d.rank, v.name
                    ),
                    format!(
                        "a window has a rank of its own (e.g. `input {name}[..H..]`), never `{}`",
                        d.rank
                    ),
                );
                return None;
            }
            out.push((v.name.clone(), term.coef));
        }
        if offset < 0 {
            let zeros: Vec<&str> = terms.iter().map(|t| t.var.name.as_str()).collect();
            self.err(
                ix.span(),
                format!(
                    "affine index `{text}` reads element {offset} of `{name}` at {} = 0",
                    zeros.join(" = ")
                ),
                "indices start at 0",
            );
            self.diags.last_mut().expect("just pushed").notes.push(
                "pad the input instead: declare its rank longer and shift the window right (`t+k` instead of `t+k-1`)".into(),
            );
            return None;
        }
        for term in terms {
            self.note_iter(&term.var);
        }
        self.window_uses
            .entry(d.rank.clone())
            .or_insert_with(|| (ix.span(), name.clone(), text.clone()));
        Some(DimIndex::Affine { terms: out, offset })
    }

    fn build_einsum(&mut self, e: &EinsumStmt) -> Option<Einsum> {
        let name = e.output.tensor.name.clone();
        let output = self.resolve(&e.output, None)?;
        let mut accesses = Vec::new();
        let mut ok = true;
        for a in e.expr.accesses() {
            match self.resolve(a, Some(&name)) {
                Some(r) => accesses.push(r),
                None => ok = false,
            }
        }
        let mask = match &e.mask {
            Some(m) => {
                if let Some(ix) = m
                    .indices
                    .iter()
                    .find(|ix| matches!(ix, IndexExpr::Affine { .. }))
                {
                    self.err(
                        ix.span(),
                        format!(
                            "affine index `{}` in a `where` mask",
                            crate::syntax::printer::index(ix)
                        ),
                        "a mask selects iteration points by plain variables",
                    );
                    return None;
                }
                match self.resolve(m, Some(&name)) {
                    Some(r) => Some(r),
                    None => return None,
                }
            }
            None => None,
        };
        if !ok {
            return None;
        }
        let out_vars = output.vars();
        let mut vars = out_vars.clone();
        let mut reduced = Vec::new();
        for a in &accesses {
            for v in a.vars() {
                if !vars.contains(&v) {
                    vars.push(v.clone());
                    reduced.push(v);
                }
            }
        }
        if let Some(m) = &mask {
            for v in m.vars() {
                if !vars.contains(&v) {
                    self.err(
                        m.span,
                        format!("mask index `{v}` is not in the Einsum's iteration space"),
                        "masks select iteration points",
                    );
                    return None;
                }
            }
        }
        for r in extents_in(&e.expr) {
            if !self.ranks.contains_key(&r.name) {
                if self.rejected_ranks.contains(&r.name) {
                    return None;
                }
                self.err(
                    r.span,
                    format!("`size({})` of unknown rank", r.name),
                    "no input or split declares it",
                );
                return None;
            }
        }
        let reduce = match &e.reduction {
            Reduction::Implicit => {
                if reduced.is_empty() {
                    Reduce::None
                } else {
                    Reduce::Op(ReduceOp::Sum)
                }
            }
            Reduction::Explicit(op, listed, span) => {
                let listed_set: BTreeSet<&str> = listed.iter().map(|v| v.name.as_str()).collect();
                let red_set: BTreeSet<&str> = reduced.iter().map(|v| v.as_str()).collect();
                if listed_set != red_set {
                    self.err(
                        *span,
                        format!(
                            "`{}[{}]` does not match the reduced indices {{{}}}",
                            op.name(),
                            listed
                                .iter()
                                .map(|v| v.name.as_str())
                                .collect::<Vec<_>>()
                                .join(","),
                            reduced.join(",")
                        ),
                        "reduced indices are those on the right that are absent on the left",
                    );
                    return None;
                }
                Reduce::Op(*op)
            }
            Reduction::TopK(v, k, span) => {
                if !out_vars.contains(&v.name) || !reduced.is_empty() {
                    self.err(
                        *span,
                        format!(
                            "`topk[{}, {k}]` needs `{}` on the left and no reduced index",
                            v.name, v.name
                        ),
                        "top-k keeps the rank",
                    );
                    return None;
                }
                if *k == 0 {
                    self.err(*span, "top-k needs k ≥ 1", "k = 0");
                    return None;
                }
                Reduce::TopK {
                    var: v.name.clone(),
                    k: *k,
                }
            }
        };
        let iterative = output.dims.iter().find_map(|d| match d {
            DimIndex::Var { var, shift: 1 } => Some(var.clone()),
            _ => None,
        });
        Some(Einsum {
            name,
            output,
            reduce,
            vars,
            reduced,
            iterative,
            expr: e.expr.clone(),
            accesses,
            mask,
            group: None,
            span: e.span,
            source_output: e.output.clone(),
        })
    }

    fn mark_output(&mut self, name: &str) {
        if let Some(t) = self.tensors.get_mut(name) {
            t.kind = TensorKind::Output;
        }
        if !self.outputs.iter().any(|o| o == name) {
            self.outputs.push(name.to_string());
        }
    }

    /// Build the dependency graph and order the Einsums.
    ///
    /// Einsums that step the same iterative rank may depend on each other through
    /// earlier elements (`SPNV[m1]` reads `RNV[m1]`, `RNV[m1+1]` reads `SPNV[m1]`):
    /// such a strongly connected set is a *recurrence group*, legal when every member
    /// keeps the iterative variable in its output and the group is acyclic once the
    /// reads of earlier elements are set aside. Any other cycle is an error.
    fn order(&mut self, einsums: Vec<Einsum>) {
        let mut g: DiGraph<usize, String> = DiGraph::new();
        let nodes: Vec<NodeIndex> = (0..einsums.len()).map(|k| g.add_node(k)).collect();
        let by_name: BTreeMap<&str, usize> = einsums
            .iter()
            .enumerate()
            .map(|(k, e)| (e.name.as_str(), k))
            .collect();
        let mut back: BTreeSet<(usize, usize)> = BTreeSet::new();
        for (k, e) in einsums.iter().enumerate() {
            for a in e.accesses.iter().chain(e.mask.iter()) {
                if a.tensor == e.name {
                    continue; // a recurrence over its own iterative rank (checked in resolve)
                }
                let Some(&p) = by_name.get(a.tensor.as_str()) else {
                    continue;
                };
                if g.find_edge(nodes[p], nodes[k]).is_none() {
                    g.add_edge(nodes[p], nodes[k], a.tensor.clone());
                }
                // Reading element `v` of a tensor written at `v+1` looks back one step.
                if let Some(v) = &einsums[p].iterative {
                    let earlier = a
                        .dims
                        .iter()
                        .any(|d| matches!(d, DimIndex::Var { var, shift: 0 } if var == v));
                    let later = a
                        .dims
                        .iter()
                        .any(|d| matches!(d, DimIndex::Var { var, shift: 1 } if var == v));
                    if earlier && !later {
                        back.insert((p, k));
                    }
                }
            }
        }
        let mut sccs = petgraph::algo::tarjan_scc(&g);
        sccs.reverse(); // tarjan_scc yields reverse topological order
        let mut order: Vec<usize> = Vec::new();
        let mut group_of: BTreeMap<usize, usize> = BTreeMap::new();
        let mut n_groups = 0;
        for scc in &sccs {
            let members: Vec<usize> = scc.iter().map(|n| g[*n]).collect();
            if members.len() == 1 {
                order.push(members[0]);
                continue;
            }
            let names: Vec<&str> = members.iter().map(|&m| einsums[m].name.as_str()).collect();
            let iter_vars: BTreeSet<&str> = members
                .iter()
                .filter_map(|&m| einsums[m].iterative.as_deref())
                .collect();
            let first = *members.iter().min().unwrap();
            let legal = iter_vars.len() == 1 && {
                let v = *iter_vars.iter().next().unwrap();
                members
                    .iter()
                    .all(|&m| einsums[m].output.vars().iter().any(|x| x == v))
            };
            if !legal {
                self.err(
                    einsums[first].output.span,
                    format!("dependency cycle between Einsums {}", names.join(" → ")),
                    "this Einsum depends on its own result",
                );
                return;
            }
            // Order inside the group, ignoring reads of earlier elements.
            let mut sub: DiGraph<usize, ()> = DiGraph::new();
            let sn: BTreeMap<usize, NodeIndex> =
                members.iter().map(|&m| (m, sub.add_node(m))).collect();
            for &a in &members {
                for &b in &members {
                    if a != b
                        && g.find_edge(nodes[a], nodes[b]).is_some()
                        && !back.contains(&(a, b))
                    {
                        sub.add_edge(sn[&a], sn[&b], ());
                    }
                }
            }
            match toposort(&sub, None) {
                Ok(o) => {
                    for n in o {
                        group_of.insert(sub[n], n_groups);
                        order.push(sub[n]);
                    }
                    n_groups += 1;
                }
                Err(cycle) => {
                    let e = &einsums[sub[cycle.node_id()]];
                    self.err(
                        e.output.span,
                        format!("dependency cycle between Einsums {}", names.join(" → ")),
                        "depends on the element it writes in the same step",
                    );
                    return;
                }
            }
        }
        let old_to_new: BTreeMap<usize, usize> = order
            .iter()
            .enumerate()
            .map(|(new, &old)| (old, new))
            .collect();
        let mut slots: Vec<Option<Einsum>> = einsums.into_iter().map(Some).collect();
        self.einsums = order
            .iter()
            .map(|&old| {
                let mut e = slots[old].take().unwrap();
                e.group = group_of.get(&old).copied();
                e
            })
            .collect();
        let mut g2: DiGraph<usize, String> = DiGraph::new();
        let n2: Vec<NodeIndex> = (0..self.einsums.len()).map(|k| g2.add_node(k)).collect();
        for ei in g.edge_indices() {
            let (a, b) = g.edge_endpoints(ei).unwrap();
            g2.add_edge(n2[old_to_new[&g[a]]], n2[old_to_new[&g[b]]], g[ei].clone());
        }
        for (k, e) in self.einsums.iter().enumerate() {
            self.tensors.get_mut(&e.name).unwrap().producer = Some(k);
        }
        self.graph = g2;
    }

    fn warn_unused(&mut self) {
        let mut read: BTreeSet<String> = BTreeSet::new();
        for e in &self.einsums {
            for t in e.reads() {
                if t != e.name {
                    read.insert(t.to_string());
                }
            }
        }
        for i in &self.inputs {
            if !read.contains(i) {
                let span = self.tensors[i].span;
                self.diags.push(Diagnostic::warning(
                    span,
                    format!("unused input `{i}`"),
                    "never read by any Einsum",
                ));
            }
        }
        for e in &self.einsums {
            if !read.contains(&e.name) && !self.outputs.contains(&e.name) {
                self.diags.push(Diagnostic::warning(
                    e.output.span,
                    format!("`{}` is computed but never read", e.name),
                    "dead Einsum: not read and not an output",
                ));
            }
        }
    }
}
