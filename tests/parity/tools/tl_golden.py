#!/usr/bin/env python3
"""Convert one Timeloop v3 run of a parity case into the tool-neutral golden.json.

Usage: tl_golden.py CASE_DIR [MAP_YAML OUT_DIR GOLDEN_JSON]

(the optional arguments convert a run of another mapping of the same case, e.g.
the best mapping found by timeloop-mapper)

Reads the case's own inputs (arch.yaml, problem.yaml, map.yaml, ert.yaml, meta.yaml)
and Timeloop's raw outputs in CASE_DIR/out (timeloop-model.map+stats.xml for the
full-precision per-level statistics, timeloop-model.stats.txt for the summary and
the network ingress histograms). Every number under "results" is copied from the
tool's output; the few derived values are named derived_* and say how they were
derived. Needs only PyYAML and the standard library.
"""
import json
import math
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

TOOL = "timeloop-v3.0.3"


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def parse_range(name):
    """'RF[0..15]' -> ('RF', 16); 'RF' -> ('RF', 1)."""
    m = re.match(r"^(.*)\[(\d+)\.\.(\d+)\]$", name)
    if not m:
        return name, 1
    return m.group(1), int(m.group(3)) - int(m.group(2)) + 1


def walk_arch(arch):
    """Flatten a v0.3 tree into components, outermost first, with instance counts."""
    out = []
    node = arch
    mult = 1
    path = []
    while True:
        for comp in node.get("local", []) or []:
            base, n = parse_range(comp["name"])
            out.append({"name": base, "class": comp.get("class", ""),
                        "attributes": comp.get("attributes", {}) or {},
                        "instances": mult * n if n > 1 else mult,
                        "path": ".".join(path + [base])})
        subs = node.get("subtree")
        if not subs:
            break
        node = subs[0]
        base, n = parse_range(node["name"])
        path.append(base)
        mult *= n
        # The first subtree level is the top container itself.
    return out


def ert_table(ert):
    table = {}
    for comp in ert["ERT"]["tables"]:
        leaf = comp["name"].split(".")[-1]
        table[leaf] = {a["name"]: a["energy"] for a in comp["actions"]}
    return table


def per_ds(elem, cast=float):
    return [cast(i.text) for i in elem.find("PerDataSpace").findall("item")]


def fnum(x):
    if isinstance(x, float) and x.is_integer():
        return int(x)
    return x


def parse_xml(path):
    root = ET.parse(path).getroot()
    topo = root.find("engine/topology_")
    levels = []
    for item in topo.find("levels_").findall("item"):
        px = item.find("px")
        cls = px.get("class_name")
        if cls == "model::ArithmeticUnits":
            levels.append({"kind": "arith",
                           "name": px.find("specs_/LevelSpecs/level_name").text,
                           "energy": float(px.find("energy_").text),
                           "cycles": int(px.find("cycles_").text),
                           "utilized_instances": int(px.find("utilized_instances_").text),
                           "avg_utilized_instances": float(px.find("avg_utilized_instances_").text),
                           "algorithmic_computes": int(px.find("algorithmic_computes_").text),
                           "actual_computes": int(px.find("random_computes_").text)})
            continue
        stats = px.find("stats_")
        lv = {"kind": "buffer", "name": px.find("specs_/LevelSpecs/level_name").text}
        subnest = []
        for it in px.find("subnest_").findall("item"):
            subnest.append({k: int(it.find(k).text) for k in
                            ("dimension", "start", "end", "stride", "spacetime_dimension")})
        lv["subnest"] = subnest
        for child in stats:
            if child.find("PerDataSpace") is not None:
                try:
                    lv[child.tag] = [fnum(float(v)) for v in per_ds(child, float)]
                except (TypeError, ValueError):
                    pass
            elif child.text and child.text.strip():
                try:
                    lv[child.tag] = fnum(float(child.text))
                except ValueError:
                    pass
        levels.append(lv)
    nets = {}
    for item in topo.find("networks_").findall("item"):
        name = item.find("first").text
        st = item.find("second/px/stats_")
        nets[name] = {c.tag: [fnum(float(v)) for v in per_ds(c, float)]
                      for c in st if c.find("PerDataSpace") is not None}
    return levels, nets


def parse_stats_txt(path):
    text = Path(path).read_text()
    summary = {}
    m = re.search(r"^Cycles: (\d+)", text, re.M)
    summary["cycles"] = int(m.group(1))
    m = re.search(r"^Utilization: ([\d.]+)", text, re.M)
    summary["utilization_printed"] = float(m.group(1))
    m = re.search(r"^Computes = (\d+)", text, re.M)
    summary["computes"] = int(m.group(1))
    fj = {}
    block = text.split("fJ/Compute", 1)[1]
    for line in block.splitlines()[1:]:
        mm = re.match(r"^\s+(.+?)\s+= ([\d.]+)$", line)
        if not mm:
            break
        fj[mm.group(1)] = float(mm.group(2))
    summary["fJ_per_compute_printed"] = fj
    # Network ingress histograms: "Network N / A <==> B / ... Ds: ... @multicast m @scatter s: n"
    ingress = {}
    for sec in re.split(r"^Network \d+\n-+\n", text, flags=re.M)[1:]:
        name = sec.splitlines()[0].strip()
        cur = None
        hist = {}
        for line in sec.splitlines():
            md = re.match(r"^    (\w+):$", line)
            if md:
                cur = md.group(1)
                hist[cur] = []
                continue
            mi = re.match(r"^\s+@multicast (\d+) @scatter (\d+): ([\d.]+)$", line)
            if mi and cur:
                hist[cur].append({"multicast": int(mi.group(1)), "scatter": int(mi.group(2)),
                                  "ingresses": fnum(float(mi.group(3)))})
        ingress[name] = hist
    summary["ingress_histograms"] = ingress
    return summary


def main():
    case = Path(sys.argv[1])
    arch = load_yaml(case / "arch.yaml")["architecture"]
    prob = load_yaml(case / "problem.yaml")["problem"]
    map_file = Path(sys.argv[2]) if len(sys.argv) > 2 else case / "map.yaml"
    out = Path(sys.argv[3]) if len(sys.argv) > 3 else case / "out"
    golden_file = Path(sys.argv[4]) if len(sys.argv) > 4 else case / "golden.json"
    mapping = load_yaml(map_file)["mapping"]
    ert = ert_table(load_yaml(case / "ert.yaml"))
    meta = load_yaml(case / "meta.yaml")
    levels, nets = parse_xml(out / "timeloop-model.map+stats.xml")
    summary = parse_stats_txt(out / "timeloop-model.stats.txt")

    dims = prob["shape"]["dimensions"]
    ds_names = [d["name"] for d in prob["shape"]["data-spaces"]]
    tensor_of = meta["tensors"]
    instance = prob["instance"]
    extents = {d: instance[d] for d in dims}
    coefficients = {c["name"]: instance.get(c["name"], c["default"])
                    for c in prob["shape"].get("coefficients", [])}

    comps = walk_arch(arch)
    storage = [c for c in comps if any(s in c["class"] for s in ("DRAM", "SRAM", "regfile", "smartbuffer"))]
    macs = [c for c in comps if any(s in c["class"] for s in ("mac", "compute"))]
    buf_levels = [lv for lv in levels if lv["kind"] == "buffer"]  # innermost first
    arith = [lv for lv in levels if lv["kind"] == "arith"][0]

    # Bypass directives.
    keep_by_level = {}
    for d in mapping:
        if d["type"] in ("bypass", "datatype"):
            keep_by_level[d["target"]] = {"keep": d.get("keep", []), "bypass": d.get("bypass", [])}

    word_bits_all = set()
    arch_levels = []
    for c in storage:  # outermost first
        a = c["attributes"]
        wb = a.get("word-bits", a.get("datawidth", 16))
        word_bits_all.add(wb)
        bs = a.get("block-size", 1)
        depth = a.get("depth")
        mesh_x = a.get("meshX", 1)
        inst = c["instances"]
        e = ert.get(c["name"], {})
        is_dram = "DRAM" in c["class"]
        lv_stats = next(lv for lv in buf_levels if lv["name"] == c["name"])
        held = [tensor_of[ds_names[i]] for i, k in enumerate(lv_stats["keep"]) if k]
        arch_levels.append({
            "name": c["name"], "class": c["class"], "instances": inst,
            "mesh": [mesh_x, inst // mesh_x],
            "capacity_words": depth * bs if depth is not None else None,
            "word_bits": wb, "block_size": bs, "width_bits": a.get("width", wb * bs),
            "read_bw_words_per_cycle": a.get("read_bandwidth"),
            "write_bw_words_per_cycle": a.get("write_bandwidth"),
            "holds": held,
            "energy_pj": {
                "read": e.get("read"),
                "write": e.get("write"),
                "update": e.get("write"),
                "note": "per vector access of block_size words; Timeloop v3.0.3 prices fills AND updates "
                        "with the ERT 'write' action (the 'update' action is never looked up)",
            },
            "multicast": True,
            "spatial_reduction": True,
            "temporal_reduction_in_place": not is_dram,
            "address_generation_energy_pj": 0.0,
        })
    mac = macs[0]
    mac_e = ert[mac["name"]]["compute"]

    # Mapping: rebuilt from Timeloop's own per-level subnests (authoritative).
    def loops_of(lv):
        temporal, spatial = [], []
        for lp in reversed(lv["subnest"]):  # XML lists innermost first
            n = (lp["end"] - lp["start"]) // lp["stride"]
            if n <= 1:
                continue
            name = dims[lp["dimension"]]
            st = lp["spacetime_dimension"]
            if st == 0:
                temporal.append([name, n])
            else:
                spatial.append([name, n, "X" if st == 1 else "Y"])
        return temporal, spatial

    map_levels = []
    for c in storage:
        lv = next(x for x in buf_levels if x["name"] == c["name"])
        temporal, spatial = loops_of(lv)
        kept = [tensor_of[ds_names[i]] for i, k in enumerate(lv["keep"]) if k]
        map_levels.append({"level": c["name"], "temporal": temporal, "spatial": spatial,
                           "keep": kept,
                           "bypass": [tensor_of[n] for n in ds_names if tensor_of[n] not in kept]})

    # Results.
    per_level = []
    energy_by_level = {}
    net_by_parent = {}
    for name, st in nets.items():
        parent = name.split(" <==> ")[0]
        net_by_parent[parent] = (name, st)
    for c in storage:
        lv = next(x for x in buf_levels if x["name"] == c["name"])
        bs = c["attributes"].get("block-size", 1)
        e = ert.get(c["name"], {})
        lvl_energy = 0.0
        net_name, net = net_by_parent.get(c["name"], (None, None))
        for i, ds in enumerate(ds_names):
            if not lv["keep"][i]:
                continue
            inst = lv["utilized_instances"][i]
            energy_total = lv["energy"][i] * inst
            tr_total = lv["temporal_reduction_energy"][i] * inst
            ag_total = lv["addr_gen_energy"][i] * lv["utilized_clusters"][i]
            lvl_energy += energy_total + tr_total + ag_total
            entry = {
                "level": c["name"], "tensor": tensor_of[ds], "dataspace": ds,
                "reads": lv["reads"][i], "fills": lv["fills"][i], "updates": lv["updates"][i],
                "random_reads": lv["random_reads"][i], "random_fills": lv["random_fills"][i],
                "random_updates": lv["random_updates"][i],
                "temporal_reductions": lv["temporal_reductions"][i],
                "address_generations": lv["address_generations"][i],
                "partition_size": lv["partition_size"][i],
                "utilized_capacity": lv["utilized_capacity"][i],
                "utilized_instances": lv["utilized_instances"][i],
                "utilized_clusters": lv["utilized_clusters"][i],
                "counts_are": "per instance (multiply by utilized_instances for the level total)",
                "derived_vector_accesses": {
                    "how": "ceil(per-instance scalar count / block_size), per action",
                    "reads": math.ceil(lv["random_reads"][i] / bs),
                    "fills": math.ceil(lv["random_fills"][i] / bs),
                    "updates": math.ceil(lv["random_updates"][i] / bs)},
                "energy_pj_per_instance": lv["energy"][i],
                "energy_pj": energy_total,
                "temporal_reduction_energy_pj": tr_total,
                "address_generation_energy_pj": ag_total,
                "read_bw_words_per_cycle": lv["read_bandwidth"][i],
                "write_bw_words_per_cycle": lv["write_bandwidth"][i],
                "shared_bw_words_per_cycle": lv["shared_bandwidth"][i],
            }
            if net is not None:
                entry["network_to_child"] = {
                    "name": net_name,
                    "fanout": net["fanout"][i],
                    "multicast_factor": net["multicast_factor"][i],
                    "distributed_multicast": net["distributed_multicast"][i],
                    "distributed_multicast_factor": net["distributed_multicast_factor"][i],
                    "spatial_reductions": net["spatial_reductions"][i],
                    "link_transfers": net["link_transfers"][i],
                    "avg_hops": net["num_hops"][i],
                    "energy_pj_per_instance": net["energy"][i],
                    "spatial_reduction_energy_pj_per_instance": net["spatial_reduction_energy"][i],
                    "ingress_histogram": summary["ingress_histograms"].get(net_name, {}).get(ds, []),
                }
            per_level.append(entry)
        energy_by_level[c["name"]] = lvl_energy
        energy_by_level[c["name"] + ".cycles"] = lv["cycles"]
    cycles_by_level = {c["name"]: energy_by_level.pop(c["name"] + ".cycles") for c in storage}
    slowdown_by_level = {lv["name"]: lv["slowdown"] for lv in buf_levels}
    network_energy = 0.0
    for name, st in nets.items():
        network_energy += sum(st.get("energy", [0])) + sum(st.get("spatial_reduction_energy", [0])) \
            + sum(st.get("link_transfer_energy", [0]))
    energy_total = sum(energy_by_level.values()) + arith["energy"] + network_energy

    golden = {
        "tool": TOOL,
        "case": case.name,
        "problem": {
            "einsum": meta["einsum"],
            "extents": extents,
            "coefficients": coefficients,
            "dataspaces": {ds: tensor_of[ds] for ds in ds_names},
            "word_bits": {**{tensor_of[ds]: (next(iter(word_bits_all)) if len(word_bits_all) == 1 else None)
                             for ds in ds_names},
                          "O_partial": next(iter(word_bits_all)) if len(word_bits_all) == 1 else None,
                          "note": "Timeloop v3 has one word size per storage level (arch.levels[].word_bits), "
                                  "not per tensor; partial sums use the same word size"},
        },
        "arch": {
            "clock_hz": meta.get("clock_hz"),
            "levels": arch_levels,
            "mac": {"name": mac["name"], "instances": mac["instances"], "energy_pj": mac_e},
            "network_energy_pj_per_hop": 0.0,
            "adder_energy_pj": 0.0,
            "notes": "Timeloop v3.0.3 with pat-public: wire/router, adder (temporal and spatial reduction) and "
                     "address-generator energies are all 0; no leakage.",
        },
        "mapping": {"levels": map_levels,
                    "note": "loops outermost first; spatial loops belong to the level whose fanout they "
                            "distribute (Timeloop 'type: spatial, target: <level>')"},
        "results": {
            "per_level": per_level,
            "energy_pj_total": energy_total,
            "energy_by_level_pj": energy_by_level,
            "network_energy_pj": network_energy,
            "mac_energy_pj": arith["energy"],
            "macs": arith["actual_computes"],
            "mac_utilized_instances": arith["utilized_instances"],
            "compute_cycles": arith["cycles"],
            "cycles_by_level": cycles_by_level,
            "bandwidth_slowdown_by_level": slowdown_by_level,
            "cycles": summary["cycles"],
            "utilization": summary["computes"] / (summary["cycles"] * mac["instances"]),
            "utilization_printed": summary["utilization_printed"],
            "fJ_per_compute_printed": summary["fJ_per_compute_printed"],
            "energy_note": "energy_pj_total = sum over levels and tensors of energy(per instance) x utilized "
                           "instances + MAC energy + network energy, exactly as Topology::ComputeStats sums it",
        },
    }
    with open(golden_file, "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    print(f"{case.name}: energy {energy_total:.4f} pJ, cycles {summary['cycles']}, macs {arith['actual_computes']}")


if __name__ == "__main__":
    main()
