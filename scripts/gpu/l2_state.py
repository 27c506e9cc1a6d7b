#!/usr/bin/env python3
"""Development experiment (issue 10): does the L2 state the protocol leaves behind cost time?

The protocol's flush kernel *writes* 512 MiB, so the op starts with L2 full of dirty lines that
must go back to HBM as the op's own lines replace them. This script times a few memory-heavy ops
after three different preludes, the op alone between events, median of N launches:
  write  - the protocol: overwrite 512 MiB (L2 full of dirty lines)
  read   - read 512 MiB (a sum: L2 full of clean lines; the op's fills evict for free)
  write+read - overwrite 512 MiB, then read 256 MiB (the dirty lines written back before the op)
and also pure-write and pure-read kernels, and per-kernel device times from the profiler with the
write prelude (no event gaps). Output: one CSV under --out. Not a scored set.
"""
import argparse, csv, os, statistics
import torch
import torch.nn.functional as F

DEV = "cuda"

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=40)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(1)
    flush = torch.empty((512 << 20) // 4, device=DEV, dtype=torch.float32)
    other = torch.randn((256 << 20) // 4, device=DEV, dtype=torch.float32)
    sink = torch.empty((), device=DEV, dtype=torch.float32)
    def p_write(): flush.fill_(1.0)
    def p_read(): torch.sum(flush, dim=0, out=sink)
    def p_wr(): flush.fill_(1.0); torch.sum(other, dim=0, out=sink)
    bf = torch.bfloat16
    def r(*s): return torch.randn(*s, device=DEV, dtype=bf)
    cases = []
    for n in [4096, 14336, 65536]:
        x = r(1, 4096); w = r(4096, n)
        cases.append((f"gemm_1x{n}x4096", lambda x=x, w=w: x @ w, 2 * 4096 * n))
    for sz in [32 << 20, 256 << 20]:
        s = torch.empty(sz // 2, device=DEV, dtype=bf).normal_(); d = torch.empty_like(s)
        cases.append((f"copy_{sz}", lambda s=s, d=d: d.copy_(s), 2 * sz))
        f = torch.empty(sz // 2, device=DEV, dtype=bf)
        cases.append((f"fill_{sz}", lambda f=f: f.fill_(2.0), sz))
        cases.append((f"sum_{sz}", lambda s=s: torch.sum(s, dtype=torch.float32), sz))
    for (b, m, n, k) in [(8, 4096, 4096, 128), (2, 8192, 8192, 128), (32, 512, 512, 64)]:
        A = r(b, m, k); B = r(b, k, n)
        cases.append((f"bmm_{b}x{m}x{n}x{k}", lambda A=A, B=B: torch.bmm(A, B), 2 * b * m * n * 2))
    for (rows, cols) in [(16384, 1024), (65536, 512), (4096, 32768), (4096, 4096)]:
        x = r(rows, cols)
        cases.append((f"softmax_{rows}x{cols}", lambda x=x: torch.softmax(x, -1), 4 * rows * cols))
    for (rows, cols) in [(4096, 4096), (32768, 768)]:
        x = r(rows, cols); g = r(cols); bb = r(cols)
        cases.append((f"layernorm_{rows}x{cols}", lambda x=x, g=g, bb=bb: F.layer_norm(x, (x.shape[-1],), g, bb), 4 * rows * cols))
        cases.append((f"rmsnorm_{rows}x{cols}", lambda x=x, g=g: F.rms_norm(x, (x.shape[-1],), g), 4 * rows * cols))
    for (b, h, n, d) in [(1, 32, 4096, 128), (4, 16, 2048, 128)]:
        q = r(b, h, n, d); k = r(b, h, n, d); v = r(b, h, n, d)
        from torch.nn.attention import SDPBackend, sdpa_kernel
        def fa(q=q, k=k, v=v):
            with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
                return F.scaled_dot_product_attention(q, k, v)
        cases.append((f"sdpa_flash_b{b}h{h}n{n}d{d}", fa, 4 * b * h * n * d * 2))
    preludes = {"write": p_write, "read": p_read, "write+read": p_wr}
    rows = []
    for name, fn, byts in cases:
        for _ in range(3): fn()
        torch.cuda.synchronize()
        rec = {"case": name, "bytes": byts}
        for pn, pre in preludes.items():
            ts = []
            for _ in range(a.reps):
                pre()
                e0 = torch.cuda.Event(enable_timing=True); e1 = torch.cuda.Event(enable_timing=True)
                e0.record(); fn(); e1.record(); torch.cuda.synchronize()
                ts.append(e0.elapsed_time(e1) * 1e-3)
            rec[pn] = statistics.median(ts)
        # device time of the op's kernels after the protocol's prelude, from the profiler
        try:
            from torch.profiler import ProfilerActivity, profile
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(10):
                    p_write(); fn()
                torch.cuda.synchronize()
            ev = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
            # drop the prelude kernels: they are the fill kernels over 512 MiB (the longest ones)
            per = {}
            for e in ev:
                per.setdefault(e.name, []).append(e.device_time * 1e-6)
            fillname = max(per, key=lambda k: statistics.median(per[k]) if "fill" in k.lower() or "elementwise" in k.lower() else 0)
            tot = 0.0
            for k_, v_ in per.items():
                if len(v_) >= 20 and k_ == fillname:
                    v_ = v_[1::2] if name.startswith("fill") else []
                tot += statistics.median(v_) * (len(v_) / 10) if v_ else 0.0
            rec["kernels_write_s"] = tot
            rec["kernels"] = ";".join(f"{k_[:60]}={statistics.median(v_):.3e}x{len(v_)}" for k_, v_ in per.items())
        except Exception as e:  # noqa
            rec["kernels_write_s"] = ""; rec["kernels"] = f"error {e}"[:100]
        rows.append(rec)
        print(name, {k: (f"{v:.3e}" if isinstance(v, float) else v) for k, v in rec.items() if k != "kernels"}, flush=True)
    with open(os.path.join(a.out, "l2_state.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys())); w.writeheader(); w.writerows(rows)

if __name__ == "__main__":
    main()
