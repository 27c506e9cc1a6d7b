#!/usr/bin/env bash
# Run the installed Timeloop v3.0.3 timeloop-model on one parity case and
# regenerate its golden.json. Usage: tools/tl_run.sh CASE_DIR
# Expects the peer built at $TIMELOOP_DIR (default /work/peers/timeloop);
# this script never builds it.
set -euo pipefail
case_dir=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
TIMELOOP_DIR=${TIMELOOP_DIR:-/work/peers/timeloop}
model="$TIMELOOP_DIR/build/timeloop-model"
if [[ ! -x "$model" ]]; then
  echo "ERROR: $model not found: install Timeloop v3.0.3 under $TIMELOOP_DIR first (see tests/parity/README.md)" >&2
  exit 1
fi
export LD_LIBRARY_PATH="$TIMELOOP_DIR/build${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cd "$case_dir"
rm -rf out && mkdir out
"$model" arch.yaml problem.yaml map.yaml ert.yaml -o out > out/timeloop-model.log 2>&1 || {
  cat out/timeloop-model.log >&2; exit 1; }
# Keep what the goldens need; drop the tenssella dump.
rm -f out/timeloop-model.map.tenssella.txt
python3 "$here/tl_golden.py" "$case_dir"
