//! The built-in cascades check cleanly, round-trip through the printer, and their
//! pass counts match FuseMax Table I.

use cascade_einsum::syntax::{parse_program, printer};
use cascade_einsum::{analyze, bind, evaluate, library, random_inputs, AnalysisOptions, Tensor};
use std::collections::BTreeMap;

#[test]
fn every_builtin_checks_without_warnings() {
    for name in library::names() {
        let c = library::load(name).unwrap_or_else(|e| panic!("{name}:\n{e}"));
        assert!(c.warnings.is_empty(), "{name}: {}", c.render_warnings());
        assert!(!c.cascade.outputs.is_empty());
    }
}

#[test]
fn builtins_round_trip_through_the_printer() {
    for (name, src) in library::CASCADES {
        let a = parse_program(src).unwrap();
        let printed = printer::print(&a);
        let b = parse_program(&printed).unwrap_or_else(|e| panic!("{name}: {e:?}\n{printed}"));
        assert_eq!(a, b, "{name} does not round-trip:\n{printed}");
        // Printing is a fixed point after one round.
        assert_eq!(printed, printer::print(&b));
    }
}

fn passes(name: &str) -> BTreeMap<String, u32> {
    cascade_einsum::pass_counts(&library::load(name).unwrap().cascade)
}

#[test]
fn attention_pass_counts_match_fusemax_table_1() {
    assert_eq!(passes("attention_3pass")["M"], 3);
    assert_eq!(passes("attention_2pass")["M"], 2);
    assert_eq!(passes("attention_1pass")["M"], 1);
    assert_eq!(passes("gqa_decode")["M"], 1);
    // The query rank is never traversed twice.
    for n in ["attention_3pass", "attention_2pass", "attention_1pass"] {
        assert_eq!(passes(n)["P"], 1, "{n}");
    }
}

#[test]
fn normalisations_need_two_passes_over_the_model_dim() {
    // mean/rms must be complete before any element is normalised.
    assert_eq!(passes("rmsnorm")["D"], 2);
    assert_eq!(passes("layernorm")["D"], 3);
    // Router softmax (max, sum), top-k, renormalisation, and the combine over experts.
    assert_eq!(passes("moe")["X"], 5);
}

fn ext(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn attention_op_counts() {
    let (b, h, e, m, p) = (64u64, 12u64, 64u64, 1024u64, 1024u64);
    let c3 = library::load("attention_3pass").unwrap().cascade;
    let s = bind(
        &c3,
        &ext(&[("B", b), ("H", h), ("E", e), ("F", e), ("M", m), ("P", p)]),
    )
    .unwrap();
    let a = analyze(
        &c3,
        &s,
        &AnalysisOptions {
            dtype_bytes: 2,
            routing: None,
        },
    );
    assert_eq!(a.einsum("QK").unwrap().ops["mac"], b * h * m * p * e);
    assert_eq!(a.einsum("AV").unwrap().ops["mac"], b * h * m * p * e);
    assert_eq!(a.einsum("SN").unwrap().ops["exp"], b * h * m * p);
    assert_eq!(a.einsum("A").unwrap().ops["div"], b * h * m * p);
    assert_eq!(
        a.tensors.iter().find(|t| t.name == "Q").unwrap().bytes,
        b * h * e * p * 2
    );

    // 1-pass divides F·P times instead of M·P (FuseMax §IV).
    let c1 = library::load("attention_1pass").unwrap().cascade;
    let s1 = bind(
        &c1,
        &ext(&[
            ("B", b),
            ("H", h),
            ("E", e),
            ("F", e),
            ("M", m),
            ("P", p),
            ("M0", 256),
        ]),
    )
    .unwrap();
    assert_eq!(s1.extent("M1"), 4);
    let a1 = analyze(
        &c1,
        &s1,
        &AnalysisOptions {
            dtype_bytes: 2,
            routing: None,
        },
    );
    assert_eq!(a1.op("div"), b * h * e * p);
    assert_eq!(a1.einsum("BQK").unwrap().ops["mac"], b * h * m * p * e);
    // Iterative tensors hold M1 + 1 elements along M1.
    let rm = a1.tensors.iter().find(|t| t.name == "RM").unwrap();
    assert_eq!(rm.dims, vec![b, h, 5, p]);
}

fn run(name: &str, given: &[(&str, u64)]) -> (cascade_einsum::Shapes, BTreeMap<String, Tensor>) {
    let c = library::load(name).unwrap().cascade;
    let s = bind(&c, &ext(given)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let out = evaluate(&c, &s, &random_inputs(&c, &s, 5)).unwrap();
    (s, out)
}

#[test]
fn convolutions_check_bind_and_evaluate() {
    // Window ranks derive from the output and filter extents.
    let (s, out) = run(
        "conv2d",
        &[
            ("N", 2),
            ("C", 3),
            ("K", 4),
            ("P", 5),
            ("Q", 6),
            ("R", 3),
            ("S", 2),
        ],
    );
    assert_eq!((s.extent("H"), s.extent("W")), (7, 7));
    assert_eq!(out["O"].shape, vec![2, 4, 5, 6]);
    let (s, out) = run(
        "conv2d_s2",
        &[
            ("N", 1),
            ("C", 3),
            ("K", 2),
            ("P", 4),
            ("Q", 3),
            ("R", 3),
            ("S", 3),
        ],
    );
    assert_eq!((s.extent("H"), s.extent("W")), (9, 7));
    assert_eq!(out["O"].shape, vec![1, 2, 4, 3]);
    let (s, out) = run(
        "conv1d",
        &[("N", 1), ("C", 2), ("K", 3), ("P", 8), ("R", 4)],
    );
    assert_eq!(s.extent("H"), 11);
    assert_eq!(out["O"].shape, vec![1, 3, 8]);
    let (s, _) = run(
        "conv1d_s2",
        &[("N", 1), ("C", 2), ("K", 3), ("P", 8), ("R", 3)],
    );
    assert_eq!(s.extent("H"), 17);
    let (s, _) = run(
        "conv1d_s5",
        &[("N", 1), ("C", 1), ("K", 2), ("P", 4), ("R", 10)],
    );
    assert_eq!(s.extent("H"), 25);
    let (s, out) = run(
        "depthwise_conv2d",
        &[("N", 1), ("C", 3), ("P", 4), ("Q", 4), ("R", 3), ("S", 3)],
    );
    assert_eq!((s.extent("H"), s.extent("W")), (6, 6));
    assert_eq!(out["O"].shape, vec![1, 3, 4, 4]);
    // A stride-2 conv with a 1×1 filter (a ResNet shortcut) reads every other row.
    let (s, out) = run(
        "conv2d_s2",
        &[
            ("N", 1),
            ("C", 1),
            ("K", 1),
            ("P", 2),
            ("Q", 2),
            ("R", 1),
            ("S", 1),
            ("H", 4),
            ("W", 4),
        ],
    );
    assert_eq!(s.extent("H"), 4);
    let (i, f, o) = (&out["I"], &out["F"], &out["O"]);
    assert_eq!(o.at(&[0, 0, 1, 1]), i.at(&[0, 0, 2, 2]) * f.data[0]);
}

#[test]
fn pools_compute_window_maxima_and_means() {
    let (s, out) = run(
        "maxpool2d_s2",
        &[("N", 1), ("C", 2), ("P", 3), ("Q", 3), ("R", 3), ("S", 3)],
    );
    assert_eq!(s.extent("H"), 7);
    let (i, o) = (&out["I"], &out["O"]);
    let mut want = f64::NEG_INFINITY;
    for r in 0..3 {
        for c in 0..3 {
            want = want.max(i.at(&[0, 1, 2 + r, 4 + c]));
        }
    }
    assert_eq!(o.at(&[0, 1, 1, 2]), want);
    let (_, out) = run("global_avgpool", &[("N", 2), ("C", 3), ("H", 4), ("W", 5)]);
    let (i, o) = (&out["I"], &out["O"]);
    let sum: f64 = (0..4)
        .flat_map(|h| (0..5).map(move |w| (h, w)))
        .map(|(h, w)| i.at(&[1, 2, h, w]))
        .sum();
    assert!((o.at(&[1, 2]) - sum / 20.0).abs() < 1e-12);
}
