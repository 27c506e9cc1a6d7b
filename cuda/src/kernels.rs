//! The kernel sources and what is known of them without a GPU: the families they are built
//! in and the dynamic shared memory each is launched with. No cudarc here, so the CPU
//! emulator's test (`tests/emu.rs`) and the unit tests use the same tables as the device layer.

const PRELUDE: &str = include_str!("../kernels/prelude.cuh");
const UTIL: &str = include_str!("../kernels/util.cu");
pub(crate) const GEMM_H: &str = include_str!("../kernels/gemm.cuh");
const GEMM: &str = include_str!("../kernels/gemm.cu");
const UNFUSED: &str = include_str!("../kernels/attn_unfused.cu");
const FA2: &str = include_str!("../kernels/fa2.cu");
const DECODE: &str = include_str!("../kernels/decode.cu");

/// A kernel family: sources compiled as one NVRTC program (so that a build failure in one
/// family leaves the others usable), and the kernels it defines.
#[derive(Clone, Copy, Debug)]
pub struct Family {
    /// Family name; also the argument of `emu/emu_test.cpp` that runs its checks.
    pub name: &'static str,
    /// Sources, concatenated in this order.
    pub sources: &'static [&'static str],
    /// The `extern "C"` kernels it defines.
    pub kernels: &'static [&'static str],
}

/// Every kernel family of `kernels/`.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "util",
        sources: &[PRELUDE, UTIL],
        kernels: &[
            "fill_rand_bf16",
            "count_nonfinite_bf16",
            "count_nonfinite_f32",
            "chase_init",
            "chase_u32",
            "noop_dyn_smem",
            "store_tile_bf16",
        ],
    },
    Family {
        name: "gemm",
        sources: &[PRELUDE, GEMM_H, GEMM],
        kernels: &["gemm_bf16_nn_128x128"],
    },
    Family {
        name: "attn_unfused",
        sources: &[PRELUDE, GEMM_H, UNFUSED],
        kernels: &[
            "attn_scores_nt",
            "softmax_rows",
            "attn_pv_d64",
            "attn_pv_d128",
        ],
    },
    Family {
        name: "fa2",
        sources: &[PRELUDE, FA2],
        kernels: &["fa2_fwd_d64", "fa2_fwd_d128"],
    },
    Family {
        name: "decode",
        sources: &[PRELUDE, DECODE],
        kernels: &["decode_splitkv_g4_d128", "decode_combine_d128"],
    },
];

/// Dynamic shared memory (bytes) of the kernels that use it; must match
/// kernels/*.cu (`gemm_smem_bytes<BM, BN, B_NT, GEMM_STAGES>()` for the GEMM
/// tiles, `5·64·(D+8)·2` for FA2). `cuda/emu/run_emu.sh smem` prints the
/// values the kernels' own templates give (`tests/emu.rs` compares them with this table);
/// the unit test below recomputes them.
pub const DYN_SMEM_TABLE: &[(&str, u32)] = &[
    ("gemm_bf16_nn_128x128", 75776),
    ("attn_scores_nt", 81920),
    ("attn_pv_d64", 59392),
    ("attn_pv_d128", 75776),
    ("fa2_fwd_d64", 46080),
    ("fa2_fwd_d128", 87040),
    ("noop_dyn_smem", 75776),
];

/// Dynamic shared memory that kernel `name` is launched with (0 for those without).
pub fn dyn_smem(name: &str) -> u32 {
    DYN_SMEM_TABLE
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, b)| b)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recomputes kernels/gemm.cuh's `gemm_smem_bytes` and FA2's formula.
    #[test]
    fn dyn_smem_table_matches_kernel_formulas() {
        let (bk, stages) = (32usize, 4usize);
        let gemm = |bm: usize, bn: usize, nt: bool| {
            (stages * (bm * (bk + 8) + if nt { bn * (bk + 8) } else { bk * (bn + 8) }) * 2) as u32
        };
        assert_eq!(dyn_smem("gemm_bf16_nn_128x128"), gemm(128, 128, false));
        assert_eq!(dyn_smem("attn_scores_nt"), gemm(128, 128, true));
        assert_eq!(dyn_smem("attn_pv_d64"), gemm(128, 64, false));
        assert_eq!(dyn_smem("attn_pv_d128"), gemm(128, 128, false));
        assert_eq!(dyn_smem("fa2_fwd_d64"), (5 * 64 * (64 + 8) * 2) as u32);
        assert_eq!(dyn_smem("fa2_fwd_d128"), (5 * 64 * (128 + 8) * 2) as u32);
        assert_eq!(dyn_smem("noop_dyn_smem"), gemm(128, 128, false));
        assert_eq!(dyn_smem("softmax_rows"), 0);
        assert!(DYN_SMEM_TABLE.iter().all(|&(_, b)| b <= 227 * 1024));
        assert!(GEMM_H.contains("#define GEMM_STAGES 4") && GEMM_H.contains("#define GEMM_BK 32"));
    }

    #[test]
    fn families_define_their_kernels_once() {
        let mut all = std::collections::BTreeSet::new();
        for f in FAMILIES {
            assert!(!f.kernels.is_empty(), "{}", f.name);
            let text = f.sources.concat();
            for k in f.kernels {
                assert!(all.insert(*k), "{k} listed twice");
                assert!(
                    text.contains(&format!(" {k}(")),
                    "{}: no kernel {k} in its sources",
                    f.name
                );
            }
        }
        for (k, _) in DYN_SMEM_TABLE {
            assert!(all.contains(k), "{k} in DYN_SMEM_TABLE is no kernel");
        }
    }
}
