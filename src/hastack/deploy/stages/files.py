"""Stage 1: packages present, every rendered file in place with its owner and mode."""

from __future__ import annotations

from hastack import pki
from hastack.deploy.engine import Deploy, StepFailed, put_file
from hastack.plan.gather import HostPlan, host_plan
from hastack.plan.steps import Step
from hastack.topology.model import Node

POLICY_RC = "/usr/sbin/policy-rc.d"
# While packages install, block their services from starting with Debian defaults (a standalone
# MariaDB, a RabbitMQ with its own cookie): hastack starts each one configured, in its stage.
BLOCK_START = b"#!/bin/sh\nexit 101\n"


class FilesStage:
    name = "files"

    def applies(self, d: Deploy) -> bool:
        return True

    async def run(self, d: Deploy) -> None:
        await d.each(d.topo.nodes, lambda n: self.host(d, n))

    async def preview(self, d: Deploy) -> list[Step]:
        """The packages and files are the plan's own lines; what follows a write is listed here."""
        return [Step(self.name, host, "change", label) for host, paths in d.changed_paths.items()
                for _, label in after_write(sorted(paths))]

    async def host(self, d: Deploy, node: Node) -> None:
        t = d.transports[node.name]
        try:
            plan = await host_plan(t, d.desired[node.name])
        except Exception as exc:
            raise StepFailed(node.name, "read files and packages", str(exc), code="DEPLOY-READ-FAILED") from exc
        if plan.packages:
            await self.install(d, node.name, plan.packages)
        await self.write(d, plan)

    async def install(self, d: Deploy, host: str, packages: list[str]) -> None:
        t = d.transports[host]
        await t.put(POLICY_RC, BLOCK_START, owner="root", group="root", mode=0o755)
        try:
            await d.run(host, ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q",
                               "--no-install-recommends", *packages], "install packages", timeout=1800)
        finally:
            await d.run(host, ["rm", "-f", POLICY_RC], "remove policy-rc.d")
        d.changed(host, f"installed {len(packages)} package(s): {' '.join(packages)}")

    async def write(self, d: Deploy, plan: HostPlan) -> None:
        t = d.transports[plan.host]
        for c in plan.changed_files:
            d.checkpoint()
            await put_file(t, c.file)
            d.changed(plan.host, c.summary())
        changed = note_changes(d, plan)
        for argv, label in after_write(changed):
            await d.run(plan.host, argv, label)


def note_changes(d: Deploy, plan: HostPlan) -> list[str]:
    """What the later stages learn from a host's file changes: the units to restart and the
    changed paths (the stages' runs and their previews alike). Returns the changed paths."""
    d.restarts.setdefault(plan.host, set()).update(plan.restarts)
    changed = [c.file.path for c in plan.files if c.content_changed]
    d.changed_paths.setdefault(plan.host, set()).update(changed)
    return changed


def after_write(changed: list[str]) -> list[tuple[list[str], str]]:
    """The commands a set of changed files needs right after it is written: argv and step name."""
    out: list[tuple[list[str], str]] = []
    if any(p.startswith(("/etc/systemd/system/", "/lib/systemd/system/")) for p in changed):
        out.append((["systemctl", "daemon-reload"], "reload systemd units"))
    out += [(["sysctl", "-q", "-p", p], f"apply {p}") for p in changed if p.startswith("/etc/sysctl.d/")]
    if pki.CA_PATH in changed:
        out.append((["update-ca-certificates"], "trust the cluster's CA"))
    return out
