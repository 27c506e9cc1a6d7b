#!/usr/bin/env python3
"""Development experiment (in no scored set): what eager PyTorch's host side costs per op on the
GPU machine, for `cascade infer`'s eager (prefill) steps. Writes <out>/eager_dispatch.csv.

Each op of a Llama-3-8B layer (as scripts/gpu/measure_llama.py writes it) runs 400 times on a
tiny input (16 tokens: each kernel takes a few microseconds, less than its dispatch), and the
host's wall time per call is taken after a synchronize; likewise the whole layer (its kernels
counted by the profiler). When the GPU is faster than the host, the wall time per call is the
host's dispatch cost.
"""

import argparse
import csv
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import measure_llama as ml  # noqa: E402


def per_call(fn, n=400):
    for _ in range(20):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(1)
    ly = ml.Layer()
    rows = []
    for s in (16, 64):
        x = ml.rnd(1, s, ml.D)
        h = ml.rnd(1, s, ml.D)
        qkv = ml.rnd(1, s, (ml.H + 2 * ml.HKV) * ml.HD)
        q = qkv[..., : ml.H * ml.HD].view(1, s, ml.H, ml.HD)
        k = qkv[..., ml.H * ml.HD : (ml.H + ml.HKV) * ml.HD].view(1, s, ml.HKV, ml.HD)
        cos, sin = ml.rope_tables(s, 0)
        kc = torch.empty(1, ml.HKV, s, ml.HD, device=ml.DEV, dtype=torch.bfloat16)
        qt = ml.rnd(1, ml.H, s, ml.HD)
        g = ml.rnd(1, s, ml.FF)
        ops = {
            "rms_norm": lambda: F.rms_norm(x, (ml.D,), ly.w_in, ml.EPS),
            "linear_qkv": lambda: F.linear(h, ly.wqkv),
            "mul_broadcast": lambda: q * cos,
            "rotate_half": lambda: ml.rotate_half(q),
            "rope_q": lambda: ml.rope(q, cos, sin),
            "cache_copy": lambda: kc.copy_(k.transpose(1, 2)),
            "sdpa_causal_gqa": lambda: F.scaled_dot_product_attention(qt, kc, kc, is_causal=True, enable_gqa=True),
            "add": lambda: x + h,
            "silu": lambda: F.silu(g),
            "mul": lambda: g * g,
        }
        for name, fn in ops.items():
            rows.append((s, name, per_call(fn)))
        kc2 = torch.empty(1, ml.HKV, s, ml.HD, device=ml.DEV, dtype=torch.bfloat16)
        vc2 = torch.empty_like(kc2)
        layer = lambda: ml.layer_fwd(ly, x, cos, sin, kc2, vc2, 0, True)  # noqa: E731
        kernels = [k for k, _ in ml.kernels_of(layer) if not k.startswith("Memset")]
        t = per_call(layer, 200)
        rows.append((s, "layer", t))
        rows.append((s, "layer_kernels", float(len(kernels))))
        rows.append((s, "layer_per_kernel", t / len(kernels)))
        print(s, [(r[1], f"{r[2]*1e6:.2f}") for r in rows if r[0] == s], flush=True)
    with open(os.path.join(args.out, "eager_dispatch.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["tokens", "op", "value"])
        for r in rows:
            w.writerow([r[0], r[1], f"{r[2]:.6e}"])


if __name__ == "__main__":
    main()
