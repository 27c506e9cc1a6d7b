#!/usr/bin/env python3
"""Development experiment (issue 10): the fixed cost of a tiny op's kernels when the op starts
cold (after the protocol's 512 MiB overwrite) and warm (run again right after itself), per
kernel class: cuBLAS's wgmma/TMA kernels, ATen's elementwise and row kernels, the copy. The
ops do almost no work, so what remains is each kernel's start: launch, parameters, TMA
descriptors, TLB and cache misses on first touch. Events around the op (median of N), and the
op's kernel durations from the profiler (prelude kernels dropped by name). With no prelude
(`event_none_s`) the host's launch is not hidden: those times include it and are not used.
Output: cold_start.csv. Not a scored set."""
import argparse, csv, os, statistics
import torch
import torch.nn.functional as F

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=40); a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    dev = "cuda"; bf = torch.bfloat16
    flush = torch.empty((512 << 20) // 4, device=dev, dtype=torch.float32)
    sink = torch.empty((), device=dev, dtype=torch.float32)
    r = lambda *s: torch.randn(*s, device=dev, dtype=bf)
    ops = {}
    for n in [64, 128, 256]:
        A = r(n, n); B = r(n, n)
        ops[f"gemm_{n}x{n}x{n}"] = lambda A=A, B=B: A @ B
    A = r(8, 64, 64); B = r(8, 64, 64)
    ops["bmm_8x64x64x64"] = lambda: torch.bmm(A, B)
    x1 = torch.ones(1, device=dev); ops["add_1_fp32"] = lambda: x1.add_(1.0)
    s4 = r(2048); d4 = torch.empty_like(s4); ops["copy_4096"] = lambda: d4.copy_(s4)
    xa = r(1024); xb = r(1024); ops["add_1024"] = lambda: xa + xb
    xl = r(1, 1024); g = r(1024); b = r(1024)
    ops["layernorm_1x1024"] = lambda: F.layer_norm(xl, (1024,), g, b)
    ops["softmax_1x1024"] = lambda: torch.softmax(xl, -1)
    q = r(1, 1, 128, 64)
    from torch.nn.attention import SDPBackend, sdpa_kernel
    def fa():
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            return F.scaled_dot_product_attention(q, q, q)
    ops["sdpa_flash_b1h1n128d64"] = fa
    def cud():
        with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
            return F.scaled_dot_product_attention(q, q, q)
    ops["sdpa_cudnn_b1h1n128d64"] = cud
    pre = {"write": lambda: flush.fill_(1.0), "read": lambda: torch.sum(flush, dim=0, out=sink), "none": lambda: None}
    rows = []
    for name, fn in ops.items():
        for _ in range(5): fn()
        torch.cuda.synchronize()
        rec = {"case": name}
        for pn, p in pre.items():
            ts = []
            for _ in range(a.reps):
                p()
                if pn == "none":
                    fn()  # the op itself warms L2 and the TLB
                e0 = torch.cuda.Event(enable_timing=True); e1 = torch.cuda.Event(enable_timing=True)
                e0.record(); fn(); e1.record(); torch.cuda.synchronize()
                ts.append(e0.elapsed_time(e1) * 1e-3)
            rec[f"event_{pn}_s"] = statistics.median(ts)
        from torch.profiler import ProfilerActivity, profile
        for pn in ["write", "none"]:
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(10):
                    pre[pn](); fn()
                torch.cuda.synchronize()
            per = {}
            for e in prof.events():
                if e.device_type == torch.autograd.DeviceType.CUDA:
                    per.setdefault(e.name, []).append(e.device_time * 1e-6)
            # drop the prelude (the 512 MiB fill: the longest kernel by far)
            if pn == "write":
                longest = max(per, key=lambda k: statistics.median(per[k]))
                per.pop(longest)
            rec[f"kernels_{pn}"] = ";".join(f"{k[:70]}={statistics.median(v):.3e}x{len(v)}" for k, v in per.items())
            rec[f"kernel_sum_{pn}_s"] = sum(statistics.median(v) * len(v) / 10 for v in per.values())
        rows.append(rec); print({k: (f"{v:.3e}" if isinstance(v, float) else v) for k, v in rec.items()}, flush=True)
    with open(os.path.join(a.out, "cold_start.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys())); w.writeheader(); w.writerows(rows)

if __name__ == "__main__":
    main()
