"""Lab tier: one short drill in CI (power off the controller holding the VIP and the Galera writer)
under every workload. Correctness is asserted (nothing acknowledged is lost, no split brain); the
timings are benchmark figures, reported by `hastack drill`, never asserted here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seedlab import hastack

pytestmark = pytest.mark.lab


def test_power_off_vip_writer_loses_nothing(seed_lab: Path, tmp_path: Path) -> None:
    res = hastack("drill", "power-off-vip-writer", "-t", str(seed_lab), "--report", str(tmp_path), timeout=900)
    print(res.stdout, res.stderr)
    # 1 = timing missed, 3 = a run error: the heal to healthy (212-243 s on 2 cores, 2026-12-04: the
    # returning controller's API cold start) can pass the drill's 300 s bound on a loaded CI host;
    # that is issue 13's figure, reported. 4 = something lost, 2 = could not start: failed.
    assert res.returncode in (0, 1, 3), res.stdout + res.stderr
    runs = [json.loads(p.read_text()) for p in tmp_path.rglob("*.json") if "recording" in p.read_text()[:2000]
            or "scores" in p.read_text()]
    figures = [r["scores"]["figures"] for r in runs if "scores" in r]
    assert figures, f"no run report in {sorted(tmp_path.rglob('*'))}"
    for f in figures:
        assert f["db_acked"] > 0 and f["db_lost"] == 0
        assert f["messages_confirmed"] > 0 and f["messages_lost"] == 0
        assert f["split_brain_samples"] == 0
        assert f["networks_gap_s"] is not None  # the network list ran through the VIP
    assert list(tmp_path.rglob("*.html")), "the timeline picture is missing"
