#!/usr/bin/env bash
# Build the CPU emulator of the CUDA kernels (g++ >= 12, C++20) and run it.
# Usage: cuda/emu/run_emu.sh [util|gemm|attn_unfused|fa2|decode|smem]   (ASAN=0 to skip AddressSanitizer)
# `cargo test -p cascade-cuda --test emu` compiles and runs it the same way, every family.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${TMPDIR:-/tmp}/cascade_cuda_emu"
san="-fsanitize=address -fno-omit-frame-pointer"
[ "${ASAN:-1}" = "0" ] && san=""
g++ -std=c++20 -O1 -g -pthread -Wall -Wno-unknown-pragmas -Wno-unused-function $san \
  "$here/emu_test.cpp" -o "$out"
"$out" "$@"
