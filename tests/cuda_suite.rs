//! The contract between the CUDA measurement suite (`cascade-cuda`) and the model that
//! `cascade crosscheck` compares its measurements with: runs without a GPU and without the
//! `cuda` feature (`cascade-cuda` is a dev-dependency), so CI holds both sides to it.
//!
//! Every op spec the suite writes parses with the model's grammar, every category is one the
//! comparison knows, the suite's CSV reads back through the comparison's parser, every kernel
//! of our own has the mapping the model predicts it with, and both sides split decode the same.

use cascade::gpu::recorded::{self, built_mapping, parse_recorded, CATEGORIES};
use cascade::gpu::GpuOp;
use cascade_cuda::suite::{self, Case, DIAGNOSTIC};
use cascade_cuda::{Measurement, SuiteResult};

/// The full suite, the quick one and the diagnostic cases.
fn every_case() -> Vec<Case> {
    let mut v = suite::cases(false);
    v.extend(suite::cases(true));
    v.extend(suite::diagnostic_cases());
    v
}

#[test]
fn every_op_spec_parses_with_the_model_grammar_and_has_a_known_category() {
    let cases = suite::cases(false);
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for c in cases.iter().chain(&suite::cases(true)) {
        let op = GpuOp::parse(&c.op).unwrap_or_else(|e| panic!("{}: `{}`: {e}", c.name, c.op));
        assert!(
            CATEGORIES.contains(&c.category),
            "{}: category {} is not one of {CATEGORIES:?}",
            c.name,
            c.category
        );
        // The parsed op is the kind the category says.
        let kind_ok = matches!(
            (c.category, &op),
            ("gemm_large" | "gemm_small", GpuOp::Gemm { .. })
                | ("batched", GpuOp::Bmm { .. })
                | ("attention_fused", GpuOp::Attention { .. })
                | ("attention_unfused", GpuOp::AttentionUnfused { .. })
                | ("decode", GpuOp::DecodeAttention { .. })
                | ("copy", GpuOp::Copy { .. })
        );
        assert!(kind_ok, "{}: category {} but op {op:?}", c.name, c.category);
    }
    // Diagnostic cases are outside the statistics; those with an op spec (all but the launch
    // and pointer-chase probes, `-`) are still in the model's grammar.
    for c in suite::diagnostic_cases() {
        assert_eq!(c.category, DIAGNOSTIC, "{}", c.name);
        if c.op != "-" {
            GpuOp::parse(&c.op).unwrap_or_else(|e| panic!("{}: `{}`: {e}", c.name, c.op));
        }
    }
}

#[test]
fn both_sides_list_the_same_categories_in_the_same_order() {
    assert_eq!(cascade_cuda::CATEGORIES, recorded::CATEGORIES);
    // and the suite measures every one of them
    let cases = suite::cases(false);
    for cat in CATEGORIES {
        assert!(cases.iter().any(|c| c.category == cat), "no {cat} case");
    }
}

#[test]
fn the_suite_csv_reads_back_through_the_comparison_parser() {
    let cases = every_case();
    let res = SuiteResult {
        device: "NVIDIA H200".into(),
        driver: "580.1".into(),
        cuda: "13.0".into(),
        date: "2026-01-02".into(),
        measurements: cases
            .iter()
            .enumerate()
            .map(|(i, c)| Measurement {
                case: c.name.clone(),
                category: c.category.to_string(),
                op: c.op.clone(),
                impl_name: c.impl_name.to_string(),
                median_s: 1e-5 * (i + 1) as f64,
                min_s: 1e-5,
                max_s: 1e-3,
                launches: 20,
                // every other case without a graph time: an empty field
                graph_median_s: if i % 2 == 0 { 5e-6 } else { f64::NAN },
                rel_err: 1e-3,
                ok: i % 3 != 0,
                flops: c.flops(),
                bytes: c.bytes(),
                notes: "a note, with a comma".into(),
            })
            .collect(),
        ..Default::default()
    };
    let csv = cascade_cuda::csv_string(&res);
    let back = parse_recorded(&csv, "suite.csv").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.len(), cases.len());
    for (i, (r, c)) in back.iter().zip(&cases).enumerate() {
        assert_eq!(r.case(), c.name);
        assert_eq!(r.category(), c.category);
        assert_eq!(r.op(), c.op);
        assert_eq!(r.impl_name(), c.impl_name);
        assert_eq!(r.ok, i % 3 != 0, "{}", c.name);
        let median = 1e-5 * (i + 1) as f64;
        assert!((r.median_s / median - 1.0).abs() < 1e-6, "{}", c.name);
        assert_eq!(r.graph_s.is_some(), i % 2 == 0, "{}", c.name);
        assert_eq!(r.run_info(), ("NVIDIA H200", "580.1", "13.0", "2026-01-02"));
    }
}

#[test]
fn every_kernel_of_our_own_has_the_mapping_the_model_predicts_it_with() {
    let mut ours = 0;
    for c in suite::cases(false) {
        let op = GpuOp::parse(&c.op).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let built = built_mapping(&op, c.impl_name, 132);
        if c.impl_name.starts_with("ours_") {
            ours += 1;
            assert!(
                built.is_some(),
                "{}: no built mapping for {}",
                c.name,
                c.impl_name
            );
        } else {
            assert!(
                built.is_none(),
                "{}: vendor code is mapped by search",
                c.name
            );
        }
    }
    assert!(ours >= 20, "{ours} cases of our own kernels");
}

#[test]
fn suite_and_model_split_decode_alike() {
    for b in [1usize, 2, 3, 16, 32, 64, 128] {
        for hkv in [1usize, 2, 8] {
            for l in [1usize, 64, 1000, 1024, 4096, 8192, 32768, 100_000] {
                for sms in [16usize, 132] {
                    assert_eq!(
                        suite::decode_chunk(b, hkv, l, sms) as u64,
                        recorded::decode_chunk(b as u64, hkv as u64, l as u64, sms as u64),
                        "b={b} hkv={hkv} l={l} sms={sms}"
                    );
                }
            }
        }
    }
}
