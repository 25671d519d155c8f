#!/bin/bash
# A/B on the four-server lab: power-off-other-controller --hold 90 with the dead-peer watch on, then with it
# stopped on every broker (the same lab, one run each), then the watch started again.
cd /work/lab-wt; export PATH=/work/main/.tools/bin:$PATH
T=examples/four-servers.yml
echo "== watch on"; date
uv run hastack drill power-off-other-controller -t $T --hold 90 --report /tmp/pw/four-on
for n in ctl-1 ctl-2 net-1; do uv run hastack lab ssh -t $T $n -- 'systemctl stop hastack-rabbit-peers'; done
echo "== watch off"; date
uv run hastack drill power-off-other-controller -t $T --hold 90 --report /tmp/pw/four-off
for n in ctl-1 ctl-2 net-1; do uv run hastack lab ssh -t $T $n -- 'systemctl start hastack-rabbit-peers'; done
date
