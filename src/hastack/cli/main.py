"""The `hastack` command: parse, call the library, render its reports. No logic lives here."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from hastack.cli import lab as lab_cli
from hastack.reports import Report, ReportError, Severity
from hastack.topology.load import Loaded, load

DEFAULT_TOPOLOGY = Path("examples/seed.yml")

app = typer.Typer(help="Deploy, operate and prove a hybrid HA OpenStack control plane.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
app.add_typer(lab_cli.app, name="lab")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

TopologyArg = Annotated[Path, typer.Argument(help="topology YAML file")]


def print_reports(reports: list[Report], console: Console = err) -> None:
    """Reports are diagnostics beside a command's result, so stderr, unless they are the result."""
    style = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
    for r in sorted(reports, key=lambda r: (-r.severity, r.location.line if r.location else 0)):
        console.print(r.render(), style=style[r.severity], markup=False, highlight=False)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"error: {message}", style="red", markup=False, highlight=False)
    raise typer.Exit(code)


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """A library's ReportError (an unusable secrets file or output directory, ...) is printed like a
    topology's reports, exit 1: never a traceback."""
    try:
        yield
    except ReportError as exc:
        print_reports(exc.reports)
        fail(f"{len(exc.reports)} error(s); stopped")


def load_or_exit(path: Path, *, quiet_ok: bool = False) -> Loaded:
    """Load and validate; on any error print *every* report and exit 1 (never a traceback)."""
    loaded = load(path)
    if not loaded.ok:
        print_reports(loaded.reports)
        n = sum(r.is_error for r in loaded.reports)
        fail(f"{path}: {n} error(s); nothing was changed")
    if not quiet_ok:
        print_reports(loaded.reports)
    return loaded


@app.command()
def validate(topology: TopologyArg = DEFAULT_TOPOLOGY,
             as_json: Annotated[bool, typer.Option("--json", help="reports as JSON")] = False) -> None:
    """Check a topology; report every problem at once with file:line."""
    loaded = load(topology)
    if as_json:
        out.print_json(json.dumps([{"code": r.code, "severity": r.severity.name.lower(), "message": r.message,
                                    "location": str(r.location) if r.location else None, "hint": r.hint}
                                   for r in loaded.reports]))
    else:
        # The reports are this command's result: stdout, with the summary, in one order. Split over
        # two streams, a reader that captured both saw the summary glued to the first warning.
        print_reports(loaded.reports, out)
    if not loaded.ok:
        raise typer.Exit(1)
    t = loaded.topology
    assert t is not None
    if not as_json:
        out.print(f"{topology}: valid - {len(t.controllers)} controllers, {len(t.network_nodes)} network, "
                  f"{len(t.computes)} compute; Galera votes {t.galera_votes}, corosync votes {t.corosync_votes}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the topology file (for editors' completion)."""
    from hastack.topology.model import Topology

    print(json.dumps(Topology.model_json_schema(), indent=2, sort_keys=True))


@app.command()
def render(topology: TopologyArg = DEFAULT_TOPOLOGY,
           output: Annotated[Path, typer.Option("-o", "--output", help="directory to write")] = Path("rendered"),
           ) -> None:
    """Write every node's configuration files to OUTPUT/<node>/... (deterministic)."""
    from hastack.render import context, render_tree

    loaded = load_or_exit(topology)
    with reported():
        state = render_tree(context(loaded), output)
    files = sum(len(d.files) for d in state.values())
    out.print(f"rendered {files} files for {len(state)} nodes into {output}/")


@app.command("plan")
def plan_cmd(topology: TopologyArg = DEFAULT_TOPOLOGY,
             as_json: Annotated[bool, typer.Option("--json", help="the plan as JSON (no file content, no "
                                                                "secret)")] = False) -> None:
    """Show every step a deploy would take now: files (diff, secrets masked) and packages per host, then
    per stage the unit starts and restarts, cluster actions and gates. Changes nothing, the secrets
    file included. Exit 0: deploy can go on; 1: it would stop at a step marked !; 3: a host could not
    be read."""
    from hastack.cli.deploy import run_plan

    with reported():
        raise typer.Exit(run_plan(load_or_exit(topology), out, as_json=as_json))


@app.command("deploy")
def deploy_cmd(topology: TopologyArg = DEFAULT_TOPOLOGY,
               stage: Annotated[list[str] | None, typer.Option("--stage", help="run only these stages")] = None,
               yes: Annotated[bool, typer.Option("--yes", help="carry out the plan without showing it or asking "
                                                              "(scripts)")] = False,
               dry_run: Annotated[bool, typer.Option("--dry-run", help="show the plan, change nothing")] = False,
               ) -> None:
    """Bring the whole stack up stage by stage, each gated healthy. Idempotent: a re-run changes nothing.

    The plan comes first (as `hastack plan` shows it) and deploy asks before changing anything; a plan
    with nothing to change goes on at once. Not on a terminal, pass --yes."""
    from hastack.cli.deploy import run_deploy

    if yes and dry_run:
        fail("--yes and --dry-run exclude each other", 2)
    with reported():
        raise typer.Exit(run_deploy(load_or_exit(topology), out, stage, yes=yes, dry_run=dry_run))


@app.command("status")
def status_cmd(topology: TopologyArg = DEFAULT_TOPOLOGY,
               as_json: Annotated[bool, typer.Option("--json", help="the same facts as JSON")] = False,
               watch: Annotated[float | None, typer.Option("--watch", metavar="SECONDS", min=0.5,
                                                           help="refresh every SECONDS until Ctrl-C")] = None,
               prometheus: Annotated[bool, typer.Option("--prometheus", help="Prometheus text format")] = False,
               ) -> None:
    """Read every layer (changes nothing) and say what to do next. Exit 0 healthy, 1 degraded, 2 down, 3 unknown."""
    from hastack.cli.status import run_status

    loaded = load(topology)
    if not loaded.ok:
        print_reports(loaded.reports)
        fail(f"{topology}: invalid topology; status unknown", 3)
    if sum([as_json, prometheus, watch is not None]) > 1:
        fail("--json, --prometheus and --watch exclude each other", 3)
    console = out if out.is_terminal else Console(soft_wrap=True, width=160)
    raise typer.Exit(run_status(loaded, console, as_json, watch, prometheus))


@app.command("recover")
def recover_cmd(
    what: Annotated[str, typer.Argument(help="galera | rabbitmq | pacemaker | all")] = "all",
    topology: TopologyArg = DEFAULT_TOPOLOGY,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the plan, change nothing")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="carry out the plan without asking")] = False,
    lost: Annotated[list[str] | None, typer.Option("--lost", help="a node that will not come back")] = None,
) -> None:
    """Bring a stopped cluster back: the plan (which Galera node bootstraps, and why) comes first."""
    from hastack.cli.deploy import run_recover

    if what not in ("galera", "rabbitmq", "pacemaker", "all"):
        fail(f"unknown part '{what}': use galera, rabbitmq, pacemaker or all", 2)
    with reported():
        raise typer.Exit(run_recover(load_or_exit(topology), out, what, dry_run=dry_run, yes=yes, lost=lost or []))


@app.command("rotate-keys")
def rotate_keys_cmd(
    topology: TopologyArg = DEFAULT_TOPOLOGY,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check and show, change nothing")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="rotate without asking")] = False,
    force: Annotated[bool, typer.Option("--force", help="rotate even if the last rotation is recent "
                                                        "(drops the key of tokens still valid)")] = False,
    credentials: Annotated[bool, typer.Option("--credentials", help="the credential-encryption keys instead, "
                                                                    "then re-encrypt every credential")] = False,
) -> None:
    """Rotate Keystone's Fernet token keys (or credential keys) on every Keystone node, nothing refused."""
    from hastack.cli.deploy import run_rotate_keys

    if yes and dry_run:
        fail("--yes and --dry-run exclude each other", 2)
    if force and credentials:
        fail("--force is for token keys: credential keys have no interval to wait", 2)
    with reported():
        raise typer.Exit(run_rotate_keys(load_or_exit(topology), out, dry_run=dry_run, yes=yes, force=force,
                                         credentials=credentials))


@app.command("rotate-secrets")
def rotate_secrets_cmd(
    topology: TopologyArg = DEFAULT_TOPOLOGY,
    service: Annotated[list[str] | None, typer.Option("--service", help="only this service's logins "
                                                                        "(repeatable); default: every service")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would change, change nothing")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="rotate without asking")] = False,
) -> None:
    """New SQL, RabbitMQ and Keystone logins for the OpenStack services, moved onto one node at a time."""
    from hastack.cli.deploy import run_rotate_secrets

    if yes and dry_run:
        fail("--yes and --dry-run exclude each other", 2)
    with reported():
        raise typer.Exit(run_rotate_secrets(load_or_exit(topology), out, service or [], dry_run=dry_run, yes=yes))


@app.command("backup")
def backup_cmd(
    topology: TopologyArg = DEFAULT_TOPOLOGY,
    incremental: Annotated[bool, typer.Option("--incremental", help="only what changed since the node's last "
                                                                      "backup (a full one must exist)")] = False,
    keep: Annotated[int | None, typer.Option("--keep", min=1, max=100, help="full backups (with their "
                                             "incrementals) kept on the node (default: backups.keep, else 2)")] = None,
    node: Annotated[str | None, typer.Option("--node", help="the controller to back up (default: a Synced "
                                                            "one that is not the writer)")] = None,
) -> None:
    """Back up the database with mariadb-backup on one controller, with its Galera position."""
    from hastack.cli.deploy import run_backup

    loaded = load_or_exit(topology)
    if node is not None and node not in [n.name for n in loaded.topology.controllers]:  # type: ignore[union-attr]
        fail(f"--node {node}: not a controller of {topology}", 2)
    with reported():
        raise typer.Exit(run_backup(loaded, out, incremental=incremental, keep=keep, node=node))


@app.command("backups")
def backups_cmd(topology: TopologyArg = DEFAULT_TOPOLOGY) -> None:
    """List the database backups every controller holds."""
    from hastack.cli.deploy import run_backups

    with reported():
        raise typer.Exit(run_backups(load_or_exit(topology), out))


@app.command("retire")
def retire_cmd(
    node: Annotated[str, typer.Argument(help="the node to take out of every cluster (still in the topology)")],
    topology: TopologyArg = DEFAULT_TOPOLOGY,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the plan, change nothing")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="carry out the plan without asking")] = False,
) -> None:
    """Take a running node out of every cluster cleanly; then remove it from the topology and deploy."""
    from hastack.cli.deploy import run_retire

    if yes and dry_run:
        fail("--yes and --dry-run exclude each other", 2)
    loaded = load_or_exit(topology)
    if node not in [n.name for n in loaded.topology.nodes]:  # type: ignore[union-attr]
        fail(f"{node}: not a node of {topology}", 2)
    with reported():
        raise typer.Exit(run_retire(loaded, out, node, dry_run=dry_run, yes=yes))


@app.command("restore")
def restore_cmd(
    name: Annotated[str, typer.Argument(help="a backup's name, as `hastack backups` lists it")],
    topology: TopologyArg = DEFAULT_TOPOLOGY,
    node: Annotated[str | None, typer.Option("--node", help="the controller holding it, if several do")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the plan, change nothing")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="carry out the plan without asking")] = False,
) -> None:
    """Restore the whole Galera cluster from a backup: the plan first, then every node."""
    from hastack.cli.deploy import run_restore

    if yes and dry_run:
        fail("--yes and --dry-run exclude each other", 2)
    with reported():
        raise typer.Exit(run_restore(load_or_exit(topology), out, name, node=node, dry_run=dry_run, yes=yes))


@app.command("drill")
def drill_cmd(
    scenario: Annotated[str | None, typer.Argument(help="scenario name; none lists them")] = None,
    topology: Annotated[Path, typer.Option("--topology", "-t", help="topology YAML file")] = DEFAULT_TOPOLOGY,
    repeat: Annotated[int, typer.Option("--repeat", min=1, max=50)] = 1,
    report: Annotated[Path | None, typer.Option("--report", help="write JSON + HTML timeline here")] = None,
    hold: Annotated[float | None, typer.Option(
        "--hold", min=1, max=600, help="seconds between the fault and the heal (default: the scenario's)")] = None,
    heal_when: Annotated[Path | None, typer.Option(
        "--heal-when", help="heal as soon as this file exists (at the latest when the hold ends)")] = None,
) -> None:
    """Inject a real failure into the deployed lab under load; score gaps, losses and split brain."""
    from hastack.cli.drill import run_drill

    with reported():
        raise typer.Exit(run_drill(load_or_exit(topology), out, scenario, repeat, report, hold, heal_when))


@app.command("campaign")
def campaign_cmd(
    topology: Annotated[Path, typer.Option("--topology", "-t", help="topology YAML file")] = DEFAULT_TOPOLOGY,
    cycles: Annotated[int, typer.Option("--cycles", min=1, max=10000, help="drills to run")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="the random order of the nemeses")] = 1,
    nemesis: Annotated[list[str] | None, typer.Option(
        "--nemesis", help="a scenario in the mix (repeat it; default: every campaign nemesis)")] = None,
    report: Annotated[Path, typer.Option("--report", help="campaign.json, index.html and failed cycles")] = Path(
        "campaign-report"),
) -> None:
    """Run many drills in a row, each fault drawn from the nemeses; stop at the first lost write, lost
    message, split brain or failed heal, and keep its evidence."""
    from hastack.cli.drill import run_campaign

    with reported():
        raise typer.Exit(run_campaign(load_or_exit(topology), out, cycles, seed, nemesis, report))


@app.command("bench")
def bench_cmd(
    scenarios: Annotated[list[str] | None, typer.Argument(help="scenarios (default: power-off-vip-writer)")] = None,
    topology: Annotated[Path, typer.Option("--topology", "-t", help="topology YAML file")] = DEFAULT_TOPOLOGY,
    repeat: Annotated[int, typer.Option("--repeat", min=1, max=50)] = 1,
    report: Annotated[Path | None, typer.Option("--report", help="write JSON + HTML timelines here")] = None,
) -> None:
    """Each scenario under the reference defaults, then under hastack's tuning, side by side."""
    from hastack.cli.drill import run_bench

    with reported():
        raise typer.Exit(run_bench(load_or_exit(topology), out, scenarios or ["power-off-vip-writer"], repeat,
                                   report))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
