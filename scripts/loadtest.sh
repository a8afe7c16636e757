#!/usr/bin/env bash
# The whole stack as separate processes under load: starts an Apache Kafka broker (scripts/broker.sh), `surge write-api`,
# `surge process` and `surge query-api` (release builds) on a fresh topic, database schema and
# Redis key prefix, runs `surge-loadgen` steady, spike, freshness and baselines (the machine's limits
# beside the system's peaks, same run, same stack), and writes each report plus the CPU seconds each
# role used to bench/results/. Starts PostgreSQL and Redis with scripts/services.sh; installs webdis
# (a baseline) if it is missing.
#
#   scripts/loadtest.sh                       # defaults below
#   RATE=2000 SECS=60 SPIKE_USERS=100000 RAMP=60 FRESH_RATES=250,500,1000 scripts/loadtest.sh
#   BASE_SECS=5 BASE_CONCURRENCY=256          # each baselines phase's length, its HTTP workers
#   SCENARIOS="baselines" scripts/loadtest.sh # only some scenarios (default: all four, in order)
# SPIKE_RATE (default RATE) is the spike's request rate: every request of a user not yet arrived is
# their first session, so SPIKE_USERS can only all arrive within RAMP if SPIKE_RATE > SPIKE_USERS/RAMP.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

RATE="${RATE:-1000}"
SECS="${SECS:-20}"
USERS="${USERS:-10000}"
SPIKE_USERS="${SPIKE_USERS:-20000}"
RAMP="${RAMP:-20}"
SPIKE_RATE="${SPIKE_RATE:-$RATE}"
FRESH_RATES="${FRESH_RATES:-250,500,1000}"
BASE_SECS="${BASE_SECS:-5}"
BASE_CONCURRENCY="${BASE_CONCURRENCY:-256}"
SCENARIOS="${SCENARIOS:-steady spike freshness baselines}"

scripts/services.sh
scripts/broker.sh install
if ! command -v webdis >/dev/null; then
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq webdis >/dev/null
fi
cargo build --release --locked --quiet -p surge -p surge-tools
surge=target/release/surge
loadgen=target/release/surge-loadgen

run_dir="$(mktemp -d)"
id="load$(date +%s)"
stamp="$(date +%s)"
mkdir -p bench/results
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  scripts/broker.sh stop "$run_dir" || true
  wait 2>/dev/null || true
  redis-cli --scan --pattern "$id:*" | xargs -r -n 500 redis-cli del >/dev/null 2>&1 || true
  psql -q -h 127.0.0.1 -U postgres -d surge -c "DROP SCHEMA IF EXISTS $id CASCADE" >/dev/null 2>&1 || true
  rm -rf "$run_dir"
}
trap cleanup EXIT

free_port() {
  for candidate in $(seq "$1" "$(($1 + 100))"); do
    if ! (echo >"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then echo "$candidate"; return; fi
  done
  echo "no free port from $1" >&2; exit 1
}
broker_port="$(free_port 29092)"
write_port="$(free_port 28080)"
query_port="$(free_port 28180)"
process_port="$(free_port 28280)"
scripts/broker.sh start "$broker_port" "$run_dir"

export SURGE_KAFKA_BROKERS="127.0.0.1:$broker_port" SURGE_DATABASE_SCHEMA="$id" \
  SURGE_REDIS_PREFIX="$id" SURGE_EVENTS_TOPIC="$id.events" SURGE_LOG=warn \
  SURGE_WRITE_ADDR="127.0.0.1:$write_port" SURGE_QUERY_ADDR="127.0.0.1:$query_port" \
  SURGE_PROCESS_ADDR="127.0.0.1:$process_port"
# The load test measures the pipeline, not the game economy: its baselines phase sends batches
# of 100 taps per user far faster than any tap energy refills.
export SURGE_TAP_ENERGY_CAPACITY="${SURGE_TAP_ENERGY_CAPACITY:-1000000000}" \
  SURGE_TAP_ENERGY_REFILL_PER_SEC="${SURGE_TAP_ENERGY_REFILL_PER_SEC:-1000000}"

"$surge" migrate >"$run_dir/migrate.log" 2>&1
declare -A role_pid
for role in write-api process query-api; do
  "$surge" "$role" >"$run_dir/$role.log" 2>&1 &
  role_pid[$role]=$!
  pids+=("$!")
done
for port in "$write_port" "$query_port" "$process_port"; do
  for _ in $(seq 1 600); do
    if curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null; then break; fi
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null || {
    echo "a role on port $port never became ready; logs in $run_dir" >&2
    tail -n 20 "$run_dir"/*.log >&2
    exit 1
  }
done

# Every projection's processor holds every partition before the crowd starts, so the first
# reads do not wait out the consistency timeout while the groups form: each processor starts its
# dead-letter counters at 0, and each partition it is assigned its stall gauge.
partitions="${SURGE_EVENTS_PARTITIONS:-12}"
assigned() {
  curl -sf "http://127.0.0.1:$process_port/metrics" | awk -v want="$partitions" '
    /^processor_dead_letters_total\{/ { match($0, /projection="[^"]*"/); p[substr($0, RSTART, RLENGTH)] = 1 }
    /^processor_partition_stalled\{/ { n++ }
    END { k = 0; for (x in p) k++; exit !(k > 0 && n == k * want) }'
}
for _ in $(seq 1 600); do assigned && break; sleep 0.1; done
assigned || echo "warning: not every partition was assigned within 60 s; starting anyway" >&2

# CPU seconds (user + system) a process has used so far.
cpu_secs() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}
cpu_json() { # scenario, then "role before" pairs
  local scenario="$1"; shift
  local parts=()
  for role in write-api process query-api; do
    local before="${cpu_before[$role]}" after
    after="$(cpu_secs "${role_pid[$role]}")"
    parts+=("\"$role\": $(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.2f", a - b }')")
  done
  local IFS=,
  echo "{\"scenario\": \"$scenario\", \"cpu_secs\": {${parts[*]}}}"
}

declare -A cpu_before
run_scenario() {
  local scenario="$1"; shift
  case " $SCENARIOS " in *" $scenario "*) ;; *) return 0 ;; esac
  for role in write-api process query-api; do cpu_before[$role]="$(cpu_secs "${role_pid[$role]}")"; done
  echo "== $scenario"
  "$loadgen" --scenario "$scenario" \
    --write-url "http://127.0.0.1:$write_port" --query-url "http://127.0.0.1:$query_port" \
    --lag-url "http://127.0.0.1:$process_port/metrics" \
    --out "bench/results/loadgen-$scenario-$stamp.json" "$@"
  cpu_json "$scenario" | tee "bench/results/loadgen-$scenario-$stamp.cpu.json"
}

run_scenario steady --rate "$RATE" --duration-secs "$SECS" --users "$USERS"
run_scenario spike --rate "$SPIKE_RATE" --duration-secs "$((RAMP + SECS))" --users "$SPIKE_USERS" \
  --ramp-secs "$RAMP" --first-user-id 6500000000
run_scenario freshness --freshness-rates "$FRESH_RATES" --duration-secs "$SECS" --users "$USERS" \
  --first-user-id 6800000000
# Each baselines phase also records the CPU of every role, the broker and Redis.
pids_arg="write-api=${role_pid[write-api]},process=${role_pid[process]},query-api=${role_pid[query-api]}"
pids_arg+=",broker=$(cat "$run_dir/broker.pid")"
redis_pid="$(pgrep -o -x redis-server || true)"
if [ -n "$redis_pid" ]; then pids_arg+=",redis=$redis_pid"; fi
# The processors are held during each write phase: the write path has the machine to itself,
# as its limits do, and the catch-up then applies the whole batch as a backlog.
run_scenario baselines --duration-secs "$BASE_SECS" --concurrency "$BASE_CONCURRENCY" \
  --users "$USERS" --first-user-id 6900000000 --cpu-pids "$pids_arg" \
  --hold-processors-pid "${role_pid[process]}"
echo "reports in bench/results/loadgen-*-$stamp.json"
