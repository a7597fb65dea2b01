#!/usr/bin/env bash
# Starts the release-free debug binary on loopback with a fresh data directory and checks it
# with Python grpcio (health, reflection v1 and v1alpha, a reflected call). Run by .ci/run
# after the test suite; needs `pip install -r tests/interop/requirements.txt`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
binary="${DATATRUST_BINARY:-$root/target/debug/datatrust}"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

"$binary" serve --data-dir "$work/data" --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
  >"$work/stdout" 2>"$work/stderr" &
server=$!
for _ in $(seq 1 200); do
  grep -q '^http listening on ' "$work/stdout" 2>/dev/null && break
  sleep 0.05
done
address="$(sed -n 's|^grpc listening on http://||p' "$work/stdout")"
if [ -z "$address" ]; then
  echo "the server did not start:"; cat "$work/stderr"; exit 1
fi
python3 "$root/tests/interop/standard_grpc_client.py" "$address"
