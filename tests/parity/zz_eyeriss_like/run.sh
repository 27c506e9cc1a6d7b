#!/usr/bin/env bash
# Regenerate this case: run ZigZag (zigzag-dse in the venv /work/peers/venv) and rewrite out/ and golden.json.
set -euo pipefail
PY=${ZIGZAG_PYTHON:-/work/peers/venv/bin/python}
[[ -x "$PY" ]] || { echo "ERROR: $PY not found: install zigzag-dse into /work/peers/venv (see tests/parity/README.md)" >&2; exit 1; }
exec "$PY" "$(dirname "$0")/../tools/zz_run.py" "$(dirname "$0")" eyeriss_like
