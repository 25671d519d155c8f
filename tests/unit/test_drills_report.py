"""Reports: strict JSON with every raw sample, and a self-contained HTML timeline with the marks."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

from hastack.drills import demo, report
from hastack.drills.runner import DrillSeries
from hastack.drills.samples import Recording
from hastack.drills.scoring import aggregate, bench_rows, single
from hastack.reports import Report, Severity


def test_run_json_keeps_every_raw_sample_and_the_scores(tmp_path: Path) -> None:
    run = demo.run(split=True)
    j, h = report.write_run(run, tmp_path)
    data = json.loads(j.read_text())
    assert Recording.from_json(data["recording"]) == run.recording
    assert len(data["recording"]["samples"]) == len(run.recording.samples)
    assert data["scores"]["figures"] == run.figures()
    assert data["scores"]["split_brain"]["vip"] == 3
    assert data["target"] == "ctl-1"
    assert data["scenario"]["name"] == "power-off-vip-writer"
    assert {t["figure"]: t["passed"] for t in data["targets"]}["db_gap_s"] is False
    assert h.name == "power-off-vip-writer-run1.html"


def test_json_is_strict_even_with_infinite_ratios(tmp_path: Path) -> None:
    rows = {"s": bench_rows(single({"vip_gap_s": 0.0}), single({"vip_gap_s": 1.0}))}
    path = report.dump(report.bench_json(rows), tmp_path / "bench.json")
    text = path.read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text)["s"][0]["ratio"] == "inf"


def test_html_has_the_marks_the_lanes_and_the_gaps() -> None:
    page = report.html_page(demo.run(split=True))
    for needle in ('class="mark mark-fault"', 'class="mark mark-heal"', 'class="mark mark-healthy"',
                   "fault 5.0 s: power off ctl-1", "heal 25.0 s: power on ctl-1", "healthy 47.0 s",
                   "VIP holder", "Galera writer", "agent group", "Keystone token", "DB insert", "AMQP publish",
                   "gap 3.45 s", 'url(#run-split)', "around the fault"):
        assert needle in page, needle
    assert page.count("<svg") == 2


def test_html_is_self_contained() -> None:
    page = report.html_page(demo.run())
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=""", page)
    assert "@import" not in page and "url(http" not in page
    # The only URL is the SVG namespace, which no browser fetches.
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}


def test_each_svg_is_well_formed_xml_with_unique_ids() -> None:
    page = report.html_page(demo.run(split=True))
    svgs = re.findall(r"<svg.*?</svg>", page, re.S)
    ids: list[str] = []
    for svg in svgs:
        root = ET.fromstring(svg)
        ids += [el.attrib["id"] for el in root.iter() if "id" in el.attrib]
    assert ids and len(ids) == len(set(ids))


def test_text_from_the_lab_is_escaped() -> None:
    run = demo.run()
    rec = run.recording
    events = tuple(replace(e, text="<b>&'\"") if e.kind == "fault" else e for e in rec.events)
    bad = Report("DRILL-VERIFY-FAILED", Severity.ERROR, "<script>x</script>")
    run = replace(run, recording=replace(rec, events=events), errors=(bad,))
    page = report.html_page(run)
    assert "<b>&'" not in page and "<script>" not in page
    assert "&lt;b&gt;&amp;" in page


def test_series_and_summary_files(tmp_path: Path) -> None:
    runs = (demo.run(), replace(demo.run(split=True), index=1))
    series = DrillSeries(runs[0].scenario, runs, aggregate([r.figures() for r in runs]))
    paths = report.write_series(series, tmp_path, "reference")
    names = sorted(p.name for p in paths)
    assert "power-off-vip-writer-reference-summary.json" in names
    assert [n for n in names if n.endswith(".html")] == ["power-off-vip-writer-reference-run1.html",
                                                          "power-off-vip-writer-reference-run2.html"]
    summary = json.loads((tmp_path / "power-off-vip-writer-reference-summary.json").read_text())
    assert summary["runs"] == 2
    assert summary["stats"]["split_brain_samples"]["max"] == 3
    assert summary["stats"]["split_brain_samples"]["min"] == 0
