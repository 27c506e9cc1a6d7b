//! One test per check: each error is located (`t.ein:LINE:COL`), names the problem,
//! and draws a caret under the offending text.

use cascade_einsum::{bind, check_source, evaluate, library, random_inputs, Severity, Tensor};
use std::collections::BTreeMap;

/// The rendered error of a cascade that must not check.
fn error_of(text: &str) -> String {
    match check_source("t.ein", text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// Assert that `rendered` is located at `line:col`, mentions every word, and has a
/// caret line whose first `^` sits under column `col` and is `width` carets wide.
fn assert_diag(rendered: &str, line: usize, col: usize, width: usize, words: &[&str]) {
    let loc = format!("--> t.ein:{line}:{col}\n");
    assert!(rendered.contains(&loc), "no `{loc}` in:\n{rendered}");
    for w in words {
        assert!(rendered.contains(w), "no `{w}` in:\n{rendered}");
    }
    // The source line is echoed after its number, then the caret line.
    let lines: Vec<&str> = rendered.lines().collect();
    let src_at = lines
        .iter()
        .position(|l| l.starts_with(&format!("{line} | ")))
        .unwrap_or_else(|| panic!("no source line {line} in:\n{rendered}"));
    let caret = lines[src_at + 1];
    let bar = caret.find(" | ").expect("caret line has a gutter") + 3;
    let marks = &caret[bar..];
    let first = marks.find('^').expect("caret line has a caret");
    assert_eq!(first, col - 1, "caret in the wrong column:\n{rendered}");
    let n = marks[first..].chars().take_while(|&c| c == '^').count();
    assert_eq!(n, width, "caret of the wrong width:\n{rendered}");
}

#[test]
fn syntax_error() {
    let r = error_of("input Q[E,P], K[E,M]\nQK[m,p] = Q[e,p] * * K[e,m]\noutput QK\n");
    assert_diag(
        &r,
        2,
        20,
        1,
        &["error: syntax error", "expected an expression", "found `*`"],
    );
    assert!(r.contains("2 | QK[m,p] = Q[e,p] * * K[e,m]"), "{r}");
}

#[test]
fn syntax_error_inside_a_multibyte_character_renders() {
    // The one-byte span of a syntax error ends inside `é`: rendering must not panic.
    let r = error_of("input A[M]\noutput X[m] = A[m] + é\n");
    assert_diag(&r, 2, 22, 1, &["syntax error", "found `é`"]);
}

#[test]
fn unknown_tensor() {
    let r = error_of("input Q[E,P], K[E,M]\noutput QK[m,p] = Q[e,p] * KK[e,m]\n");
    assert_diag(
        &r,
        2,
        27,
        2,
        &[
            "error: unknown tensor `KK`",
            "not an input and not written by any Einsum",
        ],
    );
}

#[test]
fn index_used_with_inconsistent_rank() {
    let r = error_of("input Q[E,P], K[E,M]\noutput QK[m,p] = Q[e,p] * K[e,p]\n");
    assert_diag(
        &r,
        2,
        31,
        1,
        &[
            "index used with inconsistent rank",
            "`p` at position 2 of `K[E,M]`",
            "this position has rank `M`",
        ],
    );
}

/// The 1-pass attention cascade, checked under the name `t.ein`.
fn attention_1pass() -> (String, cascade_einsum::Cascade) {
    let text = library::source("attention_1pass").unwrap().to_string();
    let c = check_source("t.ein", &text).unwrap().cascade;
    (text, c)
}

/// 1-based line and column of the first occurrence of `needle` (plus `skip` chars).
fn locate(text: &str, needle: &str, skip: usize) -> (usize, usize) {
    let at = text.find(needle).expect("needle in text") + skip;
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |p| p + 1) + 1;
    (line, col)
}

fn ext(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn shape_mismatch_when_a_split_does_not_divide() {
    let (text, c) = attention_1pass();
    let given = ext(&[
        ("B", 1),
        ("H", 1),
        ("E", 4),
        ("F", 4),
        ("P", 2),
        ("M", 1000),
        ("M0", 256),
    ]);
    let r = bind(&c, &given).unwrap_err().to_string();
    // Rank M is reported where it is first declared (K[B,H,E,M]).
    let (line, col) = locate(&text, "K[B,H,E,M]", 8);
    assert_diag(
        &r,
        line,
        col,
        1,
        &[
            "shape mismatch after binding",
            "split M = M1 * M0",
            "M = 1000 is not divisible by 256",
            "rank splits must divide evenly",
        ],
    );
    // A divisible extent binds and derives M1.
    let mut given = given;
    given.insert("M".into(), 1024);
    assert_eq!(bind(&c, &given).unwrap().extent("M1"), 4);
}

#[test]
fn shape_mismatch_when_split_parts_disagree_with_the_rank() {
    let (text, c) = attention_1pass();
    let given = ext(&[
        ("B", 1),
        ("H", 1),
        ("E", 4),
        ("F", 4),
        ("P", 2),
        ("M", 8),
        ("M1", 3),
        ("M0", 2),
    ]);
    let r = bind(&c, &given).unwrap_err().to_string();
    let (line, col) = locate(&text, "K[B,H,E,M]", 8);
    assert_diag(
        &r,
        line,
        col,
        1,
        &["shape mismatch after binding", "gives 6, but M = 8"],
    );
}

#[test]
fn shape_mismatch_of_an_input_given_to_evaluate() {
    let (text, c) = attention_1pass();
    let s = bind(
        &c,
        &ext(&[
            ("B", 1),
            ("H", 1),
            ("E", 2),
            ("F", 2),
            ("P", 3),
            ("M", 4),
            ("M0", 2),
        ]),
    )
    .unwrap();
    assert_eq!(s.extent("M1"), 2);
    let mut inputs = random_inputs(&c, &s, 1);
    inputs.insert("K".into(), Tensor::filled(vec![1, 1, 2, 5], 0.5));
    let r = evaluate(&c, &s, &inputs).unwrap_err().to_string();
    let (line, col) = locate(&text, "K[B,H,E,M]", 0);
    assert_diag(
        &r,
        line,
        col,
        1,
        &[
            "shape mismatch after binding",
            "input `K[B,H,E,M]` was given shape [1, 1, 2, 5]",
            "bind to [1, 1, 2, 4]",
        ],
    );
    // A missing input is reported at its declaration too.
    inputs.remove("K");
    let r = evaluate(&c, &s, &inputs).unwrap_err().to_string();
    assert_diag(&r, line, col, 1, &["no data was given for input `K`"]);
}

#[test]
fn dependency_cycle() {
    let r = error_of(
        "input A[M], B[M]\nX[m] = Y[m] + A[m]\nY[m] = X[m] * B[m]\noutput Z[m] = X[m] + Y[m]\n",
    );
    assert_diag(
        &r,
        2,
        1,
        1,
        &[
            "error: dependency cycle between Einsums",
            "X",
            "Y",
            "depends on its own result",
        ],
    );
}

#[test]
fn dependency_cycle_through_its_own_output() {
    // A non-iterative Einsum that reads the tensor it writes.
    let r = error_of("input A[M]\noutput X[m] = X[m] + A[m]\n");
    assert_diag(
        &r,
        2,
        15,
        1,
        &["dependency cycle: `X` reads its own result"],
    );
    // Reading the final element of its own iterative rank while stepping it.
    let r = error_of(
        "input A[M]\nsplit M = M1 * M0\ninit R[0] = 0\nR[m1+1] = R[M1] + A[m1,m0]\noutput Z = R[M1]\n",
    );
    assert_diag(
        &r,
        4,
        11,
        1,
        &["dependency cycle: `R` reads its own result"],
    );
    // ... or the element it is writing.
    let r = error_of(
        "input A[M]\nsplit M = M1 * M0\ninit R[0] = 0\nR[m1+1] = R[m1+1] + A[m1,m0]\noutput Z = R[M1]\n",
    );
    assert_diag(
        &r,
        4,
        13,
        2,
        &["dependency cycle: `R` reads `m1+1`, the element it is writing"],
    );
    // Reading the previous element is a legal recurrence.
    check_source(
        "t.ein",
        "input A[M]\nsplit M = M1 * M0\ninit R[0] = 0\nR[m1+1] = R[m1] + A[m1,m0]\noutput Z = R[M1]\n",
    )
    .unwrap();
}

#[test]
fn iterative_rank_without_init() {
    let r =
        error_of("input A[M]\nsplit M = M1 * M0\nR[m1+1] = R[m1] + A[m1,m0]\noutput Z = R[M1]\n");
    assert_diag(
        &r,
        3,
        1,
        1,
        &[
            "error: iterative rank `M1` of `R` has no `init`",
            "note: add e.g. `init R[...0...] = 0`",
        ],
    );
}

#[test]
fn output_never_written() {
    let r = error_of("input A[M]\nX[m] = A[m]\noutput Z\n");
    assert_diag(
        &r,
        3,
        8,
        1,
        &[
            "error: output `Z` is never written",
            "no Einsum writes this tensor",
        ],
    );
    // Declaring an input as the output is no better.
    let r = error_of("input A[M]\noutput X[m] = A[m]\noutput A\n");
    assert_diag(
        &r,
        3,
        8,
        1,
        &["output `A` is never written", "an input, not the result"],
    );
}

#[test]
fn cascade_without_output() {
    let r = error_of("input A[M]\nX[m] = A[m]\n");
    assert_diag(
        &r,
        2,
        1,
        11,
        &[
            "error: the cascade has no output",
            "mark the result with `output`",
        ],
    );
}

#[test]
fn unused_input_is_a_warning() {
    let c = check_source("t.ein", "input A[M], B[N]\noutput X[m] = A[m]\n").unwrap();
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(c.warnings[0].severity, Severity::Warning);
    let w = c.render_warnings();
    assert!(w.starts_with("warning: unused input `B`"), "{w}");
    assert_diag(&w, 1, 13, 1, &["never read by any Einsum"]);
    // A dead Einsum is a warning too.
    let c = check_source("t.ein", "input A[M]\nD[m] = A[m] * 2\noutput X[m] = A[m]\n").unwrap();
    let w = c.render_warnings();
    assert_diag(&w, 2, 1, 1, &["warning: `D` is computed but never read"]);
}

#[test]
fn warnings_are_reported_with_errors() {
    let e = check_source("t.ein", "input A[M], B[M]\noutput X[m] = A[m] * C[m]\n").unwrap_err();
    assert!(e.diagnostics[0].is_error());
    assert!(e.to_string().contains("unknown tensor `C`"), "{e}");
}

#[test]
fn unknown_rank() {
    let r = error_of("input A[M]\noutput X[m] = A[m] * A[n]\n");
    assert_diag(
        &r,
        2,
        24,
        1,
        &[
            "error: index `n` iterates rank `N`, which no input or split declares",
            "unknown rank",
        ],
    );
    // On the left-hand side, and in `size(..)`, too.
    let r = error_of("input A[M]\noutput X[m,k] = A[m]\n");
    assert_diag(&r, 2, 12, 1, &["index `k` iterates rank `K`"]);
    let r = error_of("input A[M]\noutput X[m] = A[m] / size(D)\n");
    assert_diag(&r, 2, 27, 1, &["`size(D)` of unknown rank"]);
    let r = error_of("input A[M]\nsplit N = N1 * N0\noutput X[m] = A[m]\n");
    assert_diag(&r, 2, 7, 1, &["split of unknown rank `N`"]);
}

#[test]
fn reduction_list_does_not_match_the_reduced_indices() {
    let r = error_of("input A[M,N]\noutput X[m] = max[m] A[m,n]\n");
    assert_diag(
        &r,
        2,
        15,
        6,
        &[
            "error: `max[m]` does not match the reduced indices {n}",
            "absent on the left",
        ],
    );
    let r = error_of("input A[M,N]\noutput X = sum[m] A[m,n]\n");
    assert_diag(
        &r,
        2,
        12,
        6,
        &["`sum[m]` does not match the reduced indices {m,n}"],
    );
}

#[test]
fn einsum_writing_an_input() {
    let r = error_of("input A[M]\nA[m] = A[m] + 1\noutput X[m] = A[m]\n");
    assert_diag(
        &r,
        2,
        1,
        1,
        &[
            "error: Einsum writes input `A`",
            "each tensor has exactly one writer",
        ],
    );
}

#[test]
fn tensor_written_twice() {
    let r = error_of("input A[M]\nX[m] = A[m]\nX[m] = A[m] * 2\noutput X\n");
    assert_diag(
        &r,
        3,
        1,
        1,
        &[
            "error: tensor `X` is written by two Einsums",
            "each tensor has exactly one writer",
        ],
    );
}

#[test]
fn shape_mismatch_when_too_large_to_count() {
    // Found by the fuzzer: 2 along each of 79 dimensions overflowed u64 in the
    // analysis. Binding now refuses element counts and iteration spaces past 2^60.
    let c = check_source("t.ein", "input A[M,N,P]\noutput Y[m] = A[m,n,p]\n")
        .unwrap()
        .cascade;
    let r = bind(&c, &ext(&[("M", 1 << 21), ("N", 1 << 21), ("P", 1 << 21)]))
        .unwrap_err()
        .to_string();
    assert_diag(
        &r,
        1,
        7,
        1,
        &[
            "shape mismatch after binding",
            "`A` has more than 2^60 elements",
            "too large",
        ],
    );
    // An Einsum whose iteration space is too large, though every tensor fits.
    let c = check_source(
        "t.ein",
        "input A[M,N], B[N,P]\noutput Y[m,p] = A[m,n] * B[n,p]\n",
    )
    .unwrap()
    .cascade;
    let r = bind(&c, &ext(&[("M", 1 << 21), ("N", 1 << 21), ("P", 1 << 21)]))
        .unwrap_err()
        .to_string();
    assert_diag(
        &r,
        2,
        8,
        1,
        &["the iteration space of `Y` has more than 2^60 points"],
    );
    // Split parts whose product overflows u64.
    let (_, c) = attention_1pass();
    let r = bind(
        &c,
        &ext(&[
            ("B", 1),
            ("H", 1),
            ("E", 2),
            ("F", 2),
            ("P", 1),
            ("M1", 1 << 40),
            ("M0", 1 << 40),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(r.contains("more than 2^60"), "{r}");
    // The largest FuseMax workload (XLM: batch 64, 16 heads, E = 128, 1M tokens)
    // is 2^57 points per attention Einsum: it binds and analyses.
    let s = bind(
        &c,
        &ext(&[
            ("B", 64),
            ("H", 16),
            ("E", 128),
            ("F", 128),
            ("P", 1 << 20),
            ("M", 1 << 20),
            ("M0", 256),
        ]),
    )
    .unwrap();
    let a = cascade_einsum::analyze(
        &c,
        &s,
        &cascade_einsum::AnalysisOptions {
            dtype_bytes: 4,
            routing: None,
        },
    );
    assert_eq!(a.einsum("BQK").unwrap().ops["mac"], 1 << 57);
}
