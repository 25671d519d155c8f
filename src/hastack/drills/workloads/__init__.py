"""The workloads a drill runs while it breaks something, and the watcher.

Why they look like this:
- Open loop, paced: each workload *starts* an operation every 1/rate seconds on a small pool of
  workers, whatever the previous ones are doing. A closed loop (one operation after the other)
  would measure its own timeout instead of the outage: the first request after a fault hangs for
  its whole timeout and nothing else is tried meanwhile. When every worker is blocked, the due
  operation is recorded as skipped (the client stalled) rather than queued without bound.
- Every loop is bounded by count (rate x duration + 1), by time (duration), and by the stop event;
  every operation by its own short timeout. Nothing here retries forever.
- Clients behave like real ones: a worker keeps its connection (keep-alive HTTP, a MariaDB session,
  an AMQP connection with confirms) and opens a new one after an error, to any broker for AMQP.
- Only the topology's addresses (its management network) or loopback are ever contacted; `Endpoints`
  refuses anything else, and httpx ignores proxy settings from the environment.
- Passwords come from the secrets file and never appear in a sample, an error or a log line.

One module per kind: `base` (the protocol, endpoints, credentials, pacing), `http` (VIP probe, Keystone,
Neutron), `db` (Galera writes), `broker` (the quorum queue), `tenant` (the network and router the
watcher sees served), `rpc` (calls and casts through oslo.messaging, as the services make them),
`watcher` (who holds what).
"""


from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hastack.drills.workloads.base import (
    AMQP_PORT,
    DB_PORT,
    DB_TABLE,
    KEYSTONE_PORT,
    NEUTRON_PORT,
    RABBIT_QUEUE,
    RABBIT_VHOST,
    Clients,
    Credentials,
    Endpoints,
    Rates,
    UnsafeTarget,
    Workload,
    paced,
)
from hastack.drills.workloads.broker import Broker
from hastack.drills.workloads.db import CREATE_TABLE, INSERT, SELECT_RUN, DbWrites
from hastack.drills.workloads.http import KeystoneTokens, NeutronNetworks, VipProbe, token_request
from hastack.drills.workloads.rpc import Rpc
from hastack.drills.workloads.tenant import TenantNetwork
from hastack.drills.workloads.watcher import Observe, Sampler, placement

__all__ = ["AMQP_PORT", "CREATE_TABLE", "DB_PORT", "DB_TABLE", "INSERT", "KEYSTONE_PORT", "NEUTRON_PORT",
           "RABBIT_QUEUE", "RABBIT_VHOST", "SELECT_RUN", "Broker", "Clients", "Credentials", "DbWrites",
           "Endpoints", "KeystoneTokens", "NeutronNetworks", "Observe", "Rates", "Rpc", "Sampler", "TenantNetwork",
           "UnsafeTarget", "VipProbe", "Workload", "paced", "placement", "standard", "token_request"]


def standard(ep: Endpoints, creds: Credentials, run_id: str, rates: Rates | None = None,
             rpc_options: Mapping[str, Mapping[str, Any]] | None = None) -> list[Workload]:
    """The client workloads of every drill (the watcher is passed to the runner separately); the
    network list and the tenant's network and router (what the watcher sees served on the network
    nodes) only where the topology runs Neutron."""
    rates = rates or Rates()
    out: list[Workload] = [VipProbe(ep, run_id, rates.vip), KeystoneTokens(ep, creds, run_id, rates.keystone)]
    if ep.neutron_port is not None:
        out += [NeutronNetworks(ep, creds, run_id, rates.networks), TenantNetwork(ep, creds)]
    out += [DbWrites(ep, creds, run_id, rates.db), Broker(ep, creds, run_id, rates.publish)]
    if rpc_options is not None:  # the services' oslo.messaging options (`rpc.options_for(topology)`)
        out.append(Rpc(ep, creds, run_id, rpc_options, rates.rpc))
    return out
