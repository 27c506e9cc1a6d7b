#!/usr/bin/env python3
"""Development experiment (issue 10, eleventh session; in no scored set): is a held-out run's
slow tf32 GEMM (heldout9 `gemm_tf32_3968x3968x3968` 499 us under the protocol against a
400 us profiled kernel; heldout8's 3712^3 431 against 342) slowed by what ran before it?
The tf32 cases of heldout9 under the sets' protocol (`measure_torch.time_case`: 40 launches,
each after the 512 MiB overwrite), three ways: after 5 s idle; in the set's order, after its
aligned, misaligned, skinny and fp16 GEMMs (each under the protocol, as the set ran them); after
10 s idle again. nvidia-smi samples SM clock, power, temperature and the clock-event reasons
every 100 ms throughout. Output: tf32_order.csv (median per case and when it ran),
tf32_order_smi.csv (the samples).

`--family bmm` asks the same of heldout9's batched GEMMs (`bmm_176x320x320x64` 23.6 us under the
protocol against a 16.3 us cold, clean kernel): rested, in the set's order after all its GEMMs
(the four dtypes included), rested again; bmm_order.csv, bmm_order_smi.csv."""
import argparse
import csv
import os
import statistics
import subprocess
import time

import torch

import measure_torch as mt

FIELDS = "timestamp,clocks.sm,power.draw,temperature.gpu,clocks_event_reasons.active"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--family", choices=["tf32", "bmm"], default="tf32")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    flush = torch.empty(mt.FLUSH_BYTES // 4, device=mt.DEV, dtype=torch.float32)
    cases = [c for c in mt.held_out_cases(mt.HELDOUT9)
             if c[1] in ("gemm_aligned", "gemm_misaligned", "gemm_skinny", "gemm_dtype", "bmm")]
    mine = (lambda c: "tf32" in c[0]) if a.family == "tf32" else (lambda c: c[1] == "bmm")
    upto = max(i for i, c in enumerate(cases) if mine(c))
    order, targets = cases[: upto + 1], [c for c in cases if mine(c)]
    fields = FIELDS
    if subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
                      capture_output=True).returncode != 0:
        fields = fields.rsplit(",", 1)[0]
    smi = subprocess.Popen(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader",
                            "-lms", "100"], stdout=open(os.path.join(a.out, f"{a.family}_order_smi.csv"), "w"))
    rows = []
    t_start = time.time()

    def run(tag, case):
        name, _, _, build = case
        fn, _, _ = build()
        t0 = time.time()
        med = statistics.median(mt.time_case(fn, flush, 40))
        rows.append([tag, name, f"{med:.6e}", f"{t0 - t_start:.2f}", f"{time.time() - t_start:.2f}",
                     f"{t0:.3f}", f"{time.time():.3f}"])
        print(rows[-1], flush=True)
        del fn
        torch.cuda.empty_cache()

    time.sleep(5)
    for c in targets:
        run("after_5s_idle", c)
    for c in order:
        run("in_set_order", c)
    time.sleep(10)
    for c in targets:
        run("after_10s_idle", c)
    smi.terminate()
    smi.wait()
    with open(os.path.join(a.out, f"{a.family}_order.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["when", "case", "median_s", "start_s", "end_s", "start_epoch", "end_epoch"])
        w.writerows(rows)


if __name__ == "__main__":
    main()
