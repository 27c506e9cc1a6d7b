//! The reference interpreter against itself (1-, 2- and 3-pass attention compute the
//! same thing) and against direct loop implementations written here.

use cascade_einsum::{bind, evaluate, library, random_inputs, Cascade, Shapes, Tensor};
use proptest::prelude::*;
use std::collections::BTreeMap;

type Env = BTreeMap<String, Tensor>;

fn load(name: &str) -> Cascade {
    library::load(name).unwrap().cascade
}

fn ext(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn run(c: &Cascade, s: &Shapes, inputs: &Env) -> Env {
    evaluate(c, s, inputs).unwrap_or_else(|e| panic!("{e}"))
}

/// Largest elementwise relative error, |a−b| / max(|a|, |b|), with a floor of
/// 1e-6 on the denominator so values that cancel to ~0 do not divide by ~0.
fn max_rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            assert!(x.is_finite() && y.is_finite(), "{x} vs {y}");
            (x - y).abs() / x.abs().max(y.abs()).max(1e-6)
        })
        .fold(0.0, f64::max)
}

fn assert_close(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape, want.shape, "{what}: shapes differ");
    let e = max_rel_err(&got.data, &want.data);
    assert!(e < 1e-9, "{what}: relative error {e:e}");
}

fn idx(shape: &[usize], ix: &[usize]) -> usize {
    ix.iter().zip(shape).fold(0, |acc, (i, n)| acc * n + i)
}

fn tensor(shape: Vec<usize>, f: impl Fn(&[usize]) -> f64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut data = Vec::with_capacity(n);
    let mut ix = vec![0usize; shape.len()];
    for _ in 0..n {
        data.push(f(&ix));
        for k in (0..ix.len()).rev() {
            ix[k] += 1;
            if ix[k] < shape[k] {
                break;
            }
            ix[k] = 0;
        }
    }
    Tensor::new(shape, data)
}

fn silu(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

fn gelu_tanh(x: f64) -> f64 {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
}

/// An element reader of the inputs: `at(tensor, index)`.
type At<'a> = &'a dyn Fn(&str, &[usize]) -> f64;

/// Runs MoE cascade `name` at (T, D, X, F) on seeded inputs and checks it against plain loops:
/// router softmax, top-2 (ties to the lower index), gates renormalised over the chosen two,
/// each chosen expert's activation `act(at, t, x, f, D)` times its down matrix `down`, summed.
fn moe_against_loops(
    name: &str,
    (t, d, x, f): (u64, u64, u64, u64),
    seed: u64,
    down: &str,
    act: &dyn Fn(At, usize, usize, usize, usize) -> f64,
) {
    let c = load(name);
    let s = bind(&c, &ext(&[("T", t), ("D", d), ("X", x), ("F", f)])).unwrap();
    let inputs = random_inputs(&c, &s, seed);
    let out = run(&c, &s, &inputs)["OUT"].clone();
    let (t, d, x, f) = (t as usize, d as usize, x as usize, f as usize);
    let at = |name: &str, ix: &[usize]| {
        let a = &inputs[name];
        a.data[idx(&a.shape, ix)]
    };
    let mut want = vec![0.0; t * d];
    for ti in 0..t {
        let logits: Vec<f64> = (0..x)
            .map(|xi| {
                (0..d)
                    .map(|di| at("IN", &[ti, di]) * at("WR", &[di, xi]))
                    .sum()
            })
            .collect();
        let mx = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let ex: Vec<f64> = logits.iter().map(|l| (l - mx).exp()).collect();
        let sum: f64 = ex.iter().sum();
        let prob: Vec<f64> = ex.iter().map(|v| v / sum).collect();
        let mut order: Vec<usize> = (0..x).collect();
        order.sort_by(|&a, &b| prob[b].total_cmp(&prob[a]).then(a.cmp(&b)));
        let chosen = &order[..2];
        let gsum: f64 = chosen.iter().map(|&xi| prob[xi]).sum();
        for &xi in chosen {
            let gate = prob[xi] / gsum;
            for fi in 0..f {
                let a = act(&at, ti, xi, fi, d);
                for di in 0..d {
                    want[ti * d + di] += gate * a * at(down, &[xi, fi, di]);
                }
            }
        }
    }
    assert_close(name, &out, &Tensor::new(vec![t, d], want));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// 1-pass ≡ 2-pass ≡ 3-pass attention on the same random Q, K, V.
    #[test]
    fn attention_cascades_agree(
        b in 1u64..=2,
        h in 1u64..=2,
        e in prop::sample::select(vec![2u64, 4, 8]),
        p in 1u64..=5,
        m0 in prop::sample::select(vec![1u64, 2, 4]),
        m1 in 1u64..=4,
        seed in any::<u64>(),
    ) {
        let m = m1 * m0;
        let given = ext(&[("B", b), ("H", h), ("E", e), ("F", e), ("P", p), ("M", m), ("M0", m0)]);
        let c3 = load("attention_3pass");
        let s3 = bind(&c3, &given).unwrap();
        let inputs = random_inputs(&c3, &s3, seed);
        let av3 = run(&c3, &s3, &inputs)["AV"].clone();
        for name in ["attention_2pass", "attention_1pass"] {
            let c = load(name);
            let s = bind(&c, &given).unwrap();
            prop_assert_eq!(s.extent("M1"), m1);
            assert_close(name, &run(&c, &s, &inputs)["AV"], &av3);
        }
        // And the 3-pass result is softmax(QᵀK)·V computed directly.
        let (q, k, v) = (&inputs["Q"], &inputs["K"], &inputs["V"]);
        let (b, h, e, p, m) = (b as usize, h as usize, e as usize, p as usize, m as usize);
        let want = tensor(vec![b, h, e, p], |ix| {
            let (bi, hi, fi, pi) = (ix[0], ix[1], ix[2], ix[3]);
            let s: Vec<f64> = (0..m)
                .map(|mi| {
                    (0..e)
                        .map(|ei| {
                            q.data[idx(&q.shape, &[bi, hi, ei, pi])]
                                * k.data[idx(&k.shape, &[bi, hi, ei, mi])]
                        })
                        .sum()
                })
                .collect();
            let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let w: Vec<f64> = s.iter().map(|x| (x - mx).exp()).collect();
            let den: f64 = w.iter().sum();
            (0..m)
                .map(|mi| w[mi] / den * v.data[idx(&v.shape, &[bi, hi, fi, mi])])
                .sum()
        });
        assert_close("attention_3pass vs direct", &av3, &want);
    }

    /// GQA decode ≡ per-head 3-pass attention with each KV head repeated for its
    /// G query heads and a single query (P = 1).
    #[test]
    fn gqa_decode_is_attention_per_query_head(
        b in 1u64..=2,
        h in 1u64..=2,
        g in 1u64..=3,
        e in prop::sample::select(vec![2u64, 4, 8]),
        m0 in prop::sample::select(vec![1u64, 2, 4]),
        m1 in 1u64..=4,
        seed in any::<u64>(),
    ) {
        let m = m1 * m0;
        let cg = load("gqa_decode");
        let sg = bind(&cg, &ext(&[("B", b), ("H", h), ("G", g), ("E", e), ("F", e), ("M", m), ("M0", m0)])).unwrap();
        let inputs = random_inputs(&cg, &sg, seed);
        let av = run(&cg, &sg, &inputs)["AV"].clone();

        let c3 = load("attention_3pass");
        let s3 = bind(&c3, &ext(&[("B", b), ("H", h * g), ("E", e), ("F", e), ("P", 1), ("M", m)])).unwrap();
        let (b, h, g, e, m) = (b as usize, h as usize, g as usize, e as usize, m as usize);
        let (q, k, v) = (&inputs["Q"], &inputs["K"], &inputs["V"]);
        // Query head hq = kv_head * G + g.
        let mut a3 = Env::new();
        a3.insert("Q".into(), tensor(vec![b, h * g, e, 1], |ix| {
            q.data[idx(&q.shape, &[ix[0], ix[1] / g, ix[1] % g, ix[2]])]
        }));
        a3.insert("K".into(), tensor(vec![b, h * g, e, m], |ix| {
            k.data[idx(&k.shape, &[ix[0], ix[1] / g, ix[2], ix[3]])]
        }));
        a3.insert("V".into(), tensor(vec![b, h * g, e, m], |ix| {
            v.data[idx(&v.shape, &[ix[0], ix[1] / g, ix[2], ix[3]])]
        }));
        let av3 = &run(&c3, &s3, &a3)["AV"];
        // AV3[b, hq, f, 0] laid out as AV[b, h, g, f].
        let want = tensor(vec![b, h, g, e], |ix| {
            av3.data[idx(&av3.shape, &[ix[0], ix[1] * g + ix[2], ix[3], 0])]
        });
        assert_close("gqa_decode", &av, &want);
    }

    /// MoE ≡ router softmax, top-2 (ties to the lower index), renormalised gates,
    /// expert SwiGLU FFNs and the weighted sum, written as plain loops.
    #[test]
    fn moe_matches_a_direct_implementation(
        t in 1u64..=4,
        d in 1u64..=4,
        x in prop::sample::select(vec![2u64, 3, 4, 8]),
        f in 1u64..=4,
        seed in any::<u64>(),
    ) {
        moe_against_loops("moe", (t, d, x, f), seed, "WD", &|at, ti, xi, fi, d| {
            let hg: f64 = (0..d).map(|di| at("IN", &[ti, di]) * at("WG", &[xi, di, fi])).sum();
            let hu: f64 = (0..d).map(|di| at("IN", &[ti, di]) * at("WU", &[xi, di, fi])).sum();
            silu(hg) * hu
        });
    }

    /// GELU-expert MoE (GLaM) ≡ the same router and combine around two-matrix GELU experts.
    #[test]
    fn moe_gelu_matches_a_direct_implementation(
        t in 1u64..=4,
        d in 1u64..=4,
        x in prop::sample::select(vec![2u64, 3, 4, 8]),
        f in 1u64..=4,
        seed in any::<u64>(),
    ) {
        moe_against_loops("moe_gelu", (t, d, x, f), seed, "W2", &|at, ti, xi, fi, d| {
            gelu_tanh((0..d).map(|di| at("IN", &[ti, di]) * at("W1", &[xi, di, fi])).sum())
        });
    }

    /// SwiGLU and GELU FFNs against direct loops.
    #[test]
    fn ffns_match_direct_loops(
        t in 1u64..=4,
        d in 1u64..=6,
        f in 1u64..=6,
        seed in any::<u64>(),
    ) {
        let given = ext(&[("T", t), ("D", d), ("F", f)]);
        let (t, d, f) = (t as usize, d as usize, f as usize);

        let c = load("ffn_swiglu");
        let s = bind(&c, &given).unwrap();
        let inp = random_inputs(&c, &s, seed);
        let y = run(&c, &s, &inp)["Y"].clone();
        let (xx, wg, wu, wd) = (&inp["X"].data, &inp["WG"].data, &inp["WU"].data, &inp["WD"].data);
        let want = tensor(vec![t, d], |ix| {
            (0..f)
                .map(|fi| {
                    let hg: f64 = (0..d).map(|di| xx[ix[0] * d + di] * wg[di * f + fi]).sum();
                    let hu: f64 = (0..d).map(|di| xx[ix[0] * d + di] * wu[di * f + fi]).sum();
                    silu(hg) * hu * wd[fi * d + ix[1]]
                })
                .sum()
        });
        assert_close("ffn_swiglu", &y, &want);

        let c = load("ffn_gelu");
        let s = bind(&c, &given).unwrap();
        let inp = random_inputs(&c, &s, seed);
        let y = run(&c, &s, &inp)["Y"].clone();
        let (xx, w1, w2) = (&inp["X"].data, &inp["W1"].data, &inp["W2"].data);
        let want = tensor(vec![t, d], |ix| {
            (0..f)
                .map(|fi| {
                    let h: f64 = (0..d).map(|di| xx[ix[0] * d + di] * w1[di * f + fi]).sum();
                    gelu_tanh(h) * w2[fi * d + ix[1]]
                })
                .sum()
        });
        assert_close("ffn_gelu", &y, &want);
    }

    /// RMSNorm and LayerNorm against direct loops (eps = 1e-5).
    #[test]
    fn norms_match_direct_loops(t in 1u64..=4, d in 1u64..=16, seed in any::<u64>()) {
        let given = ext(&[("T", t), ("D", d)]);
        let (t, d) = (t as usize, d as usize);
        let eps = 1e-5;

        let c = load("rmsnorm");
        let s = bind(&c, &given).unwrap();
        let inp = random_inputs(&c, &s, seed);
        let y = run(&c, &s, &inp)["Y"].clone();
        let (xx, w) = (&inp["X"].data, &inp["W"].data);
        let want = tensor(vec![t, d], |ix| {
            let row = &xx[ix[0] * d..(ix[0] + 1) * d];
            let ms = row.iter().map(|v| v * v).sum::<f64>() / d as f64;
            row[ix[1]] / (ms + eps).sqrt() * w[ix[1]]
        });
        assert_close("rmsnorm", &y, &want);

        let c = load("layernorm");
        let s = bind(&c, &given).unwrap();
        let inp = random_inputs(&c, &s, seed);
        let y = run(&c, &s, &inp)["Y"].clone();
        let (xx, gamma, beta) = (&inp["X"].data, &inp["GAMMA"].data, &inp["BETA"].data);
        let want = tensor(vec![t, d], |ix| {
            let row = &xx[ix[0] * d..(ix[0] + 1) * d];
            let mean = row.iter().sum::<f64>() / d as f64;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d as f64;
            (row[ix[1]] - mean) / (var + eps).sqrt() * gamma[ix[1]] + beta[ix[1]]
        });
        assert_close("layernorm", &y, &want);
    }
}

#[test]
fn gelu_is_the_tanh_approximation() {
    use cascade_einsum::syntax::UnOp;
    for x in [-3.0, -1.0, -0.25, 0.0, 0.5, 1.0, 2.5] {
        approx::assert_relative_eq!(UnOp::Gelu.apply(x), gelu_tanh(x), max_relative = 1e-15);
    }
    // Within 1e-3 of the exact erf form at x = 1 (0.841344746...).
    approx::assert_abs_diff_eq!(UnOp::Gelu.apply(1.0), 0.841_344_746, epsilon = 1e-3);
}

#[test]
fn interpreter_is_deterministic() {
    for name in library::names() {
        let c = load(name);
        // Small extents for every root rank; split parts but the outermost are 2;
        // window ranks (convolution inputs) derived from their affine indices.
        let windows = c.window_ranks();
        let mut given = BTreeMap::new();
        for (r, info) in &c.ranks {
            if info.parent.is_none() && !windows.contains(r) {
                given.insert(r.clone(), 4u64);
            }
            for p in info.parts.iter().skip(1) {
                given.insert(p.clone(), 2u64);
            }
        }
        let s = bind(&c, &given).unwrap();
        let checksum = |seed: u64| -> Vec<u64> {
            let env = run(&c, &s, &random_inputs(&c, &s, seed));
            c.outputs
                .iter()
                .map(|o| env[o].checksum().to_bits())
                .collect()
        };
        let a = checksum(42);
        assert_eq!(a, checksum(42), "{name}: same seed, different result");
        assert_ne!(a, checksum(43), "{name}: a different seed changed nothing");
        // Same seed → identical inputs, too.
        assert_eq!(random_inputs(&c, &s, 42), random_inputs(&c, &s, 42));
    }
}

/// Which convolution a generated cascade computes.
#[derive(Clone, Copy, Debug)]
enum Conv {
    OneD,
    TwoD,
    Depthwise2d,
}

/// `stride*p + dilation*r` as cascade text (`p+r`, `2*p+r`, `p+2*r`, …).
fn window(p: &str, r: &str, stride: u64, dilation: u64) -> String {
    let term = |c: u64, v: &str| {
        if c == 1 {
            v.to_string()
        } else {
            format!("{c}*{v}")
        }
    };
    format!("{}+{}", term(stride, p), term(dilation, r))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Affine indices in the interpreter ≡ convolutions written as nested loops here:
    /// conv1d, conv2d and depthwise conv2d with random strides, dilations and padding
    /// rows that are never read.
    #[test]
    fn convolutions_match_direct_loops(
        kind in prop::sample::select(vec![Conv::OneD, Conv::TwoD, Conv::Depthwise2d]),
        (n, c, k) in (1u64..=2, 1u64..=3, 1u64..=3),
        (p, q, r, s) in (1u64..=4, 1u64..=4, 1u64..=3, 1u64..=3),
        stride in 1u64..=3,
        dilation in 1u64..=2,
        pad in 0u64..=2,
        seed in any::<u64>(),
    ) {
        let (wh, ww) = (window("p", "r", stride, dilation), window("q", "s", stride, dilation));
        let text = match kind {
            Conv::OneD => format!(
                "input I[N,C,H], F[K,C,R]\noutput O[n,k,p] = I[n,c,{wh}] * F[k,c,r]\n"
            ),
            Conv::TwoD => format!(
                "input I[N,C,H,W], F[K,C,R,S]\noutput O[n,k,p,q] = I[n,c,{wh},{ww}] * F[k,c,r,s]\n"
            ),
            Conv::Depthwise2d => format!(
                "input I[N,C,H,W], F[C,R,S]\noutput O[n,c,p,q] = I[n,c,{wh},{ww}] * F[c,r,s]\n"
            ),
        };
        let cas = cascade_einsum::check_source("conv.ein", &text).unwrap().cascade;
        // The window's extent: derived, plus `pad` rows at the end that are never read.
        let need = |o: u64, f: u64| stride * (o - 1) + dilation * (f - 1) + 1;
        let given = ext(&[
            ("N", n), ("C", c), ("K", k), ("P", p), ("Q", q), ("R", r), ("S", s),
            ("H", need(p, r) + pad), ("W", need(q, s) + pad),
        ]);
        let sh = bind(&cas, &given).unwrap();
        let inputs = random_inputs(&cas, &sh, seed);
        let got = &run(&cas, &sh, &inputs)["O"];
        let (i, f) = (&inputs["I"], &inputs["F"]);
        let (n, c, k, p, q, r, s) =
            (n as usize, c as usize, k as usize, p as usize, q as usize, r as usize, s as usize);
        let (st, dl) = (stride as usize, dilation as usize);
        let at = |t: &Tensor, ix: &[usize]| t.data[idx(&t.shape, ix)];
        let want = match kind {
            Conv::OneD => tensor(vec![n, k, p], |o| {
                let mut acc = 0.0;
                for ci in 0..c {
                    for ri in 0..r {
                        acc += at(i, &[o[0], ci, st * o[2] + dl * ri]) * at(f, &[o[1], ci, ri]);
                    }
                }
                acc
            }),
            Conv::TwoD => tensor(vec![n, k, p, q], |o| {
                let mut acc = 0.0;
                for ci in 0..c {
                    for ri in 0..r {
                        for si in 0..s {
                            acc += at(i, &[o[0], ci, st * o[2] + dl * ri, st * o[3] + dl * si])
                                * at(f, &[o[1], ci, ri, si]);
                        }
                    }
                }
                acc
            }),
            Conv::Depthwise2d => tensor(vec![n, c, p, q], |o| {
                let mut acc = 0.0;
                for ri in 0..r {
                    for si in 0..s {
                        acc += at(i, &[o[0], o[1], st * o[2] + dl * ri, st * o[3] + dl * si])
                            * at(f, &[o[1], ri, si]);
                    }
                }
                acc
            }),
        };
        prop_assert_eq!(&got.shape, &want.shape);
        for (g, w) in got.data.iter().zip(&want.data) {
            prop_assert!((g - w).abs() <= 1e-9, "{:?}: {} vs {}\n{}", kind, g, w, text);
        }
    }
}
