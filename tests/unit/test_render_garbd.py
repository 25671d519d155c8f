"""garbd: only where a third Galera vote is needed, joined to the same group with the same timeouts."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from hastack.components import galera, garbd
from hastack.components.base import Ctx
from hastack.topology.model import Topology

CtxOf = Callable[[Topology], Ctx]


def test_only_on_non_controller_arbitrators(seed: Topology, four: Topology) -> None:
    assert [n.name for n in seed.nodes if garbd.COMPONENT.applies(seed, n)] == []  # ctl-3 is a controller
    assert [n.name for n in four.nodes if garbd.COMPONENT.applies(four, n)] == ["net-1"]


def sourced(tmp_path: Path, text: str, names: list[str]) -> dict[str, str]:
    """What garb-systemd sees: the file sourced by bash."""
    path = tmp_path / "garb"
    path.write_text(text)
    script = f". {path}; " + "; ".join(f'printf "%s\\0" "${n}"' for n in names)
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True).stdout.decode()
    return dict(zip(names, out.split("\0")[:-1], strict=True))


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_defaults_file(tmp_path: Path, four: Topology, ctx_of: CtxOf) -> None:
    node = four.node("net-1")
    [f] = garbd.COMPONENT.files(ctx_of(four), node)
    assert f.path == "/etc/default/garb" and f.restarts == ("garbd",)
    env = sourced(tmp_path, f.data.decode(), ["GALERA_NODES", "GALERA_GROUP", "GALERA_OPTIONS"])
    assert env["GALERA_NODES"].split(",") == ["10.78.0.11:4567", "10.78.0.12:4567"]
    assert env["GALERA_GROUP"] == four.name
    opts = [o.strip() for o in env["GALERA_OPTIONS"].split(";")]
    assert "gmcast.listen_addr=tcp://10.78.0.21:4567" in opts
    assert set(galera.evs_options(four.tuning.galera)) <= set(opts)


def test_group_matches_cluster_name(four: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(four)
    cnf = {f.path: f for f in galera.COMPONENT.files(ctx, four.controllers[0])}[galera.CONF].data.decode()
    assert f"wsrep_cluster_name = {four.name}\n" in cnf
    [f] = garbd.COMPONENT.files(ctx, four.node("net-1"))
    assert f'GALERA_GROUP="{four.name}"' in f.data.decode()


def test_unit_and_package(four: Topology) -> None:
    node = four.node("net-1")
    assert garbd.COMPONENT.units(four, node) == ["garbd"]
    assert garbd.COMPONENT.packages(four, node) == ["galera-arbitrator-4"]
