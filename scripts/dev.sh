#!/usr/bin/env bash
# The README's run command: installs and starts PostgreSQL and Redis if they are missing
# (scripts/services.sh), then runs every role in one process on the embedded defaults
# (librdkafka's in-process mock cluster, the embedded schema registry), with the demo Mini App built
# (scripts/demo.sh) and served on :8090. Arguments go to `surge dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
scripts/services.sh
if command -v npm >/dev/null; then
  scripts/demo.sh
else
  echo "npm is missing: the demo Mini App is not built (apt-get install nodejs npm)." >&2
fi
exec cargo run --release --locked -- dev "$@"
