//! `cascade crosscheck` (feature `cuda`): measures the suite of `cascade-cuda` on the GPU found
//! and compares the measurements with the model ([`crate::gpu::recorded`]).
//!
//! `cascade-cuda` only measures and knows nothing of the model; this file joins the two: it picks
//! the preset from the driver's device name, writes the measurements, and hands their CSV to the
//! same comparison that `tests/gpu_recorded.rs` runs on the recorded H100 measurements.

use std::path::Path;

use cascade_cuda::{
    csv_string, run_suite_with, summary_table, write_csv, write_markdown, CudaError, SuiteOptions,
};

/// Runs the suite with default options, writes the measurements to
/// `<gpu>_measured.csv` and `<gpu>_measured.md` in `out_dir` (the CSV is
/// rewritten after every case, so a partial run still leaves data), then
/// compares them with the model ([`crate::gpu::recorded`], using the ceilings
/// and launch gap measured in this run) and writes `<gpu>.csv` (the measured
/// columns and `graph_s`, `modeled_s`, `rel_err_model`, `mapping`), `<gpu>.md`
/// (per-category errors) and `<gpu>_measured_vs_modeled.{png,svg}`, where `<gpu>`
/// is the preset of the device found (`h100`, `h200`). Progress goes to stderr.
/// Environment overrides: `CASCADE_CUDA_FILTER=substring`,
/// `CASCADE_CUDA_QUICK=1`, `CASCADE_CUDA_DIAG=1` (add the diagnostic cases).
pub fn main_crosscheck(out_dir: &Path, arch: Option<&str>) -> Result<(), CudaError> {
    // The GPU found picks the preset; a preset named on the command line must match it.
    let device = cascade_cuda::device_name(0)?;
    let gpu_name = crate::gpu::preset_for_device(&device).map_err(CudaError::Invalid)?;
    if let Some(a) = arch {
        crate::gpu::check_device(a, &device).map_err(CudaError::Invalid)?;
    }
    eprintln!("crosscheck: {device} → preset {gpu_name}");
    std::fs::create_dir_all(out_dir).map_err(|e| CudaError::Io {
        path: out_dir.to_path_buf(),
        source: e,
    })?;
    let mut opts = SuiteOptions::default();
    if let Ok(f) = std::env::var("CASCADE_CUDA_FILTER") {
        if !f.is_empty() {
            opts.filter = Some(f);
        }
    }
    opts.quick = std::env::var("CASCADE_CUDA_QUICK")
        .map(|v| v == "1")
        .unwrap_or(false);
    opts.diagnostics = std::env::var("CASCADE_CUDA_DIAG")
        .map(|v| v == "1")
        .unwrap_or(false);
    let csv = out_dir.join(format!("{gpu_name}_measured.csv"));
    let md = out_dir.join(format!("{gpu_name}_measured.md"));
    let mut write_err = None;
    let res = run_suite_with(&opts, &mut |partial, _| {
        if let Err(e) = write_csv(partial, &csv) {
            write_err = Some(e);
        }
    })?;
    write_csv(&res, &csv)?;
    write_markdown(&res, &md)?;
    if let Some(e) = write_err {
        eprintln!("warning: a partial CSV write failed: {e}");
    }
    eprintln!("{}", summary_table(&res));
    eprintln!("wrote {} and {}", csv.display(), md.display());
    // Measured vs modeled, with this run's own ceilings and launch gap.
    let model_err = |e: crate::gpu::recorded::RecordedError| CudaError::Invalid(e.to_string());
    let cases = crate::gpu::recorded::parse_recorded(
        &csv_string(&res),
        &format!("{gpu_name}_measured.csv"),
    )
    .map_err(model_err)?;
    let spec = cascade_arch::preset(gpu_name)
        .ok()
        .and_then(|a| a.gpu)
        .ok_or_else(|| CudaError::Invalid(format!("the {gpu_name} preset has no [gpu] section")))?;
    let cmp = crate::gpu::recorded::compare(&cases, &spec);
    crate::gpu::recorded::write_reports_named(&cmp, out_dir, gpu_name).map_err(model_err)?;
    eprintln!("{}", cmp.table_markdown());
    eprintln!(
        "wrote {}, {} and {gpu_name}_measured_vs_modeled.png/.svg",
        out_dir.join(format!("{gpu_name}.csv")).display(),
        out_dir.join(format!("{gpu_name}.md")).display()
    );
    Ok(())
}
