"""`hastack status`: the exit code is the verdict's; JSON and Prometheus go to stdout as they are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import status_cases as sc
from typer.testing import CliRunner

import hastack.cli.status as cli_status
from hastack.cli.main import app
from hastack.status.model import ClusterState

runner = CliRunner()
TOPO = str(sc.ROOT / "tests/lab/status.yml")


def recorded(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    class Fake:
        def __init__(self, topo: object, path: Path):
            self.path = path

        async def collect(self) -> ClusterState:
            return sc.state(case)

        async def __aenter__(self) -> Fake:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(cli_status, "Collector", Fake)


@pytest.mark.parametrize(("case", "code"), [("healthy", 0), ("ctl1-off", 1), ("controllers-split", 2)])
def test_exit_code_is_the_verdict(monkeypatch: pytest.MonkeyPatch, case: str, code: int) -> None:
    recorded(monkeypatch, case)
    res = runner.invoke(app, ["status", TOPO])
    assert res.exit_code == code, res.output
    assert "Findings" in res.output and "Traceback" not in res.output


def test_json(monkeypatch: pytest.MonkeyPatch) -> None:
    recorded(monkeypatch, "ctl1-off")
    res = runner.invoke(app, ["status", TOPO, "--json"])
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["verdict"] == "degraded" and doc["vip"]["holders"] == ["ctl-2"]


def test_prometheus(monkeypatch: pytest.MonkeyPatch) -> None:
    recorded(monkeypatch, "healthy")
    res = runner.invoke(app, ["status", TOPO, "--prometheus"])
    assert res.exit_code == 0
    assert res.stdout.startswith("# HELP hastack_status_code ")
    assert 'hastack_status_code{topology="status"} 0' in res.stdout


def test_an_invalid_topology_is_unknown_not_degraded() -> None:
    res = runner.invoke(app, ["status", str(sc.ROOT / "examples/invalid/typos.yml")])
    assert res.exit_code == 3 and "TOPO-UNKNOWN-KEY" in res.output


def test_output_modes_exclude_each_other() -> None:
    res = runner.invoke(app, ["status", TOPO, "--json", "--prometheus"])
    assert res.exit_code == 3
