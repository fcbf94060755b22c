#!/usr/bin/env bash
# Runs the whole test suite. Installs the pinned wrangler used by the test that
# deploys with wrangler; workerd and esbuild are installed by cfdo itself (npm)
# on first use into its cache.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x tests/fixtures/wrangler/node_modules/.bin/wrangler ]; then
  npm ci --prefix tests/fixtures/wrangler --no-audit --no-fund --loglevel=error
fi
cargo test --locked "$@"
