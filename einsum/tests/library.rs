//! The built-in cascades check cleanly, round-trip through the printer, and their
//! pass counts match FuseMax Table I.

use cascade_einsum::syntax::{parse_program, printer};
use cascade_einsum::{analyze, bind, library, AnalysisOptions};
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
