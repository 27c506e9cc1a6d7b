//! The DRAM model's acceptance tests: the checker accepts every schedule the controller makes
//! and refuses each kind of violation; refresh every tREFI; determinism; FR-FCFS order;
//! bandwidth and row-hit sanity; spec errors that name their field.

use super::*;

fn preset(name: &str) -> DramSpec {
    DramSpec::preset(name).unwrap()
}

/// A preset cut down to `channels` channels (keeps tests fast).
fn small(name: &str, channels: u32) -> DramSpec {
    let mut s = preset(name);
    s.organization.channels = channels;
    s
}

fn logged() -> SimOptions {
    SimOptions {
        log: true,
        injection: Injection::Unlimited,
    }
}

fn run(spec: &DramSpec, w: &Workload, opts: &SimOptions) -> DramOutput {
    run_workload(spec, w, opts).unwrap()
}

#[test]
fn presets_validate_and_give_their_peak() {
    for (name, _) in PRESETS {
        let s = preset(name);
        assert!(s.peak_bandwidth() > 0.0, "{name}");
    }
    let gbs = |n: &str| preset(n).peak_bandwidth() / 1e9;
    assert!(
        (gbs("hbm3_h100") - 3351.0).abs() < 1.0,
        "{}",
        gbs("hbm3_h100")
    );
    assert!((gbs("hbm3e_h200") - 4800.0).abs() < 1.0);
    assert!((gbs("ddr5_4800") - 38.4).abs() < 0.01);
    assert!((gbs("lpddr5_6400") - 51.2).abs() < 0.01);
    assert!((gbs("hbm3_2gbps_ramulator") - 32.0).abs() < 0.01);
    assert!((gbs("ddr5_3200_ramulator") - 12.8).abs() < 0.01);
    // Capacity: 80 GB on the H100, 144 GB built on the H200.
    assert_eq!(preset("hbm3_h100").capacity_bytes(), 80 << 30);
    assert_eq!(preset("hbm3e_h200").capacity_bytes(), 144 << 30);
    assert_eq!(preset("hbm3_h100").access_bytes(), 32);
    assert_eq!(preset("ddr5_4800").access_bytes(), 64);
}

fn workloads() -> Vec<(&'static str, Workload)> {
    vec![
        (
            "stream",
            Workload::new(Pattern::Streaming { bytes: 1 << 20 }),
        ),
        (
            "random",
            Workload::new(Pattern::Random {
                footprint: 1 << 30,
                requests: 6000,
            })
            .seed(7),
        ),
        (
            "mix",
            Workload::new(Pattern::Random {
                footprint: 1 << 22,
                requests: 6000,
            })
            .read_fraction(0.6)
            .seed(3),
        ),
        (
            "stream-rw",
            Workload::new(Pattern::Streaming { bytes: 1 << 20 })
                .read_fraction(0.7)
                .seed(1),
        ),
        (
            "conflict",
            Workload::new(Pattern::BankConflict { requests: 400 }).read_fraction(0.8),
        ),
    ]
}

#[test]
fn checker_accepts_every_schedule_of_every_preset_and_pattern() {
    for (name, _) in PRESETS {
        for policy in [PagePolicy::Open, PagePolicy::Closed] {
            let mut spec = small(name, 4);
            spec.controller.page_policy = policy;
            for (label, w) in workloads() {
                let out = run(&spec, &w, &logged());
                let log = out.log.as_ref().unwrap();
                assert!(!log.commands.is_empty());
                if let Err(v) = check_log(&spec, log) {
                    panic!("{name} {policy} {label}: {v}");
                }
                let r = &out.report;
                assert_eq!(r.accesses + r.forwarded_reads, {
                    let per = w.request_bytes.div_ceil(spec.access_bytes()).max(1);
                    w.requests() * per
                });
                assert_eq!(r.row_hits + r.row_misses + r.row_conflicts, r.accesses);
                assert!(r.energy.pj_per_bit.is_finite() && r.energy.pj_per_bit > 0.0);
            }
        }
    }
}

#[test]
fn checker_accepts_a_split_bus_with_many_ranks() {
    // Two ranks per pseudo-channel exercise rank switching (tRTRS) and per-rank refresh.
    let mut spec = small("hbm3_h100", 2);
    spec.organization.ranks = 2;
    spec.organization.banks_per_group = 4;
    spec.timing.rtrs = Some(2);
    for (label, w) in workloads() {
        let out = run(&spec, &w, &logged());
        if let Err(v) = check_log(&spec, out.log.as_ref().unwrap()) {
            panic!("{label}: {v}");
        }
    }
    let mut spec = small("ddr5_4800", 1);
    spec.organization.ranks = 2;
    for (label, w) in workloads() {
        let out = run(&spec, &w, &logged());
        if let Err(v) = check_log(&spec, out.log.as_ref().unwrap()) {
            panic!("ddr5 2 ranks {label}: {v}");
        }
    }
}

/// A one-channel, one-rank toy memory with easy numbers for hand-made logs.
fn toy() -> DramSpec {
    let text = r#"
name = "toy"
[organization]
channels = 1
pseudo_channels = 1
ranks = 1
bank_groups = 2
banks_per_group = 4
rows = 1024
columns = 64
bus_width_bits = 64
burst_length = 8
transfers_per_clock = 2
[timing]
tCK_ns = 1.0
tCL = 10
tCWL = 8
tRCD = 10
tRP = 10
tRAS = 24
tRC = 40
tWR = 12
tRTP = 5
tCCD_S = 4
tCCD_L = 6
tRRD_S = 3
tRRD_L = 5
tFAW = 20
tWTR_S = 3
tWTR_L = 7
tRTW = 9
[refresh]
tREFI = 1000
tRFC = 100
postpone_max = 2
[energy]
act_pj = 1.0
rd_pj = 1.0
wr_pj = 1.0
ref_pj = 1.0
io_pj_per_bit = 1.0
[controller]
address_mapping = "RoBaRaCoCh"
read_queue = 32
write_queue = 32
write_high_watermark = 0.8
write_low_watermark = 0.2
page_policy = "open"
command_bus = "shared"
"#;
    DramSpec::from_toml(text).unwrap()
}

fn cmd(cycle: u64, kind: CommandKind, bg: u8, bank: u8, row: u32) -> Command {
    Command {
        cycle,
        channel: 0,
        pc: 0,
        rank: 0,
        bg,
        bank,
        row,
        col: 0,
        kind,
    }
}

fn log_of(commands: Vec<Command>, end: u64) -> CommandLog {
    CommandLog {
        commands,
        end_cycle: end,
    }
}

#[test]
fn checker_refuses_each_kind_of_violation() {
    use CommandKind::*;
    let spec = toy();
    // A valid base: ACT, RD, WR, PRE on bank (0,0).
    let ok = vec![
        cmd(0, Act, 0, 0, 1),
        cmd(10, Rd, 0, 0, 1),
        cmd(19, Wr, 0, 0, 1),
        cmd(47, Pre, 0, 0, 1),
        cmd(57, Act, 0, 0, 2),
    ];
    check_log(&spec, &log_of(ok, 100)).unwrap();

    let cases: Vec<(&str, Vec<Command>, u64)> = vec![
        // ACT -> RD before tRCD (10).
        ("tRCD", vec![cmd(0, Act, 0, 0, 1), cmd(9, Rd, 0, 0, 1)], 50),
        // ACT -> PRE before tRAS (24).
        (
            "tRAS",
            vec![cmd(0, Act, 0, 0, 1), cmd(23, Pre, 0, 0, 1)],
            50,
        ),
        // PRE -> ACT before tRP (10).
        (
            "tRP",
            vec![
                cmd(0, Act, 0, 0, 1),
                cmd(30, Pre, 0, 0, 1),
                cmd(39, Act, 0, 0, 2),
            ],
            50,
        ),
        // ACT -> ACT same bank before tRC (40), tRAS + tRP (34) satisfied.
        (
            "tRC",
            vec![
                cmd(0, Act, 0, 0, 1),
                cmd(24, Pre, 0, 0, 1),
                cmd(39, Act, 0, 0, 2),
            ],
            50,
        ),
        // ACT -> ACT same group before tRRD_L (5).
        (
            "tRRD_L",
            vec![cmd(0, Act, 0, 0, 1), cmd(4, Act, 0, 1, 1)],
            50,
        ),
        // ACT -> ACT other group before tRRD_S (3).
        (
            "tRRD_S",
            vec![cmd(0, Act, 0, 0, 1), cmd(2, Act, 1, 0, 1)],
            50,
        ),
        // Five ACTs within tFAW (20): the fifth at 19.
        (
            "tFAW",
            vec![
                cmd(0, Act, 0, 0, 1),
                cmd(5, Act, 0, 1, 1),
                cmd(10, Act, 0, 2, 1),
                cmd(15, Act, 0, 3, 1),
                cmd(19, Act, 1, 0, 1),
            ],
            50,
        ),
        // RD -> RD same group before tCCD_L (6).
        (
            "tCCD_L",
            vec![
                cmd(0, Act, 0, 0, 1),
                cmd(5, Act, 0, 1, 1),
                cmd(15, Rd, 0, 0, 1),
                cmd(20, Rd, 0, 1, 1),
            ],
            50,
        ),
        // RD -> RD other group before tCCD_S (4); the data bus would also refuse 3 (BL 4).
        (
            "tCCD_S",
            vec![
                cmd(0, Act, 0, 0, 1),
                cmd(3, Act, 1, 0, 1),
                cmd(13, Rd, 0, 0, 1),
                cmd(16, Rd, 1, 0, 1),
            ],
            50,
        ),
        // WR -> RD same group before tCWL + BL + tWTR_L (8 + 4 + 7 = 19).
        (
            "tWTR_L",
            vec![
                cmd(0, Act, 0, 0, 1),
                cmd(10, Wr, 0, 0, 1),
                cmd(28, Rd, 0, 0, 1),
            ],
            50,
        ),
        // WR -> RD other group before tCWL + BL + tWTR_S (8 + 4 + 3 = 15).
        (
            "tWTR_S",
            vec![
                cmd(0, Act, 0, 0, 1),
                cmd(3, Act, 1, 0, 1),
                cmd(13, Wr, 0, 0, 1),
                cmd(27, Rd, 1, 0, 1),
            ],
            60,
        ),
        // RD -> WR before tRTW (9).
        (
            "tRTW",
            vec![
                cmd(0, Act, 0, 0, 1),
                cmd(3, Act, 1, 0, 1),
                cmd(13, Rd, 0, 0, 1),
                cmd(21, Wr, 1, 0, 1),
            ],
            60,
        ),
        // RD -> PRE before tRTP (5), tRAS satisfied.
        (
            "tRTP",
            vec![
                cmd(0, Act, 0, 0, 1),
                cmd(30, Rd, 0, 0, 1),
                cmd(34, Pre, 0, 0, 1),
            ],
            60,
        ),
        // WR -> PRE before tCWL + BL + tWR (8 + 4 + 12 = 24).
        (
            "tWR",
            vec![
                cmd(0, Act, 0, 0, 1),
                cmd(10, Wr, 0, 0, 1),
                cmd(33, Pre, 0, 0, 1),
            ],
            60,
        ),
        // RDA's auto-precharge: ACT too soon after it (RDA at 24: PRE at max(29, 24) + tRP 10).
        (
            "tRP",
            vec![
                cmd(0, Act, 0, 0, 1),
                cmd(24, Rda, 0, 0, 1),
                cmd(38, Act, 0, 0, 2),
            ],
            60,
        ),
        // REF -> ACT before tRFC (100).
        (
            "tRFC",
            vec![cmd(10, Ref, 0, 0, 0), cmd(109, Act, 0, 0, 1)],
            200,
        ),
        // REF with a bank open.
        (
            "row open",
            vec![cmd(0, Act, 0, 0, 1), cmd(40, Ref, 0, 0, 0)],
            200,
        ),
        // RD to a row that is not open.
        (
            "row open",
            vec![cmd(0, Act, 0, 0, 1), cmd(10, Rd, 0, 0, 2)],
            50,
        ),
        // Two commands in one cycle on a shared bus.
        (
            "command bus",
            vec![cmd(0, Act, 0, 0, 1), cmd(0, Act, 1, 0, 1)],
            50,
        ),
        // Commands out of issue order.
        (
            "order",
            vec![cmd(10, Act, 0, 0, 1), cmd(5, Act, 1, 0, 1)],
            50,
        ),
        // Refresh: none by cycle 4000 with tREFI 1000 and 2 postponable.
        ("refresh interval", vec![cmd(0, Act, 0, 0, 1)], 4000),
        // Refresh: two REFs more than (2 + 1) x tREFI apart.
        (
            "refresh interval",
            vec![cmd(500, Ref, 0, 0, 0), cmd(3600, Ref, 0, 0, 0)],
            3700,
        ),
    ];
    for (want, commands, end) in cases {
        let v = check_log(&spec, &log_of(commands.clone(), end))
            .expect_err(&format!("{want}: {commands:?} passed"));
        assert_eq!(v.constraint, want, "{v}");
        assert!(!v.to_string().is_empty());
    }

    // The data bus: with tRTW shrunk to 1, a WR whose burst starts inside a read's burst.
    let mut s = toy();
    s.timing.rtw = 1;
    let v = check_log(
        &s,
        &log_of(
            vec![
                cmd(0, Act, 0, 0, 1),
                cmd(3, Act, 1, 0, 1),
                cmd(13, Rd, 0, 0, 1),
                cmd(16, Wr, 1, 0, 1),
            ],
            60,
        ),
    )
    .unwrap_err();
    assert_eq!(v.constraint, "data bus", "{v}");
    // A split bus allows one row and one column command in the same cycle, not two row ones.
    let mut s = toy();
    s.controller.command_bus = CommandBus::Split;
    let v = check_log(
        &s,
        &log_of(vec![cmd(0, Act, 0, 0, 1), cmd(0, Act, 1, 0, 1)], 60),
    )
    .unwrap_err();
    assert_eq!(v.constraint, "command bus");
    let ok = check_log(
        &s,
        &log_of(
            vec![
                cmd(0, Act, 0, 0, 1),
                cmd(10, Rd, 0, 0, 1),
                cmd(10, Act, 1, 0, 1),
            ],
            60,
        ),
    );
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn multi_cycle_commands_hold_the_command_bus() {
    use CommandKind::*;
    // DDR5-style two-cycle ACT, RD and WR on a shared bus.
    let mut s = toy();
    s.timing.act_command_cycles = Some(2);
    s.timing.column_command_cycles = Some(2);
    s.validate().unwrap();
    let v = check_log(
        &s,
        &log_of(vec![cmd(0, Act, 0, 0, 1), cmd(1, Act, 1, 0, 1)], 60),
    )
    .unwrap_err();
    assert_eq!((v.constraint, v.earliest), ("command bus", Some(2)), "{v}");
    let v = check_log(
        &s,
        &log_of(
            vec![
                cmd(0, Act, 0, 0, 1),
                cmd(10, Rd, 0, 0, 1),
                cmd(11, Act, 1, 0, 1),
            ],
            60,
        ),
    )
    .unwrap_err();
    assert_eq!((v.constraint, v.earliest), ("command bus", Some(12)), "{v}");
    // A PRE takes one cycle.
    check_log(
        &s,
        &log_of(
            vec![
                cmd(0, Act, 0, 0, 1),
                cmd(24, Pre, 0, 0, 1),
                cmd(25, Act, 1, 0, 1),
            ],
            60,
        ),
    )
    .unwrap();
    // The controller's schedules keep to it.
    for (label, w) in workloads() {
        let out = run(&s, &w, &logged());
        let log = out.log.unwrap();
        check_log(&s, &log).unwrap_or_else(|v| panic!("{label}: {v}"));
        for p in log.commands.windows(2) {
            let held = if p[0].kind == Act || !p[0].kind.is_row() {
                2
            } else {
                1
            };
            assert!(p[1].cycle >= p[0].cycle + held, "{label}: {p:?}");
        }
    }
    // HBM-style: split buses, a two-cycle ACT on the row bus, one command per cycle.
    let mut s = toy();
    s.controller.command_bus = CommandBus::Split;
    s.controller.commands_per_cycle = Some(1);
    s.timing.act_command_cycles = Some(2);
    s.validate().unwrap();
    for (want, log) in [
        (
            "command bus",
            vec![cmd(0, Act, 0, 0, 1), cmd(1, Act, 1, 0, 1)],
        ),
        (
            "command bus",
            vec![
                cmd(0, Act, 0, 0, 1),
                cmd(10, Act, 1, 0, 1),
                cmd(10, Rd, 0, 0, 1),
            ],
        ),
    ] {
        let v = check_log(&s, &log_of(log, 60)).unwrap_err();
        assert_eq!(v.constraint, want, "{v}");
    }
    // A column command may use the ACT's second cycle.
    check_log(
        &s,
        &log_of(
            vec![
                cmd(0, Act, 0, 0, 1),
                cmd(10, Act, 1, 0, 1),
                cmd(11, Rd, 0, 0, 1),
            ],
            60,
        ),
    )
    .unwrap();
    for (label, w) in workloads() {
        let out = run(&s, &w, &logged());
        check_log(&s, out.log.as_ref().unwrap()).unwrap_or_else(|v| panic!("{label}: {v}"));
    }
}

#[test]
fn refresh_mode_none_issues_no_refresh() {
    let mut spec = toy();
    spec.refresh.mode = RefreshMode::None;
    spec.validate().unwrap();
    let w = Workload::new(Pattern::Random {
        footprint: 1 << 24,
        requests: 5000,
    })
    .read_fraction(0.7)
    .seed(5);
    let out = run(&spec, &w, &logged());
    let log = out.log.unwrap();
    assert!(log.end_cycle > 10 * u64::from(spec.refresh.refi));
    assert_eq!(out.report.refreshes, 0);
    assert!(log.commands.iter().all(|c| !matches!(
        c.kind,
        CommandKind::Ref | CommandKind::RefPb | CommandKind::Prea
    )));
    check_log(&spec, &log).unwrap();
    // The same log fails a refreshing spec.
    let v = check_log(&toy(), &log).unwrap_err();
    assert_eq!(v.constraint, "refresh interval", "{v}");
    // Per-bank fields stay refused.
    spec.refresh.rfc_pb = Some(30);
    let e = spec.validate().unwrap_err().to_string();
    assert!(e.contains("refresh.tRFCpb"), "{e}");
}

#[test]
fn injection_every_n_cycles() {
    // Reads to eight different banks, one offered every 50 cycles: each ACTs on arrival.
    let spec = toy();
    let m = AddressMapping::parse(&spec.controller.address_mapping, &spec.organization).unwrap();
    let acc: Vec<Access> = (0..8)
        .map(|i| Access {
            addr: m.encode(&Location {
                bg: i / 4,
                bank: i % 4,
                row: 3,
                ..Location::default()
            }),
            write: false,
        })
        .collect();
    let opts = SimOptions {
        log: true,
        injection: Injection::Every(50),
    };
    let log = simulate(&spec, acc.clone(), &opts).unwrap().log.unwrap();
    let acts: Vec<u64> = log
        .commands
        .iter()
        .filter(|c| c.kind == CommandKind::Act)
        .map(|c| c.cycle)
        .collect();
    assert_eq!(acts, (0..8).map(|i| 50 * i).collect::<Vec<u64>>());
    // A full queue: the stalled access is offered again at the next multiple of n. One slot,
    // an access every 5 cycles: the first leaves the queue at its RD (tRCD 10 after its ACT),
    // so the second, refused at 5, enters at 15, and the third, refused at 20, at 30.
    let mut spec = toy();
    spec.controller.read_queue = 1;
    let opts = SimOptions {
        log: true,
        injection: Injection::Every(5),
    };
    let log = simulate(&spec, acc[..3].to_vec(), &opts)
        .unwrap()
        .log
        .unwrap();
    let acts: Vec<u64> = log
        .commands
        .iter()
        .filter(|c| c.kind == CommandKind::Act)
        .map(|c| c.cycle)
        .collect();
    assert_eq!(acts, [0, 15, 30]);
}

/// The toy memory with Ramulator 2.0's controller policy.
fn toy_first_ready(active_buffer: u32) -> DramSpec {
    let mut spec = toy();
    spec.controller.scheduler = Scheduler::FirstReady;
    spec.controller.active_buffer = active_buffer;
    spec.validate().unwrap();
    spec
}

#[test]
fn first_ready_lets_an_older_conflict_close_a_row_younger_hits_want() {
    use CommandKind::*;
    let m = AddressMapping::parse(&toy().controller.address_mapping, &toy().organization).unwrap();
    // A opens row 1 of bank 0; B (older than the Cs) wants row 2; C1..C6 hit row 1.
    let mut at = vec![(1, 0), (2, 0)];
    at.extend((1..7).map(|c| (1, c)));
    let acc: Vec<Access> = at
        .iter()
        .map(|&(row, col)| Access {
            addr: m.encode(&Location {
                row,
                col,
                ..Location::default()
            }),
            write: false,
        })
        .collect();
    let order = |spec: &DramSpec| -> Vec<(CommandKind, u32)> {
        let log = simulate(spec, acc.clone(), &logged()).unwrap().log.unwrap();
        check_log(spec, &log).unwrap();
        log.commands.iter().map(|c| (c.kind, c.row)).collect()
    };
    // Row hits first: every C before B's PRE.
    let hit_first = order(&toy());
    assert_eq!(
        hit_first.iter().filter(|c| c.0 == Act).count(),
        2,
        "{hit_first:?}"
    );
    // First ready: B's PRE is ready at tRAS (24) while C3 still waits for tCCD_L (RDs of A,
    // C1, C2 at 10, 16, 22), so B goes first and row 1 is opened again.
    for active in [0, 4] {
        let fr = order(&toy_first_ready(active));
        let pre = fr.iter().position(|c| c.0 == Pre).unwrap();
        assert_eq!(fr[..pre].iter().filter(|c| c.0 == Rd).count(), 3, "{fr:?}");
        assert_eq!(fr.iter().filter(|c| c.0 == Act).count(), 3, "{fr:?}");
    }
}

#[test]
fn the_activated_buffer_frees_queue_slots() {
    use CommandKind::*;
    let m = AddressMapping::parse(&toy().controller.address_mapping, &toy().organization).unwrap();
    // Reads to six banks, alternating bank groups: with two queue slots only two can have
    // ACTed before the first RD (tRCD 10), unless an ACT moves its request to the activated
    // buffer.
    let acc: Vec<Access> = (0..6)
        .map(|i| Access {
            addr: m.encode(&Location {
                bg: i % 2,
                bank: i / 2,
                row: 7,
                ..Location::default()
            }),
            write: false,
        })
        .collect();
    let acts_before_first_rd = |active: u32| {
        let mut spec = toy_first_ready(active);
        spec.controller.read_queue = 2;
        let opts = SimOptions {
            log: true,
            injection: Injection::PerCycle(1),
        };
        let log = simulate(&spec, acc.clone(), &opts).unwrap().log.unwrap();
        check_log(&spec, &log).unwrap();
        let rd = log.commands.iter().position(|c| c.kind == Rd).unwrap();
        log.commands[..rd].iter().filter(|c| c.kind == Act).count()
    };
    assert_eq!(acts_before_first_rd(0), 2);
    // ACTs at 0, 3, 6, 9 (tRRD_S 3, tRRD_L 5, four within tFAW 20) before the RD at 10.
    assert_eq!(acts_before_first_rd(8), 4);
}

#[test]
fn controller_options_are_checked() {
    let mut spec = toy();
    spec.controller.commands_per_cycle = Some(2); // shared bus: one command per cycle
    let e = spec.validate().unwrap_err().to_string();
    assert!(e.contains("controller.commands_per_cycle"), "{e}");
    let mut spec = toy();
    spec.controller.active_buffer = 4; // needs first_ready
    let e = spec.validate().unwrap_err().to_string();
    assert!(
        e.contains("controller.active_buffer") && e.contains("first_ready"),
        "{e}"
    );
    let mut spec = toy_first_ready(4);
    spec.controller.command_bus = CommandBus::Split; // two commands per cycle by default
    let e = spec.validate().unwrap_err().to_string();
    assert!(e.contains("controller.commands_per_cycle"), "{e}");
    spec.controller.commands_per_cycle = Some(1);
    spec.validate().unwrap();
    let mut spec = toy();
    spec.timing.act_command_cycles = Some(0);
    let e = spec.validate().unwrap_err().to_string();
    assert!(e.contains("timing.act_command_cycles"), "{e}");
    // Unknown values are refused by name.
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("arch/memory/hbm3_2gbps_ramulator.toml"),
    )
    .unwrap();
    for (from, to, what) in [
        (
            "scheduler = \"first_ready\"",
            "scheduler = \"fifo\"",
            "fifo",
        ),
        ("mode = \"none\"", "mode = \"never\"", "never"),
        (
            "queue_scope = \"channel\"",
            "queue_scope = \"rank\"",
            "rank",
        ),
    ] {
        assert!(text.contains(from), "{from}");
        let e = DramSpec::from_toml(&text.replacen(from, to, 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains(what), "{to}: {e}");
    }
}

#[test]
fn a_channel_wide_queue_is_shared_by_the_pseudo_channels() {
    // The Ramulator HBM3 preset: 33 reads per channel, not per pseudo-channel. All reads to
    // pseudo-channel 0's bank 0, one row each: the queue fills with 33 of them.
    let spec = preset("hbm3_2gbps_ramulator");
    let m = AddressMapping::parse(&spec.controller.address_mapping, &spec.organization).unwrap();
    let acc: Vec<Access> = (0..200)
        .map(|i| Access {
            addr: m.encode(&Location {
                row: i,
                ..Location::default()
            }),
            write: false,
        })
        .chain((0..4).map(|i| Access {
            addr: m.encode(&Location {
                pc: 1,
                row: i,
                ..Location::default()
            }),
            write: false,
        }))
        .collect();
    let opts = SimOptions {
        log: true,
        injection: Injection::PerCycle(1),
    };
    let log = simulate(&spec, acc, &opts).unwrap().log.unwrap();
    check_log(&spec, &log).unwrap();
    // Pseudo-channel 1's reads wait behind pseudo-channel 0's (the front end stalls on the
    // full shared queue): its first ACT comes after most of pseudo-channel 0's.
    let first_pc1 = log.commands.iter().position(|c| c.pc == 1).unwrap();
    let pc0_acts_before = log.commands[..first_pc1]
        .iter()
        .filter(|c| c.kind == CommandKind::Act)
        .count();
    assert!(pc0_acts_before > 150, "{pc0_acts_before}");
}

#[test]
fn checker_refuses_per_bank_refresh_violations() {
    use CommandKind::*;
    let mut spec = toy();
    spec.refresh.mode = RefreshMode::PerBank;
    spec.refresh.rfc_pb = Some(30);
    spec.refresh.rrefd = Some(4);
    spec.validate().unwrap();
    // Valid: REFpb of bank (0,0), then an ACT elsewhere after tRREFD and on it after tRFCpb.
    check_log(
        &spec,
        &log_of(
            vec![
                cmd(10, RefPb, 0, 0, 0),
                cmd(14, Act, 0, 1, 1),
                cmd(40, Act, 0, 0, 1),
            ],
            100,
        ),
    )
    .unwrap();
    let cases: Vec<(&str, Vec<Command>, u64)> = vec![
        (
            "tRFCpb",
            vec![cmd(10, RefPb, 0, 0, 0), cmd(39, Act, 0, 0, 1)],
            100,
        ),
        (
            "tRREFD",
            vec![cmd(10, RefPb, 0, 0, 0), cmd(13, Act, 0, 1, 1)],
            100,
        ),
        (
            "tRREFD",
            vec![cmd(10, RefPb, 0, 0, 0), cmd(12, RefPb, 0, 1, 0)],
            100,
        ),
        (
            "tRRD_S",
            vec![cmd(0, Act, 0, 0, 1), cmd(2, RefPb, 1, 0, 0)],
            100,
        ),
        (
            "row open",
            vec![cmd(0, Act, 0, 0, 1), cmd(40, RefPb, 0, 0, 0)],
            100,
        ),
        (
            "tRP",
            vec![
                cmd(0, Act, 0, 0, 1),
                cmd(30, Pre, 0, 0, 1),
                cmd(39, RefPb, 0, 0, 0),
            ],
            100,
        ),
        // Only one bank refreshed over 4 tREFI: the others fall behind.
        (
            "refresh interval",
            (0..4).map(|i| cmd(900 * i + 10, RefPb, 0, 0, 0)).collect(),
            4000,
        ),
    ];
    for (want, commands, end) in cases {
        let v = check_log(&spec, &log_of(commands.clone(), end))
            .expect_err(&format!("{want}: {commands:?} passed"));
        assert_eq!(v.constraint, want, "{v}");
    }
}

#[test]
fn refresh_mode_fields_are_checked() {
    let mut spec = toy();
    spec.refresh.rfc_pb = Some(30);
    let e = spec.validate().unwrap_err().to_string();
    assert!(
        e.contains("refresh.tRFCpb") && e.contains("per_bank"),
        "{e}"
    );
    let mut spec = toy();
    spec.refresh.mode = RefreshMode::PerBank;
    spec.refresh.rrefd = Some(4);
    let e = spec.validate().unwrap_err().to_string();
    assert!(
        e.contains("refresh.tRFCpb") && e.contains("required"),
        "{e}"
    );
    spec.refresh.rfc_pb = Some(101); // above tRFC (100)
    let e = spec.validate().unwrap_err().to_string();
    assert!(e.contains("refresh.tRFCpb"), "{e}");
    spec.refresh.rfc_pb = Some(30);
    spec.refresh.rrefd = Some(200); // tREFI / 8 banks = 125 < tRREFD
    let e = spec.validate().unwrap_err().to_string();
    assert!(e.contains("refresh.tREFI"), "{e}");
}

#[test]
fn refresh_happens_every_trefi() {
    // DDR5 and LPDDR5 refresh all banks of a rank at once, the HBM3 preset bank by bank.
    for name in [
        "ddr5_4800",
        "lpddr5_6400",
        "hbm3_h100",
        "ddr5_3200_ramulator",
    ] {
        let spec = small(name, 2);
        let per_bank = spec.refresh.mode == RefreshMode::PerBank;
        // Random reads, paced one per cycle, keep the memory busy for many tREFI.
        let w = Workload::new(Pattern::Random {
            footprint: 1 << 28,
            requests: 40_000,
        })
        .seed(11);
        let opts = SimOptions {
            log: true,
            injection: Injection::PerCycle(1),
        };
        let out = run(&spec, &w, &opts);
        let log = out.log.unwrap();
        let refi = u64::from(spec.refresh.refi);
        let expect = log.end_cycle / refi;
        assert!(expect >= 5, "{name}: only {expect} tREFI simulated");
        let o = &spec.organization;
        let banks_per_rank = o.bank_groups * o.banks_per_group;
        // Each bank's refreshes: its rank's REFs, or its own REFpbs.
        let mut per_bank_refs: std::collections::BTreeMap<(u32, u8, u8, u8, u8), Vec<u64>> =
            Default::default();
        for c in &log.commands {
            match c.kind {
                CommandKind::Ref => {
                    assert!(!per_bank, "{name}: REF in per-bank mode");
                    for bg in 0..o.bank_groups as u8 {
                        for bank in 0..o.banks_per_group as u8 {
                            per_bank_refs
                                .entry((c.channel, c.pc, c.rank, bg, bank))
                                .or_default()
                                .push(c.cycle);
                        }
                    }
                }
                CommandKind::RefPb => {
                    assert!(per_bank, "{name}: REFpb in all-bank mode");
                    per_bank_refs
                        .entry((c.channel, c.pc, c.rank, c.bg, c.bank))
                        .or_default()
                        .push(c.cycle);
                }
                _ => {}
            }
        }
        let banks = o.channels * o.pseudo_channels * o.ranks * banks_per_rank;
        assert_eq!(
            per_bank_refs.len() as u32,
            banks,
            "{name}: a bank never refreshed"
        );
        // Allowed slack: PREA/PRE before the refresh waits for tRAS, write recovery and tRP.
        let slack = 200;
        for (bank, times) in &per_bank_refs {
            let n = times.len() as u64;
            assert!(
                n + 1 >= expect && n <= expect + 1,
                "{name} {bank:?}: {n} refreshes over {} cycles (tREFI {refi})",
                log.end_cycle
            );
            // The controller never postpones: each bank once per tREFI.
            for w in times.windows(2) {
                let gap = w[1] - w[0];
                assert!(
                    gap + slack >= refi && gap <= refi + slack,
                    "{name} {bank:?}: refresh gap {gap}, tREFI {refi}"
                );
            }
        }
        let commands = out.report.commands;
        assert_eq!(out.report.refreshes, commands.refresh + commands.refresh_pb);
        if per_bank {
            assert_eq!(
                commands.refresh_pb,
                per_bank_refs.values().map(|v| v.len() as u64).sum::<u64>()
            );
        }
        check_log(&spec, &log).unwrap();
    }
}

#[test]
fn runs_are_deterministic() {
    let spec = small("hbm3_h100", 8);
    let w = Workload::new(Pattern::Random {
        footprint: 1 << 30,
        requests: 20_000,
    })
    .read_fraction(0.7)
    .seed(42);
    let a = serde_json::to_string(&run(&spec, &w, &logged()).report).unwrap();
    let b = serde_json::to_string(&run(&spec, &w, &logged()).report).unwrap();
    assert_eq!(a, b);
    let la = run(&spec, &w, &logged()).log.unwrap();
    let lb = run(&spec, &w, &logged()).log.unwrap();
    assert_eq!(la, lb);
    // Another seed is another run.
    let c = serde_json::to_string(&run(&spec, &w.seed(43), &logged()).report).unwrap();
    assert_ne!(a, c);
}

/// One channel of the toy memory; `accesses` enter the queue together at cycle 0, oldest first.
fn toy_log(accesses: &[(u32, u32, u32, bool)]) -> Vec<Command> {
    let spec = toy();
    let m = AddressMapping::parse(&spec.controller.address_mapping, &spec.organization).unwrap();
    let acc: Vec<Access> = accesses
        .iter()
        .map(|&(bank, row, col, write)| Access {
            addr: m.encode(&Location {
                bank,
                row,
                col,
                ..Location::default()
            }),
            write,
        })
        .collect();
    let out = simulate(&spec, acc, &logged()).unwrap();
    let log = out.log.unwrap();
    check_log(&spec, &log).unwrap();
    log.commands
}

fn kinds(log: &[Command]) -> Vec<(CommandKind, u8, u32, u32)> {
    log.iter().map(|c| (c.kind, c.bank, c.row, c.col)).collect()
}

#[test]
fn fr_fcfs_serves_a_younger_row_hit_before_an_older_conflict() {
    use CommandKind::*;
    // A opens row 1 of bank 0; B (older) wants row 2 of bank 0; C (younger) hits row 1.
    let log = toy_log(&[(0, 1, 0, false), (0, 2, 0, false), (0, 1, 1, false)]);
    assert_eq!(
        kinds(&log),
        [
            (Act, 0, 1, 0),
            (Rd, 0, 1, 0), // A
            (Rd, 0, 1, 1), // C: the younger hit goes first
            (Pre, 0, 1, 0),
            (Act, 0, 2, 0),
            (Rd, 0, 2, 0), // B
        ]
    );
}

#[test]
fn fr_fcfs_serves_the_oldest_among_equals() {
    use CommandKind::*;
    // Three hits to one row after its ACT: served in arrival order (cols 3, 1, 2).
    let log = toy_log(&[(0, 1, 3, false), (0, 1, 1, false), (0, 1, 2, false)]);
    let rds: Vec<u32> = log.iter().filter(|c| c.kind == Rd).map(|c| c.col).collect();
    assert_eq!(rds, [3, 1, 2]);
    // Misses to three banks: ACTs in arrival order (banks 2, 0, 1).
    let log = toy_log(&[(2, 5, 0, false), (0, 5, 0, false), (1, 5, 0, false)]);
    let acts: Vec<u8> = log
        .iter()
        .filter(|c| c.kind == Act)
        .map(|c| c.bank)
        .collect();
    assert_eq!(acts, [2, 0, 1]);
}

#[test]
fn writes_drain_by_watermark_and_reads_see_queued_writes() {
    let spec = toy();
    let m = AddressMapping::parse(&spec.controller.address_mapping, &spec.organization).unwrap();
    let at = |bank: u32, row: u32, col: u32| {
        m.encode(&Location {
            bank,
            row,
            col,
            ..Location::default()
        })
    };
    // A write then a read of the same address: the read is answered from the write queue.
    let acc = vec![
        Access {
            addr: at(0, 1, 0),
            write: true,
        },
        Access {
            addr: at(0, 1, 0),
            write: false,
        },
    ];
    let r = simulate(&spec, acc, &logged()).unwrap().report;
    assert_eq!((r.reads, r.writes, r.forwarded_reads), (0, 1, 1));
    // Reads keep flowing while writes stay under the high watermark; writes drain after.
    let mut acc = Vec::new();
    for i in 0..10 {
        acc.push(Access {
            addr: at(1, 2, i),
            write: true,
        });
    }
    for i in 0..20 {
        acc.push(Access {
            addr: at(0, 1, i % 8),
            write: false,
        });
    }
    let log = simulate(&spec, acc, &logged()).unwrap().log.unwrap();
    check_log(&spec, &log).unwrap();
    let cas: Vec<CommandKind> = log
        .commands
        .iter()
        .filter(|c| !c.kind.is_row())
        .map(|c| c.kind)
        .collect();
    let first_wr = cas.iter().position(|&k| k == CommandKind::Wr).unwrap();
    assert_eq!(first_wr, 20, "writes waited for the reads: {cas:?}");
}

#[test]
fn streaming_on_hbm3_reaches_the_peak_and_random_does_not() {
    let spec = preset("hbm3_h100");
    let stream = run(
        &spec,
        &Workload::new(Pattern::Streaming { bytes: 32 << 20 }),
        &SimOptions::default(),
    )
    .report;
    assert!(
        stream.bandwidth_fraction > 0.9,
        "streaming reached {:.3} of the peak",
        stream.bandwidth_fraction
    );
    assert!(stream.row_hit_rate > 0.9, "{}", stream.row_hit_rate);
    assert_eq!(stream.channels.len(), 80);
    let random = run(
        &spec,
        &Workload::new(Pattern::Random {
            footprint: 8 << 30,
            requests: 200_000,
        })
        .seed(5),
        &SimOptions::default(),
    )
    .report;
    assert!(
        random.bandwidth_fraction < 0.6 * stream.bandwidth_fraction,
        "random {:.3} vs streaming {:.3}",
        random.bandwidth_fraction,
        stream.bandwidth_fraction
    );
    assert!(random.row_hit_rate < 0.2, "{}", random.row_hit_rate);
    let lat = &random.read_latency;
    assert!(lat.p99_ns.unwrap() >= lat.p50_ns.unwrap());
    assert!(lat.p50_cycles.unwrap() >= f64::from(spec.timing.cl));
}

#[test]
fn closed_page_has_no_row_hits() {
    let mut spec = small("hbm3_h100", 8);
    spec.controller.page_policy = PagePolicy::Closed;
    let r = run(
        &spec,
        &Workload::new(Pattern::Streaming { bytes: 4 << 20 }),
        &logged(),
    );
    assert!(r.report.row_hit_rate < 0.01, "{}", r.report.row_hit_rate);
    assert_eq!(r.report.commands.rd, 0);
    assert!(r.report.commands.rda > 0);
    check_log(&spec, r.log.as_ref().unwrap()).unwrap();
    // Open page on the same stream: nearly all hits.
    spec.controller.page_policy = PagePolicy::Open;
    let r = run(
        &spec,
        &Workload::new(Pattern::Streaming { bytes: 4 << 20 }),
        &SimOptions::default(),
    );
    assert!(r.report.row_hit_rate > 0.9);
}

#[test]
fn bank_conflicts_are_conflicts() {
    let spec = small("ddr5_4800", 1);
    let r = run(
        &spec,
        &Workload::new(Pattern::BankConflict { requests: 200 }),
        &SimOptions::default(),
    )
    .report;
    // Every access a conflict but the first and those right after a refresh (which closes the
    // bank).
    assert!(r.refreshes >= 1);
    assert_eq!(r.row_misses, 1 + r.refreshes);
    assert_eq!(r.row_conflicts, 199 - r.refreshes);
    // One access per tRC at best.
    assert!(r.cycles >= 199 * u64::from(spec.timing.rc));
}

#[test]
fn spec_errors_name_the_field() {
    let base = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("arch/memory/hbm3_h100.toml"),
    )
    .unwrap();
    let cases = [
        ("tRCD = 26", "tRCD = 0", "timing.tRCD"),
        ("channels = 80", "channels = 0", "organization.channels"),
        ("tCK_ns = 0.764", "tCK_ns = -1.0", "timing.tCK_ns"),
        ("tCK_ns = 0.764", "tCK_ns = nan", "timing.tCK_ns"),
        ("tREFI = 5104", "tREFI = 100", "refresh.tREFI"),
        (
            "burst_length = 8",
            "burst_length = 6",
            "organization.burst_length",
        ),
        ("act_pj = 828.0", "act_pj = inf", "energy.act_pj"),
        ("read_queue = 32", "read_queue = 0", "controller.read_queue"),
        (
            "write_low_watermark = 0.2",
            "write_low_watermark = 0.9",
            "controller.write_low_watermark",
        ),
        (
            "address_mapping = \"RoBaRaCoBgPcCh\"",
            "address_mapping = \"RoBaRaCo\"",
            "controller.address_mapping",
        ),
        ("rows = 16384", "rows = 16384\nbanks = 4", "banks"),
        ("tFAW = 20", "tFAW = 20\ntXYZ = 3", "tXYZ"),
    ];
    for (from, to, field) in cases {
        assert!(base.contains(from), "{from}");
        let text = base.replacen(from, to, 1);
        let e = DramSpec::from_toml(&text).unwrap_err().to_string();
        assert!(e.contains(field), "{to}: {e}");
    }
    assert!(DramSpec::preset("hbm9")
        .unwrap_err()
        .to_string()
        .contains("hbm3_h100"));
}

#[test]
fn ramulator_traces_run_like_the_same_accesses() {
    let spec = small("ddr5_4800", 2);
    let w = Workload::new(Pattern::Random {
        footprint: 1 << 26,
        requests: 3000,
    })
    .read_fraction(0.75)
    .seed(9);
    let accesses: Vec<Access> = w.accesses(&spec).collect();
    let mut text = String::new();
    for a in &accesses {
        let op = if a.write { "ST" } else { "LD" };
        text.push_str(&format!("{op} 0x{:x}\n", a.addr));
    }
    let dir = std::env::temp_dir().join(format!("cascade-dram-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trace.txt");
    std::fs::write(&path, &text).unwrap();
    let opts = SimOptions {
        log: false,
        injection: Injection::PerCycle(1),
    };
    let from_file = run_trace(&spec, &path, &opts).unwrap().report;
    let direct = simulate(&spec, accesses, &opts).unwrap().report;
    assert_eq!(
        serde_json::to_string(&from_file).unwrap(),
        serde_json::to_string(&direct).unwrap()
    );
    // One access per cycle at most: the run takes at least as many cycles as accesses.
    assert!(direct.cycles >= 3000);
    std::fs::write(&path, "LD 0x40\nLOAD 0x80\n").unwrap();
    let e = run_trace(&spec, &path, &opts).unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("LOAD"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The speed figure: 1 GiB streamed through the H100's HBM3 in 64 B requests (16.7 M requests,
/// 33.5 M 32-byte accesses). `cargo test --release -p cascade --lib dram::tests::speed --
/// --ignored --nocapture`.
#[test]
#[ignore]
fn speed_one_gib_streaming_on_hbm3() {
    let spec = preset("hbm3_h100");
    let w = Workload::new(Pattern::Streaming { bytes: 1 << 30 });
    let start = std::time::Instant::now();
    let r = run(&spec, &w, &SimOptions::default()).report;
    let s = start.elapsed().as_secs_f64();
    println!(
        "1 GiB streaming on {}: {:.2} s wall, {} requests ({:.2} M/s), {} accesses ({:.2} M/s), \
         {:.1} GB/s simulated ({:.3} of peak), {} cycles",
        spec.name,
        s,
        w.requests(),
        w.requests() as f64 / s / 1e6,
        r.accesses,
        r.accesses as f64 / s / 1e6,
        r.bandwidth_gb_s,
        r.bandwidth_fraction,
        r.cycles
    );
}
