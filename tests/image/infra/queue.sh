#!/bin/bash
# One controller's HAProxy, alone on its link, in front of a Keystone stand-in shaped like hastack's
# uWSGI APIs: two processes of one thread sharing one listening socket, each request taking a second
# (its health check answers at once, when a process gets to it). The other controllers' Keystone is
# away (refused). A burst of requests through the VIP, more than the processes can take at once:
# prints each request's HTTP code (CODE lines) and every state HAProxy gave the server meanwhile
# (STATE lines, read from its stats socket every 0.1 s).
set -u
vip=$1 node=$2 server=$3 port=$4 burst=$5
shift 5
others=("$@")
ip link set lo up
for a in "$vip" "${others[@]}"; do ip addr add "$a/32" dev lo; done
mkdir -p /run/haproxy
sysctl -q -w net.ipv4.ip_nonlocal_bind=1
python3 - "$node" "$port" > /tmp/backend.log 2>&1 <<'EOF' &
import http.server, os, signal, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/healthcheck":
            time.sleep(1)
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
server = http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H)
child = os.fork()
if child == 0:
    server.serve_forever()
def stop(*_):
    os.kill(child, signal.SIGKILL)
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
server.serve_forever()
EOF
backend=$!
haproxy -f /etc/haproxy/haproxy.cfg -db > /tmp/haproxy.log 2>&1 &
hap=$!
state() {
  python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.connect("/run/haproxy/admin.sock"); s.sendall(b"show stat\n"); print(b"".join(iter(lambda: s.recv(65536), b"")).decode(), end="")' 2>/dev/null \
    | awk -F, -v n="$server" '$1 == "keystone" && $2 == n {print $18}'
}
for _ in $(seq 100); do [ "$(state)" = "UP" ] && break; sleep 0.1; done
echo "BEFORE $(state)"
( while :; do echo "STATE $(state)"; sleep 0.1; done ) &
watcher=$!
pids=()
for _ in $(seq "$burst"); do
  curl -s -o /dev/null -m 60 -w 'CODE %{http_code}\n' --cacert /usr/local/share/ca-certificates/hastack-ca.crt "https://$vip:$port/v3" &
  pids+=($!)
done
wait "${pids[@]}"
kill "$watcher" "$hap" "$backend"
wait 2>/dev/null
# a configuration problem (the runtime lines say what the checks found, as they should)
grep -E "\[(ALERT|WARNING)\].*(parsing|config)" /tmp/haproxy.log | sed 's/^/HAPROXY /'
true
