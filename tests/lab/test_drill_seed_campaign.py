"""Lab tier: a short fault campaign on the seed lab (3 cycles, fixed seed): a killed keepalived on the
VIP holder, a frozen MariaDB on the Galera writer, and the network nodes partitioned from each other
while both stay up (fencing must settle it). Every cycle must lose nothing and show no split brain;
the long campaigns are evidence in docs/reliability/, run by `hastack campaign`, not by CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seedlab import hastack

pytestmark = pytest.mark.lab

NEMESES = ("kill-keepalived-vip", "stop-galera-writer", "partition-network-nodes")


def test_a_short_campaign_loses_nothing_and_splits_nothing(seed_lab: Path, tmp_path: Path) -> None:
    args = [a for n in NEMESES for a in ("--nemesis", n)]
    res = hastack("campaign", "-t", str(seed_lab), "--cycles", "3", "--seed", "2026", *args,
                  "--report", str(tmp_path), timeout=1800)
    print(res.stdout, res.stderr)
    data = json.loads((tmp_path / "campaign.json").read_text())
    assert [c["nemesis"] for c in data["cycles"]] == data["planned"] and set(data["planned"]) == set(NEMESES), \
        res.stdout + res.stderr
    for c in data["cycles"]:
        f = c["figures"]
        assert f["db_acked"] > 0 and f["db_lost"] == 0, c
        assert f["messages_confirmed"] > 0 and f["messages_lost"] == 0, c
        assert f["split_brain_samples"] == 0, c
    assert res.returncode == 0 and data["ok"], res.stdout + res.stderr
    assert "every cycle kept every promise" in (tmp_path / "index.html").read_text()
