#!/bin/bash
# One controller's HAProxy, alone on its link, with every controller's Keystone failing its checks:
# ctl-1 and ctl-3 refuse (nothing listens there), ctl-2 serves requests at once but answers its
# health check too late (after HAProxy's check timeout). Once HAProxy marks all three down, a request
# through the VIP must still be served by ctl-2 when the config has last-resort servers (and get 503
# when it has none). Prints `show stat` as HAProxy then saw it (between STAT-BEGIN and STAT-END).
set -u
vip=$1 port=$2 slow=$3
shift 3
others=("$@")
ip link set lo up
for a in "$vip" "$slow" "${others[@]}"; do ip addr add "$a/32" dev lo; done
mkdir -p /run/haproxy
sysctl -q -w net.ipv4.ip_nonlocal_bind=1
python3 - "$slow" "$port" > /tmp/backend.log 2>&1 <<'EOF' &
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthcheck":
            time.sleep(4)
        body = b"served by the slow one\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
EOF
backend=$!
haproxy -f /etc/haproxy/haproxy.cfg -db > /tmp/haproxy.log 2>&1 &
hap=$!
show_stat() {
  python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.connect("/run/haproxy/admin.sock"); s.sendall(b"show stat\n"); print(b"".join(iter(lambda: s.recv(65536), b"")).decode(), end="")'
}
all_down() { [ "$(show_stat 2>/dev/null | awk -F, '$1 == "keystone" && $2 !~ /last-resort/ && $2 != "FRONTEND" && $2 != "BACKEND" && $18 == "DOWN"' | wc -l)" = "$((${#others[@]} + 2))" ]; }
for _ in $(seq 300); do all_down && break; sleep 0.1; done
if all_down; then echo "ALL-DOWN"; else echo "NOT-ALL-DOWN"; fi
echo "STAT-BEGIN"; show_stat; echo "STAT-END"
out=$(curl -s -m 20 -w ' %{http_code}' --cacert /usr/local/share/ca-certificates/hastack-ca.crt "https://$vip:$port/v3")
echo "VIP ${out##* } ${out% *}"
kill "$hap" "$backend"; wait 2>/dev/null
# a configuration problem (the runtime lines say what the checks found, as they should)
grep -E "\[(ALERT|WARNING)\].*(parsing|config)" /tmp/haproxy.log | sed 's/^/HAPROXY /'
true
