//! A cycle-level DRAM timing model (issue 11, item 2). This first part: the memory
//! description ([`DramSpec`], validated field by field; presets in `arch/memory/*.toml`) and
//! the address mapping ([`AddressMapping`]).

mod mapping;
mod spec;

pub use mapping::{AddressMapping, Field, Location};
pub use spec::{
    CommandBus, Controller, DramSpec, Energy, Organization, PagePolicy, Refresh, RefreshMode,
    SpecError, Timing, PRESETS,
};
