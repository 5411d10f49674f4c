#!/bin/bash
# 1 vs 2 senders: socket path, kernel target, testbed --queues 2, /18 x 4 ports at --rate 10M, 3 interleaved rounds.
# Run from the repository root as root, with `bin/xdpscan testbed up --name cr3 --queues 2` up; S= a scratch directory.
S=${S:-/tmp}; B=${B:-bin/xdpscan}
for round in 1 2 3; do for n in 1 2; do
  rm -f $S/m.*
  timeout -s INT 90 ip netns exec xdpscan-cr3-scan /usr/bin/time -f "%U %S" -o $S/m.time $B scan 198.18.0.0/18 -p 22,80,443,8080 --allow 198.18.0.0/15 --rate 10000000 --senders $n --wait 2s -o $S/m.ndjson --stats-json $S/m.json --status none 2>/dev/null
  python3 - $n <<PY
import json,sys
d=json.load(open('$S/m.json')); u,s=map(float,open('$S/m.time').read().split()[-2:])
print(f"senders={sys.argv[1]} send_pps={d['send_pps']:.0f} open={d['open']}/61440 tx_errors={d['tx_errors']} dup_kernel={d.get('duplicates')} rx_per_cpu={d.get('rx_packets_per_cpu')} cpu_s={u+s:.2f}")
PY
done; done
