"""Diagnostic (issue 10, development only, in no scored set): how many rows of ATen's
`vectorized_layer_norm_kernel` (torch's RMS and layer norm, one row per CTA) an H200 SM holds at
once, and the kernel's time across the model's wave boundary (10 rows per SM: 1,320 rows), where
heldout5/heldout8 missed by +24..+31% (rows 1,408 and 1,536 at 4,096 columns).
Runs each shape once after a warm-up so that `ncu` profiles its kernel. Usage (device):
  ncu --clock-control none --csv --metrics <launch__*, occupancy, time> python3 this.py"""
import torch
import torch.nn.functional as F

SHAPES = [(r, 4096) for r in (132, 1056, 1320, 1321, 1408, 1536, 2112, 2640, 2641, 4224)] + [
    (r, c) for c in (768, 8192) for r in (1320, 1321, 2112, 3072, 4096)
]


def main():
    for rows, cols in SHAPES:
        x = torch.randn(rows, cols, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(cols, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(cols, device="cuda", dtype=torch.bfloat16)
        for name, fn in (
            ("rmsnorm", lambda: F.rms_norm(x, (cols,), w, 1e-6)),
            ("layernorm", lambda: F.layer_norm(x, (cols,), w, b, 1e-5)),
        ):
            fn()  # warm-up
            torch.cuda.synchronize()
            torch.cuda.nvtx.range_push(f"{name}_{rows}x{cols}")
            fn()
            torch.cuda.nvtx.range_pop()
            torch.cuda.synchronize()
            print(f"RAN {name}_{rows}x{cols}", flush=True)


if __name__ == "__main__":
    main()
