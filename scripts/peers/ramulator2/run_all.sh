#!/usr/bin/env bash
# Rebuild Ramulator 2.0 from nothing and regenerate reports/golden/ramulator2/.
#
#   scripts/peers/ramulator2/run_all.sh [run.py options, e.g. --repeats 5]
#
# 1. build.sh --clean: extract the pinned sources (Ramulator v2.0a, yaml-cpp
#    0.7.0, spdlog 1.11.0, argparse 2.9) to $RAMULATOR2_DIR (default
#    /work/peers/ramulator2) and compile bin/ramulator2 and
#    bin/ramulator2-dump-spec with g++ -O3, at most 2 jobs (about 4 minutes).
# 2. drop the old traces and run directories, then run.py: regenerate the
#    traces (traces.py), run the 10 cases (5 times each for the wall clock)
#    and their 2000-request prefixes, and write summary.json, timings.json,
#    stats/ and prefix/ under reports/golden/ramulator2/ (about 3 minutes).
# Needs: bash, git, tar, make, g++ >= 12 (C++20), python3 with PyYAML.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RAMULATOR2_DIR=${RAMULATOR2_DIR:-/work/peers/ramulator2}
export RAMULATOR2_DIR

"$HERE/build.sh" --clean
rm -rf "$RAMULATOR2_DIR/traces" "$RAMULATOR2_DIR/runs"
python3 "$HERE/run.py" "$@"
