"""`hastack lab ...`: the topology as containers on this machine. Thin: parse, call hastack.lab, print."""

from __future__ import annotations

import functools
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from hastack.lab import Lab

P = ParamSpec("P")
R = TypeVar("R")
app = typer.Typer(help="Run the topology as real Debian hosts (systemd-nspawn containers) on this machine.",
                  no_args_is_help=True)
out = Console()
err = Console(stderr=True)

DEFAULT_TOPOLOGY = Path("examples/seed.yml")
TopologyArg = Annotated[Path, typer.Argument(help="topology YAML file")]
TopologyOpt = Annotated[Path, typer.Option("-t", "--topology", help="topology YAML file")]
NodeArg = Annotated[str, typer.Argument(help="node name")]
PeerOpt = Annotated[list[str] | None,
                    typer.Option("--peer", "-p", help="only the link toward this node (repeat)")]


def _fail(message: str) -> NoReturn:
    err.print(f"error: {message}", style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _say(text: str) -> None:
    out.print(f"  {text}", highlight=False)


def _lab(topology: Path) -> Lab:
    from hastack.lab import Lab, LabError

    try:
        return Lab.load(topology)
    except LabError as exc:
        _fail(str(exc))


def _guard(fn: Callable[P, R]) -> Callable[P, R]:
    """Every LabError becomes one red line and exit 1 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from hastack.lab import LabError

        try:
            return fn(*args, **kwargs)
        except LabError as exc:
            _fail(str(exc))
        except PermissionError as exc:
            _fail(f"{exc.filename or exc}: permission denied - run it as root")

    return wrapper


@app.command()
@_guard
def image() -> None:
    """Build the lab image if the cache has none; print where it is, its size and build time."""
    from hastack.lab.image import ensure_image, image_info

    root = ensure_image()
    info = image_info() or {}
    size = int(str(info.get("size_bytes", 0))) / 1e9
    out.print(f"{root}  ({size:.2f} GB, {info.get('packages_installed')} packages, "
              f"built in {info.get('build_seconds')} s on {info.get('built_at')})", highlight=False)


@app.command()
@_guard
def up(topology: TopologyArg = DEFAULT_TOPOLOGY) -> None:
    """Boot every node of the topology; wait until sshd answers on all of them."""
    from hastack.lab.image import ensure_image

    lab = _lab(topology)
    lab.preflight()
    t0 = time.monotonic()
    ensure_image()
    out.print(f"lab {lab.name}: {len(lab.topo.nodes)} nodes on {lab.topo.network.management}")
    lab.up(progress=_say)
    st = lab.state
    out.print(f"lab {lab.name} up in {time.monotonic() - t0:.1f} s; host is {st.host_address} on {st.bridge}",
              highlight=False)
    out.print(f"ssh key {lab.key_path}\nknown_hosts {lab.known_hosts_path}", highlight=False, soft_wrap=True)


@app.command()
@_guard
def down(topology: TopologyArg = DEFAULT_TOPOLOGY,
         fast: Annotated[bool, typer.Option(help="pull the plugs, no clean shutdown")] = False,
         timeout: Annotated[float, typer.Option(help="seconds for a clean shutdown")] = 60) -> None:
    """Stop every node and remove everything the lab made (the image cache stays). Idempotent."""
    lab = _lab(topology)
    t0 = time.monotonic()
    lab.down(progress=_say, timeout=0 if fast else timeout)
    out.print(f"lab {lab.name} down in {time.monotonic() - t0:.1f} s")


@app.command("ls")
@_guard
def ls() -> None:
    """Labs on this host and the power state of their nodes."""
    from hastack.lab import labs
    from hastack.lab.node import is_on

    table = Table("lab", "node", "address", "power", "cut")
    for st in labs():
        for name, ns in st.nodes.items():
            cuts = [peer for n, peer in st.cuts if n == name] + [n for n, peer in st.cuts if peer == name]
            cut = ",".join(cuts).replace("*", "all")
            table.add_row(st.name, name, ns.address, "on" if is_on(ns) else "off", cut)
    out.print(table)


@app.command()
@_guard
def usage(topology: TopologyOpt = DEFAULT_TOPOLOGY,
          seconds: Annotated[float, typer.Option(min=1, max=3600, help="CPU sampling window")] = 60.0) -> None:
    """Memory (PSS) and CPU of every node, measured now: what the lab costs this machine."""
    lab = _lab(topology)
    names = [n.name for n in lab.topo.nodes]
    first = {n: lab.cpu_usec(n) for n in names}
    t0 = time.monotonic()
    time.sleep(seconds)
    span = time.monotonic() - t0
    cpu = {n: (lab.cpu_usec(n) - first[n]) / 1e6 / span * 100 for n in names}
    mem = {n: lab.memory(n) / 2**20 for n in names}
    table = Table("node", "memory (PSS, MiB)", f"CPU over {span:.0f} s (% of one core)")
    for n in names:
        table.add_row(n, f"{mem[n]:.0f}", f"{cpu[n]:.1f}")
    table.add_row("all", f"{sum(mem.values()):.0f}", f"{sum(cpu.values()):.1f}")
    out.print(table)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@_guard
def ssh(node: NodeArg, command: Annotated[list[str] | None, typer.Argument(help="command to run")] = None,
        topology: TopologyOpt = DEFAULT_TOPOLOGY) -> None:
    """ssh to a node with the lab's key and known_hosts (interactive without a command)."""
    argv = _lab(topology).ssh_argv(node, command or [])
    os.execvp(argv[0], argv)


@app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@_guard
def exec_(node: NodeArg, command: Annotated[list[str], typer.Argument(help="command to run")],
          topology: TopologyOpt = DEFAULT_TOPOLOGY) -> None:
    """Run a command inside a node through its namespaces (works even when its links are cut)."""
    from hastack.lab.node import enter_argv

    lab = _lab(topology)
    if node not in lab.state.nodes:
        _fail(f"lab {lab.name} has no node {node!r}")
    raise typer.Exit(subprocess.run(enter_argv(lab.state.nodes[node], command)).returncode)


@app.command()
@_guard
def power(node: NodeArg, action: Annotated[str, typer.Argument(help="on | off | reset")],
          topology: TopologyOpt = DEFAULT_TOPOLOGY) -> None:
    """Switch a node's power, as the fence agent would (off = link down + every process killed)."""
    out.print(f"{node}: {_lab(topology).power(node, action)}")


@app.command()
@_guard
def cut(node: NodeArg, peer: PeerOpt = None, topology: TopologyOpt = DEFAULT_TOPOLOGY) -> None:
    """Cut a node's links (all, host included; or only toward --peer nodes). Survives power cycles."""
    _lab(topology).cut(node, peer or None)
    out.print(f"{node}: cut from {', '.join(peer) if peer else 'everything'}")


@app.command()
@_guard
def heal(node: NodeArg, peer: PeerOpt = None, topology: TopologyOpt = DEFAULT_TOPOLOGY) -> None:
    """Undo the cuts of a node (all, or only toward --peer nodes)."""
    _lab(topology).heal(node, peer or None)
    out.print(f"{node}: healed")


@app.command()
@_guard
def freeze(node: NodeArg, topology: TopologyOpt = DEFAULT_TOPOLOGY) -> None:
    """Stop every process of a node where it stands (a hung host; its kernel still answers ping)."""
    _lab(topology).freeze(node)
    out.print(f"{node}: frozen")


@app.command()
@_guard
def thaw(node: NodeArg, topology: TopologyOpt = DEFAULT_TOPOLOGY) -> None:
    """Resume a frozen node."""
    _lab(topology).thaw(node)
    out.print(f"{node}: thawed")
