//! `cascade map` on layer-list workloads (the total weighs each layer by its `count`; the label
//! gives the batch, not a sequence length) and `cascade eval` on convolutions (window ranks are
//! derived, not defaulted), end to end through the binary.

use cascade_einsum::{bind, library, random_inputs, Tensor};
use std::collections::BTreeMap;
use std::process::{Command, Output};

fn cascade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .output()
        .expect("run cascade")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn tmp(name: &str, body: &str) -> String {
    let dir = std::env::temp_dir().join(format!("cascade-map-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_string_lossy().into_owned()
}

const LIST: &str = r#"name = "two_layers"
[run]
batch = [2, 3]
precision = "bf16"

[[layers]]
role = "proj"
cascade = "gemm"
extents = { T = "batch", K = 64, N = 64 }
count = 3

[[layers]]
role = "conv"
cascade = "conv2d"
extents = { N = "batch", C = 8, K = 8, P = 6, Q = 6, R = 3, S = 3 }
"#;

#[test]
fn map_of_a_layer_list_weighs_each_layer_by_its_count_and_names_the_batch() {
    let w = tmp("two_layers.toml", LIST);
    let args = [
        "map",
        "--workload",
        &w,
        "--arch",
        "fusemax",
        "--budget",
        "200",
    ];
    let o = cascade(&[&args[..], &["--json"]].concat());
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    let insts = v["instances"].as_array().unwrap();
    let counts: Vec<u64> = insts.iter().map(|i| i["count"].as_u64().unwrap()).collect();
    assert_eq!(counts, [3, 1]);
    let lat: Vec<f64> = insts
        .iter()
        .map(|i| i["result"]["Ok"]["report"]["latency_s"].as_f64().unwrap())
        .collect();
    let total = 3.0 * lat[0] + lat[1];
    let got = v["total_latency_s"].as_f64().unwrap();
    assert!((got - total).abs() <= 1e-12 * total, "{got} vs {total}");
    assert!(got > lat[0] + lat[1]);
    // The first point is batch 2; a layer list has no sequence length.
    assert_eq!(v["target"], "the layers of two_layers (batch 2)");

    // The text output: the same total (4 significant digits), the repeats, no "seq".
    let o = cascade(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.starts_with("mapped the layers of two_layers (batch 2) onto fusemax"),
        "{out}"
    );
    assert!(!out.contains("seq"), "{out}");
    assert!(out.contains("occurs 3 times"), "{out}");
    let line = out.lines().find(|l| l.starts_with("mapped total")).unwrap();
    assert!(line.contains("(2 of 2 cascades, 4 occurrences)"), "{line}");
    let shown: f64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!((shown / total - 1.0).abs() < 1e-3, "{shown} vs {total}");

    // --batch picks another point; --seq and --phase belong to LLM workloads.
    let o = cascade(&[&args[..], &["--batch", "3"]].concat());
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("two_layers (batch 3)"));
    for bad in [["--seq", "128"], ["--phase", "decode"]] {
        let o = cascade(&[&args[..], &bad[..]].concat());
        assert!(!o.status.success());
        let e = text(&o.stderr);
        assert!(
            e.contains("--phase and --seq choose a point of an LLM workload"),
            "{e}"
        );
    }
}

#[test]
fn eval_conv2d_derives_the_window_ranks_and_computes_the_convolution() {
    let o = cascade(&["eval", "conv2d"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    // Unset ranks default to 4; the window ranks are derived: H = P + R − 1 = 7.
    assert!(
        out.contains("with C=4 H=7 K=4 N=4 P=4 Q=4 R=4 S=4 W=7"),
        "{out}"
    );
    let shown: f64 = out
        .split("checksum ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();

    // The same inputs through a direct convolution written here.
    let c = library::load("conv2d").unwrap().cascade;
    let ext: BTreeMap<String, u64> = [("C", 4), ("K", 4), ("N", 4), ("P", 4), ("Q", 4)]
        .iter()
        .chain(&[("R", 4), ("S", 4)])
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    let sh = bind(&c, &ext).unwrap();
    let ins = random_inputs(&c, &sh, 1);
    let (i, f) = (&ins["I"], &ins["F"]);
    assert_eq!(i.shape, [4, 4, 7, 7]);
    let mut o = vec![0.0; 4 * 4 * 4 * 4];
    for n in 0..4 {
        for k in 0..4 {
            for p in 0..4 {
                for q in 0..4 {
                    let mut s = 0.0;
                    for ch in 0..4 {
                        for r in 0..4 {
                            for t in 0..4 {
                                s += i.at(&[n, ch, p + r, q + t]) * f.at(&[k, ch, r, t]);
                            }
                        }
                    }
                    o[((n * 4 + k) * 4 + p) * 4 + q] = s;
                }
            }
        }
    }
    let want = Tensor::new(vec![4, 4, 4, 4], o).checksum();
    assert!(
        (shown - want).abs() <= 1e-10 * want.abs().max(1.0),
        "{shown} vs {want}"
    );

    // A window rank given explicitly is still checked against its use.
    let o = cascade(&["eval", "conv2d", "--set", "H=5"]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("so `H` needs extent 7, but H = 5"));
}
