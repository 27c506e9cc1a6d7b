#!/usr/bin/env python3
"""Development experiment (issue 10): the SM clock and power while one op runs back to back
under the protocol (512 MiB overwrite before each launch), sampled by nvidia-smi every 50 ms.
Tells whether tensor-heavy kernels (cuBLAS, FlashAttention-2, cuDNN) run below the clock the
CUDA-core kernels see. Output: clocks_under_load.csv (one row per op: median clock, power, op
time from events). Not a scored set."""
import argparse, csv, os, statistics, time
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from smi_sampler import sampled

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--out", required=True); a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    dev = "cuda"; bf = torch.bfloat16
    flush = torch.empty((512 << 20) // 4, device=dev, dtype=torch.float32)
    r = lambda *s: torch.randn(*s, device=dev, dtype=bf)
    A = r(8192, 8192); B = r(8192, 8192)
    q = r(1, 32, 4096, 128); k = r(1, 32, 4096, 128); v = r(1, 32, 4096, 128)
    qc = r(4, 32, 2048, 128); kc = r(4, 32, 2048, 128); vc = r(4, 32, 2048, 128)
    x = r(16384, 1024); big = r(1 << 29); dst = torch.empty_like(big)
    def fa(be, q, k, v, c):
        def f():
            with sdpa_kernel([be]):
                return F.scaled_dot_product_attention(q, k, v, is_causal=c)
        return f
    ops = {
        "gemm_8192_bf16": lambda: A @ B,
        "fa2_b1h32n4096d128": fa(SDPBackend.FLASH_ATTENTION, q, k, v, False),
        "fa2_b4h32n2048d128c": fa(SDPBackend.FLASH_ATTENTION, qc, kc, vc, True),
        "cudnn_b1h32n4096d128": fa(SDPBackend.CUDNN_ATTENTION, q, k, v, False),
        "softmax_16384x1024": lambda: torch.softmax(x, -1),
        "copy_1GiB": lambda: dst.copy_(big),
    }
    rows = []
    for name, fn in ops.items():
        for _ in range(3): fn()
        torch.cuda.synchronize()
        def loop():
            ts = []; t_end = time.time() + 2.0
            while time.time() < t_end:
                flush.fill_(1.0)
                e0 = torch.cuda.Event(enable_timing=True); e1 = torch.cuda.Event(enable_timing=True)
                e0.record(); fn(); e1.record(); torch.cuda.synchronize(); ts.append(e0.elapsed_time(e1) * 1e-3)
            return ts
        ts, samp = sampled(loop)
        row = {"op": name, "launches": len(ts), "median_s": statistics.median(ts),
               "sm_clock_mhz_median": statistics.median(c for c, _ in samp) if samp else "",
               "sm_clock_mhz_min": min(c for c, _ in samp) if samp else "",
               "power_w_median": statistics.median(p for _, p in samp) if samp else "",
               "samples": len(samp)}
        rows.append(row); print(row, flush=True)
        time.sleep(0.5)
    with open(os.path.join(a.out, "clocks_under_load.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys())); w.writeheader(); w.writerows(rows)

if __name__ == "__main__":
    main()
