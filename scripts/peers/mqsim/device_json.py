#!/usr/bin/env python3
"""Describe the MQSim device used for the flash golden files as JSON.

usage: device_json.py SSDCONFIG.xml MQSIM_COMMIT > device.json

Every raw value is read from SSDCONFIG.xml (MQSim's shipped ssdconfig.xml);
the explanations and the derived quantities restate how MQSim@7ec40e3 uses
each parameter (source file named in each note), so that a model of the same
device can be written without reading MQSim.
"""
import math
import sys
import xml.etree.ElementTree as ET


def load(path):
    root = ET.parse(path).getroot()
    host = {c.tag: c.text.strip() for c in root.find("Host_Parameter_Set")}
    dev = {c.tag: c.text.strip() for c in root.find("Device_Parameter_Set") if c.tag != "Flash_Parameter_Set"}
    fl = {c.tag: c.text.strip() for c in root.find("Device_Parameter_Set/Flash_Parameter_Set")}
    return host, dev, fl


def v(value, unit, note):
    d = {"value": value}
    if unit:
        d["unit"] = unit
    d["meaning"] = note
    return d


def main():
    host, dev, fl = load(sys.argv[1])
    commit = sys.argv[2]
    I = int
    F = float
    B = lambda s: s.lower() == "true"

    ch, chips, dies, planes = I(dev["Flash_Channel_Count"]), I(dev["Chip_No_Per_Channel"]), I(fl["Die_No_Per_Chip"]), I(fl["Plane_No_Per_Die"])
    blocks, pages, page_b = I(fl["Block_No_Per_Plane"]), I(fl["Page_No_Per_Block"]), I(fl["Page_Capacity"])
    op = F(dev["Overprovisioning_Ratio"])
    sectors_per_page = page_b // 512
    n_planes = ch * chips * dies * planes
    phys_pages = n_planes * blocks * pages
    log_pages = int(phys_pages * (1 - op))  # Address_Mapping_Unit_Base.cpp (truncation)
    cmt_entry = math.ceil((2 * math.log2(phys_pages) + sectors_per_page) / 8)  # Address_Mapping_Unit_Page_Level.cpp
    gtd_entry = math.ceil((math.log2(phys_pages) + sectors_per_page) / 8)
    entries_per_tpage = page_b // gtd_entry
    cmt_entries = I(dev["CMT_Capacity"]) // cmt_entry

    rate = I(dev["Channel_Transfer_Rate"]); width = I(dev["Flash_Channel_Width"])
    two_unit_ns = int(1000.0 / rate) * 2  # SSD_Device.cpp: (sim_time_type)((double)1000 / rate) * 2
    xfer = lambda nbytes: (nbytes // width // 2) * two_unit_ns  # ONFI_Channel_NVDDR2.h
    t_CS, t_WC, t_WB, t_RR, t_ADL, t_WPST, t_WPSTH, t_DBSY, t_CALS = 20, 25, 100, 20, 70, 6, 15, 500, 15
    read_cmd1 = t_CS + t_WC * 6 + t_WB + t_RR
    read_cmd2 = t_CS + 6 * t_WC + t_DBSY + 6 * t_WC + t_WB + t_RR
    prog_cmd1 = t_CS + t_WC * 6 + t_ADL + t_WPST + t_WPSTH + t_WB
    prog_cmd2 = t_CS + (t_WC * 5 + t_ADL + t_WPST + t_CALS + t_WB) + t_DBSY + (t_WC * 6 + t_ADL + t_WPST + t_WPSTH + t_WB)
    erase_cmd1 = t_CS + t_WC * 4 + t_WB

    lane_gbps, lanes = F(host["PCIe_Lane_Bandwidth"]), I(host["PCIe_Lane_Count"])
    tlp_payload, tlp_ovh = 128, 20 + 6 + 2  # PCIe_Link.h defaults: header 20, DLLP 6, physical 2

    def pcie_ns(payload):
        tot = (payload // tlp_payload) * (tlp_payload + tlp_ovh) + (0 if payload % tlp_payload == 0 else payload % tlp_payload + tlp_ovh)
        return int((tot // lanes + (0 if tot % lanes == 0 else 1)) / lane_gbps)

    row, dr, burst = I(dev["Data_Cache_DRAM_Row_Size"]), I(dev["Data_Cache_DRAM_Data_Rate"]), I(dev["Data_Cache_DRAM_Data_Busrt_Size"])
    tRCD, tCL, tRP = I(dev["Data_Cache_DRAM_tRCD"]), I(dev["Data_Cache_DRAM_tCL"]), I(dev["Data_Cache_DRAM_tRP"])
    burst_ns = 1e9 / (dr * 1e6)

    def dram_ns(size):  # Data_Cache_Manager_Base.h estimate_dram_access_time, verbatim (integer divisions included)
        if size <= row:
            return int(tRCD + tCL + int(float(size // burst // 2) * burst_ns))
        return int((tRCD + tCL + int(float(row // burst // 2 * burst_ns)) + tRP) * float(size // row // 2)) + tRCD + tCL + int(float(size % row) / (burst * burst_ns))

    out = {
        "source": {
            "simulator": "MQSim (CMU-SAFARI/MQSim)",
            "commit": commit,
            "config_file": "ssdconfig.xml as shipped at that commit (copied to reports/golden/mqsim/ssdconfig.xml)",
            "note": "MQSim reads every parameter below from ssdconfig.xml; its compiled-in defaults (exec/*_Parameter_Set.cpp) are used only when the file is missing, and differ (see internal_defaults_differ).",
        },
        "host_interface": {
            "type": v(dev["HostInterface_Type"], None, "NVMe host interface (SSD_Components::Host_Interface_NVMe)"),
            "pcie_lane_count": v(lanes, "lanes", "PCIe link width"),
            "pcie_lane_bandwidth": v(lane_gbps, "GB/s per lane (10^9 B/s)", "raw per-lane rate; link = lanes x this = %.1f GB/s raw" % (lanes * lane_gbps)),
            "pcie_tlp": v({"max_payload_B": tlp_payload, "overhead_B": tlp_ovh}, None,
                          "host/PCIe_Link.h: every data message is cut into 128 B TLPs, each carrying 28 B of header+DLLP+framing; time = ceil(total_bytes / lanes) / lane_GBps ns. Payload efficiency 128/156 -> %.3f GB/s of data" % (lanes * lane_gbps * tlp_payload / (tlp_payload + tlp_ovh))),
            "pcie_data_transfer_ns": v({"4KiB": pcie_ns(4096), "8KiB": pcie_ns(8192), "64KiB": pcie_ns(65536), "128KiB": pcie_ns(131072)}, "ns", "one DMA data message of that size on the link (one direction; the two directions are independent queues)"),
            "io_queue_depth": v(I(dev["IO_Queue_Depth"]), "entries", "size of each NVMe submission and completion queue (one SQ/CQ pair per I/O flow). The QD-mode workloads keep at most 32 outstanding, so the SQ never fills"),
            "queue_fetch_size": v(I(dev["Queue_Fetch_Size"]), "commands", "max commands the device fetches from one SQ and keeps in flight (Input_Stream_Manager_NVMe)"),
            "sata_processing_delay": v(I(host["SATA_Processing_Delay"]), "ns", "SATA only; unused with NVMe"),
        },
        "geometry": {
            "channels": v(ch, None, "flash channels (independent ONFI buses)"),
            "chips_per_channel": v(chips, None, "flash chips (ways) sharing one channel"),
            "dies_per_chip": v(dies, None, "dies per chip: independent flash operations, shared chip/channel interface"),
            "planes_per_die": v(planes, None, "planes per die: can run together only as a multi-plane command (same op, same page offset)"),
            "blocks_per_plane": v(blocks, None, "erase blocks per plane"),
            "pages_per_block": v(pages, None, "pages per block"),
            "page_size_B": v(page_b, "B", "user data per page (= %d sectors of 512 B). Mapping granularity is one page" % sectors_per_page),
            "page_metadata_B": v(I(fl["Page_Metadat_Capacity"]), "B", "spare area per page (not transferred in the timing model: transfers use the request's data bytes)"),
            "derived": {
                "planes_total": n_planes,
                "physical_pages": phys_pages,
                "raw_capacity_B": phys_pages * page_b,
                "raw_capacity_GiB": phys_pages * page_b / 2**30,
                "logical_pages": log_pages,
                "logical_capacity_B": log_pages * page_b,
                "logical_capacity_GiB": log_pages * page_b / 2**30,
                "note": "logical_pages = floor(physical_pages x (1 - overprovisioning)); the host sees logical_pages x 16 sectors",
            },
        },
        "flash": {
            "technology": v(fl["Flash_Technology"], None, "MLC: 2 bits/cell; page type = page index % 2 (even = LSB, odd = MSB) -> Flash_Chip.h Get_command_execution_latency. CSB values are ignored for MLC"),
            "read_latency_ns": v({"LSB": I(fl["Page_Read_Latency_LSB"]), "CSB": I(fl["Page_Read_Latency_CSB"]), "MSB": I(fl["Page_Read_Latency_MSB"])}, "ns", "array read time tR (cell -> page register), per page type; all equal here (75 us)"),
            "program_latency_ns": v({"LSB": I(fl["Page_Program_Latency_LSB"]), "CSB": I(fl["Page_Program_Latency_CSB"]), "MSB": I(fl["Page_Program_Latency_MSB"])}, "ns", "array program time tPROG per page type; all equal here (750 us)"),
            "erase_latency_ns": v(I(fl["Block_Erase_Latency"]), "ns", "block erase time tBERS (3.8 ms)"),
            "pe_cycle_limit": v(I(fl["Block_PE_Cycles_Limit"]), "cycles", "endurance; not reached in these runs"),
            "cmd_suspension": v(fl["CMD_Suspension_Support"], None, "erase can be suspended for reads/writes; programs cannot"),
            "suspend_erase_time_ns": v(I(fl["Suspend_Erase_Time"]), "ns", "time to suspend an erase"),
            "suspend_program_time_ns": v(I(fl["Suspend_Program_Time"]), "ns", "time to suspend a program (unused: programs not suspendable)"),
        },
        "channel": {
            "protocol": v(dev["Flash_Comm_Protocol"], None, "ONFI NV-DDR2 timing model (ONFI_Channel_NVDDR2)"),
            "width_B": v(width, "B", "channel data width"),
            "transfer_rate": v(rate, "MT/s", "as configured. MQSim uses 2 x floor(1000/rate) = %d ns per two transfers, i.e. %.1f MB/s of data per channel (integer truncation)" % (two_unit_ns, 2 * width * 1000.0 / two_unit_ns)),
            "data_transfer_ns": v({"4KiB": xfer(4096), "8KiB": xfer(8192)}, "ns", "(bytes / width / 2) x %d ns. Reads transfer only the requested sectors of the page (a 4 KiB read of an 8 KiB page moves 4 KiB)" % two_unit_ns),
            "command_ns": v({"read_1plane": read_cmd1, "read_2plane": read_cmd2, "program_1plane": prog_cmd1, "program_2plane": prog_cmd2, "erase_1plane": erase_cmd1}, "ns",
                            "command/address phase on the channel (ONFI_Channel_NVDDR2.cpp, fixed t_CS=20, t_WC=25, t_WB=100, t_RR=20, t_ADL=70, t_DBSY=500 ns ...). Read data-out also adds t_RPRE+t_DQSRE=30 ns setup"),
        },
        "dram_data_cache": {
            "mechanism": v(dev["Caching_Mechanism"], None, "Data_Cache_Manager_Flash_Advanced"),
            "sharing": v(dev["Data_Cache_Sharing_Mode"], None, "one cache shared by all flows"),
            "capacity_B": v(I(dev["Data_Cache_Capacity"]), "B", "256 MiB = %d page slots" % (I(dev["Data_Cache_Capacity"]) // page_b)),
            "per_flow_mode": v("WRITE_CACHE", None, "set per flow in the workload XML (Device_Level_Data_Caching_Mode). Writes are acknowledged to the host once in DRAM; reads are served from DRAM only if the page is still in the write cache, else go to flash. In addition, a page written for the first time since the last bloom-filter reset ('cold') is written back to flash eagerly, and the number of sectors in flight to flash is capped by a back-pressure limit of planes x sectors/page = %d sectors (%d KiB); writes beyond it wait" % (n_planes * sectors_per_page, n_planes * sectors_per_page // 2)),
            "dram_row_size_B": v(row, "B", "DRAM row size"),
            "dram_data_rate": v(dr, "MT/s", "-> %.1f ns per burst" % burst_ns),
            "dram_burst_size_B": v(burst, "B", "bytes per transfer"),
            "dram_tRCD_tCL_tRP_ns": v([tRCD, tCL, tRP], "ns", "row activate, CAS latency, precharge"),
            "dram_access_ns": v({"4KiB": dram_ns(4096), "8KiB": dram_ns(8192), "64KiB": dram_ns(65536), "128KiB": dram_ns(131072)}, "ns",
                                "Data_Cache_Manager_Base.h estimate_dram_access_time, reproduced verbatim incl. its integer divisions (rows/2). One DRAM access at a time (single memory channel). This slow DRAM is the main limit of every write case here: 128 KiB takes 328 us (400 MB/s ceiling; seqwrite QD32 measured 397-398 MB/s), 4 KiB takes 20.5 us (48.8k IOPS ceiling; randwrite QD32 measured 37-41k IOPS)"),
        },
        "ftl": {
            "address_mapping": v(dev["Address_Mapping"], None, "page-level mapping, DFTL-style: full table on flash, a cached mapping table (CMT) in DRAM"),
            "ideal_mapping_table": v(B(dev["Ideal_Mapping_Table"]), None, "false: a CMT miss costs a flash read of the translation page (Issued_Flash_Read_CMD_For_Mapping). The whole mapping table is written to flash at start (Store_mapping_table_on_flash_at_start), even without preconditioning, so misses always read flash"),
            "cmt_capacity_B": v(I(dev["CMT_Capacity"]), "B", "CMT size"),
            "cmt_sharing": v(dev["CMT_Sharing_Mode"], None, "one CMT shared by all flows"),
            "derived_mapping": {
                "cmt_entry_B": cmt_entry,
                "cmt_entries": cmt_entries,
                "cmt_coverage_B": cmt_entries * page_b,
                "gtd_entry_B": gtd_entry,
                "translation_entries_per_page": entries_per_tpage,
                "translation_page_covers_B": entries_per_tpage * page_b,
                "note": "cmt_entry = ceil((2 log2(physical_pages) + sectors_per_page)/8); gtd_entry = ceil((log2(physical_pages) + sectors_per_page)/8). A random 4 KiB read over the whole drive almost always misses (CMT covers %.1f GiB of %.0f GiB): one mapping read + one data read. A translation page holds %d entries, but when its read completes MQSim inserts into the CMT only the entries of the LPAs that were waiting for it (Address_Mapping_Unit_Page_Level.cpp, ArrivingMappingEntries), so a sequential stream over fresh addresses also misses on every request: ~1 translation read per 128 KiB request at QD1 (10110 per 10000), fewer at QD32 where concurrent requests share one in-flight translation read (2525 per 10000)" % (cmt_entries * page_b / 2**30, log_pages * page_b / 2**30, entries_per_tpage),
            },
            "plane_allocation": v(dev["Plane_Allocation_Scheme"], None, "static striping of logical page number lpn: channel = lpn %% %d, chip = (lpn/%d) %% %d, die = (lpn/%d) %% %d, plane = (lpn/%d) %% %d (Channel, Way, Die, Plane order). Writes go to the plane fixed by lpn (next free page of its active block); never-written pages read by the host are placed the same way on the fly (online_create_entry_for_reads). A 128 KiB request = 16 pages = 8 channels x 2 chips" % (ch, ch, chips, ch * chips, dies, ch * chips * dies, planes)),
            "transaction_scheduling": v(dev["Transaction_Scheduling_Policy"], None, "TSU_Priority_OutOfOrder: per-chip queues by priority class, out-of-order, merges same-op transactions on dies/planes into multi-plane / interleaved commands"),
            "overprovisioning_ratio": v(op, None, "fraction of physical pages hidden from the host"),
            "gc_exec_threshold": v(F(dev["GC_Exec_Threshold"]), None, "GC runs on a plane when its free-block pool < threshold x blocks_per_plane = %d blocks" % max(1, int(F(dev["GC_Exec_Threshold"]) * blocks))),
            "gc_hard_threshold": v(F(dev["GC_Hard_Threshold"]), None, "only used by preemptible GC (disabled)"),
            "gc_block_selection": v(dev["GC_Block_Selection_Policy"], None, "RGA: randomized greedy, pick the block with fewest valid pages among log2(blocks_per_plane) = %d random candidates" % int(math.log2(blocks))),
            "gc_copyback": v(B(dev["Use_Copyback_for_GC"]), None, "GC moves data through the controller (read + transfer + program), not on-chip copyback"),
            "preemptible_gc": v(B(dev["Preemptible_GC_Enabled"]), None, "GC is not preempted by user I/O"),
            "wear_leveling": v({"dynamic": B(dev["Dynamic_Wearleveling_Enabled"]), "static": B(dev["Static_Wearleveling_Enabled"]), "static_threshold": I(dev["Static_Wearleveling_Threshold"])}, None,
                               "as in the XML; NOTE SSD_Device.cpp passes these positionally wrong (the seed lands in dynamic_wearleveling_enabled), so MQSim actually runs with its constructor defaults dynamic=true, static=true, threshold=100 -- identical values here"),
            "suspend_policy_ns": v({"erase_for_read": I(dev["Preferred_suspend_erase_time_for_read"]), "erase_for_write": I(dev["Preferred_suspend_erase_time_for_write"]), "write_for_read": I(dev["Preferred_suspend_write_time_for_read"])}, "ns",
                                   "suspend an ongoing erase (program) for a read/write if its remaining time exceeds this"),
            "seed": v(I(dev["Seed"]), None, "device RNG seed (FTL = Seed, GC/WL unit gets Seed+1 but see wear_leveling)"),
        },
        "preconditioning": v(B(dev["Enabled_Preconditioning"]), None,
                             "false in the shipped ssdconfig.xml: the drive starts fresh-out-of-box (no user data, all blocks free, no GC). Reads of never-written pages still go to flash: MQSim assigns them a physical page by the static CWDP rule and reads it. Only the mapping table is pre-stored on flash (see ideal_mapping_table). With preconditioning on, MQSim fills Initial_Occupancy_Percentage of the logical space (analytically, with a steady-state valid-page distribution) before simulating; measured here: 11 minutes and 8 GB RAM for 75%, and only a 0.25% change in 4 KiB random-read QD1 latency"),
        "internal_defaults_differ": {
            "note": "MQSim's compiled-in defaults (used only if ssdconfig.xml is absent) differ from the shipped file in:",
            "Enabled_Preconditioning": True, "IO_Queue_Depth": 1024, "Data_Cache_Capacity": 536870912,
            "Data_Cache_DRAM_Data_Rate": 800, "Data_Cache_DRAM_Data_Busrt_Size": 4,
            "Transaction_Scheduling_Policy": "OUT_OF_ORDER", "Preemptible_GC_Enabled": True,
            "Channel_Transfer_Rate": 300, "Page_Metadat_Capacity": 1872, "PCIe_Lane_Bandwidth": 0.4, "Seed": 123,
        },
        "quick_reference_times_ns": {
            "read_4KiB_cmt_hit": "%d flash array + %d channel transfer + ~%d cmd/setup + %d PCIe + host/NVMe doorbells; MQSim measured 88,906 ns" % (I(fl["Page_Read_Latency_LSB"]), xfer(4096), read_cmd1 + 30, pcie_ns(4096)),
            "read_4KiB_cmt_miss": "one extra translation-page read (~76.8 us) -> MQSim measured 165,7xx ns",
            "write_4KiB_qd1": "components: %d DRAM write, %d PCIe data; acknowledged from DRAM (flash program happens in the background); MQSim measured min 21.8 us, mean 23.5-25.8 us" % (dram_ns(4096), pcie_ns(4096)),
            "write_128KiB_qd1": "components: %d DRAM write, %d PCIe data (they partly overlap); MQSim measured 367.8 us" % (dram_ns(131072), pcie_ns(131072)),
        },
    }
    import json
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
