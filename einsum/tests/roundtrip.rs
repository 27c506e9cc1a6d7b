//! `parse(print(ast)) == ast` on random programs (AST equality ignores spans), and
//! `check_source` never panics, whatever the input.

use cascade_einsum::check_source;
use cascade_einsum::library;
use cascade_einsum::syntax::{parse_program, printer, *};
use proptest::prelude::*;

fn id(name: &str) -> Ident {
    Ident {
        name: name.to_string(),
        span: Span::default(),
    }
}

fn tensor_name() -> impl Strategy<Value = Ident> {
    prop::sample::select(vec!["A", "B", "QK", "W1", "X_2", "RM", "OUT"]).prop_map(id)
}

fn rank_name() -> impl Strategy<Value = Ident> {
    prop::sample::select(vec!["M", "M1", "M0", "E", "P", "D", "X_1"]).prop_map(id)
}

fn var_name() -> impl Strategy<Value = Ident> {
    prop::sample::select(vec!["m", "m1", "m0", "e", "p", "d", "x_1"]).prop_map(id)
}

/// Numbers as the parser can produce them: any non-NaN f64 (negative, decimal,
/// tiny or huge exponents, ±inf), plus some hand-picked ones.
fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(vec![
            0.0,
            1.0,
            -1.0,
            0.5,
            -2.5,
            1e-5,
            -3.0e12,
            1e15,
            1e300,
            5e-324,
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ]),
        (-1000i64..1000).prop_map(|v| v as f64),
        (-1e6f64..1e6),
        any::<f64>().prop_filter("not NaN", |v| !v.is_nan()),
    ]
}

/// Affine indices as the parser produces them: the first term's coefficient is ≥ 0
/// (later ones may be negative or zero, for the checker to refuse), variables may
/// repeat, constants are summed into one offset, and a lone `v` or `v+k` (k > 0) is
/// never `Affine` (it is `Var` or `Shift`).
fn affine() -> impl Strategy<Value = IndexExpr> {
    let coef = prop_oneof![
        4 => Just(1i64),
        2 => 2i64..5,
        1 => Just(0i64),
        1 => -3i64..0,
        1 => prop::sample::select(vec![i64::MAX, -i64::MAX, 1 << 40]),
    ];
    let offset = prop_oneof![
        2 => Just(0i64),
        2 => -5i64..6,
        1 => prop::sample::select(vec![i64::MAX, -i64::MAX, 1 << 50]),
    ];
    (prop::collection::vec((coef, var_name()), 1..4), offset).prop_map(|(terms, offset)| {
        let mut terms: Vec<AffineTerm> = terms
            .into_iter()
            .map(|(coef, var)| AffineTerm {
                coef,
                var,
                span: Span::default(),
            })
            .collect();
        terms[0].coef = terms[0].coef.abs();
        if terms.len() == 1 && terms[0].coef == 1 && offset >= 0 {
            terms[0].coef = 2;
        }
        IndexExpr::Affine {
            terms,
            offset,
            span: Span::default(),
        }
    })
}

fn index() -> impl Strategy<Value = IndexExpr> {
    prop_oneof![
        3 => var_name().prop_map(IndexExpr::Var),
        1 => (var_name(), 1i64..3).prop_map(|(v, k)| IndexExpr::Shift(v, k)),
        1 => (0i64..100).prop_map(|c| IndexExpr::Const(c, Span::default())),
        1 => rank_name().prop_map(IndexExpr::Last),
        2 => affine(),
    ]
}

fn access() -> impl Strategy<Value = Access> {
    (tensor_name(), prop::collection::vec(index(), 0..4))
        .prop_map(|(tensor, indices)| Access { tensor, indices })
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        number().prop_map(|v| Expr::Num(v, Span::default())),
        rank_name().prop_map(Expr::Extent),
        access().prop_map(Expr::Access),
    ];
    leaf.prop_recursive(5, 32, 2, |inner| {
        prop_oneof![
            (prop::sample::select(UnOp::ALL.to_vec()), inner.clone())
                .prop_map(|(op, x)| Expr::Unary(op, Box::new(x), Span::default())),
            (
                prop::sample::select(vec![
                    BinOp::Add,
                    BinOp::Sub,
                    BinOp::Mul,
                    BinOp::Div,
                    BinOp::Max,
                    BinOp::Min
                ]),
                inner.clone(),
                inner
            )
                .prop_map(|(op, a, b)| Expr::Binary(
                    op,
                    Box::new(a),
                    Box::new(b),
                    Span::default()
                )),
        ]
    })
}

fn reduction() -> impl Strategy<Value = Reduction> {
    prop_oneof![
        2 => Just(Reduction::Implicit),
        2 => (
            prop::sample::select(vec![ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Prod]),
            prop::collection::vec(var_name(), 1..3)
        )
            .prop_map(|(op, vars)| Reduction::Explicit(op, vars, Span::default())),
        1 => (var_name(), 0usize..5).prop_map(|(v, k)| Reduction::TopK(v, k, Span::default())),
    ]
}

fn einsum() -> impl Strategy<Value = EinsumStmt> {
    (
        access(),
        reduction(),
        expr(),
        prop::option::of(access()),
        any::<bool>(),
    )
        .prop_map(|(output, reduction, expr, mask, is_output)| EinsumStmt {
            output,
            reduction,
            expr,
            mask,
            is_output,
            span: Span::default(),
        })
}

fn stmt() -> impl Strategy<Value = Stmt> {
    let decl = (tensor_name(), prop::collection::vec(rank_name(), 1..4))
        .prop_map(|(name, ranks)| TensorDecl { name, ranks });
    let init = (access(), number()).prop_map(|(target, value)| InitStmt {
        target,
        value,
        span: Span::default(),
    });
    prop_oneof![
        1 => prop::collection::vec(decl, 1..4).prop_map(Stmt::Input),
        1 => (rank_name(), prop::collection::vec(rank_name(), 2..4)).prop_map(|(rank, parts)| {
            Stmt::Split(SplitStmt {
                rank,
                parts,
                span: Span::default(),
            })
        }),
        1 => prop::collection::vec(init, 1..4).prop_map(Stmt::Init),
        4 => einsum().prop_map(Stmt::Einsum),
        1 => prop::collection::vec(tensor_name(), 1..4).prop_map(Stmt::OutputDecl),
    ]
}

fn program() -> impl Strategy<Value = Program> {
    prop::collection::vec(stmt(), 0..8).prop_map(|stmts| Program { stmts })
}

/// A library cascade with a few random edits (deletions, insertions, swaps).
fn mutated_cascade() -> impl Strategy<Value = String> {
    let edits = prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<char>()), 1..6);
    (prop::sample::select(library::CASCADES.to_vec()), edits).prop_map(|((_, src), edits)| {
        let mut chars: Vec<char> = src.chars().collect();
        for (at, kind, c) in edits {
            if chars.is_empty() {
                chars.push(c);
                continue;
            }
            let i = at.index(chars.len());
            match kind {
                0 => {
                    chars.remove(i);
                }
                1 => chars.insert(i, c),
                _ => {
                    let j = (i + 1) % chars.len();
                    chars.swap(i, j);
                }
            }
        }
        chars.into_iter().collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn print_then_parse_is_the_identity(p in program()) {
        let text = printer::print(&p);
        let back = parse_program(&text);
        prop_assert!(back.is_ok(), "printed program does not parse: {:?}\n{}", back, text);
        let back = back.unwrap();
        prop_assert_eq!(&back, &p, "\n{}", text);
        // Printing is a fixed point.
        prop_assert_eq!(printer::print(&back), text);
    }

    #[test]
    fn expressions_round_trip(e in expr()) {
        let text = format!("Y = {}\n", printer::expr(&e));
        let p = parse_program(&text).unwrap();
        match &p.stmts[..] {
            [Stmt::Einsum(st)] => prop_assert_eq!(&st.expr, &e, "\n{}", text),
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = check_source("t.ein", &text) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn random_token_soup_never_panics(
        toks in prop::collection::vec(
            prop::sample::select(vec![
                "input", "split", "init", "output", "where", "topk", "sum", "max", "min",
                "size", "exp", "inf", "-inf", "A", "B", "M", "M1", "M0", "m", "m1", "m0",
                "[", "]", "(", ")", ",", "=", "+", "-", "*", "/", ";", "\n", "#", " ",
                "0", "1", "2.5", "1e3", "+1", "é", "\\\n", "p", "r", "2*", "+r", "-1",
                "I[n,c,p+r]", "[N,C,H]", "0*",
            ]),
            0..40,
        )
    ) {
        let text: String = toks.concat();
        if let Err(e) = check_source("t.ein", &text) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn mutated_library_cascades_never_panic(text in mutated_cascade()) {
        match check_source("t.ein", &text) {
            Ok(c) => {
                let _ = c.render_warnings();
            }
            Err(e) => prop_assert!(e.to_string().contains("t.ein:")),
        }
    }
}

#[test]
fn layout_does_not_change_the_ast() {
    let plain = "input A[M], B[M]\nX[m] = A[m] * B[m]\noutput Y = X[m]\n";
    let fancy = "# comment\n\ninput A[M],   B[M]   # two inputs\nX[m] = A[m] \\\n  * B[m]; output Y = X[m]\n";
    assert_eq!(parse_program(plain).unwrap(), parse_program(fancy).unwrap());
}

/// The index at `[k]` of the right-hand side's first access of `text`'s only Einsum.
fn rhs_index(text: &str, k: usize) -> IndexExpr {
    let p = parse_program(text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    match &p.stmts[..] {
        [Stmt::Einsum(st)] => st.expr.accesses()[0].indices[k].clone(),
        other => panic!("{other:?}"),
    }
}

fn term(coef: i64, var: &str) -> AffineTerm {
    AffineTerm {
        coef,
        var: id(var),
        span: Span::default(),
    }
}

#[test]
fn affine_indices_parse_by_value() {
    let affine = |terms: Vec<AffineTerm>, offset| IndexExpr::Affine {
        terms,
        offset,
        span: Span::default(),
    };
    // Window forms keep their terms in source order; constants are summed.
    assert_eq!(
        rhs_index("Y = I[n, 2*p+r]", 1),
        affine(vec![term(2, "p"), term(1, "r")], 0)
    );
    assert_eq!(
        rhs_index("Y = I[p + 2 * r]", 0),
        affine(vec![term(1, "p"), term(2, "r")], 0)
    );
    assert_eq!(
        rhs_index("Y = I[t+1+k-1]", 0),
        affine(vec![term(1, "t"), term(1, "k")], 0)
    );
    assert_eq!(
        rhs_index("Y = I[t+k-1]", 0),
        affine(vec![term(1, "t"), term(1, "k")], -1)
    );
    assert_eq!(rhs_index("Y = I[2*p]", 0), affine(vec![term(2, "p")], 0));
    assert_eq!(rhs_index("Y = I[p-1]", 0), affine(vec![term(1, "p")], -1));
    assert_eq!(
        rhs_index("Y = I[p-r]", 0),
        affine(vec![term(1, "p"), term(-1, "r")], 0)
    );
    // A lone variable is `Var` however written; a lone `v+k` is today's `Shift`.
    assert_eq!(rhs_index("Y = I[1*p]", 0), IndexExpr::Var(id("p")));
    assert_eq!(rhs_index("Y = I[p+0]", 0), IndexExpr::Var(id("p")));
    assert_eq!(rhs_index("Y = I[m1+1]", 0), IndexExpr::Shift(id("m1"), 1));
    assert_eq!(
        rhs_index("Y = I[m1 + 2 - 1]", 0),
        IndexExpr::Shift(id("m1"), 1)
    );
    // The printer writes the canonical form.
    for (src, printed) in [
        ("Y = I[p + 2 * r]", "Y = I[p+2*r]\n"),
        ("Y = I[t+1+k-2]", "Y = I[t+k-1]\n"),
        ("Y = I[2*p+r+3]", "Y = I[2*p+r+3]\n"),
        ("Y = I[1*p]", "Y = I[p]\n"),
        ("Y = I[p-r]", "Y = I[p-r]\n"),
    ] {
        assert_eq!(printer::print(&parse_program(src).unwrap()), printed);
    }
}

#[test]
fn affine_constants_that_overflow_are_syntax_errors() {
    let e = parse_program("Y = I[p+9223372036854775807+1]").unwrap_err();
    assert!(e.message.contains("index constant too large"), "{e:?}");
    // i64::MIN has no printable negation, so it is refused too.
    let e = parse_program("Y = I[p-9223372036854775807-1]").unwrap_err();
    assert!(e.message.contains("index constant too large"), "{e:?}");
}
