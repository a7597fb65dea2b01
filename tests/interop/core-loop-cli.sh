#!/usr/bin/env bash
# The core loop through the CLI only, as people would run it, then checked by tools datatrust
# did not write: Go's sumdb/note verifies the license, Go's sumdb/tlog the training-use
# receipts and the log. Needs golang-go and golang-golang-x-mod-dev (.ci/run installs them).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dt="${DATATRUST_BINARY:-$root/target/debug/datatrust}"
work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
export GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$work/gocache"
go build -o "$work/verify_log" "$root/tests/interop/go/verify_log.go"

"$dt" serve --data-dir "$work/data" --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 >"$work/stdout" 2>"$work/stderr" &
server=$!
for _ in $(seq 1 200); do grep -q '^http listening on ' "$work/stdout" 2>/dev/null && break; sleep 0.05; done
export DATATRUST_SERVER="$(sed -n 's|^grpc listening on ||p' "$work/stdout")"
http="$(sed -n 's|^http listening on ||p' "$work/stdout")"
[ -n "$DATATRUST_SERVER" ] || { cat "$work/stderr"; exit 1; }
t1="$work/data/initial-trustee.key"
key() { "$dt" key generate --out "$work/$1.key" >/dev/null; "$dt" key show --key "$work/$1.key"; }

"$dt" trustee add-trustee --key "$t1" --public-key "$(key t2)" --name "Second trustee" >/dev/null
for m in ada bea cy; do "$dt" trustee enrol-member --key "$t1" --public-key "$(key "$m")" --name "$m" >/dev/null; done
"$dt" trustee register-licensee --key "$t1" --public-key "$(key acme)" --name "Acme Robotics" >/dev/null

hash="$("$dt" trustee propose-terms --key "$t1" --json "$root/terms/example-agreement.toml" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])')"
"$dt" member vote --key "$work/ada.key" --terms "$hash" --yes
"$dt" member vote --key "$work/bea.key" --terms "$hash" --yes
"$dt" member vote --key "$work/cy.key" --terms "$hash" --no
"$dt" trustee close-vote --key "$t1" --terms "$hash"
"$dt" trustee countersign --key "$t1" --terms "$hash"
"$dt" trustee countersign --key "$work/t2.key" --terms "$hash"
"$dt" terms show > "$work/terms-shown"
head -2 "$work/terms-shown"
"$dt" member consent --key "$work/ada.key" --purpose computer-use-agent-training

now="$(date +%s)"
if "$dt" company request-license --key "$work/acme.key" --purpose advertising --categories pointer \
     --data-from $((now - 86400)) --data-to "$now" --model-family acme-agent --runs 2 --days 30 2>"$work/refused"; then
  echo "FAIL: a request for a purpose the terms do not allow was accepted"; exit 1
fi
grep -q "policy.purposes" "$work/refused" || { echo "FAIL: the refusal does not name the clause"; cat "$work/refused"; exit 1; }
# Times as RFC 3339 date-times (Unix seconds work too).
request="$("$dt" company request-license --key "$work/acme.key" --json --purpose computer-use-agent-training \
  --categories pointer,clicks --data-from "$(date -u -d @$((now - 86400)) +%Y-%m-%dT%H:%M:%SZ)" --data-to "$(date -u -d @"$now" +%Y-%m-%dT%H:%M:%SZ)" --model-family acme-agent --runs 2 --days 30 \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
"$dt" trustee approve --key "$t1" --request "$request"
license="$("$dt" trustee approve --key "$work/t2.key" --request "$request" --json | python3 -c 'import json,sys; lines=sys.stdin.read().splitlines(); print(json.loads(lines[-1])["id"])')"
"$dt" company license --key "$work/acme.key" --id "$license" --out "$work/acme.license"

license_vkey="$("$dt" trust info --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["license_vkey"])')"
log_vkey="$("$dt" trust info --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["log_vkey"])')"
"$dt" license verify "$work/acme.license" --license-vkey "$license_vkey" --log-vkey "$log_vkey"

# A report names the releases it used: an (empty) release under the license.
release="$("$dt" company release --key "$work/acme.key" --license "$license" --json | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["id"])')"
if "$dt" company report-use --key "$work/acme.key" --license "$license" --run run-0 --model acme-operator \
    --model-version 0.3 --model-family acme-agent --purpose computer-use-agent-training --data none \
    --started "$(date +%s)" --ended "$(date +%s)" --accelerator-seconds 1 2>"$work/nodata"; then
  echo "FAIL: a report naming no data was accepted"; exit 1
fi
grep -q "data: name the releases" "$work/nodata" || { cat "$work/nodata"; exit 1; }

mkdir "$work/receipts"
curl -sf "$http/log/checkpoint" > "$work/old.checkpoint"
old_size="$(sed -n 2p "$work/old.checkpoint")"
started="$(date +%s)"
for run in 1 2; do
  "$dt" company report-use --key "$work/acme.key" --license "$license" --run "run-$run" --model acme-operator \
    --model-version 0.3 --model-family acme-agent --purpose computer-use-agent-training --data "$release" \
    --started "$started" --ended "$started" --accelerator-seconds 3600 --receipt-out "$work/receipts/run-$run.tlog-proof"
  "$dt" receipt verify "$work/receipts/run-$run.tlog-proof" --vkey "$log_vkey" > "$work/verified-$run"
  head -1 "$work/verified-$run"
done
if "$dt" company report-use --key "$work/acme.key" --license "$license" --run run-3 --model acme-operator \
    --model-version 0.3 --model-family acme-agent --purpose computer-use-agent-training --data "$release" \
    --started "$started" --ended "$started" --accelerator-seconds 3600 2>"$work/third"; then
  echo "FAIL: a third run under a two-run license was accepted"; exit 1
fi
grep -q "training runs" "$work/third" || { cat "$work/third"; exit 1; }
"$dt" trustee revoke --key "$t1" --license "$license" --reason "end of the pilot"
"$dt" trustee revoke --key "$work/t2.key" --license "$license" --reason "agreed"
if "$dt" license verify "$work/acme.license" --license-vkey "$license_vkey" --log-vkey "$log_vkey" 2>"$work/revoked"; then
  echo "FAIL: a revoked license verified"; exit 1
fi
grep -q revoked "$work/revoked"
size="$(curl -sf "$http/log/checkpoint" | sed -n 2p)"
"$dt" log consistency --first "$old_size" --second "$size" > "$work/consistency"
"$dt" member uses --key "$work/cy.key"

"$work/verify_log" -log-url "$http/log" -vkey "$log_vkey" -receipts "$work/receipts" \
  -old "$work/old.checkpoint" -consistency "$work/consistency" -license "$work/acme.license" -license-vkey "$license_vkey"
