"""Power off the VIP holder of the seed lab, sample compute services / agents, create a server."""
import json, shlex, subprocess, sys, threading, time
sys.path.insert(0, "/work/lab-wt/tests")
from seedcloud import install_clouds_yaml, osc, on as on_seed, osc_quietly
from seedlab import SEED, hastack

victim = sys.argv[1]
NAME = "hs-repro"
client = install_clouds_yaml()
on_seed(client, f"head -c 1024 /dev/zero > /root/{NAME}.img")
net = osc(client, "network", "create", f"{NAME}-net")
osc(client, "subnet", "create", "--network", net["id"], "--subnet-range", "192.168.77.0/24", f"{NAME}-sub")
osc(client, "flavor", "create", "--ram", "64", "--disk", "0", "--vcpus", "1", f"{NAME}-flavor")
osc(client, "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", f"/root/{NAME}.img", f"{NAME}-image")
stop = threading.Event()
t0 = time.monotonic()
def sample():
    while not stop.is_set():
        try:
            cs = osc(client, "compute", "service", "list", timeout=60)
            ag = osc(client, "network", "agent", "list", timeout=60)
            print(f"{time.monotonic()-t0:6.1f} compute:", [(s["Binary"], s["Host"], s["State"], s["Updated At"]) for s in cs if s["Host"] == "cmp-1" or s["State"] != "up"],
                  "agents down:", [(a["Binary"], a["Host"]) for a in ag if not a["Alive"]], flush=True)
        except Exception as e:
            print(f"{time.monotonic()-t0:6.1f} sample failed: {str(e)[:200]}", flush=True)
        time.sleep(3)
th = threading.Thread(target=sample, daemon=True); th.start()
hastack("lab", "power", "-t", str(SEED), victim, "off", timeout=300)
print(f"{time.monotonic()-t0:6.1f} {victim} off", flush=True)
while on_seed("ctl-3", f"rabbitmqctl -q eval \"lists:member('rabbit@{victim}', nodes()).\"", timeout=60).strip() != "false":
    time.sleep(1)
print(f"{time.monotonic()-t0:6.1f} brokers dropped {victim}", flush=True)
res = hastack("lab", "ssh", "-t", str(SEED), client, "--", shlex.join(["openstack", "--os-cloud", "hastack", "server", "create", "--flavor", f"{NAME}-flavor", "--image", f"{NAME}-image", "--network", net["id"], "--wait", f"{NAME}-vm", "-f", "json"]), timeout=420)
print(f"{time.monotonic()-t0:6.1f} create rc={res.returncode} {res.stdout[-300:]} {res.stderr[-300:]}", flush=True)
print(hastack("lab", "ssh", "-t", str(SEED), client, "--", f"openstack --os-cloud hastack server show {NAME}-vm -c status -c fault -f json").stdout)
time.sleep(9); stop.set()
