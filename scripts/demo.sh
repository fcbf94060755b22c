#!/usr/bin/env bash
# Deploys the shared-counter example to the local edge and shows it answering:
# the client increments a Durable Object hosted by another worker.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building cfdo (the first build takes a few minutes)"
cargo build --quiet --locked
cfdo="$PWD/target/debug/cfdo"
# A private edge for the demo, so it never touches another edge's account.
export CFDO_EDGE_DIR="${CFDO_EDGE_DIR:-$PWD/target/demo-edge}"
unset CLOUDFLARE_API_TOKEN

echo "== cfdo apply (local edge in $CFDO_EDGE_DIR)"
"$cfdo" apply --yes -f manifests/shared-counter/cfdo.toml

url_of() {
  "$cfdo" edge status --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["workers"][sys.argv[1]])' "$1"
}
client=$(url_of counter-client)
host=$(url_of counter-host)

echo "== the client worker increments the host's SharedCounter"
for _ in 1 2 3; do
  curl -fsS "$client/increment"; echo
done
echo "== the host worker reads the same object"
curl -fsS "$host/get"; echo

echo "== a second plan finds nothing to do"
"$cfdo" plan --detailed-exitcode -f manifests/shared-counter/cfdo.toml

echo
echo "The edge keeps running; counts persist across runs. Next, in this directory:"
echo "  export CFDO_EDGE_DIR=$CFDO_EDGE_DIR"
echo "  $cfdo destroy --yes -f manifests/shared-counter/cfdo.toml   # remove the stack"
echo "  $cfdo edge stop                                             # stop the edge"
