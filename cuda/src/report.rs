//! CSV and Markdown reports of a [`SuiteResult`].

use std::fmt::Write as _;
use std::path::Path;

use crate::{CudaError, Measurement, SuiteResult, CATEGORIES};

/// CSV header, in this exact order.
/// The last column, `graph_s`, is the graph-replay time per launch (empty where not measured).
pub const CSV_HEADER: &str =
    "case,category,op,impl,median_s,min_s,max_s,launches,rel_err,ok,device,driver,cuda,date,graph_s";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn num(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else {
        format!("{x:.6e}")
    }
}

/// The CSV text (header + one row per measurement).
pub fn csv_string(r: &SuiteResult) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for m in &r.measurements {
        let row = [
            csv_field(&m.case),
            csv_field(&m.category),
            csv_field(&m.op),
            csv_field(&m.impl_name),
            num(m.median_s),
            num(m.min_s),
            num(m.max_s),
            m.launches.to_string(),
            if m.rel_err.is_nan() {
                "NaN".into()
            } else {
                format!("{:.3e}", m.rel_err)
            },
            m.ok.to_string(),
            csv_field(&r.device),
            csv_field(&r.driver),
            csv_field(&r.cuda),
            csv_field(&r.date),
            if m.graph_median_s.is_finite() {
                format!("{:.6e}", m.graph_median_s)
            } else {
                String::new()
            },
        ];
        s.push_str(&row.join(","));
        s.push('\n');
    }
    s
}

/// Writes the CSV (columns: case,category,op,impl,median_s,min_s,max_s,
/// launches,rel_err,ok,device,driver,cuda,date,graph_s).
pub fn write_csv(r: &SuiteResult, path: &Path) -> Result<(), CudaError> {
    write_file(path, &csv_string(r))
}

fn write_file(path: &Path, text: &str) -> Result<(), CudaError> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| CudaError::Io {
                path: dir.to_path_buf(),
                source: e,
            })?;
        }
    }
    std::fs::write(path, text).map_err(|e| CudaError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

fn us(x: f64) -> String {
    if x.is_nan() {
        "—".into()
    } else {
        format!("{:.1}", x * 1e6)
    }
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "not measured".into())
}

/// The Markdown report text.
pub fn markdown_string(r: &SuiteResult) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# GPU cross-check measurements — {}\n", r.device);
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(
        s,
        "| device | {} (sm_{}{}, {} SMs, L2 {} MiB, {:.1} GiB) |",
        r.device,
        r.compute_capability.0,
        r.compute_capability.1,
        r.sm_count,
        r.l2_bytes / (1 << 20),
        r.total_mem_bytes as f64 / (1u64 << 30) as f64
    );
    let _ = writeln!(s, "| driver | {} |", r.driver);
    let _ = writeln!(s, "| CUDA (driver API) | {} |", r.cuda);
    let _ = writeln!(s, "| NVRTC | {} |", r.nvrtc);
    let _ = writeln!(s, "| cuBLAS | {} |", r.cublas);
    let _ = writeln!(s, "| run started (UTC) | {} |", r.started_utc);
    let _ = writeln!(s, "| suite wall time | {:.1} s |", r.wall_seconds);
    let _ = writeln!(s, "\n## Measured ceilings (same run)\n");
    let _ = writeln!(
        s,
        "- bf16 cuBLAS GEMM 8192×8192×8192 (fp32 accumulate): **{} TFLOP/s**",
        opt(r.gemm_ceiling_tflops, 1)
    );
    let _ = writeln!(
        s,
        "- device-to-device copy of 1 GiB (read + write bytes): **{} GB/s**\n",
        opt(r.copy_ceiling_gbps, 0)
    );
    let ok = r.measurements.iter().filter(|m| m.ok).count();
    let _ = writeln!(
        s,
        "{} of {} cases passed their correctness check.\n",
        ok,
        r.measurements.len()
    );
    let _ = writeln!(s, "## Method\n");
    let _ = writeln!(s, "- Inputs: fresh uniform random bf16 generated on the device for every case (never zeros); \
        attention Q in [-2, 2), everything else in [-1, 1).");
    let _ = writeln!(s, "- Correctness: the output is poisoned with NaN, one launch is run, the whole output is scanned \
        for non-finite values (unwritten elements), and a sampled subset is compared with a float64 CPU reference \
        (`cascade_cuda::reference`): GEMM up to {} random rows of C (all rows if M is smaller; batched: rows of the \
        first and last expert), attention a few random (b,h) heads × random query rows (first and last row always \
        included), decode all query heads of the first and last sequence, copies three 64 KiB windows. \
        rel_err = ‖out−ref‖₂/‖ref‖₂; tolerance 2e-2 for bf16 operands, exact for copies. The notes of each case \
        say exactly what was checked.", 64);
    let _ = writeln!(s, "- Timing: warm-up, then ≥ 20 back-to-back launches (≈ 50 ms of GPU time, at most 200) with a \
        CUDA event between consecutive launches; median/min/max per launch. Short kernels therefore include the \
        launch gap when the CPU cannot enqueue faster than the GPU runs. Inputs smaller than 4× L2 are rotated among \
        several copies (`sets=` in the notes) so repeated launches do not run out of L2.");
    let _ = writeln!(s, "- graph µs (the time the model is compared with): every case's launches are also captured in one \
        CUDA graph (256 launches for cases under 100 µs back to back, covering all their rotated input sets; 8 for \
        longer ones) and the graph is replayed 10 times; the column gives the median replay time per launch, i.e. \
        the device time per launch without the host's launch calls (the difference to the median is the stream's \
        launch cost; for very short kernels the host's calls set the back-to-back pace).");
    let _ = writeln!(s, "- TFLOP/s counts 2 flops per multiply-add of the op (causal attention: only unmasked pairs); \
        GB/s counts the op's minimum bytes (inputs read once, outputs written once; unfused attention excludes its \
        S/P intermediates).\n");
    for cat in CATEGORIES.iter().copied().chain([crate::suite::DIAGNOSTIC]) {
        let ms: Vec<&Measurement> = r
            .measurements
            .iter()
            .filter(|m| m.category == cat)
            .collect();
        if ms.is_empty() {
            continue;
        }
        let _ = writeln!(s, "## {cat}\n");
        let _ = writeln!(s, "| case | op | impl | median µs | min µs | max µs | n | graph µs | TFLOP/s | GB/s | rel_err | ok | notes |");
        let _ = writeln!(
            s,
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
        );
        for m in ms {
            let tf = if m.flops > 0.0 && m.median_s.is_finite() {
                format!("{:.1}", m.tflops())
            } else {
                "—".into()
            };
            let gb = if m.bytes > 0.0 && m.median_s.is_finite() {
                format!("{:.0}", m.gbps())
            } else {
                "—".into()
            };
            let _ = writeln!(
                s,
                "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {:.2e} | {} | {} |",
                m.case,
                m.op,
                m.impl_name,
                us(m.median_s),
                us(m.min_s),
                us(m.max_s),
                m.launches,
                if m.graph_median_s.is_finite() {
                    format!("{:.2}", m.graph_median_s * 1e6)
                } else {
                    "—".into()
                },
                tf,
                gb,
                m.rel_err,
                if m.ok { "yes" } else { "**NO**" },
                m.notes.replace('|', "/")
            );
        }
        let _ = writeln!(s);
    }
    if !r.notes.is_empty() {
        let _ = writeln!(s, "## Notes\n");
        for n in &r.notes {
            let _ = writeln!(s, "- {}", n.replace('\n', " "));
        }
    }
    s
}

/// Writes the Markdown report.
pub fn write_markdown(r: &SuiteResult, path: &Path) -> Result<(), CudaError> {
    write_file(path, &markdown_string(r))
}

/// A compact fixed-width table for the terminal.
pub fn summary_table(r: &SuiteResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} | driver {} | CUDA {} | {}",
        r.device, r.driver, r.cuda, r.date
    );
    let _ = writeln!(
        s,
        "ceilings: GEMM {} TFLOP/s, copy {} GB/s",
        opt(r.gemm_ceiling_tflops, 1),
        opt(r.copy_ceiling_gbps, 0)
    );
    let _ = writeln!(
        s,
        "{:<44} {:>10} {:>9} {:>8} {:>7} {:>9} {:>3}",
        "case", "median_us", "graph_us", "TFLOP/s", "GB/s", "rel_err", "ok"
    );
    for m in &r.measurements {
        let tf = if m.flops > 0.0 {
            format!("{:.1}", m.tflops())
        } else {
            "-".into()
        };
        let gb = if m.bytes > 0.0 {
            format!("{:.0}", m.gbps())
        } else {
            "-".into()
        };
        let _ = writeln!(
            s,
            "{:<44} {:>10} {:>9} {:>8} {:>7} {:>9.2e} {:>3}",
            m.case,
            us(m.median_s),
            if m.graph_median_s.is_finite() {
                format!("{:.2}", m.graph_median_s * 1e6)
            } else {
                "-".into()
            },
            tf,
            gb,
            m.rel_err,
            if m.ok { "ok" } else { "NO" }
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SuiteResult {
        SuiteResult {
            device: "NVIDIA H100 80GB HBM3".into(),
            driver: "580.159.04".into(),
            cuda: "13.0".into(),
            date: "2026-11-27".into(),
            measurements: vec![Measurement {
                case: "cublas_gemm_m4096_n4096_k4096".into(),
                category: "gemm_large".into(),
                op: "gemm m=4096 n=4096 k=4096 dtype=bf16".into(),
                impl_name: "cublas".into(),
                median_s: 2e-4,
                min_s: 1.9e-4,
                max_s: 2.2e-4,
                launches: 50,
                graph_median_s: f64::NAN,
                rel_err: 1.5e-3,
                ok: true,
                flops: 2.0 * 4096f64.powi(3),
                bytes: 3.0 * 2.0 * 4096.0 * 4096.0,
                notes: "ref 64 rows".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn csv_has_exact_header_and_row() {
        let text = csv_string(&sample());
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), CSV_HEADER);
        let row: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(row.len(), 15);
        assert_eq!(row[14], "");
        assert_eq!(row[2], "gemm m=4096 n=4096 k=4096 dtype=bf16");
        assert_eq!(row[9], "true");
        assert_eq!(row[13], "2026-11-27");
    }

    #[test]
    fn markdown_mentions_case() {
        let md = markdown_string(&sample());
        assert!(md.contains("cublas_gemm_m4096_n4096_k4096"));
        assert!(md.contains("## gemm_large"));
    }
}
