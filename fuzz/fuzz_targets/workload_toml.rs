//! Arbitrary UTF-8 as workload TOML: `Workload::from_toml_str` must refuse it with an
//! error that renders, or accept it; an accepted workload must list its points and the
//! cascade instances of each (the first 64), and bind and analyse the built-in cascade
//! of each instance at its extents (or refuse them with a reason), without a panic.
#![no_main]

use cascade::workload::Workload;
use cascade_einsum::{analyze, bind, library, AnalysisOptions, Cascade};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn builtin(name: &str) -> Option<&'static Cascade> {
    static ALL: OnceLock<BTreeMap<&'static str, Cascade>> = OnceLock::new();
    ALL.get_or_init(|| {
        library::names()
            .into_iter()
            .map(|n| (n, library::load(n).expect("built in").cascade))
            .collect()
    })
    .get(name)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let w = match Workload::from_toml_str(text, "fuzz.toml") {
        Ok(w) => w,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = w.kind();
    let _ = w.repeats();
    for pt in w.points().iter().take(64) {
        for inst in w.layer(pt) {
            let Some(c) = builtin(&inst.cascade) else {
                continue;
            };
            if let Ok(sh) = bind(c, &inst.extents) {
                let opts = AnalysisOptions {
                    dtype_bytes: 2,
                    routing: inst.routing.clone(),
                };
                let _ = analyze(c, &sh, &opts);
            }
        }
    }
});
