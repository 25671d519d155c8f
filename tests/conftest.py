"""Shared fixtures: deterministic secrets so golden files do not change between runs."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hastack.components.base import Ctx
from hastack.secrets import Secrets
from hastack.topology.load import load
from hastack.topology.model import Topology

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


class FixedSecrets(Secrets):
    """Every secret is derived from its name: stable across runs, still distinct per name."""

    def _get(self, name: str, make: object) -> str:
        if name not in self._values:
            digest = hashlib.sha256(name.encode()).digest()
            if name.startswith(("fernet/", "credential/")):
                import base64

                self._values[name] = base64.urlsafe_b64encode(digest).decode()
            elif name == "corosync/authkey":
                import base64

                self._values[name] = base64.b64encode(digest * 8).decode()
            elif name == "keepalived/auth":
                self._values[name] = digest.hex()[:8]
            else:
                self._values[name] = digest.hex()[:32]
        return self._values[name]


def replace_node(topo: Topology, old: str, new: str, address: str) -> Topology:
    """`topo` with node `old` replaced in place by `new` at `address` (same roles), as an operator
    replaces a dead server in the topology file."""
    return topo.model_copy(update={"nodes": [
        n.model_copy(update={"name": new, "address": ipaddress.IPv4Address(address)}) if n.name == old else n
        for n in topo.nodes]})


def watching(topo: Topology, after_s: float = 3) -> Topology:
    """The topology with the broker dead-peer watch after `after_s` (3, the default; 0 turns it off)."""
    rabbit = topo.tuning.rabbitmq.model_copy(update={"dead_peer_after_s": after_s})
    return topo.model_copy(update={"tuning": topo.tuning.model_copy(update={"rabbitmq": rabbit})})


def load_example(name: str) -> Topology:
    loaded = load(EXAMPLES / name)
    assert loaded.topology is not None, [r.render() for r in loaded.reports]
    return loaded.topology


@pytest.fixture
def seed() -> Topology:
    return load_example("seed.yml")


@pytest.fixture
def four() -> Topology:
    return load_example("four-servers.yml")


@pytest.fixture
def no_nova() -> Topology:
    """The four-server layout without nova and its compute node: services that are absent stay absent."""
    four = load_example("four-servers.yml")
    services = [s for s in four.openstack.services if s != "nova"]
    return four.model_copy(update={"nodes": [n for n in four.nodes if not n.has("compute")],
                                   "openstack": four.openstack.model_copy(update={"services": services})})


@pytest.fixture
def ctx_of() -> Callable[[Topology], Ctx]:
    return lambda topo: Ctx(topo, FixedSecrets(None))


# -- image tier ---------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def lab_image() -> Path:
    """The lab's Debian image, built once and cached (`hastack.lab.image`): the image tier runs the real
    checkers inside it, which needs root."""
    if os.geteuid() != 0:
        pytest.skip("the lab image needs root")
    from hastack.lab import image

    path: Path = image.ensure_image()
    return path


# -- lab tier: one deployed seed lab for the whole session -------------------------------------------
# Three controllers cost minutes of CPU to boot: modules share it, heal what they break and wait for
# health; the most destructive (full power loss, recovery) live in the module that sorts last.

@pytest.fixture(scope="session")
def seed_lab() -> Iterator[Path]:
    """`lab up` resumes a lab that is already up and deploy is idempotent, so a developer's running
    lab is reused. HASTACK_KEEP_LAB=1 keeps it afterwards."""
    from seedlab import SEED, hastack

    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    up = hastack("lab", "up", str(SEED))
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        dep = hastack("deploy", str(SEED), "--yes")
        print(dep.stdout)
        assert dep.returncode == 0, dep.stdout + dep.stderr
        yield SEED
    finally:
        if not os.environ.get("HASTACK_KEEP_LAB"):
            down = hastack("lab", "down", "--fast", str(SEED))
            assert down.returncode == 0, down.stdout + down.stderr


# -- peers on real loopback sockets, for the agents that probe their peers' kernels (vip_quorum,
# rabbit_peers): one that accepts, one that refuses, one that stays silent.

@pytest.fixture
def listening() -> Iterator[int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4096)  # never accepted: room for every probe of a test
    yield s.getsockname()[1]
    s.close()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: the kernel refuses a connection with RST."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def silent() -> Iterator[tuple[str, int]]:
    """A peer that never answers a SYN: a listener whose backlog is already full of unaccepted
    connections makes the kernel drop further SYNs (Linux), like a cut link does."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    port = s.getsockname()[1]
    fillers = []
    for _ in range(8):  # fill the accept queue; later connects stay in SYN_SENT
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    time.sleep(0.05)
    yield ("127.0.0.1", port)
    for c in fillers:
        c.close()
    s.close()
