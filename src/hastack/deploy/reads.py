"""What deploy stages and recover read and wait for, in one place: each is a fact through the
deploy engine (a failure becomes the step's StepFailed) or a bounded wait on one."""

from __future__ import annotations

from hastack.components.galera import sql_quote as sql_quote
from hastack.deploy.engine import Deploy
from hastack.facts import CrmMon, GaleraStatus, RabbitCluster, cluster_status, crm_mon, galera_status


async def wsrep(d: Deploy, host: str) -> GaleraStatus:
    """The node's wsrep status (`available` False when MariaDB does not answer)."""
    return await d.fact(host, galera_status(), "read wsrep status")


async def wait_synced(d: Deploy, host: str, timeout: float = 180) -> None:
    async def probe() -> tuple[bool, object]:
        s = await wsrep(d, host)
        return s.synced, s.state if s.available else f"not answering: {s.error}"

    await d.wait(host, "wait for Galera Synced", probe,
                 what=f"{host} to be Synced in the primary component", timeout=timeout)


async def rabbit_cluster(d: Deploy, host: str) -> RabbitCluster:
    return await d.fact(host, cluster_status(), "read RabbitMQ cluster status")


async def crm_state(d: Deploy, host: str) -> CrmMon:
    return await d.fact(host, crm_mon(), "read cluster state")
