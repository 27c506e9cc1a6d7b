//! Duplex (issue 14): PIM units beside an xPU. The PIM paths' bandwidth and energy from the
//! DRAM model, op placement on hand-made cases, co-processing within the shared bandwidth,
//! energy per path, the cross-check against Duplex's simulator, and refusals.

use cascade::infer::duplex::{concurrent_seconds, DuplexOptions, DuplexStepper};
use cascade::infer::{run_static_duplex, Parallel, StaticRun, StepShape};
use cascade::pim;
use cascade::reproduce_duplex::{golden_mean_latency, run_one, MODELS, SIMULATOR_ROUTING_SEED};
use cascade::workload::{Phase, Workload};
use cascade_arch::Architecture;
use std::path::Path;

mod common;

fn duplex() -> Architecture {
    cascade_arch::preset("duplex").unwrap()
}

fn shape(phase: Phase, batch: u64, new_tokens: u64, context: u64) -> StepShape {
    StepShape {
        phase,
        batch,
        new_tokens,
        context,
    }
}

/// Each PIM path's peak is the stated multiple of the xPU path's, and the DRAM model sustains
/// a share of it that its organisation explains: Logic-PIM and BankGroup-PIM hide activations
/// behind other banks (> 90%); a Bank-PIM unit has one bank and pays every row change (< 80%).
#[test]
fn the_pim_paths_come_out_of_the_dram_model() {
    let xpu = cascade::dram::DramSpec::preset("hbm3_h100")
        .unwrap()
        .peak_bandwidth();
    let logic = pim::path("hbm3_logic_pim").unwrap();
    let bg = pim::path("hbm3_bankgroup_pim").unwrap();
    let bank = pim::path("hbm3_bank_pim").unwrap();
    for (p, times) in [(&logic, 4.0), (&bg, 4.0), (&bank, 16.0)] {
        assert!((p.peak / xpu - times).abs() < 1e-6, "{p:?}");
        assert!(p.bandwidth < p.peak && p.bandwidth > 0.6 * p.peak, "{p:?}");
    }
    assert!(logic.bandwidth > 0.93 * logic.peak, "{logic:?}");
    assert!(bg.bandwidth > 0.9 * bg.peak, "{bg:?}");
    assert!(bank.bandwidth < 0.8 * bank.peak, "{bank:?}");
    // Energy per bit follows the paper's per-access figures (bank < logic die < bank group),
    // with the model's activations on top.
    assert!(bank.pj_per_bit < logic.pj_per_bit && logic.pj_per_bit < bg.pj_per_bit);
    // 0.464 nJ per 32 B is 1.81 pJ/bit before activations and refresh.
    assert!(
        logic.pj_per_bit > 1.81 && logic.pj_per_bit < 2.2,
        "{logic:?}"
    );
    // The units run their root level at the path's sustained rate and energy.
    let (units, p) = pim::units("logic_pim", false).unwrap();
    let root = &units.levels[0];
    assert_eq!(root.bandwidth.unwrap().bytes_per_s(), p.bandwidth);
    let per_access = p.pj_per_bit * f64::from(root.width_bits);
    assert!((root.energy.read.pj() / per_access - 1.0).abs() < 1e-9);
    let (peak_units, _) = pim::units("logic_pim", true).unwrap();
    assert_eq!(
        peak_units.levels[0].bandwidth.unwrap().bytes_per_s(),
        p.peak
    );
}

/// A decode step's GEMV (one sequence: 1 FLOP per byte) goes to the PIM units; a prefill of
/// 4096 tokens keeps its GEMMs (far above the xPU's ridge point) on the xPU.
#[test]
fn a_gemv_goes_to_pim_and_a_large_gemm_stays_on_the_xpu() {
    let w = Workload::load("llama3_8b").unwrap();
    let a = duplex();
    let mut st =
        DuplexStepper::new(&w, &a, Parallel::ONE, None, &DuplexOptions::default()).unwrap();
    let d = st.step(shape(Phase::Decode, 1, 1, 1024)).unwrap();
    let qkv = st.placements.iter().find(|p| p.role == "qkv_proj").unwrap();
    assert_eq!(qkv.unit, "pim", "{qkv:?}");
    assert!(qkv.intensity < 2.0, "{qkv:?}");
    assert!(qkv.pim_s.unwrap() < qkv.xpu_s, "{qkv:?}");
    let op = d.ops.iter().find(|o| o.role == "qkv_proj").unwrap();
    assert_eq!((op.unit, op.pattern), ("pim", "pim"));
    // Norms, glue kernels and the LM head stay on the xPU.
    for role in ["attn_norm", "rope", "residual", "lm_head"] {
        assert!(
            d.ops
                .iter()
                .filter(|o| o.role == role)
                .all(|o| o.unit == "xpu"),
            "{role}"
        );
    }
    st.step(shape(Phase::Prefill, 1, 4096, 4096)).unwrap();
    for role in ["qkv_proj", "o_proj", "ffn"] {
        let p = st.placements.iter().find(|p| p.role == role).unwrap();
        assert_eq!(p.unit, "xpu", "{p:?}");
        assert!(p.pim_s.is_none(), "not even tried: {p:?}");
        assert!(p.intensity > 295.0, "{p:?}");
    }
    // A decode step is faster with the units than without them.
    let gpu = cascade::infer::GpuStepper::new(&w, &a)
        .unwrap()
        .step(shape(Phase::Decode, 1, 1, 1024))
        .unwrap();
    assert!(d.seconds < gpu.seconds, "{} vs {}", d.seconds, gpu.seconds);
}

/// Co-processing: Mixtral's experts split between xPU and PIM at batch 128 (both busy), and
/// the pair never moves more bytes per second than the path they share delivers.
#[test]
fn coprocessing_splits_experts_within_the_shared_bandwidth() {
    assert_eq!(concurrent_seconds(1.0, 1.0, 2.0, 1.0, 10.0), 2.0);
    assert_eq!(concurrent_seconds(1.0, 30.0, 1.0, 30.0, 10.0), 6.0);
    let w = Workload::load("mixtral_8x7b").unwrap();
    let a = duplex();
    let par = MODELS[0].par;
    let link = Some(cascade_arch::Link::load("nvlink4").unwrap());
    let mut st = DuplexStepper::new(&w, &a, par, link, &DuplexOptions::default()).unwrap();
    let s = st.step(shape(Phase::Decode, 128, 1, 1536)).unwrap();
    let moe = st.placements.iter().find(|p| p.role == "moe").unwrap();
    assert_eq!(moe.unit, "xpu+pim", "{moe:?}");
    let (on_xpu, experts) = moe.experts_on_xpu.unwrap();
    assert!(on_xpu > 0 && on_xpu < experts, "{moe:?}");
    // Faster than either alone.
    assert!(
        moe.seconds < moe.xpu_s && moe.seconds < moe.pim_s.unwrap(),
        "{moe:?}"
    );
    let op = s.ops.iter().find(|o| o.role == "moe").unwrap();
    let bw = st.shared_bandwidth();
    assert!(
        op.hbm_bytes / op.seconds <= bw * (1.0 + 1e-12),
        "{op:?} {bw}"
    );
    // Both units are busy in the step; each unit's energy is counted once.
    let x = s.by_unit["xpu"];
    let p = s.by_unit["pim"];
    assert!(x.energy_j > 0.0 && p.energy_j > 0.0);
    assert!(((x.energy_j + p.energy_j) / s.energy_j - 1.0).abs() < 1e-9);
    assert!(((x.hbm_bytes + p.hbm_bytes) / s.hbm_bytes - 1.0).abs() < 1e-9);
}

/// Energy per path: the same attention's bytes cost less through the logic die than through
/// the xPU's path, and a step's energy is the sum of its units'.
#[test]
fn energy_is_accounted_per_path() {
    let w = Workload::load("llama3_8b").unwrap();
    let a = duplex();
    let mut st =
        DuplexStepper::new(&w, &a, Parallel::ONE, None, &DuplexOptions::default()).unwrap();
    let s = st.step(shape(Phase::Decode, 32, 1, 2048)).unwrap();
    let att = s.ops.iter().find(|o| o.role == "attention").unwrap();
    assert_eq!(att.unit, "pim");
    let mut without = a.clone();
    without.pim = None;
    let g = cascade::infer::GpuStepper::new(&w, &without)
        .unwrap()
        .step(shape(Phase::Decode, 32, 1, 2048))
        .unwrap();
    let gatt = g.ops.iter().find(|o| o.role == "attention").unwrap();
    let per_byte = |o: &cascade::infer::StepOp| o.energy_j / o.hbm_bytes;
    assert!(
        per_byte(att) < 0.7 * per_byte(gatt),
        "{} vs {}",
        per_byte(att),
        per_byte(gatt)
    );
    // Through the logic die: the path's energy per bit (and the MACs' 0.23 pJ/FLOP).
    let path = pim::path("hbm3_logic_pim").unwrap();
    let memory_j = att.hbm_bytes * 8.0 * path.pj_per_bit * 1e-12;
    assert!(
        att.energy_j >= memory_j && att.energy_j < 1.2 * memory_j,
        "{att:?}"
    );
    let sum: f64 = s.by_unit.values().map(|p| p.energy_j).sum();
    assert!((sum / s.energy_j - 1.0).abs() < 1e-9);
}

/// The cross-check against Duplex's simulator on Mixtral-8x7B, 4 devices, batch 32, 1024/1024:
/// under its assumptions (`roofline`) our mean time between tokens is within 15% of its golden
/// CSV for the GPU-only and the Duplex system (`reports/duplex/summary.md` has all 12 runs).
#[test]
fn the_cross_check_with_duplexs_simulator_holds_on_mixtral() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/golden/llmsimulator/raw");
    let run = StaticRun {
        batch: 32,
        prompt: 1024,
        generate: 1025,
    };
    for (dir, system) in [
        ("mixtral_b32_gpu", ("h100", "none")),
        ("mixtral_b32_duplex", ("duplex", "logic_pim")),
    ] {
        let d = root.join(dir);
        let csv = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "csv"))
            .unwrap();
        let sim = golden_mean_latency(&std::fs::read_to_string(&csv).unwrap(), "g").unwrap();
        let ours = run_one(
            &MODELS[0],
            system,
            run,
            true,
            true,
            Some(SIMULATOR_ROUTING_SEED),
        )
        .unwrap()
        .tbt_mean_s
        .unwrap();
        let err = ours / sim - 1.0;
        assert!(err.abs() < 0.15, "{dir}: ours {ours} vs {sim}: {err}");
    }
    // The golden reader refuses what is not a golden CSV.
    assert!(golden_mean_latency("a,b\n1,2\n", "x.csv")
        .unwrap_err()
        .to_string()
        .contains("x.csv: no `latency` column"));
    assert!(golden_mean_latency("latency\nfast\n", "y.csv")
        .unwrap_err()
        .to_string()
        .starts_with("y.csv:2: latency"));
}

/// Bad PIM descriptions are refused where they are written.
#[test]
fn bad_pim_sections_are_refused_at_their_field() {
    let h100 = std::fs::read_to_string("arch/presets/h100.toml").unwrap();
    let unknown = h100.replace(
        "interconnect = \"nvlink4\"",
        "interconnect = \"nvlink4\"\n\n[pim]\narch = \"logic_pimm\"",
    );
    let e = Architecture::from_toml_str(&unknown, "u.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("u.toml:14:"), "{e}");
    assert!(e.contains("no PIM preset `logic_pimm`"), "{e}");
    let field = h100.replace(
        "interconnect = \"nvlink4\"",
        "interconnect = \"nvlink4\"\n\n[pim]\narch = \"logic_pim\"\nstacks = 5",
    );
    let e = Architecture::from_toml_str(&field, "f.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("f.toml:15:") && e.contains("stacks"), "{e}");
    // PIM units need an xPU.
    let spatial = std::fs::read_to_string("arch/presets/fusemax.toml").unwrap()
        + "\n[pim]\narch = \"logic_pim\"\n";
    let e = Architecture::from_toml_str(&spatial, "s.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs a [gpu] section"), "{e}");
    // A PIM preset that is not one, given to a stepper.
    let w = Workload::load("llama3_8b").unwrap();
    let a = duplex();
    let bad = DuplexOptions {
        pim: Some("fusemax".into()),
        roofline: false,
    };
    let e = match DuplexStepper::new(&w, &a, Parallel::ONE, None, &bad) {
        Err(e) => e,
        Ok(_) => panic!("accepted"),
    };
    assert!(e.contains("--pim fusemax: no PIM preset"), "{e}");
    // Offloading is not modelled with PIM units.
    let mut t = cascade::infer::Tiers::device_only(cascade_arch::Link::load("pcie5_x16").unwrap());
    t.weights = cascade::infer::Tier::Host;
    t.host_capacity = Some(1e12);
    let r = cascade::infer::run_static_on(
        &w,
        &a,
        StaticRun {
            batch: 1,
            prompt: 16,
            generate: 2,
        },
        Parallel::ONE,
        None,
        Some(t),
        &mut |_, _| {},
    );
    assert!(r.unwrap_err().contains("offloading"));
    // The roofline run of a GPU without units, and a zero batch.
    let e = run_static_duplex(
        &w,
        &a,
        StaticRun {
            batch: 0,
            prompt: 16,
            generate: 2,
        },
        Parallel::ONE,
        None,
        &DuplexOptions::default(),
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(e.contains("--batch 0"), "{e}");
}

/// GLaM on 8 devices (TP 8, EP 8): a decode step places the dense FFN and the MoE of each
/// block, and the attention of both of its layers: the PIM time of a block's attention is
/// twice one layer's (the same model with an MoE in every layer has one attention a block).
/// The footprint counts 16 MoE and 16 dense layers; pipeline stages hold whole blocks.
#[test]
fn glam_places_both_layers_of_a_block() {
    let w = Workload::load("glam").unwrap();
    let a = duplex();
    let par = Parallel {
        devices: 8,
        tp: 8,
        pp: 1,
        ep: 8,
    };
    let link = Some(cascade_arch::Link::load("nvlink4").unwrap());
    let mut st = DuplexStepper::new(&w, &a, par, link.clone(), &DuplexOptions::default()).unwrap();
    let s = st.step(shape(Phase::Decode, 64, 1, 2048)).unwrap();
    let placed = |st: &DuplexStepper, role: &str| {
        let v: Vec<_> = st.placements.iter().filter(|p| p.role == role).collect();
        assert_eq!(v.len(), 1, "{role}: one placement a block: {v:?}");
        v[0].clone()
    };
    // The dense FFN (64 tokens on 2048 columns: 60 FLOP/B) is tried on PIM, where it is
    // compute-bound; the MoE's experts and the attention go to PIM.
    assert!(placed(&st, "ffn").pim_s.is_some());
    for role in ["moe", "attention"] {
        let p = placed(&st, role);
        assert_ne!(p.unit, "xpu", "{p:?}");
    }
    // One op a block for the attention placed on PIM, run every block.
    let att: Vec<_> = s.ops.iter().filter(|o| o.role == "attention").collect();
    assert_eq!(att.len(), 1, "{att:?}");
    assert_eq!(att[0].times, 16);
    let glam_att = placed(&st, "attention").pim_s.unwrap();
    let mut every = w.clone();
    every.model.moe.as_mut().unwrap().every = 1;
    assert_eq!(every.repeats(), 32);
    let mut one = DuplexStepper::new(&every, &a, par, link, &DuplexOptions::default()).unwrap();
    one.step(shape(Phase::Decode, 64, 1, 2048)).unwrap();
    let one_att = placed(&one, "attention").pim_s.unwrap();
    assert!(
        (glam_att / (2.0 * one_att) - 1.0).abs() < 1e-9,
        "{glam_att} vs 2 × {one_att}"
    );
    // Weights: 143B parameters over 8 devices, in FP16.
    let f = cascade::infer::Footprint::of(
        &w,
        &StaticRun {
            batch: 1,
            prompt: 1,
            generate: 1,
        },
        &a,
        &par,
    );
    let params = f.weights / 2.0 * 8.0;
    assert!(params > 140e9 && params < 146e9, "{params}");
    // A device computes its 8 experts' share of the routed pairs (an eighth of 2 per token),
    // so its largest live FFN set is the dense layer's (F / 8 columns of every token), not
    // every token's two whole experts: batch 128 at 1024/1024 fits in 80 GB.
    let run = StaticRun {
        batch: 128,
        prompt: 1024,
        generate: 1024,
    };
    let f = cascade::infer::Footprint::of(&w, &run, &a, &par);
    let (t, d, ffn, vocab): (f64, f64, f64, f64) = (128.0 * 1024.0, 4096.0, 16384.0, 32000.0);
    let qkv = 2.0 * t * (4.0 + 2.0 * 4.0) * 128.0;
    let want = (2.0 * t * d + (3.0 * t * 2.0 * ffn / 8.0).max(qkv) + 128.0 * vocab) * 2.0;
    assert!(
        (f.activations / want - 1.0).abs() < 1e-12,
        "{} vs {want}",
        f.activations
    );
    assert!(f.weights + f.kv_cache + f.activations < 80e9, "{f:?}");
    // Pipeline stages hold whole blocks: 16 blocks, at most 16 stages.
    let pp = |pp: u64| Parallel {
        devices: 8 * pp,
        tp: 8,
        pp,
        ep: 8,
    };
    assert_eq!(pp(2).shard(&w).model.layers, 16);
    let e = pp(32).check(&w).unwrap_err();
    assert!(
        e.contains("more stages than the model's 16 blocks of 2 layers"),
        "{e}"
    );
    // Experts split over tensor-parallel ranks need a width they divide; the error names the
    // field the width came from.
    let mut narrow = w.clone();
    narrow.model.moe.as_mut().unwrap().ffn_dim = Some(1004);
    let tp8 = Parallel {
        devices: 8,
        tp: 8,
        pp: 1,
        ep: 1,
    };
    let e = tp8.check(&narrow).unwrap_err();
    assert_eq!(
        e,
        "--tp 8: model.moe.ffn_dim = 1004 (the experts' FFN width) is not a multiple of it"
    );
    assert!(tp8.check(&w).is_ok());
}

/// The mapper fills a fanout of 5 with an imperfect factor when no divisor fills it: Logic-PIM's
/// 5 stacks all work on a power-of-two GEMM (they sat at 4 of 5 before: the "fill" digit took
/// the largest divisor whenever the rank had divisors above the fanout).
#[test]
fn the_mapper_fills_five_stacks_with_an_imperfect_factor() {
    let o = common::cascade(&[
        "map",
        "--cascade",
        "gemm",
        "--set",
        "T=128",
        "--set",
        "K=4096",
        "--set",
        "N=14336",
        "--arch",
        "logic_pim",
        "--budget",
        "4000",
        "--json",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&common::stdout(&o)).unwrap();
    let u = v["instances"][0]["result"]["Ok"]["report"]["utilization"]["pim"]
        .as_f64()
        .unwrap();
    assert!(u > 0.95, "{u}");
}
