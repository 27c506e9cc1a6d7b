//! cascade's DRAM model against Ramulator 2.0's recorded outputs (reports/golden/ramulator2,
//! made by scripts/peers/ramulator2/run_all.sh; issue 11 item 6), on the same memories (the
//! presets `ddr5_3200_ramulator` and `hbm3_2gbps_ramulator`, checked here field by field
//! against the spec Ramulator resolved, timings.json) and the same request streams (the
//! traces of scripts/peers/ramulator2/traces.py, regenerated here and checked against the
//! sha256 recorded in summary.json). The comparison is rendered into reports/memory/ramulator.md
//! and checked on every test run (regenerate with
//! `cargo test --release --test golden_ramulator -- --ignored regenerate`; the speed figures in
//! it come from `... -- --ignored speed`, which writes reports/memory/ramulator_speed.json).

use cascade::dram::{
    simulate, Access, AddressMapping, DramOutput, DramReport, DramSpec, Injection, SimOptions,
};
use std::sync::OnceLock;

const GOLDEN: &str = "reports/golden/ramulator2/summary.json";
const TIMINGS: &str = "reports/golden/ramulator2/timings.json";
const REPORT: &str = "reports/memory/ramulator.md";
const SPEED: &str = "reports/memory/ramulator_speed.json";

const DEVICES: [&str; 2] = ["ddr5", "hbm3"];
const PATTERNS: [&str; 6] = [
    "stream", "random", "rwmix", "conflict", "pingpong", "sparse",
];

fn preset_of(device: &str) -> &'static str {
    match device {
        "ddr5" => "ddr5_3200_ramulator",
        _ => "hbm3_2gbps_ramulator",
    }
}

fn json(path: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn golden() -> &'static serde_json::Value {
    static G: OnceLock<serde_json::Value> = OnceLock::new();
    G.get_or_init(|| json(GOLDEN))
}

// ---------------------------------------------------------------------------------------------
// The traces, as traces.py makes them.

/// traces.py's SplitMix64.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// (address bits, row shift, row bytes) of traces.py's DEVICES.
fn geometry(device: &str) -> (u32, u32, u64) {
    match device {
        "ddr5" => (33, 17, 4096),
        "hbm3" => (30, 15, 1024),
        _ => unreachable!(),
    }
}

fn requests_of(pattern: &str) -> u64 {
    if pattern == "sparse" {
        20_000
    } else {
        200_000
    }
}

/// traces.py's `requests(device, pattern, n)`.
fn trace(device: &str, pattern: &str, n: u64) -> Vec<Access> {
    let (addr_bits, row_shift, row_bytes) = geometry(device);
    let read = |addr| Access { addr, write: false };
    match pattern {
        "stream" => (0..n).map(|i| read(i * 64)).collect(),
        "random" | "rwmix" | "sparse" => {
            let seed = match pattern {
                "random" => 0x5EED_0001,
                "rwmix" => 0x5EED_0002,
                _ => 0x5EED_0003,
            };
            let mut rng = SplitMix64(seed);
            let line_bits = addr_bits - 6;
            (0..n)
                .map(|_| {
                    let addr = (rng.next() >> (64 - line_bits)) << 6;
                    // traces.py: `rng.next() % 3 == 0`
                    let write = pattern == "rwmix" && rng.next().is_multiple_of(3);
                    Access { addr, write }
                })
                .collect()
        }
        "conflict" => (0..n).map(|i| read((i % 4096) << row_shift)).collect(),
        "pingpong" => (0..n)
            .map(|i| read(((i % 2) << row_shift) + ((i / 2) * 64) % row_bytes))
            .collect(),
        _ => unreachable!(),
    }
}

/// The trace file's text (Ramulator's LoadStoreTrace format).
fn trace_text(accesses: &[Access]) -> String {
    let mut s = String::with_capacity(accesses.len() * 16);
    for a in accesses {
        s += if a.write { "ST 0x" } else { "LD 0x" };
        s += &format!("{:x}\n", a.addr);
    }
    s
}

/// SHA-256 (FIPS 180-4), to check the regenerated traces against the recorded digests.
fn sha256(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for (x, y) in h.iter_mut().zip(v) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[test]
fn sha256_is_right() {
    assert_eq!(
        sha256(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        sha256(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let long = vec![b'a'; 1000];
    assert_eq!(
        sha256(&long),
        "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
    );
}

/// The regeneration is exact: every case's trace, full and its 2000-request prefix, has the
/// sha256 summary.json recorded for the file Ramulator read.
#[test]
fn the_traces_are_the_ones_ramulator_ran() {
    let cases = golden()["cases"].as_object().unwrap();
    assert_eq!(cases.len(), DEVICES.len() * PATTERNS.len());
    for d in DEVICES {
        for p in PATTERNS {
            let c = &cases[&format!("{d}_{p}")];
            let n = requests_of(p);
            assert_eq!(c["requests"].as_u64().unwrap(), n);
            let acc = trace(d, p, n);
            assert_eq!(
                acc.iter().filter(|a| a.write).count() as u64,
                c["writes"].as_u64().unwrap()
            );
            assert_eq!(
                sha256(trace_text(&acc).as_bytes()),
                c["trace"]["sha256"].as_str().unwrap(),
                "{d}_{p}"
            );
            assert_eq!(
                sha256(trace_text(&acc[..2000]).as_bytes()),
                c["prefix"]["trace_sha256"].as_str().unwrap(),
                "{d}_{p} prefix"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The presets against what Ramulator simulated.

/// Every organisation and timing figure of the two presets against the spec Ramulator resolved
/// (timings.json), and the address mapping against its RoBaRaCoCh bit layout.
#[test]
fn the_presets_are_what_ramulator_simulated() {
    let tj = json(TIMINGS);
    for d in DEVICES {
        let spec = DramSpec::preset(preset_of(d)).unwrap();
        let rs = &tj[d]["spec"];
        let n = |k: &str| {
            rs["timings"][k]
                .as_u64()
                .unwrap_or_else(|| panic!("{d} {k}")) as u32
        };
        let count = |k: &str| rs["organization"]["count"][k].as_u64().unwrap() as u32;
        let o = &spec.organization;
        let t = &spec.timing;
        assert_eq!(
            (t.tck_ns * 1000.0).round() as u64,
            rs["timings"]["tCK_ps"].as_u64().unwrap()
        );
        assert_eq!(o.channels, count("channel"), "{d}");
        assert_eq!(o.bank_groups, count("bankgroup"), "{d}");
        assert_eq!(o.banks_per_group, count("bank"), "{d}");
        assert_eq!(o.rows, count("row"), "{d}");
        // One access = Ramulator's 64 B per RD/WR; a burst holds the bus nBL cycles.
        assert_eq!(spec.access_bytes(), 64, "{d}");
        assert_eq!(spec.burst_cycles(), u64::from(n("nBL")), "{d}");
        // Row size per bank: Ramulator's columns x DQ (x8 dies: 4 per 32-bit sub-channel).
        let dies = if d == "ddr5" {
            rs["channel_width"].as_u64().unwrap() / rs["organization"]["dq"].as_u64().unwrap()
        } else {
            1
        };
        // (HBM3: a pseudo-channel's row is 64 columns of the preset's 128-bit DQ.)
        let ram_row_bits =
            u64::from(count("column")) * rs["organization"]["dq"].as_u64().unwrap() * dies;
        assert_eq!(
            u64::from(o.columns) * u64::from(o.bus_width_bits),
            ram_row_bits,
            "{d}: row bits"
        );
        assert_eq!(
            u64::from(t.cl) + spec.burst_cycles(),
            rs["read_latency"].as_u64().unwrap()
        );
        let refresh = &spec.refresh;
        if d == "ddr5" {
            assert_eq!(o.pseudo_channels, 1);
            assert_eq!(o.ranks, count("rank"));
            for (ours, theirs) in [
                (t.cl, "nCL"),
                (t.cwl, "nCWL"),
                (t.rcd, "nRCD"),
                (t.rp, "nRP"),
                (t.ras, "nRAS"),
                (t.rc, "nRC"),
                (t.wr, "nWR"),
                (t.rtp, "nRTP"),
                (t.ccd_s, "nCCDS"),
                (t.ccd_l, "nCCDL"),
                (t.ccd_s_wr.unwrap(), "nCCDS_WR"),
                (t.ccd_l_wr.unwrap(), "nCCDL_WR"),
                (t.rrd_s, "nRRDS"),
                (t.rrd_l, "nRRDL"),
                (t.faw, "nFAW"),
                (t.rtrs.unwrap(), "nCS"),
                (refresh.refi, "nREFI"),
                (refresh.rfc, "nRFC1"),
            ] {
                assert_eq!(ours, n(theirs), "{d} {theirs}");
            }
            assert_eq!(t.cwl + n("nBL") + t.wtr_s, n("nCCDS_WTR"));
            assert_eq!(t.cwl + n("nBL") + t.wtr_l, n("nCCDL_WTR"));
            // DDR5.cpp's RD->WR rule.
            assert_eq!(t.rtw, n("nCL") + n("nBL") + 4 - n("nCWL"));
            assert_eq!(spec.refresh.mode, cascade::dram::RefreshMode::AllBank);
        } else {
            assert_eq!(o.pseudo_channels, count("pseudochannel"));
            for (ours, theirs) in [
                (t.cl, "nCL"),
                (t.cwl, "nCWL"),
                (t.rcd, "nRCDRD"),
                (t.rcd_wr.unwrap(), "nRCDWR"),
                (t.rp, "nRP"),
                (t.ras, "nRAS"),
                (t.rc, "nRC"),
                (t.wr, "nWR"),
                (t.rtp, "nRTPL"),
                (t.ccd_s, "nCCDS"),
                (t.ccd_l, "nCCDL"),
                (t.rrd_s, "nRRDS"),
                (t.rrd_l, "nRRDL"),
                (t.faw, "nFAW"),
                (t.wtr_s, "nWTRS"),
                (t.wtr_l, "nWTRL"),
                (refresh.refi, "nREFI"),
                (refresh.rfc, "nRFC"),
            ] {
                assert_eq!(ours, n(theirs), "{d} {theirs}");
            }
            // HBM3.cpp's RD->WR rule (its nRTW is unused).
            assert_eq!(t.rtw, n("nCL") + n("nBL") + 2 - n("nCWL"));
            // No refresh: Ramulator 2.0 issues none on HBM3.
            assert_eq!(spec.refresh.mode, cascade::dram::RefreshMode::None);
        }
        // The channel-level "2-cycle" commands of timings.json's constraint table.
        let cons = rs["timing_constraints"].as_array().unwrap();
        let channel_gap = |pre: &str, fol: &str| {
            cons.iter()
                .filter(|c| {
                    c["level"] == "channel"
                        && c["preceding"] == pre
                        && c["following"] == fol
                        && c["window"] == 1
                })
                .map(|c| c["latency"].as_u64().unwrap())
                .filter(|&l| l <= 2) // the data-bus rows (nBL) are modelled by the bus
                .max()
                .unwrap_or(1) as u32
        };
        assert_eq!(t.act_command_cycles.unwrap_or(1), channel_gap("ACT", "ACT"));
        assert_eq!(t.act_command_cycles.unwrap_or(1), channel_gap("ACT", "PRE"));
        assert_eq!(
            t.column_command_cycles.unwrap_or(1),
            channel_gap("RD", "PRE"),
            "{d}"
        );
        // Mapping: our decode against Ramulator's RoBaRaCoCh bit fields (LSB first).
        let layout: Vec<(String, u32)> = golden()["devices"][d]["address_mapping_RoBaRaCoCh"]
            ["lsb_to_msb"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let (name, bits) = f.as_str().unwrap().split_once(':').unwrap();
                (name.to_string(), bits.parse().unwrap())
            })
            .collect();
        let m = AddressMapping::parse(&spec.controller.address_mapping, o).unwrap();
        let mut rng = SplitMix64(d.len() as u64);
        let (addr_bits, _, _) = geometry(d);
        for _ in 0..10_000 {
            let addr = (rng.next() >> (64 - (addr_bits - 6))) << 6;
            let (mut x, mut field) = (addr, std::collections::BTreeMap::new());
            for (name, bits) in &layout {
                field.insert(name.as_str(), (x & ((1 << bits) - 1)) as u32);
                x >>= bits;
            }
            let l = m.decode(addr);
            let get = |k: &str| field.get(k).copied().unwrap_or(0);
            assert_eq!(l.channel, get("channel"));
            assert_eq!(l.pc, get("pseudochannel"));
            assert_eq!(l.rank, get("rank"));
            assert_eq!(l.bg, get("bankgroup"));
            assert_eq!(l.bank, get("bank"));
            assert_eq!(l.row, get("row"));
            // Ramulator's HBM3 columns are 32 B; ours are the 64 B accesses.
            let per = if d == "hbm3" { 2 } else { 1 };
            assert_eq!(l.col * per, get("column"), "{d} {addr:#x}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The comparison.

/// One run's figures, as summary.json defines them.
#[derive(Clone, Copy)]
struct Figures {
    gbs: f64,
    latency: f64,
    hits: u64,
    misses: u64,
    conflicts: u64,
    cycles: u64,
}

fn err(ours: f64, theirs: f64) -> f64 {
    ours / theirs - 1.0
}

/// Ours: bandwidth = trace requests x 64 B over our run (cycle 0 to the end of the last data
/// beat); mean read latency = arrival to the end of the last data beat (RD + tCL + burst),
/// plus one cycle: Ramulator labels a request's arrival with the controller cycle before the
/// first one in which it can be scheduled, we label it with that cycle, so for the same
/// schedule its latency is ours + 1.
fn ours(r: &DramReport, requests: u64) -> Figures {
    let tck_ns = r.time_ns / r.cycles as f64;
    Figures {
        gbs: requests as f64 * 64.0 / (r.cycles as f64 * tck_ns),
        latency: r.read_latency.mean_cycles.unwrap() + 1.0,
        hits: r.row_hits,
        misses: r.row_misses,
        conflicts: r.row_conflicts,
        cycles: r.cycles,
    }
}

/// Ramulator's, from summary.json.
fn theirs(case: &str) -> Figures {
    let c = &golden()["cases"][case];
    let u = |k: &str| c[k].as_u64().unwrap();
    Figures {
        gbs: c["bandwidth_GBps"].as_f64().unwrap(),
        latency: c["mean_read_latency_cycles"].as_f64().unwrap(),
        hits: u("row_hits"),
        misses: u("row_misses"),
        conflicts: u("row_conflicts"),
        cycles: u("memory_cycles"),
    }
}

/// Ramulator's front end offers one trace line per front-end tick: every memory cycle, or
/// every 100th with the sparse cases' clock ratio 1:100.
fn injection(pattern: &str) -> Injection {
    if pattern == "sparse" {
        Injection::Every(100)
    } else {
        Injection::PerCycle(1)
    }
}

/// The presets, and variants that undo one Ramulator-matching setting each (to show what it
/// does).
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Presets,
    /// Our default controller: row hits first, no activated buffer.
    RowHitFirst,
    /// Every command one cycle on the bus.
    OneCycleCommands,
    /// Ramulator's nominal 32-entry queues (and activated buffer), not the 33 it holds.
    Queues32,
    /// HBM3 refreshed all-bank at the preset's tREFI / tRFC, as Ramulator 2.0 does not.
    HbmRefresh,
}

const VARIANTS: [(Variant, &str); 4] = [
    (Variant::RowHitFirst, "row-hit-first, no activated buffer"),
    (Variant::OneCycleCommands, "one-cycle commands"),
    (Variant::Queues32, "32-entry queues"),
    (Variant::HbmRefresh, "HBM3 refreshed"),
];

fn spec_for(device: &str, v: Variant) -> Option<DramSpec> {
    let mut spec = DramSpec::preset(preset_of(device)).unwrap();
    let c = &mut spec.controller;
    match v {
        Variant::Presets => {}
        Variant::RowHitFirst => {
            c.scheduler = cascade::dram::Scheduler::RowHitFirst;
            c.active_buffer = 0;
        }
        Variant::OneCycleCommands => {
            spec.timing.act_command_cycles = None;
            spec.timing.column_command_cycles = None;
        }
        Variant::Queues32 => {
            c.read_queue = 32;
            c.write_queue = 32;
            c.active_buffer = 32;
            c.write_high_watermark = 0.8;
            c.write_low_watermark = 0.2;
        }
        Variant::HbmRefresh => {
            if device != "hbm3" {
                return None;
            }
            spec.refresh.mode = cascade::dram::RefreshMode::AllBank;
        }
    }
    spec.validate().unwrap();
    Some(spec)
}

fn run_case(spec: &DramSpec, device: &str, pattern: &str, n: u64, log: bool) -> DramOutput {
    let opts = SimOptions {
        log,
        injection: injection(pattern),
    };
    simulate(spec, trace(device, pattern, n), &opts).unwrap()
}

struct Row {
    case: String,
    ours: Figures,
    theirs: Figures,
    /// Per entry of VARIANTS (None: not applicable).
    variants: Vec<Option<Figures>>,
}

fn rows() -> &'static [Row] {
    static ROWS: OnceLock<Vec<Row>> = OnceLock::new();
    ROWS.get_or_init(|| {
        let mut out = Vec::new();
        for d in DEVICES {
            for p in PATTERNS {
                let n = requests_of(p);
                let fig =
                    |v| spec_for(d, v).map(|spec| ours(&run_case(&spec, d, p, n, false).report, n));
                let case = format!("{d}_{p}");
                out.push(Row {
                    ours: fig(Variant::Presets).unwrap(),
                    theirs: theirs(&case),
                    variants: VARIANTS.iter().map(|&(v, _)| fig(v)).collect(),
                    case,
                });
            }
        }
        out
    })
}

// ---------------------------------------------------------------------------------------------
// Command by command, on the recorded 2000-request prefixes.

/// A command in Ramulator's TraceRecorder form, reduced to what both logs name: PRE its bank,
/// PREA and REF their rank (Ramulator's PRE carries the requesting request's row and column,
/// ours the row it closes).
fn key(line: &str) -> Option<String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let n = match *fields.get(1)? {
        "PRE" => 6,
        "PREA" | "REFab" => 4,
        _ => 8,
    };
    (fields.len() == 8).then(|| fields[..n].join(","))
}

struct Cmds {
    case: String,
    /// Commands in Ramulator's prefix trace (it stops when its last request is accepted).
    ramulator: usize,
    /// Leading commands that are the same in both (cycle, command, address).
    identical: usize,
    /// The first difference: (Ramulator's line, ours).
    first_difference: Option<(String, String)>,
}

fn command_rows() -> &'static [Cmds] {
    static ROWS: OnceLock<Vec<Cmds>> = OnceLock::new();
    ROWS.get_or_init(|| {
        let mut out = Vec::new();
        for d in DEVICES {
            for p in PATTERNS {
                let case = format!("{d}_{p}");
                let mut text = String::new();
                let gz =
                    std::fs::File::open(format!("reports/golden/ramulator2/prefix/{case}.cmds.gz"))
                        .unwrap();
                std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gz), &mut text)
                    .unwrap();
                let theirs: Vec<&str> = text.lines().collect();
                let spec = spec_for(d, Variant::Presets).unwrap();
                let log = run_case(&spec, d, p, 2000, true).log.unwrap();
                // Ours in Ramulator's form: its cycle 1 is our cycle 0; HBM3 columns in 32 B.
                let ours: Vec<String> = log
                    .commands
                    .iter()
                    .map(|c| {
                        let name = match c.kind.name() {
                            "REF" => "REFab",
                            k => k,
                        };
                        let level = if d == "hbm3" { c.pc } else { c.rank };
                        let col = if d == "hbm3" { 2 * c.col } else { c.col };
                        format!(
                            "{}, {name}, {}, {level}, {}, {}, {}, {col}",
                            c.cycle + 1,
                            c.channel,
                            c.bg,
                            c.bank,
                            c.row
                        )
                    })
                    .collect();
                let mut identical = 0;
                let mut first_difference = None;
                for (i, t) in theirs.iter().enumerate() {
                    let same = key(t).is_some() && key(t) == ours.get(i).and_then(|o| key(o));
                    if same {
                        identical += 1;
                    } else {
                        first_difference =
                            Some((t.to_string(), ours.get(i).cloned().unwrap_or_default()));
                        break;
                    }
                }
                out.push(Cmds {
                    case,
                    ramulator: theirs.len(),
                    identical,
                    first_difference,
                });
            }
        }
        out
    })
}

/// Our command stream is Ramulator's, command for command, over each recorded prefix, except
/// that DDR5's may part from it once the first refresh falls due: Ramulator's refresh timer
/// fires on its nREFI-th controller tick, ours at cycle tREFI counted from 0, one cycle later.
#[test]
fn the_command_streams_are_ramulators() {
    for c in command_rows() {
        let Some((theirs, ours)) = &c.first_difference else {
            assert_eq!(c.identical, c.ramulator);
            continue;
        };
        assert!(c.case.starts_with("ddr5"), "{}: {theirs} | {ours}", c.case);
        let refi = DramSpec::preset(preset_of("ddr5")).unwrap().refresh.refi as u64;
        let cycle = |l: &str| l.split(',').next().unwrap().trim().parse::<u64>().unwrap();
        assert!(
            cycle(theirs).min(cycle(ours)) >= refi,
            "{}: parts before the first refresh: {theirs} | {ours}",
            c.case
        );
    }
}

/// The issue's bounds (bandwidth within 5%, mean read latency within 10%), which every case
/// meets, and the row-buffer outcomes within 0.1% of the requests plus the 66 requests
/// Ramulator leaves queued when it stops.
#[test]
fn every_case_is_within_the_issue_bounds() {
    for r in rows() {
        let bw = err(r.ours.gbs, r.theirs.gbs);
        let lat = err(r.ours.latency, r.theirs.latency);
        assert!(
            bw.abs() <= 0.05,
            "{}: bandwidth {:+.2}%",
            r.case,
            bw * 100.0
        );
        assert!(
            lat.abs() <= 0.10,
            "{}: latency {:+.2}%",
            r.case,
            lat * 100.0
        );
        let requests = r.ours.hits + r.ours.misses + r.ours.conflicts;
        let slack = requests / 1000 + 66;
        for (what, o, t) in [
            ("hits", r.ours.hits, r.theirs.hits),
            ("misses", r.ours.misses, r.theirs.misses),
            ("conflicts", r.ours.conflicts, r.theirs.conflicts),
        ] {
            assert!(o.abs_diff(t) <= slack, "{}: row {what} {o} vs {t}", r.case);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The report.

fn pct(x: f64) -> String {
    format!("{:+.1}%", x * 100.0)
}

fn render() -> String {
    let g = golden();
    let mut s = String::from(
        "# cascade's DRAM model against Ramulator 2.0\n\n\
         Generated by `cargo test --release --test golden_ramulator -- --ignored regenerate` \
         (and checked by every `cargo test` run) from `reports/golden/ramulator2/` (Ramulator \
         2.0 v2.0a's outputs, recorded by `scripts/peers/ramulator2/run_all.sh`; its README \
         explains every figure) and `cascade::dram` run on the same request streams. Issue 11 \
         item 6; the bounds are bandwidth within 5% and mean read latency within 10%.\n\n\
         ## How\n\n\
         * **Memory and controller**: the presets `ddr5_3200_ramulator` (DDR5_3200AN + \
         DDR5_16Gb_x8, one 32-bit sub-channel, one rank, all-bank refresh) and \
         `hbm3_2gbps_ramulator` (HBM3_2Gbps + HBM3_8Gb, one channel of two pseudo-channels, no \
         refresh: Ramulator 2.0 issues none on HBM3). Every organisation and timing figure is \
         checked against the spec Ramulator resolved (`timings.json`) and the address mapping \
         against its RoBaRaCoCh bit layout (`the_presets_are_what_ramulator_simulated`). Their \
         `[controller]` is Ramulator's generic controller: the `first_ready` scheduler (the \
         oldest request whose next command can issue, whatever its kind), an activated buffer \
         of 33 (a request whose ACT issued frees its queue slot and is served first), 33-entry \
         read and write queues per channel (Ramulator's `size <= 32` test), one command per \
         cycle, and DDR5's two-cycle ACT/RD/WR and HBM3's two-cycle ACT.\n\
         * **Requests**: the twelve traces of `scripts/peers/ramulator2/traces.py`, regenerated \
         in Rust and checked against the sha256 Ramulator's files had \
         (`the_traces_are_the_ones_ramulator_ran`); one request offered per memory cycle \
         (`Injection::PerCycle(1)`), `sparse` one per 100 cycles (`Injection::Every(100)`).\n\
         * **Bandwidth** (summary.json's definition): trace requests x 64 B / (cycles x tCK). \
         Ramulator's cycles end when its last request is accepted (it stops with up to 33 \
         reads and 33 writes queued); ours are our report's `cycles`, which end with the last \
         data beat of the whole trace, so ours include the drain of those last requests (see \
         the memory cycles below).\n\
         * **Mean read latency** (summary.json's `mean_read_latency_cycles`): Ramulator sums, \
         over its served reads, RD issue + nCL + nBL - arrival, and divides by the RDs issued; \
         ours is our report's mean read latency (arrival to the end of the last data beat, the \
         same RD + tCL + burst) **plus one cycle**: Ramulator labels a request's arrival with \
         the controller cycle before the first one in which it can be scheduled, we label it \
         with that cycle, so for the same schedule Ramulator's latency is ours + 1.\n\
         * **Row hits / misses / conflicts**: both classify a request by its first command (a \
         column command, ACT or PRE); Ramulator leaves out the requests still queued when it \
         stops.\n\n\
         ## Results\n\n\
         | case | memory cycles Ramulator / ours | GB/s Ramulator | GB/s ours | error | mean read latency, cycles, Ramulator | ours | error | row hits / misses / conflicts, Ramulator | ours |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let rows = rows();
    for r in rows {
        let (o, t) = (&r.ours, &r.theirs);
        s += &format!(
            "| {} | {} / {} | {:.3} | {:.3} | {} | {:.1} | {:.1} | {} | {} / {} / {} | {} / {} / {} |\n",
            r.case,
            t.cycles,
            o.cycles,
            t.gbs,
            o.gbs,
            pct(err(o.gbs, t.gbs)),
            t.latency,
            o.latency,
            pct(err(o.latency, t.latency)),
            t.hits,
            t.misses,
            t.conflicts,
            o.hits,
            o.misses,
            o.conflicts,
        );
    }
    let worst = |f: fn(&Row) -> f64| rows.iter().map(f).fold(0.0f64, |a, b| a.max(b.abs()));
    s += &format!(
        "\nEvery case is within the issue's bounds (`every_case_is_within_the_issue_bounds`): \
         the largest bandwidth error is {:.2}%, the largest latency error {:.2}%. The \
         row-buffer outcomes differ by about the requests Ramulator leaves queued at its end, \
         and our runs are up to {:.2}% longer because they also serve those.\n\n",
        100.0 * worst(|r| err(r.ours.gbs, r.theirs.gbs)),
        100.0 * worst(|r| err(r.ours.latency, r.theirs.latency)),
        100.0 * worst(|r| err(r.ours.cycles as f64, r.theirs.cycles as f64)),
    );

    s += "## Command by command\n\n\
          Our command log for each trace's first 2000 requests against Ramulator's \
          (`prefix/<case>.cmds.gz`, its TraceRecorder), cycle by cycle: same cycle (its cycle 1 \
          is our cycle 0), command and address (PRE: the bank; PREA and REF: the rank). \
          Ramulator's log ends when its last request is accepted; ours is compared up to there \
          (`the_command_streams_are_ramulators`).\n\n\
          | case | Ramulator's commands | identical from the start | first difference (Ramulator / ours) |\n\
          |---|---:|---:|---|\n";
    for c in command_rows() {
        s += &format!(
            "| {} | {} | {} | {} |\n",
            c.case,
            c.ramulator,
            c.identical,
            match &c.first_difference {
                None => "none".to_string(),
                Some((t, o)) => format!("`{t}` / `{o}`"),
            }
        );
    }
    s += "\nNine of the twelve streams are Ramulator's command for command. The other three \
          part at the first DDR5 refresh: Ramulator's refresh timer fires on its nREFI-th \
          controller tick (cycle 6222 in its numbering), ours at cycle tREFI counted from 0 \
          (6223 in its numbering), so around each refresh the two issue a command or two one \
          cycle apart and the streams drift apart; the figures above (whole runs) show that \
          this moves nothing measurable. We did not shift our refresh phase to match: it is a \
          labelling convention, not a timing rule.\n\n";

    s += "## What each Ramulator setting does\n\n\
          The same runs with one of the presets' Ramulator-matching settings undone (error \
          against Ramulator, bandwidth / mean read latency): `row-hit-first` is our default \
          controller (row hits before older row commands, a request holds its queue slot until \
          its column command); `one-cycle commands` drops the two-cycle ACT (and DDR5 RD/WR); \
          `32-entry queues` uses the size Ramulator's configs name rather than the 33 it holds; \
          `HBM3 refreshed` refreshes HBM3 all-bank every tREFI = 3.9 us for tRFC = 350 ns, as a \
          real HBM3 must and Ramulator 2.0 does not.\n\n| case |";
    for (_, name) in VARIANTS {
        s += &format!(" {name} |");
    }
    s += "\n|---|";
    for _ in VARIANTS {
        s += "---:|";
    }
    s += "\n";
    for r in rows {
        s += &format!("| {} |", r.case);
        for v in &r.variants {
            s += &match v {
                None => " |".to_string(),
                Some(f) => format!(
                    " {} / {} |",
                    pct(err(f.gbs, r.theirs.gbs)),
                    pct(err(f.latency, r.theirs.latency))
                ),
            };
        }
        s += "\n";
    }
    s += "\nWhat they show:\n\n\
          * **Scheduler.** With row hits first, `hbm3_pingpong` doubles its bandwidth: \
          Ramulator's first-ready FR-FCFS lets the older request of the other row precharge as \
          soon as tRAS (17 cycles) allows, which with 4-cycle bursts leaves about two hits per \
          activation, while row-hit-first serves every queued hit first. On DDR5 tRAS is 52 \
          cycles, so about 65 hits pass either way. Without the activated buffer a request \
          keeps its queue slot until its column command, so a saturated controller holds fewer \
          requests and its latency is lower (Little's law: -6% on `ddr5_random` and \
          `hbm3_random`). Both are controller policies, not device rules; our default stays \
          row-hit-first, the Ramulator presets select Ramulator's.\n\
          * **Two-cycle commands.** Random traffic on HBM3 needs three commands (PRE, ACT, RD) \
          per 64 B while the two pseudo-channels move 64 B every 2 cycles, so one command per \
          cycle already limits it; an ACT that holds the row bus two cycles limits it more \
          (23% of bandwidth). DDR5's two-cycle commands cost `ddr5_random` 5%. These are JEDEC \
          rules (DDR5's ACT, RD and WR are two-cycle commands; HBM's ACT takes two row-bus \
          cycles), now part of the model.\n\
          * **Queue size.** Little's law: at a saturated queue the latency is proportional to \
          the requests held, 66 vs 64 with the activated buffer (3%).\n\
          * **Refresh.** Refreshing HBM3 costs about 9% (tRFC / tREFI) and makes the unloaded \
          latency of `hbm3_sparse` 68% longer (a request arriving during a refresh waits for \
          it): the figures above are only comparable with HBM3 refresh off.\n\n";

    s += "## What remains different\n\n\
          * The refresh phase (above): DDR5 command streams part at the first refresh; no \
          measurable effect.\n\
          * The end of a run: Ramulator stops when its last request is accepted, we serve the \
          whole trace (longer runs by the drain, a few more row outcomes counted).\n\
          * Not compared: energy (not among Ramulator's recorded outputs), and everything \
          the traces do not exercise (several ranks, per-bank refresh, closed page, writes \
          except in `rwmix`).\n\n";

    s += "## Speed\n\n";
    match std::fs::read_to_string(SPEED) {
        Err(_) => s += "Not measured yet: run `... -- --ignored speed`.\n",
        Ok(text) => {
            let sp: serde_json::Value = serde_json::from_str(&text).unwrap();
            s += &format!(
                "{}\n\n| trace | requests | Ramulator CPU s (median of 5) | Ramulator requests per CPU s | ours, CPU s, `simulate` (median of {}) | requests per CPU s | ours, CPU s, `run_trace` on the trace file | requests per CPU s | ours / Ramulator (`run_trace`) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
                sp["how"].as_str().unwrap(),
                sp["repeats"]
            );
            for case in ["hbm3_random", "ddr5_random"] {
                let c = &g["cases"][case];
                let o = &sp["cases"][case];
                let f = |v: &serde_json::Value| v.as_f64().unwrap();
                s += &format!(
                    "| {case} | {} | {:.3} | {:.0} | {:.3} | {:.0} | {:.3} | {:.0} | {:.1}x |\n",
                    c["requests"],
                    f(&c["cpu_seconds"]),
                    f(&c["sim_requests_per_cpu_second"]),
                    f(&o["simulate_cpu_seconds"]),
                    f(&o["simulate_requests_per_cpu_second"]),
                    f(&o["run_trace_cpu_seconds"]),
                    f(&o["run_trace_requests_per_cpu_second"]),
                    f(&o["run_trace_requests_per_cpu_second"])
                        / f(&c["sim_requests_per_cpu_second"]),
                );
            }
            s += &format!(
                "\nMachine: {} ({} cores), load average {} when measured; Ramulator's figures \
                 were recorded on {} ({} cores) as `reports/golden/ramulator2/README.md` \
                 describes (whole process: start, trace parsing, simulation). Ramulator run \
                 again by hand on this machine when ours was measured (`/usr/bin/time`, 3 runs): \
                 0.83-0.86 CPU s on hbm3_random, 1.87-1.95 on ddr5_random, within 6% of the \
                 recorded medians.\n",
                sp["machine"]["cpu"].as_str().unwrap(),
                sp["machine"]["cores"],
                sp["machine"]["load_average"].as_str().unwrap(),
                g["machine"]["cpu"].as_str().unwrap(),
                g["machine"]["cores"],
            );
        }
    }
    s
}

#[test]
fn the_ramulator_comparison_is_current() {
    let committed = std::fs::read_to_string(REPORT).unwrap_or_default();
    assert!(
        render() == committed,
        "{REPORT} is stale: run `cargo test --release --test golden_ramulator -- --ignored regenerate`"
    );
}

#[test]
#[ignore]
fn regenerate() {
    std::fs::write(REPORT, render()).unwrap();
}

/// CPU seconds of this thread.
#[cfg(unix)]
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass and reads nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Our speed on the hbm3_random and ddr5_random traces, next to Ramulator's recorded
/// requests per CPU second: CPU time of the simulating thread, median of 5 runs, for
/// `simulate` on the regenerated accesses and for `run_trace` on the trace file (parsing
/// included, as in Ramulator's figure). Writes reports/memory/ramulator_speed.json; run
/// alone on a quiet machine: `cargo test --release --test golden_ramulator -- --ignored speed
/// --test-threads 1`, then `regenerate`.
#[cfg(unix)]
#[test]
#[ignore]
fn speed() {
    const REPEATS: usize = 5;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let dir = std::env::temp_dir().join(format!("cascade-ramulator-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cases = serde_json::Map::new();
    for case in ["hbm3_random", "ddr5_random"] {
        let (d, p) = case.split_once('_').unwrap();
        let spec = spec_for(d, Variant::Presets).unwrap();
        let n = requests_of(p);
        let acc = trace(d, p, n);
        let path = dir.join(format!("{case}.trace"));
        std::fs::write(&path, trace_text(&acc)).unwrap();
        let opts = SimOptions {
            log: false,
            injection: injection(p),
        };
        let (mut sim, mut file) = (Vec::new(), Vec::new());
        for _ in 0..REPEATS {
            let acc = acc.clone();
            let t0 = thread_cpu_seconds();
            let r = simulate(&spec, acc, &opts).unwrap();
            sim.push(thread_cpu_seconds() - t0);
            std::hint::black_box(r);
            let t0 = thread_cpu_seconds();
            let r = cascade::dram::run_trace(&spec, &path, &opts).unwrap();
            file.push(thread_cpu_seconds() - t0);
            std::hint::black_box(r);
        }
        let (s, f) = (median(sim.clone()), median(file.clone()));
        println!("{case}: simulate {s:.3} CPU s, run_trace {f:.3} CPU s");
        cases.insert(
            case.into(),
            serde_json::json!({
                "requests": n,
                "simulate_cpu_seconds": s,
                "simulate_cpu_seconds_runs": sim,
                "simulate_requests_per_cpu_second": n as f64 / s,
                "run_trace_cpu_seconds": f,
                "run_trace_cpu_seconds_runs": file,
                "run_trace_requests_per_cpu_second": n as f64 / f,
            }),
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split_once(':').unwrap().1.trim().to_string())
        })
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let out = serde_json::json!({
        "_about": "cascade::dram's speed on two of the Ramulator golden traces; written by `cargo test --release --test golden_ramulator -- --ignored speed`, rendered into reports/memory/ramulator.md",
        "how": "CPU seconds of the simulating thread (clock_gettime(CLOCK_THREAD_CPUTIME_ID)), release build, median of 5 runs: `simulate` on the accesses already in memory (the model alone), and `run_trace` on the trace file Ramulator read (file reading and parsing included, as in Ramulator's whole-process CPU time).",
        "repeats": REPEATS,
        "machine": {
            "cpu": cpu,
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "load_average": load,
        },
        "cases": cases,
    });
    std::fs::write(SPEED, serde_json::to_string_pretty(&out).unwrap() + "\n").unwrap();
}
