#!/usr/bin/env bash
# Installs (once) and starts a real Kafka-protocol broker process: tansu, from crates.io.
#   scripts/broker.sh install          build tansu if it is missing (about 9 minutes on 2 cores)
#   scripts/broker.sh start PORT DIR   start it on 127.0.0.1:PORT, in-memory storage, logs and
#                                      pid in DIR; returns once the port accepts connections
set -euo pipefail

TANSU_VERSION=0.6.0
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$CARGO_BIN:$PATH"

install() {
  if command -v tansu >/dev/null && tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    return 0
  fi
  echo "Installing tansu $TANSU_VERSION (a Kafka-compatible broker) with cargo install..." >&2
  cargo install tansu --locked --version "$TANSU_VERSION" --features dynostore
}

start() {
  local port="$1" dir="$2"
  mkdir -p "$dir"
  tansu broker \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ >"$dir/tansu.log" 2>&1 &
  echo $! >"$dir/tansu.pid"
  # Wait for the port with a deadline rather than a fixed sleep.
  for _ in $(seq 1 300); do
    if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$(cat "$dir/tansu.pid")" 2>/dev/null; then
      echo "tansu exited during start-up:" >&2
      cat "$dir/tansu.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "tansu did not open port $port within 30 s" >&2
  return 1
}

case "${1:-}" in
  install) install ;;
  start) start "$2" "$3" ;;
  *) echo "usage: $0 install | start PORT DIR" >&2; exit 2 ;;
esac
