#!/usr/bin/env python3
"""Development experiment (issue 10, fifth session): why cuBLAS's tf32 GEMMs take ~1.2x their
profiled kernel time under the measurement protocol while bf16 GEMMs of the same size do not.
For tf32 and bf16 GEMMs of sizes whose tf32 op/kernel ratio was ~1.2 (3712, 3840, 4736) and ~1.0
(3072, 3200), and 8192: the events median under the protocol (512 MiB overwrite before each of
40 launches), the SM clock and power sampled by nvidia-smi every 50 ms during 2 s of that loop,
and the median of 10 launches each after 1 s of idling (clocks recovered). Output:
tf32_clocks.csv. Not a scored set."""
import argparse, csv, os, statistics, time
import torch
from smi_sampler import sampled

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--out", required=True); a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = True
    dev = "cuda"
    flush = torch.empty((512 << 20) // 4, device=dev, dtype=torch.float32)
    rows = []
    for n in [3072, 3200, 3712, 3840, 4736, 8192]:
        for dt in ["tf32", "bf16"]:
            t = torch.float32 if dt == "tf32" else torch.bfloat16
            A = torch.randn(n, n, device=dev, dtype=t); B = torch.randn(n, n, device=dev, dtype=t)
            fn = lambda: A @ B
            for _ in range(3): fn()
            torch.cuda.synchronize()
            def timed():
                flush.fill_(1.0)
                e0 = torch.cuda.Event(enable_timing=True); e1 = torch.cuda.Event(enable_timing=True)
                e0.record(); fn(); e1.record(); torch.cuda.synchronize()
                return e0.elapsed_time(e1) * 1e-3
            proto = [timed() for _ in range(40)]
            def loop():
                out = []; t_end = time.time() + 2.0
                while time.time() < t_end:
                    out.append(timed())
                return out
            looped, samp = sampled(loop)
            idle = []
            for _ in range(10):
                time.sleep(1.0); idle.append(timed())
            row = {"op": f"gemm_{dt}_{n}", "protocol_median_s": statistics.median(proto),
                   "loop_median_s": statistics.median(looped), "loop_launches": len(looped),
                   "sm_clock_mhz_median": statistics.median(c for c, _ in samp) if samp else "",
                   "power_w_median": statistics.median(p for _, p in samp) if samp else "",
                   "after_idle_median_s": statistics.median(idle)}
            rows.append(row); print(row, flush=True)
            del A, B
            torch.cuda.empty_cache(); time.sleep(0.5)
    with open(os.path.join(a.out, "tf32_clocks.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0])); w.writeheader(); w.writerows(rows)

if __name__ == "__main__":
    main()
