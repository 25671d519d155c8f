"""Drill reports: JSON with every raw sample and the scores, and one self-contained HTML page per
run with an inline SVG timeline (no script, no font or stylesheet from the network).

The timeline reads top to bottom: the five workloads (green where operations succeed, red where
they fail, amber where the client stalled, the longest gap outlined and labelled), then the status
polls, then who held the VIP, which node was the Galera writer and where the agent group ran (one
colour per node, hatched red when two nodes held it at once). Vertical marks show the fault, the
heal and the moment `status` turned healthy; the fault window is tinted.
"""

from __future__ import annotations

import datetime
import html
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hastack.drills.runner import DrillRun, DrillSeries
from hastack.drills.samples import SKIPPED, STREAMS, Event, Placement, Recording, Sample
from hastack.drills.scoring import TARGETS, BenchRow, Gap, Scores, Target, Verdict, judge, single

WIDTH, LABEL_W, RIGHT_PAD = 1200, 150, 24
PLOT_W = WIDTH - LABEL_W - RIGHT_PAD
LANE_H, LANE_GAP, SECTION_H, MARK_ROWS = 24, 6, 26, 3
OK, FAIL, STALL, GAP_INK = "#3a9d5d", "#d64545", "#e0a030", "#1f2933"
NODE_COLOURS = ("#4e79a7", "#f28e2b", "#76b7b2", "#b07aa1", "#9c755f", "#edc948", "#59a1c9", "#8c8c8c")
STREAM_LABELS = {"vip": "VIP connect", "keystone": "Keystone token",
                 "networks": "network list", "db": "DB insert",
                 "publish": "AMQP publish", "consume": "AMQP consume",
                 "rpc_call": "RPC call (worst client)", "rpc_cast": "RPC cast (worst client)"}
MARK_COLOURS = {"fault": FAIL, "heal": OK, "healthy": "#2f6fb5"}


# -- JSON ------------------------------------------------------------------------------------------------

def _plain(obj: Any) -> Any:
    """Dataclasses to dicts, tuples to lists, infinities to strings: strict JSON, no NaN."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if hasattr(obj, "__dataclass_fields__"):
        return _plain(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def scores_json(s: Scores) -> dict[str, Any]:
    return {"figures": s.figures(), "gaps": _plain(s.gaps), "heal_gaps": _plain(s.heal_gaps),
            "failures": _plain(s.failures), "writes": _plain(s.writes), "messages": _plain(s.messages),
            "split_brain": {**_plain(s.split), "total": s.split.total}, "vip": _plain(s.vip),
            "agents": _plain(s.agents), "heal_to_healthy_s": s.heal_to_healthy_s, "window": _plain(s.window)}


def run_json(run: DrillRun) -> dict[str, Any]:
    verdicts = judge(single(run.figures()), run.scenario.tags)
    return {"scenario": _plain(run.scenario), "run": run.index, "target": run.target,
            "errors": [e.to_json() for e in run.errors], "scores": scores_json(run.scores),
            "targets": [_verdict_json(v) for v in verdicts], "recording": run.recording.to_json()}


def _verdict_json(v: Verdict) -> dict[str, Any]:
    return {"figure": v.target.figure, "label": v.target.label, "limit": v.target.limit,
            "value": v.value, "passed": v.passed}


def series_json(series: DrillSeries) -> dict[str, Any]:
    return {"scenario": _plain(series.scenario), "runs": len(series.runs), "stats": _plain(series.stats),
            "targets": [_verdict_json(v) for v in judge(series.stats, series.scenario.tags)],
            "errors": {r.index: [e.to_json() for e in r.errors] for r in series.runs if r.errors}}


def bench_json(rows: dict[str, list[BenchRow]]) -> dict[str, Any]:
    return {name: [{"figure": r.target.figure, "label": r.target.label, "limit": r.target.limit,
                    "hastack": _plain(r.hastack), "reference": _plain(r.reference), "ratio": _plain(r.ratio),
                    "passed": r.passed} for r in rs] for name, rs in rows.items()}


def dump(data: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_plain(data), indent=1, allow_nan=False) + "\n")
    return path


def write_run(run: DrillRun, directory: Path, label: str = "") -> tuple[Path, Path]:
    stem = f"{run.scenario.name}{'-' + label if label else ''}-run{run.index + 1}"
    j = dump(run_json(run), directory / f"{stem}.json")
    h = directory / f"{stem}.html"
    h.write_text(html_page(run, label))
    return j, h


def write_series(series: DrillSeries, directory: Path, label: str = "") -> list[Path]:
    paths = [p for r in series.runs for p in write_run(r, directory, label)]
    stem = f"{series.scenario.name}{'-' + label if label else ''}-summary.json"
    return [*paths, dump(series_json(series), directory / stem)]


# -- SVG primitives --------------------------------------------------------------------------------------

def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _f(x: float) -> str:
    return f"{x:.1f}"


class Scale:
    def __init__(self, t0: float, t1: float) -> None:
        self.t0, self.t1 = t0, max(t1, t0 + 1e-3)

    def x(self, t: float) -> float:
        return LABEL_W + (min(max(t, self.t0), self.t1) - self.t0) / (self.t1 - self.t0) * PLOT_W

    def px(self) -> float:
        """Seconds per pixel."""
        return (self.t1 - self.t0) / PLOT_W


def _rect(x0: float, x1: float, y: float, h: float, fill: str, extra: str = "") -> str:
    return (f'<rect x="{_f(x0)}" y="{_f(y)}" width="{_f(max(x1 - x0, 1.0))}" height="{_f(h)}" '
            f'fill="{fill}"{extra}/>')


def _text(x: float, y: float, text: str, cls: str = "", anchor: str = "start") -> str:
    return f'<text x="{_f(x)}" y="{_f(y)}" class="{cls}" text-anchor="{anchor}">{_e(text)}</text>'


def runs_of(times: Sequence[float], join: float) -> list[tuple[float, float]]:
    """Group sorted instants into [first, last] runs whose neighbours are closer than `join`."""
    out: list[tuple[float, float]] = []
    for t in times:
        if out and t - out[-1][1] <= join:
            out[-1] = (out[-1][0], t)
        else:
            out.append((t, t))
    return out


def axis(scale: Scale, y: float, height: float) -> list[str]:
    span = scale.t1 - scale.t0
    step = next(s for s in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1e9) if span / s <= 14)
    out = []
    k = math.ceil(scale.t0 / step)
    while k * step <= scale.t1 + 1e-9:
        x = scale.x(k * step)
        out.append(f'<line x1="{_f(x)}" y1="{_f(y)}" x2="{_f(x)}" y2="{_f(y + height)}" class="grid"/>')
        out.append(_text(x, y + height + 14, f"{k * step:g} s", "tick", "middle"))
        k += 1
    return out


# -- lanes -----------------------------------------------------------------------------------------------

def stream_lane(samples: Sequence[Sample], gap: Gap | None, scale: Scale, y: float,
                target: Target | None) -> list[str]:
    join = 3 * scale.px()
    shown = [s for s in samples if scale.t0 <= s.t <= scale.t1]
    ok = [s.t for s in shown if s.ok]
    bad = [s.t for s in shown if not s.ok and s.flag != SKIPPED]
    stalled = [s.t for s in shown if not s.ok and s.flag == SKIPPED]
    out = [_rect(LABEL_W, LABEL_W + PLOT_W, y, LANE_H, "#eef1f4")]
    visible = gap is not None and gap.end >= scale.t0 and gap.start <= scale.t1
    if visible and gap is not None:
        out.append(gap_box(gap, scale, y, target))
    out += [_rect(scale.x(a), scale.x(b), y + 5, LANE_H - 10, OK) for a, b in runs_of(ok, join)]
    out += [_rect(scale.x(a), scale.x(b), y + LANE_H - 6, 5, STALL) for a, b in runs_of(stalled, join)]
    out += [_rect(scale.x(a) - 0.5, scale.x(b) + 0.5, y + 3, LANE_H - 6, FAIL) for a, b in runs_of(bad, join)]
    if visible and gap is not None:
        out.append(gap_label(gap, scale, y, target))
    return out


def _over(gap: Gap, target: Target | None) -> bool:
    return target is not None and gap.seconds > target.limit


def gap_box(gap: Gap, scale: Scale, y: float, target: Target | None) -> str:
    x0, x1 = scale.x(gap.start), scale.x(gap.end)
    return (f'<rect x="{_f(x0)}" y="{_f(y)}" width="{_f(max(x1 - x0, 1.5))}" height="{LANE_H}" '
            f'class="gap{" over" if _over(gap, target) else ""}"/>')


def gap_label(gap: Gap, scale: Scale, y: float, target: Target | None) -> str:
    x0, x1 = scale.x(gap.start), scale.x(gap.end)
    label = f"gap {gap.seconds:.2f} s" + ("" if gap.recovered else " (not recovered)")
    anchor, tx = ("end", x0 - 4) if x1 + 7 * len(label) > LABEL_W + PLOT_W else ("start", x1 + 4)
    return _text(tx, y + LANE_H / 2 + 4, label, "gaplabel over" if _over(gap, target) else "gaplabel", anchor)


def _holders(p: Placement, what: str) -> tuple[str, ...] | None:
    if p.error is not None:
        return None
    if what == "writer":
        return (p.writer,) if p.writer else ()
    return p.held(what)


def segments(placements: Sequence[Placement], what: str, end: float) -> list[tuple[float, float, Any]]:
    """Constant stretches of one placement field: (from, to, holders or None for unknown)."""
    out: list[tuple[float, float, Any]] = []
    for i, p in enumerate(placements):
        h = _holders(p, what)
        t_next = placements[i + 1].t if i + 1 < len(placements) else end
        if out and out[-1][2] == h:
            out[-1] = (out[-1][0], t_next, h)
        else:
            out.append((p.t, t_next, h))
    return out


def placement_lane(placements: Sequence[Placement], what: str, scale: Scale, y: float,
                   colours: dict[str, str], ids: str) -> list[str]:
    out = [_rect(LABEL_W, LABEL_W + PLOT_W, y, LANE_H, "#eef1f4")]
    for a, b, h in segments(placements, what, scale.t1):
        if b < scale.t0 or a > scale.t1:
            continue
        x0, x1 = scale.x(a), scale.x(b)
        if h is None:
            fill, label, cls = f"url(#{ids}-unknown)", "?", "seglabel dark"
        elif len(set(h)) >= 2:
            fill, label, cls = f"url(#{ids}-split)", "+".join(h), "seglabel dark"
        elif not h:
            fill, label, cls = f"url(#{ids}-none)", "none", "seglabel dark"
        else:
            fill, label, cls = colours.get(h[0], "#888"), h[0], "seglabel"
        out.append(_rect(x0, x1, y + 2, LANE_H - 4, fill))
        if x1 - x0 > 7 * len(label) + 8:
            out.append(_text((x0 + x1) / 2, y + LANE_H / 2 + 4, label, cls, "middle"))
    return out


def status_lane(rec: Recording, scale: Scale, y: float) -> list[str]:
    out = [_rect(LABEL_W, LABEL_W + PLOT_W, y, LANE_H, "#eef1f4")]
    for e in rec.events:
        if e.kind == "status" and scale.t0 <= e.t <= scale.t1:
            colour = OK if e.ok else FAIL
            out.append(f'<circle cx="{_f(scale.x(e.t))}" cy="{_f(y + LANE_H / 2)}" r="4" fill="{colour}">'
                       f'<title>{_e(e.text)}</title></circle>')
    return out


def marked(rec: Recording, scale: Scale) -> list[Event]:
    """The fault and heal marks, and the first healthy poll, that fall inside the scale."""
    healthy = rec.first_event("healthy")
    return [e for e in rec.events if e.kind in MARK_COLOURS and (e.kind != "healthy" or e is healthy)
            and scale.t0 <= e.t <= scale.t1]


def marks(rec: Recording, scale: Scale, top: float, bottom: float) -> list[str]:
    start = rec.first_event("start")
    origin = start.t if start else 0.0
    shown = marked(rec, scale)
    rows = max(1, min(MARK_ROWS, len(shown)))
    out = []
    for row, e in enumerate(shown):
        x, colour = scale.x(e.t), MARK_COLOURS[e.kind]
        out.append(f'<line x1="{_f(x)}" y1="{_f(top)}" x2="{_f(x)}" y2="{_f(bottom)}" stroke="{colour}" '
                   f'class="mark mark-{e.kind}"/>')
        label = f"{e.kind} {e.t - origin:.1f} s" + (f": {e.text}" if e.text and e.kind != "healthy" else "")
        ly = top - 6 - (rows - 1 - row % rows) * 15
        anchor, lx = ("end", x - 4) if x + 7 * len(label) > WIDTH else ("start", x + 4)
        out.append(_text(lx, ly, label, f"marklabel mark-{e.kind}", anchor))
    return out


def tint(rec: Recording, scale: Scale, top: float, bottom: float) -> list[str]:
    fault, heal, healthy = (rec.first_event(k) for k in ("fault", "heal", "healthy"))
    out = []
    if fault is not None:
        end = heal.t if heal is not None else scale.t1
        out.append(_rect(scale.x(fault.t), scale.x(end), top, bottom - top, "rgba(214,69,69,0.08)"))
    if heal is not None:
        end = healthy.t if healthy is not None else scale.t1
        out.append(_rect(scale.x(heal.t), scale.x(end), top, bottom - top, "rgba(224,160,48,0.09)"))
    return out


DEFS = """<defs>
 <pattern id="P-split" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
  <rect width="8" height="8" fill="#f6c9c9"/><rect width="4" height="8" fill="#d64545"/></pattern>
 <pattern id="P-none" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
  <rect width="6" height="6" fill="#f4f4f4"/><rect width="1.5" height="6" fill="#c3c8ce"/></pattern>
 <pattern id="P-unknown" width="6" height="6" patternUnits="userSpaceOnUse">
  <rect width="6" height="6" fill="#e4e4e4"/><circle cx="3" cy="3" r="1" fill="#999"/></pattern>
</defs>"""


def node_colours(names: Iterable[str]) -> dict[str, str]:
    return {n: NODE_COLOURS[i % len(NODE_COLOURS)] for i, n in enumerate(sorted(set(names)))}


def zoom_range(run: DrillRun) -> tuple[float, float] | None:
    """Around the fault: a second before it to a second after the last gap that began there."""
    fault = run.recording.first_event("fault")
    if fault is None:
        return None
    ends = [g.end for g in run.scores.gaps.values() if g is not None and g.start <= fault.t + 1.0]
    t1 = min(max([fault.t + 5.0, *(e + 1.0 for e in ends)]), run.recording.end())
    return fault.t - 1.0, t1


def timeline_svg(run: DrillRun, span: tuple[float, float] | None = None) -> str:
    rec, scores = run.recording, run.scores
    start = rec.first_event("start")
    scale = Scale(*(span or (start.t if start else 0.0, rec.end())))
    ids = "zoom" if span else "run"
    targets = {t.figure: t for t in TARGETS}
    top = 24 + max(1, min(MARK_ROWS, len(marked(rec, scale)))) * 15
    y, body = top, []
    lanes: list[tuple[str, float]] = []

    def section(title: str) -> None:
        nonlocal y
        body.append(_text(8, y + 17, title, "section"))
        y += SECTION_H

    section("workloads")
    for s in STREAMS:
        samples = rec.stream(s)
        if not samples:
            continue
        body += stream_lane(samples, scores.gaps.get(s), scale, y, targets.get(f"{s}_gap_s"))
        lanes.append((STREAM_LABELS[s], y))
        y += LANE_H + LANE_GAP
    section("cluster")
    body += status_lane(rec, scale, y)
    lanes.append(("status", y))
    y += LANE_H + LANE_GAP
    names = [n for p in rec.placements for n in (*p.vip, *p.agents, *([p.writer] if p.writer else []))]
    colours = node_colours(names)
    lanes_shown = [("vip", "VIP holder"), ("writer", "Galera writer"), ("agents", "agent group")]
    # The tenant's data plane, where the lab showed one (a topology with Neutron).
    lanes_shown += [(what, label) for what, label in (("routers", "router gateway"), ("dhcp", "DHCP server"))
                    if any(p.held(what) for p in rec.placements)]
    for what, label in lanes_shown:
        body += placement_lane(rec.placements, what, scale, y, colours, ids)
        lanes.append((label, y))
        y += LANE_H + LANE_GAP
    bottom = y
    parts = [DEFS.replace('id="P-', f'id="{ids}-'), *tint(rec, scale, top - 4, bottom),
             *axis(scale, top - 4, bottom - top + 4), *body,
             *(_text(LABEL_W - 10, ly + LANE_H / 2 + 4, name, "lane", "end") for name, ly in lanes),
             *marks(rec, scale, top - 4, bottom)]
    height = bottom + 26
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
            f'height="{height}" role="img" aria-label="drill timeline">' + "\n".join(parts) + "</svg>")


# -- the page --------------------------------------------------------------------------------------------

CSS = """
body{font-family:"DejaVu Sans",system-ui,sans-serif;margin:24px 32px;color:#1f2933;background:#fafbfc}
h1{font-size:22px;margin:0 0 4px} h2{font-size:14px;margin:0 0 6px;color:#323f4b}
.sub{color:#52606d;margin:0 0 18px;font-size:13px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px;margin:0 0 18px}
.card{background:#fff;border:1px solid #dde2e8;border-left:5px solid #9aa5b1;border-radius:6px;padding:8px 12px}
.card.pass{border-left-color:#3a9d5d} .card.fail{border-left-color:#d64545}
.card .v{font-size:22px;font-weight:bold} .card .l{font-size:12px;color:#52606d} .card .t{font-size:11px;color:#7b8794}
.panel{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:12px;margin:0 0 18px;overflow-x:auto}
svg text{font-family:"DejaVu Sans",system-ui,sans-serif}
.section{font-size:12px;font-weight:bold;fill:#52606d;text-transform:uppercase;letter-spacing:.06em}
.lane{font-size:12px;fill:#323f4b} .tick{font-size:10px;fill:#7b8794} .grid{stroke:#e4e7eb;stroke-width:1}
.mark{stroke-width:2;stroke-dasharray:5 3} .marklabel{font-size:11px;font-weight:bold}
.mark-fault{fill:#d64545} .mark-heal{fill:#2e7d4a} .mark-healthy{fill:#2f6fb5}
.gap{fill:rgba(31,41,51,.10);stroke:#1f2933;stroke-width:1.2;stroke-dasharray:3 2}
.gap.over{fill:rgba(214,69,69,.14);stroke:#b02a2a}
.gaplabel,.marklabel{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
.gaplabel{font-size:11px;fill:#1f2933;font-weight:bold} .gaplabel.over{fill:#b02a2a}
.seglabel{font-size:11px;fill:#fff;font-weight:bold} .seglabel.dark{fill:#323f4b}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{text-align:left;padding:4px 10px;border-bottom:1px solid #e4e7eb}
th{color:#52606d;font-weight:600} td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#2e7d4a;font-weight:bold} .bad{color:#b02a2a;font-weight:bold} .na{color:#9aa5b1}
.legend span{display:inline-block;margin-right:16px;font-size:12px;color:#52606d}
.legend i{display:inline-block;width:14px;height:10px;margin-right:5px;vertical-align:middle;border-radius:2px}
ul.errors{color:#b02a2a;font-size:13px}
"""


def _fmt(v: float | int | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "s":
        return f"{v:.2f} s"
    return f"{v:g}"


def cards(verdicts: Sequence[Verdict]) -> str:
    out = []
    for v in verdicts:
        if v.passed is None:
            continue
        cls = "pass" if v.passed else "fail"
        limit = f"target ≤ {_fmt(v.target.limit, v.target.unit)}"
        out.append(f'<div class="card {cls}"><div class="l">{_e(v.target.label)}</div>'
                   f'<div class="v">{_e(_fmt(v.value, v.target.unit))}</div><div class="t">{_e(limit)}</div></div>')
    return '<div class="cards">' + "".join(out) + "</div>"


def figures_table(run: DrillRun) -> str:
    f = run.figures()
    rows = []
    for s in STREAMS:
        gap = run.scores.gaps.get(s)
        if gap is None and not f.get(f"{s}_failed"):
            continue
        rec = "" if gap is None or gap.recovered else " (not recovered)"
        rows.append((STREAM_LABELS[s], _fmt(gap.seconds if gap else None, "s") + rec,
                     f"{f[f'{s}_failed']} failed, {f[f'{s}_skipped']} skipped"))
    w, m, sb = run.scores.writes, run.scores.messages, run.scores.split
    rows += [
        ("DB writes", f"{w.acked} acknowledged", f"{_fmt(w.lost, '')} lost; missing per node "
         + (", ".join(f"{n}: {k}" for n, k in w.missing.items()) or "-")
         + (f"; unreadable: {', '.join(w.unreadable)}" if w.unreadable else "")),
        ("messages", f"{m.confirmed} confirmed", f"{m.lost} lost, {m.duplicates} duplicated, {m.stale} stale"),
        ("split brain", f"{sb.total} samples", f"VIP {sb.vip}, agents {sb.agents} of {sb.samples}"),
        ("VIP moved", _fmt(run.scores.vip.seconds, "s"), f"{run.scores.vip.before} → {run.scores.vip.after}"),
        ("agents moved", _fmt(run.scores.agents.seconds, "s"),
         f"{run.scores.agents.before} → {run.scores.agents.after}"),
        ("heal to healthy", _fmt(run.scores.heal_to_healthy_s, "s"), ""),
    ]
    body = "".join(f'<tr><td>{_e(a)}</td><td class="num">{_e(b)}</td><td>{_e(c)}</td></tr>' for a, b, c in rows)
    return f"<table><tr><th>figure</th><th>value</th><th>detail</th></tr>{body}</table>"


LEGEND = ('<div class="legend">'
          f'<span><i style="background:{OK}"></i>operation succeeded</span>'
          f'<span><i style="background:{FAIL}"></i>operation failed</span>'
          f'<span><i style="background:{STALL}"></i>client stalled (all workers busy)</span>'
          '<span><i style="background:rgba(31,41,51,.15);border:1px dashed #1f2933"></i>longest gap</span>'
          '<span><i style="background:repeating-linear-gradient(45deg,#d64545 0 3px,#f6c9c9 3px 6px)"></i>'
          'split brain</span>'
          '<span><i style="background:rgba(214,69,69,.15)"></i>fault → heal</span>'
          '<span><i style="background:rgba(224,160,48,.2)"></i>heal → healthy</span></div>')


def html_page(run: DrillRun, label: str = "") -> str:
    verdicts = judge(single(run.figures()), run.scenario.tags)
    zoom = zoom_range(run)
    when = datetime.datetime.fromtimestamp(run.recording.started_wall, datetime.UTC)
    title = f"{run.scenario.name}{' [' + label + ']' if label else ''} - run {run.index + 1}"
    errors = "".join(f"<li>[{_e(e.code)}] {_e(e.message)}</li>" for e in run.errors)
    sub = (f"{run.scenario.title} · target {run.target} · started {when:%Y-%m-%d %H:%M:%S} UTC · "
           f"{len(run.recording.samples)} operations, {len(run.recording.placements)} watcher samples")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title><style>{CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class="sub">{_e(sub)}</p>
{cards(verdicts)}
<div class="panel"><h2>whole run</h2>{timeline_svg(run)}{LEGEND}</div>
{f'<div class="panel"><h2>around the fault</h2>{timeline_svg(run, zoom)}</div>' if zoom else ''}
{f'<div class="panel"><b>errors</b><ul class="errors">{errors}</ul></div>' if errors else ''}
<div class="panel">{figures_table(run)}</div>
</body></html>
"""


# -- campaigns -------------------------------------------------------------------------------------------

def campaign_page(data: dict[str, Any], title: str, timelines: dict[int, str]) -> str:
    """The campaign's summary (data is Campaign.to_json()): the table per nemesis, then every cycle,
    a failed one linked to its timeline page (`timelines`: cycle index -> file name)."""
    def num(v: object, unit: str = "") -> str:
        return "-" if not isinstance(v, int | float) else (f"{v:.1f} {unit}".strip() if unit else f"{v:g}")

    rows = "".join(
        f"<tr><td>{_e(r['nemesis'])}</td><td>{r['cycles']}</td><td>{num(r['lost_writes'])}</td>"
        f"<td>{num(r['lost_messages'])}</td><td>{num(r['duplicates'])}</td><td>{num(r['split_brain'])}</td>"
        f"<td>{num(r['heal_median_s'], 's')}</td><td>{num(r['heal_worst_s'], 's')}</td>"
        f"<td class=\"{'bad' if r['violations'] else ''}\">{r['violations']}</td></tr>" for r in data["summary"])
    cycles = []
    for c in data["cycles"]:
        f = c["figures"]
        link = timelines.get(c["index"])
        why = "; ".join(c["violations"]) or c["aborted"]
        verdict = "ok" if c["ok"] else (f'<a href="{_e(link)}">{_e(why)}</a>' if link else _e(why))
        cycles.append(
            f"<tr><td>{c['index'] + 1}</td><td>{_e(c['nemesis'])}</td><td>{_e(c['target'])}</td>"
            f"<td>{num(f.get('db_gap_s'), 's')}</td><td>{num(f.get('publish_gap_s'), 's')}</td>"
            f"<td>{num(f.get('keystone_gap_s'), 's')}</td><td>{num(f.get('heal_to_healthy_s'), 's')}</td>"
            f"<td>{num(f.get('db_acked'))}</td><td>{num(f.get('messages_confirmed'))}</td>"
            f"<td class=\"{'' if c['ok'] else 'bad'}\">{verdict}</td></tr>")
    failed = any(not c["ok"] for c in data["cycles"])
    verdict = ("every cycle kept every promise" if data["ok"] else "stopped at a failed cycle" if failed
               else "interrupted before its end; every cycle that ran kept every promise")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title><style>{CSS}
td.bad {{ color: {FAIL}; font-weight: bold; }}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class="sub">seed {data['seed']} · {data['ran']} of {len(data['planned'])} planned cycles · {verdict}</p>
<div class="panel"><table><tr><th>nemesis</th><th>cycles</th><th>lost writes</th><th>lost messages</th>
<th>duplicates</th><th>split-brain samples</th><th>heal median</th><th>heal worst</th><th>failed</th></tr>
{rows}</table></div>
<div class="panel"><table><tr><th>#</th><th>nemesis</th><th>target</th><th>DB gap</th><th>publish gap</th>
<th>Keystone gap</th><th>heal</th><th>writes acked</th><th>messages confirmed</th><th>verdict</th></tr>
{''.join(cycles)}</table></div>
</body></html>
"""
