"""hastack commands run one after another on a deployed, healthy lab under the drills' workloads
(writes through the VIP, publishes with confirms, Keystone tokens, Neutron network lists), then the
scores: acknowledged writes and confirmed messages lost, and each stream's longest gap, overall and
during each command. Run from the repository root, commands separated by `--`:

    uv run python docs/reliability/retire-2026-12-06/run.py examples/seed.yml \\
        -- retire ctl-1 examples/seed.yml --yes -- deploy examples/seed.yml --yes

(ctl-1: the VIP holder and the Galera writer, retired while it serves, then brought back by a
deploy of the topology that still lists it.)
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from hastack import pki
from hastack.drills.samples import Recorder
from hastack.drills.scoring import score
from hastack.drills.workloads.base import Credentials, Endpoints
from hastack.drills.workloads.broker import Broker
from hastack.drills.workloads.db import DbWrites
from hastack.drills.workloads.http import KeystoneTokens, NeutronNetworks
from hastack.secrets import Secrets, secrets_path
from hastack.topology.load import load

path = Path(sys.argv[1])
commands: list[list[str]] = []
for arg in sys.argv[2:]:
    if arg == "--":
        commands.append([])
    else:
        commands[-1].append(arg)
topo = load(path).topology
assert topo is not None
secrets = Secrets.load(secrets_path(path, topo.name))
creds, ep = Credentials.from_secrets(secrets), Endpoints.from_topology(topo, pki.ca_cert(secrets))
run_id = f"run-{int(time.time())}"
workloads = [DbWrites(ep, creds, run_id, rate=5.0, workers=2, verify_timeout=120.0),
             Broker(ep, creds, run_id, rate=5.0, workers=2),
             KeystoneTokens(ep, creds, run_id, rate=5.0, workers=2),
             NeutronNetworks(ep, creds, run_id, rate=2.0, workers=2)]
for w in workloads:
    w.prepare()
rec, stop = Recorder(), threading.Event()
rec.event("start", " then ".join(" ".join(c[:2]) for c in commands) + " under the workloads")
threads = [threading.Thread(target=w.run, args=(rec, stop, 3600.0), daemon=True) for w in workloads]
for t in threads:
    t.start()
time.sleep(10)  # a baseline
spans = []
for argv in commands:
    t0 = rec.now()
    rec.event("fault", " ".join(argv))
    res = subprocess.run([sys.executable, "-m", "hastack.cli.main", *argv], capture_output=True, text=True,
                         timeout=2400)
    spans.append((argv, t0, rec.now(), res))
    print(f"$ hastack {' '.join(argv)}  (exit {res.returncode}, {rec.now() - t0:.1f} s)")
    print("\n".join(ln for ln in res.stdout.splitlines() if "[files]" not in ln)[-5000:], res.stderr[-2000:])
time.sleep(10)
stop.set()
for t in threads:
    t.join(timeout=120)
for w in workloads:
    w.verify(rec)
s = score(rec.snapshot())
print(f"db acked {s.writes.acked} lost {s.writes.lost}; messages confirmed {s.messages.confirmed} lost "
      f"{s.messages.lost}; longest gaps {{{', '.join(f'{k}: {g.seconds:.2f}s' for k, g in s.gaps.items() if g)}}}")
snap = rec.snapshot()
for argv, t0, t1, res in spans:
    print(f"during `hastack {' '.join(argv[:2])}` ({t1 - t0:.1f} s, exit {res.returncode}):")
    for name in sorted({smp.stream for smp in snap.samples}):
        inside = [smp for smp in snap.stream(name) if t0 <= smp.t <= t1]
        bad = [smp for smp in inside if not smp.ok]
        kinds = Counter(str(smp.error)[:60] for smp in bad)
        print(f"  {name}: {len(inside)} samples, {len(bad)} failed" + (f": {dict(kinds)}" if bad else ""))
