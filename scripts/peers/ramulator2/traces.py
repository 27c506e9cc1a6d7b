#!/usr/bin/env python3
"""Deterministic load/store traces for the Ramulator 2.0 golden runs.

Why: cascade's DRAM model (sim/dram/) is checked against Ramulator 2.0 outputs
recorded in reports/golden/ramulator2/. The traces are not kept in git (about
2.6 MB each); they are regenerated bit for bit from the rules below, and
summary.json records each trace's sha256 so a regeneration can be checked.
The rules use no library random generator (only SplitMix64, spelled out here),
so a Rust test can regenerate the same request streams without Python.

Trace format (Ramulator 2.0 LoadStoreTrace frontend,
src/frontend/impl/memory_trace/loadstore_trace.cpp at v2.0a): one request per
line, "LD 0x<hex byte address>" (read) or "ST 0x<hex byte address>" (write),
exactly two space-separated tokens, '\\n' line ends. Every request is one 64 B
access, 64 B aligned. Ramulator issues the lines in order, one per frontend
tick, retrying a line until the controller's queue accepts it.

Address layout the patterns are built for (Ramulator's RoBaRaCoCh mapper with
the configs in configs/; from the least significant bit):
  DDR5 (DDR5_16Gb_x8, 1 channel, 1 rank, channel_width 32 -> 64 B columns):
      offset 6 | column 6 | rank 0 | bankgroup 3 | bank 2 | row 16   = 33 bits, 8 GiB
  HBM3 (HBM3_8Gb, 1 channel, channel_width 128 -> 32 B columns):
      offset 5 | column 5 | pseudochannel 1 | bankgroup 2 | bank 2 | row 15 = 30 bits, 1 GiB
  run.py checks these widths against the spec Ramulator reports
  (ramulator2-dump-spec), so a change of preset cannot silently break them.

Patterns (N = 200 000 requests each unless said otherwise, i = 0..N-1):
  stream    LD i*64                              sequential reads
  random    LD line*64, line = next() >> (64 - (B-6))   uniform over the whole
            channel (B address bits above), seed per case
  rwmix     as random, then t = next() % 3; ST if t == 0 else LD (2:1 reads)
            (the address draw comes before the type draw for each request)
  conflict  LD (i % 4096) * ROW_STRIDE           one bank (rank/pch 0, bankgroup 0,
            bank 0), column 0, a different row every request: every access but
            the first is a row conflict; FR-FCFS cannot reorder around it
  pingpong  LD (i % 2) * ROW_STRIDE + ((i // 2) * 64) % ROW_BYTES
            rows 0 and 1 of one bank alternately, column advancing: the
            literal "alternating rows in one bank"; it measures how far
            FR-FCFS batches same-row requests out of a 33-deep queue
  sparse    as random (own seed), 20 000 requests; its config sets the memory
            clock_ratio to 100, so one request is offered every 100 memory
            cycles: no queueing, the latencies are the unloaded ones
  ROW_STRIDE = 2**17 (DDR5), 2**15 (HBM3); ROW_BYTES = 4096 (DDR5), 1024 (HBM3)

SplitMix64 (state s, all arithmetic mod 2**64):
  s += 0x9E3779B97F4A7C15; z = s
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
  z = (z ^ (z >> 27)) * 0x94D049BB133111EB
  return z ^ (z >> 31)
the initial state is the case's seed.

Usage: traces.py OUTDIR [--n N] [--prefix K] [--case NAME ...] [--list]
"""
import argparse
import hashlib
import json
import os
import sys

MASK = (1 << 64) - 1
N_DEFAULT = 200_000

# Address geometry per device, in the mapper's view (see docstring).
DEVICES = {
    "ddr5": {"addr_bits": 33, "row_shift": 17, "row_bytes": 4096},
    "hbm3": {"addr_bits": 30, "row_shift": 15, "row_bytes": 1024},
}

PATTERNS = ["stream", "random", "rwmix", "conflict", "pingpong", "sparse"]
SEEDS = {"random": 0x5EED0001, "rwmix": 0x5EED0002, "sparse": 0x5EED0003}
# sparse runs 100 memory cycles per offered request, so fewer requests
N_BY_PATTERN = {"sparse": 20_000}


class SplitMix64:
    def __init__(self, seed):
        self.s = seed & MASK

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)


def n_requests(pattern):
    return N_BY_PATTERN.get(pattern, N_DEFAULT)


def cases():
    """All (name, device, pattern) golden cases, in run order."""
    return [(f"{dev}_{pat}", dev, pat) for dev in DEVICES for pat in PATTERNS]


def requests(device, pattern, n):
    """Yield (is_write, byte_address) for one case."""
    g = DEVICES[device]
    if pattern == "stream":
        for i in range(n):
            yield False, i * 64
    elif pattern in ("random", "rwmix", "sparse"):
        rng = SplitMix64(SEEDS[pattern])
        line_bits = g["addr_bits"] - 6
        for _ in range(n):
            addr = (rng.next() >> (64 - line_bits)) << 6
            is_write = pattern == "rwmix" and rng.next() % 3 == 0
            yield is_write, addr
    elif pattern == "conflict":
        for i in range(n):
            yield False, (i % 4096) << g["row_shift"]
    elif pattern == "pingpong":
        for i in range(n):
            yield False, ((i % 2) << g["row_shift"]) + ((i // 2) * 64) % g["row_bytes"]
    else:
        raise ValueError(pattern)


def trace_text(device, pattern, n):
    return "".join(f"{'ST' if w else 'LD'} 0x{a:x}\n" for w, a in requests(device, pattern, n))


def write_trace(path, device, pattern, n):
    text = trace_text(device, pattern, n).encode()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(text)
    os.replace(tmp, path)
    return {
        "path": path,
        "requests": n,
        "writes": text.count(b"ST "),
        "sha256": hashlib.sha256(text).hexdigest(),
        "bytes": len(text),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--n", type=int, default=0, help="requests per trace (default: the case's own)")
    ap.add_argument("--prefix", type=int, default=0,
                    help="also write <case>.prefix.trace with the first K requests")
    ap.add_argument("--case", action="append", help="only these case names")
    ap.add_argument("--list", action="store_true", help="print the case table and exit")
    a = ap.parse_args()
    if a.list:
        for c in cases():
            print(*c)
        return
    os.makedirs(a.outdir, exist_ok=True)
    out = {}
    for name, dev, pat in cases():
        if a.case and name not in a.case:
            continue
        out[name] = write_trace(os.path.join(a.outdir, f"{name}.trace"), dev, pat, a.n or n_requests(pat))
        if a.prefix:
            out[name]["prefix"] = write_trace(os.path.join(a.outdir, f"{name}.prefix.trace"), dev, pat, a.prefix)
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
