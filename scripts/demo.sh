#!/usr/bin/env bash
# The README's main job: bring the testbed up, SYN-scan it with xdpscan,
# compare what was found with the testbed's ground truth, and tear the
# testbed down whatever happens. Bounded: one /18 x 5 ports = 81,920 probes.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin/xdpscan
NAME=demo
NS=xdpscan-$NAME-scan
RANGE=198.18.0.0/18
PORTS=22,80,443,8080,9000
RATE=${RATE:-100000}
OUT=out/demo
mkdir -p "$OUT"

"$BIN" testbed down --name "$NAME" >/dev/null 2>&1 || true
trap '"$BIN" testbed down --name "$NAME"' EXIT
"$BIN" testbed up --name "$NAME"
"$BIN" testbed status --name "$NAME"

echo
echo "== xdpscan scan $RANGE -p $PORTS --rate $RATE (in $NS)"
ip netns exec "$NS" "$BIN" scan "$RANGE" -p "$PORTS" --allow 198.18.0.0/15 --rate "$RATE" --wait 2s \
	--status text -o "$OUT/results.ndjson" --stats-json "$OUT/stats.json"
echo
echo "first results ($OUT/results.ndjson):"
head -n 5 "$OUT/results.ndjson"

# Ground truth for a /18 (16384 addresses): last octet >= 240 is filtered
# (64 x 16 = 1024 addresses), so 15360 answer: 4 open ports and 1 closed each.
open=$(grep -c '"state":"open"' "$OUT/results.ndjson" || true)
closed=$(grep -c '"state":"closed"' "$OUT/results.ndjson" || true)
printf '\n%-8s %8s %8s\n' "" found truth
printf '%-8s %8d %8d\n' open "$open" 61440 closed "$closed" 15360
if [ "$open" -eq 61440 ] && [ "$closed" -eq 15360 ]; then
	echo "result: exactly the ground truth (stats: $OUT/stats.json)"
else
	echo "result: differs from the ground truth (stats: $OUT/stats.json)"; exit 1
fi
