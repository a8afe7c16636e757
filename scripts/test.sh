#!/usr/bin/env bash
# The README's test command: installs what is missing, starts PostgreSQL, Redis and a real Apache
# Kafka broker, builds the demo Mini App, checks formatting, lints, the docker-compose file and the
# Prometheus rules, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# A build from a clean checkout gains nothing from incremental caches, which took 3 GB of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
run_dir="$(mktemp -d)"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

echo "== installing what is missing"
# docker-compose validates docker-compose.yml; promtool (Debian's prometheus package) checks the
# Prometheus configuration and unit-tests the alert rules; webdis is surge-loadgen's baselines'
# HTTP-to-Redis limit; Java and Maven run and fetch the Kafka broker.
missing=()
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v promtool >/dev/null || missing+=(prometheus)
command -v webdis >/dev/null || missing+=(webdis)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v python3 >/dev/null || missing+=(python3)
# Node.js builds the demo Mini App; Debian's Chromium is the browser its Playwright test drives.
command -v npm >/dev/null || missing+=(nodejs npm)
command -v chromium >/dev/null || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# schemathesis checks both APIs against their OpenAPI documents (tests/e2e/openapi.rs).
command -v schemathesis >/dev/null || python3 -m pip install --quiet schemathesis==4.32.5
# PostgreSQL, Redis, a streaming replica of that PostgreSQL for the read-replica tests, and a
# Redis Cluster (three masters, three replicas) for the tests named `on_redis_cluster`.
scripts/services.sh --replica --redis-cluster
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
scripts/broker.sh install
scripts/registry.sh install
scripts/demo.sh

echo "== checks"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
docker-compose -f docker-compose.yml config --quiet
promtool check config ops/prometheus/prometheus.yml
promtool test rules ops/prometheus/alerts.test.yml

echo "== starting the broker"
# The first free port from 19092 up, unless one is given (a broker left running must not fail CI).
port="${SURGE_TEST_BROKER_PORT:-}"
if [ -z "$port" ]; then
  for candidate in $(seq 19092 19192); do
    if ! (echo >"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
      port=$candidate
      break
    fi
  done
fi
trap 'scripts/broker.sh stop "$run_dir" || true; rm -rf "$run_dir"' EXIT
scripts/broker.sh start "$port" "$run_dir"
export SURGE_TEST_KAFKA_BROKERS="127.0.0.1:$port"

echo "== tests"
# Every test works in its own schema of this database; start from an empty one.
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS surge_test WITH (FORCE)" >/dev/null
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE surge_test" >/dev/null
cargo nextest run --workspace --locked --no-fail-fast "$@"
