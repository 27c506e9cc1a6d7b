#!/usr/bin/env python3
"""Measure a Mixtral-8x7B MoE block with PyTorch on the lent GPU, for `cascade infer`'s MoE model
(`einsum/cascades/moe.ein`, role `moe` of workloads/mixtral_8x7b.toml). Writes <out>/moe.csv,
<out>/moe_kernels.csv, <out>/moe_device.json. Usage:
`python3 scripts/gpu/measure_moe.py --out DIR [--repeats N] [--only SUBSTR]`.

The block (d_model D = 4096, X = 8 experts, top-2, expert FFN F = 14336 SwiGLU, bf16, random
weights of std 0.02) is written in plain PyTorch on T tokens `x: [T, D]` (batch x prompt tokens in
prefill, batch tokens in decode; the MoE block does not see the context), the way the model
assumes, with the kernels each stage launches in eager PyTorch:

 1. router logits `x @ w_router`, w_router [D, X]: one cuBLAS GEMM T x 4096 x 8 (cuBLAS may add a
    split-K reduction kernel);
 2. `torch.softmax(logits, -1)` in bf16 over the 8 experts: one softmax kernel;
 3. `vals, ids = torch.topk(p, 2)`, then `w = vals / vals.sum(-1, keepdim=True)`: the top-k
    kernel(s) (a gather-top-k kernel, and a small sort of the k results when topk sorts them),
    one reduction (sum) and one element-wise division;
 4. grouping by expert with the routing forced BALANCED: `ids` from topk is discarded AFTER topk
    (so the router, softmax and topk kernels all run) and replaced by fixed ids, token t takes
    experts (2t) mod 8 (slot 0) and (2t+1) mod 8 (slot 1). Each run of 4 consecutive tokens then
    covers the 8 experts once, so every expert gets exactly T*2/8 tokens (T a multiple of 4);
    expert e holds tokens e//2 + 4i, i = 0..T/4-1 (slot e mod 2). The (token, slot) pairs sorted
    by expert, `perm`, and their tokens, `idx = perm // 2`, are constants built before timing
    (the sort a real router runs is not in the block). The gate weights keep topk's real
    renormalised values: slot j's weight w[t, j] goes to expert (2t+j) mod 8. Two index
    kernels: `w_flat = w.view(-1)[perm]` (2T gate weights into expert order) and the token
    gather `xe = x[idx].view(8, T*2//8, D)` (2T rows of 4096);
 5. experts as batched GEMMs: `g = torch.bmm(xe, wg)`, `u = torch.bmm(xe, wu)` (wg, wu
    [8, D, F]), `a = F.silu(g) * u`, `o = torch.bmm(a, wd)` (wd [8, F, D]): three cuBLAS batched
    GEMMs (batch 8, M = T/4) and two element-wise kernels (silu, mul);
 6. combine: `out = torch.zeros(T, D).index_add_(0, idx, o.view(-1, D) * w_flat[:, None])`:
    one element-wise multiply by the gate weights, one fill (zeros) and one index_add kernel
    (each token's 2 rows added into its output row; bf16, exact first add, so deterministic).

Protocol (that of scripts/gpu/measure_llama.py): prefill runs eagerly, timed by CUDA events around
the block, median of N back-to-back runs after 3 warm-ups (no L2 flush between runs, as
measure_llama.py; the 2.8 GB of expert weights are 56x the L2). Decode is captured in a CUDA graph
and timed by events around a replay, median of N replays. The kernels of one eager run of each case
are recorded with torch.profiler (moe_kernels.csv: case,kernel,device_s). Before the cases, the
block's output at T = 8 is checked against a float32 per-token reference (same bf16 router
weights), its relative error recorded in moe_device.json.

Calibration (listed, in no score): chains of 1..16 one-element kernels replayed in a CUDA graph;
the per-added-kernel time is the graph launch gap (`gpu.graph_launch`).
"""

import argparse
import csv
import datetime
import json
import os
import statistics
import subprocess
import sys

import torch
import torch.nn.functional as F

# The timing protocol is measure_llama.py's (the same functions, one copy).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure_llama import kernels_of, time_eager, time_graph  # noqa: E402

DEV = "cuda"
D, X, TOPK, FF = 4096, 8, 2, 14336

# (name, category, batch, n, phase): T = batch * n tokens in prefill, batch in decode.
PREFILL = [(1, 512), (1, 2048), (4, 1024), (1, 8192)]
DECODE = [(8, 2048), (32, 2048), (64, 2048), (128, 2048)]

ROUTING = (
    "balanced: topk's expert ids are discarded after topk; token t takes experts (2t) mod 8 and "
    "(2t+1) mod 8 with topk's renormalised top-2 weights, so every expert gets exactly T*2/8 tokens"
)


def case_list():
    cases = []
    for b, n in PREFILL:
        cases.append((f"moe_prefill_b{b}_l{n}", "moe_prefill", b, n, "prefill"))
    for b, n in DECODE:
        cases.append((f"moe_decode_b{b}_l{n}", "moe_decode", b, n, "decode"))
    return cases


def tokens(b, n, phase):
    return b * n if phase == "prefill" else b


def balanced_routing(t):
    """Pure Python. Returns (eid, perm, idx): eid[p] the expert of (token, slot) pair p = 2*token +
    slot, i.e. (2*token + slot) mod 8 = p mod 8; perm the pairs sorted (stably) by expert; idx =
    perm // 2, the token of each row of the expert-grouped [8, T*2/8] layout."""
    if t <= 0 or t % 4:
        raise ValueError(f"T = {t}: balanced top-2 of 8 experts needs T a positive multiple of 4")
    eid = [p % X for p in range(t * TOPK)]
    perm = sorted(range(t * TOPK), key=lambda p: (eid[p], p))
    idx = [p // TOPK for p in perm]
    per = t * TOPK // X
    counts = [0] * X
    for p in perm:
        counts[eid[p]] += 1
    assert counts == [per] * X, counts
    for tok in range(t):
        assert eid[TOPK * tok] != eid[TOPK * tok + 1]
    return eid, perm, idx


def rnd(*shape):
    return (torch.randn(*shape, device=DEV, dtype=torch.float32) * 0.02).to(torch.bfloat16)


class Moe:
    def __init__(self):
        self.wr = rnd(D, X)
        self.wg = rnd(X, D, FF)
        self.wu = rnd(X, D, FF)
        self.wd = rnd(X, FF, D)


def moe_fwd(m, x, idx, perm):
    """x: [T, D] bf16; idx, perm: int64 device tensors from balanced_routing(T)."""
    t = x.shape[0]
    logits = x @ m.wr  # GEMM T x 4096 x 8
    p = torch.softmax(logits, dim=-1)  # bf16
    vals, _ids = torch.topk(p, TOPK, dim=-1)  # _ids replaced by the balanced ids
    w = vals / vals.sum(-1, keepdim=True)
    w_flat = w.view(-1)[perm]  # gate weights in expert-grouped order
    xe = x[idx].view(X, t * TOPK // X, D)
    g = torch.bmm(xe, m.wg)
    u = torch.bmm(xe, m.wu)
    a = F.silu(g) * u
    o = torch.bmm(a, m.wd)
    return torch.zeros(t, D, device=x.device, dtype=x.dtype).index_add_(
        0, idx, o.view(-1, D) * w_flat[:, None]
    )


def routing_tensors(t):
    _, perm, idx = balanced_routing(t)
    return (
        torch.tensor(idx, device=DEV, dtype=torch.int64),
        torch.tensor(perm, device=DEV, dtype=torch.int64),
    )


def check(m, t=8):
    """Relative error of moe_fwd against a float32 per-expert reference with the same routing."""
    x = rnd(t, D)
    idx, perm = routing_tensors(t)
    out = moe_fwd(m, x, idx, perm).float()
    vals = torch.topk(torch.softmax(x @ m.wr, dim=-1), TOPK, dim=-1).values.float()
    w = vals / vals.sum(-1, keepdim=True)
    ref = torch.zeros(t, D, device=DEV, dtype=torch.float32)
    xf = x.float()
    for e in range(X):
        toks = [tok for tok in range(t) for j in range(TOPK) if (TOPK * tok + j) % X == e]
        slots = [j for tok in range(t) for j in range(TOPK) if (TOPK * tok + j) % X == e]
        tt = torch.tensor(toks, device=DEV)
        h = xf[tt]
        a = F.silu(h @ m.wg[e].float()) * (h @ m.wu[e].float())
        ref.index_add_(0, tt, (a @ m.wd[e].float()) * w[tt, torch.tensor(slots, device=DEV)][:, None])
    return ((out - ref).norm() / ref.norm()).item()


def driver_version():
    try:
        r = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return r.stdout.strip().splitlines()[0] if r.returncode == 0 and r.stdout.strip() else ""
    except Exception:  # noqa: BLE001
        return ""


def protocol(reps):
    return (
        f"MoE block only (router GEMM, bf16 softmax, topk + renormalise, index gathers, 3 batched "
        f"expert GEMMs + silu*mul, weighted index_add combine), routing {ROUTING}; "
        f"prefill: eager, events around the block, median of {reps} back-to-back runs after 3 "
        f"warm-ups, no L2 flush; decode: one CUDA graph per case, events around a replay, median "
        f"of {reps} replays; kernels: torch.profiler over one eager run of each case"
    )


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--repeats", "--reps", dest="reps", type=int, default=30)
    ap.add_argument("--only", default="", help="run only the cases whose name contains this")
    args = ap.parse_args(argv)
    if args.reps < 1:
        ap.error("--repeats must be >= 1")
    return args


def write_outputs(out, rows, kern, info):
    with open(os.path.join(out, "moe.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case", "category", "what", "median_s", "min_s"])
        for r in rows:
            w.writerow([r[0], r[1], r[2], f"{r[3]:.6e}", r[4]])
    with open(os.path.join(out, "moe_kernels.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case", "kernel", "device_s"])
        w.writerows(kern)
    with open(os.path.join(out, "moe_device.json"), "w") as f:
        json.dump(info, f, indent=2)


def main():
    args = parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(1)
    p = torch.cuda.get_device_properties(0)
    info = {
        "device": p.name,
        "sms": p.multi_processor_count,
        "memory_bytes": p.total_memory,
        "driver": driver_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model_commit": os.environ.get("CASCADE_MODEL_COMMIT", ""),
        "block": {"d_model": D, "experts": X, "top_k": TOPK, "ffn_dim": FF, "ffn": "swiglu", "dtype": "bf16"},
        "routing": ROUTING,
        "protocol": protocol(args.reps),
    }
    print(json.dumps(info), flush=True)

    rows = []
    # Calibration: the graph launch gap (per added one-element kernel).
    one = torch.zeros(1, device=DEV)
    chain = {}
    for n in (1, 2, 4, 8, 16):
        def fn(n=n):
            for _ in range(n):
                one.add_(1.0)
        chain[n] = statistics.median(time_graph(fn, 100))
        rows.append((f"calib_graph_chain_{n}", "calibration", f"{n} one-element adds in one graph", chain[n], ""))
    gap = (chain[16] - chain[1]) / 15
    info["graph_launch_s"] = gap
    print("graph chain:", chain, "gap", gap, flush=True)

    m = Moe()
    try:
        rel = check(m)
        info["check_rel_err_t8"] = rel
        print(f"check T=8 vs float32 reference: rel err {rel:.3e}" + ("" if rel < 5e-2 else "  CHECK FAILED"), flush=True)
    except Exception as e:  # noqa: BLE001
        info["check_rel_err_t8"] = f"error: {type(e).__name__}: {e}"[:300]
        print(f"check: error {type(e).__name__}: {e}"[:300], flush=True)
    torch.cuda.empty_cache()

    kern = []
    for name, cat, b, n, phase in case_list():
        if args.only not in name:
            continue
        t = tokens(b, n, phase)
        try:
            x = rnd(t, D)
            idx, perm = routing_tensors(t)
            fn = lambda: moe_fwd(m, x, idx, perm)  # noqa: E731
            out = fn()
            assert torch.isfinite(out.float()).all(), name
            ts = time_eager(fn, args.reps) if phase == "prefill" else time_graph(fn, args.reps)
            med = statistics.median(ts)
        except Exception as e:  # noqa: BLE001
            print(f"{name}: error {type(e).__name__}: {e}"[:300], flush=True)
            rows.append((name, cat, f"error: {type(e).__name__}", float("nan"), ""))
            torch.cuda.empty_cache()
            continue
        what = f"MoE block T={t}: infer --batch {b} --{'prompt' if phase == 'prefill' else 'context'} {n}"
        rows.append((name, cat, what, med, f"{min(ts):.6e}"))
        print(f"{name:<28} T={t:<5} {med:.6e}", flush=True)
        try:
            for k, kt in kernels_of(fn):
                kern.append((name, k, f"{kt:.6e}"))
        except Exception as e:  # noqa: BLE001
            print(f"{name}: profiler error {type(e).__name__}: {e}"[:300], flush=True)
        del fn, x, out
        torch.cuda.empty_cache()

    write_outputs(args.out, rows, kern, info)
    print("done", flush=True)


if __name__ == "__main__":
    sys.exit(main())
