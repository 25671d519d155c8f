#!/bin/bash
# One trial: power a controller off and watch, from every surviving node, how long its services'
# AMQP connections to that controller's broker stay ESTABLISHED (the kernel's view, sampled every
# 0.5 s inside each node), then read the services' own "Reconnected to AMQP server" lines.
# Usage: trial.sh LABEL VICTIM VICTIM_ADDRESS   (run from the lab's worktree; the lab deployed)
set -u
label=$1 victim=$2 addr=$3
out=$(dirname "$0")/$label
mkdir -p "$out"
hs() { uv run hastack lab ssh "$@"; }
survivors=$(uv run hastack lab ssh ctl-1 -- true >/dev/null 2>&1; echo ctl-1 ctl-2 ctl-3 net-1 net-2 cmp-1 | tr ' ' '\n' | grep -vx "$victim")
for n in $survivors; do
  hs "$n" -- "nohup sh -c 'for i in \$(seq 1 240); do echo \"\$(date +%s.%N) \$(ss -H -t -n state established dst $addr dport = :5672 | wc -l)\"; sleep 0.5; done' > /tmp/estab.log 2>&1 &" 
done
sleep 3
t0=$(date +%s.%N)
echo "power-off $victim at $t0 ($(date -u -d @${t0%.*} +%T))" | tee "$out/summary.txt"
uv run hastack lab power "$victim" off
sleep 100
for n in $survivors; do
  hs "$n" -- cat /tmp/estab.log > "$out/$n-estab.log"
  # the first sample at 0 after the fault: when this node had no connection left to the dead broker
  python3 - "$t0" "$out/$n-estab.log" "$n" <<'PY' | tee -a "$out/summary.txt"
import sys
t0, path, node = float(sys.argv[1]), sys.argv[2], sys.argv[3]
rows = [(float(a), int(b)) for a, b in (line.split() for line in open(path) if len(line.split()) == 2)]
before = [c for t, c in rows if t < t0]
gone = next((t - t0 for t, c in rows if t >= t0 and c == 0), None)
print(f"{node}: {before[-1] if before else '?'} connections to the broker at the fault, "
      + (f"none left {gone:.1f} s after it" if gone is not None else "some left after 100 s"))
PY
  hs "$n" -- "journalctl -u hastack-rabbit-peers --since @${t0%.*} --no-pager -o short-precise 2>/dev/null | tail -5; grep -h 'Reconnected to AMQP server\|is unreachable' /var/log/nova/*.log /var/log/neutron/*.log /var/log/cinder/*.log /var/log/heat/*.log /var/log/ceilometer/*.log /var/log/aodh/*.log 2>/dev/null | awk -v t=\"$(date -u -d @${t0%.*} '+%Y-%m-%d %H:%M:%S')\" '(\$1\" \"\$2) >= t' | cut -c1-220" > "$out/$n-logs.txt" 2>&1
done
uv run hastack lab power "$victim" on
