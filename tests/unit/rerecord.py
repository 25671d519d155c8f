"""Re-record parser test inputs from a running lab (or any reachable topology).

    uv run python tests/unit/rerecord.py --topology examples/seed.yml crm_mon/healthy mariadb/wsrep_status-healthy@ctl-2
    uv run python tests/unit/rerecord.py --topology examples/seed.yml --as lab-healthy crm_mon/healthy@net-1

Each recording keeps its exact argv (the fact's command); this runs that argv on the recording's
host (or @HOST) over SSH and rewrites stdout, stderr, exit status and source. Put the cluster in
the state the case describes first (its `note:` lines say which), then review `git diff` and run
the parser tests: a test that now fails shows what the real tool prints differently.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recordings import load, save  # noqa: E402

from hastack.topology.load import load as load_topology  # noqa: E402
from hastack.transport.ssh import connect_fleet  # noqa: E402


async def rerecord(topology: Path, targets: list[str], save_as: str | None) -> int:
    loaded = load_topology(topology)
    if loaded.topology is None:
        print("\n".join(r.render() for r in loaded.reports), file=sys.stderr)
        return 2
    jobs = []
    for target in targets:
        name, _, host = target.partition("@")
        tool, _, case = name.partition("/")
        rec = load(tool, case)
        jobs.append((tool, save_as or case, rec, host or rec.host))
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    async with await connect_fleet(loaded.topology, topology, names={j[3] for j in jobs}) as fleet:
        for tool, case, rec, host in jobs:
            result = await fleet[host].run(rec.argv, timeout=300)
            new = replace(rec, exit_status=result.exit_status, stdout=result.stdout, stderr=result.stderr,
                          host=host, source=f"lab `{loaded.topology.name}` on {stamp}, re-recorded with "
                                            "tests/unit/rerecord.py")
            print(f"{tool}/{case}@{host}: exit {result.exit_status} -> {save(tool, case, new)}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topology", type=Path, required=True)
    parser.add_argument("--as", dest="save_as", help="save under this case name instead (one target only)")
    parser.add_argument("targets", nargs="+", help="tool/case or tool/case@host")
    args = parser.parse_args()
    if args.save_as and len(args.targets) != 1:
        parser.error("--as takes exactly one target")
    sys.exit(asyncio.run(rerecord(args.topology, args.targets, args.save_as)))


if __name__ == "__main__":
    main()
