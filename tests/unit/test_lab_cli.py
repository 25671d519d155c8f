"""`hastack lab` errors: one line saying what to do, exit 1, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hastack.cli.main import app
from hastack.lab import image
from hastack.lab.errors import LabError

SMALL = str(Path(__file__).resolve().parents[1] / "lab" / "small.yml")
runner = CliRunner()


def one_error_line(result: object) -> str:
    out = getattr(result, "output", "")
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert "Traceback" not in out
    assert len(lines) == 1, out
    return lines[0]


def test_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(image, "image_info", lambda *a: None)
    monkeypatch.setattr(image, "IMAGES", Path("/nonexistent-hastack-images"))
    result = runner.invoke(app, ["lab", "up", SMALL])
    assert result.exit_code == 1
    assert "needs root" in one_error_line(result)


def test_missing_tool_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda t: None if t == "systemd-nspawn" else real(t))
    result = runner.invoke(app, ["lab", "up", SMALL])
    assert result.exit_code == 1
    assert "apt-get install -y systemd-container" in one_error_line(result)


def test_unknown_topology_file() -> None:
    result = runner.invoke(app, ["lab", "down", "/nonexistent/topology.yml"])
    assert result.exit_code == 1
    assert "no such file" in one_error_line(result)


def test_a_failed_build_step_says_where_the_log_is(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    log.write_text("")
    with pytest.raises(LabError) as err:
        step = ["sh", "-c", "echo E: Unable to locate package nope; exit 100"]
        image._run_logged(step, log, lambda _: None)
    assert err.value.code == "image-build-failed"
    assert "Unable to locate package nope" in str(err.value) and str(log) in str(err.value)


def test_image_key_depends_on_the_package_list() -> None:
    assert image.image_key() == image.image_key(tuple(reversed(image.PACKAGES)))
    assert image.image_key() != image.image_key((*image.PACKAGES, "vim"))


def test_chroot_helper_is_importable_without_side_effects() -> None:
    code = "import hastack.lab.chroot, hastack.lab.launch"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == 0


def test_up_asks_only_the_topologys_nodes_to_accept_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A controller replaced by another stays recorded (and off) in the lab's state: `lab up` with the
    new topology must not ask it for anything (it failed with "ctl-2 is not running" before)."""
    from types import SimpleNamespace

    from hastack.lab.lab import Lab

    lab = Lab.load(SMALL)
    names = [n.name for n in lab.topo.nodes]
    recorded = {**{n: object() for n in names}, "gone-1": object()}
    monkeypatch.setattr(Lab, "state", property(lambda self: SimpleNamespace(nodes=recorded)))
    asked: list[str] = []

    def run(self: Lab, name: str, argv: list[str], timeout: float = 120, **_: object) -> object:
        asked.append(name)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(Lab, "run", run)
    lab._authorize("ssh-ed25519 AAAA test")
    assert asked == names
