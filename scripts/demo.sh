#!/usr/bin/env bash
# Builds the demo Mini App into demo/dist (what `surge dev` serves): installs its npm packages
# (TypeScript, esbuild, playwright-core for its browser test) from the lock file when missing,
# type-checks it and the TypeScript client, and bundles them.
set -euo pipefail
cd "$(dirname "$0")/../demo"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
