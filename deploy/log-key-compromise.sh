#!/usr/bin/env bash
# What a compromised log key means, scripted (README, "When things go wrong").
#
# The log key is the log's identity: it cannot be replaced in place. The old log ends at the
# last checkpoint that independent monitors saw before the compromise (a `log verify
# --state` file); a successor trust, under a new origin and with new keys, starts a new log
# whose first entry records that checkpoint. Run it with the old trust stopped:
#
#   deploy/log-key-compromise.sh OLD_DATA_DIR SEEN_CHECKPOINT NEW_ORIGIN NEW_DATA_DIR
#
# DATATRUST names the binary (default: datatrust on PATH).
set -euo pipefail
if [ "$#" -ne 4 ]; then
  echo "usage: $0 OLD_DATA_DIR SEEN_CHECKPOINT NEW_ORIGIN NEW_DATA_DIR" >&2
  exit 2
fi
old=$1 seen=$2 origin=$3 new=$4
datatrust=${DATATRUST:-datatrust}

old_origin=$("$datatrust" trust info --data-dir "$old" --get origin)
old_vkey=$("$datatrust" trust info --data-dir "$old" --get log_vkey)
# Refused unless the checkpoint is signed by the old log key, and the origin is new.
"$datatrust" admin init --data-dir "$new" --origin "$origin" \
  --predecessor-checkpoint "$seen" --predecessor-vkey "$old_vkey"
new_vkey=$("$datatrust" trust info --data-dir "$new" --get log_vkey)
size=$(sed -n 2p "$seen")

cat <<NOTICE

The log of $old_origin ends at size $size (the checkpoint in $seen). Its successor,
$origin, is in $new; its log's first entry will record that checkpoint when it is first
served.

Publish this notice, to members, licensees and monitors:
  old log:    $old_vkey, trusted up to size $size only
  new log:    $new_vkey
Anything the old key signed beyond size $size is to be distrusted.

Then:
  1. Serve the successor (datatrust serve --data-dir $new); every member, licensee and
     monitor pins the new log vkey (datatrust trust info).
  2. Enrol the trustees and members again and ratify the terms under the new origin:
     moving the state of $old_origin to a new origin is not built yet.
  3. Keep $old (and its log) read-only: receipts up to size $size stay verifiable.
NOTICE
