#!/usr/bin/env python3
"""Peer predictions from LLMCompass (Zhang et al., ISCA 2024) for the inference validation table.

Reproduce from a fresh machine (CPU only; LLMCompass's mapper takes seconds to a minute per GEMM):

    # LLMCompass at commit 2e015fd2ee750e6cad8d7152df52551e5b41ef20 (github.com/PrincetonUniversity/LLMCompass)
    git clone https://github.com/PrincetonUniversity/LLMCompass /work/peers/llmcompass
    git -C /work/peers/llmcompass checkout 2e015fd2ee750e6cad8d7152df52551e5b41ef20
    python3 -m venv /work/peers/venv-llmcompass
    /work/peers/venv-llmcompass/bin/pip install numpy==1.26.4 pandas==2.2.3 scalesim==2.0.2
    nice -n 10 /work/peers/venv-llmcompass/bin/python scripts/peers/run_llmcompass.py \
        [--llmcompass /work/peers/llmcompass] [--budget-min 40] [--set dev|heldout1]

PyTorch is not installed: LLMCompass imports torch at module level but uses it only in its
`run_on_gpu` methods (and as a `@torch.compile` decorator on those GPU helpers), so a stub module
with an identity `compile` is put in sys.modules before importing it. Nothing of LLMCompass is
copied here: its own operators (Matmul, BatchedMatmul, Softmax, LayerNorm, GeLU) are called
through its API with the shapes of a Llama-3-8B / Mixtral layer, because its only transformer
blocks are GPT-3 style (MHA, GELU, LayerNorm).

Writes reports/infer/peers/llmcompass.csv (case,seconds,notes), llmcompass_detail.json
(per-operator latency and simulation wall time) and llmcompass_h200.json (the hardware file).
Cases run in the order layer_decode, layer_prefill, moe, model; once --budget-min of
simulation has passed, the remaining cases are written with empty seconds and the reason.

`--set heldout1` runs the held-out shapes (those of scripts/gpu/measure_llama.py --set heldout1)
with the same hardware file and per-case methodology, and writes llmcompass_heldout1.csv and
llmcompass_heldout1_detail.json instead; it leaves the dev files and llmcompass_h200.json alone.
"""
import argparse
import copy
import csv
import json
import os
import sys
import time
import types

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "reports", "infer", "peers")

# ---------------------------------------------------------------------------------------------
# H200 in LLMCompass's architecture-template format. LLMCompass has no H100 preset (only GA100,
# MI210, TPUv3 and design templates), so the H200 is described from its spec directly, starting
# from configs/GA100.json and changing the fields listed in `H200_CHANGES`.
# ---------------------------------------------------------------------------------------------
FREQ = 1.98e9
SMS = 132
SUBLANES = 4
ARRAY = 16
PEAK_BF16 = 989e12
# 16x16 arrays keep LLMCompass's shipped scale-sim look-up table valid (look_up_table_16_16.csv);
# the per-SM tensor rate is matched to 989 TFLOP/s at 1.98 GHz through mac_per_cycle (a float
# LLMCompass already uses, e.g. 0.5 for MI210).
MAC_PER_CYCLE = PEAK_BF16 / (2 * SMS * SUBLANES * ARRAY * ARRAY * FREQ)

H200_CHANGES = {
    "name": "NVIDIA H200 SXM x1 (derived from configs/GA100.json)",
    "device_count": 1,
    "frequency_Hz": FREQ,
    "core_count": SMS,
    "systolic_array.mac_per_cycle": MAC_PER_CYCLE,
    "SRAM_KB": 256,
    "global_buffer_MB": 50,
    "memory_channel_physical_count": 6,
    "memory_channel_active_count": 6,
    "bandwidth_per_pin_bit": 6.25e9,
    "total_capacity_GB": 141,
    "link": "NVLink4, 18 links x 25 GB/s per direction (900 GB/s total); unused with 1 device",
}


def h200_template(ga100):
    s = copy.deepcopy(ga100)
    s["name"] = H200_CHANGES["name"]
    s["device_count"] = 1
    s["interconnect"]["link"]["name"] = "NVLink4"
    s["interconnect"]["link_count_per_device"] = 18
    d = s["device"]
    d["frequency_Hz"] = FREQ
    c = d["compute_chiplet"]
    c["physical_core_count"] = SMS
    c["core_count"] = SMS
    c["process_node"] = "5nm"  # area model only
    c["core"]["sublane_count"] = SUBLANES
    c["core"]["systolic_array"]["array_width"] = ARRAY
    c["core"]["systolic_array"]["array_height"] = ARRAY
    c["core"]["systolic_array"]["mac_per_cycle"] = MAC_PER_CYCLE
    c["core"]["SRAM_KB"] = 256
    io = d["io"]
    io["process_node"] = "5nm"
    io["global_buffer_MB"] = 50
    io["physical_global_buffer_MB"] = 50
    # global_buffer_bandwidth_per_cycle_byte left at GA100's 5120 B/cycle (no H100 figure given)
    io["memory_channel_physical_count"] = 6
    io["memory_channel_active_count"] = 6
    io["pin_count_per_channel"] = 1024
    io["bandwidth_per_pin_bit"] = 6.25e9  # 6 x 1024 x 6.25 Gb/s / 8 = 4.8 TB/s
    d["memory"]["total_capacity_GB"] = 141
    return s


def install_torch_stub():
    torch = types.ModuleType("torch")
    torch.compile = lambda f=None, **k: (f if f is not None else (lambda g: g))
    torch.Tensor = object
    sys.modules["torch"] = torch


# ---------------------------------------------------------------------------------------------
# Workload graphs built from LLMCompass operators
# ---------------------------------------------------------------------------------------------
D, HQ, HKV, DH, FFN, V = 4096, 32, 8, 128, 14336, 128256
GROUP = HQ // HKV
E, TOPK = 8, 2


def llama_layer_prefill(B, L):
    """One Llama-3-8B decoder layer, prefill. GQA as 8 groups of 4 query heads sharing a KV head."""
    T = B * L
    return [
        ("rmsnorm_in", "layernorm", (T, D), 1),
        ("qkv", "matmul", (T, D, (HQ + 2 * HKV) * DH), 1),
        ("q_kT", "bmm", (B * HKV, GROUP * L, DH, L), 1),
        ("softmax", "softmax", (B * HQ * L, L), 1),
        ("a_v", "bmm", (B * HKV, GROUP * L, L, DH), 1),
        ("o_proj", "matmul", (T, HQ * DH, D), 1),
        ("rmsnorm_post", "layernorm", (T, D), 1),
        ("gate_up", "matmul", (T, D, 2 * FFN), 1),
        ("silu_mul", "gelu", (T * FFN,), 1),
        ("down", "matmul", (T, FFN, D), 1),
    ]


def llama_layer_decode(B, L):
    return [
        ("rmsnorm_in", "layernorm", (B, D), 1),
        ("qkv", "matmul", (B, D, (HQ + 2 * HKV) * DH), 1),
        ("q_kT", "bmm", (B * HKV, GROUP, DH, L), 1),
        ("softmax", "softmax", (B * HQ, L), 1),
        ("a_v", "bmm", (B * HKV, GROUP, L, DH), 1),
        ("o_proj", "matmul", (B, HQ * DH, D), 1),
        ("rmsnorm_post", "layernorm", (B, D), 1),
        ("gate_up", "matmul", (B, D, 2 * FFN), 1),
        ("silu_mul", "gelu", (B * FFN,), 1),
        ("down", "matmul", (B, FFN, D), 1),
    ]


def mixtral_moe(T):
    """Router + 8 experts with tokens spread evenly (T*top2/8 per expert): no attention."""
    tpe = T * TOPK // E
    return [
        ("router", "matmul", (T, D, E), 1),
        ("router_softmax", "softmax", (T, E), 1),
        ("expert_gate_up", "matmul", (tpe, D, 2 * FFN), E),
        ("expert_silu_mul", "gelu", (tpe * FFN,), E),
        ("expert_down", "matmul", (tpe, FFN, D), E),
    ]


def model_graph(layer_ops, T_head):
    ops = [(n, k, s, r * 32) for n, k, s, r in layer_ops]
    ops += [("final_rmsnorm", "layernorm", (T_head, D), 1), ("lm_head", "matmul", (T_head, D, V), 1)]
    return ops


def layer_prefill_flops(B, L):
    """Expected cost used to order the held-out prefill cases: GEMM + (non-causal) attention FLOPs."""
    w = D * (HQ + 2 * HKV) * DH + HQ * DH * D + D * 2 * FFN + FFN * D
    return 2 * B * L * w + 4 * B * L * L * HQ * DH


def cases(which="dev"):
    if which == "heldout1":
        for B, L in ((2, 2048), (2, 8192), (16, 2048), (16, 8192), (64, 2048), (64, 8192),
                     (256, 1024)):
            yield f"layer_decode_b{B}_l{L}", llama_layer_decode(B, L)
        pre = [(1, 1024), (1, 3072), (1, 6144), (3, 1024), (3, 3072), (3, 6144), (8, 256)]
        for B, L in sorted(pre, key=lambda x: layer_prefill_flops(*x)):
            yield f"layer_prefill_b{B}_l{L}", llama_layer_prefill(B, L)
        yield "model_prefill_b2_l1024", model_graph(llama_layer_prefill(2, 1024), 2 * 1024)
        yield "model_decode_b32_l4096", model_graph(llama_layer_decode(32, 4096), 32)
        return
    for B in (1, 8, 32, 128):
        for L in (1024, 4096, 16384):
            yield f"layer_decode_b{B}_l{L}", llama_layer_decode(B, L)
    pre = [(B, L) for B in (1, 2, 4) for L in (512, 2048, 8192)]
    for B, L in sorted(pre, key=lambda x: (x[0] * x[1], x[0])):
        yield f"layer_prefill_b{B}_l{L}", llama_layer_prefill(B, L)
    yield "moe_decode_b32_l2048", mixtral_moe(32)
    yield "moe_prefill_b1_l2048", mixtral_moe(2048)
    yield "model_decode_b8_l2048", model_graph(llama_layer_decode(8, 2048), 8)
    yield "model_prefill_b1_l2048", model_graph(llama_layer_prefill(1, 2048), 2048)


NOTES = {
    "layer_prefill": "heuristic-GPU mapper; LLMCompass operators in Llama-3-8B shapes: LayerNorm for RMSNorm, fused QKV and gate+up GEMMs, GeLU op for SiLU*mul, "
                     "unfused attention (QK^T bmm, softmax, AV bmm; GQA as 8 groups of 4 q heads) NOT causal (LLMCompass has no mask); no RoPE/residual ops; "
                     "includes LLMCompass's A100 per-kernel overheads",
    "layer_decode": "heuristic-GPU mapper; same Llama-3-8B layer from LLMCompass operators (KV cache of L tokens read by bmm, GQA as 8 groups of 4 q heads); "
                    "includes LLMCompass's A100 per-kernel overheads",
    "moe": "heuristic-GPU mapper; Mixtral MoE block only: router GEMM + softmax, 8 experts with T*2/8 tokens each (even routing), expert gate+up / SiLU*mul (GeLU op) / down; "
           "no top-k/gather/scatter ops; includes A100 per-kernel overheads",
    "model": "heuristic-GPU mapper; 32 x the layer above + final norm (LayerNorm op) + LM head GEMM over all tokens; no embedding; includes A100 per-kernel overheads",
}


def note_for(name):
    for k in ("layer_prefill", "layer_decode", "moe", "model"):
        if name.startswith(k):
            return NOTES[k]
    return ""


class Sim:
    def __init__(self, device, dt, cache_path):
        self.device, self.dt, self.cache_path = device, dt, cache_path
        self.cache = {}
        if cache_path and os.path.exists(cache_path):
            with open(cache_path) as f:
                self.cache = json.load(f)

    def op(self, kind, shape):
        from software_model.matmul import Matmul, BatchedMatmul
        from software_model.softmax import Softmax
        from software_model.layernorm import LayerNorm
        from software_model.gelu import GeLU
        from software_model.utils import Tensor
        key = f"{kind}:{','.join(map(str, shape))}"
        if key in self.cache:
            return self.cache[key]["s"], self.cache[key]["sim_wall_s"], True
        dt, dev = self.dt, self.device
        ov = dev.compute_module.overhead
        t0 = time.perf_counter()
        if kind == "matmul":
            M, K, N = shape
            op = Matmul(dt); op(Tensor([M, K], dt), Tensor([K, N], dt))
            s = op.compile_and_simulate(dev, "heuristic-GPU"); o = ov.matmul
        elif kind == "bmm":
            bs, M, K, N = shape
            op = BatchedMatmul(dt); op(Tensor([bs, M, K], dt), Tensor([bs, K, N], dt))
            s = op.compile_and_simulate(dev, "heuristic-GPU"); o = ov.matmul
        elif kind == "softmax":
            M, N = shape
            op = Softmax(dt); op(Tensor([M, N], dt))
            s = op.compile_and_simulate(dev, "heuristic-GPU"); o = ov.softmax
        elif kind == "layernorm":
            M, N = shape
            op = LayerNorm(dt); op(Tensor([M, N], dt))
            s = op.compile_and_simulate(dev, "heuristic-GPU"); o = ov.layernorm
        elif kind == "gelu":
            (M,) = shape
            op = GeLU(dt); op(Tensor([M], dt))
            s = op.compile_and_simulate(dev, "heuristic-GPU"); o = ov.gelu
        else:
            raise ValueError(kind)
        wall = time.perf_counter() - t0
        self.cache[key] = {"s": float(s), "overhead_s": o, "sim_wall_s": wall}
        if self.cache_path:
            with open(self.cache_path, "w") as f:
                json.dump(self.cache, f, indent=0)
        return float(s), wall, False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llmcompass", default="/work/peers/llmcompass")
    ap.add_argument("--budget-min", type=float, default=40.0)
    ap.add_argument("--cache", default="/work/peers/llmcompass_opcache.json",
                    help="per-operator result cache (outside the repo); delete for a cold run")
    ap.add_argument("--set", dest="which", choices=("dev", "heldout1"), default="dev",
                    help="case list; heldout1 writes llmcompass_heldout1{.csv,_detail.json}")
    args = ap.parse_args()
    suffix = "" if args.which == "dev" else f"_{args.which}"
    csv_path = os.path.join(OUT, f"llmcompass{suffix}.csv")
    detail_path = os.path.join(OUT, f"llmcompass{suffix}_detail.json")

    install_torch_stub()
    lc = os.path.abspath(args.llmcompass)
    sys.path.insert(0, lc)
    os.chdir(lc)  # LLMCompass opens ./systolic_array_model/... relative to the working directory
    os.makedirs("systolic_array_model/temp", exist_ok=True)
    from design_space_exploration.dse import template_to_system, read_architecture_template
    from software_model.utils import data_type_dict

    spec = h200_template(read_architecture_template(os.path.join(lc, "configs", "GA100.json")))
    os.makedirs(OUT, exist_ok=True)
    hw_path = os.path.join(OUT, "llmcompass_h200.json")
    if args.which == "dev":
        with open(hw_path, "w") as f:
            json.dump(spec, f, indent=1)
    elif os.path.exists(hw_path):
        with open(hw_path) as f:
            if json.load(f) != json.loads(json.dumps(spec)):
                print(f"WARNING: hardware differs from {hw_path} (not rewritten)", flush=True)
    system = template_to_system(spec)
    dev = system.device
    cm = dev.compute_module
    hw = {"tensor_flops": cm.total_systolic_array_flops, "vector_flops": cm.total_vector_flops,
          "hbm_Bps": dev.io_module.bandwidth, "l2_bytes": cm.l2_size,
          "l2_Bps": cm.l2_bandwidth_per_cycle * cm.clock_freq,
          "overheads_s": vars(cm.overhead), "mac_per_cycle": MAC_PER_CYCLE}
    print("H200 as LLMCompass sees it:", hw, flush=True)

    # LLMCompass's fp16 type stands in for bf16 (same 2-byte word; no bf16 type in its model)
    sim = Sim(dev, data_type_dict["fp16"], args.cache)
    t_start = time.perf_counter()
    rows, detail = [], {}
    for name, ops in cases(args.which):
        used = (time.perf_counter() - t_start) / 60
        if used > args.budget_min:
            reason = (f"skipped: LLMCompass simulation budget of {args.budget_min:.0f} min spent "
                      f"({used:.1f} min) before this case; layer cases ran first")
            rows.append((name, "", reason))
            detail[name] = {"skipped": reason}
            print(f"{name:28s} SKIPPED", flush=True)
            continue
        t0 = time.perf_counter()
        total = total_no_ov = 0.0
        cold_wall = 0.0
        od = []
        for op_name, kind, shape, rep in ops:
            s, w, cached = sim.op(kind, shape)
            o = sim.cache[f"{kind}:{','.join(map(str, shape))}"]["overhead_s"]
            total += rep * (s + o)
            total_no_ov += rep * s
            cold_wall += w
            od.append({"op": op_name, "kind": kind, "shape": shape, "repeat": rep, "s": s,
                       "overhead_s": o, "sim_wall_s": w, "cached": cached})
        wall = time.perf_counter() - t0
        note = note_for(name) + f"; without LLMCompass's per-kernel overheads {total_no_ov:.6g} s"
        if name.startswith("model_prefill"):
            lm = next(x for x in od if x["op"] == "lm_head")
            note += f"; LM head {lm['s'] + lm['overhead_s']:.6g} s of it"
        rows.append((name, f"{total:.6e}", note))
        detail[name] = {"seconds": total, "seconds_without_overheads": total_no_ov,
                        "case_wall_s": wall, "cold_sim_wall_s": cold_wall, "ops": od}
        print(f"{name:28s} {total*1e6:12.2f} us (no overheads {total_no_ov*1e6:10.2f} us) "
              f"wall {wall:7.1f} s (cold {cold_wall:7.1f} s)", flush=True)
        # write as we go so an interrupted run keeps what it has
        with open(csv_path, "w", newline="") as f:
            w = csv.writer(f); w.writerow(["case", "seconds", "notes"]); w.writerows(rows)
        with open(detail_path, "w") as f:
            json.dump({"hardware": hw, "cases": detail}, f, indent=1)
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f); w.writerow(["case", "seconds", "notes"]); w.writerows(rows)
    with open(detail_path, "w") as f:
        json.dump({"hardware": hw, "cases": detail,
                   "total_wall_s": time.perf_counter() - t_start}, f, indent=1)


if __name__ == "__main__":
    main()
