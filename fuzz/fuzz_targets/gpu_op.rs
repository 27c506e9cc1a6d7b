//! Arbitrary UTF-8 as a GPU `--op` spec: `GpuOp::parse` must refuse it with an error
//! that renders, or accept it; an accepted op must print back to a spec that parses to
//! the same op, give finite FLOPs and bytes, and (when at most 1e6 FLOPs and bytes, to keep executions fast) be
//! estimated on the H100 preset or refused with a reason, never panic.
#![no_main]

use cascade::gpu::{try_estimate, GpuOp};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn h100() -> &'static cascade_arch::GpuSpec {
    static S: OnceLock<cascade_arch::GpuSpec> = OnceLock::new();
    S.get_or_init(|| {
        cascade_arch::preset("h100")
            .expect("preset")
            .gpu
            .expect("a GPU")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let op = match GpuOp::parse(text) {
        Ok(op) => op,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let printed = op.to_string();
    let again = GpuOp::parse(&printed)
        .unwrap_or_else(|e| panic!("printed op `{printed}` does not parse: {e}"));
    assert_eq!(
        op.to_string(),
        again.to_string(),
        "print → parse changed the op"
    );
    let (flops, bytes) = (op.flops(), op.min_bytes());
    assert!(
        flops.is_finite() && flops >= 0.0,
        "flops {flops} for `{printed}`"
    );
    assert!(
        bytes.is_finite() && bytes >= 0.0,
        "bytes {bytes} for `{printed}`"
    );
    if flops <= 1e6 && bytes <= 1e6 {
        match try_estimate(&op, h100()) {
            Ok(e) => assert!(e.seconds.is_finite(), "estimate of `{printed}`: {e:?}"),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
