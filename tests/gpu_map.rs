//! `cascade map` on a GPU architecture: each cascade lowered to the GPU ops eager PyTorch
//! launches and estimated as `cascade estimate` does, so both give the same time for the same
//! op; what has no GPU op is said, not skipped; the spatial mapper's options are refused.

use serde_json::Value;

mod common;
use common::{cascade, stderr, stdout, tmp_in};

fn ok_json(args: &[&str]) -> Value {
    let o = cascade(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn map_llama(extra: &[&str]) -> Value {
    let mut args = vec!["map", "--workload", "llama3_8b", "--arch", "h200", "--json"];
    args.extend_from_slice(extra);
    ok_json(&args)
}

fn estimate(spec: &str) -> Value {
    ok_json(&["estimate", "--arch", "h200", "--op", spec, "--json"])
}

fn instances(v: &Value) -> &Vec<Value> {
    v["instances"].as_array().expect("instances")
}

/// The result of the instance of `role`, which must have lowered.
fn lowered<'a>(v: &'a Value, role: &str) -> &'a Value {
    let i = instances(v)
        .iter()
        .find(|i| i["role"] == role)
        .unwrap_or_else(|| panic!("no instance {role}"));
    let ok = &i["result"]["Ok"];
    assert!(ok.is_object(), "{role}: {}", i["result"]);
    ok
}

/// The acceptance test of issue 10: for llama3_8b's prefill on the H200, `map` gives the
/// qkv projection, the norm and the attention exactly the time `estimate` gives their op.
#[test]
fn estimate_equals_map_for_the_same_op() {
    let v = map_llama(&[]);
    assert_eq!(v["arch"], "h200");
    for (role, spec) in [
        // T = batch 8 × seq 2048; N = (32 + 2·8) heads × 128.
        ("qkv_proj", "gemm m=16384 n=6144 k=4096 dtype=bf16"),
        ("attn_norm", "rmsnorm rows=16384 cols=4096 dtype=bf16"),
        ("ffn_norm", "rmsnorm rows=16384 cols=4096 dtype=bf16"),
        // The cascade has no mask: every score is computed.
        (
            "attention",
            "attention b=8 h=32 n=2048 d=128 causal=0 dtype=bf16",
        ),
    ] {
        let ok = lowered(&v, role);
        let ops = ok["ops"].as_array().unwrap();
        assert_eq!(ops.len(), 1, "{role}: {ops:?}");
        assert_eq!(ops[0]["spec"], spec, "{role}");
        let est = estimate(spec);
        let (map_s, est_s) = (
            ok["report"]["latency_s"].as_f64().unwrap(),
            est["seconds"].as_f64().unwrap(),
        );
        assert_eq!(map_s, est_s, "{role}: map {map_s} vs estimate {est_s}");
        // The whole estimate — kernels, mappings, bytes — is the one `estimate` prints.
        assert_eq!(ops[0]["estimate"], est, "{role}");
        assert_eq!(ok["report"]["bound"], est["bound"], "{role}");
        assert_eq!(ok["report"]["off_chip_bytes"], est["hbm_bytes"], "{role}");
        assert_eq!(ok["report"]["groups"][0]["op"], spec, "{role}");
    }
}

/// Every cascade of llama3_8b lowers on the H200, prefill and decode, and each cascade's time
/// and the layer's total are the sums of `cascade estimate`'s times of the ops shown.
#[test]
fn every_llama3_cascade_lowers_and_the_total_is_the_sum_of_the_estimates() {
    for phase in ["prefill", "decode"] {
        let v = map_llama(&["--phase", phase]);
        let insts = instances(&v);
        assert_eq!(insts.len(), 6, "{phase}");
        let mut total = 0.0;
        let mut specs = Vec::new();
        for i in insts {
            let ok = &i["result"]["Ok"];
            assert!(ok.is_object(), "{phase} {}: {}", i["role"], i["result"]);
            let mut secs = 0.0;
            for op in ok["ops"].as_array().unwrap() {
                let spec = op["spec"].as_str().unwrap();
                assert!(!spec.contains("impl="), "{spec}");
                secs += estimate(spec)["seconds"].as_f64().unwrap();
                specs.push(spec.to_string());
            }
            assert_eq!(
                ok["report"]["latency_s"].as_f64().unwrap(),
                secs,
                "{phase} {}",
                i["role"]
            );
            total += i["count"].as_f64().unwrap() * secs;
        }
        // The same sum, up to the order the terms are added in.
        let t = v["total_latency_s"].as_f64().unwrap();
        assert!((t / total - 1.0).abs() < 1e-12, "{phase}: {t} vs {total}");
        // What the layer runs as.
        let ffn = lowered(&v, "ffn")["ops"].as_array().unwrap().len();
        assert_eq!(ffn, 4, "{phase}: gate, up, silu·mul, down");
        let attention = &specs[2];
        if phase == "decode" {
            assert_eq!(
                attention,
                "decode_attention b=8 hq=32 hkv=8 l=2048 d=128 dtype=bf16"
            );
        } else {
            assert!(
                attention.starts_with("attention b=8 h=32 n=2048 "),
                "{attention}"
            );
        }
    }
    // The text: every cascade with its ops, none left out.
    let o = cascade(&["map", "--workload", "llama3_8b", "--arch", "h200"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(!text.contains("not lowered"), "{text}");
    assert!(text.contains("(6 of 6 cascades)"), "{text}");
    assert!(
        text.contains("gemm m=16384 n=6144 k=4096 dtype=bf16"),
        "{text}"
    );
    assert!(
        text.contains("silu_mul rows=16384 cols=14336 dtype=bf16"),
        "{text}"
    );
}

#[test]
fn the_gpu_map_is_deterministic() {
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("seconds");
        for i in v["instances"].as_array_mut().unwrap() {
            i["result"]["Ok"].as_object_mut().unwrap().remove("seconds");
        }
        v
    };
    let a = strip(map_llama(&["--phase", "decode"]));
    let b = strip(map_llama(&["--phase", "decode"]));
    assert_eq!(a, b);
}

/// What has no GPU op is reported with its Einsum and why — never a panic, never a time that
/// leaves it out.
#[test]
fn a_cascade_without_a_gpu_op_says_why_it_is_not_lowered() {
    // An elementwise exp after a product: the product lowers, the exp is named with why not.
    let f = tmp_in(
        "gpu_map",
        "expy.ein",
        "input X[T,F], W[F,D]\nH[t,d] = X[t,f] * W[f,d]\noutput A[t,d] = exp(H[t,d])\n",
    );
    let o = cascade(&[
        "map",
        "--cascade",
        &f,
        "--set",
        "T=16",
        "--set",
        "F=768",
        "--set",
        "D=3072",
        "--arch",
        "h200",
    ]);
    assert!(!o.status.success());
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(
        out.contains("not lowered: A: `A[t,d] = exp(H[t,d])`: an elementwise exp: no GPU op"),
        "{out}"
    );
    assert!(
        out.contains("H → gemm m=16 n=3072 k=768 dtype=bf16"),
        "{out}"
    );
    assert!(
        err.contains("no cascade could be lowered onto h200"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // A hand-made cascade: a lone max reduction.
    let f = tmp_in(
        "gpu_map",
        "rowmax.ein",
        "input X[T,D]\noutput M[t] = max[d] X[t,d]\n",
    );
    let o = cascade(&[
        "map",
        "--cascade",
        &f,
        "--set",
        "T=8",
        "--set",
        "D=64",
        "--arch",
        "h200",
    ]);
    assert!(!o.status.success());
    let out = stdout(&o);
    assert!(
        out.contains("not lowered: M: `M[t] = max[d] X[t,d]`: a max reduction over d outside a softmax, norm or matrix product: no GPU op"),
        "{out}"
    );
    // An element size no GPU op has.
    let o = cascade(&[
        "map",
        "--cascade",
        "gemm",
        "--set",
        "T=8",
        "--set",
        "K=64",
        "--set",
        "N=64",
        "--arch",
        "h200",
        "--dtype-bytes",
        "3",
    ]);
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains("not lowered: the GPU ops take 1-, 2- or 4-byte elements"),
        "{}",
        stdout(&o)
    );
    // Mixtral's MoE lowers whole: router GEMM, softmax, top-2 with renormalisation, the
    // experts' grouped GEMMs over their routed tokens, and the weighted combine.
    let v = ok_json(&[
        "map",
        "--workload",
        "mixtral_8x7b",
        "--arch",
        "h200",
        "--phase",
        "decode",
        "--json",
    ]);
    let moe = lowered(&v, "moe");
    let specs: Vec<&str> = moe["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["spec"].as_str().unwrap())
        .collect();
    for want in [
        "topk rows=8 cols=8 k=2 dtype=bf16",
        "bmm batch=8 m=2 n=14336 k=4096 dtype=bf16",
        "moe_combine rows=8 cols=4096 k=2 dtype=bf16",
    ] {
        assert!(specs.contains(&want), "{want} in {specs:?}");
    }
    let ran = instances(&v)
        .iter()
        .filter(|i| i["result"]["Ok"].is_object())
        .count();
    assert_eq!(ran, 6);
}

/// The spatial mapper's options mean nothing to the GPU path: refused with the reason.
#[test]
fn spatial_options_are_refused_on_a_gpu() {
    let base = [
        "map",
        "--cascade",
        "gemm",
        "--set",
        "T=64",
        "--set",
        "K=64",
        "--set",
        "N=64",
        "--arch",
        "h200",
    ];
    for (extra, want) in [
        (&["--objective", "energy"][..], "searched for latency only"),
        (&["--objective", "edp"][..], "searched for latency only"),
        (&["--fusion", "none"][..], "fusion is not searched"),
        (
            &["--constraints", "c.toml"][..],
            "constraints pin the spatial mapper",
        ),
        (&["--save", "out"][..], "no mapping TOML to save"),
        (&["--seed", "2"][..], "no random choices"),
        (&["--budget", "10"][..], "it takes no budget"),
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let o = cascade(&args);
        assert!(!o.status.success(), "{extra:?}");
        assert!(stderr(&o).contains(want), "{extra:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{extra:?}");
    }
    // The objective the GPU search has is accepted.
    let mut args = base.to_vec();
    args.extend_from_slice(&["--objective", "latency", "--json"]);
    let v = ok_json(&args);
    assert_eq!(
        lowered(&v, "gemm")["ops"][0]["spec"],
        "gemm m=64 n=64 k=64 dtype=bf16"
    );
}

/// Every built-in cascade, at small extents, in both phases (MoE with a balanced and a skewed
/// routing): the lowering accounts for each Einsum exactly once — in one op's group or in one
/// refusal — and every spec it emits parses, without `impl=`.
#[test]
fn every_builtin_cascade_lowers_or_says_why_for_each_einsum() {
    use cascade::gpu::lower::{lower, LowerOptions};
    use cascade::gpu::{Dtype, GpuOp};
    use cascade_einsum::{library, Routing};
    let mut lowered_whole = Vec::new();
    for name in library::names() {
        let c = library::load(name).unwrap().cascade;
        let sh = cascade::commands::eval::extents(&c, &[]).unwrap();
        let routings = match cascade::commands::map::routing_for(&c, sh.extents(), 0.0) {
            Some(r) => vec![
                Some(r.clone()),
                Some(Routing::zipf(
                    &r.expert_rank,
                    r.tokens_per_expert.len() as u64,
                    r.tokens,
                    2,
                    1.5,
                )),
            ],
            None => vec![None],
        };
        for routing in &routings {
            for decode in [false, true] {
                let o = LowerOptions {
                    dtype: Dtype::Fp16,
                    decode,
                    routing: routing.as_ref(),
                    causal: false,
                };
                let l = lower(&c, &sh, &o);
                let mut seen: Vec<String> = l
                    .ops
                    .iter()
                    .map(|op| op.einsums.clone())
                    .chain(l.unlowered.iter().map(|u| u.einsums.clone()))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .flatten()
                    .collect();
                seen.sort();
                let mut all: Vec<String> = c.einsums.iter().map(|e| e.name.clone()).collect();
                all.sort();
                assert_eq!(seen, all, "{name} decode={decode}");
                for op in &l.ops {
                    assert_eq!(GpuOp::parse(&op.spec).unwrap(), op.op, "{name}");
                    assert!(op.spec.ends_with("dtype=fp16"), "{name}: {}", op.spec);
                    assert!(!op.spec.contains("impl="), "{name}: {}", op.spec);
                }
                for u in &l.unlowered {
                    assert!(!u.reason.is_empty(), "{name}: {u:?}");
                }
                if l.unlowered.is_empty() && !decode {
                    lowered_whole.push(name);
                }
            }
        }
    }
    // What the grammar covers lowers whole; the rest is said.
    lowered_whole.sort_unstable();
    lowered_whole.dedup();
    assert_eq!(
        lowered_whole,
        [
            "attention_1pass",
            "attention_2pass",
            "attention_3pass",
            "ffn_gelu",
            "ffn_relu",
            "ffn_swiglu",
            "gemm",
            "gqa_decode",
            "layernorm",
            "moe",
            "moe_gelu",
            "rmsnorm"
        ]
    );
}
