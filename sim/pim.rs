//! Logic-PIM (Duplex, Yun et al., MICRO'24, arXiv 2409.01141): processing units on the logic
//! die of each HBM stack (issue 14, begun). This part: the stacks' internal bandwidth, from the
//! DRAM model run on the Logic-PIM path's description (`arch/memory/hbm3_logic_pim.toml`: the
//! H100's HBM3 with 4× the TSVs per pseudo-channel and 512 bits per bank read per tCCD_L), so
//! that it follows the DRAM timing rather than being written in.
//!
//! Not yet here (issue 14): the Logic-PIM compute units and their energy, the xPU/PIM placement
//! of ops and their concurrency, the Bank-PIM and BankGroup-PIM variants, the serving
//! reproduction and the cross-check against Duplex's simulator.

use crate::dram::{run_workload, DramError, DramSpec, Pattern, SimOptions, Workload};

/// The Logic-PIM path's memory preset.
pub const LOGIC_PIM_MEMORY: &str = "hbm3_logic_pim";

/// Bytes streamed to measure a path's bandwidth: long enough for refresh to take its share
/// (several tREFI at every pseudo-channel) and for the start to fade.
pub const STREAM_BYTES: u64 = 64 << 20;

/// Read bandwidth (bytes/s) the DRAM model sustains on `spec` for a sequential stream of
/// [`STREAM_BYTES`] in requests of the spec's access size: a path's usable bandwidth.
pub fn stream_bandwidth(spec: &DramSpec) -> Result<f64, DramError> {
    let w = Workload::new(Pattern::Streaming {
        bytes: STREAM_BYTES,
    })
    .request_bytes(spec.access_bytes());
    Ok(run_workload(spec, &w, &SimOptions::default())?
        .report
        .bandwidth_gb_s
        * 1e9)
}

/// The Logic-PIM path's internal bandwidth (bytes/s) and the xPU path's (the same stacks read
/// over the interposer by the xPU: `hbm3_h100`), both from the DRAM model.
pub fn internal_bandwidth() -> Result<(f64, f64), DramError> {
    let pim = DramSpec::preset(LOGIC_PIM_MEMORY)?;
    let xpu = DramSpec::preset("hbm3_h100")?;
    Ok((stream_bandwidth(&pim)?, stream_bandwidth(&xpu)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Duplex §IV-B: 4× the TSVs and 8 banks read at once give the logic die 4× the HBM3
    /// bandwidth the xPU sees. The DRAM model, given only the path's organisation and timing,
    /// sustains that ratio to within activations and refresh, and the same share of its pin
    /// rate as the xPU's path (Duplex's simulator: `logic_x = 4`, 13.4 TB/s on 3.35).
    #[test]
    fn the_internal_bandwidth_comes_out_of_the_dram_model() {
        let (pim, xpu) = internal_bandwidth().unwrap();
        let pim_peak = DramSpec::preset(LOGIC_PIM_MEMORY).unwrap().peak_bandwidth();
        let xpu_peak = DramSpec::preset("hbm3_h100").unwrap().peak_bandwidth();
        assert!(
            (pim_peak / xpu_peak - 4.0).abs() < 1e-9,
            "{pim_peak} {xpu_peak}"
        );
        let ratio = pim / xpu;
        assert!((3.8..=4.1).contains(&ratio), "{pim} / {xpu} = {ratio}");
        // Refresh, activations and row conflicts cost a few percent, not more.
        assert!(
            pim / pim_peak > 0.93 && pim / pim_peak < 1.0,
            "{pim} of {pim_peak}"
        );
        // With the standard controller's 32 reads in flight per pseudo-channel the same path
        // would be latency-bound (Little's law): the preset's 128 are what the rate needs.
        let mut shallow = DramSpec::preset(LOGIC_PIM_MEMORY).unwrap();
        shallow.controller.read_queue = 32;
        let s = stream_bandwidth(&shallow).unwrap();
        assert!(s < 0.6 * pim, "{s} vs {pim}");
    }
}
