"""The VIP guard: a frozen keepalived is killed (its unit's drop-in then releases the VIPs and restarts
it); anything else is left alone. Tried on real processes stopped with SIGSTOP."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import FixedSecrets
from hastack.agents import vip_guard as guard
from hastack.components import keepalived
from hastack.components.base import Ctx
from hastack.topology.model import Topology


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
    yield procs
    for p in procs:
        p.kill()
        p.wait()


def fake_cgroup(tmp_path: Path, pids: list[int]) -> Path:
    (tmp_path / "cgroup.procs").write_text("".join(f"{p}\n" for p in pids))
    return tmp_path


def wait_state(pid: int, want: str) -> None:
    for _ in range(100):
        if guard.states([pid]) == [want]:
            return
        time.sleep(0.02)
    raise AssertionError(f"{pid} never reached state {want}")


def test_the_state_field_survives_a_command_name_with_spaces_and_parentheses() -> None:
    assert guard.state_of("812 (keep alived) S 1 812") == "S"
    assert guard.state_of("9 (a) b) T 1") == "T"
    assert guard.state_of("") == ""


def test_only_a_unit_whose_every_process_is_stopped_counts_as_frozen() -> None:
    assert guard.all_stopped(["T", "t"]) and not guard.all_stopped(["T", "S"]) and not guard.all_stopped([])


def test_a_frozen_unit_is_killed_and_a_running_or_partly_stopped_one_is_not(
        tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]) -> None:
    kills: list[str] = []
    cgroup = fake_cgroup(tmp_path, [p.pid for p in sleepers])
    assert not guard.look(cgroup, lambda: kills.append("kill"))
    os.kill(sleepers[0].pid, signal.SIGSTOP)
    wait_state(sleepers[0].pid, "T")
    assert not guard.look(cgroup, lambda: kills.append("kill"))  # one still runs: not frozen
    os.kill(sleepers[1].pid, signal.SIGSTOP)
    wait_state(sleepers[1].pid, "T")
    assert guard.look(cgroup, lambda: kills.append("kill")) and kills == ["kill"]
    assert not guard.look(tmp_path / "missing", lambda: kills.append("kill"))  # no unit: nothing to do
    assert guard.look((tmp_path / "missing", cgroup), lambda: kills.append("kill"))  # the first tree that has it
    assert kills == ["kill", "kill"]


def test_keepalived_releases_its_vips_whenever_it_stops_and_comes_back(seed: Topology) -> None:
    text = keepalived.dropin(seed)
    assert "Restart=on-failure\n" in text and "RestartSec=1\n" in text
    assert f"ExecStopPost=-/bin/ip -4 addr del {seed.network.vip}/24 dev eth0\n" in text
    files = {f.path: f for f in keepalived.COMPONENT.files(Ctx(seed, FixedSecrets(None)), seed.controllers[0])}
    assert keepalived.UNIT in files[keepalived.DROPIN].restarts
    assert files[keepalived.GUARD_PROGRAM].mode == 0o755
    assert keepalived.GUARD_UNIT in files[keepalived.GUARD_UNIT_FILE].restarts
