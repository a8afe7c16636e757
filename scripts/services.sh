#!/usr/bin/env bash
# Installs (from Debian's packages) and starts what Surge needs beside itself on this machine:
# PostgreSQL on 127.0.0.1:5432, with trust authentication for local TCP connections as the tests
# and `surge dev` expect, and Redis on 127.0.0.1:6379. Does nothing for what already answers.
# With `--replica [PORT]` (scripts/test.sh) also a streaming replica of that PostgreSQL on PORT
# (5433); with `--redis-cluster` (scripts/test.sh) also a Redis Cluster of three masters, each
# with a replica, on 127.0.0.1:7101-7106. Used by scripts/dev.sh and scripts/test.sh; safe to run
# again.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
log() { echo "services.sh: $*" >&2; }

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Runs the command until it succeeds, for at most $wait_secs seconds (60 when unset).
wait_for() {
  local what="$1" secs="${wait_secs:-60}"
  shift
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$what did not answer within $secs s"
      return 1
    fi
    sleep 0.2
  done
}

postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null &&
    psql -h 127.0.0.1 -U postgres -d postgres -w -Atc 'select 1' >/dev/null 2>&1; then
    return 0
  fi
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    log "installing PostgreSQL"
    apt_install postgresql
  fi
  local version
  version="$(ls /usr/lib/postgresql | sort -n | tail -n 1)"
  if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -qx "$version main"; then
    as_root pg_createcluster "$version" main >/dev/null
  fi
  local conf="/etc/postgresql/$version/main"
  # Trust for loopback TCP only, first in the file so it wins over the packaged scram lines.
  if ! grep -q '^# surge: local trust' "$conf/pg_hba.conf"; then
    log "configuring trust authentication on 127.0.0.1 and ::1"
    as_root sh -c "{ printf '%s\n' '# surge: local trust' \
      'host all all 127.0.0.1/32 trust' 'host all all ::1/128 trust' \
      'host replication all 127.0.0.1/32 trust' 'host replication all ::1/128 trust'; \
      cat '$conf/pg_hba.conf'; } > '$conf/pg_hba.conf.new' && mv '$conf/pg_hba.conf.new' '$conf/pg_hba.conf'"
  fi
  # Parallel tests each hold a few pools.
  if [ ! -f "$conf/conf.d/surge.conf" ]; then
    as_root sh -c "printf '%s\n' \"listen_addresses = 'localhost'\" 'port = 5432' 'max_connections = 500' \
      > '$conf/conf.d/surge.conf'"
  fi
  as_root pg_ctlcluster "$version" main restart
  wait_for PostgreSQL psql -h 127.0.0.1 -U postgres -d postgres -w -Atc 'select 1'
}

redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
    return 0
  fi
  if ! command -v redis-server >/dev/null; then
    log "installing Redis"
    apt_install redis-server
    # The package may have started one already.
    redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG && return 0
  fi
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --logfile /tmp/surge-redis.log >/dev/null
  wait_for Redis sh -c 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'
}

# A streaming replica of that PostgreSQL on 127.0.0.1:$1 (cluster "replica"), for the tests of
# reading through replicas: a base backup of the primary, following it over streaming
# replication, read-only. Made once; started again when it is down, and made anew when it
# cannot stream: stopped for long, it needs WAL the primary has since recycled.
replica() {
  local port="$1"
  local version
  version="$(ls /usr/lib/postgresql | sort -n | tail -n 1)"
  if ! in_recovery "$port"; then
    start_replica "$version" "$port"
  fi
  if ! streaming "$port"; then
    log "the replica on port $port is not streaming from the primary; making it again"
    as_root pg_dropcluster --stop "$version" replica
    start_replica "$version" "$port"
    streaming "$port" || { log "the new replica on port $port does not stream"; return 1; }
  fi
  # A test that paused replay and was killed before resuming it must not hold the next run.
  psql -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -w -c 'select pg_wal_replay_resume()' >/dev/null
}

# What the PostgreSQL on port $1 answers to the query $2; nothing when it does not answer.
answer_on() {
  psql -h 127.0.0.1 -p "$1" -U postgres -d postgres -w -Atc "$2" 2>/dev/null
}

in_recovery() { answer_on "$1" 'select pg_is_in_recovery()' | grep -qx t; }

receiving_wal() { answer_on "$1" 'select status from pg_stat_wal_receiver' | grep -qx streaming; }

# Whether the replica on port $1 streams from the primary within 20 s.
streaming() { wait_secs=20 wait_for "the replica's WAL stream" receiving_wal "$1"; }

# Creates the replica cluster from a base backup when it does not exist, and (re)starts it.
start_replica() {
  local version="$1" port="$2"
  local conf="/etc/postgresql/$version/replica" data="/var/lib/postgresql/$version/replica"
  if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -qx "$version replica"; then
    log "creating a streaming replica on port $port"
    as_root pg_createcluster "$version" replica --port "$port" >/dev/null
    as_root sh -c "{ printf '%s\n' '# surge: local trust' \
      'host all all 127.0.0.1/32 trust' 'host all all ::1/128 trust'; \
      cat '$conf/pg_hba.conf'; } > '$conf/pg_hba.conf.new' && mv '$conf/pg_hba.conf.new' '$conf/pg_hba.conf'"
    # A hot standby needs at least the primary's max_connections.
    as_root sh -c "printf '%s\n' \"listen_addresses = 'localhost'\" 'port = $port' 'max_connections = 500' \
      'hot_standby = on' 'hot_standby_feedback = on' > '$conf/conf.d/surge.conf'"
    as_root rm -rf "$data"
    as_root runuser -u postgres -- pg_basebackup -h 127.0.0.1 -p 5432 -U postgres -D "$data" \
      --write-recovery-conf --wal-method=stream --checkpoint=fast
  fi
  as_root pg_ctlcluster "$version" replica restart
  wait_for "the PostgreSQL replica" in_recovery "$port"
}

# A Redis Cluster for the tests that say `on_redis_cluster`: three masters and a replica of
# each, on 127.0.0.1:7101-7106, in memory only. A node that is down (a failover test kills one)
# is started again and rejoins as a replica; a cluster that is still not whole then is made
# anew, so a test that a kill interrupted cannot hold the next run.
cluster_ports=(7101 7102 7103 7104 7105 7106)
cluster_dir=/tmp/surge-redis-cluster

redis_cluster() {
  cluster_whole && return 0
  local port
  if [ -d "$cluster_dir" ]; then
    for port in "${cluster_ports[@]}"; do
      if ! redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
        log "starting Redis Cluster node $port again"
        start_cluster_node "$port"
      fi
    done
    wait_secs=20 wait_for "the Redis Cluster, whole again" cluster_whole && return 0
  fi
  log "starting a Redis Cluster on ports ${cluster_ports[0]}-${cluster_ports[5]}"
  for port in "${cluster_ports[@]}"; do
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  done
  rm -rf "$cluster_dir"
  for port in "${cluster_ports[@]}"; do
    start_cluster_node "$port"
  done
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${cluster_ports[@]}") --cluster-replicas 1 \
    --cluster-yes >/dev/null
  wait_for "the Redis Cluster" cluster_whole
}

# A node of the cluster on port $1; with the nodes.conf of an earlier start it rejoins.
start_cluster_node() {
  local port="$1"
  mkdir -p "$cluster_dir/$port"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --dir "$cluster_dir/$port" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --save "" --appendonly no --logfile "$cluster_dir/$port/redis.log" >/dev/null
  wait_for "Redis on $port" sh -c "redis-cli -p $port ping | grep -q PONG"
}

# Every slot served, six nodes known and none failing, three of them replicas; every node
# answering (one just killed may not read as failing yet) and every replica's link to its
# master up (a test waits for its writes to reach a replica).
cluster_whole() {
  local nodes port
  redis-cli -p "${cluster_ports[0]}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || return 1
  nodes="$(redis-cli -p "${cluster_ports[0]}" cluster nodes 2>/dev/null)"
  [ "$(grep -c . <<<"$nodes")" = 6 ] && ! grep -q fail <<<"$nodes" &&
    [ "$(grep -c slave <<<"$nodes")" = 3 ] || return 1
  for port in "${cluster_ports[@]}"; do
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG || return 1
    redis-cli -p "$port" info replication 2>/dev/null | grep -q 'master_link_status:down' && return 1
  done
  return 0
}

command -v psql >/dev/null || apt_install postgresql-client
postgres
redis
while [ $# -gt 0 ]; do
  case "$1" in
  --replica)
    if [[ "${2:-}" =~ ^[0-9]+$ ]]; then
      replica "$2"
      shift
    else
      replica 5433
    fi
    ;;
  --redis-cluster) redis_cluster ;;
  *) log "unknown option $1" && exit 2 ;;
  esac
  shift
done
