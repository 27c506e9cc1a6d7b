//! The description of a NAND-flash SSD: host interface, geometry, flash timing, the
//! controller's DRAM and the FTL. Read from TOML (`sim/flash/presets/*.toml`); every field is
//! read by the simulation ([`super::Ssd`]) or refused (`deny_unknown_fields`).

use serde::{Deserialize, Serialize};

/// A NAND-flash SSD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlashSpec {
    /// Preset name.
    pub name: String,
    /// Where the figures come from.
    pub source: String,
    pub host: HostSpec,
    pub geometry: Geometry,
    pub timing: FlashTiming,
    pub controller: Controller,
    /// The drive's state when the run starts (absent: the logical space written once in
    /// order, nothing overwritten).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precondition: Option<Precondition>,
}

/// How the drive was written before the run: the whole logical space once in order, then
/// `random_overwrites` × the logical space in single pages at uniformly drawn logical pages
/// (seeded), garbage collection running as it must. Steady state after random writes is
/// reached after about two overwrites of the logical space; the run starts there, its
/// counters at zero and no operation in flight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Precondition {
    /// Random single-page writes after the in-order fill, in multiples of the logical space
    /// (0: none).
    pub random_overwrites: f64,
    /// Seed of the overwrites' logical pages.
    pub seed: u64,
}

/// The host interface: NVMe over PCIe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// PCIe generation (1–6): 2.5, 5, 8, 16, 32, 64 GT/s per lane.
    pub pcie_gen: u32,
    /// Lanes (1, 2, 4, 8, 16).
    pub lanes: u32,
    /// Fraction of the link's data rate (after line encoding) that carries payload: TLP
    /// headers, flow control and DLLP traffic take the rest (~0.85–0.93 for 256-byte payloads).
    pub payload_efficiency: f64,
    /// Entries of the NVMe I/O submission queue: the most commands outstanding at once; a
    /// workload asking for a deeper queue is refused.
    pub queue_entries: u32,
    /// Controller time per command before its flash work starts (fetching the submission
    /// entry, the FTL's work), microseconds.
    pub command_us: f64,
}

/// Channels, chips and the array inside a die.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Geometry {
    pub channels: u32,
    /// Chips (ways) sharing a channel.
    pub ways: u32,
    pub dies_per_chip: u32,
    pub planes_per_die: u32,
    pub blocks_per_plane: u32,
    pub pages_per_block: u32,
    /// Page size, bytes.
    pub page_bytes: u32,
}

/// Array and bus timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlashTiming {
    /// Page read (array to page register), microseconds, per page type in the order the
    /// pages of a word line are numbered (one entry: SLC; LSB/MSB: MLC; LSB/CSB/MSB: TLC).
    pub read_us: Vec<f64>,
    /// Page program, microseconds, per page type as `read_us` (same length).
    pub program_us: Vec<f64>,
    /// Channel transfer rate, mega-transfers per second.
    pub channel_mts: f64,
    /// Channel width, bytes per transfer.
    pub channel_bytes: u32,
    /// Command and address cycles of one operation on the channel, nanoseconds.
    pub command_ns: f64,
    /// Multi-plane operations: reads (programs) queued for different planes of one die share
    /// one array time.
    pub multi_plane: bool,
    /// Block erase (tBERS), microseconds: what a garbage collection's erase holds the die for.
    pub erase_us: f64,
    /// Cache read: the die starts its next read while the previous page leaves through the
    /// cache register, instead of holding the page register until its transfer ends.
    pub cache_read: bool,
}

/// The controller's DRAM and its flash translation layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Controller {
    /// Cached mapping table, entries (one per logical page); 0 = the whole table is in DRAM
    /// (no translation reads). A miss reads the translation page holding the entry from flash
    /// first (demand-based FTL, DFTL).
    pub cmt_entries: u64,
    /// Bytes of a mapping entry (how many entries a translation page holds).
    pub mapping_entry_bytes: u32,
    /// Write cache in DRAM, bytes; 0 = writes complete when flash has programmed them. With a
    /// cache a write completes once its data is in DRAM and space is left.
    pub write_cache_bytes: u64,
    /// Bandwidth of the DRAM the write cache lives in, MB/s (10^6 bytes): a write's data
    /// enters it one access at a time. Required with a write cache, refused without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_cache_mb_s: Option<f64>,
    /// The write cache's slot, bytes: a write occupies and moves whole slots, one per page it
    /// touches (MQSim caches whole flash pages). Unset: exactly its bytes. Refused without a
    /// write cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_cache_slot_bytes: Option<u32>,
    /// Bytes of cached writes the cache may have on their way to flash at once (dispatched,
    /// not yet programmed): a write enters the cache only while less than this is in flight,
    /// so that sustained writes go at the flash's program rate, not the DRAM's. MQSim's
    /// back-pressure buffer (src/ssd/Data_Cache_Manager_Flash_Advanced.cpp,
    /// `write_to_destage_buffer` admits while `back_pressure_buffer_depth <
    /// back_pressure_buffer_max_depth`, and writes every first-written page back at once;
    /// src/exec/SSD_Device.cpp sets the limit to planes × sectors per page, one page per
    /// plane). Unset: only the cache's capacity limits it. Refused without a write cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_back_limit_bytes: Option<u64>,
    /// Die interleaving: the controller sends a command to a die while another die of the
    /// same chip is busy (ONFI multi-LUN operation: each LUN polled with Read Status
    /// Enhanced, 78h). `false`: it schedules whole chips, as MQSim's transaction scheduler
    /// does (src/ssd/TSU_OutofOrder.cpp, `service_read_transaction` /
    /// `service_write_transaction` issue only to a chip whose status is `IDLE`, and
    /// src/ssd/TSU_Base.cpp `issue_command_to_chip` returns after one die's command): a chip
    /// runs one die's batch at a time, from its command until its read data has left over
    /// the channel (src/ssd/NVM_PHY_ONFI_NVDDR2.cpp sets the chip `IDLE` only when no die is
    /// active and no read waits for data out) or its program has ended. Required: a TOML
    /// spec without it is refused naming the field.
    pub die_interleaving: bool,
    /// Overprovisioning: the fraction of each plane's blocks outside the logical space (the
    /// host sees `floor(blocks_per_plane × (1 − overprovisioning))` blocks per plane). The rest
    /// are the free blocks writes go to and garbage collection refills. Must leave more than
    /// the garbage-collection threshold plus one block free.
    pub overprovisioning: f64,
    /// Garbage collection starts in a plane when its free blocks fall below
    /// `max(2, floor(gc_threshold × blocks_per_plane))` (MQSim's `GC_Exec_Threshold`, the
    /// floor of 2 so that a collection always has a free block to copy into); it takes the
    /// full block with the fewest valid pages (greedy), moves them, then erases it.
    pub gc_threshold: f64,
    /// Garbage collection moves valid pages with copyback (read and program inside the die,
    /// nothing on the channel) instead of through the controller (read out over the channel,
    /// programmed back in). MQSim's `Use_Copyback_for_GC`.
    pub gc_copyback: bool,
}

/// An invalid spec: the field and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("flash spec `{name}`: field `{field}`: {why}")]
pub struct FlashSpecError {
    pub name: String,
    pub field: String,
    pub why: String,
}

impl FlashSpec {
    /// Parses and validates a TOML spec; `file` names it in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<FlashSpec, String> {
        let spec: FlashSpec = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
        spec.validate().map_err(|e| format!("{file}: {e}"))?;
        Ok(spec)
    }

    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), FlashSpecError> {
        let err = |field: &str, why: String| FlashSpecError {
            name: self.name.clone(),
            field: field.to_string(),
            why,
        };
        let pos = |field: &str, v: f64| -> Result<(), FlashSpecError> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(err(field, format!("must be a positive number, got {v}")))
            }
        };
        let count = |field: &str, v: u64| -> Result<(), FlashSpecError> {
            if v > 0 {
                Ok(())
            } else {
                Err(err(field, "must be at least 1".into()))
            }
        };
        let h = &self.host;
        if !(1..=6).contains(&h.pcie_gen) {
            return Err(err(
                "host.pcie_gen",
                format!("must be 1..=6, got {}", h.pcie_gen),
            ));
        }
        if ![1, 2, 4, 8, 16].contains(&h.lanes) {
            return Err(err(
                "host.lanes",
                format!("must be 1, 2, 4, 8 or 16, got {}", h.lanes),
            ));
        }
        if !(h.payload_efficiency > 0.0 && h.payload_efficiency <= 1.0) {
            return Err(err(
                "host.payload_efficiency",
                format!("must be in (0, 1], got {}", h.payload_efficiency),
            ));
        }
        count("host.queue_entries", h.queue_entries.into())?;
        if !(h.command_us.is_finite() && h.command_us >= 0.0) {
            return Err(err(
                "host.command_us",
                format!("must be ≥ 0, got {}", h.command_us),
            ));
        }
        let g = &self.geometry;
        count("geometry.channels", g.channels.into())?;
        count("geometry.ways", g.ways.into())?;
        count("geometry.dies_per_chip", g.dies_per_chip.into())?;
        count("geometry.planes_per_die", g.planes_per_die.into())?;
        count("geometry.blocks_per_plane", g.blocks_per_plane.into())?;
        count("geometry.pages_per_block", g.pages_per_block.into())?;
        count("geometry.page_bytes", g.page_bytes.into())?;
        let t = &self.timing;
        if t.read_us.is_empty() || t.read_us.len() > 4 {
            return Err(err(
                "timing.read_us",
                format!("needs 1 to 4 page types, got {}", t.read_us.len()),
            ));
        }
        if t.program_us.len() != t.read_us.len() {
            return Err(err(
                "timing.program_us",
                format!(
                    "needs as many page types as timing.read_us ({}), got {}",
                    t.read_us.len(),
                    t.program_us.len()
                ),
            ));
        }
        for (i, &v) in t.read_us.iter().enumerate() {
            pos(&format!("timing.read_us[{i}]"), v)?;
        }
        for (i, &v) in t.program_us.iter().enumerate() {
            pos(&format!("timing.program_us[{i}]"), v)?;
        }
        pos("timing.channel_mts", t.channel_mts)?;
        count("timing.channel_bytes", t.channel_bytes.into())?;
        if !(t.command_ns.is_finite() && t.command_ns >= 0.0) {
            return Err(err(
                "timing.command_ns",
                format!("must be ≥ 0, got {}", t.command_ns),
            ));
        }
        pos("timing.erase_us", t.erase_us)?;
        let c = &self.controller;
        if !(c.gc_threshold > 0.0 && c.gc_threshold < 1.0) {
            return Err(err(
                "controller.gc_threshold",
                format!("must be in (0, 1), got {}", c.gc_threshold),
            ));
        }
        if !(c.overprovisioning >= 0.0 && c.overprovisioning < 1.0) {
            return Err(err(
                "controller.overprovisioning",
                format!("must be in [0, 1), got {}", c.overprovisioning),
            ));
        }
        let (logical, threshold) = (self.logical_blocks_per_plane(), self.gc_threshold_blocks());
        if logical == 0 || logical + threshold + 1 > g.blocks_per_plane {
            return Err(err(
                "controller.overprovisioning",
                format!(
                    "leaves {logical} of {} blocks per plane to the logical space; it needs at \
                     least 1 and at most blocks − GC threshold ({threshold}) − 1",
                    g.blocks_per_plane
                ),
            ));
        }
        if self.pages() >= u64::from(u32::MAX) {
            return Err(err(
                "geometry.blocks_per_plane",
                format!("the drive's {} pages must be fewer than 2^32", self.pages()),
            ));
        }
        if let Some(p) = &self.precondition {
            if !(p.random_overwrites.is_finite() && p.random_overwrites >= 0.0) {
                return Err(err(
                    "precondition.random_overwrites",
                    format!("must be ≥ 0, got {}", p.random_overwrites),
                ));
            }
        }
        count(
            "controller.mapping_entry_bytes",
            self.controller.mapping_entry_bytes.into(),
        )?;
        if self.controller.mapping_entry_bytes > g.page_bytes {
            return Err(err(
                "controller.mapping_entry_bytes",
                "larger than a page".into(),
            ));
        }
        if self.controller.write_cache_bytes > 0
            && self.controller.write_cache_bytes < u64::from(g.page_bytes)
        {
            return Err(err(
                "controller.write_cache_bytes",
                format!("0 or at least one page ({} bytes)", g.page_bytes),
            ));
        }
        match (
            self.controller.write_cache_bytes,
            self.controller.write_cache_mb_s,
        ) {
            (0, Some(_)) => {
                return Err(err(
                    "controller.write_cache_mb_s",
                    "given without a write cache (controller.write_cache_bytes = 0)".into(),
                ))
            }
            (n, None) if n > 0 => {
                return Err(err(
                    "controller.write_cache_mb_s",
                    "missing: a write cache needs its DRAM's bandwidth".into(),
                ))
            }
            (_, Some(v)) => pos("controller.write_cache_mb_s", v)?,
            _ => {}
        }
        match (
            self.controller.write_cache_bytes,
            self.controller.write_cache_slot_bytes,
        ) {
            (0, Some(_)) => {
                return Err(err(
                    "controller.write_cache_slot_bytes",
                    "given without a write cache (controller.write_cache_bytes = 0)".into(),
                ))
            }
            (_, Some(0)) => {
                return Err(err(
                    "controller.write_cache_slot_bytes",
                    "must be at least 1".into(),
                ))
            }
            _ => {}
        }
        match (
            self.controller.write_cache_bytes,
            self.controller.write_back_limit_bytes,
        ) {
            (0, Some(_)) => {
                return Err(err(
                    "controller.write_back_limit_bytes",
                    "given without a write cache (controller.write_cache_bytes = 0)".into(),
                ))
            }
            (_, Some(0)) => {
                return Err(err(
                    "controller.write_back_limit_bytes",
                    "must be at least 1".into(),
                ))
            }
            _ => {}
        }
        Ok(())
    }

    /// Dies in the drive.
    pub fn dies(&self) -> u64 {
        let g = &self.geometry;
        u64::from(g.channels) * u64::from(g.ways) * u64::from(g.dies_per_chip)
    }

    /// Pages in the drive.
    pub fn pages(&self) -> u64 {
        let g = &self.geometry;
        self.dies()
            * u64::from(g.planes_per_die)
            * u64::from(g.blocks_per_plane)
            * u64::from(g.pages_per_block)
    }

    /// Blocks per plane in the logical space: `floor(blocks_per_plane × (1 −
    /// overprovisioning))`.
    pub fn logical_blocks_per_plane(&self) -> u32 {
        (f64::from(self.geometry.blocks_per_plane) * (1.0 - self.controller.overprovisioning))
            .floor() as u32
    }

    /// Free blocks below which a plane collects garbage: `max(2, floor(gc_threshold ×
    /// blocks_per_plane))`.
    pub fn gc_threshold_blocks(&self) -> u32 {
        ((self.controller.gc_threshold * f64::from(self.geometry.blocks_per_plane)).floor() as u32)
            .max(2)
    }

    /// The logical space, bytes: the logical blocks of every plane.
    pub fn logical_bytes(&self) -> u64 {
        self.dies()
            * u64::from(self.geometry.planes_per_die)
            * u64::from(self.logical_blocks_per_plane())
            * u64::from(self.geometry.pages_per_block)
            * u64::from(self.geometry.page_bytes)
    }

    /// Capacity, bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.pages() * u64::from(self.geometry.page_bytes)
    }

    /// PCIe payload bandwidth one way, bytes per second: lanes × GT/s × encoding ×
    /// `payload_efficiency` (8b/10b up to gen 2, 128b/130b for gen 3–5, gen 6's FLIT mode
    /// taken as 242/256).
    pub fn host_bytes_per_s(&self) -> f64 {
        let h = &self.host;
        let (gts, enc) = match h.pcie_gen {
            1 => (2.5, 0.8),
            2 => (5.0, 0.8),
            3 => (8.0, 128.0 / 130.0),
            4 => (16.0, 128.0 / 130.0),
            5 => (32.0, 128.0 / 130.0),
            _ => (64.0, 242.0 / 256.0),
        };
        f64::from(h.lanes) * gts * 1e9 / 8.0 * enc * h.payload_efficiency
    }

    /// One channel's bandwidth, bytes per second.
    pub fn channel_bytes_per_s(&self) -> f64 {
        self.timing.channel_mts * 1e6 * f64::from(self.timing.channel_bytes)
    }

    /// Time to move one page over a channel, nanoseconds.
    pub fn page_transfer_ns(&self) -> f64 {
        f64::from(self.geometry.page_bytes) / self.channel_bytes_per_s() * 1e9
    }
}

/// The shipped presets, by name.
pub const PRESETS: [(&str, &str); 3] = [
    ("ssd980pro", include_str!("presets/ssd980pro.toml")),
    ("mqsim_default", include_str!("presets/mqsim_default.toml")),
    ("cambricon_llm", include_str!("presets/cambricon_llm.toml")),
];

/// A shipped preset by name; the error lists the names.
pub fn preset(name: &str) -> Result<FlashSpec, String> {
    let (file, text) = PRESETS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
        let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
        format!(
            "unknown flash preset `{name}` (known: {})",
            names.join(", ")
        )
    })?;
    FlashSpec::from_toml(text, &format!("sim/flash/presets/{file}.toml"))
}
