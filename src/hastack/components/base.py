"""What a component renders for a node: files (with owner and mode), packages and units.

A component is a module with a `COMPONENT` object implementing `Component`. Rendering is pure:
(topology, secrets, node) -> desired state. Nothing here touches a host.
"""

from __future__ import annotations

import configparser
import io
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any, Protocol

import jinja2

from hastack import pki
from hastack.secrets import Secrets
from hastack.topology.model import Node, Topology

HEADER = "managed by hastack: local edits are overwritten"
"""First line of every file hastack writes whose format has comments."""


@dataclass(frozen=True)
class File:
    path: str
    content: str | bytes
    owner: str = "root"
    group: str = "root"
    mode: int = 0o644
    secret: bool = False
    """Content embeds a secret: plans show it masked, never as a diff of values."""
    restarts: tuple[str, ...] = ()
    """Units that read this file and must restart when it changes."""
    stage_dir: str | None = None
    """Where the write's temporary file is made, when not in the file's own directory (a directory on
    the same file system): for a directory a daemon lists and opens entry by entry (Keystone's keys)."""

    @property
    def data(self) -> bytes:
        return self.content if isinstance(self.content, bytes) else self.content.encode()


@dataclass(frozen=True)
class Ctx:
    """Everything a render needs; components read the topology and ask secrets for values."""

    topo: Topology
    secrets: Secrets

    @property
    def vip(self) -> str:
        return str(self.topo.network.vip)

    @cached_property
    def tls(self) -> pki.Material:
        """The CA and the VIP's certificate (made on first use, kept with the secrets)."""
        return pki.material(self.secrets, self.topo.name, pki.names(self.topo))


@dataclass
class Desired:
    """The desired state of one node, merged over every component that applies to it."""

    node: Node
    files: list[File] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    units: list[str] = field(default_factory=list)


class Component(Protocol):
    name: str

    def applies(self, topo: Topology, node: Node) -> bool: ...

    def packages(self, topo: Topology, node: Node) -> list[str]: ...

    def units(self, topo: Topology, node: Node) -> list[str]: ...

    def files(self, ctx: Ctx, node: Node) -> list[File]: ...


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("hastack", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def template(name: str, **values: Any) -> str:
    """Render templates/<name> with StrictUndefined: a missing value is a bug, not an empty string."""
    return _env().get_template(name).render(**values)


def ini(sections: dict[str, dict[str, Any]], header: str = "") -> str:
    """An oslo.config / INI file from nested dicts, in the order given (deterministic)."""
    cp = configparser.RawConfigParser(interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    for section, options in sections.items():
        if section != "DEFAULT":
            cp.add_section(section)
        for key, value in options.items():
            cp.set(section, key, _ini_value(value))
    buf = io.StringIO()
    if header:
        buf.write("".join(f"# {line}\n" for line in header.splitlines()))
    cp.write(buf)
    return buf.getvalue().rstrip("\n") + "\n"


def _ini_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)
