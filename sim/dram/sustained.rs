//! Sustained rates of a DRAM preset for the streams a GPU's L2 sends it: what the GPU models
//! (`crate::gpu`) take as their achievable HBM bandwidth instead of a fitted fraction of the
//! pin rate.
//!
//! A GPU kernel that streams through memory reaches DRAM as the distinct 64-byte blocks its
//! L2 misses touch (two 32-byte accesses each on HBM's pseudo-channels) and the dirty blocks L2
//! writes back. Three streams span every mix: sequential reads, sequential writes, and a copy
//! (each block read from one buffer and written to another [`COPY_OFFSET`] away, reads and
//! writes alternating). [`SustainedRates::at`] interpolates between them by the share of
//! bytes read. Each stream runs [`STREAM_BYTES`] through [`super::simulate`]: long enough for
//! the start (closed banks, empty queues) to fade and several refresh periods to pass — 16 MiB
//! gave reads 3.7% less and copies up to 5% less or more than 64 or 256 MiB on `hbm3e_h200`,
//! while 64 and 128 MiB agree within 1%.

use super::{simulate, Access, DramSpec, SimOptions};

/// Bytes each stream moves (reads plus writes).
pub const STREAM_BYTES: u64 = 64 << 20;
/// The distance between a copy's source and destination (in different rows of every bank).
pub const COPY_OFFSET: u64 = 8 << 30;

/// The accesses of a sequential stream of `bytes` in 64-byte blocks, each two 32-byte
/// accesses (`block` apart from the next block's: 64 for a dense stream).
pub fn sequential(bytes: u64, block_stride: u64, write: bool) -> impl Iterator<Item = Access> {
    let step = block_stride.max(64);
    (0..bytes / 64).flat_map(move |i| {
        let base = i * step;
        [base, base + 32].map(|addr| Access { addr, write })
    })
}

/// The accesses of a copy moving `bytes` in all (half read, half written): 64-byte blocks
/// read from one buffer and written to another [`COPY_OFFSET`] away, block by block.
pub fn copy(bytes: u64) -> impl Iterator<Item = Access> {
    (0..bytes / 128).flat_map(|i| {
        let (src, dst) = (i * 64, COPY_OFFSET + i * 64);
        [
            (src, false),
            (src + 32, false),
            (dst, true),
            (dst + 32, true),
        ]
        .map(|(addr, write)| Access { addr, write })
    })
}

/// [`SustainedRates::measure`] on the GPUs' presets, recorded because each takes the model
/// 15-20 s (the 1024-entry write queues it scans every cycle) and every GPU estimate needs
/// them. `tests::recorded_rates_are_the_models` recomputes them bit for bit; it is ignored by
/// `cargo test` (to keep the suite within its time) and run by `.ci/run` (`cargo test --release
/// --lib recorded_rates_are_the_models -- --ignored --nocapture`, which prints new values after a
/// change to a preset or to the model).
pub const RECORDED: &[(&str, SustainedRates)] = &[
    (
        "hbm3e_h200",
        SustainedRates {
            read: 4574140638632.001,
            copy: 4457473218840.333,
            write: 4793490285714.286,
        },
    ),
    (
        "hbm3_h100",
        SustainedRates {
            read: 3227707328034.5005,
            copy: 3057390435960.003,
            write: 3347388713278.1104,
        },
    ),
];

/// Bandwidth (bytes/s, reads plus writes) the DRAM model sustains on the three streams.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SustainedRates {
    /// Sequential reads.
    pub read: f64,
    /// A copy: half reads, half writes.
    pub copy: f64,
    /// Sequential writes.
    pub write: f64,
}

impl SustainedRates {
    /// Runs the three streams through `spec`.
    pub fn measure(spec: &DramSpec) -> Result<SustainedRates, super::DramError> {
        fn run(spec: &DramSpec, a: impl Iterator<Item = Access>) -> Result<f64, super::DramError> {
            Ok(simulate(spec, a, &SimOptions::default())?
                .report
                .bandwidth_gb_s
                * 1e9)
        }
        Ok(SustainedRates {
            read: run(spec, sequential(STREAM_BYTES, 64, false))?,
            copy: run(spec, copy(STREAM_BYTES))?,
            write: run(spec, sequential(STREAM_BYTES, 64, true))?,
        })
    }

    /// The rates of a named preset (`arch/memory/<name>.toml`): [`RECORDED`]'s when it has
    /// them, otherwise computed (once per process).
    pub fn of_preset(name: &str) -> Result<SustainedRates, String> {
        if let Some((_, r)) = RECORDED.iter().find(|(n, _)| *n == name) {
            return Ok(*r);
        }
        use std::collections::BTreeMap;
        use std::sync::{Mutex, OnceLock};
        static CACHE: OnceLock<Mutex<BTreeMap<String, SustainedRates>>> = OnceLock::new();
        let cache = CACHE.get_or_init(|| Mutex::new(BTreeMap::new()));
        if let Some(r) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Ok(*r);
        }
        let spec = DramSpec::preset(name).map_err(|e| e.to_string())?;
        let r =
            SustainedRates::measure(&spec).map_err(|e| format!("memory preset `{name}`: {e}"))?;
        if ![r.read, r.copy, r.write]
            .iter()
            .all(|x| x.is_finite() && *x > 0.0)
        {
            return Err(format!(
                "memory preset `{name}`: the DRAM model sustains no positive rate ({r:?})"
            ));
        }
        cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), r);
        Ok(r)
    }

    /// The rate of a stream whose bytes are `read_share` reads (0 ..= 1, clamped), linear
    /// between writes only (0), the copy (½) and reads only (1).
    pub fn at(&self, read_share: f64) -> f64 {
        let r = if read_share.is_finite() {
            read_share.clamp(0.0, 1.0)
        } else {
            0.5
        };
        if r <= 0.5 {
            self.write + (self.copy - self.write) * (r / 0.5)
        } else {
            self.copy + (self.read - self.copy) * ((r - 0.5) / 0.5)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_move_the_bytes_asked_for() {
        let n = |it: &mut dyn Iterator<Item = Access>| it.count() as u64 * 32;
        assert_eq!(n(&mut sequential(1 << 20, 64, false)), 1 << 20);
        assert_eq!(n(&mut copy(1 << 20)), 1 << 20);
        let w = copy(1 << 20).filter(|a| a.write).count();
        assert_eq!(w as u64 * 32, 1 << 19);
    }

    #[test]
    #[ignore = "35 s: run by .ci/run"]
    fn recorded_rates_are_the_models() {
        for (name, recorded) in RECORDED {
            let spec = DramSpec::preset(name).unwrap();
            let r = SustainedRates::measure(&spec).unwrap();
            eprintln!("{name}: {r:?}");
            assert_eq!(r, *recorded, "{name}: recompute RECORDED");
        }
    }

    #[test]
    fn interpolation_meets_the_three_streams() {
        let r = SustainedRates {
            read: 3.0,
            copy: 2.0,
            write: 1.0,
        };
        assert_eq!(r.at(1.0), 3.0);
        assert_eq!(r.at(0.5), 2.0);
        assert_eq!(r.at(0.0), 1.0);
        assert_eq!(r.at(0.75), 2.5);
        assert_eq!(r.at(2.0), 3.0);
        assert_eq!(r.at(f64::NAN), 2.0);
    }
}
