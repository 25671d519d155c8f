"""Read what a host has (files, packages, units) and turn it into a per-host plan. Reads only."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from hastack.components.base import Desired
from hastack.plan.files import Actual, FileChange, compare, diff
from hastack.transport.base import Transport

# A fixed script (python3 is on every node: the OpenStack packages depend on it). Paths come on
# stdin as JSON; the answer is JSON {path: [sha256, owner, group, mode] | null}.
FILE_STATE_SCRIPT = r"""
import grp, hashlib, json, os, pwd, stat, sys
out = {}
for p in json.load(sys.stdin):
    try:
        st = os.stat(p)
        with open(p, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
    except (FileNotFoundError, NotADirectoryError):
        out[p] = None
        continue
    def name(fn, i):
        try:
            return fn(i)[0]
        except KeyError:
            return str(i)
    out[p] = [digest, name(pwd.getpwuid, st.st_uid), name(grp.getgrgid, st.st_gid), stat.S_IMODE(st.st_mode)]
json.dump(out, sys.stdout)
"""


def parse_file_states(stdout: str) -> dict[str, Actual]:
    data = json.loads(stdout)
    return {p: Actual(None) if v is None else Actual(v[0], v[1], v[2], int(v[3])) for p, v in data.items()}


async def file_states(t: Transport, paths: list[str]) -> dict[str, Actual]:
    res = await t.run(["python3", "-c", FILE_STATE_SCRIPT], stdin=json.dumps(paths).encode(), timeout=60,
                      check=True)
    return parse_file_states(res.stdout)


def parse_dpkg(stdout: str) -> dict[str, str]:
    """`dpkg-query -W -f='${Package}\t${db:Status-Abbrev}\n'` -> {package: status abbrev}."""
    out = {}
    for line in stdout.splitlines():
        if "\t" in line:
            name, status = line.split("\t", 1)
            out[name.split(":")[0]] = status.strip()
    return out


async def missing_packages(t: Transport, packages: list[str]) -> list[str]:
    if not packages:
        return []
    # Exit code 1 when some package is unknown to dpkg: that is an answer, not a failure.
    res = await t.run(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\n", *packages], timeout=60)
    have = parse_dpkg(res.stdout)
    return [p for p in packages if not have.get(p, "").startswith("ii")]


@dataclass
class HostPlan:
    host: str
    files: list[FileChange] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    """Units the node should run that are not active now: their stage starts them."""
    diffs: dict[str, str] = field(default_factory=dict)

    @property
    def changed_files(self) -> list[FileChange]:
        return [c for c in self.files if c.changed]

    @property
    def restarts(self) -> set[str]:
        return {u for c in self.files if c.content_changed for u in c.file.restarts}


def parse_show(stdout: str, units: list[str]) -> dict[str, dict[str, str]]:
    """`systemctl show -p ... u1 u2` -> {u1: {prop: value}, ...}.

    systemctl answers one blank-line separated block per unit, in the order asked, with `Id` the
    full name (`mariadb.service` for `mariadb`): blocks are matched to the names by position.
    """
    blocks = [b for b in stdout.strip().split("\n\n") if b.strip()]
    props = [dict(line.split("=", 1) for line in b.splitlines() if "=" in line) for b in blocks]
    return dict(zip(units, props, strict=False))


async def inactive_units(t: Transport, units: list[str]) -> list[str]:
    if not units:
        return []
    res = await t.run(["systemctl", "show", "--no-pager", "-p", "Id,ActiveState", *units], timeout=30)
    states = parse_show(res.stdout, units)
    return [u for u in units if states.get(u, {}).get("ActiveState") != "active"]


async def host_plan(t: Transport, desired: Desired, *, with_diffs: bool = False,
                    masker: Callable[[str], str] | None = None) -> HostPlan:
    states = await file_states(t, [f.path for f in desired.files])
    plan = HostPlan(t.host, compare(t.host, desired.files, states), await missing_packages(t, desired.packages))
    plan.stopped = await inactive_units(t, desired.units)
    if with_diffs:
        for c in plan.changed_files:
            if c.content_changed:
                old = None if c.action == "create" or c.file.secret else await t.get(c.file.path)
                text = old.decode(errors="replace") if old is not None else None
                plan.diffs[c.file.path] = diff(c, text, masker)
    return plan
