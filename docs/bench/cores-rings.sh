#!/bin/bash
# 1 vs 2 rings: capture -Q in -w -s 128 on the target's veth while two pinned senders flood 1M 60-byte frames.
# Run from the repository root as root, with `bin/xdpscan testbed up --name $N --queues 2` up (N=cr3 by
# default). S= a scratch directory; W= the capture file (default $S/r.pcapng; /dev/null leaves out the
# disk); ROUNDS= rounds (3); PROF=1 writes a CPU profile per run (XDPSCAN_CPUPROFILE); OLD= another
# build of xdpscan, run with --rings per-cpu in each round too (label per-cpu-old).
S=${S:-/tmp}; B=${B:-bin/xdpscan}; N=${N:-cr3}; T=xdpscan-$N-tgt; W=${W:-$S/r.pcapng}
runs="shared:$B per-cpu:$B"; [ -n "$OLD" ] && runs="$runs per-cpu-old:$OLD"
for round in $(seq ${ROUNDS:-3}); do for run in $runs; do
  label=${run%%:*}; bin=${run#*:}; rings=${label%-old}
  rm -f $S/r.pcapng $S/r.json $S/r.time
  prof=; [ -n "$PROF" ] && prof=$S/$label-$round.prof
  XDPSCAN_CPUPROFILE=$prof ip netns exec $T /usr/bin/time -f "%U %S" -o $S/r.time $bin capture -i xs-tgt --rings $rings -Q in -s 128 -w $W --stats-json $S/r.json --duration 60s udp 2>/dev/null &
  tpid=$!   # ip netns exec execs /usr/bin/time, which forks the capture: signal the capture by its PID
  sleep 2.5
  F=$(ip netns exec xdpscan-$N-scan $B bench flood -i xs-scan --dst 198.18.0.9 --count 1000000 --senders 2)
  sleep 0.5; kill -INT $(pgrep -P $tpid) 2>/dev/null; wait $tpid
  python3 - "$label" "$F" <<PY
import json,sys
d=json.load(open('$S/r.json')); f=json.loads(sys.argv[2]); u,s=map(float,open('$S/r.time').read().split()[-2:])
r=d.get('rings') or {}
print(f"{sys.argv[1]:11} flood_pps={f['pps']:.0f} matched={d['matched']} written={d['written']} ring_lost={d['ring_lost']} late={r.get('late')} max_held={r.get('max_held')} per_ring={r.get('records_per_ring')} cpu_s={u+s:.2f} cpu_ns_per_pkt={(u+s)*1e9/max(d['written'],1):.0f}")
PY
done; done
