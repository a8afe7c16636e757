#!/usr/bin/env bash
# How cost grows: runs scripts/loadtest.sh once per point and draws each figure against what
# grew (`surge-scaling`): the projections' catch-up with 1, 2 and 3 `surge process` instances,
# the write peaks with 1 and 2 `surge write-api` instances (both from the baselines scenario),
# and each role's peak memory and CPU per 1,000 events as 10,000, 100,000 and 1,000,000 users
# arrive in a spike. Writes bench/results/scaling-<unix>.{runs,json} and three SVGs beside them.
#
#   scripts/scaling.sh                              # every point below
#   PROCESSOR_COUNTS="1 2" WRITE_API_COUNTS="" USER_COUNTS="10000" scripts/scaling.sh
# A spike of N users runs at SPIKE_RATE (default 2000) req/s over a ramp of N / (0.8 SPIKE_RATE)
# seconds (at least 20), so that every user arrives, then SECS (default 12) more. Before it, the
# steady crowd (RATE, default 1000 req/s, for SECS) warms the freshly started broker: spikes on a
# cold one answered with p99 over 1.5 s from their first second, and up to a third 503s.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

PROCESSOR_COUNTS="${PROCESSOR_COUNTS-1 2 3}"
WRITE_API_COUNTS="${WRITE_API_COUNTS-1 2}"
USER_COUNTS="${USER_COUNTS-10000 100000 1000000}"
SPIKE_RATE="${SPIKE_RATE:-2000}"
RATE="${RATE:-1000}"
SECS="${SECS:-12}"

mkdir -p bench/results
manifest="bench/results/scaling-$(date +%s).runs"
: >"$manifest"

loadtest() { # environment for scripts/loadtest.sh; prints the reports' stamp
  local log
  log="$(mktemp)"
  if ! env "$@" scripts/loadtest.sh >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "scripts/loadtest.sh $* failed; its output is in $log" >&2
    exit 1
  fi
  sed -n 's|^reports in bench/results/loadgen-\*-\([0-9]*\)\.json$|\1|p' "$log"
  rm -f "$log"
}

declare -A one_of_each # the stamp of the run with one instance of each role, if any
for n in $PROCESSOR_COUNTS; do
  echo "== baselines with $n processor instances"
  stamp="$(loadtest SCENARIOS=baselines PROCESSORS="$n" WRITE_APIS=1)"
  if [ "$n" = 1 ]; then one_of_each[stamp]="$stamp"; fi
  echo "processors $n $stamp" | tee -a "$manifest"
done
for n in $WRITE_API_COUNTS; do
  echo "== baselines with $n write API instances"
  if [ "$n" = 1 ] && [ -n "${one_of_each[stamp]:-}" ]; then
    stamp="${one_of_each[stamp]}" # the same setup as 1 processor instance: measured above
  else
    stamp="$(loadtest SCENARIOS=baselines PROCESSORS=1 WRITE_APIS="$n")"
  fi
  echo "write-apis $n $stamp" | tee -a "$manifest"
done
for users in $USER_COUNTS; do
  ramp=$(( users * 10 / (8 * SPIKE_RATE) ))
  if [ "$ramp" -lt 20 ]; then ramp=20; fi
  echo "== spike of $users users over $ramp s at $SPIKE_RATE req/s"
  stamp="$(loadtest SCENARIOS="steady spike" RATE="$RATE" SPIKE_USERS="$users" RAMP="$ramp" \
    SPIKE_RATE="$SPIKE_RATE" SECS="$SECS")"
  echo "users $users $stamp" | tee -a "$manifest"
done
target/release/surge-scaling "$manifest"
