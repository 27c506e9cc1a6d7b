#!/usr/bin/env python3
"""Run the installed ZigZag (zigzag-dse, venv at /work/peers/venv) on one parity case
and write its raw outputs and the tool-neutral golden.json.

Usage: /work/peers/venv/bin/python tools/zz_run.py CASE_DIR ACCELERATOR

CASE_DIR holds our workload.yaml, mapping.yaml and meta.yaml; ACCELERATOR names one of
ZigZag's bundled hardware descriptions (zigzag/inputs/hardware/<name>.yaml, read from
the installed package, not copied). Writes CASE_DIR/out/ (ZigZag's complete JSON, its
printed summary, the loop/memory allocation) and CASE_DIR/golden.json. Every number
under "results" is read from ZigZag's cost-model object (CostModelEvaluation).
"""
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import yaml

try:
    import zigzag
    from zigzag.api import get_hardware_performance_zigzag
    from zigzag.datatypes import Constants
    from zigzag.mapping.data_movement import DataDirection, DataMoveAttr
except ImportError:
    sys.exit("ERROR: zigzag-dse is not installed in this Python; use /work/peers/venv/bin/python "
             "(see tests/parity/README.md)")

try:
    from importlib.metadata import version as pkg_version
    ZZ_VERSION = pkg_version("zigzag-dse")
except Exception:  # pragma: no cover
    ZZ_VERSION = "unknown"

DIRS = {
    DataDirection.RD_OUT_TO_LOW: "rd_out_to_low",
    DataDirection.WR_IN_BY_LOW: "wr_in_by_low",
    DataDirection.RD_OUT_TO_HIGH: "rd_out_to_high",
    DataDirection.WR_IN_BY_HIGH: "wr_in_by_high",
}


def fourway(fw):
    return {name: num(fw.get(d)) for d, name in DIRS.items()}


def num(x):
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return str(x)
    return int(f) if f.is_integer() else f


def loops(ls):
    return [[str(d), num(s)] for d, s in ls]


def main():
    case = Path(sys.argv[1]).resolve()
    accel_name = sys.argv[2]
    hw = Path(zigzag.__file__).parent / "inputs" / "hardware" / f"{accel_name}.yaml"
    if not hw.exists():
        sys.exit(f"ERROR: bundled accelerator {hw} not found")
    meta = yaml.safe_load(open(case / "meta.yaml"))
    out = case / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    logging.disable(logging.WARNING)
    tmp = tempfile.mkdtemp()
    buf = io.StringIO()
    t0 = time.perf_counter()
    with redirect_stdout(buf):
        energy, latency, cmes = get_hardware_performance_zigzag(
            workload=str(case / "workload.yaml"), accelerator=str(hw), mapping=str(case / "mapping.yaml"),
            opt="energy", dump_folder=tmp, pickle_filename=os.path.join(tmp, "cmes.pickle"),
            loma_show_progress_bar=False)
    wall = time.perf_counter() - t0
    layer_files = [f for f in os.listdir(tmp) if f.endswith("_complete.json")]
    shutil.copy(os.path.join(tmp, layer_files[0]), out / "zigzag_complete.json")
    if os.path.exists(os.path.join(tmp, "loop_ordering.txt")):
        shutil.copy(os.path.join(tmp, "loop_ordering.txt"), out / "loop_ordering.txt")
    shutil.rmtree(tmp)

    cme = cmes[0][1][0][0]
    layer = cme.layer
    acc = cme.accelerator
    links = cme.memory_operand_links
    mh = acc.memory_hierarchy
    oa = acc.operational_array

    # Architecture (outermost memory first).
    levels = []
    for ml in reversed(list(mh.mem_level_list)):
        inst = ml.memory_instance
        ports = []
        for p in ml.ports:
            ports.append({"name": p.name, "type": str(p.type) if hasattr(p, "type") else None,
                          "bw_min_bits": num(p.bw_min), "bw_max_bits": num(p.bw_max),
                          "serves": [[str(o), lv, str(d)] for o, lv, d in p.served_op_lv_dir]})
        levels.append({
            "name": inst.name, "operands": [str(o) for o in ml.operands],
            "layer_operands": [str(links.mem_to_layer_op(o)) for o in ml.operands if links.contains_mem_op(o)],
            "capacity_bits": num(inst.size), "r_cost_pj": num(inst.r_cost), "w_cost_pj": num(inst.w_cost),
            "latency": num(getattr(inst, "latency", 1)),
            "served_dimensions": sorted(str(d) for d in ml.served_dimensions),
            "ports": ports,
        })
    arch = {
        "name": acc.name, "clock_hz": meta.get("clock_hz"),
        "operational_array": {"dimensions": {str(d): num(s) for d, s in oa.dimension_sizes.items()}
                              if isinstance(oa.dimension_sizes, dict) else str(oa.dimension_sizes),
                              "total_units": num(oa.total_unit_count),
                              "mac_energy_pj": num(oa.unit.energy_cost),
                              "systolic_dimensions": [str(d) for d in getattr(oa, "systolic_dimensions", [])]},
        "levels": levels,
        "memory_operand_links": {str(k): str(v) for k, v in links.data.items()},
    }

    # Mapping: the per-operand allocation of (temporal) loops to memory levels, innermost level first,
    # loops innermost first within a level, as ZigZag stores it.
    tm = cme.temporal_mapping
    sm = cme.spatial_mapping
    mapping = {
        "spatial": {str(d): {str(k): num(v) for k, v in dd.items()}
                    for d, dd in layer.spatial_mapping.items()},
        "temporal_ordering_innermost_first": loops(
            [(d, s) for d, s in (layer.temporal_ordering.to_legacy_format()
                                 if hasattr(layer.temporal_ordering, "to_legacy_format") else [])]),
        "temporal_allocation": {str(op): [loops(lv) for lv in lvls]
                                for op, lvls in tm.mapping_dic_stationary.items()},
        "spatial_allocation": {str(op): [loops(lv) for lv in lvls]
                               for op, lvls in sm.mapping_dict_origin.items()},
        "note": "allocation lists go from the MAC array upward: temporal_allocation[op][i] = loops "
                "stored at memory level i of that operand (innermost loop first); "
                "spatial_allocation[op][0] is the MAC-array level",
    }

    # Results.
    m = cme.mapping
    per_level = []
    for op in layer.layer_operands:
        mem_op = links.layer_to_mem_op(op)
        mls = mh.get_memory_levels(mem_op)
        for lv in range(m.mem_level[op]):
            umdm = m.unit_mem_data_movement[op][lv]
            entry = {
                "operand": str(op), "mem_operand": str(mem_op), "level_index": lv,
                "level": mls[lv].memory_instance.name,
                "data_elem_move_count": fourway(umdm.get_attribute(DataMoveAttr.DATA_ELEM_MOVE_COUNT)),
                "data_precision_bits": fourway(umdm.get_attribute(DataMoveAttr.DATA_PRECISION)),
                "data_trans_period_cycles": fourway(umdm.get_attribute(DataMoveAttr.DATA_TRANS_PERIOD)),
                "data_trans_period_count": fourway(umdm.get_attribute(DataMoveAttr.DATA_TRANS_PERIOD_COUNT)),
                "data_trans_amount_per_period": fourway(umdm.get_attribute(DataMoveAttr.DATA_TRANS_AMOUNT_PER_PERIOD)),
                "req_mem_bw_aver_bits": fourway(umdm.get_attribute(DataMoveAttr.REQ_MEM_BW_AVER)),
                "req_mem_bw_inst_bits": fourway(umdm.get_attribute(DataMoveAttr.REQ_MEM_BW_INST)),
                "inst_data_trans_window": fourway(umdm.get_attribute(DataMoveAttr.INST_DATA_TRANS_WINDOW)),
                "memory_word_access": fourway(cme.memory_word_access[op][lv]),
                "energy_pj": fourway(cme.mem_energy_breakdown_further[op][lv]),
                "energy_pj_total": num(cme.mem_energy_breakdown[op][lv]),
                "tile_elems_per_unit": num(m.data_elem_per_level_unrolled[op][lv + 1]),
                "tile_bits_per_unit": num(m.data_bit_per_level_unrolled[op][lv + 1]),
                "tile_elems_all_units": num(m.data_elem_per_level[op][lv + 1]),
                "effective_tile_bits": num(m.effective_data_bit[op][lv + 1]),
                "unit_count": num(sm.unit_count[op][lv + 1]),
                "unit_unique": num(sm.unit_unique[op][lv + 1]),
                "mem_bw_boost": num(sm.mem_bw_boost[op][lv]),
                "utilization_individual": num(cme.mem_utili_individual[op][lv]),
                "utilization_shared": num(cme.mem_utili_shared[op][lv]),
                "double_buffer": bool(cme.double_buffer_true[op][lv + 1]),
                "real_data_trans_cycles": fourway(cme.real_data_trans_cycle[op][lv]),
                "allowed_mem_update_cycles": fourway(cme.allowed_mem_update_cycle[op][lv]),
            }
            per_level.append(entry)
    ports = []
    for mi, port_map in enumerate(cme.port_activity_collect):
        for pname, acts in port_map.items():
            ports.append({"memory": list(mh.mem_level_list)[mi].memory_instance.name, "port": pname,
                          "stall_slack_combined": num(cme.stall_slack_comb_collect[mi][pname]),
                          "activities": [{"served": str(a.served_op_lv_dir),
                                          "real_cycle": num(a.real_cycle), "allowed_cycle": num(a.allowed_cycle),
                                          "period": num(a.period), "period_count": num(a.period_count),
                                          "mem_updating_window": num(a.mem_updating_window),
                                          "stall_or_slack": num(a.stall_or_slack)}
                                         for a in acts]})
    results = {
        "per_level": per_level,
        "energy_pj_total": num(cme.energy_total),
        "mem_energy_pj": num(cme.mem_energy),
        "mac_energy_pj": num(cme.mac_energy),
        "energy_by_operand_level_pj": {str(op): [num(e) for e in es] for op, es in cme.mem_energy_breakdown.items()},
        "macs": num(layer.total_mac_count),
        "psum_flag": [bool(x) for x in m.psum_flag],
        "latency": {
            "ideal_cycle": num(cme.ideal_cycle),
            "ideal_temporal_cycle": num(cme.ideal_temporal_cycle),
            "mac_spatial_utilization": num(cme.mac_spatial_utilization),
            "stall_slack_comb": num(cme.stall_slack_comb),
            "data_onloading_cycle": num(cme.data_onloading_cycle),
            "data_offloading_cycle": num(cme.data_offloading_cycle),
            "systolic_drain_cycle": num(cme.systolic_drain_cycle),
            "latency_total0": num(cme.latency_total0),
            "latency_total1": num(cme.latency_total1),
            "latency_total2": num(cme.latency_total2),
            "mac_utilization0": num(cme.mac_utilization0),
            "mac_utilization1": num(cme.mac_utilization1),
            "mac_utilization2": num(cme.mac_utilization2),
            "loading_cycles_borrowed_from_computation": num(cme.loading_offloading_cycles_borrowed_from_computation),
        },
        "cycles": num(cme.latency_total2),
        "utilization": num(cme.mac_utilization2),
        "port_activity": ports,
    }
    golden = {
        "tool": f"zigzag-{ZZ_VERSION}",
        "case": case.name,
        "problem": {
            "einsum": meta["einsum"],
            "zigzag_equation": str(layer.equation) if hasattr(layer, "equation") else None,
            "extents": {str(k): num(v) for k, v in layer.layer_dim_sizes.data.items()},
            "word_bits": {str(k): num(v) for k, v in layer.operand_precision.data.items()},
            "word_bits_note": "O = partial-sum precision, O_final = final-output precision",
        },
        "arch": arch,
        "mapping": mapping,
        "results": results,
        "run": {"accelerator_file": f"zigzag/inputs/hardware/{accel_name}.yaml (bundled with zigzag-dse {ZZ_VERSION})",
                "opt": "energy", "access_same_data_considered_as_no_access": True,
                "wall_s_one_layer_incl_parsing": round(wall, 3)},
    }
    with open(case / "golden.json", "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    summary = (f"{case.name}: zigzag-{ZZ_VERSION} on {accel_name}\n"
               f"energy_total = {cme.energy_total} pJ (mem {cme.mem_energy}, mac {cme.mac_energy})\n"
               f"latency_total2 = {cme.latency_total2} cycles (ideal {cme.ideal_cycle}, ideal temporal "
               f"{cme.ideal_temporal_cycle}, stall/slack {cme.stall_slack_comb}, onload {cme.data_onloading_cycle}, "
               f"offload {cme.data_offloading_cycle}, systolic drain {cme.systolic_drain_cycle})\n"
               f"temporal mapping: {cme.temporal_mapping}\n"
               f"memory word accesses: {dict(cme.memory_word_access)}\n")
    (out / "summary.txt").write_text(summary + buf.getvalue())
    print(summary, end="")


if __name__ == "__main__":
    main()
