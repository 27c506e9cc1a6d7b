#!/bin/sh
# Runs every fuzz target once, in parallel: RUNS executions each (default 1,000,000),
# MAX_TIME seconds at most (default 1500). Binaries in BIN (default: the instrumented
# build's target/x86_64-unknown-linux-gnu/release), corpora in corpus/<target>/, logs
# and crash artifacts in OUT (default artifacts/).
BIN=${BIN:-target/x86_64-unknown-linux-gnu/release}; OUT=${OUT:-artifacts}; RUNS=${RUNS:-1000000}; MAX_TIME=${MAX_TIME:-1500}
mkdir -p "$OUT"
for t in parse_check arch_toml workload_toml mapping_toml constraints_toml gpu_op; do
  mkdir -p "corpus/$t"
  "$BIN/$t" "corpus/$t" -dict="$t.dict" -max_len=8192 -runs="$RUNS" \
    -max_total_time="$MAX_TIME" -print_final_stats=1 -artifact_prefix="$OUT/$t-" \
    > "$OUT/$t.log" 2>&1 &
done
wait
for t in parse_check arch_toml workload_toml mapping_toml constraints_toml gpu_op; do
  printf '%s: %s executions, %s crashes\n' "$t" \
    "$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/$t.log")" \
    "$(grep -c -E 'ERROR: libFuzzer|panicked' "$OUT/$t.log")"
done
