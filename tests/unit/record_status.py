"""Record what `hastack status` reads from a running lab, as test input for the status rules.

    uv run python tests/unit/record_status.py --topology tests/lab/status.yml --case healthy \
        --note "every layer healthy"

Writes tests/unit/recorded/status/<case>/<host>.txt: each host's raw probe answer (the bundle's
JSON, in the recordings format of recorded/README.md; secrets travel on stdin and are not in
it), and _case.json: the hosts that could not be reached (and why) plus the client's view of the
VIP. tests/unit/status_cases.py rebuilds the ClusterState from them with the real parsers.
Put the lab in the state the case describes first, then review `git diff tests/unit/recorded`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recordings import RECORDED, Recording, save  # noqa: E402

from hastack.status.bundle import BUNDLE_ARGV, stdin_of  # noqa: E402
from hastack.status.client import TokenCache  # noqa: E402
from hastack.status.collect import credentials, default_client  # noqa: E402
from hastack.status.probes import tasks_for  # noqa: E402
from hastack.topology.load import load  # noqa: E402
from hastack.topology.model import Node, Topology  # noqa: E402
from hastack.transport.base import HostError  # noqa: E402
from hastack.transport.ssh import connect  # noqa: E402

SHOWN_ARGV = (*BUNDLE_ARGV[:-1], "<hastack.status.bundle.BUNDLE_SCRIPT>")
"""The script itself is left out of the header (it is the transport, not the answer)."""


async def record_host(topo: Topology, path: Path, node: Node, case: str, notes: list[str], stamp: str
                      ) -> str | None:
    """The host's raw answer saved; or why it could not be reached."""
    creds = credentials(topo, path)
    try:
        t = await connect(node, topo.ssh, path.resolve().parent)
    except HostError as exc:
        return exc.message
    try:
        tasks = tasks_for(topo, node, creds)
        res = await t.run(BUNDLE_ARGV, stdin=stdin_of(tasks), timeout=15)
    finally:
        await t.close()
    rec = Recording(SHOWN_ARGV, res.exit_status, res.stdout, res.stderr, node.name,
                    f"lab `{topo.name}` on {stamp}, recorded with tests/unit/record_status.py", tuple(notes))
    save(f"status/{case}", node.name, rec)
    return None


async def record(path: Path, case: str, notes: list[str]) -> int:
    topo = load(path).topology
    assert topo is not None, f"{path} does not load"
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    errors = await asyncio.gather(*(record_host(topo, path, n, case, notes, stamp) for n in topo.nodes))
    client = await default_client(topo, credentials(topo, path), TokenCache())
    doc = {"topology": str(path), "notes": notes, "api_watchdog": topo.tuning.api_watchdog.enabled,
           "unreachable": {n.name: e for n, e in zip(topo.nodes, errors, strict=True) if e is not None},
           "client": asdict(client)}
    out = RECORDED / "status" / case / "_case.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"recorded {case}: {len(topo.nodes) - len(doc['unreachable'])} hosts, unreachable {doc['unreachable']}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topology", type=Path, required=True)
    parser.add_argument("--case", required=True)
    parser.add_argument("--note", action="append", default=[])
    args = parser.parse_args()
    sys.exit(asyncio.run(record(args.topology, args.case, args.note)))


if __name__ == "__main__":
    main()
