"""Corosync on the network nodes (membership + quorum for Pacemaker), corosync-qnetd on the arbitrator.

Why the quorum section has three shapes:
- a qnetd node exists: every member runs corosync-qdevice, which adds the arbitrator's vote. `ffsplit`
  (one vote to the larger half, ties broken by the arbiter) only makes sense with an even number of
  members; with an odd number `lms` is used and corosync derives its vote count itself.
- exactly two members and no qnetd: `two_node: 1` keeps the survivor quorate; both halves of a split
  then race to fence, so Pacemaker must delay one side (priority-fencing-delay, see pacemaker.py).
- otherwise plain majority.

qdevice <-> qnetd traffic uses TLS with client certificates (`tls: required` here; `-s req -c on`
on qnetd). The quorum device decides which half of a split survives and fences the other; left in clear
text, anything on the management network could pose as the arbiter or as a member. The price is a
certificate exchange at deploy time: `qdevice_tls_steps()` lists it, in order, as pure data.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Literal

from hastack.components.base import Ctx, File, template
from hastack.topology.model import Node, Topology

CONF = "/etc/corosync/corosync.conf"
AUTHKEY = "/etc/corosync/authkey"
AUTHKEY_BYTES = 256
AUTHKEY_SECRET = "corosync/authkey"
QNETD_DEFAULTS = "/etc/default/corosync-qnetd"
QNETD_PORT = 5403
QDEVICE_TLS = "required"
QNETD_TLS = "req"
"""corosync-qnetd spells it `req` (`-s required` is refused); corosync.conf spells it `required`."""

QuorumMode = Literal["qdevice", "two_node", "majority"]


# -- views of the topology shared with pacemaker.py -----------------------------------------
def members(topo: Topology) -> list[Node]:
    """The cluster members: every network node, in topology order."""
    return topo.network_nodes


def nodeid(node: Node) -> int:
    """A network node's corosync nodeid: the low 16 bits of its address (10.77.0.21 -> 21).

    It is the node's own: a node replaced by one with another address gets a new id, and the others
    keep theirs whatever the order or the removals (by position, a replaced node would have
    inherited the dead one's id, which corosync cannot reload and Pacemaker keys its state by).
    validate refuses network nodes whose addresses share the low 16 bits, or end in 0.0."""
    return node.corosync_nodeid


def node_ids(topo: Topology) -> dict[str, int]:
    """nodeid by name, for every member (see nodeid)."""
    return {n.name: nodeid(n) for n in members(topo)}


def qnetd_node(topo: Topology) -> Node | None:
    """The arbitrator running corosync-qnetd (validation allows at most one)."""
    return topo.qnetd_nodes[0] if topo.qnetd_nodes else None


def quorum_mode(topo: Topology) -> QuorumMode:
    if qnetd_node(topo) is not None:
        return "qdevice"
    return "two_node" if len(members(topo)) == 2 else "majority"


def qdevice_algorithm(topo: Topology) -> Literal["ffsplit", "lms"]:
    return "ffsplit" if len(members(topo)) % 2 == 0 else "lms"


def effective_token_ms(topo: Topology) -> int:
    """What corosync really waits for: the coefficient applies from the third member on."""
    t = topo.tuning.corosync
    return t.token + t.token_coefficient * max(0, len(members(topo)) - 2)


def authkey(ctx: Ctx) -> bytes:
    return base64.b64decode(ctx.secrets.token_b64(AUTHKEY_SECRET, AUTHKEY_BYTES))


# -- rendering -------------------------------------------------------------------------------
def corosync_conf(topo: Topology) -> str:
    ids = node_ids(topo)
    mode = quorum_mode(topo)
    return template(
        "corosync/corosync.conf.j2",
        cluster_name=topo.name,
        token=topo.tuning.corosync.token,
        token_coefficient=topo.tuning.corosync.token_coefficient,
        effective_token=effective_token_ms(topo),
        members=[{"name": n.name, "address": n.address, "nodeid": ids[n.name]} for n in members(topo)],
        qdevice=_qdevice(topo) if mode == "qdevice" else None,
        two_node=mode == "two_node",
    )


def _qdevice(topo: Topology) -> dict[str, object]:
    arb = qnetd_node(topo)
    assert arb is not None
    algorithm = qdevice_algorithm(topo)
    return {
        "name": arb.name,
        "address": arb.address,
        "algorithm": algorithm,
        # ffsplit requires exactly one device vote; lms computes its own (members - 1).
        "votes": 1 if algorithm == "ffsplit" else None,
        "tls": QDEVICE_TLS,
    }


def qnetd_defaults(arb: Node) -> str:
    """Options for Debian's corosync-qnetd unit: listen on the management address only, TLS and a
    client certificate required."""
    opts = f"-4 -l {arb.address} -p {QNETD_PORT} -s {QNETD_TLS} -c on"
    return ("# managed by hastack: options of corosync-qnetd (the network cluster's third vote)\n"
            f'COROSYNC_QNETD_OPTIONS="{opts}"\n')


class Corosync:
    name = "corosync"

    def applies(self, topo: Topology, node: Node) -> bool:
        return node.has("network") or node in topo.qnetd_nodes

    def packages(self, topo: Topology, node: Node) -> list[str]:
        if not node.has("network"):
            return ["corosync-qnetd"]
        return ["corosync", "corosync-qdevice"] if qnetd_node(topo) else ["corosync"]

    def units(self, topo: Topology, node: Node) -> list[str]:
        if not node.has("network"):
            return ["corosync-qnetd"]
        return ["corosync", "corosync-qdevice"] if qnetd_node(topo) else ["corosync"]

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        if not node.has("network"):
            return [File(QNETD_DEFAULTS, qnetd_defaults(node), restarts=("corosync-qnetd",))]
        return [
            # reloaded, not restarted (see RELOAD); a new key needs the restart
            File(CONF, corosync_conf(ctx.topo)),
            File(AUTHKEY, authkey(ctx), mode=0o400, secret=True, restarts=("corosync",)),
        ]


COMPONENT = Corosync()


RELOAD: tuple[str, ...] = ("corosync-cfgtool", "-R")
"""A changed corosync.conf is reloaded on every member at once (run on one), not restarted: a
restart of corosync takes Pacemaker down with it on that node (pacemaker.service requires
corosync), deploy would do it on every member, and the agents would stop. Corosync 3 reloads the
totem timings, the nodelist and the quorum device's settings; qdevice is restarted after it,
which keeps the cluster quorate (the members' own votes are a majority)."""


# -- the qdevice TLS certificate exchange, as data for deploy -------------------------------
QNETD_DB = "/etc/corosync/qnetd/nssdb"
QNETD_CA = f"{QNETD_DB}/qnetd-cacert.crt"
QDEVICE_DB = "/etc/corosync/qdevice/net/nssdb"
HAS_CLUSTER_CERT: tuple[str, ...] = ("certutil", "-L", "-d", QDEVICE_DB, "-n", "Cluster Cert")
"""Fact, on every member: exit 0 when qdevice has its client certificate (else run the exchange)."""


@dataclass(frozen=True)
class Run:
    host: str
    argv: tuple[str, ...]
    why: str
    unless: tuple[str, ...] | None = None
    """Skip the step when this argv exits 0 on the same host."""


@dataclass(frozen=True)
class Copy:
    src_host: str
    src: str
    dest_host: str
    dest: str
    mode: int = 0o600


CertStep = Run | Copy


def qdevice_tls_steps(topo: Topology) -> list[CertStep]:
    """The certificate exchange qdevice needs before it can reach qnetd with `tls: required`.

    Deploy runs the whole list, in order, when `HAS_CLUSTER_CERT` fails on any member, then restarts
    corosync-qdevice on the members. It starts by wiping the members' databases, so a half-finished
    earlier run is simply redone. The qnetd database (its CA) is created once per qnetd host: Debian's
    postinst already does it on a real host; an image must not ship one, or every host built from
    it shares the CA key.
    """
    arb = qnetd_node(topo)
    if arb is None:
        return []
    first, *others = members(topo)
    name = topo.name
    ca_tmp, crq_tmp = "/var/tmp/qnetd-cacert.crt", f"/var/tmp/qdevice-{name}.crq"
    crq, p12 = f"{QDEVICE_DB}/qdevice-net-node.crq", f"{QDEVICE_DB}/qdevice-net-node.p12"
    crt = f"cluster-{name}.crt"
    steps: list[CertStep] = [
        Run(arb.name, ("corosync-qnetd-certutil", "-i", "-G"), "qnetd CA and server certificate",
            unless=("test", "-f", QNETD_CA)),
        # as Debian's postinst does: qnetd runs as coroqnetd and must read its database
        Run(arb.name, ("chgrp", "coroqnetd", QNETD_DB, f"{QNETD_DB}/cert9.db", f"{QNETD_DB}/key4.db"),
            "qnetd (user coroqnetd) reads its database"),
    ]
    for m in members(topo):
        steps += [
            Run(m.name, ("rm", "-rf", QDEVICE_DB), "start from an empty member database"),
            Copy(arb.name, QNETD_CA, m.name, ca_tmp, 0o644),
            Run(m.name, ("corosync-qdevice-net-certutil", "-i", "-c", ca_tmp),
                "member database trusting the qnetd CA"),
        ]
    steps += [
        Run(first.name, ("corosync-qdevice-net-certutil", "-r", "-n", name), "cluster certificate request"),
        Copy(first.name, crq, arb.name, crq_tmp),
        Run(arb.name, ("corosync-qnetd-certutil", "-s", "-c", crq_tmp, "-n", name),
            "the qnetd CA signs the cluster certificate"),
        Copy(arb.name, f"{QNETD_DB}/{crt}", first.name, f"{QDEVICE_DB}/{crt}"),
        Run(first.name, ("corosync-qdevice-net-certutil", "-M", "-c", f"{QDEVICE_DB}/{crt}"),
            "import the signed certificate; export it with its key as pk12"),
    ]
    for m in others:
        steps += [
            Copy(first.name, p12, m.name, p12),
            Run(m.name, ("corosync-qdevice-net-certutil", "-m", "-c", p12), "the same client certificate"),
        ]
    return steps
