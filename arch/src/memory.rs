//! The memory technologies a storage level can name (`memory = "hbm3_h100"`): the DRAM timing
//! presets in `arch/memory/*.toml`, which the cycle-level DRAM model (`cascade::dram`) reads in
//! full. Here only what the architecture needs from them: that the name exists, and the peak
//! data rate (every data bus busy every cycle), which a level naming the preset takes as its
//! bandwidth unless it gives a lower one.

use serde::Deserialize;

/// The DRAM presets: (name, TOML text).
pub const PRESETS: &[(&str, &str)] = &[
    ("hbm3_h100", include_str!("../memory/hbm3_h100.toml")),
    (
        "hbm3_logic_pim",
        include_str!("../memory/hbm3_logic_pim.toml"),
    ),
    (
        "hbm3_bankgroup_pim",
        include_str!("../memory/hbm3_bankgroup_pim.toml"),
    ),
    (
        "hbm3_bank_pim",
        include_str!("../memory/hbm3_bank_pim.toml"),
    ),
    ("hbm3e_h200", include_str!("../memory/hbm3e_h200.toml")),
    ("ddr5_4800", include_str!("../memory/ddr5_4800.toml")),
    ("lpddr5_6400", include_str!("../memory/lpddr5_6400.toml")),
    (
        "hbm3_2gbps_ramulator",
        include_str!("../memory/hbm3_2gbps_ramulator.toml"),
    ),
    (
        "ddr5_3200_ramulator",
        include_str!("../memory/ddr5_3200_ramulator.toml"),
    ),
];

/// The fields of a preset the peak rate comes from (the DRAM model checks the rest).
#[derive(Deserialize)]
struct View {
    organization: Org,
    timing: Tim,
}

#[derive(Deserialize)]
struct Org {
    channels: u32,
    pseudo_channels: u32,
    bus_width_bits: u32,
    transfers_per_clock: u32,
}

#[derive(Deserialize)]
struct Tim {
    #[serde(rename = "tCK_ns")]
    tck_ns: f64,
}

/// The preset names, comma-separated (for errors).
pub fn names() -> String {
    PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
}

/// Peak bandwidth of preset `name`, bytes per second: channels × pseudo-channels × bus width ×
/// transfers per clock / tCK (the same figure as the DRAM model's `peak_bandwidth`).
pub fn peak_bandwidth(name: &str) -> Result<f64, String> {
    let text = PRESETS
        .iter()
        .find(|p| p.0 == name)
        .map(|p| p.1)
        .ok_or_else(|| format!("no memory preset `{name}` (presets: {})", names()))?;
    let v: View = toml::from_str(text).map_err(|e| format!("memory preset `{name}`: {e}"))?;
    let o = &v.organization;
    let peak = f64::from(o.channels) * f64::from(o.pseudo_channels) * f64::from(o.bus_width_bits)
        / 8.0
        * f64::from(o.transfers_per_clock)
        / (v.timing.tck_ns * 1e-9);
    if peak.is_finite() && peak > 0.0 {
        Ok(peak)
    } else {
        Err(format!(
            "memory preset `{name}`: no positive peak bandwidth"
        ))
    }
}
