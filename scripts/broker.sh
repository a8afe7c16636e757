#!/usr/bin/env bash
# A real Apache Kafka broker for tests, benchmarks and fault tests: a single-node KRaft process
# (combined broker and controller) run from Maven Central's jars with the machine's Java.
#   scripts/broker.sh install          resolve the jars named by scripts/broker/pom.xml (once, cached)
#   scripts/broker.sh start PORT DIR   format DIR unless it holds a log already, start on 127.0.0.1:PORT
#                                      (controller on another free port), pid in DIR/broker.pid;
#                                      returns once the broker answers a metadata request
#   scripts/broker.sh stop DIR         stop it (controlled shutdown, SIGKILL past a deadline)
# Keep this interface: tests, benchmarks and the load test start brokers with it.
set -euo pipefail

# shellcheck source=lib/process.sh
source "$(dirname "$0")/lib/process.sh"

here="$(cd "$(dirname "$0")" && pwd)"
pom="$here/broker/pom.xml"
# The cache is keyed by the pom, so changing the pinned version resolves the new jars.
cache="${SURGE_BROKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/surge/kafka-$(sha256sum "$pom" | cut -c1-12)}"
libs="$cache/libs"

log() { echo "broker.sh: $*" >&2; }

install() {
  [ -f "$cache/.complete" ] && return 0
  command -v java >/dev/null || { log "Java 17 or newer is needed to run Kafka"; return 1; }
  command -v mvn >/dev/null || { log "Maven is needed to fetch Kafka's jars"; return 1; }
  log "resolving Apache Kafka's jars from Maven Central into $libs"
  rm -rf "$libs"
  mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs"
  touch "$cache/.complete"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Sends a Metadata request (v4) and succeeds once the answer lists at least one broker: the listener
# alone opens before the broker has registered with its controller.
answers_metadata() {
  python3 - "$1" <<'PY'
import socket, struct, sys
port = int(sys.argv[1])
try:
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    client = b"surge-broker-sh"
    body = struct.pack(">hhih", 3, 4, 1, len(client)) + client + struct.pack(">i?", -1, False)
    s.sendall(struct.pack(">i", len(body)) + body)
    head = b""
    while len(head) < 16:
        chunk = s.recv(16 - len(head))
        if not chunk:
            sys.exit(1)
        head += chunk
    _size, _correlation, _throttle, brokers = struct.unpack(">iiii", head)
    sys.exit(0 if brokers >= 1 else 1)
except OSError:
    sys.exit(1)
PY
}

write_config() {
  local port="$1" dir="$2" controller_port="$3"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
# One node: every internal topic with one replica, few partitions so they are created quickly.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests join groups often and kill members on purpose: no join delay, short sessions allowed.
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=500
group.consumer.min.session.timeout.ms=500
group.consumer.min.heartbeat.interval.ms=200
log.cleaner.dedupe.buffer.size=2097152
num.partitions=1
PROPS
  cat >"$dir/log4j2.properties" <<'PROPS'
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=${sys:kafka.logs.dir}/server.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=INFO
logger.state.name=state.change.logger
logger.state.level=WARN
PROPS
}

# exec, so that a backgrounded call's pid is the JVM's own.
run_java() {
  local dir="$1"
  shift
  exec java -Xms256m -Xmx768m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dkafka.logs.dir="$dir" -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -cp "$libs/*" "$@"
}

start() {
  local port="$1" dir="$2"
  install
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [ -f "$dir/broker.pid" ] && kill -0 "$(cat "$dir/broker.pid")" 2>/dev/null; then
    log "a broker already runs from $dir (pid $(cat "$dir/broker.pid"))"
    return 1
  fi
  write_config "$port" "$dir" "$(free_port)"
  if [ ! -f "$dir/data/meta.properties" ]; then
    # A random id in Kafka's form; `--cluster-id=` because one may start with '-'.
    local cluster_id
    cluster_id="$(python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')"
    (run_java "$dir" kafka.tools.StorageTool format \
      --cluster-id="$cluster_id" --config "$dir/server.properties") \
      >"$dir/format.log" 2>&1 || { log "formatting $dir/data failed:"; cat "$dir/format.log" >&2; return 1; }
  fi
  (run_java "$dir" kafka.Kafka "$dir/server.properties") >>"$dir/broker.out" 2>&1 &
  echo $! >"$dir/broker.pid"
  local deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if answers_metadata "$port"; then
      return 0
    fi
    if ! kill -0 "$(cat "$dir/broker.pid")" 2>/dev/null; then
      log "Kafka exited during start-up:"
      tail -n 40 "$dir/broker.out" "$dir/server.log" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.2
  done
  log "Kafka did not answer a metadata request on 127.0.0.1:$port within 60 s; see $dir/server.log"
  return 1
}

stop() {
  # Controlled shutdown first; SIGKILL past the grace period.
  stop_pidfile "$1/broker.pid" 30
}

case "${1:-}" in
  install) install ;;
  start) start "$2" "$3" ;;
  stop) stop "$2" ;;
  *) echo "usage: $0 install | start PORT DIR | stop DIR" >&2; exit 2 ;;
esac
