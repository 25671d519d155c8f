#!/bin/bash
# every 5 s: per node total cpu and ssh.service cpu (seconds), plus host-side hastack processes' cpu
lab=$1; out=$2
while true; do
  line="$(date +%s)"
  for d in /sys/fs/cgroup/unified/hastack/$lab/*/payload; do n=$(basename $(dirname $d));
    line="$line $n=$(awk '/usage_usec/{printf "%.1f", $2/1e6}' $d/cpu.stat)/$(awk '/usage_usec/{printf "%.1f", $2/1e6}' $d/system.slice/ssh.service/cpu.stat 2>/dev/null)"; done
  h=0; for p in $(pgrep -f 'hastack.cli.main|bin/hastack' ); do t=$(awk '{print ($14+$15+$16+$17)/100}' /proc/$p/stat 2>/dev/null); h=$(echo "$h + ${t:-0}" | bc); done
  echo "$line host=$h" >> $out
  sleep 5
done
