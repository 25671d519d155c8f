"""`hastack lab ...`: the topology as containers on this machine."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run the topology as real Debian hosts (systemd-nspawn containers) on this machine.",
                  no_args_is_help=True)
