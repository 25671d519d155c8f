#!/bin/bash
# One controller's HAProxy and keepalived, alone on their link: keepalived must take the VIP once
# HAProxy answers on this node's address and the other Galera votes are seen, drop it when they are
# not (the quorum watch), take it again when they are back, and drop it once HAProxy is dead.
# The other votes are "seen" through their addresses on lo: a connection to them is refused at once,
# which is what a live peer's kernel answers when nothing listens on the port (agents/vip_quorum.py).
# The quorum watch runs as its rendered unit's ExecStart says (the unit file is bound at /etc/hastack-units).
set -u
node=$1 vip=$2 dev=$3 password=$4
shift 4
peers=("$@")
peers_on() { for p in "${peers[@]}"; do ip addr add "$p/32" dev lo; done; }
peers_off() { for p in "${peers[@]}"; do ip addr del "$p/32" dev lo; done; }
ip link set lo up
peers_on
mkdir -p /run/haproxy
sysctl -q -w net.ipv4.ip_nonlocal_bind=1
has_vip() { ip -4 -o addr show dev "$dev" | grep -q " $vip/"; }
lacks_vip() { ! has_vip; }
wait_for() { for _ in $(seq 150); do "$1" && return 0; sleep 0.1; done; return 1; }
# TLS on the VIP (the default): the stats page too, verified with the cluster's CA.
code() { curl -s -o /dev/null -w '%{http_code}' --cacert /usr/local/share/ca-certificates/hastack-ca.crt "$@"; }
haproxy -f /etc/haproxy/haproxy.cfg -db > /tmp/haproxy.log 2>&1 &
hap=$!
quorum_cmd=$(sed -n 's/^ExecStart=//p' /etc/hastack-units/hastack-vip-quorum.service)
# shellcheck disable=SC2086  # the rendered command line: a path, numbers and address:port words
$quorum_cmd > /tmp/quorum.log 2>&1 &
quorum=$!
keepalived -n -l -D -f /etc/keepalived/keepalived.conf > /tmp/keepalived.log 2>&1 &
ka=$!
if wait_for has_vip; then echo "VIP-ACQUIRED"; else echo "VIP-NOT-ACQUIRED"; fi
echo "HEALTHZ $(code "https://$node:8404/healthz")"
echo "STATS-NOAUTH $(code "https://$node:8404/stats")"
echo "STATS-AUTH $(code -u "hastack:$password" "https://$node:8404/stats")"
peers_off
if wait_for lacks_vip; then echo "NO-QUORUM-VIP-RELEASED"; else echo "NO-QUORUM-VIP-KEPT"; fi
peers_on
if wait_for has_vip; then echo "QUORUM-VIP-ACQUIRED"; else echo "QUORUM-VIP-NOT-ACQUIRED"; fi
kill -9 "$hap"
if wait_for lacks_vip; then echo "VIP-RELEASED"; else echo "VIP-KEPT"; fi
kill "$ka"; wait "$ka" 2>/dev/null
kill "$quorum"; wait "$quorum" 2>/dev/null
grep -i -E "SECURITY|Unknown keyword|error" /tmp/keepalived.log | sed 's/^/KEEPALIVED /'
