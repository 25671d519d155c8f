"""memcached: own address only, UDP off, sized for OpenStack's connection pools."""

from __future__ import annotations

from collections.abc import Callable

from hastack.components import memcached
from hastack.components.base import Ctx
from hastack.topology.model import Topology

CtxOf = Callable[[Topology], Ctx]


def options(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.startswith("-"):
            flag, _, value = line.partition(" ")
            out[flag] = value
    return out


def test_listens_on_own_address(seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    for node in seed.controllers:
        [f] = memcached.COMPONENT.files(ctx, node)
        assert f.path == "/etc/memcached.conf" and f.restarts == ("memcached",)
        opts = options(f.data.decode())
        assert opts["-l"] == str(node.address)
        assert opts["-p"] == "11211"
        assert opts["-U"] == "0"
        assert int(opts["-m"]) >= 64
        assert int(opts["-c"]) >= 1024


def test_applies_to_controllers(seed: Topology) -> None:
    assert [n.name for n in seed.nodes if memcached.COMPONENT.applies(seed, n)] == ["ctl-1", "ctl-2", "ctl-3"]


def test_servers_lists_every_controller(seed: Topology) -> None:
    assert memcached.servers(seed) == ["10.77.0.11:11211", "10.77.0.12:11211", "10.77.0.13:11211"]
