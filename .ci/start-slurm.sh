#!/usr/bin/env bash
# CI: start the single-node SLURM test cluster (../shared/slurm/start-local-slurm.sh:
# slurmctld + slurmd + slurmdbd on this machine, partition `debug`, account `local`)
# so that tests/test_slurm.py runs the demo through profiles/slurm.
#
# Never fails the CI run by itself: when the cluster cannot be started, it says why and
# exits 0, and tests/test_slurm.py then skips with its own reason. A failed start is
# retried once after stopping what the first attempt started.
#
#   bash .ci/start-slurm.sh          # from anywhere; paths are relative to the repository
set -uo pipefail
cd "$(dirname "$0")/.."

START=../shared/slurm/start-local-slurm.sh
LOG=/tmp/gutaxis-ci-slurm.log
say() { echo "[start-slurm] $*"; }

if [ ! -f "$START" ]; then
  say "not starting SLURM: $START not found (the slurm test will skip)"; exit 0
fi
if [ "$(id -u)" != 0 ]; then
  say "not starting SLURM: the local cluster needs root (the slurm test will skip)"; exit 0
fi

up=0
for attempt in 1 2; do
  say "starting the local SLURM cluster (attempt $attempt, log: $LOG)"
  # the script installs the Debian packages when missing (~20 MB) and starts the daemons;
  # 15 min is far above the ~20-45 s it takes, but apt mirrors can be slow
  if timeout 900 bash "$START" start >> "$LOG" 2>&1; then up=1; break; fi
  say "attempt $attempt failed; last lines of $LOG:"
  tail -n 25 "$LOG" | sed 's/^/    /'
  # stop only what the script recorded in its pidfile, then try again from a clean state
  bash "$START" stop >> "$LOG" 2>&1 || true
  sleep 5
done
if [ "$up" != 1 ]; then
  say "could not start SLURM (see $LOG); the slurm test will skip"; exit 0
fi

# what tests/test_slurm.py relies on: a partition up, sacct answering (the executor
# plugin's default status command), the account the test submits under
sinfo -h -o '%P %a %T %C' | sed 's/^/[start-slurm] sinfo: /'
if sacct -n -X -S now-1hours >/dev/null 2>&1; then
  say "sacct works"
else
  say "WARNING: sacct does not work; the slurm test will poll with squeue instead"
fi
sacctmgr -n -P show assoc user="$(id -un)" format=account 2>/dev/null | sed 's/^/[start-slurm] account: /'
say "SLURM is up"
