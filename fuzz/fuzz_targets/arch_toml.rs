//! Arbitrary UTF-8 as architecture TOML: `Architecture::from_toml_str` must refuse it
//! with an error that renders, or accept it; an accepted architecture must serialise,
//! read back the same, and lower (`ArchP::new`) for a small GEMM without a panic.
#![no_main]

use cascade_arch::Architecture;
use cascade_einsum::{bind, library};
use cascade_mappings::{ArchP, Problem};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn gemm() -> &'static Problem {
    static P: OnceLock<Problem> = OnceLock::new();
    P.get_or_init(|| {
        let c = library::load("gemm").expect("built in").cascade;
        let ext: BTreeMap<String, u64> = c
            .root_ranks()
            .into_iter()
            .map(|r| (r.to_string(), 64))
            .collect();
        let sh = bind(&c, &ext).expect("binds");
        Problem::new(&c, &sh, 2, None).expect("lowers")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let arch = match Architecture::from_toml_str(text, "fuzz.toml") {
        Ok(a) => a,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let printed = arch
        .to_toml_string()
        .expect("an accepted architecture serialises");
    let again = Architecture::from_toml_str(&printed, "printed.toml")
        .unwrap_or_else(|e| panic!("printed architecture does not load: {e}\n{printed}"));
    assert_eq!(arch, again, "to_toml → from_toml changed the architecture");
    if let Some(g) = &arch.gpu {
        for dt in ["bf16", "fp16", "fp8", "fp32"] {
            let _ = g.peak_flops(dt);
        }
        let _ = cascade::gpu::GpuParams::new(g);
    }
    let _ = ArchP::new(&arch, gemm());
});
