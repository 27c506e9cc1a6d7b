//! The core loop-nest model on cases small enough to count by hand, and a property test over
//! random (and deliberately broken) mappings.
//!
//! Every hand case writes a cascade, an architecture and a mapping to a scratch directory,
//! replays the mapping as a saved one is re-evaluated (`cascade::commands::map::replay`) and
//! checks the model's numbers against the derivation in the comment above the assertions. Conventions are cascade's defaults
//! ([`Conventions::CASCADE`]: Timeloop v3's counting, see tests/parity/SEMANTICS.md part A,
//! plus a read at a level for every word it drains up, and the load of the first tiles and the
//! drain of the last results added to compute) unless a case says otherwise. Words are 16 bits
//! and every port is 16 bits wide unless a case says otherwise, so one word = one access and
//! energy = Σ words × pJ per access.

use cascade::commands::map::replay;
use cascade::models::spatial::analytical::{Analytical, Conventions};
use cascade_mappings::model::{
    ArchP, CostModel, GroupEval, GroupPlan, Keep, LoopP, SHARED, TEMPORAL,
};
use cascade_mappings::{Mapping, Problem, Report};
use proptest::prelude::*;
use std::path::PathBuf;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A replayed hand case.
struct Case {
    p: Problem,
    a: ArchP,
    groups: Vec<(GroupPlan, GroupEval)>,
    r: Report,
}

impl Case {
    /// (reads, fills, updates) in words of `tensor` at `level`, summed over the level's
    /// instances; zeros where the level never touches the tensor.
    fn rfu(&self, level: &str, tensor: &str) -> [f64; 3] {
        self.r
            .traffic_of(level, tensor)
            .map_or([0.0; 3], |t| [t.reads, t.fills, t.updates])
    }
    /// (read bytes, write bytes) of `tensor` at `level`.
    fn bytes(&self, level: &str, tensor: &str) -> [f64; 2] {
        self.r
            .traffic_of(level, tensor)
            .map_or([0.0; 2], |t| [t.read_bytes, t.write_bytes])
    }
    fn ev(&self) -> &GroupEval {
        &self.groups[0].1
    }
    /// Bits one instance of `level` holds at its fullest.
    fn used_bits(&self, level: &str) -> f64 {
        self.ev().used_bits[self.a.level_index(level).unwrap()]
    }
    /// Energy (pJ) the model charges for `tensor`'s accesses at `level` (read + fill + update).
    fn tensor_pj(&self, level: &str, tensor: &str) -> f64 {
        let l = self.a.level_index(level).unwrap();
        let t = self.p.tensor_index(tensor).unwrap();
        let x = &self.ev().actions[l * self.p.tensors.len() + t];
        let lv = &self.a.levels[l];
        x.read_accesses * lv.read_pj_per_bit * lv.read_width_bits
            + x.fill_accesses * lv.fill_pj_per_bit * lv.write_width_bits
            + x.update_accesses * lv.update_pj_per_bit * lv.write_width_bits
    }
}

/// Writes the three files of a case to a fresh scratch directory and replays the mapping
/// (`mapping` is the mapping's text after its `cascade`/`arch` lines).
fn run(name: &str, ein: &str, arch: &str, mapping: &str, conventions: Conventions) -> Case {
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("cascade-core-{}-{seq}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ein_path, arch_path, map_path) = (
        dir.join("problem.ein"),
        dir.join("arch.toml"),
        dir.join("mapping.toml"),
    );
    std::fs::write(&ein_path, ein).unwrap();
    std::fs::write(&arch_path, arch).unwrap();
    let text = format!(
        "cascade = {:?}\narch = {:?}\ndtype_bytes = 2\n{mapping}",
        ein_path.display().to_string(),
        arch_path.display().to_string()
    );
    std::fs::write(&map_path, &text).unwrap();
    let (m, text) = Mapping::load(&map_path).unwrap();
    let arch = cascade_arch::Architecture::load(&m.arch).unwrap();
    let model = Analytical { conventions };
    let file = map_path.display().to_string();
    let (p, a, groups) = replay(&m, &text, &file, &arch, &model).unwrap();
    let r = Report::from_groups(&p, &a, &groups);
    let _ = std::fs::remove_dir_all(&dir);
    Case { p, a, groups, r }
}

fn close(x: f64, y: f64) -> bool {
    (x - y).abs() <= 1e-9 * y.abs().max(1.0)
}

macro_rules! assert_close {
    ($x:expr, $y:expr $(,)?) => {{
        let (x, y): (f64, f64) = ($x, $y);
        assert!(close(x, y), "{} = {x}, expected {y}", stringify!($x));
    }};
}

/// A two-level architecture: an unbounded DRAM over one 64 B register file and one MAC.
const ARCH_2LEVEL: &str = r#"
name = "two_level"
description = "DRAM over one register file and one MAC"
source = "tests/core.rs"
clock = "1 GHz"

[precision]
default = 16

[[levels]]
name = "DRAM"
kind = "dram"
width_bits = 16
[levels.energy]
read = "100 pJ"
write = "100 pJ"

[[levels]]
name = "Buffer"
kind = "regfile"
capacity = "64 B"
width_bits = 16
[levels.energy]
read = "1 pJ"
write = "2 pJ"

[[compute]]
name = "mac"
level = "Buffer"
[compute.ops]
mac = { cycles = 1, energy = "0.5 pJ" }
"#;

/// DRAM → GLB → per-PE register files (`fanout` of them under the GLB) → one MAC each.
/// `precision` is the body of the `[precision]` table, `glb` extra keys of the GLB level,
/// `dram_bw` the DRAM's read and write bandwidth.
fn arch3(fanout: &str, precision: &str, glb: &str, dram_bw: &str) -> String {
    format!(
        r#"
name = "three_level"
description = "DRAM, a global buffer and per-PE register files"
source = "tests/core.rs"
clock = "1 GHz"

[precision]
{precision}

[[levels]]
name = "DRAM"
kind = "dram"
width_bits = 16
read_bandwidth = "{dram_bw}"
write_bandwidth = "{dram_bw}"
[levels.energy]
read = "100 pJ"
write = "100 pJ"

[[levels]]
name = "GLB"
kind = "sram"
capacity = "1 KiB"
width_bits = 16
read_bandwidth = "64 GB/s"
write_bandwidth = "64 GB/s"
{glb}
[levels.energy]
read = "10 pJ"
write = "12 pJ"

[[levels]]
name = "RF"
kind = "regfile"
fanout = {fanout}
capacity = "64 B"
width_bits = 16
[levels.energy]
read = "1 pJ"
write = "2 pJ"

[[compute]]
name = "mac"
level = "RF"
[compute.ops]
mac = {{ cycles = 1, energy = "0.5 pJ" }}
"#
    )
}

const GEMM: &str = "input I[M,K], W[K,N]\noutput O[m,n] = I[m,k] * W[k,n]\n";

/// One `[[groups.loops]]` entry: `level`, `dim` (spatial) or none (temporal), shared (no
/// owner) or the MAC's own loop.
fn lp(level: &str, dim: Option<u8>, shared: bool, rank: &str, factor: u64) -> String {
    let mut s = format!("\n[[groups.loops]]\nlevel = \"{level}\"\n");
    if let Some(d) = dim {
        s += &format!("dim = {d}\n");
    }
    if !shared {
        s += "owner = \"mac\"\n";
    }
    s + &format!("rank = \"{rank}\"\nfactor = {factor}\n")
}

/// A single-Einsum group `O` on `mac`, fused at `fuse`, with its loops (outermost first).
fn group(extents: &str, fuse: &str, loops: &[String], extra: &str) -> String {
    format!(
        "\n[extents]\n{extents}\n\n[[groups]]\neinsums = [\"O\"]\nfuse = \"{fuse}\"\nbindings = {{ O = \"mac\" }}\n{}{extra}",
        loops.concat()
    )
}

// ---------------------------------------------------------------------------------------------
// A.1 Convolution with halos
// ---------------------------------------------------------------------------------------------

const CONV1D: &str = "input I[Z1], W[K,R]\noutput O[k,p] = I[p+r] * W[k,r]\n";

/// O[k,p] = Σ_r I[p+r]·W[k,r], K = 2, P = 8, R = 3 (|I| = 10, |W| = 6, |O| = 16, 48 MACs) on
/// DRAM → Buffer → MAC, with the Buffer's loops `P2 { R3 }` (outermost first) and DRAM's loops
/// given by `dram`.
fn conv1d(dram: &[String], conventions: Conventions) -> Case {
    let mut loops = dram.to_vec();
    loops.push(lp("Buffer", None, false, "P", 2));
    loops.push(lp("Buffer", None, false, "R", 3));
    run(
        "conv1d",
        CONV1D,
        ARCH_2LEVEL,
        &group("K = 2\nP = 8\nR = 3", "Buffer", &loops, ""),
        conventions,
    )
}

#[test]
fn conv1d_sliding_tiles_reuse_their_halo_while_the_step_repeats() {
    // DRAM loops K2 { P4 }. The Buffer's tiles (the loops inside it: p 2, r 3):
    //   I: p+r spans (2−1)+(3−1)+1 = 4 words; W[k,r]: 1·3 = 3; O[k,p]: 1·2 = 2.
    // I (Halo::SameStep): for each k, the first tile (4), then 3 steps of P moving the window by
    //   +2 with the same translation each time → 2 new words each: 4 + 3·2 = 10. The step of K
    //   wraps P back (translation −6 ≠ +2): the whole tile again, then +2 three times: 10.
    //   Buffer I fills = DRAM I reads = 20 (|I| = 10 twice: once per k).
    // W: irrelevant P leaves the tile in place; it moves only with K → 2 tiles · 3 = 6.
    // O: R (the reduction) is wholly inside the Buffer, so each element leaves it once, final:
    //   DRAM O updates 16, reads 0. At the Buffer: 48 updates (one per MAC), and reads
    //   48 − 16 = 32 for the accumulations (the first of each element reads nothing) + 16 for
    //   the drains up to DRAM = 48; fills 0.
    // The Buffer reads every operand once per MAC: I 48, W 48.
    let c = conv1d(
        &[
            lp("DRAM", None, true, "K", 2),
            lp("DRAM", None, true, "P", 4),
        ],
        Conventions::CASCADE,
    );
    assert_eq!(c.rfu("DRAM", "I"), [20.0, 0.0, 0.0]);
    assert_eq!(c.rfu("Buffer", "I"), [48.0, 20.0, 0.0]);
    assert_eq!(c.rfu("DRAM", "W"), [6.0, 0.0, 0.0]);
    assert_eq!(c.rfu("Buffer", "W"), [48.0, 6.0, 0.0]);
    assert_eq!(c.rfu("DRAM", "O"), [0.0, 0.0, 16.0]);
    assert_eq!(c.rfu("Buffer", "O"), [48.0, 0.0, 48.0]);
    // Capacity: the Buffer holds 4 + 3 + 2 = 9 words = 144 bits.
    assert_eq!(c.used_bits("Buffer"), 144.0);

    // ZigZag's convention (Halo::Never): a tile that moves is fetched whole: 8 DRAM steps ×
    // 4 words = 32 (the other counts do not change: the innermost loop R changes both operands
    // at every MAC, so ZigZag's stationary-operand reuse saves no Buffer read, and one Buffer
    // copy makes per-element and per-copy first-read elision the same).
    let z = conv1d(
        &[
            lp("DRAM", None, true, "K", 2),
            lp("DRAM", None, true, "P", 4),
        ],
        Conventions::ZIGZAG,
    );
    assert_eq!(z.rfu("DRAM", "I"), [32.0, 0.0, 0.0]);
    assert_eq!(z.rfu("Buffer", "I"), [48.0, 32.0, 0.0]);
    assert_eq!(z.rfu("Buffer", "W"), [48.0, 6.0, 0.0]);
    assert_eq!(z.rfu("DRAM", "O"), [0.0, 0.0, 16.0]);
    assert_eq!(z.rfu("Buffer", "O"), [48.0, 0.0, 48.0]);
}

#[test]
fn conv1d_a_change_of_translation_refetches_the_whole_tile() {
    // DRAM loops P4 { K2 } (K innermost). Each K step leaves the I window in place (translation
    // 0, nothing new) and Timeloop remembers that translation; the next P step moves it by +2,
    // a different translation → the whole 4-word tile again (SEMANTICS A.3 rule 3), although
    // half of it overlaps. I: 4 tiles · 4 = 16 (hardware-minimal would be 4 + 3·2 = 10).
    // W now moves at every K step and every P step (K wraps): 8 tiles · 3 = 24.
    // O: still each element once: DRAM 16 updates; Buffer 48 updates, 32 + 16 reads.
    let c = conv1d(
        &[
            lp("DRAM", None, true, "P", 4),
            lp("DRAM", None, true, "K", 2),
        ],
        Conventions::CASCADE,
    );
    assert_eq!(c.rfu("DRAM", "I"), [16.0, 0.0, 0.0]);
    assert_eq!(c.rfu("Buffer", "I"), [48.0, 16.0, 0.0]);
    assert_eq!(c.rfu("DRAM", "W"), [24.0, 0.0, 0.0]);
    assert_eq!(c.rfu("Buffer", "W"), [48.0, 24.0, 0.0]);
    assert_eq!(c.rfu("DRAM", "O"), [0.0, 0.0, 16.0]);
    assert_eq!(c.rfu("Buffer", "O"), [48.0, 0.0, 48.0]);
    // ZigZag refetches whole tiles anyway: also 16.
    let z = conv1d(
        &[
            lp("DRAM", None, true, "P", 4),
            lp("DRAM", None, true, "K", 2),
        ],
        Conventions::ZIGZAG,
    );
    assert_eq!(z.rfu("DRAM", "I"), [16.0, 0.0, 0.0]);
}

#[test]
fn strided_conv_halo_is_the_window_minus_the_stride() {
    // O[q] = Σ_s I[2q+s]·W[s], Q = 4, S = 3: |I| = 2·3 + 2 + 1 = 9, 12 MACs. DRAM loop Q2,
    // Buffer loops Q2 { S3 }. The Buffer's I tile: 2q+s over q 2, s 3 spans 2·1 + 2 + 1 = 5.
    // The DRAM step moves q by 2, the window by 4: 1 word overlaps, 4 are new → fills 5 + 4 = 9
    // = |I| (each input once). ZigZag (no halo reuse): 2 · 5 = 10.
    // W (3 words) never moves: 3. O: 4 updates at DRAM; Buffer 12 updates, 12 − 4 + 4 reads.
    let ein = "input I[Z1], W[S]\noutput O[q] = I[2*q+s] * W[s]\n";
    let m = group(
        "Q = 4\nS = 3",
        "Buffer",
        &[
            lp("DRAM", None, true, "Q", 2),
            lp("Buffer", None, false, "Q", 2),
            lp("Buffer", None, false, "S", 3),
        ],
        "",
    );
    let c = run("strided", ein, ARCH_2LEVEL, &m, Conventions::CASCADE);
    assert_eq!(c.rfu("DRAM", "I"), [9.0, 0.0, 0.0]);
    assert_eq!(c.rfu("Buffer", "I"), [12.0, 9.0, 0.0]);
    assert_eq!(c.rfu("Buffer", "W"), [12.0, 3.0, 0.0]);
    assert_eq!(c.rfu("DRAM", "O"), [0.0, 0.0, 4.0]);
    assert_eq!(c.rfu("Buffer", "O"), [12.0, 0.0, 12.0]);
    // Under ZigZag the MAC also keeps an operand while the next MAC uses the same word: the
    // I addresses in MAC order are 0 1 2 | 2 3 4 | 4 5 6 | 6 7 8 (q outer, s inner), the first
    // of each q repeating the last of the previous one → 12 − 3 = 9 Buffer reads.
    let z = run("strided_zz", ein, ARCH_2LEVEL, &m, Conventions::ZIGZAG);
    assert_eq!(z.rfu("DRAM", "I"), [10.0, 0.0, 0.0]);
    assert_eq!(z.rfu("Buffer", "I"), [9.0, 10.0, 0.0]);
}

// ---------------------------------------------------------------------------------------------
// A.2 Bypass, A.3 per-tensor precision (GEMM 4×4×4 on DRAM → GLB → one RF)
// ---------------------------------------------------------------------------------------------

/// O[m,n] = Σ_k I[m,k]·W[k,n], M = N = K = 4 (16 words each, 64 MACs), one RF and one MAC.
/// Loops (outermost first): DRAM M2 (shared) | GLB `glb` | RF M2 N2 K2; GLB keeps from loop 1,
/// the RF from loop 3.
fn gemm_small(name: &str, precision: &str, glb: [(&str, u64); 2], extra: &str) -> Case {
    let loops = [
        lp("DRAM", None, true, "M", 2),
        lp("GLB", None, false, glb[0].0, glb[0].1),
        lp("GLB", None, false, glb[1].0, glb[1].1),
        lp("RF", None, false, "M", 2),
        lp("RF", None, false, "N", 2),
        lp("RF", None, false, "K", 2),
    ];
    run(
        name,
        GEMM,
        &arch3("[1]", precision, "", "16 GB/s"),
        &group("M = 4\nN = 4\nK = 4", "GLB", &loops, extra),
        Conventions::CASCADE,
    )
}

#[test]
fn bypassing_a_middle_level_sends_its_tiles_straight_from_dram() {
    // GLB loops N2 { K2 }. Tiles: GLB (loops 1..): I m2·k4 = 8, W k4·n4 = 16, O m2·n4 = 8;
    // RF (loops 3..): 2·2 = 4 each.
    // I: DRAM→GLB moves with M2 → 2 · 8 = 16. GLB→RF: above the RF, M2 (relevant), N2 (not),
    //   K2 (relevant, innermost) → every one of the 2·2·2 = 8 iterations brings a new tile:
    //   8 · 4 = 32. RF reads 64 (one per MAC).
    // W: DRAM→GLB: M2 is irrelevant → the whole W once: 16. GLB→RF: N2, K2 relevant (K2
    //   innermost) → 8 tiles · 4 = 32. RF reads 64.
    // O: GLB→DRAM: 2 tiles · 8 = 16 updates; RF→GLB: the RF tile stays across the GLB's K2
    //   (irrelevant, innermost) → it leaves after M2·N2 = 4 visits: 16 updates, no partial sum
    //   returns. RF: 64 updates, 64 − 16 accumulation reads + 16 drain reads.
    let plain = gemm_small("plain", "default = 16", [("N", 2), ("K", 2)], "");
    let c = &plain;
    assert_eq!(c.rfu("DRAM", "I"), [16.0, 0.0, 0.0]);
    assert_eq!(c.rfu("GLB", "I"), [32.0, 16.0, 0.0]);
    assert_eq!(c.rfu("RF", "I"), [64.0, 32.0, 0.0]);
    assert_eq!(c.rfu("DRAM", "W"), [16.0, 0.0, 0.0]);
    assert_eq!(c.rfu("GLB", "W"), [32.0, 16.0, 0.0]);
    assert_eq!(c.rfu("RF", "W"), [64.0, 32.0, 0.0]);
    assert_eq!(c.rfu("DRAM", "O"), [0.0, 0.0, 16.0]);
    assert_eq!(c.rfu("GLB", "O"), [16.0, 0.0, 16.0]);
    assert_eq!(c.rfu("RF", "O"), [64.0, 0.0, 64.0]);
    // GLB holds 8 + 16 + 8 = 32 words = 512 bits.
    assert_eq!(c.used_bits("GLB"), 512.0);

    // W bypassed at the GLB: its chain is DRAM → RF. The RF still receives its 32 words (the
    // same 8 tiles), now read from DRAM each time: DRAM W reads 16 → 32. The GLB never touches
    // W and holds 512 − 16·16 = 256 bits. I and O are unchanged everywhere.
    let by = gemm_small(
        "bypass",
        "default = 16",
        [("N", 2), ("K", 2)],
        "\n[[groups.keep]]\ntensor = \"W\"\nlevel = \"GLB\"\nbypass = true\n",
    );
    assert_eq!(by.rfu("DRAM", "W"), [32.0, 0.0, 0.0]);
    assert_eq!(by.rfu("GLB", "W"), [0.0, 0.0, 0.0]);
    assert!(by.r.traffic_of("GLB", "W").is_none());
    assert_eq!(by.rfu("RF", "W"), [64.0, 32.0, 0.0]);
    assert_eq!(by.used_bits("GLB"), 256.0);
    for (l, t) in [
        ("DRAM", "I"),
        ("GLB", "I"),
        ("RF", "I"),
        ("DRAM", "O"),
        ("GLB", "O"),
        ("RF", "O"),
    ] {
        assert_eq!(by.rfu(l, t), plain.rfu(l, t), "{l} {t}");
    }
    assert_eq!(by.used_bits("RF"), plain.used_bits("RF"));
    // Energy: +16 DRAM reads (100 pJ) − the GLB's 16 W fills (12 pJ) and 32 W reads (10 pJ):
    // 1600 − 192 − 320 = +1088 pJ.
    assert_close!(by.r.energy_pj - plain.r.energy_pj, 1088.0);
}

#[test]
fn per_tensor_precision_scales_bits_and_energy_not_words() {
    // The case above (GLB loops N2 { K2 }) with W stored in 4 bits instead of 16. Word counts
    // are those of the case; every W byte count and every W energy is 4/16 of the 16-bit one
    // (16-bit ports: a 4-bit word is a quarter of an access).
    let wide = gemm_small("p16", "default = 16", [("N", 2), ("K", 2)], "");
    let narrow = gemm_small(
        "p4",
        "default = 16\ntensors = { W = 4 }",
        [("N", 2), ("K", 2)],
        "",
    );
    for l in ["DRAM", "GLB", "RF"] {
        for t in ["I", "W", "O"] {
            assert_eq!(narrow.rfu(l, t), wide.rfu(l, t), "{l} {t}");
        }
        let ([wr, ww], [nr, nw]) = (wide.bytes(l, "W"), narrow.bytes(l, "W"));
        assert_close!(nr, wr / 4.0);
        assert_close!(nw, ww / 4.0);
        assert_close!(narrow.tensor_pj(l, "W"), wide.tensor_pj(l, "W") / 4.0);
        assert_eq!(narrow.bytes(l, "I"), wide.bytes(l, "I"));
    }
    // W at 16 bits: DRAM 16 reads · 100 + GLB 16 fills · 12 + 32 reads · 10 + RF 32 fills · 2
    // + 64 reads · 1 = 1600 + 192 + 320 + 64 + 64 = 2240 pJ; at 4 bits a quarter: 560 pJ.
    let w16: f64 = ["DRAM", "GLB", "RF"]
        .iter()
        .map(|l| wide.tensor_pj(l, "W"))
        .sum();
    assert_close!(w16, 2240.0);
    assert_close!(wide.r.energy_pj - narrow.r.energy_pj, 2240.0 * 3.0 / 4.0);
    // W's bytes: DRAM reads 16 words · 4 bits = 8 B; GLB 32 reads → 16 B, 16 fills → 8 B.
    assert_eq!(narrow.bytes("DRAM", "W"), [8.0, 0.0]);
    assert_eq!(narrow.bytes("GLB", "W"), [16.0, 8.0]);
    // Capacity: the GLB's W tile (16 words) now takes 64 bits: 8·16 + 16·4 + 8·16 = 320.
    assert_eq!(narrow.used_bits("GLB"), 320.0);
}

#[test]
fn partial_sums_travel_at_their_precision_and_final_values_at_the_outputs() {
    // Same GEMM, `default = 16` and `partial_sums = 32`.
    //
    // (a) GLB loops N2 { K2 }: the RF's O tile stays across the GLB's K2, so the reduction
    // over all of K completes in the RF (no partial sum crosses RF→GLB). The partial sums live
    // in the RF only: 64 MAC updates at 32 bits (256 B) and 48 accumulation reads at 32 bits
    // (192 B); the 16 drains up are final values at 16 bits: RF reads 192 + 32 = 224 B, GLB
    // updates 16 · 2 = 32 B, then GLB reads 32 B and DRAM updates 32 B.
    // Capacity: the RF holds its 4 partial sums at 32 bits, the GLB only final outputs: GLB
    // I 8·16 + W 16·16 + O 8·16 = 512 bits, RF I 4·16 + W 4·16 + O 4·32 = 256 bits.
    let a = gemm_small(
        "psum_a",
        "default = 16\npartial_sums = 32",
        [("N", 2), ("K", 2)],
        "",
    );
    assert_eq!(a.bytes("RF", "O"), [224.0, 256.0]);
    assert_eq!(a.bytes("GLB", "O"), [32.0, 32.0]);
    assert_eq!(a.bytes("DRAM", "O"), [0.0, 32.0]);
    assert_eq!(a.used_bits("RF"), 256.0);
    assert_eq!(a.used_bits("GLB"), 512.0);

    // (b) GLB loops K2 { N2 }: now the RF tile moves with N inside K, so it leaves after the
    // first half of K with partial sums and returns for the second half. RF→GLB edge: 8 visits
    // of 4 words = 32 drains, 16 of them partial sums sent up and filled back (RF fills 16 =
    // GLB reads 16 for resuming, at 32 bits). The model follows ZigZag's rule (SEMANTICS B.1):
    // a level that holds partial sums sends everything up at the partial-sum precision, so the
    // 32 drains count at 32 bits (the 16 final ones could be 16 bits on hardware that rounds
    // on the last drain).
    //   RF O: updates 64 (32 bits) = 256 B, fills 16 (32 bits) = 64 B; reads 64 − 16 = 48
    //     accumulation reads + 32 drains, all 32 bits: 320 B.
    //   GLB O: updates 32 · 4 B = 128 B; reads 16 resumed · 4 B + 16 final drains to DRAM
    //     · 2 B = 96 B. DRAM O: 16 final updates = 32 B.
    let b = gemm_small(
        "psum_b",
        "default = 16\npartial_sums = 32",
        [("K", 2), ("N", 2)],
        "",
    );
    assert_eq!(b.rfu("RF", "O"), [80.0, 16.0, 64.0]);
    assert_eq!(b.rfu("GLB", "O"), [32.0, 0.0, 32.0]);
    assert_eq!(b.rfu("DRAM", "O"), [0.0, 0.0, 16.0]);
    assert_eq!(b.bytes("RF", "O"), [320.0, 320.0]);
    assert_eq!(b.bytes("GLB", "O"), [96.0, 128.0]);
    assert_eq!(b.bytes("DRAM", "O"), [0.0, 32.0]);

    // (c) K unrolled over the 4×4 RFs (the spatial-reduction case below, M = N = 8, K = 4):
    // each RF holds sums over its own k only, so all it writes and drains is partial: 256
    // MAC updates and 256 drains at 32 bits = 1024 B each way. With the GLB's network adding
    // the 4 partial sums of each element, the GLB receives 64 final values (16 bits: 128 B)
    // and holds final outputs: GLB tiles I 32 + W 16 + O 32 words, all 16 bits = 1280 bits.
    // Without spatial reduction the GLB receives the 256 partial sums (1024 B), reads back 192
    // of them to add to (32 bits: 768 B) besides its 64 final drains (128 B), and holds its O
    // tile at 32 bits: 32·16 + 16·16 + 32·32 = 1792 bits.
    let psum = "default = 16\npartial_sums = 32";
    let sr = gemm_pe("psum_sr", &spatial_k_loops(), psum, "", "16 GB/s");
    assert_eq!(sr.bytes("RF", "O"), [1024.0, 1024.0]);
    assert_eq!(sr.bytes("GLB", "O"), [128.0, 128.0]);
    assert_eq!(sr.bytes("DRAM", "O"), [0.0, 128.0]);
    assert_eq!(sr.used_bits("GLB"), 1280.0);
    let ns = gemm_pe(
        "psum_nsr",
        &spatial_k_loops(),
        psum,
        "spatial_reduction = false",
        "16 GB/s",
    );
    assert_eq!(ns.bytes("RF", "O"), [1024.0, 1024.0]);
    assert_eq!(ns.bytes("GLB", "O"), [896.0, 1024.0]);
    assert_eq!(ns.bytes("DRAM", "O"), [0.0, 128.0]);
    assert_eq!(ns.used_bits("GLB"), 1792.0);
}

// ---------------------------------------------------------------------------------------------
// A.4–A.6 Three levels with per-PE register files, multicast, spatial reduction
// ---------------------------------------------------------------------------------------------

/// O[m,n] = Σ_k I[m,k]·W[k,n], M = N = 8, K = 4 (|I| = |W| = 32, |O| = 64, 256 MACs) on DRAM →
/// GLB → 4×4 RFs → one MAC each.
fn gemm_pe(name: &str, loops: &[String], precision: &str, glb: &str, dram_bw: &str) -> Case {
    run(
        name,
        GEMM,
        &arch3("[4, 4]", precision, glb, dram_bw),
        &group("M = 8\nN = 8\nK = 4", "GLB", loops, ""),
        Conventions::CASCADE,
    )
}

/// Loops (outermost first, keep positions: GLB 1, RF 5):
/// 0 DRAM N2 | 1 GLB K2, 2 GLB M2 | 3 RF spatial M4 (dim 0), 4 RF spatial N4 (dim 1) | 5 RF K2.
/// Per PE: 2·2·2·2 = 16 temporal iterations.
fn weight_stationary_loops() -> Vec<String> {
    vec![
        lp("DRAM", None, true, "N", 2),
        lp("GLB", None, false, "K", 2),
        lp("GLB", None, false, "M", 2),
        lp("RF", Some(0), false, "M", 4),
        lp("RF", Some(1), false, "N", 4),
        lp("RF", None, false, "K", 2),
    ]
}

#[test]
fn three_levels_with_per_pe_register_files() {
    // Tiles: GLB (loops 1..) I m8·k4 = 32, W k4·n4 = 16, O m8·n4 = 32; each RF (loop 5):
    // I m1·k2 = 2, W k2·n1 = 2, O 1.
    // I: DRAM→GLB: N2 is irrelevant → all of I once: 32. GLB→RF: above the RFs, K2 and M2
    //   (innermost) are relevant → each PE gets 2·2·2 = 8 tiles · 2 = 16 words: 16 PEs → 256
    //   RF fills. The 4 PEs along N (dim 1) need the same I: the GLB reads the union over the
    //   spatial loops once (multicast): m4·k2 = 8 words per step · 8 steps = 64.
    //   RF reads: 16 MACs per PE · 16 = 256.
    // W: DRAM→GLB moves with N2: 2 · 16 = 32. GLB→RF: N2, K2 relevant, M2 (innermost) not →
    //   the tile stays across M2: 4 tiles · 2 = 8 per PE → 128 RF fills; the 4 PEs along M
    //   share them: GLB reads k2·n4 = 8 · 4 steps = 32. RF reads 256.
    // O: GLB→DRAM: 2 tiles · 32 = 64 updates (each element once: DRAM reads 0), so the GLB
    //   reads 64 to drain. RF→GLB: K2 sits outside M2, so the one-word tile leaves at every
    //   one of the 8 steps: 8 drains per PE = 128 RF reads and 128 GLB updates (M and N are
    //   both spatial and relevant: nothing to reduce). Each PE owns 4 outputs (m2 × n2), so
    //   64 of the 128 visits are first ones and 64 return: RF fills 64 = GLB resume reads 64.
    //   GLB O reads 64 + 64 = 128. RF: 256 updates (one per MAC), 256 − 64 accumulation reads
    //   + 128 drains = 320 reads.
    let c = gemm_pe(
        "pe",
        &weight_stationary_loops(),
        "default = 16",
        "",
        "16 GB/s",
    );
    assert_eq!(c.rfu("DRAM", "I"), [32.0, 0.0, 0.0]);
    assert_eq!(c.rfu("DRAM", "W"), [32.0, 0.0, 0.0]);
    assert_eq!(c.rfu("DRAM", "O"), [0.0, 0.0, 64.0]);
    assert_eq!(c.rfu("GLB", "I"), [64.0, 32.0, 0.0]);
    assert_eq!(c.rfu("GLB", "W"), [32.0, 32.0, 0.0]);
    assert_eq!(c.rfu("GLB", "O"), [128.0, 0.0, 128.0]);
    assert_eq!(c.rfu("RF", "I"), [256.0, 256.0, 0.0]);
    assert_eq!(c.rfu("RF", "W"), [256.0, 128.0, 0.0]);
    assert_eq!(c.rfu("RF", "O"), [320.0, 64.0, 256.0]);
    // Energy (one access per word):
    //   DRAM: (32 + 32) reads · 100 + 64 updates · 100 = 12800
    //   GLB:  (64 + 32 + 128) reads · 10 + (32 + 32) fills · 12 + 128 updates · 12
    //         = 2240 + 768 + 1536 = 4544
    //   RF:   (256 + 256 + 320) reads · 1 + (256 + 128 + 64) fills · 2 + 256 updates · 2
    //         = 832 + 896 + 512 = 2240
    //   MACs: 256 · 0.5 = 128                                           total 19712 pJ.
    assert_close!(c.r.component_pj("DRAM"), 12800.0);
    assert_close!(c.r.component_pj("GLB"), 4544.0);
    assert_close!(c.r.component_pj("RF"), 2240.0);
    assert_close!(c.r.component_pj("mac"), 128.0);
    assert_close!(c.r.energy_pj, 19712.0);
    // Latency. Compute: 16 temporal iterations · 1 cycle. Bandwidths at 1 GHz: DRAM 16 GB/s =
    // 128 bits/cycle per port, GLB 64 GB/s = 512, RF unbounded.
    //   Load (before compute): one RF tile of an operand (2 words = 32 bits) down each edge,
    //   each edge at its slower side: DRAM→GLB max(32/128, 32/512) = 0.25, GLB→RF 32/512 =
    //   0.0625 → 0.3125 (I and W alike).
    //   Drain (after compute): one RF tile of O (16 bits) up: RF→GLB 16/512 = 0.03125,
    //   GLB→DRAM max(16/512, 16/128) = 0.125 → 0.15625.
    //   Ports (overlapping compute): DRAM reads 64 words = 1024 bits / 128 = 8 cycles, writes
    //   1024 / 128 = 8; GLB reads 224 words = 3584 bits / 512 = 7, writes 192 words / 32 = 6.
    //   cycles = max(16 + 0.3125 + 0.15625, 8, 7) = 16.46875.
    assert_eq!(c.ev().compute_cycles, 16.0);
    assert_eq!(c.r.latency_cycles, 16.46875);
    assert_eq!(c.r.bound, "compute");
    // Utilisation: 256 MACs / 16 PEs = 16 busy cycles of 16.46875.
    assert_close!(c.r.utilization["mac"], 16.0 / 16.46875);

    // The same with DRAM at 1 GB/s (8 bits/cycle): its ports need 1024 / 8 = 128 cycles each
    // way, more than compute + load (32/8 + 0.0625 = 4.0625) + drain (16/8 + 0.03125 =
    // 2.03125) = 22.09375: latency 128, DRAM-bound.
    let slow = gemm_pe(
        "pe_slow",
        &weight_stationary_loops(),
        "default = 16",
        "",
        "1 GB/s",
    );
    assert_eq!(slow.r.latency_cycles, 128.0);
    assert_eq!(slow.r.bound, "DRAM");
    assert_close!(slow.r.energy_pj, 19712.0);
}

#[test]
fn multicast_reads_a_shared_word_once_for_all_children() {
    // The case above: I does not depend on N (spatial over dim 1), W not on M (dim 0).
    // Multicast (default): GLB I reads 64 = 256 RF fills / 4 PEs sharing each word;
    // GLB W reads 32 = 128 / 4.
    // `multicast = false`: one GLB read per RF fill: I 256, W 128. Nothing else changes;
    // energy +((256 − 64) + (128 − 32)) · 10 pJ = +2880 pJ.
    let mc = gemm_pe(
        "mc",
        &weight_stationary_loops(),
        "default = 16",
        "",
        "16 GB/s",
    );
    let uc = gemm_pe(
        "uc",
        &weight_stationary_loops(),
        "default = 16",
        "multicast = false",
        "16 GB/s",
    );
    assert_eq!(mc.rfu("GLB", "I"), [64.0, 32.0, 0.0]);
    assert_eq!(mc.rfu("GLB", "W"), [32.0, 32.0, 0.0]);
    assert_eq!(uc.rfu("GLB", "I"), [256.0, 32.0, 0.0]);
    assert_eq!(uc.rfu("GLB", "W"), [128.0, 32.0, 0.0]);
    for l in ["DRAM", "GLB", "RF"] {
        assert_eq!(uc.rfu(l, "O"), mc.rfu(l, "O"), "{l} O");
    }
    for l in ["DRAM", "RF"] {
        for t in ["I", "W"] {
            assert_eq!(uc.rfu(l, t), mc.rfu(l, t), "{l} {t}");
        }
    }
    assert_close!(uc.r.energy_pj - mc.r.energy_pj, 2880.0);
}

/// Loops (outermost first, keep positions: GLB 1, RF 5): 0 DRAM N2 | 1 GLB M2, 2 GLB N2 |
/// 3 RF spatial M4 (dim 0), 4 RF spatial K4 (dim 1) | 5 RF N2.
fn spatial_k_loops() -> Vec<String> {
    vec![
        lp("DRAM", None, true, "N", 2),
        lp("GLB", None, false, "M", 2),
        lp("GLB", None, false, "N", 2),
        lp("RF", Some(0), false, "M", 4),
        lp("RF", Some(1), false, "K", 4),
        lp("RF", None, false, "N", 2),
    ]
}

#[test]
fn spatial_reduction_adds_the_childrens_partial_sums_on_the_way() {
    // K spatial: loops 0 DRAM N2 | 1 GLB M2, 2 GLB N2 | 3 RF spatial M4, 4 RF spatial K4 | 5 RF
    // N2. Each PE has its own k, so it never accumulates over time: every MAC writes a new
    // output partial (16 per PE = 16 distinct outputs: RF O reads 0 for accumulation).
    // RF tile O: m1·n2 = 2; above the RF, N2, M2, N2 all relevant → 8 visits · 2 = 16 drains
    // per PE = 256 RF reads, RF fills 0, 256 updates.
    // With `spatial_reduction` (default) the 4 PEs along K send partial sums of the same 2
    // outputs, added in the network: the GLB receives the union over M4 only, m4·n2 = 8 per
    // step · 8 = 64 updates = |O| (each element once); GLB reads: 0 resumed + 64 drains.
    // Without it, each PE's 2 words update the GLB: 256 updates; the GLB adds them itself:
    // the first of each element's 4 partial sums is written, the other 3 read-modify-write:
    // 256 − 64 = 192 reads (Timeloop's legacy RMW: reads = updates − partition size), + 64
    // drains to DRAM = 256 reads.
    // DRAM: GLB tile m8·n4 → 2 tiles = 64 updates either way.
    let loops = spatial_k_loops();
    let sr = gemm_pe("sr", &loops, "default = 16", "", "16 GB/s");
    let ns = gemm_pe(
        "nsr",
        &loops,
        "default = 16",
        "spatial_reduction = false",
        "16 GB/s",
    );
    for c in [&sr, &ns] {
        assert_eq!(c.rfu("RF", "O"), [256.0, 0.0, 256.0]);
        assert_eq!(c.rfu("DRAM", "O"), [0.0, 0.0, 64.0]);
    }
    assert_eq!(sr.rfu("GLB", "O"), [64.0, 0.0, 64.0]);
    assert_eq!(ns.rfu("GLB", "O"), [256.0, 0.0, 256.0]);
    for l in ["DRAM", "GLB", "RF"] {
        for t in ["I", "W"] {
            assert_eq!(ns.rfu(l, t), sr.rfu(l, t), "{l} {t}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// B. Random mappings: refused with a reason, or finite and physical
// ---------------------------------------------------------------------------------------------

/// DRAM → GLB → 4×4 RFs → 2 MACs each (`mac`), and a 4-lane `vec` unit under the GLB; W in 8
/// bits, partial sums in 24. Variant 1 turns multicast and spatial reduction off.
fn arch_prop(variant: usize) -> String {
    let net = if variant == 1 {
        "multicast = false\nspatial_reduction = false\n"
    } else {
        ""
    };
    format!(
        r#"
name = "prop"
description = "three levels, per-PE register files, two units"
source = "tests/core.rs"
clock = "1 GHz"

[precision]
default = 16
partial_sums = 24
tensors = {{ W = 8 }}

[[levels]]
name = "DRAM"
kind = "dram"
width_bits = 64
read_bandwidth = "16 GB/s"
write_bandwidth = "8 GB/s"
[levels.energy]
read = "200 pJ"
write = "220 pJ"

[[levels]]
name = "GLB"
kind = "sram"
capacity = "512 B"
width_bits = 32
bandwidth = "64 GB/s"
{net}
[levels.energy]
read = "8 pJ"
write = "9 pJ"

[[levels]]
name = "RF"
kind = "regfile"
fanout = [4, 4]
capacity = "48 B"
width_bits = 16
{net}
[levels.energy]
read = "0.5 pJ"
write = "0.7 pJ"

[[compute]]
name = "mac"
level = "RF"
fanout = [2]
[compute.ops]
mac = {{ cycles = 1, energy = "0.25 pJ" }}

[[compute]]
name = "vec"
level = "GLB"
fanout = [4]
[compute.ops]
mac = {{ cycles = 2, energy = "0.75 pJ" }}
"#
    )
}

/// The problems: a GEMM, a convolution with halos, a strided one.
const PROP_PROBLEMS: [(&str, &str); 3] = [
    (GEMM, "M=8 N=6 K=4"),
    (
        "input I[C,Z1], W[C,K,R]\noutput O[k,p] = I[c,p+r] * W[c,k,r]\n",
        "C=2 K=4 P=6 R=3",
    ),
    (
        "input I[C,Z1], W[C,K,S]\noutput O[k,q] = I[c,2*q+s] * W[c,k,s]\n",
        "C=2 K=2 Q=4 S=3",
    ),
];

type Lowered = Vec<(Problem, [ArchP; 2])>;

fn prop_cases() -> &'static Lowered {
    static CASES: std::sync::OnceLock<Lowered> = std::sync::OnceLock::new();
    CASES.get_or_init(|| {
        let archs = [0, 1].map(|v| {
            cascade_arch::Architecture::from_toml_str(&arch_prop(v), "prop.toml").unwrap()
        });
        PROP_PROBLEMS
            .iter()
            .map(|(ein, ext)| {
                let c = cascade_einsum::check_source("prop.ein", ein)
                    .unwrap()
                    .cascade;
                let extents = ext
                    .split_whitespace()
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap();
                        (k.to_string(), v.parse().unwrap())
                    })
                    .collect();
                let sh = cascade_einsum::bind(&c, &extents).unwrap();
                let p = Problem::new(&c, &sh, 2, None).unwrap();
                let a = archs.each_ref().map(|arch| ArchP::new(arch, &p).unwrap());
                (p, a)
            })
            .collect()
    })
}

fn primes(mut n: u64) -> Vec<u64> {
    let mut v = Vec::new();
    let mut d = 2;
    while n > 1 {
        while n.is_multiple_of(d) {
            v.push(d);
            n /= d;
        }
        d += 1;
    }
    v
}

/// What a random mapping is made of (see [`plan_of`]).
#[derive(Clone, Debug)]
struct Genes {
    problem: usize,
    arch: usize,
    /// 3: the Einsum runs on `vec`, else on `mac`.
    unit: usize,
    /// Per prime factor of every rank (ranks in order): the slot it goes to.
    slots: Vec<u8>,
    /// Per rank: its sort key within a slot's loops.
    order: Vec<u8>,
    /// Bit `2t + l`: bypass tensor t at level 1 + l (the GLB or the RF).
    bypass: Option<u8>,
    /// (tensor, level, loop index): an explicit keep position.
    keep: Option<(u8, u8, u8)>,
    /// A loop whose factor grows by one (an imperfect factorization).
    pad: Option<u8>,
    /// One deliberate fault (10..=16, see [`plan_of`]) or none.
    fault: u8,
}

fn genes() -> impl Strategy<Value = Genes> {
    (
        (0..3usize, 0..2usize, 0..4usize),
        prop::collection::vec(0u8..6, 8),
        prop::collection::vec(any::<u8>(), 8),
        prop::option::weighted(0.3, 0u8..64),
        prop::option::weighted(0.2, (0u8..3, 1u8..3, 0u8..16)),
        prop::option::weighted(0.15, any::<u8>()),
        0u8..24,
    )
        .prop_map(
            |((problem, arch, unit), slots, order, bypass, keep, pad, fault)| Genes {
                problem,
                arch,
                unit,
                slots,
                order,
                bypass,
                keep,
                pad,
                fault,
            },
        )
}

/// The plan: each prime factor of each rank goes to a slot — DRAM's temporal loops (shared),
/// the GLB's, the RFs' spatial dims 0 and 1, the RFs' temporal loops, the MACs' spatial dim —
/// spatial slots taking a factor only while it fits their fanout (else the RF's temporal
/// loops). On `vec` (under the GLB) the RF slots become vec's lanes or the GLB's loops.
/// Faults: 10 drop a factor, 11 overfill a fanout, 12 a loop at the other unit's node, 13 the
/// GLB's loops below the RF's, 14 a shared loop after the unit's own, 15 a factor 0, 16 a
/// fusion level that does not exist.
fn plan_of(p: &Problem, a: &ArchP, g: &Genes) -> GroupPlan {
    let u = usize::from(g.unit == 3);
    let owner = u as u8;
    let (dram, glb, rf) = (0u16, 1u16, 2u16);
    let node = |unit: usize| (a.levels.len() + unit) as u16;
    // (node, dim, owner, fanout) per slot, on `mac`.
    let mut slots: Vec<(u16, u8, u8, u64)> = vec![
        (dram, TEMPORAL, SHARED, 0),
        (glb, TEMPORAL, owner, 0),
        (rf, 0, owner, 4),
        (rf, 1, owner, 4),
        (rf, TEMPORAL, owner, 0),
        (node(0), 0, owner, 2),
    ];
    if u == 1 {
        slots[2] = (node(1), 0, owner, 4);
        slots[3] = slots[2];
        slots[4] = slots[1];
        slots[5] = slots[2];
    }
    let ranks: Vec<usize> = (0..p.ranks.len())
        .filter(|&r| p.einsums[0].vars & (1 << r) != 0)
        .collect();
    // Factor per (slot, rank); spatial products per distinct slot target.
    let mut f = vec![vec![1u64; ranks.len()]; slots.len()];
    let mut k = 0;
    for (ri, &r) in ranks.iter().enumerate() {
        for q in primes(p.ranks[r].extent) {
            let mut s = usize::from(g.slots.get(k).copied().unwrap_or(0));
            k += 1;
            if u == 1 && s == 4 {
                s = 1; // vec's temporal loops are the GLB's
            }
            let (n, d, _, fan) = slots[s];
            if d != TEMPORAL {
                let used: u64 = (0..slots.len())
                    .filter(|&x| slots[x].0 == n && slots[x].1 == d)
                    .map(|x| f[x].iter().product::<u64>())
                    .product();
                if used * q > fan {
                    s = if u == 1 { 1 } else { 4 };
                }
            }
            f[s][ri] *= q;
        }
    }
    // Loops per slot (ranks sorted by their key), outermost slot first.
    let mut by_slot: Vec<Vec<LoopP>> = (0..slots.len())
        .map(|s| {
            let mut rs: Vec<usize> = (0..ranks.len()).filter(|&ri| f[s][ri] > 1).collect();
            rs.sort_by_key(|&ri| (g.order.get(ri).copied().unwrap_or(0), ri));
            rs.iter()
                .map(|&ri| LoopP {
                    rank: ranks[ri] as u8,
                    node: slots[s].0,
                    dim: slots[s].1,
                    owner: slots[s].2,
                    factor: f[s][ri],
                })
                .collect()
        })
        .collect();
    let mut fuse = 1;
    match g.fault {
        10 => {
            if let Some(l) = by_slot.iter_mut().flatten().next() {
                l.factor = 1; // the rank's factors now multiply to less than its extent
            }
        }
        11 => by_slot[2].push(LoopP {
            rank: ranks[0] as u8,
            node: slots[2].0,
            dim: slots[2].1,
            owner,
            factor: 5,
        }),
        12 => by_slot[5].push(LoopP {
            rank: ranks[0] as u8,
            node: if u == 1 { node(0) } else { node(1) },
            dim: 0,
            owner,
            factor: 1,
        }),
        13 => by_slot.swap(1, 4),
        14 => {
            let shared = std::mem::take(&mut by_slot[0]);
            by_slot[5].extend(shared);
        }
        15 => by_slot[4].push(LoopP {
            rank: ranks[0] as u8,
            node: slots[4].0,
            dim: TEMPORAL,
            owner,
            factor: 0,
        }),
        16 => fuse = a.levels.len(),
        _ => {}
    }
    let mut loops: Vec<LoopP> = by_slot.concat();
    if let (Some(x), false) = (g.pad, loops.is_empty()) {
        let n = loops.len();
        loops[usize::from(x) % n].factor += 1;
    }
    let mut keep = Vec::new();
    if let Some(bits) = g.bypass {
        for t in 0..3u8 {
            for l in 0..2u8 {
                if bits & (1 << (2 * t + l)) != 0 {
                    keep.push((t, u16::from(l) + 1, Keep::Bypass));
                }
            }
        }
    }
    if let Some((t, l, pos)) = g.keep {
        keep.push((
            t,
            u16::from(l),
            Keep::At(u16::from(pos) % (loops.len() as u16 + 1)),
        ));
    }
    GroupPlan {
        einsums: vec![0],
        binding: vec![u],
        fuse,
        loops,
        keep,
        derive_keep: false,
        spill: 0,
    }
}

/// Every number in a JSON value is finite (serde_json writes a NaN or an infinity as null).
fn all_finite(v: &serde_json::Value) -> Result<(), String> {
    match v {
        serde_json::Value::Null => Err("null (a NaN or an infinity)".into()),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(x) if x.is_finite() => Ok(()),
            _ => Err(format!("{n}")),
        },
        serde_json::Value::Array(a) => a.iter().try_for_each(all_finite),
        serde_json::Value::Object(o) => o
            .iter()
            .try_for_each(|(k, x)| all_finite(x).map_err(|e| format!("{k}: {e}"))),
        _ => Ok(()),
    }
}

/// The model refuses the plan with a reason, or gives a finite, physical report.
fn check_plan(
    p: &Problem,
    a: &ArchP,
    plan: &GroupPlan,
    model: &Analytical,
) -> Result<bool, TestCaseError> {
    let ev = match model.evaluate(p, a, plan) {
        Err(inv) => {
            let why = inv.describe(p, a);
            prop_assert!(!why.trim().is_empty(), "{inv:?} has no description");
            prop_assert!(model.score(p, a, plan).is_err(), "score accepts {inv:?}");
            return Ok(false);
        }
        Ok(ev) => ev,
    };
    let sc = model.score(p, a, plan).unwrap();
    prop_assert!(
        close(sc.cycles, ev.cycles) && close(sc.energy_pj, ev.energy_pj()),
        "score {sc:?} vs evaluate {ev}"
    );
    let r = Report::from_groups(p, a, &[(plan.clone(), ev.clone())]);
    let json = serde_json::to_value(&r).unwrap();
    all_finite(&json).map_err(|e| TestCaseError::fail(format!("report: {e}")))?;
    let evs = [
        ev.cycles,
        ev.compute_cycles,
        ev.energy_pj(),
        ev.level_cycles.iter().sum(),
        ev.used_bits.iter().sum(),
    ];
    prop_assert!(evs.iter().all(|x| x.is_finite() && *x >= 0.0), "{ev:?}");
    for (u, x) in &r.utilization {
        prop_assert!((0.0..=1.0 + 1e-12).contains(x), "utilization of {u}: {x}");
    }
    for e in &r.energy {
        prop_assert!(e.pj >= 0.0, "{e:?}");
    }
    for t in &r.traffic {
        let xs = [t.reads, t.fills, t.updates, t.read_bytes, t.write_bytes];
        prop_assert!(xs.iter().all(|&x| x >= 0.0), "{t:?}");
    }
    // Compulsory traffic at the root: every input read, every output written, at least once.
    let e = &p.einsums[0];
    let root = &a.levels[0].name;
    let mut compulsory_bytes = 0.0;
    for acc in &e.accesses {
        let tp = &p.tensors[acc.tensor];
        let need = tp.elems as f64 * acc.density;
        let x = r.traffic_of(root, &tp.name);
        let (moved, what) = if acc.tensor == e.write {
            (x.map_or(0.0, |x| x.updates), "updates")
        } else {
            (x.map_or(0.0, |x| x.reads), "reads")
        };
        prop_assert!(
            moved >= need - 1e-9,
            "{root} {what} of {}: {moved} < {need}",
            tp.name
        );
        compulsory_bytes += need * a.bits[acc.tensor].value / 8.0;
    }
    prop_assert!(r.off_chip_bytes >= compulsory_bytes - 1e-9);
    // Latency: at least the MACs spread over every PE of the unit, at its cycles per MAC.
    let u = plan.binding[0];
    let unit = &a.units[u];
    let (mac, macs) = e.ops[0];
    let cpm = unit.op_cycles[mac].unwrap();
    let bound = macs as f64 / unit.pes as f64 * cpm;
    prop_assert!(
        r.latency_cycles >= bound - 1e-9,
        "{} < {bound}",
        r.latency_cycles
    );
    prop_assert!(ev.cycles >= ev.compute_cycles - 1e-9);
    // Energy: at least the MACs'.
    let floor = macs as f64 * unit.op_energy_pj[mac];
    prop_assert!(r.energy_pj >= floor - 1e-9, "{} < {floor}", r.energy_pj);
    Ok(true)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x00c0_ffee),
        ..ProptestConfig::default()
    })]
    #[test]
    fn random_mappings_are_refused_with_a_reason_or_physical(g in genes()) {
        let (p, archs) = &prop_cases()[g.problem];
        let a = &archs[g.arch];
        let plan = plan_of(p, a, &g);
        for conventions in [Conventions::CASCADE, Conventions::TIMELOOP, Conventions::ZIGZAG] {
            check_plan(p, a, &plan, &Analytical { conventions })?;
        }
    }
}
