//! Arbitrary UTF-8 as a saved mapping: `Mapping::from_toml_str` must refuse it with an
//! error that renders, or accept it; an accepted mapping must serialise and read back,
//! and replaying it (`simulate`: lower its built-in cascade at its extents on its
//! architecture preset, plan every group, evaluate it) must refuse it with a reason or
//! give a report, never panic. Only built-in cascades are replayed (a name is never
//! read as a file path).
#![no_main]

use cascade::commands::map::simulate;
use cascade_einsum::library;
use cascade_mappings::Mapping;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let m = match Mapping::from_toml_str(text, "fuzz.toml") {
        Ok(m) => m,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let printed = m.to_toml().expect("an accepted mapping serialises");
    let again = Mapping::from_toml_str(&printed, "printed.toml")
        .unwrap_or_else(|e| panic!("printed mapping does not load: {e}\n{printed}"));
    assert_eq!(
        printed,
        again.to_toml().expect("serialises"),
        "printing is not a fixed point"
    );
    if library::source(&m.cascade).is_none() {
        return;
    }
    let Ok(arch) = cascade_arch::preset(&m.arch) else {
        return;
    };
    match simulate(&m, text, "fuzz.toml", &arch) {
        Ok(r) => {
            let _ = serde_json::to_string(&r);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
