"""Operating-system facts: Debian packages, systemd units, IPv4 addresses (to find the VIP)."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from hastack.facts.base import Fact, require_exit
from hastack.transport.base import Result

# -- Debian packages ----------------------------------------------------------------------

DPKG_FORMAT = r"${Package}\t${db:Status-Abbrev}\t${Version}\n"
_NOT_FOUND = re.compile(r"^dpkg-query: no packages found matching (\S+)$", re.M)


@dataclass(frozen=True)
class Package:
    name: str
    status: str = ""
    """dpkg's abbreviated status: desired, current, error flag (e.g. "ii ", "rc ", "hi ")."""
    version: str = ""

    @property
    def installed(self) -> bool:
        """Unpacked and configured (the second letter is the current state: i = installed)."""
        return len(self.status) >= 2 and self.status[1] == "i"

    @property
    def broken(self) -> bool:
        """dpkg flags an error (reinstall required) in the third letter."""
        return len(self.status) >= 3 and self.status[2] not in (" ", "")


def parse_packages(names: Sequence[str], text: str, stderr: str = "") -> dict[str, Package]:
    """Every requested name gets an entry: unknown packages come back not installed."""
    found: dict[str, Package] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, status, version = line.split("\t")
        found[name] = Package(name, status, version)
    unknown = set(_NOT_FOUND.findall(stderr))
    out = {}
    for n in names:
        if n not in found and n not in unknown and text.strip():
            raise ValueError(f"dpkg-query said nothing about {n}")
        out[n] = found.get(n, Package(n))
    return out


def packages(names: Sequence[str]) -> Fact[dict[str, Package]]:
    """dpkg-query exits 1 when some names are unknown to dpkg: that is an answer, not a failure."""
    wanted = tuple(names)
    if not wanted:
        raise ValueError("packages() needs at least one name")

    def parse(r: Result) -> dict[str, Package]:
        require_exit(r, (0, 1))
        if r.exit_status == 1 and not _NOT_FOUND.search(r.stderr):
            require_exit(r)
        return parse_packages(wanted, r.stdout, r.stderr)

    return Fact("packages", ("dpkg-query", "-W", "-f", DPKG_FORMAT, *wanted), parse)


# -- systemd units ------------------------------------------------------------------------

UNIT_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "UnitFileState")


@dataclass(frozen=True)
class UnitState:
    name: str
    """The name asked for (Id may differ when `name` is an alias)."""
    id: str
    load_state: str
    active_state: str
    sub_state: str
    unit_file_state: str

    @property
    def exists(self) -> bool:
        return self.load_state not in ("not-found", "")

    @property
    def active(self) -> bool:
        return self.active_state == "active"

    @property
    def failed(self) -> bool:
        return self.active_state == "failed"

    @property
    def enabled(self) -> bool:
        return self.unit_file_state in ("enabled", "enabled-runtime", "alias", "static", "indirect")


def parse_units(names: Sequence[str], text: str) -> dict[str, UnitState]:
    """`systemctl show` prints one KEY=VALUE block per unit, in the order the units were given."""
    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    if len(blocks) != len(names):
        raise ValueError(f"expected {len(names)} unit blocks, got {len(blocks)}")
    out = {}
    for name, block in zip(names, blocks, strict=True):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        out[name] = UnitState(name, props["Id"], props["LoadState"], props["ActiveState"], props["SubState"],
                              props.get("UnitFileState", ""))
    return out


def units(names: Sequence[str]) -> Fact[dict[str, UnitState]]:
    wanted = tuple(names)
    if not wanted:
        raise ValueError("units() needs at least one unit")

    def parse(r: Result) -> dict[str, UnitState]:
        return parse_units(wanted, require_exit(r).stdout)

    return Fact("units", ("systemctl", "show", "-p", ",".join(UNIT_PROPERTIES), "--", *wanted), parse)


# -- IPv4 addresses -----------------------------------------------------------------------


@dataclass(frozen=True)
class Interface:
    name: str
    up: bool
    addresses: tuple[ipaddress.IPv4Interface, ...]


@dataclass(frozen=True)
class Addresses:
    interfaces: tuple[Interface, ...]

    def holds(self, address: ipaddress.IPv4Address | str) -> bool:
        wanted = ipaddress.IPv4Address(address)
        return any(a.ip == wanted for i in self.interfaces for a in i.addresses)

    def interface_of(self, address: ipaddress.IPv4Address | str) -> str | None:
        wanted = ipaddress.IPv4Address(address)
        return next((i.name for i in self.interfaces for a in i.addresses if a.ip == wanted), None)

    @property
    def all(self) -> set[ipaddress.IPv4Address]:
        return {a.ip for i in self.interfaces for a in i.addresses}


def parse_addresses(text: str) -> Addresses:
    """`ip -j -4 addr show`. Interfaces without an IPv4 address come out as `{}`: skipped."""
    out = []
    for link in json.loads(text or "[]"):
        if "ifname" not in link:
            continue
        addrs = tuple(ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}")
                      for a in link.get("addr_info", []) if a.get("family") == "inet")
        out.append(Interface(link["ifname"], "UP" in link.get("flags", []), addrs))
    return Addresses(tuple(out))


def parse_fib_trie_local(text: str) -> frozenset[ipaddress.IPv4Address]:
    """A network namespace's own IPv4 addresses from its `/proc/net/fib_trie`: every key followed by a
    `/32 host LOCAL` leaf (the kernel adds that route with the address and removes it with it).
    Lines that are not a key or a leaf are skipped; a key that is not an IPv4 address is an error."""
    out: set[ipaddress.IPv4Address] = set()
    key: str | None = None
    for line in text.splitlines():
        word = line.strip()
        if word.startswith("|-- "):
            key = word[4:]
        elif key is not None and word.split()[:3] == ["/32", "host", "LOCAL"]:
            out.add(ipaddress.IPv4Address(key))
    return frozenset(out)


def addresses() -> Fact[Addresses]:
    return Fact("ipv4_addresses", ("ip", "-j", "-4", "addr", "show"),
                lambda r: parse_addresses(require_exit(r).stdout))


HTTP_CODES = r"""for u do
  printf '%s %s\n' "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -- "$u")" "$u"
done
"""
"""Prints `<status> <url>` per URL argument (000 when nothing answered): one round trip per look."""


def http_codes(urls: Sequence[str]) -> Fact[dict[str, str]]:
    """The HTTP status each URL answers, asked from the host itself (`000`: nothing answered)."""
    def parse(r: Result) -> dict[str, str]:
        got: dict[str, str] = {}
        for line in require_exit(r).stdout.splitlines():
            code, _, url = line.partition(" ")
            if not (len(code) == 3 and code.isdigit() and url):
                raise ValueError(f"not '<code> <url>': {line[:80]!r}")
            got[url] = code
        return got

    return Fact("http_codes", ("sh", "-c", HTTP_CODES, "sh", *urls), parse, 5.0 * len(urls) + 30.0)
