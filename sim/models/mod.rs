//! Hardware models behind the common contract (`cascade_mappings::model`): each consumes a
//! problem, an architecture and a mapping and returns the one `Report`.
pub mod spatial;
