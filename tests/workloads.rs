//! Layer-list workloads (ResNet-18, the wav2vec 2.0 feature encoder) and the
//! convolution cascades: `cascade analyze` / `eval` / `check` end to end with the
//! binary, and one test per refusal of the layer-list format (file, field, line:col).

use cascade::workload::{Extent, Phase, Workload, WorkloadKind};

mod common;
use common::{cascade, stderr, stdout};

fn json(args: &[&str]) -> serde_json::Value {
    let o = cascade(args);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

/// The report of the instance with `role` at point `p`.
fn instance<'a>(v: &'a serde_json::Value, p: usize, role: &str) -> &'a serde_json::Value {
    v["points"][p]["layer"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["role"] == role)
        .unwrap_or_else(|| panic!("no role {role}"))
}

fn tensor<'a>(inst: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    inst["analysis"]["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap()
}

#[test]
fn analyze_resnet18_counts_table_1_macs_and_halos() {
    let v = json(&["analyze", "resnet18", "--json"]);
    assert_eq!(v["kind"], "layer_list");
    assert_eq!(v["layers"], 1);
    // The points vary the batch only.
    let batches: Vec<u64> = v["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["point"]["batch"].as_u64().unwrap())
        .collect();
    assert_eq!(batches, [1, 32]);
    // Table 1: 1.8×10^9 multiply-adds; by hand, Σ count·C·K·P·Q·R·S + the fc.
    assert_eq!(
        v["points"][0]["model_ops"]["mac"].as_u64().unwrap(),
        1_814_073_344
    );
    assert_eq!(
        v["points"][1]["model_ops"]["mac"].as_u64().unwrap(),
        32 * 1_814_073_344
    );
    // conv1: 7×7/2, 3 → 64 channels, 112×112 outputs.
    let conv1 = instance(&v, 0, "conv1");
    assert_eq!(
        conv1["analysis"]["total_ops"]["mac"],
        3 * 64 * 112 * 112 * 49
    );
    // Its 230×230 padded input: rows 0..=228 are read (2·111 + 6), the last never.
    let i = tensor(conv1, "I");
    assert_eq!(i["elems"], 3 * 230 * 230);
    assert_eq!(i["touched_elems"], 3 * 229 * 229);
    // The repeated 3×3 convs count four times; their input is derived as 58×58.
    let c2 = instance(&v, 0, "conv2_x");
    assert_eq!(c2["count"], 4);
    assert_eq!(c2["analysis"]["extents"]["H"], 58);
    // A 1×1/2 shortcut reads every other row and column of its 56×56 input.
    let down = instance(&v, 1, "conv3_down");
    let i = tensor(down, "I");
    assert_eq!(i["elems"], 32 * 64 * 56 * 56);
    assert_eq!(i["touched_elems"], 32 * 64 * 28 * 28);
    assert_eq!(i["touched_bytes"], 32 * 64 * 28 * 28 * 2);
    // The classifier is a GEMM over the batch.
    let fc = instance(&v, 1, "fc");
    assert_eq!(fc["analysis"]["extents"]["T"], 32);
    assert_eq!(fc["analysis"]["total_ops"]["mac"], 32 * 512 * 1000);
}

#[test]
fn analyze_resnet18_text_lists_every_layer() {
    let o = cascade(&["analyze", "workloads/resnet18.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(
        s.contains("workload resnet18 — 14 listed layers (23 with repeats)"),
        "{s}"
    );
    assert!(
        s.contains("\nbatch 1\n") && s.contains("\nbatch 32\n"),
        "{s}"
    );
    for role in ["conv1", "pool1", "conv2_x", "conv5_down", "avgpool", "fc"] {
        assert!(s.contains(&format!("\n  {role} ")), "no {role} in:\n{s}");
    }
    assert!(s.contains("conv2_x    conv2d               4"), "{s}");
    assert!(s.contains("network total: 1.814e9 MACs"), "{s}");
}

#[test]
fn analyze_wav2vec2_encoder_conv1d_stack() {
    let v = json(&["analyze", "wav2vec2_encoder", "--json"]);
    // Σ C·K·P·R over the seven blocks of one second of audio.
    assert_eq!(
        v["points"][0]["model_ops"]["mac"].as_u64().unwrap(),
        2_450_123_776
    );
    let conv0 = instance(&v, 0, "conv0");
    assert_eq!(conv0["analysis"]["cascade"], "conv1d_s5");
    assert_eq!(conv0["analysis"]["total_ops"]["mac"], 512 * 3199 * 10);
    // Stride 5 with 10 taps reads all 16,000 samples; block 6 leaves the last unread.
    assert_eq!(tensor(conv0, "I")["touched_elems"], 16_000);
    let conv5 = instance(&v, 0, "conv5");
    assert_eq!(tensor(conv5, "I")["elems"], 512 * 199);
    assert_eq!(tensor(conv5, "I")["touched_elems"], 512 * 198);
    // 49 output frames per second of audio (the paper's 49 Hz).
    assert_eq!(instance(&v, 1, "conv6")["analysis"]["extents"]["P"], 49);
    assert_eq!(instance(&v, 1, "conv6")["analysis"]["extents"]["N"], 8);
}

#[test]
fn eval_and_check_the_convolution_cascades() {
    let args = [
        "eval",
        "conv2d_s2",
        "--set",
        "P=3",
        "--set",
        "Q=2",
        "--set",
        "R=3",
        "--set",
        "S=3",
        "--set",
        "H=7",
        "--set",
        "W=5",
        "--seed",
        "3",
    ];
    let a = cascade(&args);
    assert!(a.status.success(), "{}", stderr(&a));
    let s = stdout(&a);
    assert!(
        s.contains("H=7") && s.contains("O[4, 4, 3, 2]: checksum"),
        "{s}"
    );
    assert_eq!(s, stdout(&cascade(&args)), "eval is deterministic");
    // A window too small for its access is a located shape error.
    let o = cascade(&[
        "eval", "conv1d", "--set", "P=8", "--set", "R=3", "--set", "H=9",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("einsum/cascades/conv1d.ein:5:25"), "{e}");
    assert!(e.contains("so `H` needs extent 10, but H = 9"), "{e}");
    // Window ranks are never traversed: no pass count for them.
    let o = cascade(&["check", "depthwise_conv2d"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(s.contains("P: 1") && !s.contains("H: "), "{s}");
}

#[test]
fn layer_list_api_points_layers_and_precision() {
    let w = Workload::load("resnet18").unwrap();
    assert_eq!(w.kind(), WorkloadKind::LayerList);
    assert_eq!(w.repeats(), 1);
    assert_eq!(w.run.precision.bytes(), 2);
    assert_eq!(w.run.batches, [1, 32]);
    let pts = w.points();
    assert_eq!(pts.len(), 2);
    assert_eq!(
        (pts[1].phase, pts[1].batch, pts[1].seq_len),
        (Phase::Prefill, 32, 0)
    );
    let layer = w.layer(&pts[1]);
    assert_eq!(layer.len(), 14);
    assert_eq!(layer[0].role, "conv1");
    assert_eq!(layer[0].extents["N"], 32);
    assert_eq!(layer[0].extents["H"], 230);
    assert_eq!(layer.iter().map(|i| i.count).sum::<u64>(), 23);
    assert_eq!(w.layers[0].extents["N"], Extent::Batch);
    // LLM workloads are unchanged: one batch, their points and count 1 per cascade.
    let b = Workload::load("bert_base").unwrap();
    assert_eq!(b.kind(), WorkloadKind::Llm);
    assert_eq!(
        (b.repeats(), b.run.batch, b.run.batches.clone()),
        (12, 64, vec![64])
    );
    assert_eq!(b.points().len(), 6);
    assert!(b.layer(&b.points()[0]).iter().all(|i| i.count == 1));
}

// ---- The layer-list format: one test per refusal. ----

const GOOD: &str = r#"name = "t"
[run]
batch = [1, 4]
precision = "bf16"

[[layers]]
role = "c"
cascade = "conv2d"
extents = { N = "batch", C = 2, K = 3, P = 4, Q = 4, R = 3, S = 3 }
count = 2
"#;

/// The error of loading `text` as `w.toml`.
fn error_of(text: &str) -> String {
    match Workload::from_toml_str(text, "w.toml") {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// `GOOD` with `from` replaced by `to` must fail with an error containing `want`.
fn refused(from: &str, to: &str, want: &[&str]) {
    assert!(GOOD.contains(from), "{from}");
    let e = error_of(&GOOD.replacen(from, to, 1));
    for w in want {
        assert!(e.contains(w), "no `{w}` in: {e}");
    }
}

#[test]
fn the_good_layer_list_loads() {
    let w = Workload::from_toml_str(GOOD, "w.toml").unwrap();
    assert_eq!(w.layers[0].count, 2);
    assert_eq!(w.layer(&w.points()[1])[0].extents["N"], 4);
}

#[test]
fn unknown_layer_field_is_refused() {
    refused(
        "count = 2",
        "count = 2\nstride = 2",
        &["w.toml:11:1:", "unknown field `stride`"],
    );
}

#[test]
fn unknown_run_field_is_refused() {
    refused(
        "precision",
        "dtype = 1\nprecision",
        &["w.toml:4:1:", "unknown field `dtype`"],
    );
}

#[test]
fn llm_run_fields_are_refused_in_a_layer_list() {
    refused(
        "precision",
        "seq_len = [8]\nprecision",
        &["w.toml:4:11: run.seq_len: applies to LLM workloads"],
    );
    refused(
        "precision",
        "partition = 8\nprecision",
        &["w.toml:4:13: run.partition: applies to LLM workloads"],
    );
}

#[test]
fn missing_batch_is_refused() {
    refused("batch = [1, 4]\n", "", &["w.toml:2:1: run.batch: missing"]);
}

#[test]
fn missing_precision_is_refused() {
    refused(
        "precision = \"bf16\"\n",
        "",
        &["w.toml:2:1: run.precision: missing"],
    );
}

#[test]
fn bad_batch_lists_are_refused() {
    refused("[1, 4]", "[]", &["w.toml:3:9: run.batch: list one or more"]);
    refused("[1, 4]", "[1, 0]", &["w.toml:3:9: run.batch: must be ≥ 1"]);
    refused("[1, 4]", "[4, 4]", &["run.batch: batch 4 is listed twice"]);
    refused("[1, 4]", "[1, -4]", &["w.toml:3:", "invalid"]);
    refused(
        "[1, 4]",
        "\"four\"",
        &["w.toml:3:9:", "invalid type", "a batch size"],
    );
}

#[test]
fn model_and_layers_together_are_refused() {
    let bert = std::fs::read_to_string("workloads/bert_base.toml").unwrap();
    let layers = &GOOD[GOOD.find("[[layers]]").unwrap()..];
    let e = error_of(&format!("{bert}\n{layers}"));
    assert!(
        e.contains("layers: a workload is an LLM ([model]) or a layer list"),
        "{e}"
    );
}

#[test]
fn neither_model_nor_layers_is_refused() {
    let e = error_of("name = \"t\"\n[run]\nbatch = 1\nprecision = \"bf16\"\n");
    assert!(e.contains("w.toml: model: missing"), "{e}");
}

#[test]
fn a_batch_list_is_refused_for_an_llm() {
    let bert = std::fs::read_to_string("workloads/bert_base.toml").unwrap();
    let e = error_of(&bert.replace("batch = 64", "batch = [1, 64]"));
    assert!(
        e.contains("run.batch: an LLM workload takes one batch size"),
        "{e}"
    );
    let e = error_of(&bert.replace("partition = 256\n", ""));
    assert!(e.contains("run.partition: missing"), "{e}");
}

#[test]
fn empty_layer_list_is_refused() {
    let e = error_of("name = \"t\"\nlayers = []\n[run]\nbatch = 1\nprecision = \"bf16\"\n");
    assert!(
        e.contains("w.toml:2:10: layers: list at least one layer"),
        "{e}"
    );
}

#[test]
fn empty_and_duplicate_roles_are_refused() {
    refused(
        "role = \"c\"",
        "role = \" \"",
        &["w.toml:7:8: layers[0].role: must not be empty"],
    );
    let twice = format!("{GOOD}\n{}", &GOOD[GOOD.find("[[layers]]").unwrap()..]);
    let e = error_of(&twice);
    assert!(
        e.contains("w.toml:13:8: layers[1].role: `c` is also the role of layers[0]"),
        "{e}"
    );
}

#[test]
fn unknown_cascade_is_refused() {
    refused(
        "\"conv2d\"",
        "\"conv3d\"",
        &[
            "w.toml:8:11: layers[0].cascade: unknown cascade `conv3d`",
            "conv2d_s2",
        ],
    );
}

#[test]
fn unknown_rank_is_refused() {
    refused(
        "S = 3 }",
        "S = 3, T = 2 }",
        &[
            "layers[0].extents.T: cascade `conv2d` has no rank `T`",
            "its ranks: C, H, K, N, P, Q, R, S, W",
        ],
    );
}

#[test]
fn zero_extent_and_count_are_refused() {
    refused(
        "C = 2",
        "C = 0",
        &["w.toml:9:30: layers[0].extents.C: must be ≥ 1"],
    );
    refused(
        "count = 2",
        "count = 0",
        &["w.toml:10:9: layers[0].count: must be ≥ 1"],
    );
}

#[test]
fn misspelt_batch_extent_is_refused() {
    refused(
        "\"batch\"",
        "\"batches\"",
        &[
            "w.toml:9:17:",
            "invalid value: string \"batches\"",
            "\"batch\"",
        ],
    );
}

#[test]
fn extents_that_do_not_bind_are_refused() {
    // A window given too small for its access, at the extents' line.
    refused(
        "S = 3 }",
        "S = 3, H = 5 }",
        &[
            "w.toml:9:11: layers[0].extents:",
            "so `H` needs extent 6, but H = 5",
            "(cascade `conv2d`, batch 1)",
        ],
    );
    // A rank neither given nor derivable.
    refused(
        "K = 3, ",
        "",
        &["layers[0].extents: rank `K` has no extent"],
    );
}

#[test]
fn layer_list_errors_reach_the_command_line() {
    let dir = std::env::temp_dir().join(format!("cascade-workloads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.toml");
    std::fs::write(&f, GOOD.replace("\"conv2d\"", "\"conv3d\"")).unwrap();
    let o = cascade(&["analyze", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("bad.toml:8:11: layers[0].cascade: unknown cascade `conv3d`"),
        "{e}"
    );
}

/// `cascade analyze` on `text` written to a temp file `name`: (exit code, stderr).
fn analyze_file(name: &str, text: &str) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!("cascade-workloads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join(name);
    std::fs::write(&f, text).unwrap();
    let o = cascade(&["analyze", f.to_str().unwrap()]);
    let e = stderr(&o);
    assert!(!e.contains("panicked"), "{e}");
    (o.status.code(), e)
}

fn builtin(name: &str, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(format!("workloads/{name}.toml")).unwrap();
    assert!(text.contains(from), "{from}");
    text.replace(from, to)
}

#[test]
fn a_partition_that_does_not_divide_a_sequence_length_is_refused() {
    let (code, e) = analyze_file(
        "part300.toml",
        &builtin("bert_base", "partition = 256", "partition = 300"),
    );
    assert_eq!(code, Some(1), "{e}");
    assert!(
        e.contains("part300.toml:35:13: run.partition: 300 does not divide seq_len 1024"),
        "{e}"
    );
    assert!(e.contains("256 divides every length"), "{e}");
    // A partition longer than a sequence is one partition of it; dividing the longer ones is
    // enough.
    let (code, e) = analyze_file(
        "part2048.toml",
        &builtin("llama3_8b", "partition = 256", "partition = 2048"),
    );
    assert_eq!(code, Some(0), "{e}");
    let (code, e) = analyze_file(
        "part3000.toml",
        &builtin("llama3_8b", "partition = 256", "partition = 3000"),
    );
    assert_eq!(code, Some(1), "{e}");
    assert!(
        e.contains("run.partition: 3000 does not divide seq_len 8192"),
        "{e}"
    );
}

/// Text replacements (from, to) in a workload file.
type Edits<'a> = &'a [(&'a str, &'a str)];

#[test]
fn workload_values_that_break_a_built_in_cascade_name_the_file_and_field() {
    // Each: (built-in workload, edits, what the one-line error must say).
    let cases: [(&str, Edits, &str); 7] = [
        (
            "bert_base",
            &[("head_dim = 64", "head_dim = 4000000000000")],
            "head_dim.toml: model.heads, model.kv_heads, model.head_dim, run.batch, run.seq_len: tensor `C` has more than 2^60 elements: N = ",
        ),
        (
            "mixtral_8x7b",
            &[("d_model = 4096", "d_model = 4000000000000")],
            "d_model.toml: model.d_model,",
        ),
        (
            "mixtral_8x7b",
            &[("ffn_dim = 14336", "ffn_dim = 40000000000000")],
            "ffn_dim.toml: model.ffn_dim, model.moe.experts, run.batch, run.seq_len: tensor `HA` has more than 2^60 elements",
        ),
        (
            "mixtral_8x7b",
            &[("experts = 8", "experts = 100000000")],
            "experts.toml: model.moe.experts: 100000000 experts: at most 65536",
        ),
        (
            "mixtral_8x7b",
            &[("top_k = 2", "top_k = 0")],
            "top_k.toml: model.moe.top_k: need 1 ≤ top_k ≤ experts",
        ),
        (
            "llama3_8b",
            &[("kv_heads = 8", "kv_heads = 5")],
            "kv_heads.toml: model.kv_heads: 32 query heads cannot be shared evenly by 5 KV heads",
        ),
        // batch × seq_len overflows u64: refused, not a panic.
        (
            "bert_base",
            &[
                ("batch = 64", "batch = 4000000000"),
                ("seq_len = [1024, 4096, 16384, 65536, 262144, 1048576]", "seq_len = [4000000000000]"),
            ],
            "tokens.toml: run.batch, run.seq_len: 4000000000 × 4000000000000 tokens: more than 2^60",
        ),
    ];
    for (base, edits, want) in cases {
        let field = want.split(".toml").next().unwrap();
        let mut text = builtin(base, "", "");
        for (from, to) in edits {
            assert!(text.contains(from), "{from}");
            text = text.replace(from, to);
        }
        let (code, e) = analyze_file(&format!("{field}.toml"), &text);
        assert_eq!(code, Some(1), "{e}");
        assert!(e.contains(want), "want {want}\ngot {e}");
        assert!(e.contains("cascade-workloads-"), "names the file: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    }
}

/// GLaM: dense and MoE layers alternate (`model.moe.every = 2`), its experts are two-matrix
/// GELU FFNs (`moe_gelu`); a layer of the workload is a block of two layers, the MoE last, and
/// `cascade analyze` counts each instance once per block.
#[test]
fn glam_alternates_dense_and_moe_layers_in_blocks_of_two() {
    let w = Workload::load("glam").unwrap();
    assert_eq!((w.block(), w.repeats(), w.model.layers), (2, 16, 32));
    let pt = w.points()[2];
    assert_eq!(pt.phase, Phase::Decode);
    let layer = w.layer(&pt);
    let roles: Vec<&str> = layer.iter().map(|i| i.role.as_str()).collect();
    assert_eq!(
        roles,
        [
            "attn_norm",
            "qkv_proj",
            "attention",
            "o_proj",
            "ffn_norm",
            "ffn",
            "attn_norm",
            "qkv_proj",
            "attention",
            "o_proj",
            "ffn_norm",
            "moe"
        ]
    );
    let ffn = layer.iter().find(|i| i.role == "ffn").unwrap();
    let moe = layer.iter().find(|i| i.role == "moe").unwrap();
    assert_eq!(
        (ffn.cascade.as_str(), ffn.extents["F"]),
        ("ffn_gelu", 16384)
    );
    assert_eq!((moe.cascade.as_str(), moe.extents["X"]), ("moe_gelu", 64));
    // Equal instances merge with their counts summed, in first-seen order.
    let merged = cascade::workload::merge_equal(layer.clone());
    let counts: Vec<(&str, u64)> = merged.iter().map(|i| (i.role.as_str(), i.count)).collect();
    assert_eq!(
        counts,
        [
            ("attn_norm", 2),
            ("qkv_proj", 2),
            ("attention", 2),
            ("o_proj", 2),
            ("ffn_norm", 2),
            ("ffn", 1),
            ("moe", 1)
        ]
    );
    // Model MACs: 16 blocks of (two layers' attention side, a dense FFN, the MoE's routed
    // tokens through two experts each).
    let v = json(&["analyze", "glam", "--json"]);
    assert_eq!(
        (v["layers"].as_u64(), v["block"].as_u64()),
        (Some(16), Some(2))
    );
    let p = &v["points"][2];
    let mac = |role: &str| -> u64 {
        let i = p["layer"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["role"] == role)
            .unwrap();
        i["analysis"]["total_ops"]["mac"].as_u64().unwrap() * i["count"].as_u64().unwrap()
    };
    let (t, d, f) = (32u64, 4096u64, 16384u64);
    assert_eq!(mac("ffn"), 2 * t * d * f);
    // Each token's two experts (two matrices each), the router and the weighted combine.
    assert_eq!(mac("moe"), 2 * (2 * t * d * f) + t * d * 64 + t * 2 * d);
    assert_eq!(mac("qkv_proj"), 2 * t * d * 3 * d);
    let sum: u64 = p["layer_ops"]["mac"].as_u64().unwrap();
    assert_eq!(p["model_ops"]["mac"].as_u64().unwrap(), 16 * sum);
    let text = stdout(&cascade(&["analyze", "glam"]));
    assert!(
        text.contains("workload glam — 32 layers: 16 blocks of 2 (dense FFN, then MoE)"),
        "{text}"
    );
}

#[test]
fn interleaved_moe_fields_are_checked() {
    let cases: [(Edits, &str); 5] = [
        (
            &[("every = 2 ", "every = 3 ")],
            "every.toml: model.moe.every: an MoE every 3 layers: must be ≥ 1 and divide model.layers = 32",
        ),
        (
            &[("every = 2 ", "every = 0 ")],
            "every.toml: model.moe.every: an MoE every 0 layers",
        ),
        (
            &[("ffn = \"gelu\"", "ffn = \"relu\"")],
            "every.toml: model.ffn: MoE experts are SwiGLU (cascade `moe`) or GELU (`moe_gelu`) FFNs, not ReLU",
        ),
        (
            &[("every = 2 ", "every = 2\nffn_dim = 0 ")],
            "every.toml: model.moe.ffn_dim: must be ≥ 1",
        ),
        (
            &[("skew = 0.0 ", "skew = 1.0\nrandom_seed = 7 ")],
            "every.toml: model.moe.random_seed: a random routing, a skew or measured counts: give one",
        ),
    ];
    for (edits, want) in cases {
        let mut text = std::fs::read_to_string("workloads/glam.toml").unwrap();
        for (from, to) in edits {
            assert!(text.contains(from), "{from}");
            text = text.replacen(from, to, 1);
        }
        let (code, e) = analyze_file("every.toml", &text);
        assert_eq!(code, Some(1), "{e}");
        assert!(e.contains(want), "want `{want}` in: {e}");
    }
    // The experts' own width is read: a narrower expert shrinks the MoE, not the dense FFN.
    let text = std::fs::read_to_string("workloads/glam.toml")
        .unwrap()
        .replacen("every = 2 ", "every = 2\nffn_dim = 8192 ", 1);
    let w = Workload::from_toml_str(&text, "w.toml").unwrap();
    let layer = w.layer(&w.points()[2]);
    let f = |role: &str| layer.iter().find(|i| i.role == role).unwrap().extents["F"];
    assert_eq!((f("ffn"), f("moe")), (16384, 8192));
}
