#!/usr/bin/env python3
"""Summarise MQSim result XMLs into summary.json.

usage: summarize.py WORKLOAD_DIR RESULT_DIR [RESULT_DIR ...] > summary.json

For each RESULT_DIR (one device configuration), reads <case>.xml (MQSim
results, with the cascade reporting patch, see build.sh), the matching
workload XML and timing.tsv, and emits one record per case.
"""
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

SECTOR = 512


def flow_params(path):
    root = ET.parse(path).getroot()
    f = root.find("IO_Scenario/IO_Flow_Parameter_Set_Synthetic")
    return {c.tag: c.text for c in f}


def ssd_attr(root, tag):
    e = root.find("SSDDevice/" + tag)
    return e.attrib if e is not None else {}


def one(case, wl_dir, res_dir, timing):
    p = flow_params(os.path.join(wl_dir, case + ".xml"))
    root = ET.parse(os.path.join(res_dir, case + ".xml")).getroot()
    fl = {c.tag: c.text for c in root.find("Host/Host.IO_Flow")}
    size_b = int(p["Average_Request_Size"]) * SECTOR
    n = int(fl["Serviced_Request_Count"])
    t_end = int(fl["Simulated_Time_ns"])
    t_last = int(fl["Last_Completion_Time_ns"])
    nbytes = float(fl["Bytes_Transferred"])
    iops = n / (t_last * 1e-9)
    ftl = ssd_attr(root, "SSDDevice.FTL")
    keep_ftl = ["Issued_Flash_Read_CMD", "Issued_Flash_Multiplane_Read_CMD", "Issued_Flash_Interleaved_Read_CMD",
                "Issued_Flash_Program_CMD", "Issued_Flash_Multiplane_Program_CMD", "Issued_Flash_Interleaved_Program_CMD",
                "Issued_Flash_Interleaved_Multiplane_Program_CMD", "Issued_Flash_Erase_CMD",
                "Issued_Flash_Read_CMD_For_Mapping", "Issued_Flash_Program_CMD_For_Mapping",
                "CMT_Hits", "CMT_Misses_For_Read", "CMT_Misses_For_Write", "Total_GC_Executions"]
    hi = root.find("SSDDevice/SSDDevice.HostInterface/SSDDevice.IO_Stream")
    hi = {c.tag: c.text for c in hi} if hi is not None else {}
    rd = p["Read_Percentage"] == "100"
    kind = "Read" if rd else "Write"
    rec = {
        "case": case,
        "op": "read" if rd else "write",
        "pattern": "sequential" if p["Address_Distribution"] == "STREAMING" else "random",
        "request_size_bytes": size_b,
        "request_size_kib": size_b // 1024,
        "queue_depth": int(p["Average_No_of_Reqs_in_Queue"]),
        "requests": n,
        "seed": int(p["Seed"]),
        # primary metrics (computed from the patched, exact fields)
        "iops": round(iops, 3),
        "bandwidth_MBps": round(nbytes / (t_last * 1e-9) / 1e6, 3),
        "bandwidth_MiBps": round(nbytes / (t_last * 1e-9) / 2**20, 3),
        "device_response_time_us": {
            "mean": round(float(fl["Device_Response_Time_ns"]) / 1e3, 3),
            "min": round(int(fl["Min_Device_Response_Time_ns"]) / 1e3, 3),
            "max": round(int(fl["Max_Device_Response_Time_ns"]) / 1e3, 3),
        },
        "end_to_end_latency_us": {
            "mean": round(float(fl["End_to_End_Request_Delay_ns"]) / 1e3, 3),
            "min": round(int(fl["Min_End_to_End_Request_Delay_ns"]) / 1e3, 3),
            "max": round(int(fl["Max_End_to_End_Request_Delay_ns"]) / 1e3, 3),
        },
        "simulated_time_s": {"last_completion": t_last * 1e-9, "end_of_simulation": t_end * 1e-9},
        # MQSim's own (patched-division) IOPS/Bandwidth, over end_of_simulation
        "mqsim_reported": {
            "IOPS": float(fl["IOPS"]),
            "Bandwidth_Bps": float(fl["Bandwidth"]),
            "Device_Response_Time_us_int": int(fl["Device_Response_Time"]),
            "End_to_End_Request_Delay_us_int": int(fl["End_to_End_Request_Delay"]),
        },
        "device_transaction_us": {
            "turnaround": int(hi.get("Average_%s_Transaction_Turnaround_Time" % kind, 0)),
            "execution": int(hi.get("Average_%s_Transaction_Execution_Time" % kind, 0)),
            "transfer": int(hi.get("Average_%s_Transaction_Transfer_Time" % kind, 0)),
            "waiting": int(hi.get("Average_%s_Transaction_Waiting_Time" % kind, 0)),
        },
        "ftl": {k: int(ftl[k]) for k in keep_ftl if k in ftl},
        "wall_clock_s": timing.get(case, {}).get("wall_s"),
    }
    return rec


def main():
    wl_dir = sys.argv[1]
    out = {
        "generator": "scripts/peers/mqsim/summarize.py",
        "units": {
            "iops": "serviced requests / simulated time of the last completion",
            "bandwidth_MBps": "10^6 bytes per second, same time base",
            "bandwidth_MiBps": "2^20 bytes per second, same time base",
            "latency": "microseconds; device_response_time = completion - submission-queue enqueue, "
                       "end_to_end = completion - request generation (equal here: the NVMe SQ never fills)",
            "mqsim_reported": "MQSim's own fields from the same XML: IOPS and Bandwidth (B/s) over the end of the simulation (includes post-ack write-cache drain), with the integer-second division patched (build.sh); stock integer-microsecond mean latencies",
            "device_transaction_us": "MQSim's per-flash-transaction averages (integer us), from SSDDevice.IO_Stream",
            "wall_clock_s": "host wall-clock seconds of the MQSim process (2 shared CPU cores)",
        },
        "configs": {},
    }
    for res_dir in sys.argv[2:]:
        timing = {}
        tp = os.path.join(res_dir, "timing.tsv")
        if os.path.exists(tp):
            for line in open(tp).read().splitlines()[1:]:
                c, w, r = line.split("\t")
                timing[c] = {"wall_s": float(w), "max_rss_kib": int(r)}
        cases = sorted(f[:-4] for f in os.listdir(res_dir) if f.endswith(".xml"))
        out["configs"][os.path.basename(os.path.normpath(res_dir))] = [one(c, wl_dir, res_dir, timing) for c in cases]
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
