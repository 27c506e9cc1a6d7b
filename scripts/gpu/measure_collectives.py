#!/usr/bin/env python3
"""Truth for issue 15: NCCL collectives and a tensor-parallel Llama-3-8B layer on the GPUs of one
host, for cascade's collective model (`sim/infer/collective.rs`) and the inference system's TP
step. Run on the multi-GPU machine (NVLink multicast off, as the device tool's KINDS.md asks):

    NCCL_NVLS_ENABLE=0 torchrun --nproc_per_node=2 scripts/gpu/measure_collectives.py --out DIR

On one GPU (`--nproc_per_node=1`) it checks its own mechanics only: every collective of one rank
is a copy or nothing, so those numbers are no truth for the model.

Sizes follow cascade's convention (`collective.rs`'s table), in bf16: all-reduce `n` = the
buffer every rank holds; all-gather `n` = the gathered buffer (each rank gives n/p);
reduce-scatter `n` = each rank's input (each gets n/p back); all-to-all `n` = each rank's send
buffer (n/p to every rank). Each size: 5 warm-up calls, then 20 timed calls, each between a
barrier and a CUDA event pair around the collective alone; the median per rank, then the largest
over the ranks. The TP layer (TP = world size): RMS norm, QKV (column-parallel), SDPA (causal
prefill; decode against a KV cache), O (row-parallel) and its all-reduce, the residual, RMS norm,
gate/up (column-parallel), SiLU·mul, down (row-parallel) and its all-reduce; no rotary
embedding. Median of 20 layer calls after 5 warm-ups (warm L2, steady clocks), and alone the two
all-reduces of its activation. Outputs: collectives_<p>gpu.csv, tp_layer_<p>gpu.csv,
collectives_<p>gpu_device.json."""
import argparse
import datetime
import json
import os
import statistics
import subprocess

import torch
import torch.distributed as dist
import torch.nn.functional as F

SIZES = [1 << (10 + 2 * i) for i in range(11)]  # 1 KiB .. 1 GiB
OPS = ["all_reduce", "all_gather", "reduce_scatter", "all_to_all"]
# Llama-3-8B.
HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN = 4096, 32, 8, 128, 14336
PHASES = [("prefill", 1, 2048, 0), ("prefill", 4, 512, 0), ("decode", 8, 1, 1024), ("decode", 64, 1, 2048)]


def timed(fn, reps=20, warm=5):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        dist.barrier()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) * 1e-3)
    return statistics.median(ts)


def slowest(x):
    t = torch.tensor([x], device="cuda", dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.item()


def collective(op, n, p):
    e = n // 2  # bf16 elements
    if op == "all_reduce":
        x = torch.ones(e, device="cuda", dtype=torch.bfloat16)
        return lambda: dist.all_reduce(x)
    if op == "all_gather":
        out = torch.empty(e - e % p, device="cuda", dtype=torch.bfloat16)
        x = torch.ones(out.numel() // p, device="cuda", dtype=torch.bfloat16)
        return lambda: dist.all_gather_into_tensor(out, x)
    if op == "reduce_scatter":
        x = torch.ones(e - e % p, device="cuda", dtype=torch.bfloat16)
        out = torch.empty(x.numel() // p, device="cuda", dtype=torch.bfloat16)
        return lambda: dist.reduce_scatter_tensor(out, x)
    x = torch.ones(e - e % p, device="cuda", dtype=torch.bfloat16)
    out = torch.empty_like(x)
    return lambda: dist.all_to_all_single(out, x)


def tp_layer(p, batch, tokens, past):
    h, kv, f = HEADS // p, KV_HEADS // p, FFN // p
    dev, dt = "cuda", torch.bfloat16
    w = lambda *s: torch.randn(*s, device=dev, dtype=dt) * 0.02  # noqa: E731
    wqkv, wo = w((h + 2 * kv) * HEAD_DIM, HIDDEN), w(HIDDEN, h * HEAD_DIM)
    wgu, wd = w(2 * f, HIDDEN), w(HIDDEN, f)
    g1, g2 = torch.ones(HIDDEN, device=dev, dtype=dt), torch.ones(HIDDEN, device=dev, dtype=dt)
    x = torch.randn(batch, tokens, HIDDEN, device=dev, dtype=dt)
    # The KV cache holds `past` keys and room for this step's.
    kc = torch.randn(batch, kv, past + tokens, HEAD_DIM, device=dev, dtype=dt) if past else None
    vc = torch.randn(batch, kv, past + tokens, HEAD_DIM, device=dev, dtype=dt) if past else None

    def layer():
        y = F.rms_norm(x, (HIDDEN,), g1, 1e-5)
        qkv = y @ wqkv.t()
        q, k, v = qkv.split([h * HEAD_DIM, kv * HEAD_DIM, kv * HEAD_DIM], dim=-1)
        q = q.view(batch, tokens, h, HEAD_DIM).transpose(1, 2)
        k = k.view(batch, tokens, kv, HEAD_DIM).transpose(1, 2)
        v = v.view(batch, tokens, kv, HEAD_DIM).transpose(1, 2)
        if past:
            kc[:, :, past:] = k
            vc[:, :, past:] = v
            k, v = kc, vc
        a = F.scaled_dot_product_attention(q, k, v, is_causal=not past, enable_gqa=True)
        o = a.transpose(1, 2).reshape(batch, tokens, h * HEAD_DIM) @ wo.t()
        dist.all_reduce(o)
        r = x + o
        y = F.rms_norm(r, (HIDDEN,), g2, 1e-5)
        gate, up = (y @ wgu.t()).split([f, f], dim=-1)
        d = (F.silu(gate) * up) @ wd.t()
        dist.all_reduce(d)
        return r + d

    act = torch.ones(batch * tokens * HIDDEN, device=dev, dtype=dt)
    return layer, lambda: (dist.all_reduce(act), dist.all_reduce(act)), act.numel() * 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    dist.init_process_group("nccl")
    rank, p = dist.get_rank(), dist.get_world_size()
    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
    rows = []
    for op in OPS:
        for n in SIZES:
            t = slowest(timed(collective(op, n, p)))
            rows.append([op, n, p, f"{t:.6e}"])
            if rank == 0:
                print(op, n, p, f"{t:.3e}", flush=True)
            torch.cuda.empty_cache()
    layers = []
    for phase, batch, tokens, past in PHASES:
        layer, reduces, act_bytes = tp_layer(p, batch, tokens, past)
        with torch.no_grad():
            t = slowest(timed(layer))
            r = slowest(timed(reduces))
        layers.append([phase, batch, tokens, past, p, act_bytes, f"{t:.6e}", f"{r:.6e}"])
        if rank == 0:
            print(layers[-1], flush=True)
        torch.cuda.empty_cache()
    if rank == 0:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, f"collectives_{p}gpu.csv"), "w") as fh:
            fh.write("collective,bytes,devices,median_s\n")
            fh.writelines(",".join(map(str, r)) + "\n" for r in rows)
        with open(os.path.join(a.out, f"tp_layer_{p}gpu.csv"), "w") as fh:
            fh.write("phase,batch,tokens,past,tp,activation_bytes,layer_s,two_all_reduces_s\n")
            fh.writelines(",".join(map(str, r)) + "\n" for r in layers)
        smi = lambda *q: subprocess.run(["nvidia-smi", *q], capture_output=True, text=True).stdout  # noqa: E731
        info = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "devices": p,
            "gpus": smi("-L").strip().splitlines(),
            "topology": smi("topo", "-m"),
            "nvlink": smi("nvlink", "-s"),
            "torch": torch.__version__,
            "nccl": ".".join(map(str, torch.cuda.nccl.version())),
            "env": {k: v for k, v in os.environ.items() if k.startswith("NCCL_")},
            "protocol": "per size: 5 warm-up calls, 20 timed calls each after a barrier, CUDA events "
                        "around the collective alone; median per rank, largest over ranks; TP layer: "
                        "median of 20 calls after 5 warm-ups",
        }
        with open(os.path.join(a.out, f"collectives_{p}gpu_device.json"), "w") as fh:
            json.dump(info, fh, indent=1)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
