#!/usr/bin/env bash
# Build Duplex's public simulator (scale-snu/LLMSimulator, MICRO'24 "Duplex",
# arXiv 2409.01141) and re-run the decode experiments whose golden outputs are
# kept in reports/golden/llmsimulator/ (see the README there).
#
# Nothing of LLMSimulator is copied into this repository: sources are checked
# out under $WORK (default /tmp/llmsim_repro), outside the repo.
#
# Usage:
#   scripts/peers/run_llmsimulator.sh LLMSIM_GIT [WORK]
#     LLMSIM_GIT  a git directory (bare or not) holding LLMSimulator history,
#                 e.g. the result of the sandbox fetch of github:scale-snu/LLMSimulator
#                 or its mirror github:HeliosZhou/LLMSimulator
#                 (/work/.mirror/HeliosZhou+LLMSimulator/repo). Must contain
#                 commit $LLMSIM_COMMIT below.
#     WORK        scratch dir (default /tmp/llmsim_repro); wiped and recreated.
#   Environment (defaults are where the sandbox's fetch tool leaves bare repos):
#     MIRROR_ROOT    /work/.mirror
#     RAMULATOR_GIT  $MIRROR_ROOT/CMU-SAFARI+ramulator2/repo  (submodule source)
#     YAMLCPP_GIT    $MIRROR_ROOT/jbeder+yaml-cpp/repo        (tag yaml-cpp-0.7.0)
#     SPDLOG_GIT     $MIRROR_ROOT/gabime+spdlog/repo          (tag v1.11.0)
#     ARGPARSE_GIT   $MIRROR_ROOT/p-ranav+argparse/repo       (tag v2.9)
#     OUT            results dir (default $WORK/results). Set
#                    OUT=reports/golden/llmsimulator/raw to regenerate the goldens.
#     JOBS           make -j (default 2)
# Needs: git, cmake (>=3.14), make, g++ (tested with Debian g++ 12.2.0), python3.
set -euo pipefail

LLMSIM_GIT=${1:?usage: $0 LLMSIM_GIT [WORK]}
WORK=${2:-/tmp/llmsim_repro}
MIRROR_ROOT=${MIRROR_ROOT:-/work/.mirror}
RAMULATOR_GIT=${RAMULATOR_GIT:-$MIRROR_ROOT/CMU-SAFARI+ramulator2/repo}
YAMLCPP_GIT=${YAMLCPP_GIT:-$MIRROR_ROOT/jbeder+yaml-cpp/repo}
SPDLOG_GIT=${SPDLOG_GIT:-$MIRROR_ROOT/gabime+spdlog/repo}
ARGPARSE_GIT=${ARGPARSE_GIT:-$MIRROR_ROOT/p-ranav+argparse/repo}
JOBS=${JOBS:-2}

# Pinned versions (a missing commit/tag is an error, never a silent upgrade).
LLMSIM_COMMIT=419252761fbdb95b789778a02256d458a5537ec7    # upstream HEAD "Add Llama-4 support" (2025-10-14)
RAMULATOR_COMMIT=b5262869b24790e5ec62d9d9974fca9bbb4f54e0 # submodule src/dram/ramulator2 pinned by that commit
YAMLCPP_TAG=yaml-cpp-0.7.0
SPDLOG_TAG=v1.11.0
ARGPARSE_TAG=v2.9

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GOLDEN=$REPO_ROOT/reports/golden/llmsimulator
CONFIGS=$GOLDEN/configs
LLAMA_PATCH=$GOLDEN/llama3_70B.patch
OUT=${OUT:-$WORK/results}
case "$OUT" in /*) ;; *) OUT=$PWD/$OUT ;; esac

log() { echo "[run_llmsimulator] $*" >&2; }

rm -rf "$WORK"; mkdir -p "$WORK" "$OUT"
SRC=$WORK/LLMSimulator
DEPS=$WORK/deps

# 1. Sources ----------------------------------------------------------------
log "checking out LLMSimulator $LLMSIM_COMMIT"
git clone -q --no-checkout "$LLMSIM_GIT" "$SRC"
git -C "$SRC" checkout -q "$LLMSIM_COMMIT"
# Submodule: clone from the local mirror instead of `git submodule update`.
rmdir "$SRC/src/dram/ramulator2" 2>/dev/null || rm -rf "$SRC/src/dram/ramulator2"
git clone -q "$RAMULATOR_GIT" "$SRC/src/dram/ramulator2"
git -C "$SRC/src/dram/ramulator2" checkout -q "$RAMULATOR_COMMIT"
# Upstream README step 2: apply the PIM patch to Ramulator 2.
(cd "$SRC/src/dram/ramulator2" && git apply --whitespace=nowarn ../../../patch/ramulator2_pim.patch)

log "checking out local FetchContent sources"
mkdir -p "$DEPS"
git clone -q "$YAMLCPP_GIT" "$DEPS/yaml-cpp"   && git -C "$DEPS/yaml-cpp" checkout -q "$YAMLCPP_TAG"
git clone -q "$SPDLOG_GIT" "$DEPS/spdlog"      && git -C "$DEPS/spdlog" checkout -q "$SPDLOG_TAG"
git clone -q "$ARGPARSE_GIT" "$DEPS/argparse"  && git -C "$DEPS/argparse" checkout -q "$ARGPARSE_TAG"

# 2. Build (upstream, unmodified) -------------------------------------------
build() {
  mkdir -p "$SRC/build"
  (cd "$SRC/build" &&
   cmake .. -DCMAKE_BUILD_TYPE=Release \
     -DFETCHCONTENT_FULLY_DISCONNECTED=ON \
     -DFETCHCONTENT_SOURCE_DIR_YAML-CPP="$DEPS/yaml-cpp" \
     -DFETCHCONTENT_SOURCE_DIR_SPDLOG="$DEPS/spdlog" \
     -DFETCHCONTENT_SOURCE_DIR_ARGPARSE="$DEPS/argparse" > "$WORK/cmake$1.log" 2>&1 &&
   make -j"$JOBS" > "$WORK/make$1.log" 2>&1) || { log "build failed, see $WORK/make$1.log"; exit 1; }
}
log "building upstream (make -j$JOBS; ~15-25 min on 2 busy cores)"
build 1

# 3. Runs -------------------------------------------------------------------
# Each run gets its own cwd: the binary reads ./dram_config_HBM3_80GB.yaml
# (src/hardware/device.cpp:35) and the configs write CSVs to ./out/.
run_cfg() {
  local cfg=$1 n; n=$(basename "$cfg" .yaml)
  local w=$WORK/runs/$n; rm -rf "$w"; mkdir -p "$w/out" "$OUT/$n"
  cp "$cfg" "$w/config.yaml"
  cp "$SRC/build/dram_config_HBM3_80GB.yaml" "$SRC/build/dram_config_HBM3E_192GB.yaml" "$w/"
  local rc=0
  (cd "$w" && "$SRC/build/run" config.yaml > stdout.log 2> stderr.log) || rc=$?
  cp "$w/stdout.log" "$w/stderr.log" "$OUT/$n/"
  cp "$w"/out/*.csv "$OUT/$n/" 2>/dev/null || true
  log "$n rc=$rc"
  [ "$rc" = 0 ] || { log "run $n failed"; exit 1; }
}
# Main runs (1024 decode steps each) and 1-step "timeboard" runs (print_log: on,
# per-module breakdown of device 0 on stdout).
for cfg in "$CONFIGS"/mixtral_*.yaml "$CONFIGS"/timeboard/mixtral_*.yaml; do run_cfg "$cfg"; done

# 4. Llama-3-70B: not a model upstream knows; add it (3-line local patch) -----
log "applying $LLAMA_PATCH and rebuilding"
git -C "$SRC" apply "$LLAMA_PATCH"
build 2
for cfg in "$CONFIGS"/llama3_70B_*.yaml "$CONFIGS"/timeboard/llama3_70B_*.yaml; do run_cfg "$cfg"; done

# 5. Summary table ----------------------------------------------------------
python3 - "$OUT" > "$OUT/summary.md" <<'EOF'
import csv, glob, os, sys, statistics as st
root = sys.argv[1]
print("| run | batch | steps | seqlen@step0 | latency@step0 (ns) | mean latency (ns) | ctx min -> latency (ns) | ctx max -> latency (ns) | tokens/s | mean total_energy/step (nJ) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for d in sorted(glob.glob(os.path.join(root, '*'))):
    fs = glob.glob(os.path.join(d, '*.csv'))
    if not fs or d.endswith('_timeboard'): continue
    r = [x for x in csv.DictReader(open(fs[0])) if x['iter_info'] == '1']
    lat = [float(x['latency']) for x in r]; seq = [int(x['seqlen']) for x in r]
    en = [float(x['total_energy']) for x in r]; b = int(r[0]['batchsize'])
    i, j = seq.index(min(seq)), seq.index(max(seq))
    tput = len(r) * b / (float(r[-1]['time']) * 1e-9)
    print(f"| {os.path.basename(d)} | {b} | {len(r)} | {seq[0]} | {lat[0]:.0f} | {st.mean(lat):.0f} | "
          f"{seq[i]} -> {lat[i]:.0f} | {seq[j]} -> {lat[j]:.0f} | {tput:.1f} | {st.mean(en):.4g} |")
EOF
cat "$OUT/summary.md"
log "done; results in $OUT"
