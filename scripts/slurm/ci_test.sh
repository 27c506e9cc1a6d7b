#!/bin/bash
# CI test of the Slurm scale-out (issue 13): starts a real single-node Slurm (munged, slurmctld
# and slurmd from Debian's packages, configured and started here, under a temporary directory,
# as the user running the test), submits scripts/slurm/test_study.toml as a 4-task job array
# with its merge job (scripts/slurm/submit.sh), and checks that the merged results equal a serial
# run byte for byte. Fails loudly on any missing piece.
#
#   scripts/slurm/ci_test.sh path/to/cascade
set -euo pipefail
cascade=$(realpath "${1:?usage: $0 path/to/cascade}")
repo=$(cd "$(dirname "$0")/../.." && pwd)
for b in munged slurmctld slurmd sbatch squeue sinfo; do
  command -v "$b" >/dev/null || { echo "error: $b is missing (Debian: apt-get install munge slurmctld slurmd slurm-client)" >&2; exit 1; }
done
t=$(mktemp -d /tmp/cascade-slurm.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
mkdir -p "$t/state" "$t/spool" "$t/munge"
chmod 700 "$t/munge"
user=$(id -un)
host=$(hostname -s)
cpus=$(nproc)

# munge: its own key and socket, so nothing of the machine's is used or changed.
dd if=/dev/urandom of="$t/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$t/munge/munge.key"
munged --force --key-file="$t/munge/munge.key" --socket="$t/munge/munge.socket" \
  --pid-file="$t/munge/munged.pid" --log-file="$t/munge/munged.log" \
  --seed-file="$t/munge/munged.seed"
pids+=("$(cat "$t/munge/munged.pid")")

port=$((20000 + RANDOM % 20000))
cat > "$t/slurm.conf" <<CONF
ClusterName=cascadeci
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$t/munge/munge.socket
StateSaveLocation=$t/state
SlurmdSpoolDir=$t/spool/%n
SlurmctldPidFile=$t/slurmctld.pid
SlurmdPidFile=$t/slurmd.pid
SlurmctldLogFile=$t/slurmctld.log
SlurmdLogFile=$t/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmdTimeout=60
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
export SLURM_CONF=$t/slurm.conf

slurmctld -D -i -f "$SLURM_CONF" >"$t/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" -N "$host" >"$t/slurmd.out" 2>&1 &
pids+=($!)
up=0
for _ in $(seq 1 60); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed)'; then up=1; break; fi
  sleep 1
done
if [ $up -ne 1 ]; then
  echo "error: the Slurm node did not come up in 60 s" >&2
  sinfo >&2 || true
  tail -n 30 "$t/slurmctld.log" "$t/slurmd.log" "$t/slurmctld.out" "$t/slurmd.out" >&2 || true
  exit 1
fi
echo "slurm: $(sinfo --version), node $host with $cpus CPUs up"

cd "$repo"
study=scripts/slurm/test_study.toml
out=$t/results
export CASCADE=$cascade
merge=$(scripts/slurm/submit.sh "$study" "$out" 4)
echo "submitted: a 4-task array and merge job $merge"
# Wait for every job of the test to leave the queue (10 minutes at most).
for _ in $(seq 1 600); do
  [ -z "$(squeue -h -o '%i' 2>/dev/null)" ] && break
  sleep 1
done
if [ -n "$(squeue -h -o '%i')" ]; then
  echo "error: jobs still queued after 10 minutes:" >&2
  squeue >&2
  exit 1
fi
for i in 0 1 2 3; do
  echo "--- shard $i of 4 (task output):"
  tail -n 2 "$out/shard-$i.out"
  test -s "$out/results.shard-$i-of-4.jsonl" || { echo "error: shard $i wrote no results" >&2; exit 1; }
done
echo "--- merge job:"
cat "$out/merge.out"
test -s "$out/results.jsonl" || { echo "error: the merge job wrote no results.jsonl" >&2; exit 1; }

# The serial run, outside Slurm.
"$cascade" sweep "$study" --out "$t/serial" 2>/dev/null >/dev/null
for f in results.jsonl results.csv summary.json summary.md; do
  if ! cmp "$out/$f" "$t/serial/$f"; then
    echo "error: $f of the Slurm array differs from the serial run's" >&2
    exit 1
  fi
done
echo "ok: the 4-task Slurm array, merged, equals the serial run byte for byte ($(wc -l <"$out/results.jsonl") points; results.jsonl, results.csv, summary.json, summary.md)"
rm -rf "$t"
