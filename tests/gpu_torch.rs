//! PyTorch truths measured on the lent H200 (`scripts/gpu/measure_torch.py`, development set)
//! against the GPU model: the committed report is recomputed from the committed CSV on any
//! machine, and the device the truths come from picks the preset they are compared with.

use cascade::gpu::torch_truth::{compare, parse, render, score, Device, CALIBRATION};
use cascade::gpu::{check_device, preset_for_device};

const DIR: &str = "reports/crosscheck/h200";

/// The scored sets: `dev` (development), `heldout1` … `heldout8` (held-out sets, each measured
/// once against a frozen model and used for development since), `heldout9` and `heldout10` (the
/// held-out sets of the model frozen at f038f14, each measured once: heldout9 with the cases back
/// to back, heldout10 with 2 s idle before each; heldout10's is the accuracy figure).
const SETS: [&str; 11] = [
    "dev",
    "heldout1",
    "heldout2",
    "heldout3",
    "heldout4",
    "heldout5",
    "heldout6",
    "heldout7",
    "heldout8",
    "heldout9",
    "heldout10",
];

fn device() -> String {
    let text = std::fs::read_to_string(format!("{DIR}/dev_device.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["name"].as_str().unwrap().to_string()
}

fn report(set: &str) -> (String, Vec<cascade::gpu::torch_truth::Compared>) {
    let json = std::fs::read_to_string(format!("{DIR}/{set}_device.json")).unwrap();
    let dev = Device::from_json(&json).unwrap();
    let preset = preset_for_device(&dev.name).unwrap();
    let spec = cascade_arch::preset(preset).unwrap().gpu.unwrap();
    let cases = parse(&std::fs::read_to_string(format!("{DIR}/{set}.csv")).unwrap()).unwrap();
    let rows = compare(&cases, &spec);
    (render(set, &dev, &rows), rows)
}

#[test]
fn the_truths_come_from_the_gpu_of_the_preset_they_are_compared_with() {
    let dev = device();
    assert_eq!(preset_for_device(&dev), Ok("h200"));
    assert!(check_device("h100", &dev).is_err());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/dev_device.json")).unwrap())
            .unwrap();
    // The ceilings were measured in the same run, and the L2 the preset gives is the driver's.
    assert!(
        v["ceilings"]["copy_2GiB_read_plus_write_Bps"]
            .as_f64()
            .unwrap()
            > 1e12
    );
    let h200 = cascade_arch::preset("h200").unwrap().gpu.unwrap();
    assert_eq!(h200.l2.bytes(), v["l2_bytes"].as_f64().unwrap());
    // The preset's measured ceilings are this run's (the model is calibrated to them).
    let m = h200.measured_ceilings.unwrap();
    let c = &v["ceilings"];
    let gemm = c["gemm_8192_bf16_flops"].as_f64().unwrap() / 1e12;
    let copy = c["copy_2GiB_read_plus_write_Bps"].as_f64().unwrap();
    assert!(
        (m.gemm_bf16_8192_tflops / gemm - 1.0).abs() < 1e-3,
        "{gemm}"
    );
    assert!((m.copy.bytes_per_s() / copy - 1.0).abs() < 1e-3, "{copy}");
    // And the model reproduces them (calibration).
    let spec = cascade_arch::preset("h200").unwrap().gpu.unwrap();
    let g = cascade::gpu::GpuOp::parse("gemm m=8192 n=8192 k=8192").unwrap();
    let t = cascade::gpu::try_estimate(&g, &spec).unwrap().seconds;
    assert!(
        (2.0 * 8192f64.powi(3) / t / 1e12 / gemm - 1.0).abs() < 0.01,
        "{t}"
    );
}

#[test]
fn the_committed_dev_report_is_what_the_model_gives_now() {
    let (md, rows) = report("dev");
    let committed = std::fs::read_to_string(format!("{DIR}/dev.md")).unwrap();
    assert!(
        md == committed,
        "reports/crosscheck/h200/dev.md is stale: run `cargo test --test gpu_torch -- --ignored regenerate`"
    );
    // Enough measured cases, the calibration shapes among them but in no score.
    let measured = rows.iter().filter(|r| r.case.median_s.is_some()).count();
    assert!(measured >= 90, "{measured}");
    // (A calibration shape may come from a held-out set that is development data now.)
    let others: Vec<_> = SETS[1..].iter().flat_map(|s| report(s).1).collect();
    for c in CALIBRATION {
        let r = rows
            .iter()
            .chain(others.iter())
            .find(|r| r.case.case == c)
            .unwrap_or_else(|| panic!("calibration case {c} is in no set"));
        assert!(r.calibration && r.rel_err.is_some(), "{c}");
    }
    let all = score(rows.iter()).unwrap();
    assert!(all.mape.is_finite() && all.cases > 50, "{all:?}");
}

#[test]
#[ignore]
fn regenerate() {
    for set in SETS {
        let (md, _) = report(set);
        std::fs::write(format!("{DIR}/{set}.md"), md).unwrap();
    }
}

/// Every committed report is what the model gives now (regenerate with
/// `cargo test --test gpu_torch -- --ignored regenerate`).
#[test]
fn the_committed_reports_are_what_the_model_gives_now() {
    for set in SETS {
        let (md, _) = report(set);
        let committed = std::fs::read_to_string(format!("{DIR}/{set}.md")).unwrap();
        assert!(
            md == committed,
            "reports/crosscheck/h200/{set}.md is stale: run `cargo test --test gpu_torch -- --ignored regenerate`"
        );
    }
}

/// The held-out sets: each measured in its own run, once, after the model was frozen (the run
/// records the commit), sharing no case with the sets before it; the last one's figure is the
/// accuracy figure README gives.
#[test]
fn the_held_out_sets_are_separate_and_readme_gives_the_last_ones_figure() {
    let mut earlier: Vec<(String, Vec<cascade::gpu::torch_truth::Compared>)> = Vec::new();
    let (_, dev_rows) = report("dev");
    earlier.push(("dev".into(), dev_rows));
    let mut dates = vec![
        Device::from_json(&std::fs::read_to_string(format!("{DIR}/dev_device.json")).unwrap())
            .unwrap()
            .date,
    ];
    let mut last = None;
    for &set in &SETS[1..] {
        let (_, rows) = report(set);
        let json = std::fs::read_to_string(format!("{DIR}/{set}_device.json")).unwrap();
        let dev = Device::from_json(&json).unwrap();
        assert_eq!(
            dev.model_commit.len(),
            40,
            "{set}: the frozen model's commit is recorded"
        );
        assert!(!dates.contains(&dev.date), "{set}: a run of its own");
        dates.push(dev.date.clone());
        for r in &rows {
            for (name, e) in &earlier {
                assert!(
                    e.iter().all(|d| d.case.spec != r.case.spec),
                    "{set}: {} is also in {name}",
                    r.case.case
                );
            }
            // The held-out set holds no calibration case (an earlier one, development data
            // now, may have given one).
            assert!(
                set != SETS[SETS.len() - 1] || !r.calibration,
                "{} is a calibration case",
                r.case.case
            );
        }
        let measured = rows.iter().filter(|r| r.case.median_s.is_some()).count();
        assert!(measured >= 100, "{set}: {measured}");
        let all = score(rows.iter()).unwrap();
        assert!(all.mape.is_finite() && all.cases >= 100, "{all:?}");
        last = Some(all);
        earlier.push((set.into(), rows));
    }
    // README quotes the last held-out figure that this run computes.
    let all = last.unwrap();
    let readme = std::fs::read_to_string("README.md").unwrap();
    let figure = format!("{:.1}%", all.mape * 100.0);
    assert!(
        readme.contains(&format!("held-out MAPE {figure}")),
        "README.md must give the held-out MAPE, {figure}"
    );
}

#[test]
fn crosscheck_refuses_a_preset_that_is_no_gpu() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args([
            "crosscheck",
            "--arch",
            "fusemax",
            "--out",
            "target/crosscheck-test",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("has no [gpu] section"), "{err}");
}

/// The H200 preset's `op_start` is what its calibration run gives: the one-kernel chain's time
/// less the model's one-element kernel (launch included); and the chain's slope per added
/// kernel is the model's per-kernel cost. These chains are calibration: in no score.
#[test]
fn op_start_is_the_calibration_runs_figure() {
    let text = std::fs::read_to_string(format!("{DIR}/dev_calibration.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["name"], "NVIDIA H200");
    let chain = |j: u32| {
        v["start_costs"][format!("chain_{j}_kernels_s")]
            .as_f64()
            .unwrap()
    };
    let spec = cascade_arch::preset("h200").unwrap().gpu.unwrap();
    let mut no_start = spec.clone();
    no_start.op_start = None;
    let op = cascade::gpu::GpuOp::parse("add elems=1 dtype=fp32").unwrap();
    let one = cascade::gpu::try_estimate(&op, &no_start).unwrap().seconds;
    let op_start = chain(1) - one;
    let preset = spec.op_start.unwrap().seconds();
    assert!(
        (preset - op_start).abs() < 0.01e-6,
        "preset {preset:e} s, calibration gives {op_start:e} s"
    );
    // Least-squares slope of the chain over 1, 2, 4, 8 kernels.
    let js = [1.0, 2.0, 4.0, 8.0];
    let ts: Vec<f64> = [1, 2, 4, 8].iter().map(|&j| chain(j)).collect();
    let (mj, mt) = (js.iter().sum::<f64>() / 4.0, ts.iter().sum::<f64>() / 4.0);
    let sxy: f64 = js.iter().zip(&ts).map(|(j, t)| (j - mj) * (t - mt)).sum();
    let sxx: f64 = js.iter().map(|j| (j - mj) * (j - mj)).sum();
    let slope = sxy / sxx;
    assert!(
        (slope - one).abs() < 0.1e-6,
        "slope {slope:e} s, model {one:e} s"
    );
}

/// The H200 preset's `l2_dirty_at_op_start` is what its experiment gives: the 256 MiB sum's
/// time after the protocol's overwrite less its time after a read (clean L2), at the copy
/// ceiling. And the model orders the experiment's cases as measured: a read stream (GEMV) pays
/// the write-backs, a write-only fill pays nothing.
#[test]
fn the_dirty_l2_figure_is_the_experiments() {
    let text = std::fs::read_to_string(format!("{DIR}/l2_state.csv")).unwrap();
    // The leading columns (case, bytes, write, read) hold no commas; later ones are quoted.
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(head[..4], ["case", "bytes", "write", "read"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.splitn(5, ',').collect()).collect();
    let diff = |name: &str| {
        let r = rows.iter().find(|r| r[0] == name).unwrap();
        r[2].parse::<f64>().unwrap() - r[3].parse::<f64>().unwrap()
    };
    let spec = cascade_arch::preset("h200").unwrap().gpu.unwrap();
    let copy = spec.measured_ceilings.as_ref().unwrap().copy.bytes_per_s();
    let dirty = diff("sum_268435456") * copy;
    let preset = spec.l2_dirty_at_op_start.unwrap().bytes();
    assert!(
        (preset - dirty).abs() < 0.1e6,
        "preset {preset:e} B, experiment gives {dirty:e} B"
    );
    assert!(diff("fill_33554432").abs() < 0.1e-6, "a fill pays nothing");
    let mut clean = spec.clone();
    clean.l2_dirty_at_op_start = None;
    let t = |op: &str, s: &cascade_arch::GpuSpec| {
        let op = cascade::gpu::GpuOp::parse(op).unwrap();
        cascade::gpu::try_estimate(&op, s).unwrap().seconds
    };
    let pays = |op: &str| t(op, &spec) - t(op, &clean);
    let gemv = pays("gemm m=1 n=65536 k=4096 dtype=bf16");
    // The model writes the bytes back at its HBM rate, above the copy ceiling the figure was
    // converted at: the GEMV pays 6.6 us of the 9.1 us measured.
    assert!(
        (gemv - diff("gemm_1x65536x4096")).abs() < 3e-6,
        "GEMV pays {gemv:e} s, measured {:e} s",
        diff("gemm_1x65536x4096")
    );
    let copy_pays = pays("copy bytes=268435456");
    assert!(
        copy_pays > 0.0 && copy_pays < gemv,
        "a copy pays less than a read stream: {copy_pays:e} s vs {gemv:e} s"
    );
}

/// The H200 preset's `wgmma_kernel_start` is what its experiment gives: a 64³ cuBLAS GEMM's
/// time less a one-element add's, both after the protocol's overwrite; and the model gives a
/// tiny GEMM that much more than a tiny add.
#[test]
fn the_wgmma_start_is_the_experiments() {
    let text = std::fs::read_to_string(format!("{DIR}/cold_start.csv")).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(head[..2], ["case", "event_write_s"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.splitn(3, ',').collect()).collect();
    let event = |name: &str| {
        let r = rows.iter().find(|r| r[0] == name).unwrap();
        r[1].parse::<f64>().unwrap()
    };
    let measured = event("gemm_64x64x64") - event("add_1_fp32");
    let spec = cascade_arch::preset("h200").unwrap().gpu.unwrap();
    let preset = spec.wgmma_kernel_start.unwrap().seconds();
    assert!(
        (preset - measured).abs() < 0.01e-6,
        "preset {preset:e} s, experiment gives {measured:e} s"
    );
    let t = |op: &str| {
        let op = cascade::gpu::GpuOp::parse(op).unwrap();
        cascade::gpu::try_estimate(&op, &spec).unwrap().seconds
    };
    let extra = t("gemm m=64 n=64 k=64 dtype=bf16") - t("add elems=1 dtype=fp32");
    assert!(
        (extra - measured).abs() < 0.5e-6,
        "model {extra:e} s, measured {measured:e} s"
    );
}

/// The model against measured truth, per category: a wrong step cost, tile or start cost in any
/// kernel family moves its category's error past these bounds (today's development figures,
/// dev and heldout1 together, plus 3 points). They guard what the model reaches; the goal (10%)
/// is not reached yet (docs/gpu-h200-notes.md).
#[test]
fn each_kernel_family_stays_within_its_measured_error() {
    const BOUNDS: [(&str, f64); 15] = [
        ("bmm", 27.0),
        ("copy", 11.0),
        ("decode_sdpa", 12.0),
        ("elementwise", 11.0),
        ("gemm_aligned", 12.5),
        ("gemm_dtype", 12.0),
        ("gemm_misaligned", 13.0),
        ("gemm_skinny", 22.5),
        // 13.5: the norms' loaded round trips (docs/gpu-h200-notes.md) took layer norm here from
        // 6.0% to 10.2% while its 45 cases over all sets went from 7.2% to 7.8%.
        ("layernorm", 13.5),
        ("rmsnorm", 14.0),
        ("sdpa_cudnn", 17.0),
        ("sdpa_default", 18.0),
        ("sdpa_flash", 11.0),
        ("silu_mul", 11.0),
        ("softmax", 14.0),
    ];
    let mut rows = report("dev").1;
    rows.extend(report("heldout1").1);
    for (cat, bound) in BOUNDS {
        let s = score(rows.iter().filter(|r| r.case.category == cat))
            .unwrap_or_else(|| panic!("{cat}: no scored case"));
        assert!(
            s.mape * 100.0 <= bound,
            "{cat}: MAPE {:.1}% over {} cases exceeds {bound}%",
            s.mape * 100.0,
            s.cases
        );
    }
    let all = score(rows.iter()).unwrap();
    assert!(
        all.mape <= 0.145,
        "development MAPE {:.1}%",
        all.mape * 100.0
    );
}
