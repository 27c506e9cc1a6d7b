//! Memory tiers: where a run keeps its weights and its KV cache — the device's own memory, the
//! host's DRAM over a link (PCIe), or an SSD behind the host — and what that placement costs.
//! Offloading systems are placements with a policy, not new code paths: FlexGen keeps weights
//! (and KV) on the host or disk and streams each layer's share to the GPU while the previous
//! layer computes; a three-tier design (SN40L: SRAM, HBM, DDR) is the same with its own links.
//!
//! The policy modelled is FlexGen's overlap: a layer's weights (and, for an offloaded cache, the
//! keys and values attention reads) come over the tier's path while the previous layer runs, so
//! a layer takes the longer of its compute and its transfer; the LM head's and embedding's
//! weights come before the step's end. The device holds two layers' worth of what is offloaded
//! (the one in use and the one arriving). An SSD's read rate comes from the flash model
//! ([`crate::flash`]) running the drive on sequential 128 KiB reads at queue depth 32; data goes
//! SSD → host → device, so the slower of the drive and the host link sets the rate.

use cascade_arch::Link;
use serde::Serialize;

/// Where a tensor class lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Device,
    Host,
    Ssd,
}

impl Tier {
    pub fn parse(s: &str, what: &str) -> Result<Tier, String> {
        match s {
            "device" | "hbm" => Ok(Tier::Device),
            "host" | "dram" => Ok(Tier::Host),
            "ssd" | "disk" => Ok(Tier::Ssd),
            _ => Err(format!("--{what}-on {s}: expected device, host or ssd")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tier::Device => "device",
            Tier::Host => "host",
            Tier::Ssd => "ssd",
        }
    }
}

/// An SSD tier: the drive, its capacity, and its sequential read rate from the flash model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SsdTier {
    pub drive: String,
    pub capacity: f64,
    pub read_bytes_per_s: f64,
}

/// The placement and the paths to the tiers off the device.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tiers {
    pub weights: Tier,
    pub kv: Tier,
    /// Device ↔ host.
    pub host_link: Link,
    /// Host DRAM the run may use (bytes); required when anything is placed on the host.
    pub host_capacity: Option<f64>,
    pub ssd: Option<SsdTier>,
}

impl Tiers {
    /// Everything on the device.
    pub fn device_only(host_link: Link) -> Tiers {
        Tiers {
            weights: Tier::Device,
            kv: Tier::Device,
            host_link,
            host_capacity: None,
            ssd: None,
        }
    }

    pub fn offloads(&self) -> bool {
        self.weights != Tier::Device || self.kv != Tier::Device
    }

    /// Bytes per second into the device from `tier`, and the fixed cost of one transfer.
    pub fn path(&self, tier: Tier) -> (f64, f64) {
        let host = self.host_link.bandwidth.bytes_per_s();
        let lat = self.host_link.latency.seconds();
        match tier {
            Tier::Device => (f64::INFINITY, 0.0),
            Tier::Host => (host, lat),
            Tier::Ssd => (
                self.ssd
                    .as_ref()
                    .map_or(host, |s| s.read_bytes_per_s.min(host)),
                lat,
            ),
        }
    }

    /// `Err` when the placement lacks what it needs (a host capacity, an SSD for the weights)
    /// or puts the KV cache on an SSD (not modelled: it is written every step).
    pub fn check(&self) -> Result<(), String> {
        if self.kv == Tier::Ssd {
            return Err("--kv-on ssd: a KV cache on an SSD is not modelled (it is written every step); place it on the device or the host".into());
        }
        if (self.weights == Tier::Host || self.kv == Tier::Host) && self.host_capacity.is_none() {
            return Err("placing weights or the KV cache on the host needs --host-memory (the host DRAM the run may use, e.g. \"512 GiB\")".into());
        }
        if self.weights == Tier::Ssd && self.ssd.is_none() {
            return Err("--weights-on ssd needs a drive (--ssd)".into());
        }
        Ok(())
    }
}

/// The sequential read rate of `spec` (bytes per second) from the flash model: 128 KiB reads at
/// queue depth 32, 4,096 of them.
pub fn ssd_read_rate(spec: &crate::flash::FlashSpec) -> Result<f64, String> {
    let w = crate::flash::Workload {
        pattern: crate::flash::Pattern::Sequential,
        read_fraction: 1.0,
        request_bytes: 128 * 1024,
        queue_depth: 32,
        requests: 4096,
        span_bytes: 0,
        seed: 0,
    };
    let r = crate::flash::run(spec, &w).map_err(|e| format!("flash model: {e}"))?;
    Ok(r.bandwidth_mb_s * 1e6)
}
