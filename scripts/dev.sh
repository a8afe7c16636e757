#!/usr/bin/env bash
# The README's run command: installs and starts PostgreSQL and Redis if they are missing
# (scripts/services.sh), then runs every role in one process on the embedded defaults
# (librdkafka's in-process mock cluster, the embedded schema registry). Arguments go to `surge dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
scripts/services.sh
exec cargo run --release --locked -- dev "$@"
