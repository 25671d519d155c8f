"""The functions `hastack drill` / `hastack bench` call, with a fake lab and fake workloads."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console
from test_drills_runner import FakeLab, FakeWorkload

from hastack.drills import cli, scenarios
from hastack.drills.campaign import Campaign, Cycle
from hastack.drills.runner import Timing
from hastack.facts.rabbitmq import queues
from hastack.secrets import Secrets
from hastack.topology.model import Topology

FAST = Timing(precheck_timeout_s=0.2, poll_s=0.02, join_timeout_s=3.0, sampler_rate=50.0)
SECRETS = Secrets(None, {"keystone/admin": "k" * 16, "db/hastack_probe": "d" * 16, "rabbit/admin": "r" * 16})


@pytest.fixture(autouse=True)
def fast_scenarios(monkeypatch: pytest.MonkeyPatch) -> None:
    quick = tuple(replace(s, baseline_s=0.1, hold_s=0.2, settle_s=0.05, healthy_timeout_s=1.0)
                  for s in scenarios.SCENARIOS)
    monkeypatch.setattr(scenarios, "SCENARIOS", quick)


def console() -> Console:
    return Console(record=True, width=160, force_terminal=False)


def test_drill_prints_the_targets_writes_the_report_and_sets_the_exit_code(seed: Topology, tmp_path: Path) -> None:
    lab = FakeLab()
    out = console()
    code = cli.drill(seed, SECRETS, lab.bindings(), "power-off-vip-writer", repeat=2, report_dir=tmp_path,
                     out=out, timing=FAST, make_workloads=lambda i: [FakeWorkload(lab)])
    text = out.export_text()
    assert code == cli.EXIT_MISSED  # the fake workloads measure no VIP, Keystone or broker: not met
    assert "power-off-vip-writer: 2 run(s)" in text
    assert "DB write gap" in text and "missed" in text
    assert (tmp_path / "power-off-vip-writer-run1.html").is_file()
    assert (tmp_path / "power-off-vip-writer-run2.json").is_file()
    assert json.loads((tmp_path / "power-off-vip-writer-summary.json").read_text())["runs"] == 2


def test_hold_replaces_the_scenarios_time_between_fault_and_heal(seed: Topology, tmp_path: Path) -> None:
    def held(hold_s: float | None, where: Path) -> float:
        lab = FakeLab()
        cli.drill(seed, SECRETS, lab.bindings(), "power-off-vip-writer", report_dir=where, out=console(),
                  timing=FAST, make_workloads=lambda i: [FakeWorkload(lab)], hold_s=hold_s)
        events = json.loads((where / "power-off-vip-writer-run1.json").read_text())["recording"]["events"]
        t = {e["kind"]: e["t"] for e in events if e["kind"] in ("fault", "heal")}
        return t["heal"] - t["fault"]

    assert held(None, tmp_path / "default") < 0.6  # the scenario's own 0.2 s (see fast_scenarios)
    assert held(0.8, tmp_path / "held") >= 0.8


def test_drill_that_cannot_start_exits_2(seed: Topology) -> None:
    lab = FakeLab()
    lab.down.add("ctl-2")
    out = console()
    code = cli.drill(seed, SECRETS, lab.bindings(), "kill-galera-writer", out=out, timing=FAST,
                     make_workloads=lambda i: [])
    assert code == cli.EXIT_ABORTED
    assert "not healthy before the drill" in out.export_text()
    assert lab.calls == []


def test_bench_runs_reference_first_and_ends_on_hastacks_tuning(seed: Topology, tmp_path: Path) -> None:
    lab = FakeLab()
    deployed: list[int] = []
    out = console()
    code = cli.bench(seed, SECRETS, lambda t: lab.bindings(), lambda t: deployed.append(t.tuning.corosync.token),
                     ["kill-galera-writer"], report_dir=tmp_path, out=out, timing=FAST,
                     make_workloads=lambda i: [FakeWorkload(lab)])
    assert deployed == [3000, seed.tuning.corosync.token]
    text = out.export_text()
    assert "reference profile: tuning.keepalived.advert_int=1.0" in text
    assert "ratio ref/hastack" in text
    assert code in (cli.EXIT_OK, cli.EXIT_MISSED)
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert [r["figure"] for r in bench["kill-galera-writer"]][0] == "vip_gap_s"
    assert (tmp_path / "kill-galera-writer-reference-run1.html").is_file()
    assert (tmp_path / "kill-galera-writer-hastack-run1.html").is_file()


def test_run_ids_are_unique_across_series(seed: Topology) -> None:
    make = cli.workloads_for(seed, SECRETS)
    ids = {w.run_id for _ in range(3) for w in make(0) if hasattr(w, "run_id")}  # type: ignore[attr-defined]
    assert len(ids) == 3
    assert all(len(i) <= 64 for i in ids)


def test_scenarios_table_lists_every_scenario() -> None:
    out = console()
    out.print(cli.scenarios_table())
    text = out.export_text()
    assert all(s.name in text for s in scenarios.SCENARIOS)


def test_demo_report(tmp_path: Path) -> None:
    paths = cli.demo_report(tmp_path)
    assert sorted(p.suffix for p in paths) == [".html", ".json"]


# -- lab adapter -------------------------------------------------------------------------------------------

class ScriptedLab:
    def __init__(self, results: dict[str, subprocess.CompletedProcess[str]]) -> None:
        self.results = results
        self.calls: list[tuple[object, ...]] = []

    def power(self, name: str, action: str) -> str:
        self.calls.append(("power", name, action))
        return action

    def cut(self, name: str, peers: list[str] | None = None) -> None:
        self.calls.append(("cut", name, peers))

    def heal(self, name: str, peers: list[str] | None = None) -> None:
        self.calls.append(("heal", name, peers))

    def freeze(self, name: str) -> None:
        self.calls.append(("freeze", name))

    def thaw(self, name: str) -> None:
        self.calls.append(("thaw", name))

    def kill_service(self, name: str, unit: str, signal: str = "KILL",
                     whom: str = "all") -> subprocess.CompletedProcess[str]:
        self.calls.append(("kill", name, unit, signal))
        return self.results.get(name, subprocess.CompletedProcess([], 0, "", ""))

    def run(self, name: str, argv: list[str], timeout: float = 120,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        self.calls.append(("run", name, *argv))
        return self.results.get(name, subprocess.CompletedProcess(argv, 0, "", ""))

    def address(self, name: str) -> str:
        return "10.77.0.11"


def test_lab_faults_start_units_and_raise_on_a_failed_systemctl() -> None:
    failed = subprocess.CompletedProcess([], 1, "", "Failed to kill unit mariadb.service: not loaded")
    lab = ScriptedLab({"ctl-2": failed})
    f = cli.LabFaults(lab)
    f.power("ctl-1", "off")
    f.cut("ctl-1")
    f.heal("ctl-1")
    f.kill_service("ctl-1", "mariadb", "KILL")
    f.start_service("ctl-1", "mariadb")
    assert lab.calls == [("power", "ctl-1", "off"), ("cut", "ctl-1", None), ("heal", "ctl-1", None),
                         ("kill", "ctl-1", "mariadb", "KILL"), ("run", "ctl-1", "systemctl", "start", "mariadb")]
    with pytest.raises(RuntimeError, match="not loaded"):
        f.kill_service("ctl-2", "mariadb", "KILL")


@pytest.mark.parametrize(("listed", "leader"), [
    ([{"name": "other", "leader": "rabbit@ctl-1"}, {"name": "hastack.drill", "leader": "rabbit@ctl-3"}], "ctl-3"),
    ([], None),
    ([{"name": "hastack.drill", "leader": ""}], None),
])
def test_queue_leader_from_rabbitmqctl_json(seed: Topology, listed: list[dict[str, str]], leader: str | None) -> None:
    lab = ScriptedLab({"ctl-1": subprocess.CompletedProcess([], 0, json.dumps(listed), "")})
    assert cli.lab_queue_leader(lab, seed)() == leader


def test_queue_leader_asks_the_next_broker_when_one_is_down(seed: Topology) -> None:
    answer = json.dumps([{"name": "hastack.drill", "leader": "rabbit@ctl-2"}])
    lab = ScriptedLab({"ctl-1": subprocess.CompletedProcess([], 69, "", "nodedown"),
                       "ctl-2": subprocess.CompletedProcess([], 0, answer, "")})
    assert cli.lab_queue_leader(lab, seed)() == "ctl-2"
    assert [c[1] for c in lab.calls] == ["ctl-1", "ctl-2"]
    assert lab.calls[0][2:] == queues("drills").argv


def test_lab_bindings_need_the_stats_secret_unless_an_observer_is_given(seed: Topology) -> None:
    lab = ScriptedLab({})
    with pytest.raises(KeyError, match="haproxy/stats"):
        cli.lab_bindings(lab, seed, SECRETS, lambda: (True, "ok"), lambda: [])
    b = cli.lab_bindings(lab, seed, SECRETS, lambda: (True, "ok"), lambda: [], observe=lambda: {})
    assert b.controllers == ("ctl-1", "ctl-2", "ctl-3")
    assert b.network_nodes == ("net-1", "net-2")
    assert isinstance(b.faults, cli.LabFaults)
    assert b.queue_leader is not None


def test_exit_codes_tell_lost_from_unhealed_from_slow() -> None:
    """A test or script may accept "slower than the target" (1) without accepting a run that did not
    heal (3) or lost something (4)."""
    assert cli.outcome([], False) == cli.EXIT_OK
    assert cli.outcome(["db_gap_s", "heal_to_healthy_s"], False) == cli.EXIT_MISSED
    assert cli.outcome(["db_gap_s"], True) == cli.EXIT_RUN_ERROR
    for figure in ("db_lost", "messages_lost", "split_brain_samples"):
        assert cli.outcome(["vip_gap_s", figure], True) == cli.EXIT_LOST
    assert len({cli.EXIT_OK, cli.EXIT_MISSED, cli.EXIT_ABORTED, cli.EXIT_RUN_ERROR, cli.EXIT_LOST}) == 5


def campaign_of(*cycles: Cycle) -> Campaign:
    return Campaign(1, tuple(c.nemesis for c in cycles), cycles)


def cycle(i: int, figures: dict[str, float | None], violations: tuple[str, ...] = (), aborted: str = "") -> Cycle:
    return Cycle(i, "power-off-vip-writer", "ctl-1", 0.0, 1.0, figures, (), violations, aborted)


KEPT = {"db_lost": 0, "messages_lost": 0, "rpc_casts_lost": 0, "split_brain_samples": 0, "heal_to_healthy_s": 90.0}


def test_a_campaign_exits_like_a_drill_with_every_safety_figure() -> None:
    """The campaign reads its first failed cycle with the drills' codes: a lost RPC cast is a loss (4),
    as it is for a drill, not a run error (3); unreadable writes are a loss too."""
    assert cli.campaign_outcome(campaign_of(cycle(0, KEPT))) == cli.EXIT_OK
    for figure in sorted(cli.SAFETY_FIGURES):
        bad = cycle(1, {**KEPT, figure: 2}, ("lost",))
        assert cli.campaign_outcome(campaign_of(cycle(0, KEPT), bad)) == cli.EXIT_LOST, figure
    assert cli.campaign_outcome(campaign_of(cycle(0, {**KEPT, "db_lost": None}, ("db",)))) == cli.EXIT_LOST
    assert cli.campaign_outcome(campaign_of(cycle(0, {**KEPT, "heal_to_healthy_s": None}, ("status",)))) \
        == cli.EXIT_RUN_ERROR
    assert cli.campaign_outcome(campaign_of(cycle(0, {}, aborted="not healthy"))) == cli.EXIT_ABORTED


def test_the_drill_runs_the_watch_s_cut_beside_its_clients_where_the_services_hosts_run_it(seed: Topology) -> None:
    """The drill's AMQP clients play services, whose hosts cut their connections to a silent broker
    (agents/rabbit_peers.py): the drill runs the same program in its cut-only mode for each run, with
    every broker as a peer; not under the reference profile, which turns the watch off."""
    from hastack.agents import rabbit_peers
    from hastack.drills.profiles import reference
    from hastack.drills.workloads.cut import ClientCut

    cuts = [w for w in cli.workloads_for(seed, SECRETS)(0) if isinstance(w, ClientCut)]
    assert len(cuts) == 1
    argv = cuts[0].argv
    assert argv[1].endswith("agents/rabbit_peers.py")
    args = rabbit_peers.parse(argv[2:])
    assert (args.drop, args.cut, args.dead_after, args.port) == (False, 5672, 3.0, 4369)
    assert args.peers == {f"rabbit@{n.name}": str(n.address) for n in seed.brokers}
    assert not [w for w in cli.workloads_for(reference(seed), SECRETS)(0) if isinstance(w, ClientCut)]


def test_the_cut_s_lines_are_notes_and_its_process_ends_with_the_run() -> None:
    import os
    import threading

    from hastack.drills.samples import Recorder
    from hastack.drills.workloads.cut import ClientCut

    script = "import os, time; print(os.getpid(), flush=True); print('cut 2 connections', flush=True); time.sleep(60)"
    w, rec, stop = ClientCut([sys.executable, "-c", script]), Recorder(), threading.Event()
    runner = threading.Thread(target=w.run, args=(rec, stop, 30.0))
    runner.start()
    deadline = time.monotonic() + 20
    while len([e for e in rec.snapshot().events if e.kind == "note"]) < 2:
        assert time.monotonic() < deadline, rec.snapshot().events
        time.sleep(0.05)
    stop.set()
    runner.join(timeout=15)
    assert not runner.is_alive()
    notes = [e.text for e in rec.snapshot().events if e.kind == "note"]
    assert notes[1] == "watch: cut 2 connections"
    pid = int(notes[0].removeprefix("watch: "))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
