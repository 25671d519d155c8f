"""`hastack rotate-secrets` on a deployed, healthy lab under the drills' workloads (writes through the
VIP, publishes with confirms, Keystone tokens, Neutron network lists), then the scores: acknowledged
writes and confirmed messages lost, and each stream's longest gap. Run from the repository root:

    uv run python docs/reliability/rotate-secrets-2026-12-06/run.py examples/seed.yml

run1: stopped by the logins stage (Nova's cell mappings still held the previous login), finished by a
deploy after the fix; run2: a full rotation; run3: the same after HAProxy drains each API before its
restart (on the lab after the replacement of ctl-2 and net-2, hence `.seed-replaced.yml`).
"""

from __future__ import annotations

import subprocess
from collections import Counter
import sys
import threading
import time
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
topo = load(path).topology
assert topo is not None
secrets = Secrets.load(secrets_path(path, topo.name))
creds, ep = Credentials.from_secrets(secrets), Endpoints.from_topology(topo, pki.ca_cert(secrets))
run_id = f"rotate-{int(time.time())}"
workloads = [DbWrites(ep, creds, run_id, rate=5.0, workers=2, verify_timeout=120.0),
             Broker(ep, creds, run_id, rate=5.0, workers=2),
             KeystoneTokens(ep, creds, run_id, rate=5.0, workers=2),
             NeutronNetworks(ep, creds, run_id, rate=2.0, workers=2)]
for w in workloads:
    w.prepare()
rec, stop = Recorder(), threading.Event()
rec.event("start", "rotate-secrets under the workloads")
threads = [threading.Thread(target=w.run, args=(rec, stop, 3600.0), daemon=True) for w in workloads]
for t in threads:
    t.start()
time.sleep(10)  # a baseline before the rotation
t0 = time.monotonic()
res = subprocess.run([sys.executable, "-m", "hastack.cli.main", "rotate-secrets", str(path), "--yes"],
                     capture_output=True, text=True, timeout=2400)
took = time.monotonic() - t0
time.sleep(10)
stop.set()
for t in threads:
    t.join(timeout=120)
for w in workloads:
    w.verify(rec)
print("\n".join(ln for ln in res.stdout.splitlines() if "[files]" not in ln)[-6000:], res.stderr[-2000:])
s = score(rec.snapshot())
print(f"rotate-secrets exit {res.returncode} in {took:.1f} s; db acked {s.writes.acked} lost {s.writes.lost}; "
      f"messages confirmed {s.messages.confirmed} lost {s.messages.lost}; "
      f"gaps {{{', '.join(f'{k}: {g.seconds:.2f}s' for k, g in s.gaps.items() if g)}}}")
snap = rec.snapshot()
for name in sorted({smp.stream for smp in snap.samples}):
    bad = [smp for smp in snap.stream(name) if not smp.ok]
    kinds = Counter(str(smp.error)[:60] for smp in bad)
    print(f"  {name}: {len(snap.stream(name))} samples, {len(bad)} failed" + (f": {dict(kinds)}" if bad else ""))
