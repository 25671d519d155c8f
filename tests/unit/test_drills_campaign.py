"""The fault campaign: its schedule, its checkers on a real recorded history with a lost write, a
duplicate, a lost message and a split-brain sample planted in it, and the loop against the fake lab."""

from __future__ import annotations

import dataclasses
import gzip
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_drills_runner import FAST, FakeLab, FakeWorkload, quick

from conftest import load_example
from hastack.drills import campaign as cp
from hastack.drills import report
from hastack.drills.cli import campaign as campaign_cli
from hastack.drills.samples import Recording
from hastack.drills.scenarios import SCENARIOS
from hastack.drills.scoring import score

RECORDED = Path(__file__).parent / "recorded" / "drills" / "kill-haproxy-vip.json.gz"


def recorded() -> Recording:
    """A real run on the seed lab (see the file's `source`)."""
    return Recording.from_json(json.loads(gzip.decompress(RECORDED.read_bytes()))["recording"])


def checked(rec: Recording) -> tuple[dict[str, Any], list[str]]:
    figures = score(rec).figures()
    return figures, cp.violations(figures, [])


def test_the_schedule_deals_every_nemesis_evenly_and_replays_from_its_seed() -> None:
    plan = cp.schedule(cp.NEMESES, 100, seed=7)
    counts = Counter(plan)
    assert set(counts) == set(cp.NEMESES) and min(counts.values()) >= 100 // len(cp.NEMESES)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert all(a != b for a, b in zip(plan, plan[1:], strict=False))
    assert plan == cp.schedule(cp.NEMESES, 100, seed=7) and plan != cp.schedule(cp.NEMESES, 100, seed=8)
    with pytest.raises(ValueError):
        cp.schedule([], 3, 1)


def test_every_nemesis_is_a_scenario() -> None:
    names = {s.name for s in SCENARIOS}
    assert set(cp.NEMESES) <= names and "soak" not in cp.NEMESES


def test_the_recorded_run_as_it_happened_keeps_every_promise() -> None:
    figures, bad = checked(recorded())
    assert bad == []
    assert figures["db_acked"] > 500 and figures["db_lost"] == 0
    assert figures["messages_confirmed"] > 500 and figures["messages_lost"] == 0


def test_a_write_missing_on_one_node_is_caught() -> None:
    rec = recorded()
    present = {n: list(ids) for n, ids in rec.checks["db_present"].items()}
    acked = next(s.id for s in rec.samples if s.stream == "db" and s.ok)
    present["ctl-2"].remove(acked)
    figures, bad = checked(dataclasses.replace(rec, checks={**rec.checks, "db_present": present}))
    assert figures["db_lost"] == 1 and bad == ["db: 1 acknowledged write(s) missing on a Galera node"]


def test_unreadable_nodes_are_a_violation_not_zero_lost() -> None:
    rec = recorded()
    figures, bad = checked(dataclasses.replace(rec, checks={**rec.checks, "db_present": {"ctl-1": None}}))
    assert figures["db_lost"] is None and bad and bad[0].startswith("db: no Galera node")


def test_a_duplicate_delivery_is_counted_but_allowed() -> None:
    rec = recorded()
    again = next(s for s in rec.samples if s.stream == "consume" and s.ok)
    figures, bad = checked(dataclasses.replace(rec, samples=(*rec.samples, dataclasses.replace(again, t=again.t + 1))))
    assert figures["messages_duplicated"] == 1 and bad == []


def test_a_confirmed_message_never_consumed_is_caught() -> None:
    rec = recorded()
    gone = next(s.id for s in rec.samples if s.stream == "publish" and s.ok)
    kept = tuple(s for s in rec.samples if not (s.stream == "consume" and s.id == gone))
    figures, bad = checked(dataclasses.replace(rec, samples=kept))
    assert figures["messages_lost"] == 1 and bad == ["broker: 1 confirmed message(s) never consumed"]


def test_a_split_brain_sample_is_caught() -> None:
    rec = recorded()
    p = rec.placements[len(rec.placements) // 2]
    two = dataclasses.replace(p, t=p.t + 0.01, vip=("ctl-1", "ctl-2"))
    placements = tuple(sorted((*rec.placements, two), key=lambda x: x.t))
    figures, bad = checked(dataclasses.replace(rec, placements=placements))
    assert figures["split_brain_samples"] == 1 and bad[0].startswith("split brain: 1 sample")


def test_a_heal_that_never_reaches_healthy_is_caught() -> None:
    rec = recorded()
    events = tuple(e for e in rec.events if e.kind != "healthy")
    figures, bad = checked(dataclasses.replace(rec, events=events))
    assert figures["heal_to_healthy_s"] is None and bad == ["status: not healthy within the bound after the heal"]


def test_run_errors_are_violations() -> None:
    from hastack.reports import Report, Severity

    failed = Report("DRILL-ACTION-FAILED", Severity.ERROR, "heal 'power on' failed: x", area="power-off-vip-writer",
                    subject="ctl-1")
    assert cp.violations({"db_lost": 0, "heal_to_healthy_s": 3.0}, [failed]) == [
        "run: [DRILL-ACTION-FAILED] heal 'power on' failed: x"]
    assert failed.to_json() == {"code": "DRILL-ACTION-FAILED", "severity": "error", "message": "heal 'power on' "
                                "failed: x", "area": "power-off-vip-writer", "subject": "ctl-1"}


def fake_scenarios(**overrides: Any) -> dict[str, Any]:
    return {n: quick(n, **overrides) for n in ("kill-haproxy-vip", "kill-memcached", "kill-galera-writer")}


def test_a_campaign_runs_every_cycle_and_keeps_each_one() -> None:
    lab = FakeLab(polls_to_heal=1)
    kept: list[cp.Cycle] = []
    result = cp.run_campaign(fake_scenarios(), lab.bindings(), lambda i: [FakeWorkload(lab)], cycles=4, seed=3,
                             nemeses=list(fake_scenarios()), keep=lambda c, r: kept.append(c), timing=FAST)
    assert result.ok and len(result.cycles) == 4 and kept == list(result.cycles)
    assert [c.nemesis for c in result.cycles] == list(result.planned)
    rows = cp.summary(result.cycles)
    assert sum(r.cycles for r in rows) == 4 and all(r.violations == 0 for r in rows)
    assert json.loads(json.dumps(result.to_json()))["ran"] == 4


def test_a_campaign_stops_at_the_first_failed_cycle() -> None:
    lab = FakeLab(polls_to_heal=10**6)  # never healthy again after the first heal
    result = cp.run_campaign(fake_scenarios(healthy_timeout_s=0.2), lab.bindings(), lambda i: [FakeWorkload(lab)],
                             cycles=5, seed=1, nemeses=list(fake_scenarios()), timing=FAST)
    assert not result.ok and len(result.cycles) == 1
    bad = result.first_failure()
    assert bad is not None and bad.violations[0] == "status: not healthy within the bound after the heal"
    assert [e.code for e in bad.errors] == ["DRILL-NOT-HEALED"]
    assert bad.violations[1].startswith("run: [DRILL-NOT-HEALED]")


def test_an_unknown_nemesis_is_refused_before_anything_runs() -> None:
    lab = FakeLab()
    with pytest.raises(KeyError, match="nope"):
        cp.run_campaign(fake_scenarios(), lab.bindings(), lambda i: [], cycles=1, seed=1, nemeses=["nope"])
    assert lab.calls == []


def test_the_campaign_command_writes_its_evidence_and_a_failed_cycle_in_full(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Through drills.cli.campaign with the fake lab: campaign.json and index.html after every cycle,
    the failed cycle's JSON and timeline, and the logs of its window (asked of the `logs` binding)."""
    from hastack.drills import cli

    lab = FakeLab(polls_to_heal=1)
    quick_all = {s.name: quick(s.name) for s in SCENARIOS}
    monkeypatch.setattr(cli, "SCENARIOS", tuple(quick_all.values()))
    windows: list[tuple[float, float, Path]] = []
    seed_topo = load_example("seed.yml")
    code = campaign_cli(seed_topo, None, lab.bindings(), cycles=2, seed=5,  # type: ignore[arg-type]
                        nemeses=["kill-haproxy-vip", "kill-memcached"], report_dir=tmp_path,
                        logs=lambda a, b, d: windows.append((a, b, d)), timing=FAST,
                        make_workloads=lambda i: [FakeWorkload(lab)])
    assert code == 0 and windows == []
    data = json.loads((tmp_path / "campaign.json").read_text())
    assert data["ran"] == 2 and data["ok"] and {r["nemesis"] for r in data["summary"]} == {
        "kill-haproxy-vip", "kill-memcached"}
    assert "every cycle kept every promise" in (tmp_path / "index.html").read_text()

    lab = FakeLab(polls_to_heal=10**6)
    monkeypatch.setattr(cli, "SCENARIOS", tuple(quick(s.name, healthy_timeout_s=0.2) for s in SCENARIOS))
    code = campaign_cli(seed_topo, None, lab.bindings(), cycles=2, seed=5,  # type: ignore[arg-type]
                        nemeses=["kill-memcached"], report_dir=tmp_path / "bad",
                        logs=lambda a, b, d: windows.append((a, b, d)), timing=FAST,
                        make_workloads=lambda i: [FakeWorkload(lab)])
    assert code == cli.EXIT_RUN_ERROR
    assert [d.name for _, _, d in windows] == ["cycle1-logs"] and windows[0][0] < windows[0][1]
    page = (tmp_path / "bad" / "index.html").read_text()
    assert "stopped at a failed cycle" in page and 'href="kill-memcached-cycle1-run1.html"' in page
    raw = json.loads(gzip.decompress((tmp_path / "bad" / "kill-memcached-cycle1-run1.json.gz").read_bytes()))
    assert raw["recording"]["samples"] and not (tmp_path / "bad" / "kill-memcached-cycle1-run1.json").exists()


def test_the_campaign_page_escapes_what_it_shows() -> None:
    cycle = cp.Cycle(0, "<b>", "ctl-1", 0.0, 1.0, {"heal_to_healthy_s": 1.0}, violations=("<script>",))
    data = cp.Campaign(1, ("<b>",), (cycle,)).to_json()
    page = report.campaign_page(data, "t", {})
    assert "<script>" not in page and "&lt;script&gt;" in page

