#!/bin/bash
# scan --tx xdp with 1 and 2 senders against the XDP responder, /16 x 4
# ports as a new user would run it, at a list of rates, interleaved
# rounds (docs/bench/cores.md, "--tx xdp with N senders").
#
# usage: sudo docs/bench/cores-txxdp.sh [ROUNDS] [RATES] [QUEUES]
#   ROUNDS  interleaved rounds (default 3)
#   RATES   space-separated --rate values (default "10000000": the maximum)
#   QUEUES  testbed --queues (default 2)
# env: XDPSCAN (default bin/xdpscan), OLD (a second binary to compare, as
# "old", e.g. one built from the commit before), NAME (testbed, default txb),
# SENDERS (default "1 2"), PORTS (default 22,80,443,8080), TB_ARGS (more
# `testbed up` flags: "--filtered-from 1" leaves 256 addresses answering,
# which measures the send path without the reply path), SCAN_ARGS (more
# `scan` flags, e.g. "--rings shared").
# Prints one line per run: binary, senders, rate asked, probes/s sent,
# open found (245,760 is all of them with the defaults), refused/resent frames, CPU s (user+sys) and
# CPU ns per probe, frames per target queue.
set -eu
rounds=${1:-3}
rates=${2:-10000000}
queues=${3:-2}
bin=${XDPSCAN:-bin/xdpscan}
name=${NAME:-txb}
senders=${SENDERS:-"1 2"}
ports=${PORTS:-22,80,443,8080}
dir=$(mktemp -d)
trap '"$bin" testbed down --name "$name" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
"$bin" testbed up --name "$name" --target xdp --queues "$queues" $([ "$queues" = 1 ] && echo --target-napi) ${TB_ARGS:-} >/dev/null
ns=xdpscan-$name-scan
bins="new:$bin"
[ -n "${OLD:-}" ] && bins="$bins old:$OLD"
q() { ip netns exec "$ns" ethtool -S xs-scan | awk '/tx_queue_[0-9]+_xdp_xmit:/{printf "%s ", $2}'; }
printf "%-4s %-7s %-9s %-9s %-8s %-17s %-7s %-8s %s\n" bin senders rate pps open refused/resent cpu_s ns/probe queue_frames
for r in $(seq "$rounds"); do
  for rate in $rates; do
    for b in $bins; do
      for n in $senders; do
        before=$(q)
        /usr/bin/time -f "%U %S" -o "$dir/time" timeout 120 ip netns exec "$ns" "${b#*:}" scan 198.18.0.0/16 \
          -p "$ports" --allow 198.18.0.0/15 --tx xdp --senders "$n" --rate "$rate" --wait 2s \
          -o "$dir/list" --format list --status none --stats-json "$dir/st.json" ${SCAN_ARGS:-} 2>"$dir/err" || { cat "$dir/err"; continue; }
        after=$(q)
        python3 - "$dir" "${b%%:*}" "$n" "$rate" "$before" "$after" <<'EOF'
import json, sys
d, b, n, rate, before, after = sys.argv[1:]
s = json.load(open(d + "/st.json"))
u, k = map(float, open(d + "/time").read().split())
frames = [int(a) - int(x) for x, a in zip(before.split(), after.split())]
print("%-4s %-7s %-9s %-9.0f %-8d %-17s %-7.2f %-8.0f %s" % (b, n, rate, s["probes_sent"] / s["send_s"], s["open"],
      "%d/%d" % (s.get("tx_refused", 0), s.get("tx_resent", 0)) if "tx_errors" in s and not s["tx_errors"] else "errors %d" % s["tx_errors"],
      u + k, (u + k) * 1e9 / s["probes_sent"], frames))
EOF
      done
    done
  done
done
