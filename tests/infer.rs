//! `cascade infer` (issue 12): step composition, the KV cache growing, memory refusals,
//! determinism, and the validation against a Llama-3-8B layer and model measured on the H200
//! (`reports/infer/validation.md`, with GenZ's and LLMCompass's predictions beside ours).

use cascade::infer::{run_static, Footprint, GpuStepper, StaticRun, Step, StepShape};
use cascade::workload::{Phase, Workload};
use cascade_arch::Architecture;
use std::collections::BTreeMap;

fn h200() -> Architecture {
    Architecture::load("arch/presets/h200.toml").unwrap()
}

fn llama() -> Workload {
    Workload::load("llama3_8b").unwrap()
}

fn step(w: &Workload, a: &Architecture, phase: Phase, batch: u64, new: u64, ctx: u64) -> Step {
    GpuStepper::new(w, a)
        .unwrap()
        .step(StepShape {
            phase,
            batch,
            new_tokens: new,
            context: ctx,
        })
        .unwrap()
}

#[test]
fn a_step_is_its_ops_times_their_counts() {
    let (w, a) = (llama(), h200());
    let s = step(&w, &a, Phase::Prefill, 2, 512, 512);
    let sum: f64 = s.ops.iter().map(|o| o.seconds * o.times as f64).sum();
    assert!((s.gpu_s - sum).abs() <= 1e-12 * sum);
    // An eager step is never faster than its GPU work, nor than its host issuing every kernel
    // (the h200 preset's `eager_dispatch`, 21.05 µs a kernel).
    let kernels: usize = s
        .ops
        .iter()
        .map(|o| o.kernels.len() * o.times as usize)
        .sum();
    assert!(
        s.seconds >= s.gpu_s && s.seconds >= kernels as f64 * 21.05e-6,
        "{} {}",
        s.seconds,
        s.gpu_s
    );
    // Per layer: 2 norms, QKV, 2 rotary ops (5 kernels each), 2 cache writes, attention, output
    // projection, 2 residual adds, and the FFN's gate and up GEMMs, SiLU·mul (one op of two
    // kernels) and down GEMM: 15 ops, 32 times; per step: embedding, final norm, LM head.
    let per_layer = s.ops.iter().filter(|o| o.times == 32).count();
    let per_step = s.ops.iter().filter(|o| o.times == 1).count();
    assert_eq!((per_layer, per_step), (15, 3), "{:#?}", s.ops);
    // Prefill attention is causal over the prompt; the LM head runs on the last token only.
    let att = s.ops.iter().find(|o| o.role == "attention").unwrap();
    assert!(
        att.spec
            .starts_with("attention b=2 h=32 n=512 d=128 causal=1"),
        "{}",
        att.spec
    );
    let lm = s.ops.iter().find(|o| o.role == "lm_head").unwrap();
    assert!(
        lm.spec.starts_with("gemm m=2 n=128256 k=4096"),
        "{}",
        lm.spec
    );
    // Inside a step an op has no lone-op start: each is faster than `cascade estimate` gives.
    let spec = cascade_arch::Architecture::load("arch/presets/h200.toml").unwrap();
    let gpu = spec.gpu.as_ref().unwrap();
    let alone = cascade::gpu::try_estimate(&cascade::gpu::GpuOp::parse(&att.spec).unwrap(), gpu)
        .unwrap()
        .seconds;
    assert!(att.seconds < alone, "{} vs {alone}", att.seconds);
}

#[test]
fn decode_steps_read_a_growing_kv_cache() {
    let (w, a) = (llama(), h200());
    let r = run_static(
        &w,
        &a,
        StaticRun {
            batch: 8,
            prompt: 1000,
            generate: 6,
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(r.decode_s.len(), 5);
    // Step i reads prompt + i keys; the time never falls as the cache grows.
    let last = r.last_decode.as_ref().unwrap();
    assert_eq!(last.shape.context, 1005);
    let att = last.ops.iter().find(|o| o.role == "attention").unwrap();
    assert!(
        att.spec
            .starts_with("decode_attention b=8 hq=32 hkv=8 l=1005 d=128"),
        "{}",
        att.spec
    );
    for p in r.decode_s.windows(2) {
        assert!(p[1] >= p[0], "{:?}", r.decode_s);
    }
    // TTFT is the prefill step; tokens/s counts every sequence's tokens over the whole run.
    assert_eq!(r.ttft_s, r.prefill.seconds);
    let total = r.prefill.seconds + r.decode_s.iter().sum::<f64>();
    assert!((r.total_s - total).abs() < 1e-15);
    assert!((r.tokens_per_s - 48.0 / total).abs() < 1e-9 * r.tokens_per_s);
    // The cache at its fullest: 8 × (1000 + 5) tokens, 2 × 32 layers × 8 heads × 128 × 2 B each.
    assert_eq!(r.footprint.kv_tokens, 8 * 1005);
    assert_eq!(
        r.footprint.kv_cache,
        (8 * 1005 * 2 * 32 * 8 * 128 * 2) as f64
    );
    let t = r.tbt.as_ref().unwrap();
    assert!(t.min_s <= t.median_s && t.median_s <= t.p99_s && t.p99_s <= t.max_s);
}

#[test]
fn llama3_8b_weights_are_its_parameter_count() {
    let f = Footprint::of(
        &llama(),
        &StaticRun {
            batch: 1,
            prompt: 1,
            generate: 1,
        },
        &h200(),
        &Parallel::ONE,
    );
    // Llama-3-8B has 8.03 B parameters (model card): 16.06 GB in bf16.
    assert!((f.weights / 2.0 / 1e9 - 8.03).abs() < 0.01, "{}", f.weights);
}

#[test]
fn a_run_that_does_not_fit_names_what_and_where() {
    let (w, a) = (llama(), h200());
    let e = run_static(
        &w,
        &a,
        StaticRun {
            batch: 64,
            prompt: 32768,
            generate: 1024,
        },
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(e.contains("does not fit"), "{e}");
    assert!(e.contains("KV cache of 2162624 tokens"), "{e}");
    assert!(e.contains("`hbm` of h200"), "{e}");
    assert!(e.contains("141.00 GB"), "{e}");
    for (b, p, g, flag) in [
        (0, 1, 1, "--batch"),
        (1, 0, 1, "--prompt"),
        (1, 1, 0, "--generate"),
    ] {
        let e = run_static(
            &w,
            &a,
            StaticRun {
                batch: b,
                prompt: p,
                generate: g,
            },
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(e.starts_with(&format!("{flag} 0")), "{e}");
    }
}

#[test]
fn infer_refuses_what_it_cannot_run() {
    let w = llama();
    let fm = Architecture::load("arch/presets/fusemax.toml").unwrap();
    let e = GpuStepper::new(&w, &fm).err().unwrap();
    assert!(e.contains("no [gpu] section"), "{e}");
    let resnet = Workload::load("resnet18").unwrap();
    let a = h200();
    let e = GpuStepper::new(&resnet, &a).err().unwrap();
    assert!(e.contains("lists layers"), "{e}");
}

#[test]
fn infer_is_deterministic() {
    let (w, a) = (llama(), h200());
    let run = StaticRun {
        batch: 4,
        prompt: 300,
        generate: 5,
    };
    let j = || serde_json::to_string(&run_static(&w, &a, run, &mut |_, _| {}).unwrap()).unwrap();
    assert_eq!(j(), j());
}

// ---- Validation against the H200 ------------------------------------------------------------

const REPORT: &str = "reports/infer/validation.md";

/// A measured set: its name, the measured CSV and the peers' predictions of the same cases.
struct Set {
    name: &'static str,
    measured: &'static str,
    genz: &'static str,
    llmcompass: &'static str,
}

/// The held-out set first: it is the accuracy figure. `heldout1` was measured once, after the
/// model was frozen at commit 8905b807 (its shapes are disjoint from the development set's);
/// the development set is what the model was developed against.
const SETS: [Set; 3] = [
    Set {
        name: "heldout1",
        measured: "reports/infer/h200/llama_heldout1.csv",
        genz: "reports/infer/peers/genz_heldout1.csv",
        llmcompass: "reports/infer/peers/llmcompass_heldout1.csv",
    },
    Set {
        name: "dev",
        measured: "reports/infer/h200/llama.csv",
        genz: "reports/infer/peers/genz.csv",
        llmcompass: "reports/infer/peers/llmcompass.csv",
    },
    Set {
        name: "moe1",
        measured: "reports/infer/h200/moe.csv",
        genz: "reports/infer/peers/genz.csv",
        llmcompass: "reports/infer/peers/llmcompass.csv",
    },
];

struct Case {
    name: String,
    category: String,
    measured: f64,
    model: f64,
}

fn cases(measured: &str) -> Vec<Case> {
    let (w, a) = (llama(), h200());
    let mixtral = Workload::load("mixtral_8x7b").unwrap();
    let mut st = GpuStepper::new(&w, &a).unwrap();
    let mut moe = GpuStepper::new(&mixtral, &a).unwrap();
    let text = std::fs::read_to_string(measured).unwrap();
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        // case,category,what (may be quoted, with commas),median_s,min_s
        let f: Vec<&str> = line.split(',').collect();
        let (name, cat) = (f[0].to_string(), f[1].to_string());
        if cat == "calibration" {
            continue;
        }
        let measured: f64 = f[f.len() - 2].parse().unwrap();
        let num = |k: &str| -> u64 {
            name.split('_')
                .find_map(|p| p.strip_prefix(k).and_then(|v| v.parse().ok()))
                .unwrap()
        };
        let (b, n) = (num("b"), num("l"));
        let (phase, new) = if name.contains("prefill") {
            (Phase::Prefill, n)
        } else {
            (Phase::Decode, 1)
        };
        let shape = StepShape {
            phase,
            batch: b,
            new_tokens: new,
            context: n,
        };
        if name.starts_with("moe") {
            // The MoE block of one Mixtral layer: the ops of its `moe` role.
            let s = moe.step(shape).unwrap();
            out.push(Case {
                model: moe.role_seconds(&s, "moe"),
                name,
                category: cat,
                measured,
            });
            continue;
        }
        let s = st.step(shape).unwrap();
        let model = if name.starts_with("layer") {
            st.layer_seconds(&s)
        } else {
            s.seconds
        };
        out.push(Case {
            name,
            category: cat,
            measured,
            model,
        });
    }
    out
}

/// A peer's predictions (`case,seconds,notes`), by case; empty seconds are left out.
fn peer(path: &str) -> BTreeMap<String, f64> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.splitn(3, ',');
            let case = f.next()?.to_string();
            let s: f64 = f.next()?.parse().ok()?;
            Some((case, s))
        })
        .collect()
}

fn err(p: f64, m: f64) -> f64 {
    (p / m - 1.0) * 100.0
}

/// One set's table and per-category summary (cascade and the peers, over the cases each ran).
fn render_set(set: &Set, cases: &[Case]) -> String {
    let genz = peer(set.genz);
    let llmc = peer(set.llmcompass);
    let mut s = String::from(
        "| case | measured | cascade | error | GenZ | error | LLMCompass | error |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let us = |x: f64| format!("{:.1} µs", x * 1e6);
    // category → errors of cascade, GenZ, LLMCompass (absolute, %)
    let mut by_cat: BTreeMap<&str, [Vec<f64>; 3]> = BTreeMap::new();
    for c in cases {
        let col = |p: Option<&f64>| match p {
            Some(&p) => format!("{} | {:+.1}%", us(p), err(p, c.measured)),
            None => "— | —".to_string(),
        };
        s += &format!(
            "| {} | {} | {} | {:+.1}% | {} | {} |\n",
            c.name,
            us(c.measured),
            us(c.model),
            err(c.model, c.measured),
            col(genz.get(&c.name)),
            col(llmc.get(&c.name))
        );
        let e = by_cat.entry(c.category.as_str()).or_default();
        e[0].push(err(c.model, c.measured).abs());
        for (i, p) in [(1, genz.get(&c.name)), (2, llmc.get(&c.name))] {
            if let Some(&p) = p {
                e[i].push(err(p, c.measured).abs());
            }
        }
    }
    let stat = |e: &Vec<f64>| {
        if e.is_empty() {
            "— | —".to_string()
        } else {
            format!(
                "{:.1}% | {:.1}% ({})",
                e.iter().sum::<f64>() / e.len() as f64,
                e.iter().cloned().fold(0.0, f64::max),
                e.len()
            )
        }
    };
    s += "\n| category | cases | cascade MAPE | max abs error | GenZ MAPE | max (cases) | \
          LLMCompass MAPE | max (cases) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
    let all: [Vec<f64>; 3] =
        std::array::from_fn(|i| by_cat.values().flat_map(|e| e[i].iter().cloned()).collect());
    for (cat, e) in by_cat.iter().map(|(c, e)| (*c, e)).chain([("all", &all)]) {
        let c = stat(&e[0]);
        let c = c
            .rsplit_once(" (")
            .map_or(c.clone(), |(a, _)| a.to_string());
        s += &format!(
            "| {cat} | {} | {c} | {} | {} |\n",
            e[0].len(),
            stat(&e[1]),
            stat(&e[2])
        );
    }
    s
}

fn render(all: &[(&Set, Vec<Case>)]) -> String {
    let mut s = String::from(
        "# Llama-3-8B on the H200: `cascade infer` against PyTorch, with GenZ and LLMCompass\n\n\
         Generated by `cargo test --release --test infer -- --ignored regenerate` from the measured\n\
         sets under `reports/infer/h200/` (measured by `scripts/gpu/measure_llama.py --set NAME`:\n\
         prefill eager, decode in a CUDA graph; protocol in `llama*_device.json`) and the peers'\n\
         predictions in `reports/infer/peers/` (how they were run: its README). A layer case is one\n\
         decoder layer (the step's per-layer ops); a model case is a whole step of 32 layers, the\n\
         embedding, the final norm and the LM head. Errors are (predicted / measured − 1); the\n\
         calibration rows of each set (CUDA-graph chains) are in no score. Plot:\n\
         `validation.png` / `validation.svg` (every case of both sets, measured against predicted).\n\n",
    );
    for (set, cases) in all {
        s += &match set.name {
            "heldout1" => "## Held-out set `heldout1` — the accuracy figure\n\n\
                           Shapes disjoint from the development set's, defined before they were \
                           measured, and measured once against the model frozen at commit \
                           8905b807; nothing was tuned on them.\n\n"
                .to_string(),
            "dev" => "## Development set `dev`\n\n\
                      The cases the model was developed against (the rotary kernels' pricing and \
                      the eager host pacing were found on them): its errors flatter the model.\n\n"
                .to_string(),
            "moe1" => "## Mixtral-8x7B MoE block `moe1` — held out\n\n\
                       One layer's MoE block (router, softmax, top-2, experts, combine; routing \
                       balanced, as the workload's `skew = 0`) measured once \
                       (`scripts/gpu/measure_moe.py`) against the model frozen at commit \
                       6f20e9a0, which had never been compared with an MoE measurement. The \
                       measured block is plain PyTorch (index gathers, `index_add_`); the model \
                       prices vLLM's fused-MoE kernels around the same expert GEMMs.\n\n"
                .to_string(),
            other => format!("## Set `{other}`\n\n"),
        };
        s += &render_set(set, cases);
        s += "\n";
    }
    s
}

fn all_sets() -> Vec<(&'static Set, Vec<Case>)> {
    SETS.iter().map(|s| (s, cases(s.measured))).collect()
}

#[test]
fn the_validation_report_is_current() {
    let committed = std::fs::read_to_string(REPORT).unwrap();
    assert!(
        render(&all_sets()) == committed,
        "{REPORT} is stale: run `cargo test --release --test infer -- --ignored regenerate`"
    );
}

/// Decode steps are where the model is trusted today: every measured decode case of both sets
/// (one layer and the whole model) within 15%. Prefill is a known miss (eager PyTorch's rotary
/// kernels and host-paced small steps, see the README): bounded at 45% so that it cannot grow
/// unnoticed.
#[test]
fn decode_steps_are_within_fifteen_percent() {
    for (_, cases) in all_sets() {
        for c in cases {
            let e = (c.model / c.measured - 1.0).abs();
            let bound = if c.category.contains("decode") {
                0.15
            } else {
                0.45
            };
            assert!(e < bound, "{}: {:+.1}%", c.name, e * 100.0);
        }
    }
}

/// The held-out set's cases are not the development set's (a held-out case that repeats a
/// development shape would score the model on what it was developed on).
#[test]
fn the_held_out_set_is_disjoint_from_the_development_set() {
    let names = |p: &str| -> Vec<String> { cases(p).into_iter().map(|c| c.name).collect() };
    let (h, d) = (names(SETS[0].measured), names(SETS[1].measured));
    assert!(h.len() >= 16, "{}", h.len());
    for n in &h {
        assert!(!d.contains(n), "{n} is in both sets");
    }
}

#[test]
#[ignore]
fn regenerate() {
    let all = all_sets();
    std::fs::write(REPORT, render(&all)).unwrap();
    use cascade::plot::{render as draw, scatter_with_diagonal, Series};
    let mut series = Vec::new();
    for (set, cases) in &all {
        let pts = |f: &dyn Fn(&Case) -> Option<f64>| -> Vec<(f64, f64)> {
            cases
                .iter()
                .filter_map(|c| f(c).map(|p| (c.measured * 1e6, p * 1e6)))
                .collect()
        };
        let (g, l) = (peer(set.genz), peer(set.llmcompass));
        series.push(Series::new(
            format!("cascade ({})", set.name),
            pts(&|c| Some(c.model)),
        ));
        series.push(Series::new(
            format!("GenZ ({})", set.name),
            pts(&|c| g.get(&c.name).copied()),
        ));
        let lp = pts(&|c| l.get(&c.name).copied());
        if !lp.is_empty() {
            series.push(Series::new(format!("LLMCompass ({})", set.name), lp));
        }
    }
    let chart = scatter_with_diagonal(
        "Llama-3-8B layers and steps on the H200: predicted vs measured",
        "measured µs",
        "predicted µs",
        series,
    );
    draw(
        &chart,
        std::path::Path::new("reports/infer/validation.png"),
        std::path::Path::new("reports/infer/validation.svg"),
    )
    .unwrap();
}

// ---- Several devices ------------------------------------------------------------------------

use cascade::infer::collective::{cost, Algorithm, Collective};
use cascade::infer::{run_static_on, Parallel};
use cascade_arch::Link;

fn par(devices: u64, tp: u64, pp: u64, ep: u64) -> Parallel {
    Parallel {
        devices,
        tp,
        pp,
        ep,
    }
}

fn nvlink() -> Link {
    Link::preset("nvlink4").unwrap()
}

fn pstep(w: &Workload, a: &Architecture, p: Parallel, phase: Phase, b: u64, n: u64) -> Step {
    let new = if phase == Phase::Prefill { n } else { 1 };
    GpuStepper::with_parallel(w, a, p, Some(nvlink()))
        .unwrap()
        .step(StepShape {
            phase,
            batch: b,
            new_tokens: new,
            context: n,
        })
        .unwrap()
}

#[test]
fn tensor_parallel_steps_split_heads_and_all_reduce_twice_a_layer() {
    let (w, a) = (llama(), h200());
    let s = pstep(&w, &a, par(2, 2, 1, 1), Phase::Decode, 8, 2048);
    let att = s.ops.iter().find(|o| o.role == "attention").unwrap();
    assert!(
        att.spec
            .starts_with("decode_attention b=8 hq=16 hkv=4 l=2048"),
        "{}",
        att.spec
    );
    let qkv = s.ops.iter().find(|o| o.role == "qkv_proj").unwrap();
    assert!(
        qkv.spec.starts_with("gemm m=8 n=3072 k=4096"),
        "{}",
        qkv.spec
    );
    let comm: Vec<_> = s.ops.iter().filter(|o| o.pattern == "collective").collect();
    // Per layer: after the output projection and after the FFN; per step: the embedding's
    // all-reduce and the logits' all-gather.
    let per_layer = comm.iter().filter(|o| o.times == 32).count();
    assert_eq!((per_layer, comm.len()), (2, 4), "{comm:#?}");
    // Hand-computed: 8 tokens × 4096 × 2 B = 65536 B over 2 devices of NVLink 4 (450 GB/s,
    // 0.8 µs): ring 2·0.8 µs + 65536 / 450e9 s.
    let ar = comm.iter().find(|o| o.times == 32).unwrap();
    let want = 1.6e-6 + 65536.0 / 450e9;
    assert!((ar.seconds - want).abs() < 1e-15, "{} {want}", ar.seconds);
    assert!(
        ar.spec
            .starts_with("all_reduce bytes=65536 devices=2 link=nvlink4"),
        "{}",
        ar.spec
    );
    let comm_s: f64 = comm.iter().map(|o| o.seconds * o.times as f64).sum();
    assert!((s.comm_s - comm_s).abs() < 1e-15);
    // A decode step is its ops back to back, collectives included.
    assert!((s.seconds - s.gpu_s).abs() < 1e-15);
    let one = step(&w, &a, Phase::Decode, 8, 1, 2048);
    assert!(s.seconds < one.seconds, "{} vs {}", s.seconds, one.seconds);
}

#[test]
fn pipeline_stages_run_their_layers_in_turn() {
    let (w, a) = (llama(), h200());
    // One sequence: one micro-batch through two stages of 16 layers; the step is the first
    // stage (embedding + 16 layers), the send, and the last (16 layers + final norm + LM head).
    let s = pstep(&w, &a, par(2, 1, 2, 1), Phase::Decode, 1, 4096);
    let st = GpuStepper::with_parallel(&w, &a, par(2, 1, 2, 1), Some(nvlink())).unwrap();
    let layer = st.layer_seconds(&s);
    assert!(s.ops.iter().all(|o| o.times == 16 || o.times == 1));
    let send = s.ops.iter().find(|o| o.role == "pp_comm").unwrap();
    assert!((send.seconds - (0.8e-6 + 8192.0 / 450e9)).abs() < 1e-15);
    // gpu_s counts the 16 layers once, and the per-step ops and the send once.
    let want = s.gpu_s + 16.0 * layer;
    assert!(
        (s.seconds - want).abs() < 1e-12 * want,
        "{} {want}",
        s.seconds
    );
    // The same work as one device: energy and HBM bytes over both stages equal its.
    let one = step(&w, &a, Phase::Decode, 1, 1, 4096);
    assert!(
        (s.energy_j / one.energy_j - 1.0).abs() < 1e-9,
        "{} {}",
        s.energy_j,
        one.energy_j
    );
    assert!((s.hbm_bytes / one.hbm_bytes - 1.0).abs() < 1e-9);
    // Four sequences over two stages: two micro-batches, the second one stage behind.
    let s4 = pstep(&w, &a, par(2, 1, 2, 1), Phase::Decode, 4, 4096);
    assert_eq!(s4.shape.batch, 4);
    let att = s4.ops.iter().find(|o| o.role == "attention").unwrap();
    assert!(
        att.spec.starts_with("decode_attention b=2 "),
        "{}",
        att.spec
    );
}

#[test]
fn expert_parallel_moe_holds_whole_experts_and_exchanges_tokens() {
    let a = h200();
    let w = Workload::load("mixtral_8x7b").unwrap();
    // Four replicas, experts spread over the four devices: two experts each, dispatch and
    // combine all-to-all.
    let s = pstep(&w, &a, par(4, 1, 1, 4), Phase::Decode, 32, 2048);
    let experts: Vec<_> = s
        .ops
        .iter()
        .filter(|o| o.role == "moe" && o.spec.starts_with("bmm"))
        .collect();
    assert!(!experts.is_empty());
    for e in &experts {
        // 32 tokens × top-2 over 8 experts: 8 tokens each, two experts per device.
        assert!(e.spec.starts_with("bmm batch=2 m=8 "), "{}", e.spec);
    }
    let a2a = s
        .ops
        .iter()
        .filter(|o| o.spec.starts_with("all_to_all"))
        .count();
    assert_eq!(a2a, 2);
    // One replica over four tensor-parallel ranks: the experts' partial outputs all-reduced.
    let s = pstep(&w, &a, par(4, 4, 1, 4), Phase::Decode, 32, 2048);
    assert!(s
        .ops
        .iter()
        .any(|o| o.role == "ep_comm" && o.spec.starts_with("all_reduce")));
    // Each device's weights: a quarter of the experts.
    let run = StaticRun {
        batch: 32,
        prompt: 2048,
        generate: 8,
    };
    let one = Footprint::of(&w, &run, &a, &Parallel::ONE);
    let four = Footprint::of(&w, &run, &a, &par(4, 4, 1, 4));
    assert!(
        four.weights < 0.3 * one.weights,
        "{} {}",
        four.weights,
        one.weights
    );
    assert!((four.kv_cache * 4.0 - one.kv_cache).abs() < 1.0);
}

#[test]
fn parallelism_that_does_not_fit_the_model_is_refused() {
    let (w, a) = (llama(), h200());
    let err = |p: Parallel, link: Option<Link>| {
        GpuStepper::with_parallel(&w, &a, p, link)
            .err()
            .unwrap_or_else(|| panic!("{p:?} accepted"))
    };
    let e = err(par(3, 3, 1, 1), Some(nvlink()));
    assert!(e.contains("--tp 3: model.heads = 32"), "{e}");
    let e = err(par(3, 2, 1, 1), Some(nvlink()));
    assert!(e.contains("--devices 3 is not a multiple of --tp 2"), "{e}");
    let e = err(par(2, 1, 1, 2), Some(nvlink()));
    assert!(e.contains("has no MoE layer"), "{e}");
    let e = err(par(64, 1, 64, 1), Some(nvlink()));
    assert!(e.contains("more stages than the model's 32 layers"), "{e}");
    let e = err(par(2, 2, 1, 1), None);
    assert!(e.contains("give --link"), "{e}");
    let e = err(par(0, 1, 1, 1), Some(nvlink()));
    assert!(e.starts_with("--devices 0"), "{e}");
    // A link file with a zero bandwidth, and an architecture naming a link that does not exist.
    let e = Link::from_toml_str(
        "name = \"x\"\ndescription = \"\"\nsource = \"\"\nbandwidth = \"0 GB/s\"\nlatency = \"1 us\"\n",
        "x.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("x.toml:4:"), "{e}");
    assert!(e.contains("bandwidth"), "{e}");
    let text = std::fs::read_to_string("arch/presets/h200.toml")
        .unwrap()
        .replace("interconnect = \"nvlink4\"", "interconnect = \"nvlink9\"");
    let e = Architecture::from_toml_str(&text, "h200x.toml")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("h200x.toml:13:"), "{e}");
    assert!(e.contains("no link preset `nvlink9`"), "{e}");
}

#[test]
fn a_tensor_parallel_run_reports_its_devices() {
    let (w, a) = (llama(), h200());
    let run = StaticRun {
        batch: 4,
        prompt: 512,
        generate: 4,
    };
    let r = run_static_on(
        &w,
        &a,
        run,
        par(2, 2, 1, 1),
        Some(nvlink()),
        None,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(r.link.as_deref(), Some("nvlink4"));
    assert!(r.prefill.comm_s > 0.0);
    // The KV cache per device halves with the KV heads.
    let one = Footprint::of(&w, &run, &a, &Parallel::ONE);
    assert_eq!(r.footprint.kv_cache * 2.0, one.kv_cache);
    // Collective costs are the module's (a spot check of the exported cost function).
    let c = cost(Collective::AllGather, 1e6, 4, &nvlink(), Algorithm::Auto);
    assert!((c.seconds - (3.0 * 0.8e-6 + 0.75e6 / 450e9)).abs() < 1e-15);
}

// ---- Memory tiers -----------------------------------------------------------------------------

use cascade::infer::{Tier, Tiers};

fn host_tiers(weights: Tier, kv: Tier, host_gb: f64) -> Tiers {
    Tiers {
        weights,
        kv,
        host_link: Link::preset("pcie5_x16").unwrap(),
        host_capacity: Some(host_gb * 1e9),
        ssd: None,
    }
}

#[test]
fn offloaded_weights_stream_over_the_host_link_layer_by_layer() {
    let (w, a) = (llama(), h200());
    let mut st = GpuStepper::new(&w, &a).unwrap();
    st.set_tiers(host_tiers(Tier::Host, Tier::Device, 100.0))
        .unwrap();
    let shape = StepShape {
        phase: Phase::Decode,
        batch: 4,
        new_tokens: 1,
        context: 1024,
    };
    let s = st.step(shape).unwrap();
    let on_device = step(&w, &a, Phase::Decode, 4, 1, 1024);
    let fp = Footprint::of(
        &w,
        &StaticRun {
            batch: 1,
            prompt: 1,
            generate: 1,
        },
        &a,
        &Parallel::ONE,
    );
    // Hand-computed: each of the 32 layers waits for its 218 MB at 55 GB/s (+1 µs), far longer
    // than it computes; then the LM head's and embedding's tables come over the link.
    let xfer = |b: f64| b / 55e9 + 1e-6;
    let layer = GpuStepper::new(&w, &a).unwrap().layer_seconds(&on_device);
    let rest = on_device.seconds - 32.0 * layer;
    let want = 32.0 * xfer(fp.layer_weights) + xfer(fp.table_weights) + rest;
    assert!(
        (s.seconds / want - 1.0).abs() < 1e-9,
        "{} {want}",
        s.seconds
    );
    assert!((s.host_link_bytes - fp.weights).abs() < 1.0);
    assert_eq!(s.ssd_bytes, 0.0);
    // The KV cache on the host: attention's keys and values come over the link each layer.
    let mut kv = GpuStepper::new(&w, &a).unwrap();
    kv.set_tiers(host_tiers(Tier::Device, Tier::Host, 100.0))
        .unwrap();
    let s = kv.step(shape).unwrap();
    let per_layer = 4.0 * 1024.0 * 2.0 * 8.0 * 128.0 * 2.0;
    assert!((s.host_link_bytes - 32.0 * per_layer).abs() < 1.0);
    assert!(s.seconds > on_device.seconds);
}

#[test]
fn placements_are_checked_against_each_tier() {
    let (w, a) = (llama(), h200());
    let run = StaticRun {
        batch: 1,
        prompt: 512,
        generate: 2,
    };
    let go = |t: Tiers| run_static_on(&w, &a, run, Parallel::ONE, None, Some(t), &mut |_, _| {});
    // 16 GB of weights do not fit in 10 GB of host memory.
    let e = go(host_tiers(Tier::Host, Tier::Device, 10.0)).unwrap_err();
    assert!(
        e.contains("does not fit: what is placed on the host (--host-memory) needs 16.06 GB"),
        "{e}"
    );
    let r = go(host_tiers(Tier::Host, Tier::Device, 20.0)).unwrap();
    // The device keeps two layers and the tables.
    let f = &r.footprint;
    assert!((f.device_weights - (2.0 * f.layer_weights + f.table_weights)).abs() < 1.0);
    assert!(f.host > 16e9 && f.device_weights < 4e9);
    let mut t = host_tiers(Tier::Host, Tier::Device, 20.0);
    t.host_capacity = None;
    assert!(go(t).unwrap_err().contains("needs --host-memory"));
    let e = go(host_tiers(Tier::Device, Tier::Ssd, 20.0)).unwrap_err();
    assert!(e.contains("--kv-on ssd"), "{e}");
    let e = go(host_tiers(Tier::Ssd, Tier::Device, 20.0)).unwrap_err();
    assert!(e.contains("needs a drive"), "{e}");
}

#[test]
fn an_ssd_tier_reads_at_the_flash_model_s_rate() {
    let spec = cascade::flash::preset("ssd980pro").unwrap();
    let rate = cascade::infer::tiers::ssd_read_rate(&spec).unwrap();
    // A PCIe 4.0 ×4 drive: below its host link (about 7.9 GB/s raw), above 3 GB/s.
    assert!(rate > 3e9 && rate < 7.9e9, "{rate}");
    let (w, a) = (llama(), h200());
    let mut t = host_tiers(Tier::Ssd, Tier::Device, 1.0);
    t.ssd = Some(cascade::infer::tiers::SsdTier {
        drive: spec.name.clone(),
        capacity: spec.logical_bytes() as f64,
        read_bytes_per_s: rate,
    });
    let mut st = GpuStepper::new(&w, &a).unwrap();
    st.set_tiers(t).unwrap();
    let s = st
        .step(StepShape {
            phase: Phase::Decode,
            batch: 1,
            new_tokens: 1,
            context: 100,
        })
        .unwrap();
    // The drive, slower than the 55 GB/s host link, sets the pace: about 16 GB at its rate.
    assert!(
        (s.seconds / (16.06e9 / rate) - 1.0).abs() < 0.05,
        "{}",
        s.seconds
    );
    assert!((s.ssd_bytes - s.host_link_bytes).abs() < 1.0);
}

#[test]
fn measured_expert_counts_route_the_moe_layer() {
    let a = h200();
    let text = std::fs::read_to_string("workloads/mixtral_8x7b.toml")
        .unwrap()
        .replace("skew = 0.0", "counts = [40, 20, 10, 10, 8, 6, 4, 2]");
    let path = std::env::temp_dir().join("cascade_mixtral_counts.toml");
    std::fs::write(&path, &text).unwrap();
    let w = Workload::load(path.to_str().unwrap()).unwrap();
    // 100 tokens × top-2 = 200 pairs in proportion to the counts; the hottest expert gets its
    // 40% (80 tokens) and is its own bmm.
    let s = step(&w, &a, Phase::Decode, 100, 1, 1024);
    let experts: Vec<&str> = s
        .ops
        .iter()
        .filter(|o| o.role == "moe" && o.spec.starts_with("gemm m=80 n=14336"))
        .map(|o| o.spec.as_str())
        .collect();
    assert_eq!(experts.len(), 2, "{:#?}", s.ops);
    // Under expert parallelism over 4 devices the busiest device holds experts 0 and 1.
    let p = pstep(&w, &a, par(4, 1, 1, 4), Phase::Decode, 100, 1024);
    assert!(p
        .ops
        .iter()
        .any(|o| o.spec.starts_with("gemm m=80 n=14336")));
    for (bad, want) in [
        ("counts = [1, 2]", "2 counts for 8 experts"),
        ("counts = [1, 0, 0, 0, 0, 0, 0, 0]", "fewer than top_k = 2"),
        ("counts = [1, 1, 1, 1, 1, 1, 1, -1]", "finite numbers ≥ 0"),
    ] {
        let t = text.replace("counts = [40, 20, 10, 10, 8, 6, 4, 2]", bad);
        std::fs::write(&path, &t).unwrap();
        let e = Workload::load(path.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("model.moe.counts") && e.contains(want), "{e}");
    }
}

#[test]
fn a_spatial_accelerator_runs_its_steps_through_the_mapper() {
    let w = llama();
    let vpu = Architecture::load("arch/presets/fusemax_vpu.toml").unwrap();
    let run = StaticRun {
        batch: 2,
        prompt: 128,
        generate: 3,
    };
    let r = run_static(&w, &vpu, run, &mut |_, _| {}).unwrap();
    // The layer's cascades, 32 times, and the LM head: no GPU glue kernels.
    let roles: Vec<&str> = r.prefill.ops.iter().map(|o| o.role.as_str()).collect();
    assert_eq!(
        roles,
        [
            "attn_norm",
            "qkv_proj",
            "attention",
            "o_proj",
            "ffn_norm",
            "ffn",
            "lm_head"
        ]
    );
    assert!(r.prefill.ops.iter().all(|o| o.pattern == "mapped"));
    let sum: f64 = r
        .prefill
        .ops
        .iter()
        .map(|o| o.seconds * o.times as f64)
        .sum();
    assert!((r.prefill.seconds - sum).abs() < 1e-12 * sum);
    assert_eq!(r.decode_s.len(), 2);
    assert!(r.decode_s[1] >= r.decode_s[0]);
    // FuseMax's arrays have no rsqrt: the norms cannot run there, and infer says which.
    let fm = Architecture::load("arch/presets/fusemax.toml").unwrap();
    let e = run_static(&w, &fm, run, &mut |_, _| {}).unwrap_err();
    assert!(e.contains("attn_norm") && e.contains("rsqrt"), "{e}");
    // Spreading or offloading is for GPUs.
    let e = run_static_on(
        &w,
        &vpu,
        run,
        par(2, 2, 1, 1),
        Some(nvlink()),
        None,
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(e.contains("spatial accelerator"), "{e}");
}
