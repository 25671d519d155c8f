#!/bin/bash
# Trial of the broker dead-peer watch on the seed lab: power-off of ctl-3, then cuts of ctl-3 from its peers.
cd /work/lab-wt; export PATH=/work/main/.tools/bin:$PATH
T=examples/seed.yml
hs() { uv run hastack "$@"; }
ts() { date +%s.%N; }
nodedown_seen() { hs lab ssh -t $T ctl-1 -- "timeout 20 rabbitmqctl -q eval \"lists:member('rabbit@ctl-3', nodes()).\"" 2>/dev/null; }
healthy() { for i in $(seq 1 120); do hs status $T >/dev/null 2>&1 && { echo "healthy after $((i*5)) s-ish"; return 0; }; sleep 5; done; echo NOT HEALTHY; hs status $T | tail -20; }
echo "== power-off ctl-3"
t0=$(ts); hs lab power -t $T ctl-3 off >/dev/null
while [ "$(nodedown_seen)" != "false" ]; do sleep 0.5; done
t1=$(ts); echo "ctl-1 no longer connected to rabbit@ctl-3 after $(echo "$t1 - $t0" | bc) s"
hs lab ssh -t $T ctl-1 -- 'journalctl -u hastack-rabbit-peers --no-pager -o short-precise | tail -3; grep -a "rabbit@ctl-3. down" /var/log/rabbitmq/rabbit@ctl-1.log | tail -2'
hs lab power -t $T ctl-3 on >/dev/null; healthy
for hold in 20 4 6; do
  echo "== cut ctl-3 from ctl-1 and ctl-2 for $hold s"
  hs lab cut -t $T ctl-3 --peer ctl-1 --peer ctl-2 >/dev/null; sleep $hold; hs lab heal -t $T ctl-3 >/dev/null
  healthy
  for n in ctl-1 ctl-2 ctl-3; do echo "-- $n"; hs lab ssh -t $T $n -- 'journalctl -u hastack-rabbit-peers --no-pager -o short-precise --since "-4min" | tail -6'; done
done
