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
#   PROCESSORS=3 WRITE_APIS=2 scripts/loadtest.sh # instances of `surge process` and `surge write-api`
#   LOGS=/tmp/logs scripts/loadtest.sh        # keep every process's log there (else removed)
#   REDIS_CLUSTER=1 scripts/loadtest.sh       # the write APIs on the Redis Cluster of
#                                             # `scripts/services.sh --redis-cluster`
#   REDIS_CLUSTER=all scripts/loadtest.sh     # every role on it
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
PROCESSORS="${PROCESSORS:-1}"
WRITE_APIS="${WRITE_APIS:-1}"
REDIS_CLUSTER="${REDIS_CLUSTER:-}"

scripts/services.sh
# What the write APIs, and the other roles, get beside the common settings.
write_env=()
other_env=()
# The nodes of the cluster `scripts/services.sh --redis-cluster` makes.
cluster_ports=(7101 7102 7103 7104 7105 7106)
if [ -n "$REDIS_CLUSTER" ]; then
  scripts/services.sh --redis-cluster
  seeds="$(printf 'redis://127.0.0.1:%s,' "${cluster_ports[@]}")"
  write_env=("SURGE_REDIS_CLUSTER_URLS=${seeds%,}")
  if [ "$REDIS_CLUSTER" = all ]; then other_env=("${write_env[@]}"); fi
fi
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
  if [ -n "${LOGS:-}" ]; then mkdir -p "$LOGS" && cp "$run_dir"/*.log "$LOGS"/ 2>/dev/null || true; fi
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
scripts/broker.sh start "$broker_port" "$run_dir"

export SURGE_KAFKA_BROKERS="127.0.0.1:$broker_port" SURGE_DATABASE_SCHEMA="$id" \
  SURGE_REDIS_PREFIX="$id" SURGE_EVENTS_TOPIC="$id.events" SURGE_LOG=warn \
  SURGE_WRITE_ADMIN_ADDR=127.0.0.1:0 SURGE_QUERY_ADMIN_ADDR=127.0.0.1:0 \
  SURGE_TELEGRAM_WEBHOOK_ADDR=127.0.0.1:0
# The load test measures the pipeline, not the game economy: its baselines phase sends batches
# of 100 taps per user far faster than any tap energy refills.
export SURGE_TAP_ENERGY_CAPACITY="${SURGE_TAP_ENERGY_CAPACITY:-1000000000}" \
  SURGE_TAP_ENERGY_REFILL_PER_SEC="${SURGE_TAP_ENERGY_REFILL_PER_SEC:-1000000}"

"$surge" migrate >"$run_dir/migrate.log" 2>&1
# Each instance: its role, pid and HTTP port. Instances of one role share the role's group and
# settings; each listens on a port of its own (admin and webhook ports: any free one).
declare -A role_of pid_of port_of
start_instance() { # role, index, first port to try, the role's address variable
  local name="$1-$2" port extra=()
  port="$(free_port "$(($3 + 10 * $2))")"
  if [ "$1" = write-api ]; then extra=("${write_env[@]}"); else extra=("${other_env[@]}"); fi
  env "$4=127.0.0.1:$port" "${extra[@]}" "$surge" "$1" >"$run_dir/$name.log" 2>&1 &
  role_of[$name]="$1"; pid_of[$name]=$!; port_of[$name]="$port"; pids+=("$!")
  for _ in $(seq 1 600); do
    if curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null; then return; fi
    sleep 0.1
  done
  echo "$name on port $port never became ready; logs in $run_dir" >&2
  tail -n 20 "$run_dir"/*.log >&2
  exit 1
}
for i in $(seq 1 "$WRITE_APIS"); do start_instance write-api "$i" 28080 SURGE_WRITE_ADDR; done
for i in $(seq 1 "$PROCESSORS"); do start_instance process "$i" 28280 SURGE_PROCESS_ADDR; done
start_instance query-api 1 28180 SURGE_QUERY_ADDR
query_port="${port_of[query-api-1]}"
instances() { # role: its instances' names, in order
  for name in "${!role_of[@]}"; do if [ "${role_of[$name]}" = "$1" ]; then echo "$name"; fi; done | sort -V
}
urls_of() { # role, path: the instances' URLs, comma-separated
  local urls=()
  for name in $(instances "$1"); do urls+=("http://127.0.0.1:${port_of[$name]}$2"); done
  local IFS=,; echo "${urls[*]}"
}
pids_of() { # role: the instances' pids, comma-separated
  local pids_list=()
  for name in $(instances "$1"); do pids_list+=("${pid_of[$name]}"); done
  local IFS=,; echo "${pids_list[*]}"
}
write_urls="$(urls_of write-api "")"
metrics_urls="$(urls_of process /metrics)"

# Every projection's processor holds every partition before the crowd starts, so the first
# reads do not wait out the consistency timeout while the groups form: each processor starts its
# dead-letter counters at 0, and each partition it is assigned its stall gauge. A gauge outlives
# a partition moved to another instance, so with several instances the groups have formed when
# every projection's partitions are all covered and every instance holds some of each.
partitions="${SURGE_EVENTS_PARTITIONS:-12}"
assigned() {
  local metrics="" n=0
  for name in $(instances process); do
    metrics+="$(curl -sf "http://127.0.0.1:${port_of[$name]}/metrics" | sed "s/^/$n /")"$'\n' || return 1
    n=$((n + 1))
  done
  printf '%s' "$metrics" | awk -v want="$partitions" -v instances="$n" '
    $2 ~ /^processor_dead_letters_total\{/ { match($2, /projection="[^"]*"/); p[substr($2, RSTART, RLENGTH)] = 1 }
    $2 ~ /^processor_partition_stalled\{/ {
      series[$2] = 1; match($2, /projection="[^"]*"/); held[$1 " " substr($2, RSTART, RLENGTH)] = 1
    }
    END {
      k = 0; for (x in p) k++; s = 0; for (x in series) s++; h = 0; for (x in held) h++
      exit !(k > 0 && s == k * want && h == k * instances)
    }'
}
for _ in $(seq 1 600); do assigned && break; sleep 0.1; done
assigned || echo "warning: not every partition was assigned within 60 s; starting anyway" >&2

# CPU seconds (user + system) a process has used so far.
cpu_secs() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}
# A process's resident memory now and at its highest so far, in MB.
rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
peak_rss_mb() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# Per role, summed over its instances: CPU seconds since the scenario began, memory at its end.
resources_json() { # scenario
  local cpu=() rss=() peak=()
  for role in write-api process query-api; do
    local c=0 r=0 p=0
    for name in $(instances "$role"); do
      c="$(awk -v s="$c" -v a="$(cpu_secs "${pid_of[$name]}")" -v b="${cpu_before[$name]}" 'BEGIN { printf "%.2f", s + a - b }')"
      r="$(awk -v s="$r" -v a="$(rss_mb "${pid_of[$name]}")" 'BEGIN { printf "%.1f", s + a }')"
      p="$(awk -v s="$p" -v a="$(peak_rss_mb "${pid_of[$name]}")" 'BEGIN { printf "%.1f", s + a }')"
    done
    cpu+=("\"$role\": $c"); rss+=("\"$role\": $r"); peak+=("\"$role\": $p")
  done
  local IFS=,
  echo "{\"scenario\": \"$1\", \"instances\": {\"write-api\": $WRITE_APIS, \"process\": $PROCESSORS, \"query-api\": 1}, \"cpu_secs\": {${cpu[*]}}, \"rss_mb\": {${rss[*]}}, \"peak_rss_mb\": {${peak[*]}}}"
}

declare -A cpu_before
run_scenario() {
  local scenario="$1"; shift
  case " $SCENARIOS " in *" $scenario "*) ;; *) return 0 ;; esac
  for name in "${!pid_of[@]}"; do cpu_before[$name]="$(cpu_secs "${pid_of[$name]}")"; done
  echo "== $scenario"
  "$loadgen" --scenario "$scenario" \
    --write-url "$write_urls" --query-url "http://127.0.0.1:$query_port" \
    --lag-url "$metrics_urls" \
    --out "bench/results/loadgen-$scenario-$stamp.json" "$@"
  resources_json "$scenario" | tee "bench/results/loadgen-$scenario-$stamp.cpu.json"
}

run_scenario steady --rate "$RATE" --duration-secs "$SECS" --users "$USERS"
run_scenario spike --rate "$SPIKE_RATE" --duration-secs "$((RAMP + SECS))" --users "$SPIKE_USERS" \
  --ramp-secs "$RAMP" --first-user-id 6500000000
run_scenario freshness --freshness-rates "$FRESH_RATES" --duration-secs "$SECS" --users "$USERS" \
  --first-user-id 6800000000
# Each baselines phase also records the CPU of every instance, the broker and Redis.
pids_arg=""
for name in $(instances write-api) $(instances process) $(instances query-api); do
  pids_arg+="$name=${pid_of[$name]},"
done
pids_arg+="broker=$(cat "$run_dir/broker.pid")"
redis_pid="$(pgrep -o -x redis-server || true)"
if [ -n "$redis_pid" ]; then pids_arg+=",redis=$redis_pid"; fi
if [ -n "$REDIS_CLUSTER" ]; then
  for node in "${cluster_ports[@]}"; do
    node_pid="$(redis-cli -p "$node" info server | tr -d '\r' | sed -n 's/^process_id://p')"
    pids_arg+=",redis-$node=$node_pid"
  done
fi
# The processors are held during each write phase: the write path has the machine to itself,
# as its limits do, and the catch-up then applies the whole batch as a backlog.
run_scenario baselines --duration-secs "$BASE_SECS" --concurrency "$BASE_CONCURRENCY" \
  --users "$USERS" --first-user-id 6900000000 --cpu-pids "$pids_arg" \
  --hold-processors-pid "$(pids_of process)"
echo "reports in bench/results/loadgen-*-$stamp.json"
