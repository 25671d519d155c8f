#!/bin/bash
# issue 13's bench on the seed lab (/work/lab-wt), one scenario per `hastack bench` call so that each table
# stands alone (each call deploys the reference profile, runs it, deploys hastack's, runs it).
# The tables: python3 table.py DIR/*/bench.json
export PATH=/work/main/.tools/bin:$PATH
cd /work/main
T=/work/lab-wt/examples/seed.yml
for s in kill-queue-leader power-off-network-node power-off-vip-writer; do
  mkdir -p /tmp/bench13/$s
  echo "== $s $(date +%T)"
  uv run hastack bench $s -t $T --repeat 5 --report /tmp/bench13/$s > /tmp/bench13/$s.log 2>&1
  echo "== $s exit $? $(date +%T)"
done
