#!/usr/bin/env python3
"""Measure a Llama-3-8B decoder layer and whole-model steps with PyTorch on the lent GPU, for
`cascade infer` (issue 12). Writes <out>/llama.csv, <out>/llama_kernels.csv, <out>/llama_device.json.

The layer is written the way Hugging Face's eager `LlamaDecoderLayer` runs it, with SDPA taking
the 8 KV heads as they are (`enable_gqa=True`): RMS norm; one fused QKV projection; rotary
embeddings on Q and K (`x*cos + rotate_half(x)*sin`); the new K and V written into the KV cache;
SDPA (causal in prefill; one query per sequence against the cache in decode); the output
projection; the residual add; RMS norm; gate and up projections, `silu(g) * u`, the down
projection; the residual add. A whole-model step adds the embedding gather, 32 such layers (each
with its own weights), the final norm and the LM head on the last token of each sequence.

Protocol: prefill steps run eagerly, timed by CUDA events around the step, median of N back-to-back
runs after warm-up. Decode steps are captured in a CUDA graph (as serving frameworks run them) and
timed by events around a replay, median of N replays. Weights are random bf16 (std 0.02), so the
kernels cuBLAS and cuDNN choose are those of the real shapes.

Calibration (listed, in no score): chains of 1..16 one-element kernels replayed in a CUDA graph;
the per-added-kernel time is the graph launch gap (`gpu.graph_launch`).
"""

import argparse
import csv
import datetime
import json
import os
import statistics
import sys

import torch
import torch.nn.functional as F

DEV = "cuda"
D, H, HKV, HD, FF, VOCAB, LAYERS = 4096, 32, 8, 128, 14336, 128256, 32
EPS = 1e-5


def rnd(*shape):
    return (torch.randn(*shape, device=DEV, dtype=torch.float32) * 0.02).to(torch.bfloat16)


class Layer:
    def __init__(self):
        self.w_in = torch.ones(D, device=DEV, dtype=torch.bfloat16)
        self.w_post = torch.ones(D, device=DEV, dtype=torch.bfloat16)
        self.wqkv = rnd((H + 2 * HKV) * HD, D)
        self.wo = rnd(D, H * HD)
        self.wg = rnd(FF, D)
        self.wu = rnd(FF, D)
        self.wd = rnd(D, FF)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def rope(x, cos, sin):
    return (x * cos) + (rotate_half(x) * sin)


def layer_fwd(ly, x, cos, sin, kc, vc, pos, prefill):
    """x: [B, S, D]; kc, vc: [B, HKV, C, HD] caches; the S new tokens go to positions pos..pos+S."""
    b, s, _ = x.shape
    h = F.rms_norm(x, (D,), ly.w_in, EPS)
    qkv = F.linear(h, ly.wqkv)
    q, k, v = qkv.split([H * HD, HKV * HD, HKV * HD], dim=-1)
    q = q.view(b, s, H, HD)
    k = k.view(b, s, HKV, HD)
    v = v.view(b, s, HKV, HD)
    q = rope(q, cos, sin)
    k = rope(k, cos, sin)
    kc[:, :, pos : pos + s].copy_(k.transpose(1, 2))
    vc[:, :, pos : pos + s].copy_(v.transpose(1, 2))
    o = F.scaled_dot_product_attention(
        q.transpose(1, 2), kc, vc, is_causal=prefill, enable_gqa=True
    )
    o = o.transpose(1, 2).contiguous().view(b, s, H * HD)
    x = x + F.linear(o, ly.wo)
    h = F.rms_norm(x, (D,), ly.w_post, EPS)
    a = F.silu(F.linear(h, ly.wg)) * F.linear(h, ly.wu)
    return x + F.linear(a, ly.wd)


def rope_tables(s, start):
    inv = 1.0 / (500000.0 ** (torch.arange(0, HD, 2, device=DEV, dtype=torch.float32) / HD))
    t = torch.arange(start, start + s, device=DEV, dtype=torch.float32)
    f = torch.outer(t, inv)
    emb = torch.cat((f, f), dim=-1)
    # [S, 1, HD]: broadcast over heads of [B, S, H, HD].
    return emb.cos().to(torch.bfloat16)[:, None, :], emb.sin().to(torch.bfloat16)[:, None, :]


def time_eager(fn, reps, warm=3):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        e = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        e.record()
        torch.cuda.synchronize()
        ts.append(a.elapsed_time(e) * 1e-3)
    return ts


def time_graph(fn, reps):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    for _ in range(3):
        g.replay()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        e = torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        e.record()
        torch.cuda.synchronize()
        ts.append(a.elapsed_time(e) * 1e-3)
    del g
    return ts


def layer_case(ly, b, n, phase):
    """One layer: prefill of n tokens per sequence, or one decode step against n cached keys
    (the new token's included)."""
    if phase == "prefill":
        x = rnd(b, n, D)
        kc = torch.empty(b, HKV, n, HD, device=DEV, dtype=torch.bfloat16)
        vc = torch.empty_like(kc)
        cos, sin = rope_tables(n, 0)
        return lambda: layer_fwd(ly, x, cos, sin, kc, vc, 0, True)
    x = rnd(b, 1, D)
    kc = rnd(b, HKV, n, HD)
    vc = rnd(b, HKV, n, HD)
    cos, sin = rope_tables(1, n - 1)
    return lambda: layer_fwd(ly, x, cos, sin, kc, vc, n - 1, False)


def model_case(layers, emb, w_final, lm, b, n, phase):
    if phase == "prefill":
        ids = torch.randint(0, VOCAB, (b, n), device=DEV)
        caches = [
            (
                torch.empty(b, HKV, n, HD, device=DEV, dtype=torch.bfloat16),
                torch.empty(b, HKV, n, HD, device=DEV, dtype=torch.bfloat16),
            )
            for _ in layers
        ]
        cos, sin = rope_tables(n, 0)
        pos, s = 0, n
    else:
        ids = torch.randint(0, VOCAB, (b, 1), device=DEV)
        caches = [(rnd(b, HKV, n, HD), rnd(b, HKV, n, HD)) for _ in layers]
        cos, sin = rope_tables(1, n - 1)
        pos, s = n - 1, 1

    def fn():
        x = F.embedding(ids, emb)
        for ly, (kc, vc) in zip(layers, caches):
            x = layer_fwd(ly, x, cos, sin, kc, vc, pos, phase == "prefill")
        h = F.rms_norm(x[:, -1:, :], (D,), w_final, EPS)
        return F.linear(h, lm)

    return fn


def kernels_of(fn):
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return [
        (ev.name, ev.device_time * 1e-6)
        for ev in prof.events()
        if ev.device_type == torch.autograd.DeviceType.CUDA
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--only", default="")
    ap.add_argument("--set", default="dev", choices=["dev", "heldout1"], help="dev: the first validation cases (now development data); heldout1: new shapes, measured once against a frozen model")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(1)
    p = torch.cuda.get_device_properties(0)
    info = {
        "device": p.name,
        "sms": p.multi_processor_count,
        "memory_bytes": p.total_memory,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model_commit": os.environ.get("CASCADE_MODEL_COMMIT", ""),
        "protocol": f"prefill: eager, events around the step, median of {args.reps} back-to-back runs after 3 warm-ups; decode: one CUDA graph per step, events around a replay, median of {args.reps} replays",
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

    ly = Layer()
    cases = []
    if args.set == "dev":
        prefill = [(b, n) for b in (1, 2, 4) for n in (512, 2048, 8192)]
        decode = [(b, n) for b in (1, 8, 32, 128) for n in (1024, 4096, 16384)]
        models = (("model_prefill_b1_l2048", 1, 2048, "prefill"), ("model_decode_b8_l2048", 8, 2048, "decode"))
    else:
        prefill = [(b, n) for b in (1, 3) for n in (1024, 3072, 6144)] + [(8, 256)]
        decode = [(b, n) for b in (2, 16, 64) for n in (2048, 8192)] + [(256, 1024)]
        models = (("model_prefill_b2_l1024", 2, 1024, "prefill"), ("model_decode_b32_l4096", 32, 4096, "decode"))
    for b, n in prefill:
        cases.append((f"layer_prefill_b{b}_l{n}", "layer_prefill", b, n, "prefill"))
    for b, n in decode:
        cases.append((f"layer_decode_b{b}_l{n}", "layer_decode", b, n, "decode"))
    kern = []
    for name, cat, b, n, phase in cases:
        if args.only not in name:
            continue
        try:
            fn = layer_case(ly, b, n, phase)
            out = fn()
            assert torch.isfinite(out.float()).all(), name
            ts = time_eager(fn, args.reps) if phase == "prefill" else time_graph(fn, args.reps)
            med = statistics.median(ts)
        except Exception as e:  # noqa: BLE001
            print(f"{name}: error {type(e).__name__}: {e}"[:300], flush=True)
            rows.append((name, cat, f"error: {type(e).__name__}", float("nan"), ""))
            torch.cuda.empty_cache()
            continue
        rows.append((name, cat, f"infer --batch {b} --{'prompt' if phase == 'prefill' else 'context'} {n}", med, f"{min(ts):.6e}"))
        print(f"{name:<28} {med:.6e}", flush=True)
        if name in ("layer_prefill_b1_l512", "layer_decode_b1_l1024", "layer_prefill_b4_l8192", "layer_prefill_b1_l1024", "layer_decode_b2_l2048"):
            for k, t in kernels_of(fn):
                kern.append((name, k, f"{t:.6e}"))
        del fn
        torch.cuda.empty_cache()

    if "model" in args.only or args.only == "":
        layers = [ly] + [Layer() for _ in range(LAYERS - 1)]
        emb = rnd(VOCAB, D)
        lm = rnd(VOCAB, D)
        w_final = torch.ones(D, device=DEV, dtype=torch.bfloat16)
        for name, b, n, phase in models:
            try:
                fn = model_case(layers, emb, w_final, lm, b, n, phase)
                out = fn()
                assert torch.isfinite(out.float()).all(), name
                ts = time_eager(fn, 10) if phase == "prefill" else time_graph(fn, args.reps)
                med = statistics.median(ts)
            except Exception as e:  # noqa: BLE001
                print(f"{name}: error {type(e).__name__}: {e}"[:300], flush=True)
                rows.append((name, "model_" + phase, f"error: {type(e).__name__}", float("nan"), ""))
                continue
            rows.append((name, "model_" + phase, f"32 layers, batch {b}, {n}", med, f"{min(ts):.6e}"))
            print(f"{name:<28} {med:.6e}", flush=True)
            del fn
            torch.cuda.empty_cache()

    tag = "llama" if args.set == "dev" else f"llama_{args.set}"
    info["set"] = args.set
    with open(os.path.join(args.out, f"{tag}.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case", "category", "what", "median_s", "min_s"])
        for r in rows:
            w.writerow([r[0], r[1], r[2], f"{r[3]:.6e}", r[4]])
    with open(os.path.join(args.out, f"{tag}_kernels.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case", "kernel", "device_s"])
        w.writerows(kern)
    with open(os.path.join(args.out, f"{tag}_device.json"), "w") as f:
        json.dump(info, f, indent=2)
    print("done", flush=True)


if __name__ == "__main__":
    sys.exit(main())
