#!/usr/bin/env python3
"""Run the Ramulator 2.0 golden cases and record their outputs in the repo.

Why: cascade's DRAM model (sim/dram/) is compared with Ramulator 2.0 in CI
without running Ramulator, against the files this script writes to
reports/golden/ramulator2/ (see the README there for what each one is).

Needs bin/ramulator2 and bin/ramulator2-dump-spec from build.sh, Python 3 and
PyYAML (to read Ramulator's stats, which it prints as YAML).

Steps:
  1. traces.py writes every case's trace (and a 2000-request prefix of it) to
     $RAMULATOR2_DIR/traces/.
  2. ramulator2-dump-spec prints the DRAM spec each device's config resolves
     to; timings.json is made from it, and the address geometry traces.py
     assumes is checked against it.
  3. Every case runs --repeats times (working directory $RAMULATOR2_DIR, the
     configs' paths are relative to it); the runs must print identical
     stats (Ramulator is deterministic); the first run's stdout and command
     counts are kept, wall-clock times of all runs are recorded.
  4. Every case's 2000-request prefix runs once more with Ramulator's
     TraceRecorder plugin added, giving the issued DRAM command stream
     (cycle, command, address vector) for a command-level comparison.
  5. summary.json gathers the figures (see README for each derivation).

Usage: run.py [--repeats 5] [--case NAME ...] [--out DIR]
  env RAMULATOR2_DIR (default /work/peers/ramulator2)
"""
import argparse
import gzip
import hashlib
import json
import math
import os
import platform
import resource
import re
import shutil
import statistics
import subprocess
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, HERE)
import traces  # noqa: E402

REQ_BYTES = 64
PREFIX = 2000
COMMANDS = ["ACT", "PRE", "PREA", "RD", "WR", "RDA", "WRA", "REFab"]
PINS_FILE = os.path.join(HERE, "build.sh")


def sh(cmd, cwd, **kw):
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, **kw)


def parse_stats(stdout):
    """Ramulator prints spdlog lines ("[Ramulator::...] ...") then the stats as YAML."""
    body = "\n".join(l for l in stdout.splitlines() if not l.startswith("[Ramulator::"))
    return yaml.safe_load(body)


def parse_counts(path):
    out = {}
    with open(path) as f:
        for line in f:
            name, n = line.strip().split(", ")
            out[name] = int(n)
    return {c: out[c] for c in COMMANDS if c in out}


def pins():
    """(name, slug, commit, tag) from build.sh's PINS table, the one source of truth."""
    rows = []
    for m in re.finditer(r'^\s*"(\S+)\s+(\S+)\s+([0-9a-f]{40})\s+(\S+)"\s*$', open(PINS_FILE).read(), re.M):
        rows.append(dict(zip(["name", "repository", "commit", "tag"], m.groups())))
    return rows


def check_geometry(dev, spec):
    """The address layout traces.py builds its patterns on must be what the mapper uses."""
    levels, count = spec["levels"], spec["organization"]["count"]
    bits = {l: int(math.log2(count[l])) for l in levels}
    tx = spec["internal_prefetch_size"] * spec["channel_width"] // 8
    col = bits["column"] - int(math.log2(spec["internal_prefetch_size"]))
    # RoBaRaCoCh: offset | channel | column | levels[1..row] in order
    row_shift = int(math.log2(tx)) + bits["channel"] + col + sum(bits[l] for l in levels[1:levels.index("row")])
    addr_bits = row_shift + bits["row"]
    g = traces.DEVICES[dev]
    got = {"addr_bits": addr_bits, "row_shift": row_shift, "row_bytes": tx << col}
    if got != g:
        sys.exit(f"error: {dev}: Ramulator's mapper geometry {got} != traces.DEVICES {g}")
    layout = ["offset:%d" % int(math.log2(tx)), "channel:%d" % bits["channel"], "column:%d" % col] + \
        ["%s:%d" % (l, bits[l]) for l in levels[1:levels.index("row") + 1]]
    return {"transaction_bytes": tx, "row_bytes": tx << col, "row_shift": row_shift,
            "mapped_bytes": 1 << addr_bits, "lsb_to_msb": layout}


def device_summary(dev, spec, cfg):
    t = spec["timings"]
    tck = t["tCK_ps"]
    buses = spec["organization"]["count"].get("pseudochannel", 1)  # HBM3: one data bus per pseudochannel
    peak = buses * REQ_BYTES / (t["nBL"] * tck / 1000.0)
    dram = cfg["MemorySystem"]["DRAM"]
    d = {
        "config_org_preset": dram["org"]["preset"],
        "config_timing_preset": dram["timing"]["preset"],
        "tCK_ps": tck,
        "data_rate_MTps": t["rate"],
        "burst_length_beats": 2 * t["nBL"],
        "nBL_cycles": t["nBL"],
        "internal_prefetch_size": spec["internal_prefetch_size"],
        "channel_width_bits_config": spec["channel_width"],
        "dq_bits": spec["organization"]["dq"],
        "read_latency_cycles": spec["read_latency"],
        "data_buses": buses,
        "peak_bandwidth_GBps": peak,
        "address_mapping_RoBaRaCoCh": check_geometry(dev, spec),
    }
    return d


def key_timings(dev, t):
    """The brief's timing names -> value, with Ramulator's name where it differs."""
    if dev == "ddr5":
        return {
            "nCL": t["nCL"], "nCWL": t["nCWL"], "nRCD": t["nRCD"], "nRP": t["nRP"], "nRAS": t["nRAS"], "nRC": t["nRC"],
            "nCCDS": t["nCCDS"], "nCCDL": t["nCCDL"], "nCCDS_WR": t["nCCDS_WR"], "nCCDL_WR": t["nCCDL_WR"],
            "nRRDS": t["nRRDS"], "nRRDL": t["nRRDL"], "nFAW": t["nFAW"],
            "nWTRS": t["nCCDS_WTR"] - t["nCWL"] - t["nBL"], "nWTRL": t["nCCDL_WTR"] - t["nCWL"] - t["nBL"],
            "nWTRS_note": "DDR5 has no nWTRS/L entry; Ramulator uses nCCDS_WTR = nCWL+nBL+nWTRS and nCCDL_WTR = nCWL+nBL+nWTRL",
            "nRTP": t["nRTP"], "nWR": t["nWR"], "nREFI": t["nREFI"], "nRFC": t["nRFC1"], "nRFC_note": "nRFC1 (normal refresh)",
            "nBL": t["nBL"], "nCS": t["nCS"], "nPPD": t["nPPD"],
        }
    return {
        "nCL": t["nCL"], "nCWL": t["nCWL"], "nRCD": t["nRCDRD"], "nRCDWR": t["nRCDWR"], "nRP": t["nRP"], "nRAS": t["nRAS"],
        "nRC": t["nRC"], "nCCDS": t["nCCDS"], "nCCDL": t["nCCDL"], "nRRDS": t["nRRDS"], "nRRDL": t["nRRDL"], "nFAW": t["nFAW"],
        "nWTRS": t["nWTRS"], "nWTRL": t["nWTRL"], "nRTP": t["nRTPL"], "nRTPS": t["nRTPS"], "nRTP_note": "nRTPL (same bank); nRTPS gates PREA",
        "nWR": t["nWR"], "nRTW": t["nRTW"], "nREFI": t["nREFI"], "nRFC": t["nRFC"], "nBL": t["nBL"],
        "refresh_note": "never issued: Ramulator 2.0's AllBank refresh manager does nothing on HBM3 (no 'rank' level)",
    }


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_case(bin_, rd, cfg_path, repeats):
    walls, cpus, outs = [], [], []
    for _ in range(repeats):
        c0, t0 = child_cpu(), time.perf_counter()
        p = sh([bin_, "-f", cfg_path], rd)
        walls.append(time.perf_counter() - t0)
        cpus.append(child_cpu() - c0)
        outs.append(p.stdout)
    if any(o != outs[0] for o in outs):
        sys.exit(f"error: {cfg_path}: repeated runs printed different stats")
    # Startup + trace parsing alone: main() builds the frontend (which reads the
    # whole trace) before the memory system, so naming a memory system that does
    # not exist makes it exit (abort, status 134) right after loading the trace.
    loads = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        p = subprocess.run([bin_, "-f", cfg_path, "-p", "MemorySystem.impl=NoSuchMemorySystem"], cwd=rd,
                           capture_output=True, text=True)
        loads.append(time.perf_counter() - t0)
        if "Loaded" not in p.stdout + p.stderr or "NoSuchMemorySystem" not in p.stderr:
            sys.exit(f"error: {cfg_path}: load-only run did not stop where expected")
    return outs[0], walls, cpus, loads


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--case", action="append")
    ap.add_argument("--out", default=os.path.join(REPO, "reports", "golden", "ramulator2"))
    a = ap.parse_args()

    rd = os.environ.get("RAMULATOR2_DIR", "/work/peers/ramulator2")
    bin_ = os.path.join(rd, "bin", "ramulator2")
    dump = os.path.join(rd, "bin", "ramulator2-dump-spec")
    cfgdir = os.path.join(HERE, "configs")
    out = a.out
    for sub in ("stats", "prefix"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)

    cases = [c for c in traces.cases() if not a.case or c[0] in a.case]

    # 1. traces
    tdir = os.path.join(rd, "traces")
    os.makedirs(tdir, exist_ok=True)
    tinfo = {}
    for name, dev, pat in cases:
        tinfo[name] = traces.write_trace(os.path.join(tdir, f"{name}.trace"), dev, pat, traces.n_requests(pat))
        tinfo[name]["prefix"] = traces.write_trace(os.path.join(tdir, f"{name}.prefix.trace"), dev, pat, PREFIX)

    # 2. device specs
    specs, devsum = {}, {}
    for dev in traces.DEVICES:
        cfg = os.path.join(cfgdir, f"{dev}_stream.yaml")
        specs[dev] = json.loads(sh([dump, cfg], rd).stdout)
        devsum[dev] = device_summary(dev, specs[dev], yaml.safe_load(open(cfg)))
    timings = {
        "_about": "Resolved DRAM specs Ramulator 2.0 (v2.0a) simulates the golden cases with, printed by "
                  "ramulator2-dump-spec (scripts/peers/ramulator2/dump_spec.cpp) from the configs in "
                  "scripts/peers/ramulator2/configs/. 'timings' are the values after presets, the density/rate "
                  "tables and config overrides; all n* values are memory clock cycles (tCK_ps). "
                  "'timing_constraints' is the full table the device model checks: after command 'preceding' "
                  "at 'level', command 'following' must wait 'latency' cycles (window>1: the window-th last "
                  "preceding command, i.e. nFAW; sibling: applies to the other nodes at that level).",
        "pins": pins(),
    }
    for dev in traces.DEVICES:
        timings[dev] = {"summary": devsum[dev], "key_timings": key_timings(dev, specs[dev]["timings"]), "spec": specs[dev]}
    with open(os.path.join(out, "timings.json"), "w") as f:
        json.dump(timings, f, indent=1)
        f.write("\n")

    # 3-4. runs
    summary_cases = {}
    for name, dev, pat in cases:
        cfg_path = os.path.join(cfgdir, f"{name}.yaml")
        cfg = yaml.safe_load(open(cfg_path))
        shutil.rmtree(os.path.join(rd, "runs", name), ignore_errors=True)
        stdout, walls, cpus, loads = run_case(bin_, rd, cfg_path, a.repeats)
        with open(os.path.join(out, "stats", f"{name}.yaml"), "w") as f:
            f.write(stdout)
        shutil.copy(os.path.join(rd, "runs", name, "command_counts.txt"), os.path.join(out, "stats", f"{name}.command_counts.txt"))
        counts = parse_counts(os.path.join(rd, "runs", name, "command_counts.txt"))
        st = parse_stats(stdout)

        # prefix run with the command trace
        pdir = os.path.join(rd, "runs", name + ".prefix")
        shutil.rmtree(pdir, ignore_errors=True)
        os.makedirs(pdir)
        pcfg = yaml.safe_load(open(cfg_path))
        pcfg["Frontend"]["path"] = f"traces/{name}.prefix.trace"
        pcfg["MemorySystem"]["Controller"]["plugins"] = [
            {"ControllerPlugin": {"impl": "CommandCounter", "path": f"runs/{name}.prefix/command_counts.txt",
                                  "commands_to_count": COMMANDS}},
            {"ControllerPlugin": {"impl": "TraceRecorder", "path": f"runs/{name}.prefix/cmds"}},
        ]
        with open(os.path.join(pdir, "config.yaml"), "w") as f:
            yaml.safe_dump(pcfg, f, sort_keys=False)
        pout = sh([bin_, "-f", os.path.join(pdir, "config.yaml")], rd).stdout
        with open(os.path.join(out, "prefix", f"{name}.yaml"), "w") as f:
            f.write(pout)
        cmds = open(os.path.join(pdir, "cmds.ch0"), "rb").read()
        with open(os.path.join(out, "prefix", f"{name}.cmds.gz"), "wb") as f:
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as g:
                g.write(cmds)
        pst = parse_stats(pout)
        pcounts = parse_counts(os.path.join(pdir, "command_counts.txt"))

        summary_cases[name] = summarize(name, dev, pat, st, counts, walls, cpus, loads, devsum[dev], tinfo[name], pst, pcounts, cmds)
        c = summary_cases[name]
        print(f"{name:15s} cycles {c['memory_cycles']:>9d}  {c['bandwidth_GBps']:6.2f} GB/s  "
              f"lat {c['mean_read_latency_cycles']:7.2f} cyc  wall {c['wall_seconds']:6.2f} s  "
              f"{c['sim_requests_per_second']:>9.0f} req/s", flush=True)

    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except Exception:
        pass
    summary = {
        "_about": "Ramulator 2.0 (v2.0a) golden figures; reports/golden/ramulator2/README.md explains every field.",
        "pins": pins(),
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
                    "compiler": sh(["g++", "--version"], rd).stdout.splitlines()[0], "repeats": a.repeats,
                    "load_average_at_end": list(os.getloadavg())},
        "clock_ratio_meaning": "per case: clock_ratio is a relative frequency; main() ticks the frontend "
                               "frontend/memory times per memory tick (1:1 = one trace request offered per "
                               "memory cycle; 1:100 = one per 100 memory cycles)",
        "request_bytes": REQ_BYTES,
        "devices": devsum,
        "cases": summary_cases,
    }
    path = os.path.join(out, "summary.json")
    if a.case and os.path.exists(path):  # partial rerun: keep the other cases
        old = json.load(open(path))
        old["cases"].update(summary_cases)
        summary["cases"] = {n: old["cases"][n] for n, _, _ in traces.cases() if n in old["cases"]}
    with open(path, "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    update_readme_table(os.path.join(out, "README.md"), summary)


def update_readme_table(readme, summary):
    """Rewrite the figures table between the README's table markers, so it never goes stale."""
    if not os.path.exists(readme):
        return
    rows = ["| case | clock f:m | requests (R/W) | memory cycles | simulated us | GB/s | % of peak | mean read latency, cycles (ns) | row hits / misses / conflicts | ACT / PRE / REFab | wall s, median (min) | CPU s, median | requests per CPU s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, c in summary["cases"].items():
        cr = c.get("clock_ratio", {})
        k = c["commands"]
        rows.append(
            f"| {n} | {cr.get('frontend', '?')}:{cr.get('memory', '?')} | {c['requests']} ({c['reads']}/{c['writes']}) "
            f"| {c['memory_cycles']} | {c['simulated_ns'] / 1000:.1f} | {c['bandwidth_GBps']:.2f} "
            f"| {100 * c['bandwidth_fraction_of_peak']:.1f} | {c['mean_read_latency_cycles']:.1f} ({c['mean_read_latency_ns']:.1f}) "
            f"| {c['row_hits']} / {c['row_misses']} / {c['row_conflicts']} | {k['ACT']} / {k['PRE']} / {k['REFab']} "
            f"| {c['wall_seconds']:.2f} ({c['wall_seconds_min']:.2f}) | {c['cpu_seconds']:.2f} | {c['sim_requests_per_cpu_second']:.0f} |")
    text = open(readme).read()
    begin, end = "<!-- table:begin (run.py rewrites this) -->", "<!-- table:end -->"
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < 0:
        return
    text = text[:i + len(begin)] + "\n" + "\n".join(rows) + "\n" + text[j:]
    with open(readme, "w") as f:
        f.write(text)


def figures(st, counts, tck_ps, requests):
    ms = st["MemorySystem"]
    ctl = ms["Controller"]
    cycles = ms["memory_system_cycles"]
    rd_cmds = counts.get("RD", 0) + counts.get("RDA", 0)
    ns = cycles * tck_ps / 1000.0
    lat = ctl["read_latency_0"] / rd_cmds if rd_cmds else None
    return {
        "requests": requests,
        "reads": ms["total_num_read_requests"],
        "writes": ms["total_num_write_requests"],
        "memory_cycles": cycles,
        "simulated_ns": ns,
        "bandwidth_GBps": requests * REQ_BYTES / ns,
        "mean_read_latency_cycles": lat,
        "mean_read_latency_ns": lat * tck_ps / 1000.0 if lat is not None else None,
        "ramulator_avg_read_latency_0": ctl["avg_read_latency_0"],
        "read_latency_sum_cycles": ctl["read_latency_0"],
        "row_hits": ctl["row_hits_0"], "row_misses": ctl["row_misses_0"], "row_conflicts": ctl["row_conflicts_0"],
        "read_row_hits": ctl["read_row_hits_0"], "read_row_misses": ctl["read_row_misses_0"],
        "read_row_conflicts": ctl["read_row_conflicts_0"],
        "write_row_hits": ctl["write_row_hits_0"], "write_row_misses": ctl["write_row_misses_0"],
        "write_row_conflicts": ctl["write_row_conflicts_0"],
        "commands": counts,
    }


def summarize(name, dev, pat, st, counts, walls, cpus, loads, dsum, tinfo, pst, pcounts, cmds):
    tck = dsum["tCK_ps"]
    cfg = yaml.safe_load(open(os.path.join(HERE, "configs", f"{name}.yaml")))
    c = {"device": dev, "pattern": pat, "config": f"scripts/peers/ramulator2/configs/{name}.yaml",
         "clock_ratio": {"frontend": cfg["Frontend"]["clock_ratio"], "memory": cfg["MemorySystem"]["clock_ratio"]}}
    c.update(figures(st, counts, tck, tinfo["requests"]))
    c["bandwidth_fraction_of_peak"] = c["bandwidth_GBps"] / dsum["peak_bandwidth_GBps"]
    wall = statistics.median(walls)
    c["wall_seconds"] = wall
    c["wall_seconds_min"] = min(walls)
    c["wall_seconds_runs"] = walls
    c["sim_requests_per_second"] = c["requests"] / wall
    c["sim_memory_cycles_per_second"] = c["memory_cycles"] / wall
    c["cpu_seconds"] = statistics.median(cpus)
    c["cpu_seconds_runs"] = cpus
    c["sim_requests_per_cpu_second"] = c["requests"] / c["cpu_seconds"]
    load = statistics.median(loads)
    c["startup_and_trace_load_seconds"] = load
    c["sim_requests_per_second_excluding_load"] = c["requests"] / (wall - load)
    c["trace"] = {"file": os.path.basename(tinfo["path"]), "requests": tinfo["requests"], "writes": tinfo["writes"],
                  "sha256": tinfo["sha256"]}
    p = figures(pst, pcounts, tck, tinfo["prefix"]["requests"])
    p["trace_sha256"] = tinfo["prefix"]["sha256"]
    p["command_trace"] = f"prefix/{name}.cmds.gz"
    p["command_trace_lines"] = cmds.count(b"\n")
    p["command_trace_sha256"] = hashlib.sha256(cmds).hexdigest()
    c["prefix"] = p
    return c


if __name__ == "__main__":
    main()
