#!/usr/bin/env bash
# Checks a running datatrust's transparency log with Go's golang.org/x/mod/sumdb/note and
# sumdb/tlog (tests/interop/go/verify_log.go). Needs Debian's golang-go and
# golang-golang-x-mod-dev; .ci/run installs them. Starts its own server on loopback.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
binary="${DATATRUST_BINARY:-$root/target/debug/datatrust}"
work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

export GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$work/gocache"
go build -o "$work/verify_log" "$root/tests/interop/go/verify_log.go"

"$binary" serve --data-dir "$work/data" --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
  >"$work/stdout" 2>"$work/stderr" &
server=$!
for _ in $(seq 1 200); do
  grep -q '^http listening on ' "$work/stdout" 2>/dev/null && break
  sleep 0.05
done
grpc="$(sed -n 's|^grpc listening on ||p' "$work/stdout")"
http="$(sed -n 's|^http listening on ||p' "$work/stdout")"
[ -n "$grpc" ] || { echo "the server did not start:"; cat "$work/stderr"; exit 1; }
export DATATRUST_SERVER="$grpc" DATATRUST_KEY="$work/data/initial-trustee.key"

register() {
  for i in $(seq "$1" "$2"); do
    "$binary" key generate --out "$work/k$i" >/dev/null
    "$binary" trustee register-licensee --public-key "$("$binary" key show --key "$work/k$i")" --name "company $i" >/dev/null
  done
}

register 1 10
curl -sf "$http/log/checkpoint" > "$work/old.checkpoint"
old_size="$(sed -n 2p "$work/old.checkpoint")"
register 11 300
size="$(curl -sf "$http/log/checkpoint" | sed -n 2p)"

mkdir "$work/receipts"
for index in 0 5 255 256 $((size - 1)); do
  "$binary" log receipt --index "$index" --out "$work/receipts/$index.tlog-proof" >/dev/null
done
"$binary" log consistency --first "$old_size" --second "$size" > "$work/consistency"

vkey="$("$binary" trust info --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["log_vkey"])')"
"$work/verify_log" -log-url "$http/log" -vkey "$vkey" -receipts "$work/receipts" \
  -old "$work/old.checkpoint" -consistency "$work/consistency"
