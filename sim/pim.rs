//! Processing in memory beside an xPU (Duplex, Yun et al., MICRO'24, arXiv 2409.01141): the
//! PIM units' memory path and the architecture the mapper maps their work onto.
//!
//! - A **path** ([`PimPath`]) is the DRAM that PIM units read: a memory preset describing what
//!   the units see (`arch/memory/hbm3_logic_pim.toml`: the H100's HBM3 with 4× the TSVs and
//!   512-bit bank reads; `hbm3_bankgroup_pim`, `hbm3_bank_pim`). Its bandwidth and energy per
//!   bit are what the cycle-level DRAM model sustains on a stream ([`path`]), not constants.
//! - The **units** ([`units`]) are an architecture like any other (`arch/presets/logic_pim.toml`:
//!   per stack a 1 MB buffer and 32 GEMM modules × 512 MACs at 650 MHz), whose root level is the
//!   path, run at the path's sustained rate and energy. Work bound to them is mapped by the
//!   spatial mapper ([`crate::infer::duplex`]).

use crate::dram::{run_workload, DramError, DramSpec, Pattern, SimOptions, Workload};
use cascade_arch::{Architecture, Bandwidth, Energy};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The Logic-PIM path's memory preset.
pub const LOGIC_PIM_MEMORY: &str = "hbm3_logic_pim";

/// Bytes streamed to measure a path's bandwidth: long enough for refresh to take its share
/// (several tREFI at every pseudo-channel) and for the start to fade.
pub const STREAM_BYTES: u64 = 64 << 20;

/// Channels simulated to measure a path with more of them: channels are independent under a
/// stream (the address hash spreads it evenly), so a slice of them at the same bytes runs each
/// channel longer — several refresh intervals — and the path's rate is the slice's times
/// channels / slice.
pub const SLICE_CHANNELS: u32 = 160;

/// Read bandwidth (bytes/s) and energy per bit (pJ) the DRAM model sustains on `spec` for a
/// sequential stream of [`STREAM_BYTES`] in requests of the spec's access size: a path's usable
/// bandwidth and what reading costs (activations, refresh and I/O counted by the model).
pub fn stream(spec: &DramSpec) -> Result<(f64, f64), DramError> {
    let channels = spec.organization.channels;
    let mut slice = spec.clone();
    slice.organization.channels = channels.min(SLICE_CHANNELS);
    let w = Workload::new(Pattern::Streaming {
        bytes: STREAM_BYTES,
    })
    .request_bytes(slice.access_bytes());
    let r = run_workload(&slice, &w, &SimOptions::default())?.report;
    let scale = f64::from(channels) / f64::from(slice.organization.channels);
    Ok((r.bandwidth_gb_s * 1e9 * scale, r.energy.pj_per_bit))
}

/// Read bandwidth (bytes/s) the DRAM model sustains on `spec` ([`stream`]).
pub fn stream_bandwidth(spec: &DramSpec) -> Result<f64, DramError> {
    Ok(stream(spec)?.0)
}

/// A PIM path: the memory preset the units read, and what the DRAM model sustains on it.
#[derive(Clone, Debug, PartialEq)]
pub struct PimPath {
    pub memory: String,
    /// Sustained read bandwidth of a stream, bytes/s, and the preset's peak.
    pub bandwidth: f64,
    pub peak: f64,
    /// Energy of reading, pJ per bit (the paper's per-command energies, the model's counts).
    pub pj_per_bit: f64,
}

/// The path of memory preset `memory`, measured once per process (a DRAM run of a second or two).
pub fn path(memory: &str) -> Result<PimPath, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, PimPath>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(p) = cache.lock().map_err(|e| e.to_string())?.get(memory) {
        return Ok(p.clone());
    }
    let spec = DramSpec::preset(memory).map_err(|e| format!("PIM path `{memory}`: {e}"))?;
    let (bandwidth, pj_per_bit) = stream(&spec).map_err(|e| format!("PIM path `{memory}`: {e}"))?;
    let p = PimPath {
        memory: memory.to_string(),
        bandwidth,
        peak: spec.peak_bandwidth(),
        pj_per_bit,
    };
    cache
        .lock()
        .map_err(|e| e.to_string())?
        .insert(memory.to_string(), p.clone());
    Ok(p)
}

/// The PIM units of preset `name` (`logic_pim`, `bankgroup_pim`, `bank_pim`), their root level
/// run at its path's sustained bandwidth and energy per access ([`path`]); with `peak`, at the
/// preset's peak bandwidth instead (the assumption of Duplex's simulator: `logic_x` × the
/// xPU's pin rate). Returns the units and their path.
pub fn units(name: &str, peak: bool) -> Result<(Architecture, PimPath), String> {
    let mut a = cascade_arch::preset(name).map_err(|e| e.to_string())?;
    let root = a
        .levels
        .first_mut()
        .ok_or_else(|| format!("PIM units `{name}` have no levels"))?;
    let memory = root.memory.clone().ok_or_else(|| {
        format!("PIM units `{name}`: the root level names no memory preset (the path they read)")
    })?;
    let p = path(&memory)?;
    let bw = if peak { p.peak } else { p.bandwidth };
    root.bandwidth = Some(Bandwidth::new(bw).map_err(|e| e.to_string())?);
    let access_bits = f64::from(root.width_bits);
    let e = Energy::new(p.pj_per_bit * access_bits * 1e-12).map_err(|e| e.to_string())?;
    root.energy.read = e;
    root.energy.write = e;
    Ok((a, p))
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
