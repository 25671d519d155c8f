#!/bin/bash
# issue 13: the three scenarios, 5 runs each, hastack's tuning, on the seed lab (lab-wt).
export PATH=/work/main/.tools/bin:$PATH
cd /work/main
T=/work/lab-wt/examples/seed.yml
for s in kill-queue-leader power-off-network-node power-off-vip-writer; do
  mkdir -p /tmp/b13/$s
  echo "== $s $(date +%T)"
  uv run hastack drill $s -t $T --repeat 5 --report /tmp/b13/$s > /tmp/b13/$s.log 2>&1
  echo "== $s exit $? $(date +%T)"
done
