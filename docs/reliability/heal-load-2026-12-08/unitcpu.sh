#!/bin/bash
d=/sys/fs/cgroup/unified/hastack/seed/$1/payload
for f in $d/system.slice/*.service $d/cpu.stat; do u=$(basename $f); [ "$u" = cpu.stat ] && { echo "TOTAL $(awk '/usage_usec/{print $2/1e6}' $f)"; continue; }; echo "$u $(awk '/usage_usec/{print $2/1e6}' $f/cpu.stat 2>/dev/null)"; done
