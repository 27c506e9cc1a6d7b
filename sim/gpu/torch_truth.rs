//! PyTorch truths measured on a GPU (`scripts/gpu/measure_torch.py`) against the model.
//!
//! The script measures one named case set per run (the development set `dev`; a held-out set
//! is measured once, in its own run, after the model is frozen for it) with the protocol of
//! `/work/shared/GPU.md`: the median of ≥ 30 launches, each queued behind a kernel that
//! overwrites 512 MiB (cold L2, host launch hidden), events around the op alone. This module
//! reads such a CSV, predicts every case the model has an op for, and scores the predictions
//! per category — leaving out the calibration cases (the shapes whose measurements set a model
//! parameter: [`CALIBRATION`]) and saying which cases have no model yet.

use super::op::GpuOp;
use super::search::try_estimate;
use cascade_arch::GpuSpec;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Cases whose shapes set a model parameter: the GPU model's achievable-rate fractions
/// (`hw::WGMMA_MEASURED_FRACTION`, `hw::HBM_MEASURED_FRACTION`) come from a cuBLAS bf16 8192³
/// GEMM and a 1 GiB device-to-device copy, its L2 request rate (`hw::L2_REQUESTS_MEASURED`) from
/// cuBLAS's `align1` GEMM 8191³, the issue cost of ATen's warp softmax
/// (`library::WARP_SOFTMAX_INSTRS_PER_ELEM`) from its two largest dev cases, the step cost of
/// FlashAttention-2's uneven causal kernel (`hw::FA2_UNEVEN_CAUSAL_STEP`) from the shape of
/// heldout5's `sdpa_flash_b40h16n448d64c`. They are compared but in no score.
pub const CALIBRATION: [&str; 6] = [
    "gemm_8192x8192x8192",
    "copy_1073741824",
    "gemm_8191x8191x8191",
    "softmax_65536x512",
    "softmax_32768x1024",
    "sdpa_flash_b40h16n448d64c",
];

/// Error above which a case counts as an outlier.
pub const OUTLIER: f64 = 0.25;

/// One measured case.
#[derive(Clone, Debug, PartialEq)]
pub struct TorchCase {
    pub case: String,
    pub category: String,
    /// The op as the script describes it (cascade's `--op` grammar where it has the op).
    pub spec: String,
    /// Median of the cold-L2 launches (seconds); `None` where the case failed to run.
    pub median_s: Option<f64>,
    /// CUDA-graph replay time per op (warm L2), for cases under 20 µs.
    pub graph_s: Option<f64>,
    pub status: String,
}

/// What the model says of one case.
#[derive(Clone, Debug, PartialEq)]
pub struct Compared {
    pub case: TorchCase,
    /// The op the model was given (after translating the library's name), or why none.
    pub op: Result<String, String>,
    pub modeled_s: Option<f64>,
    /// `modeled / measured − 1`.
    pub rel_err: Option<f64>,
    pub calibration: bool,
}

/// Parse the script's CSV (`case,category,spec,median_s,p10_s,p90_s,min_s,launches,graph_s,
/// flops,min_bytes,status`; the status, last, may hold commas).
pub fn parse(text: &str) -> Result<Vec<TorchCase>, String> {
    let mut lines = text.lines();
    let header = lines.next().ok_or("empty CSV")?;
    let cols: Vec<&str> = header.split(',').collect();
    let at = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .ok_or(format!("the CSV has no `{name}` column"))
    };
    let (ci, cat, sp, med, gr) = (
        at("case")?,
        at("category")?,
        at("spec")?,
        at("median_s")?,
        at("graph_s")?,
    );
    let st = at("status")?;
    if st != cols.len() - 1 {
        return Err("`status` must be the last column".into());
    }
    let num = |s: &str, line: usize, col: &str| -> Result<Option<f64>, String> {
        if s.is_empty() {
            return Ok(None);
        }
        let v: f64 = s
            .parse()
            .map_err(|_| format!("line {line}: {col} `{s}` is not a number"))?;
        if !v.is_finite() || v <= 0.0 {
            return Err(format!("line {line}: {col} {v} is not a positive time"));
        }
        Ok(Some(v))
    };
    let mut out = Vec::new();
    for (i, l) in lines.enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let line = i + 2;
        let f: Vec<&str> = l.splitn(cols.len(), ',').collect();
        if f.len() != cols.len() {
            return Err(format!(
                "line {line}: {} fields, expected {}",
                f.len(),
                cols.len()
            ));
        }
        out.push(TorchCase {
            case: f[ci].to_string(),
            category: f[cat].to_string(),
            spec: f[sp].to_string(),
            median_s: num(f[med], line, "median_s")?,
            graph_s: num(f[gr], line, "graph_s")?,
            status: f[st].trim_matches('"').to_string(),
        });
    }
    Ok(out)
}

/// The op the model is given for a measured spec, or why the model has none yet: the spec
/// itself when it parses (the script writes cascade's grammar, naming the library's choice with
/// `impl=`: `flash`, `cudnn`, `cublas`, `torch`), otherwise the parse error (e.g. SDPA's
/// `efficient` backend, which the model does not describe).
pub fn model_op(spec: &str) -> Result<String, String> {
    GpuOp::parse(spec)
        .map(|op| op.to_string())
        .map_err(|e| format!("no model: {e}"))
}

/// What a run's `<set>_device.json` says of the device and the protocol.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    pub name: String,
    pub date: String,
    pub torch: String,
    pub driver: String,
    pub protocol: String,
    /// The cascade commit the model was frozen at (held-out runs), else empty.
    pub model_commit: String,
}

impl Device {
    /// Reads the fields from the JSON the script writes.
    pub fn from_json(text: &str) -> Result<Device, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let get = |k: &str| v[k].as_str().unwrap_or("").to_string();
        let d = Device {
            name: get("name"),
            date: get("date"),
            torch: get("torch"),
            driver: get("driver"),
            protocol: get("protocol"),
            model_commit: get("model_commit"),
        };
        if d.name.is_empty() || d.protocol.is_empty() {
            return Err("the device JSON lacks `name` or `protocol`".into());
        }
        Ok(d)
    }
}

/// Predict every case on `gpu`.
pub fn compare(cases: &[TorchCase], gpu: &GpuSpec) -> Vec<Compared> {
    cases
        .iter()
        .map(|c| {
            let calibration = CALIBRATION.contains(&c.case.as_str());
            let op = model_op(&c.spec);
            let modeled_s = op.as_ref().ok().and_then(|o| {
                let op = GpuOp::parse(o).ok()?;
                try_estimate(&op, gpu).ok().map(|e| e.seconds)
            });
            let rel_err = match (modeled_s, c.median_s) {
                (Some(m), Some(t)) => Some(m / t - 1.0),
                _ => None,
            };
            Compared {
                case: c.clone(),
                op,
                modeled_s,
                rel_err,
                calibration,
            }
        })
        .collect()
}

/// Scores over the compared cases that count (measured, modelled, not calibration).
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    pub cases: usize,
    pub mape: f64,
    pub outliers: usize,
}

pub fn score<'a>(rows: impl Iterator<Item = &'a Compared>) -> Option<Score> {
    let errs: Vec<f64> = rows
        .filter(|r| !r.calibration)
        .filter_map(|r| r.rel_err)
        .collect();
    if errs.is_empty() {
        return None;
    }
    Some(Score {
        cases: errs.len(),
        mape: errs.iter().map(|e| e.abs()).sum::<f64>() / errs.len() as f64,
        outliers: errs.iter().filter(|e| e.abs() > OUTLIER).count(),
    })
}

/// The comparison as Markdown: the set, per-category scores, then every case.
pub fn render(set: &str, device: &Device, rows: &[Compared]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# cascade's GPU model against PyTorch on the {}: `{set}` set\n",
        device.name
    );
    let _ = writeln!(
        s,
        "Measured {} with PyTorch {}, driver {}. Protocol: {}.{}\n",
        device.date,
        device.torch,
        device.driver,
        device.protocol,
        if device.model_commit.is_empty() {
            String::new()
        } else {
            format!(
                " Measured once, after the model was frozen at commit `{}`; never tuned on.",
                device.model_commit
            )
        }
    );
    let _ = writeln!(
        s,
        "Generated by `cargo test --test gpu_torch -- --ignored regenerate` from `{set}.csv` \
         (measured by `scripts/gpu/measure_torch.py --set {set}`; protocol and device in \
         `{set}_device.json`, the kernels the libraries ran in `{set}_kernels.csv`). \
         Calibration cases (in no score): {}. An error is modelled / measured − 1; an outlier \
         is off by more than {:.0}%.\n",
        CALIBRATION.join(", "),
        OUTLIER * 100.0
    );
    let mut cats: BTreeMap<&str, Vec<&Compared>> = BTreeMap::new();
    for r in rows {
        cats.entry(r.case.category.as_str()).or_default().push(r);
    }
    let _ = writeln!(
        s,
        "| category | cases | modelled | MAPE | > {:.0}% |\n|---|---:|---:|---:|---:|",
        OUTLIER * 100.0
    );
    for (cat, rs) in &cats {
        let sc = score(rs.iter().copied());
        let _ = writeln!(
            s,
            "| {cat} | {} | {} | {} | {} |",
            rs.len(),
            rs.iter().filter(|r| r.modeled_s.is_some()).count(),
            sc.as_ref()
                .map_or("n/a".into(), |x| format!("{:.1}%", x.mape * 100.0)),
            sc.as_ref().map_or("n/a".into(), |x| x.outliers.to_string()),
        );
    }
    let all = score(rows.iter());
    let _ = writeln!(
        s,
        "| **all modelled** | {} | {} | {} | {} |\n",
        rows.len(),
        rows.iter().filter(|r| r.modeled_s.is_some()).count(),
        all.as_ref()
            .map_or("n/a".into(), |x| format!("**{:.1}%**", x.mape * 100.0)),
        all.as_ref()
            .map_or("n/a".into(), |x| x.outliers.to_string()),
    );
    let _ = writeln!(
        s,
        "| case | measured | graph (warm) | modelled | error | model op |\n|---|---:|---:|---:|---:|---|"
    );
    let us = |v: Option<f64>| v.map_or("".into(), |v| format!("{:.2} µs", v * 1e6));
    for r in rows {
        let err = match (r.rel_err, r.calibration) {
            (Some(e), false) => format!("{:+.1}%", e * 100.0),
            (Some(e), true) => format!("({:+.1}%, calibration)", e * 100.0),
            (None, _) => "n/a".into(),
        };
        let op = match &r.op {
            Ok(o) => format!("`{o}`"),
            Err(why) => why.clone(),
        };
        let measured = if r.case.median_s.is_some() {
            us(r.case.median_s)
        } else {
            r.case.status.clone()
        };
        let _ = writeln!(
            s,
            "| {} | {measured} | {} | {} | {err} | {op} |",
            r.case.case,
            us(r.case.graph_s),
            us(r.modeled_s)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names_are_the_models_impls_or_say_why_not() {
        // The script's `impl=` is cascade's: the spec is modelled as written (canonical form).
        assert_eq!(
            model_op("attention b=1 h=2 n=8 m=8 d=64 causal=1 dtype=bf16 impl=flash"),
            Ok("attention b=1 h=2 n=8 d=64 causal=1 impl=flash dtype=bf16".into())
        );
        assert_eq!(
            model_op("decode_attention b=1 hq=32 hkv=8 l=64 d=128 dtype=bf16 impl=cudnn"),
            Ok("decode_attention b=1 hq=32 hkv=8 l=64 d=128 dtype=bf16 impl=cudnn".into())
        );
        // No impl: PyTorch's default on sm90 (cuDNN).
        assert!(model_op("attention b=1 h=2 n=8 d=64")
            .unwrap()
            .contains("impl=cudnn"));
        let e = model_op("decode_attention b=1 hq=32 hkv=8 l=64 d=128 impl=efficient").unwrap_err();
        assert!(
            e.contains("efficient") && e.contains("expected one of"),
            "{e}"
        );
        assert!(model_op("rmsnorm rows=1 cols=8").is_ok());
        assert!(model_op("erf rows=1 cols=8").is_err());
    }

    #[test]
    fn parse_keeps_commas_in_the_status_and_refuses_bad_times() {
        let h = "case,category,spec,median_s,p10_s,p90_s,min_s,launches,graph_s,flops,min_bytes,status\n";
        let ok = format!("{h}a,gemm,gemm m=1 n=1 k=1,1e-5,1,1,1,40,2e-6,1,1,ok\nb,x,y,,,,,0,,,,\"error: a, b\"\n");
        let c = parse(&ok).unwrap();
        assert_eq!(c[0].median_s, Some(1e-5));
        assert_eq!(c[0].graph_s, Some(2e-6));
        assert_eq!(c[1].median_s, None);
        assert_eq!(c[1].status, "error: a, b");
        let bad = format!("{h}a,gemm,gemm m=1 n=1 k=1,-1,1,1,1,40,,1,1,ok\n");
        assert!(parse(&bad).unwrap_err().contains("not a positive time"));
        let nan = format!("{h}a,gemm,gemm m=1 n=1 k=1,NaN,1,1,1,40,,1,1,ok\n");
        assert!(parse(&nan).is_err());
    }

    #[test]
    fn calibration_cases_are_in_no_score() {
        let case = |name: &str, t: f64| TorchCase {
            case: name.into(),
            category: "c".into(),
            spec: String::new(),
            median_s: Some(t),
            graph_s: None,
            status: "ok".into(),
        };
        let row = |name: &str, err: f64| Compared {
            case: case(name, 1.0),
            op: Ok(String::new()),
            modeled_s: Some(1.0 + err),
            rel_err: Some(err),
            calibration: CALIBRATION.contains(&name),
        };
        let rows = [
            row("gemm_8192x8192x8192", 0.9),
            row("x", 0.1),
            row("y", -0.3),
        ];
        let s = score(rows.iter()).unwrap();
        assert_eq!(s.cases, 2);
        assert!((s.mape - 0.2).abs() < 1e-12);
        assert_eq!(s.outliers, 1);
    }
}
