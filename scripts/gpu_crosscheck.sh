#!/usr/bin/env bash
# GPU cross-check: runs the cascade-cuda measurement suite (`cascade crosscheck`) on the GPU machine
# and writes h100.csv, h100.md and crosscheck.log into $OUT.
#
# Build on the CPU machine first (no CUDA needed there; cudarc dlopens the
# libraries at run time):
#     cargo build --release --features cuda
# then, through the device tool: carry ["target/release/cascade"] and run
#     bash scripts/gpu_crosscheck.sh
# ($OUT is set by the device tool; elsewhere pass the output folder as $1.)
# Falls back to the example driver target/release/examples/cuda_suite when the
# `cascade crosscheck` subcommand is not available.
# Environment: CASCADE_CUDA_FILTER=substring (run matching cases only),
# CASCADE_CUDA_QUICK=1 (small smoke-test subset).
set -uo pipefail

OUT="${OUT:-${1:-reports/crosscheck}}"
mkdir -p "$OUT"

# cudarc finds libcuda through ldconfig; make NVRTC/cuBLAS of the toolkit visible too.
if [ -d /usr/local/cuda/lib64 ]; then
  export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

smi() {
  nvidia-smi --query-gpu=timestamp,name,driver_version,pstate,clocks.sm,clocks.mem,temperature.gpu,power.draw,memory.used \
    --format=csv 2>&1 | sed "s/^/[$1] /"
}
{ smi before; } >"$OUT/nvidia_smi.txt" 2>&1 || true

bin=./target/release/cascade
ex=./target/release/examples/cuda_suite
status=0
if [ -x "$bin" ] && "$bin" crosscheck --help >/dev/null 2>&1; then
  "$bin" crosscheck --out "$OUT" 2>&1 | tee "$OUT/crosscheck.log"
  status=$?
elif [ -x "$ex" ]; then
  "$ex" "$OUT" 2>&1 | tee "$OUT/crosscheck.log"
  status=$?
else
  echo "neither '$bin crosscheck' nor $ex is available: build with --features cuda and carry the binary" >&2
  status=2
fi

{ smi after; } >>"$OUT/nvidia_smi.txt" 2>&1 || true
cat "$OUT/nvidia_smi.txt"
exit "$status"
