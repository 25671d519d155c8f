# Drives the four-server test's own functions (run from the repo root with the four-server lab deployed):
# Gnocchi stopped on both controllers, an image uploaded, Gnocchi started again once ceilometer logged the
# dropped batch; sample_in_gnocchi must then upload a second image and see its measure.
# uv run python docs/reliability/telemetry-2026-12-07/droptest.py
import sys, threading, time
sys.path.insert(0, "tests"); sys.path.insert(0, "tests/lab")
import test_two_plus_two as t
t.on("ctl-2", "systemctl show -p ActiveEnterTimestamp ceilometer-agent-notification")
print(t.on("ctl-2", "grep -c 'timeout=30' /etc/ceilometer/pipeline.yaml"))
for n in ("ctl-1", "ctl-2"):
    t.on(n, "systemctl stop gnocchi-api")
base = t.publish_failures()
print("before", base)
def revive():
    deadline = time.monotonic() + 200
    while time.monotonic() < deadline:
        now = t.publish_failures()
        if any(now[n] > base.get(n, now[n]) for n in now):
            print("drop seen, starting gnocchi-api", now, flush=True)
            break
        time.sleep(2)
    for n in ("ctl-1", "ctl-2"):
        t.on(n, "systemctl start gnocchi-api")
th = threading.Thread(target=revive); th.start()
took = t.sample_in_gnocchi("hs-four-droptest")
print("took", took)
th.join()
