//! `cascade estimate` end to end: bounded work on the largest ops, the op grammar's flags,
//! one spelling of bounds and kernel names in text and JSON, no panic and no NaN/inf for any
//! key value; `cascade crosscheck` never writes over the committed reports.

use proptest::prelude::*;

use std::time::{Duration, Instant};

mod common;
use common::{cascade, stderr, stdout};

fn estimate_json(op: &str) -> serde_json::Value {
    let o = cascade(&["estimate", "--op", op, "--json"]);
    assert!(o.status.success(), "{op}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{op}: {e}"))
}

/// Every number in a JSON value, with its path.
fn numbers(v: &serde_json::Value, path: &str, out: &mut Vec<(String, Option<f64>)>) {
    match v {
        serde_json::Value::Number(n) => out.push((path.to_string(), n.as_f64())),
        serde_json::Value::Null => out.push((path.to_string(), None)),
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                numbers(x, &format!("{path}[{i}]"), out);
            }
        }
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                numbers(x, &format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

fn assert_finite_json(op: &str, v: &serde_json::Value) {
    let mut ns = Vec::new();
    numbers(v, "", &mut ns);
    for (path, n) in ns {
        let n = n.unwrap_or_else(|| panic!("{op}: {path} is null"));
        assert!(n.is_finite() && n >= 0.0, "{op}: {path} = {n}");
    }
    let s = v["seconds"].as_f64().unwrap();
    assert!(s > 0.0, "{op}: seconds {s}");
}

/// The largest ops of every kind that fit in the H100's 80 GB, including the issue's
/// unfused attention at b=64 h=16 n=65536 (454 s before) and causal attention over 9e7
/// tokens. The release binary answers each in under 1 s (see the commit); this debug-profile
/// run (the cascade crate at opt-level 2) on a shared machine is given 30 s each, against
/// minutes to hours before.
#[test]
fn largest_ops_answer_in_bounded_time() {
    for op in [
        "gemm m=100000 n=100000 k=100000",
        "gemm m=1 n=2000000 k=10000",
        "gemm m=2000000 n=64 k=10000 dtype=fp8",
        "bmm batch=1000000 m=64 n=64 k=64",
        "bmm batch=64 m=16384 n=16384 k=4096",
        "attention b=64 h=16 n=65536 d=128 causal=0 impl=fa2",
        "attention b=64 h=16 n=65536 d=128 causal=1 impl=fa2",
        "attention b=64 h=16 n=65536 d=128 causal=1 impl=fa3",
        "attention b=1 h=1 n=90000000 d=64 causal=1 impl=fa3",
        "attention b=1 h=1 n=16 m=100000000 d=128 causal=1",
        "attention_unfused b=64 h=16 n=65536 d=128",
        "attention_unfused b=64 h=16 n=65536 d=128 causal=1 scores=fp32",
        "attention_unfused b=1 h=1 n=1000000 d=256 causal=true",
        "decode_attention b=2000 hq=32 hkv=8 l=8192 d=128",
        "decode_attention b=1 hq=128 hkv=1 l=100000000 d=128",
        "copy bytes=39GB",
        "softmax rows=1000000000 cols=16",
        "softmax rows=1 cols=10000000000 dtype=fp32",
        "softmax rows=100000 cols=100000",
    ] {
        let t = Instant::now();
        let v = estimate_json(op);
        let dt = t.elapsed();
        eprintln!("{op}: {:.3} s", dt.as_secs_f64());
        assert!(dt < Duration::from_secs(30), "{op}: {dt:?}");
        assert_finite_json(op, &v);
    }
}

#[test]
fn causal_takes_words_and_digits() {
    let base = "attention b=2 h=4 n=1024 d=64";
    let on = estimate_json(&format!("{base} causal=1"));
    let off = estimate_json(&format!("{base} causal=0"));
    assert_ne!(on["seconds"], off["seconds"]);
    for v in ["true", "True", "yes", "YES"] {
        assert_eq!(estimate_json(&format!("{base} causal={v}")), on, "{v}");
    }
    for v in ["false", "False", "no", "No"] {
        assert_eq!(estimate_json(&format!("{base} causal={v}")), off, "{v}");
    }
    let u = estimate_json("attention_unfused b=1 h=2 n=512 d=64 causal=yes");
    assert!(u["op"].as_str().unwrap().contains("causal=1"), "{u}");
    let o = cascade(&["estimate", "--op", &format!("{base} causal=maybe")]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("`maybe` for `causal`"), "{e}");
}

/// Text and JSON say the same bound and kernel names, lower-case, for every op kind.
#[test]
fn text_and_json_spell_bounds_and_kernels_alike() {
    let mut bounds = std::collections::BTreeSet::new();
    for op in [
        "gemm m=8192 n=8192 k=8192",
        "gemm m=1 n=4096 k=4096",
        "gemm m=64 n=64 k=65536",
        "bmm batch=8 m=64 n=14336 k=4096",
        "attention b=2 h=16 n=4096 d=128 causal=1 impl=fa3",
        "attention_unfused b=1 h=32 n=1024 d=128",
        "decode_attention b=1 hq=32 hkv=8 l=32768 d=128",
        "copy bytes=1KiB",
        "copy bytes=1GiB",
        "softmax rows=65536 cols=4096",
    ] {
        let v = estimate_json(op);
        let o = cascade(&["estimate", "--op", op]);
        assert!(o.status.success());
        let text = stdout(&o);
        let mut lines = text.lines();
        let head = lines.next().unwrap();
        let bound = v["bound"].as_str().unwrap();
        assert!(head.contains(&format!("({bound}-bound)")), "{op}: {head}");
        bounds.insert(bound.to_string());
        let kernels = v["kernels"].as_array().unwrap();
        let rows: Vec<&str> = lines.collect();
        assert_eq!(rows.len(), kernels.len(), "{op}: {text}");
        for (row, k) in rows.iter().zip(kernels) {
            let words: Vec<&str> = row.split_whitespace().collect();
            let (name, kb) = (k["name"].as_str().unwrap(), k["bound"].as_str().unwrap());
            assert_eq!(words[0], name, "{op}: {row}");
            assert_eq!(words[3], kb, "{op}: {row}");
            bounds.insert(kb.to_string());
        }
    }
    // Every bound occurs, each in its one spelling.
    assert_eq!(
        bounds.into_iter().collect::<Vec<_>>(),
        ["compute", "latency", "memory"]
    );
}

/// The keys of each op with a valid value, for the value sweeps below.
const OPS: &[(&str, &[(&str, &str)])] = &[
    (
        "gemm",
        &[("m", "64"), ("n", "64"), ("k", "64"), ("dtype", "bf16")],
    ),
    (
        "bmm",
        &[
            ("batch", "2"),
            ("m", "64"),
            ("n", "64"),
            ("k", "64"),
            ("dtype", "fp16"),
        ],
    ),
    (
        "attention",
        &[
            ("b", "1"),
            ("h", "2"),
            ("n", "128"),
            ("m", "256"),
            ("d", "64"),
            ("causal", "1"),
            ("impl", "fa3"),
            ("dtype", "bf16"),
        ],
    ),
    (
        "attention_unfused",
        &[
            ("b", "1"),
            ("h", "2"),
            ("n", "128"),
            ("m", "128"),
            ("d", "64"),
            ("causal", "0"),
            ("dtype", "fp8"),
            ("scores", "fp32"),
        ],
    ),
    (
        "decode_attention",
        &[
            ("b", "1"),
            ("hq", "8"),
            ("hkv", "2"),
            ("l", "1024"),
            ("d", "128"),
            ("dtype", "bf16"),
        ],
    ),
    ("copy", &[("bytes", "4096")]),
    (
        "softmax",
        &[("rows", "64"), ("cols", "1024"), ("dtype", "fp32")],
    ),
];

/// Zero, huge and odd values for every key of every op: a one-line error naming the key (or
/// the product of keys that is too large), or a finite answer — never a panic, NaN or inf.
#[test]
fn zero_huge_and_odd_values_are_refused_or_finite() {
    let odd = [
        "0",
        "1",
        "3",
        "255",
        "257",
        "65537",
        "4294967296",
        "9007199254740993",
        "18446744073709551615",
        "18446744073709551616",
        "-1",
        "1.5",
        "1e3",
        "",
        "abc",
        "fp64",
        "fa1",
        "TRUE",
    ];
    let mut answered = 0;
    for (op, keys) in OPS {
        for (i, (key, _)) in keys.iter().enumerate() {
            for val in odd {
                let spec: Vec<String> = keys
                    .iter()
                    .enumerate()
                    .map(|(j, (k, v))| format!("{k}={}", if i == j { val } else { v }))
                    .collect();
                let spec = format!("{op} {}", spec.join(" "));
                let o = cascade(&["estimate", "--op", &spec, "--json"]);
                let err = stderr(&o);
                assert!(!err.contains("panicked"), "{spec}: {err}");
                if o.status.success() {
                    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                    assert_finite_json(&spec, &v);
                    answered += 1;
                } else {
                    assert_eq!(o.status.code(), Some(1), "{spec}: {err}");
                    assert_eq!(err.trim_end().lines().count(), 1, "{spec}: {err}");
                    let named = err.contains(&format!("`{key}`"))
                        || err.contains("gpu.hbm")
                        || err.contains("exceeds 2^53")
                        || err.contains("must divide hq")
                        || err.contains("CUDA grid");
                    assert!(named, "{spec}: {err}");
                }
            }
        }
    }
    assert!(answered > 50, "{answered}");
}

/// The same, through the library, on random specs: every key drawn from small, power-of-two,
/// huge and malformed values, keys sometimes left out or repeated.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (1u64..5000).prop_map(|v| v.to_string()),
        3 => (0u32..48).prop_map(|e| (1u64 << e).to_string()),
        1 => Just("0".to_string()),
        1 => Just(u64::MAX.to_string()),
        1 => Just("9007199254740993".to_string()),
        1 => prop::sample::select(vec!["bf16", "fp16", "fp8", "tf32", "fp32", "fa2", "fa3", "ours_fa2", "true", "no", "x", "-3", "1GiB", ""])
            .prop_map(str::to_string),
    ]
}

fn spec() -> impl Strategy<Value = String> {
    (0..OPS.len(), prop::collection::vec((value(), 0u8..10), 8)).prop_map(|(i, vals)| {
        let (op, keys) = OPS[i];
        let mut s = op.to_string();
        for ((key, valid), (v, mode)) in keys.iter().zip(vals) {
            match mode {
                0 => {}                                            // key left out
                1 => s.push_str(&format!(" {key}={v} {key}={v}")), // repeated
                2..=4 => s.push_str(&format!(" {key}={valid}")),
                _ => s.push_str(&format!(" {key}={v}")),
            }
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn random_specs_give_an_error_or_a_finite_positive_time(s in spec()) {
        let spec = cascade_arch::preset("h100").unwrap().gpu.unwrap();
        match cascade::gpu::GpuOp::parse(&s) {
            Err(e) => prop_assert!(!e.to_string().is_empty()),
            Ok(op) => match cascade::gpu::try_estimate(&op, &spec) {
                Err(e) => prop_assert!(!e.to_string().contains('\n'), "{s}: {e}"),
                Ok(est) => {
                    let v = serde_json::to_value(&est).unwrap();
                    assert_finite_json(&s, &v);
                    prop_assert!(est.seconds > 0.0 && est.seconds.is_finite(), "{s}");
                }
            },
        }
    }
}

#[cfg(not(feature = "cuda"))]
#[test]
fn crosscheck_without_the_cuda_feature_says_so() {
    let o = cascade(&["crosscheck"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(
        e.contains("built without it") && e.contains("--features cuda"),
        "{e}"
    );
}

#[test]
fn crosscheck_help_says_where_it_writes() {
    let o = cascade(&["crosscheck", "--help"]);
    assert!(o.status.success());
    let h = stdout(&o);
    assert!(h.contains("target/crosscheck"), "{h}");
    assert!(h.contains("never overwrites"), "{h}");
}
