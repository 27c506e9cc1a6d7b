"""Diagnostic (issue 10, development only, in no scored set): why SDPA's flash and cuDNN kernels
cost 30-40% more per key block when the sequence length is not a multiple of 128.
Runs each shape once (after a warm-up) so that `ncu` profiles its kernels; see
docs/gpu-h200-notes.md. Usage (device): ncu --clock-control none --csv --metrics ... python3 this.py"""
import sys
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

CASES = [
    # (backend, b, h, n, causal)
    ("flash", 40, 16, 448, True),
    ("flash", 40, 16, 512, True),
    ("flash", 40, 16, 384, True),
    ("cudnn", 40, 16, 448, True),
    ("cudnn", 40, 16, 512, True),
    ("cudnn", 40, 16, 384, True),
    ("cudnn", 56, 12, 192, False),
    ("cudnn", 56, 12, 256, False),
    ("cudnn", 56, 12, 128, False),
    ("flash", 56, 12, 192, False),
    ("flash", 56, 12, 256, False),
]
BE = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}


def main():
    profile = len(sys.argv) > 1 and sys.argv[1] == "profile"  # under ncu: no timing loop
    # `profile flash`: only the flash backend's causal cases (the stall-reason run).
    only = sys.argv[2] if len(sys.argv) > 2 else None
    for be, b, h, n, causal in CASES:
        if only and (be != only or not causal):
            continue
        q, k, v = (torch.randn(b, h, n, 64, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        with sdpa_kernel([BE[be]]):
            F.scaled_dot_product_attention(q, k, v, is_causal=causal)  # warm-up
            torch.cuda.synchronize()
            torch.cuda.nvtx.range_push(f"{be}_b{b}h{h}n{n}{'c' if causal else ''}")
            F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            torch.cuda.nvtx.range_pop()
            torch.cuda.synchronize()
            if profile:
                continue
            # Event timing, median of 30 (warm L2; for the per-key-block ratio only).
            ts = []
            for _ in range(30):
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                s.record()
                F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                e.record()
                e.synchronize()
                ts.append(s.elapsed_time(e))
            ts.sort()
            print(f"TIME {be} b{b} h{h} n{n} causal={int(causal)} median_ms={ts[15]:.5f}", flush=True)


if __name__ == "__main__":
    main()
