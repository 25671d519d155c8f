"""What `hastack drill` and `hastack bench` call: plain functions the CLI wires in (no typer here).

    drill(topo, secrets, bindings, "power-off-vip-writer", repeat=3, report_dir=Path("reports"), out=console)
    bench(topo, secrets, bindings_for, deploy, ["power-off-vip-writer"], repeat=1, report_dir=..., out=console)
    scenarios_table(out)                      # `hastack drill --list`
    demo_report(Path("/tmp/r"))               # a made-up run, to look at the report without a lab

Exit codes, worst first: 4 something was lost (an acknowledged write or a confirmed message missing,
or a split-brain sample), 3 a run went wrong (the lab did not heal, a workload or the watcher failed),
2 the drill could not start (lab not healthy, no valid target, a workload could not prepare), 1 a
timing target missed, 0 every target met. Scripts and tests can then accept "slower than the target"
without accepting "did not heal" or "lost data".

The lab side plugs in through `Bindings` (see runner.py): `LabFaults(lab)` adapts `hastack.lab.Lab`
to `FaultApi`; `lab_queue_leader(lab, topo)` finds the test queue's leader; the watcher's observe
callable and the status callable come from the lab and status packages.
"""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from secrets import token_hex
from typing import Protocol

from rich.console import Console
from rich.table import Table

from hastack import pki
from hastack.components import haproxy
from hastack.drills import demo, profiles, report
from hastack.drills.campaign import NEMESES, Campaign, Cycle, run_campaign, schedule, summary
from hastack.drills.observe import Completed, LabObserver, LabRun, lab_fact
from hastack.drills.runner import Bindings, DrillAborted, DrillRun, DrillSeries, Status, Timing, run_series
from hastack.drills.scenarios import SCENARIOS, by_name
from hastack.drills.scoring import BenchRow, Stat, Verdict, bench_rows, judge
from hastack.drills.workloads import (
    RABBIT_QUEUE,
    RABBIT_VHOST,
    Credentials,
    Endpoints,
    Observe,
    Rates,
    Workload,
    rpc,
    standard,
)
from hastack.drills.workloads.cut import ClientCut, cut_argv
from hastack.facts.rabbitmq import queues
from hastack.secrets import Secrets
from hastack.topology.model import Topology

EXIT_OK, EXIT_MISSED, EXIT_ABORTED, EXIT_RUN_ERROR, EXIT_LOST = 0, 1, 2, 3, 4
SAFETY_FIGURES = frozenset({"db_lost", "messages_lost", "rpc_casts_lost", "split_brain_samples"})


def outcome(missed: Sequence[str], run_errors: bool) -> int:
    """The exit code for the figures whose target was missed and whether any run reported errors."""
    if SAFETY_FIGURES.intersection(missed):
        return EXIT_LOST
    if run_errors:
        return EXIT_RUN_ERROR
    return EXIT_MISSED if missed else EXIT_OK
DEFAULT_TIMING, DEFAULT_RATES = Timing(), Rates()


# -- the lab adapter -------------------------------------------------------------------------------------

class LabLike(LabRun, Protocol):
    """The part of hastack.lab.Lab that drills use (`run` and `address` come from LabRun)."""

    def power(self, name: str, action: str) -> str: ...
    def cut(self, name: str, peers: list[str] | None = None) -> None: ...
    def heal(self, name: str, peers: list[str] | None = None) -> None: ...
    def freeze(self, name: str) -> None: ...
    def thaw(self, name: str) -> None: ...
    def kill_service(self, name: str, unit: str, signal: str = "KILL", whom: str = "all") -> Completed: ...


class LabFaults:
    """`FaultApi` over the lab: `start_service` added, a failed systemctl raised instead of ignored."""

    def __init__(self, lab: LabLike, recover: Callable[[], object] | None = None) -> None:
        self.lab = lab
        self._recover = recover

    def power(self, node: str, action: str, /) -> object:
        return self.lab.power(node, action)

    def cut(self, node: str, peers: Sequence[str] | None = None, /) -> object:
        self.lab.cut(node, list(peers) if peers is not None else None)
        return None

    def heal(self, node: str, /) -> object:
        self.lab.heal(node)
        return None

    def freeze(self, node: str, /) -> object:
        self.lab.freeze(node)
        return None

    def thaw(self, node: str, /) -> object:
        self.lab.thaw(node)
        return None

    def kill_service(self, node: str, unit: str, signal: str, whom: str = "all", /) -> object:
        return _checked(self.lab.kill_service(node, unit, signal, whom), f"kill {unit} on {node}")

    def start_service(self, node: str, unit: str, /) -> object:
        return _checked(self.lab.run(node, ["systemctl", "start", unit], timeout=180), f"start {unit} on {node}")

    def recover(self, /) -> object:
        if self._recover is None:
            raise RuntimeError("this lab binding cannot run hastack recover")
        return self._recover()


def _checked(res: Completed, what: str) -> Completed:
    if res.returncode != 0:
        raise RuntimeError(f"{what}: exit {res.returncode}: {res.stderr.strip()[-300:]}")
    return res


def lab_queue_leader(lab: LabLike, topo: Topology, vhost: str = RABBIT_VHOST,
                     queue: str = RABBIT_QUEUE) -> Callable[[], str | None]:
    """The node leading the drills' queue (`rabbit@ctl-1` -> `ctl-1`), or None when it is missing or
    has no leader. Asks each broker in turn (the first may be the one that is down), through the
    queues fact (`facts.rabbitmq`), as status does."""
    fact = queues(vhost)

    def leader() -> str | None:
        for n in topo.brokers:
            try:
                listed = lab_fact(lab, n.name, fact, timeout=30)
            except Exception:  # a node off or hung, output that is not a queue list: ask the next
                continue
            if listed.available:
                leader = next((q.leader for q in listed.queues if q.name == queue), "")
                return leader.split("@", 1)[-1] or None
        return None

    return leader


def lab_bindings(lab: LabLike, topo: Topology, secrets: Secrets, status: Status,
                 cuts: Callable[[], Iterable[Iterable[str]]], observe: Observe | None = None,
                 recover: Callable[[], object] | None = None) -> Bindings:
    """Everything a drill needs, from a lab: its faults, the reference observer (unless the lab brings a
    better one), the test queue's leader. `cuts` is the lab's current cut list (`lambda: lab.state.cuts`);
    `status` is `hastack status` as (healthy, summary)."""
    if observe is None:
        if haproxy.STATS_SECRET not in secrets.names():
            raise KeyError(f"secret {haproxy.STATS_SECRET} is missing: deploy the topology first")
        observe = LabObserver(lab, topo, secrets.password(haproxy.STATS_SECRET), cuts, ca_pem=pki.ca_cert(secrets))
    return Bindings(LabFaults(lab, recover), observe, status, tuple(n.name for n in topo.controllers),
                    tuple(n.name for n in topo.network_nodes), lab_queue_leader(lab, topo))


# -- drill -----------------------------------------------------------------------------------------------

def workloads_for(topo: Topology, secrets: Secrets, rates: Rates = DEFAULT_RATES) -> Callable[[int], list[Workload]]:
    """Fresh workloads per run, each run with its own id prefix: ids stay unique across runs, series
    and invocations (the drill table and queue outlive a run). At most 64 characters (the `run` column)."""
    ep, creds = Endpoints.from_topology(topo, pki.ca_cert(secrets)), Credentials.from_secrets(secrets)
    prefix = f"{topo.name[:24]}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{token_hex(3)}"
    counter = itertools.count()

    options = rpc.options_for(topo)

    cut = cut_argv(topo)

    def make(_: int) -> list[Workload]:
        return [*standard(ep, creds, f"{prefix}-{next(counter)}", rates, options), *([ClientCut(cut)] if cut else [])]

    return make


MakeWorkloads = Callable[[int], Sequence[Workload]]


def drill(topo: Topology, secrets: Secrets, bindings: Bindings, scenario: str, *, repeat: int = 1,
          report_dir: Path | None = None, out: Console | None = None, timing: Timing = DEFAULT_TIMING,
          rates: Rates = DEFAULT_RATES, make_workloads: MakeWorkloads | None = None,
          hold_s: float | None = None, heal_when: Path | None = None) -> int:
    """Run one scenario `repeat` times, print min/median/max against the targets, write the report.
    `hold_s` replaces the scenario's own time between the fault and the heal; `heal_when` ends it
    early (Scenario.heal_when)."""
    con = out or Console()
    make = make_workloads or workloads_for(topo, secrets, rates)
    series = _series(bindings, scenario, repeat, report_dir, con, timing, make, "", hold_s, heal_when)
    if series is None:
        return EXIT_ABORTED
    verdicts = judge(series.stats, series.scenario.tags)
    con.print(series_table(series, verdicts))
    missed = [v.target.figure for v in verdicts if v.passed is False]
    return outcome(missed, any(r.errors for r in series.runs))


def _series(bindings: Bindings, name: str, repeat: int, report_dir: Path | None, con: Console, timing: Timing,
            make: MakeWorkloads, label: str, hold_s: float | None = None,
            heal_when: Path | None = None) -> DrillSeries | None:
    scenario = by_name(name)
    if hold_s is not None:
        scenario = dataclasses.replace(scenario, hold_s=hold_s)
    if heal_when is not None:
        scenario = dataclasses.replace(scenario, heal_when=str(heal_when))
    try:
        series = run_series(scenario, bindings, make, repeat, timing=timing,
                            say=lambda s: con.print(f"  {s}", highlight=False, markup=False))
    except DrillAborted as exc:
        con.print(f"error: {exc}", style="red", markup=False, highlight=False)
        return None
    for r in series.runs:
        for e in r.errors:
            con.print(f"  run {r.index + 1}: [{e.code}] {e.message}", style="yellow", markup=False, highlight=False)
    if report_dir is not None:
        paths = report.write_series(series, report_dir, label)
        con.print(f"  report: {', '.join(str(p) for p in paths if p.suffix == '.html')}", highlight=False)
    return series


def _num(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if unit == "s" else f"{v:g}"


def _stat(st: Stat | None, unit: str) -> str:
    if st is None or st.n == 0:
        return "-"
    if st.runs == 1:
        return _num(st.median, unit)
    return f"{_num(st.median, unit)} [{_num(st.min, unit)}-{_num(st.max, unit)}]" + (
        f" ({st.runs - st.n} n/a)" if st.n < st.runs else "")


def _verdict(passed: bool | None) -> str:
    return {True: "[green]met[/]", False: "[red]missed[/]", None: "[dim]n/a[/]"}[passed]


def series_table(series: DrillSeries, verdicts: Sequence[Verdict]) -> Table:
    t = Table("figure", "median [min-max]", "target", "verdict (worst run)",
              title=f"{series.scenario.name}: {len(series.runs)} run(s)")
    for v in (v for v in verdicts if v.target.listed(series.scenario.tags)):
        st = series.stats.get(v.target.figure)
        t.add_row(v.target.label, _stat(st, v.target.unit), f"<= {_num(v.target.limit, v.target.unit)} {v.target.unit}",
                  _verdict(v.passed))
    return t


# -- bench -----------------------------------------------------------------------------------------------

def bench(topo: Topology, secrets: Secrets, bindings_for: Callable[[Topology], Bindings],
          deploy: Callable[[Topology], None], scenarios: Sequence[str], *, repeat: int = 1,
          report_dir: Path | None = None, out: Console | None = None, timing: Timing = DEFAULT_TIMING,
          rates: Rates = DEFAULT_RATES, make_workloads: MakeWorkloads | None = None) -> int:
    """Every scenario under the `reference` tuning, then under hastack's (so the lab ends deployed as
    its topology says); `deploy(topology)` must bring the lab to that tuning and return when healthy."""
    con = out or Console()
    results: dict[str, dict[str, DrillSeries]] = {"reference": {}, "hastack": {}}
    for label in ("reference", "hastack"):
        tuned = profiles.PROFILES[label](topo)
        changes = profiles.differences(topo, tuned)
        con.print(f"[bold]{label}[/] profile: " + (", ".join(f"{k}={b}" for k, _, b in changes) or "as written"))
        deploy(tuned)
        make = make_workloads or workloads_for(tuned, secrets, rates)
        for name in scenarios:
            series = _series(bindings_for(tuned), name, repeat, report_dir, con, timing, make, label)
            if series is None:
                return EXIT_ABORTED
            results[label][name] = series
    rows = {name: bench_rows(results["hastack"][name].stats, results["reference"][name].stats,
                             by_name(name).tags) for name in scenarios}
    for name in scenarios:
        con.print(bench_table(name, [r for r in rows[name] if r.target.listed(by_name(name).tags)]))
    if report_dir is not None:
        report.dump(report.bench_json(rows), report_dir / "bench.json")
    missed = [r.target.figure for rs in rows.values() for r in rs if r.passed is False]
    errors = any(r.errors for by_label in results.values() for series in by_label.values() for r in series.runs)
    return outcome(missed, errors)


def bench_table(scenario: str, rows: Sequence[BenchRow]) -> Table:
    t = Table("figure", "target", "hastack", "reference", "ratio ref/hastack", "hastack verdict", title=scenario)
    for r in rows:
        u = r.target.unit
        ratio = "-" if r.ratio is None else ("inf" if r.ratio == float("inf") else f"{r.ratio:.1f}x")
        t.add_row(r.target.label, f"<= {_num(r.target.limit, u)} {u}", _stat(r.hastack, u), _stat(r.reference, u),
                  ratio, _verdict(r.passed))
    return t


# -- campaign --------------------------------------------------------------------------------------------

Logs = Callable[[float, float, Path], None]
"""(wall-clock start, end, directory): keep every node's daemon logs of that window and its cluster state."""


def campaign(topo: Topology, secrets: Secrets, bindings: Bindings, *, cycles: int, seed: int,
             nemeses: Sequence[str] = NEMESES, report_dir: Path, logs: Logs | None = None,
             out: Console | None = None, timing: Timing = DEFAULT_TIMING, rates: Rates = DEFAULT_RATES,
             make_workloads: MakeWorkloads | None = None) -> int:
    """`hastack campaign`: cycles of drills drawn from the nemeses; campaign.json and index.html in
    `report_dir` are rewritten after every cycle (an interrupted campaign keeps its evidence), and a
    failed cycle leaves its full recording, timeline and the daemons' logs beside them."""
    con = out or Console()
    make = make_workloads or workloads_for(topo, secrets, rates)
    planned = tuple(schedule(nemeses, cycles, seed))
    done: list[Cycle] = []
    timelines: dict[int, str] = {}
    title = f"hastack campaign: {topo.name}, {cycles} cycles"

    def keep(cycle: Cycle, run: DrillRun | None) -> None:
        done.append(cycle)
        if not cycle.ok:
            if run is not None:  # every raw sample of a long cycle is megabytes of JSON: kept gzipped
                raw, page = report.write_run(run, report_dir, f"cycle{cycle.index + 1}")
                raw.with_name(raw.name + ".gz").write_bytes(gzip.compress(raw.read_bytes()))
                raw.unlink()
                timelines[cycle.index] = page.name
            if logs is not None:
                logs(cycle.started_wall - 10, cycle.started_wall + cycle.seconds + 5,
                     report_dir / f"cycle{cycle.index + 1}-logs")
        data = Campaign(seed, planned, tuple(done)).to_json()
        report.dump(data, report_dir / "campaign.json")
        (report_dir / "index.html").write_text(report.campaign_page(data, title, timelines))
        f = cycle.figures
        con.print(f"  cycle {cycle.index + 1}: {cycle.nemesis} on {cycle.target or '-'}: "
                  f"{'ok' if cycle.ok else 'FAILED'}, heal {_num(_float(f.get('heal_to_healthy_s')), 's')} s, "
                  f"{f.get('db_acked', 0)} writes, {f.get('messages_confirmed', 0)} messages", highlight=False,
                  markup=False)

    result = run_campaign({s.name: s for s in SCENARIOS}, bindings, make, cycles=cycles, seed=seed,
                          nemeses=nemeses, keep=keep, timing=timing,
                          say=lambda s: con.print(f"  {s}", highlight=False, markup=False))
    con.print(campaign_table(result))
    con.print(f"  report: {report_dir / 'index.html'}", highlight=False)
    return campaign_outcome(result)


def campaign_outcome(result: Campaign) -> int:
    """The campaign's exit code, from its first failed cycle: the drills' codes, with any safety figure
    (SAFETY_FIGURES, RPC casts included) above 0 or unreadable writes meaning something was lost."""
    bad = result.first_failure()
    if bad is None:
        return EXIT_OK
    if bad.aborted:
        return EXIT_ABORTED
    if any(bad.figures.get(k) for k in SAFETY_FIGURES) or bad.figures.get("db_lost", 0) is None:
        return EXIT_LOST
    return EXIT_RUN_ERROR


def _float(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) else None


def campaign_table(result: Campaign) -> Table:
    t = Table("nemesis", "cycles", "lost writes", "lost messages", "duplicates", "split-brain samples",
              "heal median", "heal worst", "failed", title=f"campaign, seed {result.seed}: {len(result.cycles)} of "
              f"{len(result.planned)} cycles")
    for r in summary(result.cycles):
        t.add_row(r.nemesis, str(r.cycles), f"{r.lost_writes:g}", f"{r.lost_messages:g}", f"{r.duplicates:g}",
                  f"{r.split_brain:g}", _num(r.heal_median_s, "s"), _num(r.heal_worst_s, "s"),
                  f"[red]{r.violations}[/]" if r.violations else "0")
    return t


# -- listing and demo ------------------------------------------------------------------------------------

def scenarios_table() -> Table:
    t = Table("scenario", "what", "target", "hold", "tags")
    for s in SCENARIOS:
        t.add_row(s.name, s.title, s.target, f"{s.hold_s:g} s", ", ".join(s.tags))
    return t


def demo_report(directory: Path) -> list[Path]:
    """Write the report of a made-up run (clearly labelled as such) to look at the format."""
    return list(report.write_run(demo.run(split=True), directory, "demo"))
