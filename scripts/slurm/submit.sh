#!/bin/bash
# Submits a cascade sweep to Slurm as a job array of N shards and a merge job that runs once
# every shard has succeeded (afterok), writing RESULTS_DIR/results.jsonl, .csv, summary and plots.
#
#   scripts/slurm/submit.sh STUDY.toml RESULTS_DIR N [sbatch options...]
#   e.g. scripts/slurm/submit.sh studies/fusemax_lhs1000.toml results/lhs 16 --partition=cpu
#
# Prints the merge job's id. Environment: CASCADE, the binary (default: `cascade` on PATH).
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 STUDY.toml RESULTS_DIR N [sbatch options...]" >&2
  exit 2
fi
study=$1
out=$2
n=$3
shift 3
case $n in '' | *[!0-9]* | 0) echo "error: N ($n) must be a positive integer" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
array=$(sbatch --parsable "$@" --array="0-$((n - 1))" --output="$out/shard-%a.out" \
  "$here/sweep.sbatch" "$study" "$out")
array=${array%%;*}
shards=()
for ((i = 0; i < n; i++)); do shards+=("$out/results.shard-$i-of-$n.jsonl"); done
cmd=$(printf '%q ' "${CASCADE:-cascade}" sweep merge "${shards[@]}" --study "$study" --out "$out")
merge=$(sbatch --parsable "$@" --dependency="afterok:$array" --job-name=cascade-sweep-merge \
  --output="$out/merge.out" --wrap="$cmd")
echo "${merge%%;*}"
