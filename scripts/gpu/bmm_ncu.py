"""Diagnostic (issue 10, development only, in no scored set): which kernel cuBLAS runs for the
small-k batched GEMMs the model puts 13-28% fast (k = 64: 320 x 320 at batch 128-176, 384 x 384,
512 x 512, 1024 x 1024, 32 x 32), against k = 128 shapes it predicts within 10%: grid, block,
registers, shared memory, occupancy limits, waves and kernel time under Nsight Compute (cache
control all: cold, clean L2), the second launch of each shape (the first warms up).
Usage (device):
  ncu --clock-control none --csv --page raw -k regex:"nvjet|gemm|cutlass|xmma" \
      --metrics <see METRICS> python3 bmm_ncu.py > raw.csv
  python3 bmm_ncu.py --parse raw.csv > bmm_ncu.csv"""
import csv
import sys

SHAPES = [
    (128, 320, 320, 64), (144, 320, 320, 64), (160, 320, 320, 64), (176, 320, 320, 64),
    (96, 384, 384, 64), (112, 384, 384, 64), (64, 512, 512, 64), (80, 768, 768, 64),
    (16, 1024, 1024, 64), (28, 1024, 1024, 64), (52, 1024, 1024, 64), (76, 1024, 1024, 64),
    (512, 32, 32, 64), (1152, 32, 32, 64), (1024, 16, 16, 64),
    (160, 128, 128, 128), (272, 128, 128, 128), (40, 1024, 1024, 128), (24, 1536, 1536, 128),
    (96, 512, 512, 128),
]
METRICS = ("launch__grid_size,launch__block_size,launch__registers_per_thread,"
           "launch__shared_mem_per_block_dynamic,launch__occupancy_limit_shared_mem,"
           "launch__occupancy_limit_registers,launch__waves_per_multiprocessor,"
           "sm__warps_active.avg.pct_of_peak_sustained_active,gpu__time_duration.sum,dram__bytes.sum")


def run():
    import torch
    for b, m, n, k in SHAPES:
        x = torch.randn(b, m, k, device="cuda", dtype=torch.bfloat16)
        y = torch.randn(b, k, n, device="cuda", dtype=torch.bfloat16)
        for _ in range(2):
            torch.bmm(x, y)
            torch.cuda.synchronize()
        print(f"RAN bmm_{b}x{m}x{n}x{k}", file=sys.stderr, flush=True)


def parse(path):
    rows = [r for r in csv.reader(l for l in open(path) if l.startswith('"'))]
    head, units, data = rows[0], rows[1], rows[2:]
    col = {h: i for i, h in enumerate(head)}
    names = [f"bmm_{b}x{m}x{n}x{k}" for b, m, n, k in SHAPES]
    if len(data) != 2 * len(names):
        sys.exit(f"{len(data)} kernels profiled, expected {2 * len(names)}")
    short = [m.split("__")[-1].split(".")[0] for m in METRICS.split(",")]
    w = csv.writer(sys.stdout)
    w.writerow(["case", "kernel"] + short)
    for i, name in enumerate(names):
        r = data[2 * i + 1]
        w.writerow([name, r[col["Kernel Name"]][:90]] + [r[col[m]] for m in METRICS.split(",")])


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--parse":
        parse(sys.argv[2])
    else:
        run()
