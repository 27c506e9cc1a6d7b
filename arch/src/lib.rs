//! cascade-arch: typed architecture specifications (a tree of storage levels with fanouts,
//! compute units, per-action energies, word sizes, GPU figures) loaded from unit-checked TOML.
//!
//! ```
//! let arch = cascade_arch::preset("fusemax").unwrap();
//! assert_eq!(arch.peak_ops_per_s("pe2d", "mac"), Some(65536.0 * 940e6));
//! ```

pub mod link;
pub mod locate;
pub mod memory;
pub mod spec;
pub mod units;

pub use link::Link;
pub use spec::{
    ArchError, Architecture, ComputeUnit, GpuSpec, LevelEnergy, MeasuredCeilings, OpCost, PimSpec,
    Precision, StorageKind, StorageLevel, MAX_INSTANCES, MAX_WORD_BITS, PIM_PRESETS, ROLES,
};
pub use units::{Bandwidth, Bytes, Duration, Energy, Frequency, UnitError};

/// Embedded preset files: (name, file name, TOML text).
const PRESETS: &[(&str, &str, &str)] = &[
    (
        "fusemax",
        "presets/fusemax.toml",
        include_str!("../presets/fusemax.toml"),
    ),
    (
        "flat",
        "presets/flat.toml",
        include_str!("../presets/flat.toml"),
    ),
    (
        "flat_edge",
        "presets/flat_edge.toml",
        include_str!("../presets/flat_edge.toml"),
    ),
    (
        "h100",
        "presets/h100.toml",
        include_str!("../presets/h100.toml"),
    ),
    (
        "h200",
        "presets/h200.toml",
        include_str!("../presets/h200.toml"),
    ),
    (
        "fusemax_vpu",
        "presets/fusemax_vpu.toml",
        include_str!("../presets/fusemax_vpu.toml"),
    ),
    (
        "duplex",
        "presets/duplex.toml",
        include_str!("../presets/duplex.toml"),
    ),
    (
        "logic_pim",
        "presets/logic_pim.toml",
        include_str!("../presets/logic_pim.toml"),
    ),
    (
        "bankgroup_pim",
        "presets/bankgroup_pim.toml",
        include_str!("../presets/bankgroup_pim.toml"),
    ),
    (
        "bank_pim",
        "presets/bank_pim.toml",
        include_str!("../presets/bank_pim.toml"),
    ),
];

/// Names of the embedded presets.
pub fn preset_names() -> Vec<&'static str> {
    PRESETS.iter().map(|(name, _, _)| *name).collect()
}

/// The TOML source of an embedded preset, if it exists.
pub fn preset_source(name: &str) -> Option<&'static str> {
    PRESETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, text)| *text)
}

/// Loads and validates an embedded preset (`fusemax`, `flat`, `flat_edge`, `h100`, `h200`, `fusemax_vpu`, `duplex`, `logic_pim`,
/// `bankgroup_pim`, `bank_pim`).
pub fn preset(name: &str) -> Result<Architecture, ArchError> {
    let (_, file, text) =
        PRESETS
            .iter()
            .find(|(n, _, _)| *n == name)
            .ok_or_else(|| ArchError::UnknownPreset {
                name: name.to_string(),
                known: preset_names().join(", "),
            })?;
    Architecture::from_toml_str(text, file)
}
