#!/usr/bin/env bash
# Runs the whole test suite. Installs the pinned wrangler used by the test that
# deploys with wrangler; workerd and esbuild are installed by cfdo itself (npm)
# on first use into its cache. Ends with one line counting every test run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x tests/fixtures/wrangler/node_modules/.bin/wrangler ]; then
  npm ci --prefix tests/fixtures/wrangler --no-audit --no-fund --loglevel=error
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# --no-fail-fast: every test binary runs, so the count below covers the whole suite.
cargo test --locked --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# cargo prints one "test result:" line per test binary; the totals are their sum.
awk '/^test result:/ { p += $4; f += $6; s += $8 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
