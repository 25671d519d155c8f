#!/bin/bash
# Cut ctl-3 from its peers, heal the moment ctl-1's broker logs the tick timeout, then see what is recorded.
cd /work/lab-wt; export PATH=$PWD/.tools/bin:$PATH
H="uv run hastack"; T=examples/seed.yml
LOG=/var/log/rabbitmq/rabbit@ctl-1.log
before=$($H lab ssh -t $T ctl-1 -- "grep -c \"'rabbit@ctl-3' down: net_tick_timeout\" $LOG")
echo "$(date +%T) cut (tick timeouts logged before: $before)"
$H lab cut ctl-3 --peer ctl-1 --peer ctl-2 -t $T
t0=$(date +%s)
while :; do
  n=$($H lab ssh -t $T ctl-1 -- "grep -c \"'rabbit@ctl-3' down: net_tick_timeout\" $LOG")
  [ "$n" != "$before" ] && break
  [ $(( $(date +%s) - t0 )) -gt 120 ] && { echo "no tick timeout in 120 s"; break; }
  sleep 0.2
done
$H lab heal ctl-3 -t $T
echo "$(date +%T) healed $(( $(date +%s) - t0 )) s after the cut"
sleep 15
for n in ctl-1 ctl-3; do echo "== $n"; $H lab ssh -t $T $n -- "rabbitmqctl -q cluster_status --formatter json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("running", d["running_nodes"], "partitions", d["partitions"])'; done
