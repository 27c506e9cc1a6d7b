#!/usr/bin/env bash
# Rebuild MQSim from its pinned commit and regenerate every file under
# reports/golden/mqsim/ (the flash peer golden files). ~1.5 minutes on 2 cores
# (build ~40 s, 16 runs of 1-3 s each); add RUN_PRECOND=1 for the optional
# preconditioned check (+11 minutes, 8 GB RAM).
#
# Env: MQSIM_DIR (default /work/peers/mqsim), FRESH=1 (default: delete
# MQSIM_DIR first and rebuild from scratch; FRESH=0 reuses the build),
# RUN_PRECOND=0|1, plus build.sh's MQSIM_GIT_DIR / MQSIM_COMMIT / JOBS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
gold="$repo/reports/golden/mqsim"
export MQSIM_DIR=${MQSIM_DIR:-/work/peers/mqsim}
export MQSIM_COMMIT=${MQSIM_COMMIT:-7ec40e3b198e8bd117f992f051cd610e330e079e}
FRESH=${FRESH:-1}
RUN_PRECOND=${RUN_PRECOND:-0}
export MQSIM="$MQSIM_DIR/MQSim"

t0=$(date +%s)
if [ "$FRESH" = 1 ]; then cd /; rm -rf "$MQSIM_DIR"; fi
"$here/build.sh"

python3 "$here/make_workloads.py" "$here/workloads" >/dev/null
mkdir -p "$gold"
cfg="$MQSIM_DIR/ssdconfig.xml"          # MQSim's shipped device config, unmodified
cp "$cfg" "$gold/ssdconfig.xml"
tmp=$(mktemp -d /tmp/mqsim_cfg.XXXXXX)

# 1. the golden set: shipped config
rm -rf "$gold/default"
"$here/run_cases.sh" "$cfg" "$here/workloads" "$gold/default"

# 2. same device with an ideal (fully DRAM-resident) mapping table: isolates
#    the DFTL mapping-read cost that dominates the default random reads
sed 's|<Ideal_Mapping_Table>false</Ideal_Mapping_Table>|<Ideal_Mapping_Table>true</Ideal_Mapping_Table>|' "$cfg" > "$tmp/idealmap.xml"
grep -q '<Ideal_Mapping_Table>true<' "$tmp/idealmap.xml"
rm -rf "$gold/idealmap"
"$here/run_cases.sh" "$tmp/idealmap.xml" "$here/workloads" "$gold/idealmap"

# 3. optional: shipped config with preconditioning on (75% occupancy), one case
if [ "$RUN_PRECOND" = 1 ]; then
  sed 's|<Enabled_Preconditioning>false</Enabled_Preconditioning>|<Enabled_Preconditioning>true</Enabled_Preconditioning>|' "$cfg" > "$tmp/precond.xml"
  grep -q '<Enabled_Preconditioning>true<' "$tmp/precond.xml"
  rm -rf "$gold/precond_check"
  "$here/run_cases.sh" "$tmp/precond.xml" "$here/workloads" "$gold/precond_check" randread_4k_qd1
  sed -i -E '/Duration of preconditioning/d' "$gold/precond_check/randread_4k_qd1.stdout.log"
fi
rm -rf "$tmp"

dirs=("$gold/default" "$gold/idealmap")
[ -d "$gold/precond_check" ] && dirs+=("$gold/precond_check")
python3 "$here/summarize.py" "$here/workloads" "${dirs[@]}" > "$gold/summary.json"
python3 "$here/device_json.py" "$cfg" "$MQSIM_COMMIT" > "$gold/device.json"
echo "run_all.sh: done in $(( $(date +%s) - t0 )) s; results in $gold" >&2
