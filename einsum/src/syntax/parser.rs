//! nom 8 parser for `.ein` cascade files.
//!
//! Grammar (statements end at a newline or `;`; `#` starts a comment):
//! ```text
//! stmt    := 'input' decl (',' decl)*
//!          | 'split' RANK '=' RANK ('*' RANK)+
//!          | 'init' access '=' number (';' access '=' number)*
//!          | 'output' NAME (',' NAME)*
//!          | ['output'] access '=' [reduce] expr ['where' access]
//! decl    := NAME '[' RANK (',' RANK)* ']'
//! access  := NAME ['[' index (',' index)* ']']
//! index   := INT | RANK | term (('+'|'-') (term | INT))*   (RANK = final element of an
//!            iterative rank; `p`, `m1+1`, `p+r`, `2*p+r`, `t+k-1`)
//! term    := [INT '*'] var
//! reduce  := ('sum'|'max'|'min'|'prod') '[' var (',' var)* ']' | 'topk' '[' var ',' INT ']'
//! expr    := term (('+'|'-') term)* ; term := unary (('*'|'/') unary)*
//! unary   := '-' unary | NUMBER | 'inf' | FUNC '(' expr [',' expr] ')' | access | '(' expr ')'
//! ```
//! Ranks are upper case (`M1`), index variables are the same name in lower case (`m1`).

use super::ast::*;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{char, digit1};
use nom::combinator::{opt, recognize};
use nom::error::{ErrorKind, ParseError};
use nom::sequence::pair;
use nom::{IResult, Parser};
use std::cell::Cell;

thread_local! {
    static BASE_LEN: Cell<usize> = const { Cell::new(0) };
}

fn pos(rest: &str) -> usize {
    BASE_LEN.with(|b| b.get()) - rest.len()
}

/// A parse failure: where (remaining input) and what was expected.
#[derive(Debug, Clone)]
pub struct PErr<'a> {
    pub rest: &'a str,
    pub msg: String,
}

impl<'a> ParseError<&'a str> for PErr<'a> {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        PErr {
            rest: input,
            msg: String::new(),
        }
    }
    fn append(_: &'a str, _: ErrorKind, other: Self) -> Self {
        other
    }
    fn or(self, other: Self) -> Self {
        // Keep the error that got furthest into the input.
        if other.rest.len() <= self.rest.len() {
            other
        } else {
            self
        }
    }
}

type R<'a, T> = IResult<&'a str, T, PErr<'a>>;

fn fail<'a, T>(rest: &'a str, msg: impl Into<String>) -> R<'a, T> {
    Err(nom::Err::Failure(PErr {
        rest,
        msg: msg.into(),
    }))
}

/// Spaces, tabs and comments — never newlines (they end statements).
fn ws(i: &str) -> R<'_, ()> {
    let mut i = i;
    loop {
        let (r, _) = take_while(|c| c == ' ' || c == '\t' || c == '\r')(i)?;
        i = r;
        if i.starts_with('#') {
            let (r, _) = take_while(|c| c != '\n')(i)?;
            i = r;
        } else if i.starts_with("\\\n") {
            i = &i[2..]; // line continuation
        } else {
            return Ok((i, ()));
        }
    }
}

fn sym<'a>(s: &'static str) -> impl FnMut(&'a str) -> R<'a, &'a str> {
    move |i: &'a str| {
        let (i, _) = ws(i)?;
        tag(s).parse(i)
    }
}

/// Require `s` next; otherwise a hard error "expected `s` <what>".
fn expect<'a>(s: &'static str, what: &'static str) -> impl FnMut(&'a str) -> R<'a, &'a str> {
    move |i: &'a str| {
        let (i, _) = ws(i)?;
        match tag::<_, _, PErr>(s).parse(i) {
            Ok(ok) => Ok(ok),
            Err(_) => fail(i, format!("expected `{s}` {what}, found {}", found(i))),
        }
    }
}

pub(crate) fn found(i: &str) -> String {
    match i.chars().next() {
        None => "end of file".into(),
        Some('\n') => "end of line".into(),
        Some(_) => {
            let tok: String = i
                .chars()
                .take_while(|c| !c.is_whitespace())
                .take(12)
                .collect();
            format!("`{tok}`")
        }
    }
}

fn raw_ident(i: &str) -> R<'_, &str> {
    recognize(pair(
        take_while1(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '_'),
    ))
    .parse(i)
}

fn ident(i: &str) -> R<'_, Ident> {
    let (i, _) = ws(i)?;
    let start = pos(i);
    let (r, name) = raw_ident(i)?;
    Ok((
        r,
        Ident {
            name: name.to_string(),
            span: Span::new(start, pos(r)),
        },
    ))
}

fn is_rank_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn is_var_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn rank(i: &str) -> R<'_, Ident> {
    let (i, _) = ws(i)?;
    let (r, id) = match ident(i) {
        Ok(ok) => ok,
        Err(_) => {
            return fail(
                i,
                format!("expected a rank name (e.g. `M`), found {}", found(i)),
            )
        }
    };
    if !is_rank_name(&id.name) {
        return fail(
            i,
            format!("rank names are upper case (e.g. `M1`), found `{}`", id.name),
        );
    }
    Ok((r, id))
}

fn var(i: &str) -> R<'_, Ident> {
    let (i, _) = ws(i)?;
    let (r, id) = match ident(i) {
        Ok(ok) => ok,
        Err(_) => {
            return fail(
                i,
                format!("expected an index variable (e.g. `m`), found {}", found(i)),
            )
        }
    };
    if !is_var_name(&id.name) {
        return fail(
            i,
            format!(
                "index variables are lower case (e.g. `m1`), found `{}`",
                id.name
            ),
        );
    }
    Ok((r, id))
}

fn int(i: &str) -> R<'_, i64> {
    let (i, _) = ws(i)?;
    let (r, d) = digit1(i)?;
    match d.parse::<i64>() {
        Ok(v) => Ok((r, v)),
        Err(_) => fail(i, "integer too large"),
    }
}

fn number(i: &str) -> R<'_, f64> {
    let (i, _) = ws(i)?;
    let (r, neg) = opt(char('-')).parse(i)?;
    let (r2, _) = ws(r)?;
    if let Ok((r3, _)) = tag::<_, _, PErr>("inf").parse(r2) {
        if !r3.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            return Ok((
                r3,
                if neg.is_some() {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                },
            ));
        }
    }
    let (r, text) = recognize((
        digit1,
        opt(pair(char('.'), digit1)),
        opt((
            alt((char('e'), char('E'))),
            opt(alt((char('+'), char('-')))),
            digit1,
        )),
    ))
    .parse(r)?;
    let v: f64 = text.parse().map_err(|_| {
        nom::Err::Failure(PErr {
            rest: i,
            msg: "bad number".into(),
        })
    })?;
    Ok((r, if neg.is_some() { -v } else { v }))
}

/// `[INT '*'] var`: one term of an affine index; `sign` is the `+`/`-` before it.
fn affine_term(i: &str, sign: i64) -> R<'_, AffineTerm> {
    let (i, _) = ws(i)?;
    let start = pos(i);
    let (r, coef) = match int(i) {
        Ok((r, c)) => {
            let (r, _) = expect("*", "between a coefficient and its variable (e.g. `2*p`)")(r)?;
            (r, c)
        }
        Err(_) => (i, 1),
    };
    let (r, v) = var(r)?;
    Ok((
        r,
        AffineTerm {
            coef: sign * coef,
            var: v,
            span: Span::new(start, pos(r)),
        },
    ))
}

fn index(i: &str) -> R<'_, IndexExpr> {
    let (i, _) = ws(i)?;
    let start = pos(i);
    if let Ok((r, v)) = int(i) {
        let (rw, _) = ws(r)?;
        if !rw.starts_with('*') {
            if rw.starts_with('+') || rw.starts_with('-') {
                return fail(
                    rw,
                    "an index starts with its variables; write the constant last (e.g. `p+1`)",
                );
            }
            return Ok((r, IndexExpr::Const(v, Span::new(start, pos(r)))));
        }
    } else {
        let Ok((r, id)) = ident(i) else {
            let msg = "expected an index (e.g. `m`, `m1+1`, `p+r`, `2*p+r`, `0` or `M1`)";
            return fail(i, format!("{msg}, found {}", found(i)));
        };
        if is_rank_name(&id.name) {
            return Ok((r, IndexExpr::Last(id)));
        }
        if !is_var_name(&id.name) {
            return fail(
                i,
                format!(
                    "index variables are lower case and ranks upper case, found `{}`",
                    id.name
                ),
            );
        }
    }
    // An affine combination: term (('+'|'-') (term | INT))*.
    let (mut r, first) = affine_term(i, 1)?;
    let mut terms = vec![first];
    let mut offset: i64 = 0;
    loop {
        let (rw, _) = ws(r)?;
        let sign = match rw.chars().next() {
            Some('+') => 1,
            Some('-') => -1,
            _ => break,
        };
        let (after, _) = ws(&rw[1..])?;
        if let Ok((r2, k)) = int(after) {
            let (r2w, _) = ws(r2)?;
            if !r2w.starts_with('*') {
                // i64::MIN has no printable negation; refuse it with the overflows.
                match offset.checked_add(sign * k).filter(|&o| o != i64::MIN) {
                    Some(o) => offset = o,
                    None => return fail(after, "index constant too large"),
                }
                r = r2;
                continue;
            }
        } else if ident(after).is_err() {
            return fail(
                after,
                format!(
                    "expected an index variable or an integer after `{}` in an index, found {}",
                    if sign > 0 { '+' } else { '-' },
                    found(after)
                ),
            );
        }
        let (r2, mut t) = affine_term(after, sign)?;
        if sign < 0 {
            t.span.start = pos(rw); // `-r`: the sign belongs to the term
        }
        terms.push(t);
        r = r2;
    }
    // Classify by value: `p` and `p+k` keep their own variants (see `IndexExpr`).
    if terms.len() == 1 && terms[0].coef == 1 && offset >= 0 {
        let v = terms.pop().expect("one term").var;
        return Ok((
            r,
            if offset == 0 {
                IndexExpr::Var(v)
            } else {
                IndexExpr::Shift(v, offset)
            },
        ));
    }
    Ok((
        r,
        IndexExpr::Affine {
            terms,
            offset,
            span: Span::new(start, pos(r)),
        },
    ))
}

fn comma_list<'a, T>(
    mut item: impl FnMut(&'a str) -> R<'a, T>,
    close: &'static str,
    what: &'static str,
) -> impl FnMut(&'a str) -> R<'a, Vec<T>> {
    move |i: &'a str| {
        let mut out = Vec::new();
        let (mut i, first) = item(i)?;
        out.push(first);
        loop {
            if let Ok((r, _)) = sym(",").parse(i) {
                let (r, it) = item(r)?;
                out.push(it);
                i = r;
            } else {
                let (r, _) = expect(close, what)(i)?;
                return Ok((r, out));
            }
        }
    }
}

fn access(i: &str) -> R<'_, Access> {
    let (r, tensor) = ident(i)?;
    if let Ok((r2, _)) = sym("[").parse(r) {
        let (r3, indices) = comma_list(index, "]", "to close the index list")(r2)?;
        return Ok((r3, Access { tensor, indices }));
    }
    Ok((
        r,
        Access {
            tensor,
            indices: vec![],
        },
    ))
}

/// How deep an expression may nest: parentheses, calls and signs inside one another, and
/// the depth of the tree a chain of operators builds (`a + b + c` is two levels). Checking,
/// printing, analysis and evaluation walk expressions recursively; this keeps them (and the
/// parser) far from the stack's end, and real cascades far below it.
pub const MAX_EXPR_DEPTH: usize = 256;

/// An expression and the depth of its tree (a leaf is 1).
type RE<'a> = R<'a, (Expr, usize)>;

fn too_deep<T>(i: &str) -> R<'_, T> {
    fail(
        i,
        format!(
            "expression nested more than {MAX_EXPR_DEPTH} levels deep \
             (parentheses, calls and signs); split it into several Einsums"
        ),
    )
}

fn primary(i: &str, level: usize) -> RE<'_> {
    let (i, _) = ws(i)?;
    let start = pos(i);
    if i.starts_with('(') {
        let (r, _) = sym("(").parse(i)?;
        let (r, e) = expr_at(r, level + 1)?;
        let (r, _) = expect(")", "to close the parenthesis")(r)?;
        return Ok((r, e));
    }
    if let Ok((r, v)) = number(i) {
        return Ok((r, (Expr::Num(v, Span::new(start, pos(r))), 1)));
    }
    let (r, id) = match ident(i) {
        Ok(ok) => ok,
        Err(_) => return fail(i, format!("expected an expression, found {}", found(i))),
    };
    let (r_ws, _) = ws(r)?;
    if r_ws.starts_with('(') && id.name == "size" {
        let (r, _) = sym("(").parse(r)?;
        let (r, rk) = rank(r)?;
        let (r, _) = expect(")", "to close `size(RANK)`")(r)?;
        return Ok((r, (Expr::Extent(rk), 1)));
    }
    if r_ws.starts_with('(') {
        let (r, _) = sym("(").parse(r)?;
        let (r, args) = comma_list(|i| expr_at(i, level + 1), ")", "to close the call")(r)?;
        let span = Span::new(start, pos(r));
        let depth = 1 + args.iter().map(|a| a.1).max().unwrap_or(0);
        if depth > MAX_EXPR_DEPTH {
            return too_deep(i);
        }
        let name = id.name.as_str();
        let bin = match name {
            "max" => Some(BinOp::Max),
            "min" => Some(BinOp::Min),
            _ => None,
        };
        if let Some(op) = bin {
            if args.len() != 2 {
                return fail(
                    i,
                    format!("`{name}(..)` takes 2 arguments, found {}", args.len()),
                );
            }
            let mut it = args.into_iter().map(|a| a.0);
            let (a, b) = (it.next().unwrap(), it.next().unwrap());
            return Ok((r, (Expr::Binary(op, Box::new(a), Box::new(b), span), depth)));
        }
        let Some(op) = UnOp::from_name(name) else {
            return fail(
                i,
                format!(
                    "unknown function `{name}`; known: max, min, {}",
                    UnOp::ALL.map(|u| u.name()).join(", ")
                ),
            );
        };
        if args.len() != 1 {
            return fail(
                i,
                format!("`{name}(..)` takes 1 argument, found {}", args.len()),
            );
        }
        let arg = args.into_iter().next().unwrap().0;
        return Ok((r, (Expr::Unary(op, Box::new(arg), span), depth)));
    }
    access(i).map(|(r, a)| (r, (Expr::Access(a), 1)))
}

fn unary(i: &str, level: usize) -> RE<'_> {
    let (i, _) = ws(i)?;
    if level > MAX_EXPR_DEPTH {
        return too_deep(i);
    }
    let start = pos(i);
    if let Ok((r, v)) = number(i) {
        return Ok((r, (Expr::Num(v, Span::new(start, pos(r))), 1)));
    }
    if i.starts_with('-') {
        let (r, _) = sym("-").parse(i)?;
        let (r, (e, d)) = unary(r, level + 1)?;
        if d + 1 > MAX_EXPR_DEPTH {
            return too_deep(i);
        }
        return Ok((
            r,
            (
                Expr::Unary(UnOp::Neg, Box::new(e), Span::new(start, pos(r))),
                d + 1,
            ),
        ));
    }
    primary(i, level)
}

fn binary_chain<'a>(
    i: &'a str,
    level: usize,
    next: fn(&'a str, usize) -> RE<'a>,
    ops: &[(&'static str, BinOp)],
) -> RE<'a> {
    let (i, _) = ws(i)?;
    let start = pos(i);
    let (mut i, (mut lhs, mut depth)) = next(i, level)?;
    'outer: loop {
        for &(s, op) in ops {
            if let Ok((r, _)) = sym(s).parse(i) {
                let (r, (rhs, d)) = next(r, level)?;
                depth = depth.max(d) + 1;
                if depth > MAX_EXPR_DEPTH {
                    let (at, _) = ws(i)?;
                    return fail(
                        at,
                        format!(
                            "expression nested more than {MAX_EXPR_DEPTH} levels deep \
                             (a chain of operators builds one level per operator); \
                             split it into several Einsums"
                        ),
                    );
                }
                lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs), Span::new(start, pos(r)));
                i = r;
                continue 'outer;
            }
        }
        return Ok((i, (lhs, depth)));
    }
}

fn term(i: &str, level: usize) -> RE<'_> {
    binary_chain(i, level, unary, &[("*", BinOp::Mul), ("/", BinOp::Div)])
}

fn expr_at(i: &str, level: usize) -> RE<'_> {
    let (i, _) = ws(i)?;
    if level > MAX_EXPR_DEPTH {
        return too_deep(i);
    }
    binary_chain(i, level, term, &[("+", BinOp::Add), ("-", BinOp::Sub)])
}

/// An expression of map operators (at most [`MAX_EXPR_DEPTH`] levels deep).
pub fn expr(i: &str) -> R<'_, Expr> {
    expr_at(i, 0).map(|(r, (e, _))| (r, e))
}

fn reduction(i: &str) -> R<'_, Reduction> {
    let (i, _) = ws(i)?;
    let start = pos(i);
    let Ok((r, id)) = ident(i) else {
        return Ok((i, Reduction::Implicit));
    };
    let Ok((r, _)) = sym("[").parse(r) else {
        return Ok((i, Reduction::Implicit));
    };
    if id.name == "topk" {
        let (r, v) = var(r)?;
        let (r, _) = expect(",", "between the rank and k in `topk[x, k]`")(r)?;
        let (r2, k) = match int(r) {
            Ok(ok) => ok,
            Err(_) => return fail(r, "expected k (an integer) in `topk[x, k]`"),
        };
        let (r2, _) = expect("]", "to close `topk[x, k]`")(r2)?;
        return Ok((
            r2,
            Reduction::TopK(v, k as usize, Span::new(start, pos(r2))),
        ));
    }
    let Some(op) = ReduceOp::from_name(&id.name) else {
        // `NAME[` is an access, not a reduction.
        return Ok((i, Reduction::Implicit));
    };
    let (r, vars) = comma_list(var, "]", "to close the reduced indices")(r)?;
    Ok((r, Reduction::Explicit(op, vars, Span::new(start, pos(r)))))
}

fn einsum(i: &str, is_output: bool) -> R<'_, EinsumStmt> {
    let (i, _) = ws(i)?;
    let start = pos(i);
    let (r, output) = access(i)?;
    let (r, _) = expect("=", "after the left-hand side of an Einsum")(r)?;
    let (r, reduction) = reduction(r)?;
    let (r, e) = expr(r)?;
    let (r2, _) = ws(r)?;
    let (r, mask) = if let Ok((r3, _)) = tag::<_, _, PErr>("where").parse(r2) {
        let (r4, m) = access(r3)?;
        (r4, Some(m))
    } else {
        (r, None)
    };
    Ok((
        r,
        EinsumStmt {
            output,
            reduction,
            expr: e,
            mask,
            is_output,
            span: Span::new(start, pos(r)),
        },
    ))
}

fn decl(i: &str) -> R<'_, TensorDecl> {
    let (r, name) = ident(i)?;
    let (r, _) = expect("[", "after the tensor name to list its ranks")(r)?;
    let (r, ranks) = comma_list(rank, "]", "to close the rank list")(r)?;
    Ok((r, TensorDecl { name, ranks }))
}

fn init_item(i: &str) -> R<'_, InitStmt> {
    let (i, _) = ws(i)?;
    let start = pos(i);
    let (r, target) = access(i)?;
    let (r, _) = expect("=", "in `init`")(r)?;
    let (r, value) = match number(r) {
        Ok(ok) => ok,
        Err(_) => return fail(r, "an `init` value must be a number such as `0` or `-inf`"),
    };
    Ok((
        r,
        InitStmt {
            target,
            value,
            span: Span::new(start, pos(r)),
        },
    ))
}

fn keyword<'a>(i: &'a str, kw: &'static str) -> Option<&'a str> {
    let rest = i.strip_prefix(kw)?;
    if rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        None
    } else {
        Some(rest)
    }
}

fn stmt(i: &str) -> R<'_, Stmt> {
    let (i, _) = ws(i)?;
    if let Some(r) = keyword(i, "input") {
        let (r, ds) = comma_list_open(decl)(r)?;
        return Ok((r, Stmt::Input(ds)));
    }
    if let Some(r) = keyword(i, "split") {
        let start = pos(i);
        let (r, root) = rank(r)?;
        let (r, _) = expect("=", "in `split R = R1 * R0`")(r)?;
        let (mut r, first) = rank(r)?;
        let mut parts = vec![first];
        while let Ok((r2, _)) = sym("*").parse(r) {
            let (r3, p) = rank(r2)?;
            parts.push(p);
            r = r3;
        }
        if parts.len() < 2 {
            return fail(r, "a split needs at least two parts: `split M = M1 * M0`");
        }
        return Ok((
            r,
            Stmt::Split(SplitStmt {
                rank: root,
                parts,
                span: Span::new(start, pos(r)),
            }),
        ));
    }
    if let Some(r) = keyword(i, "init") {
        let (mut r, first) = init_item(r)?;
        let mut items = vec![first];
        while let Ok((r2, _)) = sym(";").parse(r) {
            let (r3, _) = ws(r2)?;
            if r3.is_empty() || r3.starts_with('\n') {
                r = r3;
                break;
            }
            let (r3, it) = init_item(r3)?;
            items.push(it);
            r = r3;
        }
        return Ok((r, Stmt::Init(items)));
    }
    if let Some(r) = keyword(i, "output") {
        // `output A, B` (declaration) or `output A[..] = ...` (definition).
        let (r1, names) = comma_list_open(ident)(r)?;
        let (r1w, _) = ws(r1)?;
        if names.len() > 1 || r1w.is_empty() || r1w.starts_with('\n') || r1w.starts_with(';') {
            return Ok((r1, Stmt::OutputDecl(names)));
        }
        let (r, e) = einsum(r, true)?;
        return Ok((r, Stmt::Einsum(e)));
    }
    let (r, e) = einsum(i, false)?;
    Ok((r, Stmt::Einsum(e)))
}

fn comma_list_open<'a, T>(
    mut item: impl FnMut(&'a str) -> R<'a, T>,
) -> impl FnMut(&'a str) -> R<'a, Vec<T>> {
    move |i: &'a str| {
        let (mut i, first) = item(i)?;
        let mut out = vec![first];
        while let Ok((r, _)) = sym(",").parse(i) {
            let (r, it) = item(r)?;
            out.push(it);
            i = r;
        }
        Ok((i, out))
    }
}

/// A syntax error: byte offset and message.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

/// Parse a whole cascade file.
pub fn parse_program(src: &str) -> Result<Program, SyntaxError> {
    BASE_LEN.with(|b| b.set(src.len()));
    let mut stmts = Vec::new();
    let mut i = src;
    loop {
        // Skip blank lines, comments and separators.
        let (r, _) = ws(i).map_err(|_| SyntaxError {
            offset: pos(i),
            message: "bad input".into(),
        })?;
        i = r;
        if i.is_empty() {
            break;
        }
        if i.starts_with('\n') || i.starts_with(';') {
            i = &i[1..];
            continue;
        }
        if !i.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return Err(SyntaxError {
                offset: pos(i),
                message: format!("expected a statement (`input`, `split`, `init`, `output` or an Einsum), found {}", found(i)),
            });
        }
        match stmt(i) {
            Ok((r, s)) => {
                let (r, _) = ws(r).map_err(|_| SyntaxError {
                    offset: pos(r),
                    message: "bad input".into(),
                })?;
                if !(r.is_empty() || r.starts_with('\n') || r.starts_with(';')) {
                    return Err(SyntaxError {
                        offset: pos(r),
                        message: format!("expected the end of the statement, found {}", found(r)),
                    });
                }
                stmts.push(s);
                i = r;
            }
            Err(nom::Err::Error(e)) | Err(nom::Err::Failure(e)) => {
                let msg = if e.msg.is_empty() {
                    format!("unexpected {}", found(e.rest))
                } else {
                    e.msg
                };
                return Err(SyntaxError {
                    offset: pos(e.rest),
                    message: msg,
                });
            }
            Err(nom::Err::Incomplete(_)) => {
                return Err(SyntaxError {
                    offset: src.len(),
                    message: "unexpected end of file".into(),
                })
            }
        }
    }
    Ok(Program { stmts })
}
