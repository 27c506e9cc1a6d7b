#!/usr/bin/env bash
# Run MQSim on every workload XML in WORKLOAD_DIR with one SSD config, one
# case at a time, and collect the result XMLs.
#
# usage: run_cases.sh SSDCONFIG.xml WORKLOAD_DIR OUT_DIR [CASE ...]
#   writes OUT_DIR/<case>.xml         MQSim's result file (<case>_scenario_1.xml, renamed)
#          OUT_DIR/<case>.stdout.log  MQSim's console output
#          OUT_DIR/timing.tsv         case, wall-clock seconds, peak RSS (KiB)
# Env: MQSIM (default /work/peers/mqsim/MQSim)
set -euo pipefail
MQSIM=${MQSIM:-/work/peers/mqsim/MQSim}
cfg=$(realpath "$1"); wl=$(realpath "$2"); out=$3; shift 3
mkdir -p "$out"; out=$(realpath "$out")
if [ $# -gt 0 ]; then cases=("$@"); else cases=(); for f in "$wl"/*.xml; do cases+=("$(basename "$f" .xml)"); done; fi
scratch=$(mktemp -d /tmp/mqsim_run.XXXXXX)
[ -f "$out/timing.tsv" ] || printf 'case\twall_s\tmax_rss_kib\n' > "$out/timing.tsv"
for c in "${cases[@]}"; do
  rm -rf "$scratch"/*
  cp "$cfg" "$scratch/ssdconfig.xml"
  cp "$wl/$c.xml" "$scratch/$c.xml"
  echo "== $c" >&2
  ( cd "$scratch"
    # MQSim waits for a key press at the end (cin.get()): give it /dev/null.
    /usr/bin/time -f '%e %M' -o time.txt "$MQSIM" -i ssdconfig.xml -w "$c.xml" </dev/null > stdout.log 2>&1 )
  read -r wall rss < "$scratch/time.txt"
  # drop the "MQSim started/finished at <date>" lines so that reruns are byte-identical
  grep -v -E 'MQSim (started|finished) at|Total simulation time' "$scratch/stdout.log" > "$out/$c.stdout.log" || true
  cp "$scratch/${c}_scenario_1.xml" "$out/$c.xml"
  # replace an earlier timing row for this case
  { head -1 "$out/timing.tsv"; tail -n +2 "$out/timing.tsv" | awk -F'\t' -v c="$c" '$1 != c'; printf '%s\t%s\t%s\n' "$c" "$wall" "$rss"; } > "$out/timing.tsv.new"
  mv "$out/timing.tsv.new" "$out/timing.tsv"
  echo "   $wall s wall, $rss KiB peak RSS" >&2
done
rm -rf "$scratch"
