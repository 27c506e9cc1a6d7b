#!/usr/bin/env python3
"""Peer predictions from GenZ (PyPI `genz-llm`) for the inference validation table.

Reproduce from a fresh machine (CPU only, a few seconds in all):

    python3 -m venv /work/peers/venv
    /work/peers/venv/bin/pip install genz-llm==0.0.16
    nice -n 10 /work/peers/venv/bin/python scripts/peers/run_genz.py
    nice -n 10 /work/peers/venv/bin/python scripts/peers/run_genz.py --set heldout1

Writes reports/infer/peers/genz.csv (case,seconds,notes) and genz_detail.json (per-operator
latencies, wall time of each GenZ call). GenZ is only called through its public API
(prefill_moddeling / decode_moddeling); nothing of it is copied here.

Hardware: GenZ's own `H100_GPU` preset (989 dense BF16 TFLOP/s, 80 GB, 3400 GB/s, ICN 450)
with only memory capacity and bandwidth changed to the H200's: 141 GB and 4.8 TB/s.
GenZ reads `Memory_BW` in GiB/s (its Unit class scales 'GBsec' by 2**30), so 4.8e12 B/s is
passed as 4.8e12 / 2**30 = 4470.35; the figure with the preset convention (4800 -> 5.15e12 B/s)
is kept in genz_detail.json as `seconds_bw4800` for reference.

Efficiency: GenZ's defaults, system_eff=1 (compute and memory efficiency 100%, pure roofline
per operator: max(MACs / (peak/2), bytes / BW)). No tuning to any measurement.
"""
import copy
import csv
import json
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore")

from GenZ.LLM_inference import prefill_moddeling, decode_moddeling  # noqa: E402
from GenZ.Models import get_configs  # noqa: E402
from Systems.system_configs import system_configs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "reports", "infer", "peers")

H100 = system_configs["H100_GPU"]
BW_BYTES = 4.8e12


def h200(bw_field):
    s = dict(H100)
    s["Memory_size"] = 141
    s["Memory_BW"] = bw_field
    return s


H200 = h200(BW_BYTES / 2**30)          # 4.8e12 B/s as GenZ sees it
H200_PRESET_CONV = h200(4800)          # preset convention (vendor number in a GiB/s field)

LAYER_OPS = {"QKV", "Logit", "Attend", "Logit Pre", "Attend Pre", "Logit Suf", "Attend Suf",
             "Out Proj", "Gate", "up+gate", "down"}
MOE_OPS = {"Gate", "up+gate", "down"}


def model_cfg(name, layers=None):
    cfg = copy.deepcopy(get_configs(name))
    if layers is not None:
        cfg.num_decoder_layers = layers
        cfg.model = f"{cfg.model}-{layers}L"
    return cfg


def run(phase, cfg, B, L, system):
    t0 = time.perf_counter()
    if phase == "prefill":
        out = prefill_moddeling(model=cfg, batch_size=B, input_tokens=L, system_name=system,
                                system_eff=1, bits="bf16", tensor_parallel=1)
    else:
        # Bb=1: GenZ's decode default is Bb=4 (beam search, batch*4 sequences sharing a prefix)
        out = decode_moddeling(model=cfg, batch_size=B, input_tokens=L, output_tokens=0, Bb=1,
                               system_name=system, system_eff=1, bits="bf16", tensor_parallel=1)
    wall = time.perf_counter() - t0
    df = out["model_df"]
    ops = [(str(r["Layer Name"]), float(r["Latency (msec)"]) * 1e-3, str(r["Bound"]))
           for _, r in df.iterrows() if r["Op Type"] not in ("Repeat", "EndRepeat")]
    return float(out["Latency"]) * 1e-3, ops, wall


def case_seconds(kind, ops, total):
    if kind == "layer":
        return sum(t for n, t, _ in ops if n in LAYER_OPS)
    if kind == "moe":
        return sum(t for n, t, _ in ops if n in MOE_OPS)
    # whole model: GenZ's total minus its input-embedding op (a D x L x V GEMM; not in the case)
    return total - sum(t for n, t, _ in ops if n == "embeddings")


def cases(which):
    if which == "heldout1":
        # The held-out set of scripts/gpu/measure_llama.py (--set heldout1), the same shapes.
        for B, L in ((1, 1024), (1, 3072), (1, 6144), (3, 1024), (3, 3072), (3, 6144), (8, 256)):
            yield f"layer_prefill_b{B}_l{L}", "layer", "prefill", "llama3_8b", 1, B, L
        for B, L in ((2, 2048), (2, 8192), (16, 2048), (16, 8192), (64, 2048), (64, 8192),
                     (256, 1024)):
            yield f"layer_decode_b{B}_l{L}", "layer", "decode", "llama3_8b", 1, B, L
        yield "model_prefill_b2_l1024", "model", "prefill", "llama3_8b", None, 2, 1024
        yield "model_decode_b32_l4096", "model", "decode", "llama3_8b", None, 32, 4096
        return
    for B in (1, 2, 4):
        for L in (512, 2048, 8192):
            yield f"layer_prefill_b{B}_l{L}", "layer", "prefill", "llama3_8b", 1, B, L
    for B in (1, 8, 32, 128):
        for L in (1024, 4096, 16384):
            yield f"layer_decode_b{B}_l{L}", "layer", "decode", "llama3_8b", 1, B, L
    yield "model_prefill_b1_l2048", "model", "prefill", "llama3_8b", None, 1, 2048
    yield "model_decode_b8_l2048", "model", "decode", "llama3_8b", None, 8, 2048
    yield "moe_prefill_b1_l2048", "moe", "prefill", "mixtral_8x7b", 1, 1, 2048
    yield "moe_decode_b32_l2048", "moe", "decode", "mixtral_8x7b", 1, 32, 2048


NOTES = {
    "layer_prefill": "GenZ default eff (ceff=meff=1); 1-layer Llama-3-8B config, sum of QKV+Logit+Attend+OutProj+up+gate+down; "
                     "attention is NOT causal (full LxL Logit/Attend, GenZ has no causal option); no norms/RoPE/SiLU/residual ops in GenZ's graph",
    "layer_decode": "GenZ default eff (ceff=meff=1); Bb=1 (GenZ default Bb=4 is beam search); 1-layer config (the 32-layer KV of big cases exceeds 141 GB and GenZ refuses); "
                    "no norms/RoPE/SiLU/softmax ops in GenZ's graph",
    "model_prefill": "GenZ default eff; 32 layers + LM head over all L tokens (GenZ's classifier is V x L x D); GenZ's input 'embeddings' op (a D x L x V GEMM) subtracted; no final norm op in GenZ; attention not causal",
    "model_decode": "GenZ default eff; Bb=1; 32 layers + LM head; no final norm op in GenZ (decode graph has no input embedding)",
    "moe_prefill": "GenZ default eff; Mixtral 1-layer config, MoE block only (Gate GEMM + up+gate + down); tokens spread evenly, L*top2/8 per expert, all 8 experts' weights read; no softmax/top-k op",
    "moe_decode": "GenZ default eff; Bb=1; MoE block only (Gate+up+gate+down); GenZ decode reads only top_k=2 experts' weights whatever the batch (32 tokens x top-2 would in practice touch ~all 8 experts)",
}


def main():
    # `--set heldout1` writes genz_heldout1.csv / genz_heldout1_detail.json instead.
    which = sys.argv[sys.argv.index("--set") + 1] if "--set" in sys.argv else "dev"
    suffix = "" if which == "dev" else f"_{which}"
    os.makedirs(OUT, exist_ok=True)
    rows, detail = [], {}
    for name, kind, phase, model, layers, B, L in cases(which):
        cfg = model_cfg(model, layers)
        total, ops, wall = run(phase, cfg, B, L, H200)
        sec = case_seconds(kind, ops, total)
        total2, ops2, _ = run(phase, cfg, B, L, H200_PRESET_CONV)
        sec2 = case_seconds(kind, ops2, total2)
        note = NOTES[f"{kind}_{phase}"]
        extra = {}
        if kind == "model" and phase == "prefill":
            cls = sum(t for n, t, _ in ops if n == "classifier")
            emb = sum(t for n, t, _ in ops if n == "embeddings")
            extra = {"classifier_s": cls, "embeddings_s": emb, "genz_total_s": total}
            note += f"; classifier {cls:.6g} s of it; GenZ total incl. embeddings {total:.6g} s"
        rows.append((name, f"{sec:.6e}", note))
        detail[name] = {"seconds": sec, "seconds_bw4800": sec2, "genz_wall_s": wall,
                        "ops": [{"name": n, "s": t, "bound": b} for n, t, b in ops], **extra}
        print(f"{name:28s} {sec*1e6:12.2f} us  (bw4800: {sec2*1e6:10.2f} us)  wall {wall:.3f} s", flush=True)
    with open(os.path.join(OUT, f"genz{suffix}.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case", "seconds", "notes"])
        w.writerows(rows)
    from importlib.metadata import version
    import GenZ.version as v
    meta = {"genz_llm_dist_version": version("genz-llm"), "GenZ.version.__version__": v.__version__, "python": sys.version.split()[0],
            "system_H200": H200, "system_H200_preset_bw_convention": H200_PRESET_CONV,
            "system_eff": 1}
    with open(os.path.join(OUT, f"genz{suffix}_detail.json"), "w") as f:
        json.dump({"meta": meta, "cases": detail}, f, indent=1)


if __name__ == "__main__":
    main()
