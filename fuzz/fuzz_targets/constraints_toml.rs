//! Arbitrary UTF-8 as mapspace constraints: `Constraints::from_toml_str` must refuse it
//! with an error that renders, or accept it; accepted constraints must serialise and read
//! back the same, and a tiny search of a small GEMM on the `fusemax` preset under them
//! must refuse with a reason or find a mapping, never panic.
#![no_main]

use cascade::models::spatial::analytical::Analytical;
use cascade_einsum::{bind, library};
use cascade_mappings::{search_group, ArchP, Constraints, Problem, Search};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn lowered() -> &'static (Problem, ArchP) {
    static P: OnceLock<(Problem, ArchP)> = OnceLock::new();
    P.get_or_init(|| {
        let c = library::load("gemm").expect("built in").cascade;
        let ext: BTreeMap<String, u64> = c
            .root_ranks()
            .into_iter()
            .map(|r| (r.to_string(), 64))
            .collect();
        let sh = bind(&c, &ext).expect("binds");
        let p = Problem::new(&c, &sh, 2, None).expect("lowers");
        let arch = cascade_arch::preset("fusemax").expect("preset");
        let a = ArchP::new(&arch, &p).expect("lowers");
        (p, a)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let c = match Constraints::from_toml_str(text, "fuzz.toml") {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let printed = toml::to_string(&c).expect("accepted constraints serialise");
    let again = Constraints::from_toml_str(&printed, "printed.toml")
        .unwrap_or_else(|e| panic!("printed constraints do not load: {e}\n{printed}"));
    assert_eq!(c, again, "to_toml → from_toml changed the constraints");
    let (p, a) = lowered();
    let einsums: Vec<usize> = (0..p.einsums.len()).collect();
    let s = Search::default()
        .budget(64)
        .restarts(1)
        .exhaustive_limit(64.0)
        .constraints(c);
    match search_group(p, a, &einsums, &Analytical::default(), &s) {
        Ok(_) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
