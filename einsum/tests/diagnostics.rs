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

// ---- Affine indices: one test per refusal, each located at the offending text. ----

/// Check that `text` fails with a diagnostic at the first `needle` (+ `skip` chars).
fn assert_diag_at(text: &str, needle: &str, skip: usize, width: usize, words: &[&str]) {
    let r = error_of(text);
    let (line, col) = locate(text, needle, skip);
    assert_diag(&r, line, col, width, words);
}

#[test]
fn affine_zero_coefficient() {
    let t = "input I[H], F[R]\noutput O[p] = I[0*p+r] * F[r]\n";
    assert_diag_at(
        t,
        "0*p",
        0,
        3,
        &[
            "error: zero coefficient in affine index `0*p+r`",
            "coefficients are integers ≥ 1",
        ],
    );
}

#[test]
fn affine_negative_coefficient() {
    let t = "input I[H], F[R]\noutput O[p] = I[p-r] * F[r]\n";
    assert_diag_at(
        t,
        "-r",
        0,
        2,
        &[
            "error: negative coefficient in affine index `p-r`",
            "coefficients are integers ≥ 1",
        ],
    );
}

#[test]
fn affine_variable_repeated_in_one_index() {
    let t = "input I[H]\noutput O[p] = I[p+p]\n";
    assert_diag_at(
        t,
        "+p]",
        1,
        1,
        &[
            "error: `p` appears twice in affine index `p+p`",
            "write a coefficient instead (e.g. `2*p`)",
        ],
    );
}

#[test]
fn affine_index_on_the_left_hand_side() {
    let t = "input I[H], F[R]\noutput O[p+r] = I[p+r] * F[r]\n";
    assert_diag_at(
        t,
        "p+r]",
        0,
        3,
        &[
            "error: affine index `p+r` on the left-hand side",
            "outputs are written with plain variables",
        ],
    );
}

#[test]
fn affine_index_on_an_iterative_rank() {
    let t = "input A[M1], F[R]\ninit S[0] = 0\nS[m1+1] = S[m1] + A[m1]\noutput Y[r] = S[r+1+m1] * F[r]\n";
    assert_diag_at(
        t,
        "r+1+m1",
        0,
        6,
        &[
            "error: affine index `r+m1+1` on iterative rank `M1` of `S`",
            "an iterative rank is read at `m1`, `m1+1`, `0` or `M1`",
        ],
    );
}

#[test]
fn affine_index_mixed_with_the_shift_of_an_iterative_rank() {
    // `m1+1+r` on an input's window: m1 is stepped by `+1`, never read through a window.
    let t =
        "input A[M1], X[H], F[R]\ninit S[0] = 0\nS[m1+1] = S[m1] + X[m1+1+r] * F[r]\noutput S\n";
    assert_diag_at(
        t,
        "m1+1+r",
        0,
        2,
        &[
            "error: `m1` in affine index `m1+r+1` iterates `M1`, an iterative rank",
            "never read through a window",
        ],
    );
}

#[test]
fn affine_index_on_a_split_rank() {
    let t = "input I[H], F[R]\nsplit H = H1 * H0\noutput O[p] = I[p+r] * F[r]\n";
    assert_diag_at(
        t,
        "p+r",
        0,
        3,
        &[
            "error: affine index `p+r` on rank `H` of `I`, which is split into H1*H0",
            "a split rank is addressed by its parts (h1,h0)",
        ],
    );
}

#[test]
fn affine_index_over_a_split_rank_part() {
    let t =
        "input A[M], X[H], F[R]\nsplit M = M1 * M0\noutput O[m1,m0] = A[m1,m0] * X[m0+r] * F[r]\n";
    assert_diag_at(
        t,
        "m0+r",
        0,
        2,
        &[
            "error: `m0` in affine index `m0+r` iterates `M0`, a part of split rank `M`",
            "affine indices use ranks that are not split",
        ],
    );
}

#[test]
fn affine_index_over_its_own_rank_is_an_inconsistent_rank() {
    let t = "input X[P], F[R]\noutput O[p] = X[p+r] * F[r]\n";
    assert_diag_at(
        t,
        "p+r",
        0,
        3,
        &[
            "error: index used with inconsistent rank: affine index `p+r` on rank `P` of `X`, which its own variable `p` iterates",
            "a window has a rank of its own",
        ],
    );
}

#[test]
fn window_rank_iterated_elsewhere() {
    // `H` is a window of `I` (its extent follows from `p+r`) and also iterated by `h`.
    let t = "input I[H], F[R]\nO[p] = I[p+r] * F[r]\nZ[h] = I[h]\noutput O, Z\n";
    assert_diag_at(
        t,
        "Z[h]",
        2,
        1,
        &[
            "error: `h` iterates rank `H`, which `I` addresses as a window with `p+r`",
            "a window rank is never iterated",
            "note: the extent of `H` follows from its affine indices",
        ],
    );
}

#[test]
fn affine_index_below_zero_is_refused() {
    // The smallest value of an affine index is its offset (every variable at 0).
    let t = "input X[L], F[K]\noutput O[t] = X[t+k-1] * F[k]\n";
    assert_diag_at(
        t,
        "t+k-1",
        0,
        5,
        &[
            "error: affine index `t+k-1` reads element -1 of `X` at t = k = 0",
            "indices start at 0",
            "note: pad the input instead",
        ],
    );
}

#[test]
fn affine_index_into_an_intermediate() {
    let t = "input A[H], F[R]\nB[h] = A[h]\noutput O[p] = B[p+r] * F[r]\n";
    assert_diag_at(
        t,
        "p+r",
        0,
        3,
        &[
            "error: affine index `p+r` into `B`, which is not an input",
            "affine indices read windows of input tensors",
        ],
    );
}

#[test]
fn affine_index_in_a_mask() {
    let t = "input A[P], G[H]\noutput O[p] = A[p] where G[p+1+p]\n";
    assert_diag_at(
        t,
        "p+1+p",
        0,
        5,
        &[
            "error: affine index `p+p+1` in a `where` mask",
            "a mask selects iteration points by plain variables",
        ],
    );
}

#[test]
fn affine_syntax_errors_are_located() {
    let t = "input I[H]\noutput O[p] = I[2*]\n";
    assert_diag_at(
        t,
        "*]",
        1,
        1,
        &["syntax error", "expected an index variable"],
    );
    let t = "input I[H]\noutput O[p] = I[1+p]\n";
    assert_diag_at(t, "+p]", 0, 1, &["syntax error", "write the constant last"]);
    let t = "input I[H]\noutput O[p] = I[p+]\n";
    assert_diag_at(
        t,
        "+]",
        1,
        1,
        &[
            "syntax error",
            "expected an index variable or an integer after `+`",
        ],
    );
    let t = "input I[H]\noutput O[p] = I[2*P]\n";
    assert_diag_at(
        t,
        "P]",
        0,
        1,
        &["syntax error", "index variables are lower case"],
    );
}

/// A conv1d written here (so that line/column numbers are this file's).
const CONV1D: &str = "input I[N,C,H], F[K,C,R]\noutput O[n,k,p] = I[n,c,2*p+r] * F[k,c,r]\n";

#[test]
fn window_extent_is_derived_from_its_accesses() {
    let c = check_source("t.ein", CONV1D).unwrap().cascade;
    assert_eq!(
        c.window_ranks().into_iter().collect::<Vec<_>>(),
        vec!["H".to_string()]
    );
    let s = bind(
        &c,
        &ext(&[("N", 1), ("C", 2), ("K", 3), ("P", 5), ("R", 3)]),
    )
    .unwrap();
    // 2·(5−1) + (3−1) + 1.
    assert_eq!(s.extent("H"), 11);
    // The iteration space has P and R, not H.
    assert_eq!(c.einsums[0].vars, ["n", "k", "p", "c", "r"]);
}

#[test]
fn window_extent_given_too_small() {
    let c = check_source("t.ein", CONV1D).unwrap().cascade;
    let given = ext(&[("N", 1), ("C", 2), ("K", 3), ("P", 5), ("R", 3), ("H", 10)]);
    let r = bind(&c, &given).unwrap_err().to_string();
    let (line, col) = locate(CONV1D, "2*p+r", 0);
    assert_diag(
        &r,
        line,
        col,
        5,
        &[
            "shape mismatch after binding: `I[n,c,2*p+r]` reads `2*p+r` up to 10",
            "P = 5, R = 3",
            "so `H` needs extent 11, but H = 10",
            "index out of range",
        ],
    );
    // Larger than needed is fine (padding never read), and evaluates.
    let mut given = given;
    given.insert("H".into(), 12);
    let s = bind(&c, &given).unwrap();
    assert_eq!(s.extent("H"), 12);
    let out = evaluate(&c, &s, &random_inputs(&c, &s, 1)).unwrap();
    assert_eq!(out["O"].shape, vec![1, 3, 5]);
}

#[test]
fn window_extent_too_large_to_count() {
    let t = "input I[H]\noutput O[p] = I[4611686018427387904*p]\n";
    let c = check_source("t.ein", t).unwrap().cascade;
    let r = bind(&c, &ext(&[("P", 3)])).unwrap_err().to_string();
    assert_diag(
        &r,
        2,
        17,
        21,
        &[
            "shape mismatch after binding",
            "more than 2^60",
            "too large",
        ],
    );
}

/// `n` nested copies of `open … close` around `inner`.
fn nest(open: &str, inner: &str, close: &str, n: usize) -> String {
    format!("{}{inner}{}", open.repeat(n), close.repeat(n))
}

#[test]
fn deep_nesting_is_refused_with_a_located_error() {
    use cascade_einsum::syntax::parser::MAX_EXPR_DEPTH;
    // 5,000 parentheses overflowed the stack; the parser stops one past the limit.
    let src = format!(
        "input A[M]\noutput Z[m] = {}\n",
        nest("(", "A[m]", ")", 5000)
    );
    let r = error_of(&src);
    let col = "output Z[m] = ".len() + MAX_EXPR_DEPTH + 2;
    assert_diag(
        &r,
        2,
        col,
        1,
        &[
            "syntax error",
            "more than 256 levels deep",
            "several Einsums",
        ],
    );
    // The same for calls and signs.
    for (open, close) in [("exp(", ")"), ("max(A[m], ", ")"), ("-", ""), ("-(", ")")] {
        let src = format!(
            "input A[M]\noutput Z[m] = {}\n",
            nest(open, "A[m]", close, 5000)
        );
        assert!(error_of(&src).contains("levels deep"), "{open}");
    }
}

#[test]
fn long_operator_chains_are_refused_at_the_limit() {
    // `A+A+…` builds a left-deep tree one level per operator, which every later pass
    // walks recursively: 100,000 operators are refused at the one past the limit.
    for op in ["+", "*", "-", "/"] {
        let chain = vec!["A[m]"; 100_000].join(op);
        let src = format!("input A[M]\noutput Z[m] = {chain}\n");
        let r = error_of(&src);
        let head = "output Z[m] = ".len() + 1;
        let col = head + 256 * "A[m]".len() + 255;
        assert_diag(
            &r,
            2,
            col,
            1,
            &["more than 256 levels deep", "chain of operators"],
        );
    }
}

#[test]
fn expressions_at_the_nesting_limit_check_print_analyse_and_evaluate() {
    use cascade_einsum::syntax::{parse_program, printer};
    use cascade_einsum::{analyze, AnalysisOptions};
    let n = 255;
    let exprs = [
        nest("(", "A[m]", ")", 256),
        nest("-", "A[m]", "", n),
        nest("-(", "A[m]", ")", 128), // a sign and a parenthesis: two levels each
        nest("exp(", "A[m]", ")", n),
        nest("max(A[m], ", "A[m]", ")", n),
        nest("A[m] + (", "A[m]", ")", n),
        vec!["A[m]"; n + 1].join(" + "),
        vec!["A[m]"; n + 1].join(" / "),
    ];
    for e in &exprs {
        let src = format!("input A[M]\noutput Z[m] = {e}\n");
        let c = check_source("t.ein", &src)
            .unwrap_or_else(|err| panic!("{}…: {err}", &e[..20]))
            .cascade;
        let printed = printer::print(&parse_program(&src).unwrap());
        assert_eq!(
            parse_program(&printed).unwrap(),
            parse_program(&src).unwrap()
        );
        let sh = bind(&c, &BTreeMap::from([("M".to_string(), 3)])).unwrap();
        let _ = analyze(
            &c,
            &sh,
            &AnalysisOptions {
                dtype_bytes: 2,
                routing: None,
            },
        );
        let out = evaluate(&c, &sh, &random_inputs(&c, &sh, 1)).unwrap();
        assert!(out.contains_key("Z"));
    }
}

/// Every error of a cascade that must not check, one rendered diagnostic each.
fn errors_of(text: &str) -> Vec<String> {
    match check_source("t.ein", text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| e.source.render(d))
            .collect(),
    }
}

#[test]
fn follow_on_errors_of_a_rejected_statement_are_suppressed() {
    // Statement 1 is rejected; statements 2 and 3 (and the output list, and the init)
    // fail only because its tensor or ranks do not exist: one error, statement 1's.
    let cases = [
        // a left-hand side indexed twice
        (
            "input A[M]\nB[m,m] = A[m]\nC[m] = B[m] + 1\nD[m] = C[m] * B[m]\noutput D, B\n",
            "appears twice",
        ),
        // a left-hand side over an unknown rank
        (
            "input A[M]\nB[q] = A[m]\nC[m] = B[m]\noutput D[m] = C[m] * B[m]\n",
            "which no input or split declares",
        ),
        // a body using an unknown tensor (its output exists: nothing follows anyway)
        (
            "input A[M]\nB[m] = Q[m]\nC[m] = B[m] + 1\noutput D[m] = C[m] * B[m]\n",
            "unknown tensor `Q`",
        ),
        // an iterative left-hand side stepping by 2, with its init
        (
            "input A[M]\ninit R[0] = 0\nR[m+2] = R[m] + A[m]\noutput S[m] = R[m]\n",
            "steps by +1",
        ),
        // a split of an unknown rank, and its parts used (and split) later
        (
            "input A[M]\nsplit X = X1 * X0\nsplit X1 = X11 * X10\nB[x1,x0] = A[m]\noutput C[x1] = B[x1,x0] * size(X10)\n",
            "split of unknown rank `X`",
        ),
    ];
    for (src, want) in cases {
        let errs = errors_of(src);
        assert_eq!(
            errs.len(),
            1,
            "expected one error for:\n{src}\n{}",
            errs.join("\n")
        );
        assert!(errs[0].contains(want), "{}", errs[0]);
    }
    // Independent mistakes are still each reported.
    let errs = errors_of("input A[M]\nB[m,m] = A[m]\nC[m] = Q[m]\noutput C\n");
    assert_eq!(errs.len(), 2, "{}", errs.join("\n"));
}

#[test]
fn deeply_nested_splits_check_bind_analyse_and_evaluate() {
    // Splits of split parts may chain arbitrarily deep; the walks over them are loops
    // (recursion overflowed a test thread's stack at this depth).
    use cascade_einsum::{analyze, AnalysisOptions};
    let n = 20_000;
    let mut src = String::from("input A[M0]\n");
    for i in 0..n {
        src.push_str(&format!("split M{i} = M{} * P{i}\n", i + 1));
    }
    src.push_str("output Z[m0] = A[m0] * 2\n");
    let c = check_source("t.ein", &src).unwrap().cascade;
    assert_eq!(c.root_rank(&format!("M{n}")), "M0");
    assert_eq!(c.outermost_part("M0"), format!("M{n}"));
    let leaves = c.leaf_ranks("M0");
    assert_eq!(leaves.len(), n + 1);
    assert_eq!(leaves[0], format!("M{n}"));
    assert_eq!(leaves[n], "P0");
    let mut ext = BTreeMap::from([("M0".to_string(), 2u64)]);
    for i in 0..n {
        ext.insert(format!("P{i}"), 1);
    }
    ext.insert("P0".to_string(), 2);
    ext.insert(format!("M{n}"), 1);
    let sh = bind(&c, &ext).unwrap();
    let _ = analyze(
        &c,
        &sh,
        &AnalysisOptions {
            dtype_bytes: 2,
            routing: None,
        },
    );
    let out = evaluate(&c, &sh, &random_inputs(&c, &sh, 1)).unwrap();
    assert!(out.contains_key("Z"));
}
