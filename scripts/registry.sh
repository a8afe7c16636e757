#!/usr/bin/env bash
# Apicurio Registry 3 (in-memory storage), a Confluent-compatible schema registry for the test
# that runs Surge against a registry other than its embedded one. Run with the machine's Java.
#   scripts/registry.sh install          fetch the runnable archive from Maven Central (once, cached)
#   scripts/registry.sh start PORT DIR   start on 127.0.0.1:PORT, pid in DIR/registry.pid; returns
#                                        once /apis/ccompat/v7/subjects answers
#   scripts/registry.sh stop DIR         stop it
set -euo pipefail

# shellcheck source=lib/process.sh
source "$(dirname "$0")/lib/process.sh"

# Fetched with `dependency:copy` of the one artifact: Maven Central does not serve its parent pom,
# so it cannot be resolved as a dependency of a pom of ours.
APICURIO_VERSION=3.0.9
cache="${SURGE_REGISTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/surge/apicurio-$APICURIO_VERSION}"

log() { echo "registry.sh: $*" >&2; }

install() {
  [ -f "$cache/.complete" ] && return 0
  command -v java >/dev/null || { log "Java 17 or newer is needed to run Apicurio"; return 1; }
  command -v mvn >/dev/null || { log "Maven is needed to fetch Apicurio"; return 1; }
  log "resolving Apicurio Registry from Maven Central into $cache"
  rm -rf "$cache"
  mkdir -p "$cache/archive" "$cache/app"
  (cd "$cache/archive" && mvn -q -B -Dstyle.color=never dependency:copy \
    -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" -DoutputDirectory=.)
  tar xzf "$cache"/archive/apicurio-registry-app-*-all.tar.gz -C "$cache/app"
  rm -rf "$cache/archive"
  touch "$cache/.complete"
}

start() {
  local port="$1" dir="$2"
  install
  mkdir -p "$dir"
  local jar
  jar="$(ls "$cache"/app/apicurio-registry-app-*-runner.jar)"
  (cd "$cache/app" && exec java -Xms64m -Xmx384m -Dquarkus.http.host=127.0.0.1 \
    -Dquarkus.http.port="$port" -jar "$jar") >"$dir/registry.log" 2>&1 &
  echo $! >"$dir/registry.pid"
  local deadline=$((SECONDS + 90))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if curl -sf "http://127.0.0.1:$port/apis/ccompat/v7/subjects" >/dev/null; then
      return 0
    fi
    if ! kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null; then
      log "Apicurio exited during start-up:"
      tail -n 40 "$dir/registry.log" >&2
      return 1
    fi
    sleep 0.2
  done
  log "Apicurio did not answer on 127.0.0.1:$port within 90 s; see $dir/registry.log"
  return 1
}

stop() {
  # Controlled shutdown first; SIGKILL past the grace period.
  stop_pidfile "$1/registry.pid" 20
}

case "${1:-}" in
  install) install ;;
  start) start "$2" "$3" ;;
  stop) stop "$2" ;;
  *) echo "usage: $0 install | start PORT DIR | stop DIR" >&2; exit 2 ;;
esac
