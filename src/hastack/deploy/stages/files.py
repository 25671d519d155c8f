"""Stage 1: packages present, every rendered file in place with its owner and mode."""

from __future__ import annotations

from hastack import pki
from hastack.deploy.engine import Deploy, StepFailed, put_file
from hastack.plan.gather import HostPlan, host_plan
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

    async def host(self, d: Deploy, node: Node) -> None:
        t = d.transports[node.name]
        try:
            plan = await host_plan(t, d.desired[node.name])
        except Exception as exc:
            raise StepFailed(node.name, "read files and packages", str(exc)) from exc
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
        d.restarts.setdefault(plan.host, set()).update(plan.restarts)
        changed = [c.file.path for c in plan.files if c.content_changed]
        d.changed_paths.setdefault(plan.host, set()).update(changed)
        if any(p.startswith(("/etc/systemd/system/", "/lib/systemd/system/")) for p in changed):
            await d.run(plan.host, ["systemctl", "daemon-reload"], "reload systemd units")
        for p in changed:
            if p.startswith("/etc/sysctl.d/"):
                await d.run(plan.host, ["sysctl", "-q", "-p", p], f"apply {p}")
        if pki.CA_PATH in changed:
            await d.run(plan.host, ["update-ca-certificates"], "trust the cluster's CA")
