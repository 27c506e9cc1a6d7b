//! Links between devices (`arch/links/*.toml`): the bandwidth each device sends at in each
//! direction and the latency of one transfer — the two terms of the collective cost model
//! (`cascade::infer::collective`). An architecture names the link its devices are joined by
//! (`interconnect = "nvlink4"`); `cascade infer --link` takes a preset name or a file.
//!
//! A link describes a switched fabric: every device sends and receives at `bandwidth` whatever
//! the others do (NVSwitch, a non-blocking InfiniBand fat tree, a PCIe switch with a full x16
//! uplink per device).

use crate::spec::ArchError;
use crate::units::{Bandwidth, Duration};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The built-in links: (name, TOML text).
pub const PRESETS: &[(&str, &str)] = &[
    ("nvlink4", include_str!("../links/nvlink4.toml")),
    ("pcie4_x16", include_str!("../links/pcie4_x16.toml")),
    ("pcie5_x16", include_str!("../links/pcie5_x16.toml")),
    (
        "infiniband_ndr",
        include_str!("../links/infiniband_ndr.toml"),
    ),
];

/// A link between devices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub name: String,
    pub description: String,
    /// Citation for the figures.
    pub source: String,
    /// What one device sends (and, at the same time, receives) per second, each direction.
    pub bandwidth: Bandwidth,
    /// The fixed cost of one transfer (the α of the α–β model).
    pub latency: Duration,
}

/// The preset names, comma-separated (for errors).
pub fn names() -> String {
    PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
}

impl Link {
    /// Parses a link's TOML; errors carry `file:line:col`.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Link, ArchError> {
        let link: Link =
            toml::from_str(text).map_err(|e| crate::spec::parse_error(&e, text, file))?;
        if link.name.trim().is_empty() {
            return Err(ArchError::Invalid {
                file: Some(file.to_string()),
                path: "name".into(),
                message: "must not be empty".into(),
            });
        }
        Ok(link)
    }

    /// A built-in link by name.
    pub fn preset(name: &str) -> Result<Link, ArchError> {
        let text = PRESETS
            .iter()
            .find(|p| p.0 == name)
            .map(|p| p.1)
            .ok_or_else(|| ArchError::UnknownPreset {
                name: name.to_string(),
                known: names(),
            })?;
        Link::from_toml_str(text, &format!("arch/links/{name}.toml"))
    }

    /// A preset name, or a path to a link TOML file.
    pub fn load(name_or_path: &str) -> Result<Link, ArchError> {
        let path = Path::new(name_or_path);
        if PRESETS.iter().any(|p| p.0 == name_or_path)
            || (!name_or_path.ends_with(".toml") && !path.exists())
        {
            return Link::preset(name_or_path);
        }
        let text = std::fs::read_to_string(path).map_err(|source| ArchError::Io {
            file: name_or_path.to_string(),
            source,
        })?;
        Link::from_toml_str(&text, name_or_path)
    }
}
