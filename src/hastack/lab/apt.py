"""Read the host's apt sources to learn which Debian mirror to build the lab image from.

Why: the project never names a mirror; whatever this machine already uses (a local mirror, a proxy,
a snapshot) is what the image uses too. Pure functions over text, so they are unit-tested.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"


@dataclass(frozen=True)
class Source:
    """One `deb` line (or one suite of a deb822 stanza)."""

    uri: str
    suite: str
    components: tuple[str, ...]


def parse_one_line(text: str) -> list[Source]:
    """`deb [options] URI SUITE COMPONENT...` lines of sources.list; deb-src and comments ignored."""
    found: list[Source] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        line = re.sub(r"\[[^\]]*\]", " ", line)
        words = line.split()
        if len(words) >= 3 and words[0] == "deb":
            found.append(Source(words[1].rstrip("/"), words[2], tuple(words[3:])))
    return found


def _stanzas(text: str) -> Iterable[dict[str, str]]:
    fields: dict[str, str] = {}
    key = ""
    for raw in [*text.splitlines(), ""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if fields:
                yield fields
            fields, key = {}, ""
        elif raw[0] in " \t" and key:
            fields[key] += " " + raw.strip()
        elif ":" in raw:
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()


def parse_deb822(text: str) -> list[Source]:
    """deb822 `.sources` stanzas; `Enabled: no` and stanzas without type `deb` are skipped."""
    found: list[Source] = []
    for st in _stanzas(text):
        if "deb" not in st.get("types", "").split() or st.get("enabled", "yes").lower() == "no":
            continue
        comps = tuple(st.get("components", "").split())
        for uri in st.get("uris", "").split():
            found.extend(Source(uri.rstrip("/"), suite, comps) for suite in st.get("suites", "").split())
    return found


def host_sources(etc: Path = Path("/etc/apt")) -> list[Source]:
    """Every enabled `deb` source of the host, in apt's reading order."""
    found: list[Source] = []
    main_list = etc / "sources.list"
    if main_list.is_file():
        found += parse_one_line(main_list.read_text(errors="replace"))
    parts = etc / "sources.list.d"
    if parts.is_dir():
        for f in sorted(parts.iterdir()):
            if f.suffix == ".list":
                found += parse_one_line(f.read_text(errors="replace"))
            elif f.suffix == ".sources":
                found += parse_deb822(f.read_text(errors="replace"))
    return found


def _debian_base(sources: list[Source]) -> str | None:
    """The mirror of the main archive: a source serving bookworm, else any Debian-looking one."""
    for s in sources:
        if s.suite == SUITE and "main" in s.components:
            return s.uri
    for s in sources:
        if re.fullmatch(r"[a-z]+", s.suite) and "main" in s.components and s.uri.endswith("/debian"):
            return s.uri
    return None


def _security(sources: list[Source]) -> str | None:
    for s in sources:
        if s.suite.endswith("-security") and "main" in s.components:
            return s.uri
    return None


def image_sources(sources: list[Source]) -> tuple[str, list[str]] | None:
    """(mirror for debootstrap, sources.list lines for the image) or None when the host has no Debian source.

    The image gets bookworm, bookworm-updates and bookworm-security from the same servers the host uses.
    """
    base = _debian_base(sources)
    if base is None:
        return None
    lines = [f"deb {base} {SUITE} main", f"deb {base} {SUITE}-updates main"]
    security = _security(sources)
    if security:
        lines.append(f"deb {security} {SUITE}-security main")
    return base, lines
