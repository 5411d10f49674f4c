#!/usr/bin/env bash
# The README's main job: bring the testbed up, run xdpscan against it, show
# the result, and tear the testbed down whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin/xdpscan
NAME=demo

"$BIN" testbed down --name "$NAME" >/dev/null 2>&1 || true
trap '"$BIN" testbed down --name "$NAME"' EXIT
"$BIN" testbed up --name "$NAME"
"$BIN" testbed status --name "$NAME"
echo
echo "== xdpscan monitor on the scanner's interface (5 s)"
ip netns exec "xdpscan-$NAME-scan" "$BIN" monitor -i xs-scan --duration 5s
