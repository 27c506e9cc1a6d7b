#!/usr/bin/env bash
# Regenerate this case: run Timeloop v3.0.3 (installed under /work/peers) and rewrite golden.json.
set -euo pipefail
exec "$(dirname "$0")/../tools/tl_run.sh" "$(dirname "$0")"
