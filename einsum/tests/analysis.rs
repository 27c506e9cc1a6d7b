//! Op counts and footprints, with the numbers derived by hand, and the MoE analysis
//! under balanced and skewed routing.

use cascade_einsum::analysis::affine_distinct;
use cascade_einsum::{analyze, bind, check_source, library, Analysis, AnalysisOptions, Routing};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn ext(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn ops(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    ext(pairs)
}

fn opts(routing: Option<Routing>) -> AnalysisOptions {
    AnalysisOptions {
        dtype_bytes: 2,
        routing,
    }
}

fn tensor<'a>(a: &'a Analysis, name: &str) -> &'a cascade_einsum::analysis::TensorStats {
    a.tensors.iter().find(|t| t.name == name).unwrap()
}

#[test]
fn gemm_op_counts_and_footprints() {
    let c = check_source(
        "gemm.ein",
        "input A[T,K], W[K,N]\noutput C[t,n] = A[t,k] * W[k,n]\n",
    )
    .unwrap()
    .cascade;
    let s = bind(&c, &ext(&[("T", 3), ("K", 5), ("N", 7)])).unwrap();
    let a = analyze(&c, &s, &opts(None));
    let e = a.einsum("C").unwrap();
    // One MAC per point of T×K×N, nothing else.
    assert_eq!(e.iteration_points, 105);
    assert_eq!(e.computed_points, 105);
    assert_eq!(e.ops, ops(&[("mac", 105)]));
    assert_eq!(e.output_elems, 21);
    assert_eq!(a.total_ops, ops(&[("mac", 105)]));
    assert_eq!(tensor(&a, "A").bytes, 3 * 5 * 2);
    assert_eq!(tensor(&a, "W").bytes, 5 * 7 * 2);
    assert_eq!(tensor(&a, "C").bytes, 3 * 7 * 2);
    assert_eq!(tensor(&a, "C").kind, "output");
    assert_eq!(tensor(&a, "W").touched_bytes, tensor(&a, "W").bytes);
    // One pass over every rank.
    let passes: BTreeMap<String, u32> = ["K", "N", "T"].map(|r| (r.to_string(), 1)).into();
    assert_eq!(a.passes, passes);
}

#[test]
fn rmsnorm_counts_each_map_operator_over_its_own_indices() {
    let c = library::load("rmsnorm").unwrap().cascade;
    let (t, d) = (3u64, 8u64);
    let s = bind(&c, &ext(&[("T", t), ("D", d)])).unwrap();
    let a = analyze(&c, &s, &opts(None));
    // SS[t] = X[t,d] * X[t,d]: a MAC per (t, d).
    assert_eq!(a.einsum("SS").unwrap().ops, ops(&[("mac", t * d)]));
    // R[t] = rsqrt(SS[t] / size(D) + eps): one div, add and rsqrt per token.
    assert_eq!(
        a.einsum("R").unwrap().ops,
        ops(&[("add", t), ("div", t), ("rsqrt", t)])
    );
    // Y[t,d] = X[t,d] * R[t] * W[d]: two multiplies per (t, d).
    assert_eq!(a.einsum("Y").unwrap().ops, ops(&[("mul", 2 * t * d)]));
    assert_eq!(
        a.total_ops,
        ops(&[
            ("mac", t * d),
            ("add", t),
            ("div", t),
            ("rsqrt", t),
            ("mul", 2 * t * d)
        ])
    );
}

/// A random routing (each token's k distinct experts drawn uniformly, as Duplex's simulator
/// routes) sums to tokens × k, never gives an expert more than every token, is the same for
/// the same seed and count, and is uneven where the even split is not.
#[test]
fn random_routing_is_a_seeded_draw_of_k_distinct_experts_per_token() {
    for (experts, tokens, k) in [(8u64, 32u64, 2u64), (64, 128, 2), (2, 5, 4), (8, 1, 2)] {
        let r = Routing::random("X", experts, tokens, k, 777);
        let what = format!("experts {experts} tokens {tokens} k {k}");
        assert_eq!(r.tokens_per_expert.len() as u64, experts, "{what}");
        assert_eq!(
            r.tokens_per_expert.iter().sum::<u64>(),
            tokens * k.min(experts),
            "{what}"
        );
        assert!(r.max_tokens() <= tokens, "{what}: {r:?}");
        assert_eq!(r, Routing::random("X", experts, tokens, k, 777), "{what}");
    }
    // 32 tokens × top-2 over 8 experts: 8 each on average, and this draw is uneven.
    let r = Routing::random("X", 8, 32, 2, 777);
    let min = *r.tokens_per_expert.iter().min().unwrap();
    assert!(r.max_tokens() > min + 1, "{r:?}");
    assert_ne!(r, Routing::random("X", 8, 32, 2, 778));
    assert_ne!(
        r.tokens_per_expert,
        Routing::zipf("X", 8, 32, 2, 0.0).tokens_per_expert
    );
}

#[test]
fn zipf_routing_sums_to_tokens_times_k_and_respects_capacity() {
    for experts in [1u64, 2, 3, 8, 16] {
        for tokens in [1u64, 3, 4, 17, 64] {
            for k in [1u64, 2, 4] {
                for skew in [0.0, 0.5, 1.0, 2.0, 3.0, 8.0] {
                    let r = Routing::zipf("X", experts, tokens, k, skew);
                    let what = format!("experts {experts} tokens {tokens} k {k} skew {skew}");
                    assert_eq!(r.expert_rank, "X");
                    assert_eq!(r.tokens, tokens);
                    assert_eq!(r.tokens_per_expert.len() as u64, experts, "{what}");
                    assert_eq!(
                        r.tokens_per_expert.iter().sum::<u64>(),
                        tokens * k.min(experts),
                        "{what}"
                    );
                    assert!(r.max_tokens() <= tokens, "{what}: {r:?}");
                    // More popular experts never get fewer tokens.
                    assert!(
                        r.tokens_per_expert.windows(2).all(|w| w[0] >= w[1]),
                        "{what}: {r:?}"
                    );
                    if skew == 0.0 {
                        let min = *r.tokens_per_expert.iter().min().unwrap();
                        assert!(r.max_tokens() - min <= 1, "{what}: not balanced {r:?}");
                    }
                }
            }
        }
    }
    // Exact values: 8 experts, 4 tokens, k = 2.
    let balanced = Routing::zipf("X", 8, 4, 2, 0.0);
    assert_eq!(balanced.tokens_per_expert, vec![1; 8]);
    assert_eq!((balanced.active_experts(), balanced.max_tokens()), (8, 1));
    // Skew 3: weights 1, 1/8, 1/27, …; expert 0 would take 7 of the 8 assignments
    // but is capped at the 4 tokens; the other 4 go to experts 1 and 2 (3 + 1).
    let skewed = Routing::zipf("X", 8, 4, 2, 3.0);
    assert_eq!(skewed.tokens_per_expert, vec![4, 3, 1, 0, 0, 0, 0, 0]);
    assert_eq!((skewed.active_experts(), skewed.max_tokens()), (3, 4));
    // Fewer experts than k: every expert sees every token.
    assert_eq!(
        Routing::zipf("X", 2, 5, 4, 1.0).tokens_per_expert,
        vec![5, 5]
    );
    // Balanced with a remainder: ties go to the lower index.
    assert_eq!(
        Routing::zipf("X", 8, 3, 2, 0.0).tokens_per_expert,
        vec![1, 1, 1, 1, 1, 1, 0, 0]
    );
}

#[test]
fn moe_balanced_vs_skewed_routing() {
    let c = library::load("moe").unwrap().cascade;
    let (t, d, x, f) = (4u64, 4u64, 8u64, 6u64);
    let s = bind(&c, &ext(&[("T", t), ("D", d), ("X", x), ("F", f)])).unwrap();
    let dense = analyze(&c, &s, &opts(None));
    let bal = analyze(&c, &s, &opts(Some(Routing::zipf("X", x, t, 2, 0.0))));
    let skw = analyze(&c, &s, &opts(Some(Routing::zipf("X", x, t, 2, 3.0))));

    // 4 tokens × top-2 = 8 routed (token, expert) pairs out of 32.
    let pairs = t * 2;
    for a in [&dense, &bal, &skw] {
        // Router: a dense GEMM over T×D×X, and the top-2 compares.
        assert_eq!(a.einsum("RL").unwrap().ops["mac"], t * d * x);
        assert_eq!(a.einsum("G").unwrap().ops, ops(&[("cmp", t * x * 2)]));
        for name in ["HG", "HU", "HO"] {
            let e = a.einsum(name).unwrap();
            assert_eq!(e.iteration_points, x * t * f * d, "{name}");
            assert_eq!(e.computed_points, pairs * f * d, "{name}");
            assert_eq!(e.ops, ops(&[("mac", pairs * f * d)]), "{name}");
        }
        // HA = silu(HG) * HU per routed (x, t, f): silu = exp + add + div + mul.
        let n = pairs * f;
        assert_eq!(
            a.einsum("HA").unwrap().ops,
            ops(&[("add", n), ("div", n), ("exp", n), ("mul", 2 * n)])
        );
        assert_eq!(a.einsum("HA").unwrap().output_elems, n);
        // Combine: one MAC per routed pair and model dim.
        assert_eq!(a.einsum("OUT").unwrap().ops, ops(&[("mac", pairs * d)]));
        assert_eq!(
            a.op("mac"),
            t * d * x + 3 * pairs * f * d + pairs * d,
            "expert MACs depend only on the number of routed tokens"
        );
    }
    assert_eq!(bal.total_ops, skw.total_ops);
    assert_eq!(dense.total_ops, bal.total_ops);

    // Routing statistics on the masked Einsums.
    for name in ["HG", "HU", "HA", "HO", "OUT"] {
        assert_eq!(dense.einsum(name).unwrap().active_experts, None);
        assert_eq!(bal.einsum(name).unwrap().active_experts, Some(8), "{name}");
        assert_eq!(bal.einsum(name).unwrap().max_tokens_per_expert, Some(1));
        assert_eq!(skw.einsum(name).unwrap().active_experts, Some(3), "{name}");
        assert_eq!(skw.einsum(name).unwrap().max_tokens_per_expert, Some(4));
    }
    assert_eq!(bal.einsum("RL").unwrap().active_experts, None);

    // Expert weights: 8 × 4 × 6 elements × 2 bytes = 384 bytes each; with skew only
    // 3 of the 8 experts are read.
    for w in ["WG", "WU", "WD"] {
        assert_eq!(tensor(&bal, w).bytes, x * d * f * 2);
        assert_eq!(tensor(&bal, w).touched_bytes, 384, "{w}");
        assert_eq!(tensor(&skw, w).bytes, 384, "{w}");
        assert_eq!(tensor(&skw, w).touched_bytes, 144, "{w}");
        assert_eq!(tensor(&dense, w).touched_bytes, 384, "{w}");
    }
    // Router weights and activations are read whole either way.
    for name in ["WR", "IN"] {
        assert_eq!(tensor(&skw, name).touched_bytes, tensor(&skw, name).bytes);
    }
}

/// Analyse a cascade written here with the given extents (2 bytes per element).
fn analyse_text(text: &str, pairs: &[(&str, u64)]) -> Analysis {
    let c = check_source("t.ein", text).unwrap().cascade;
    let s = bind(&c, &ext(pairs)).unwrap();
    analyze(&c, &s, &opts(None))
}

#[test]
fn conv2d_macs_and_halo_footprint() {
    // 3×3, stride 1, 6×6 output: the input window is 8×8 per channel. H = W = 10
    // holds two padding rows and columns that no output reads.
    let a = analyse_text(
        library::source("conv2d").unwrap(),
        &[
            ("N", 1),
            ("C", 2),
            ("K", 4),
            ("P", 6),
            ("Q", 6),
            ("R", 3),
            ("S", 3),
            ("H", 10),
            ("W", 10),
        ],
    );
    // MACs = the iteration space N·K·P·Q·C·R·S; nothing else.
    assert_eq!(a.einsum("O").unwrap().ops, ops(&[("mac", 4 * 36 * 2 * 9)]));
    let i = tensor(&a, "I");
    assert_eq!(i.elems, 2 * 10 * 10);
    assert_eq!(i.touched_elems, 2 * 8 * 8);
    assert_eq!(i.touched_bytes, 2 * 8 * 8 * 2);
    // Filters and outputs are touched whole.
    assert_eq!(tensor(&a, "F").touched_elems, 4 * 2 * 9);
    assert_eq!(tensor(&a, "O").touched_elems, 4 * 36);
    // Window ranks are never traversed: no pass count for H or W.
    assert!(
        !a.passes.contains_key("H") && a.passes["P"] == 1,
        "{:?}",
        a.passes
    );
}

#[test]
fn strided_footprint_skips_rows() {
    // 1×1, stride 2 (a ResNet shortcut): 4×4 outputs read every other row and column
    // of an 8×8 input — 16 of 64 elements.
    let a = analyse_text(
        library::source("conv2d_s2").unwrap(),
        &[
            ("N", 1),
            ("C", 1),
            ("K", 1),
            ("P", 4),
            ("Q", 4),
            ("R", 1),
            ("S", 1),
            ("H", 8),
            ("W", 8),
        ],
    );
    let i = tensor(&a, "I");
    assert_eq!((i.elems, i.touched_elems), (64, 16));
    // 3×3 at stride 2 overlaps its windows: rows 0..=8 of 9, all read.
    let a = analyse_text(
        library::source("conv2d_s2").unwrap(),
        &[
            ("N", 1),
            ("C", 1),
            ("K", 1),
            ("P", 4),
            ("Q", 4),
            ("R", 3),
            ("S", 3),
        ],
    );
    let i = tensor(&a, "I");
    assert_eq!((i.elems, i.touched_elems), (81, 81));
}

#[test]
fn gapped_and_dilated_footprints() {
    // Stride 4 over a 2-tap window: rows {0,1, 4,5, 8,9} of 10.
    let a = analyse_text(
        "input I[H], F[R]\noutput O[p] = I[4*p+r] * F[r]\n",
        &[("P", 3), ("R", 2)],
    );
    let i = tensor(&a, "I");
    assert_eq!((i.elems, i.touched_elems), (10, 6));
    // Dilation 2 with one output: rows {0, 2, 4} of 5.
    let a = analyse_text(
        "input I[H], F[R]\noutput O[p] = I[p+2*r] * F[r]\n",
        &[("P", 1), ("R", 3)],
    );
    let i = tensor(&a, "I");
    assert_eq!((i.elems, i.touched_elems), (5, 3));
    // Two accesses of one tensor: even rows and odd rows, together all 8.
    let a = analyse_text("input I[H]\noutput O[p] = I[2*p] + I[2*p+1]\n", &[("P", 4)]);
    let i = tensor(&a, "I");
    assert_eq!((i.elems, i.touched_elems), (8, 8));
    // Only the even rows when the odd ones are read by nobody.
    let a = analyse_text("input I[H]\noutput O[p] = I[2*p] + I[2*p+4]\n", &[("P", 4)]);
    let i = tensor(&a, "I");
    assert_eq!((i.elems, i.touched_elems), (11, 6));
}

#[test]
fn distinct_affine_values_at_scale() {
    // Stride-1 windows are counted in closed form however long.
    assert_eq!(affine_distinct(&[(1, 1 << 40), (1, 4)]), (1 << 40) + 3);
    // A common factor is divided out: 2·p over 2^40 values is 2^40 values.
    assert_eq!(affine_distinct(&[(2, 1 << 40)]), 1 << 40);
    // Gapped windows wider than the bitset get an upper bound, here exact: 2 rows of
    // every 8, for 2^30 outputs.
    assert_eq!(affine_distinct(&[(8, 1 << 30), (1, 2)]), 1 << 31);
    assert_eq!(affine_distinct(&[]), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The window count equals brute-force enumeration of the affine form.
    #[test]
    fn distinct_affine_values_match_enumeration(
        terms in prop::collection::vec((1u64..=7, 1u64..=6), 0..4),
    ) {
        let mut seen = BTreeSet::new();
        let mut point = vec![0u64; terms.len()];
        loop {
            seen.insert(terms.iter().zip(&point).map(|((c, _), x)| c * x).sum::<u64>());
            let mut k = 0;
            while k < terms.len() {
                point[k] += 1;
                if point[k] < terms[k].1 {
                    break;
                }
                point[k] = 0;
                k += 1;
            }
            if k == terms.len() {
                break;
            }
        }
        prop_assert_eq!(affine_distinct(&terms), seen.len() as u64, "{:?}", terms);
    }
}

#[test]
fn weighted_routing_follows_measured_counts() {
    // 50 tokens × top-2 = 100 pairs over weights 5:3:2:0 → 50, 30, 20, 0; none above 50.
    let r = Routing::weighted("X", 50, 2, &[5.0, 3.0, 2.0, 0.0]);
    assert_eq!(r.tokens_per_expert, [50, 30, 20, 0]);
    // A hot expert is capped at the token count and its excess goes to the others.
    let r = Routing::weighted("X", 10, 2, &[100.0, 1.0, 1.0]);
    assert_eq!(r.tokens_per_expert.iter().sum::<u64>(), 20);
    assert_eq!(r.tokens_per_expert[0], 10);
    // Zipf is the weighted routing with weights 1/r^s.
    let w: Vec<f64> = (1..=8).map(|i| 1.0 / f64::from(i).powf(1.2)).collect();
    assert_eq!(
        Routing::weighted("X", 64, 2, &w),
        Routing::zipf("X", 8, 64, 2, 1.2)
    );
}
