"""Topology YAML -> plain data (dict, list, str, int, float, bool, None) with every value's position.

Built in one pass over the parser's events, with an explicit stack and hard limits, rather than with
ruamel's round-trip loader, because a topology may come from anyone and that loader:
- recurses once per nesting level (`[` nested 250 deep was a RecursionError, a traceback);
- shares an aliased node and lets every later walk expand it again (a 386-byte alias bomb cost
  13 GB and four minutes);
- constructs whatever a tag names (`!!python/object/apply` reached the model as a foreign object);
- spends time super-linear in the size of the text on comment bookkeeping (10 MB: a minute).
Here the text is capped before it is parsed, the nesting depth and the nodes that aliases add are
counted as the events arrive, and only YAML's core types are ever built. Every refusal is a
`YamlLimit` with the position of the offending event, which the loader turns into a coded report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import StreamMark
from ruamel.yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
)
from ruamel.yaml.nodes import ScalarNode

from hastack.reports import Location

PathKey = tuple[str | int, ...]
Pos = tuple[int, int]
"""0-based line and column, as the parser marks them."""

MAX_BYTES = 256 * 1024
"""A topology of a thousand nodes is ~60 KiB. Past this size a file is a mistake or an attack, and
refusing it takes no parsing at all."""
MAX_NODES = 10_000
"""Values written out (scalars, lists, mappings). The pure-Python parser costs ~45 us per value, so
this bounds any file to half a second of parsing; a node costs ~12 values, the seed 105 in all."""
MAX_DEPTH = 32
"""The model nests 6 levels deep; 32 leaves room for anything legitimate and stops a `[[[[...`."""
MAX_ALIAS_NODES = 10_000
"""Nodes that aliases may add beyond those written out. Sharing a fence device or a tuning block a
few times costs tens; an alias bomb needs millions."""
MAX_NUMBER_DIGITS = 40
"""No value of the model needs more; Python refuses int() of over 4300 digits with a ValueError."""

CORE = "tag:yaml.org,2002:"
SCALAR_TAGS = {f"{CORE}{t}" for t in ("str", "int", "float", "bool", "null")}
COLLECTION_TAGS = {f"{CORE}map", f"{CORE}seq"}


class YamlLimit(Exception):
    """A document refused before it became data: a stable code, where, and what to do."""

    def __init__(self, code: str, message: str, pos: Pos, hint: str):
        super().__init__(message)
        self.code, self.message, self.pos, self.hint = code, message, pos, hint


@dataclass
class Positions:
    """Where each value (and each mapping key) starts, by its path from the root."""

    values: dict[PathKey, Pos] = field(default_factory=dict)
    keys: dict[PathKey, Pos] = field(default_factory=dict)


@dataclass
class SourceMap:
    """Positions of values (and of keys) in the YAML text, by their path from the root."""

    file: str
    values: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    keys: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def at(self, path: PathKey, *, key: bool = False) -> Location:
        """The nearest known position: the value itself, else its closest ancestor."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                line, col = table[probe]
                return Location(self.file, line + 1, col + 1)
            if probe in self.values:
                line, col = self.values[probe]
                return Location(self.file, line + 1, col + 1)
            probe = probe[:-1]
        return Location(self.file, 1, 1)


@dataclass
class _Frame:
    path: PathKey
    data: dict[str, Any] | list[Any]
    anchor: str | None
    start: Pos
    nodes: int = 1
    key: str | None = None
    key_pos: Pos = (0, 0)


@dataclass
class _Anchor:
    data: Any = None
    nodes: int = 0
    done: bool = False


def _pos(mark: StreamMark | None) -> Pos:
    return (mark.line, mark.column) if mark is not None else (0, 0)


class _Builder:
    """Consumes parser events; `root` is the document's data once its last event is in."""

    def __init__(self) -> None:
        self.stack: list[_Frame] = []
        self.anchors: dict[str, _Anchor] = {}
        self.alias_nodes = 0
        self.nodes = 0
        self.documents = 0
        self.root: Any = None
        self.where = Positions()
        self.resolver = YAML(typ="safe", pure=True).resolver

    def feed(self, ev: Event) -> None:
        if isinstance(ev, CollectionStartEvent | ScalarEvent | AliasEvent):
            self._count(ev)
        if isinstance(ev, DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise YamlLimit("YAML-SYNTAX", "more than one YAML document in the file", _pos(ev.start_mark),
                                "keep one document: remove the second '---'")
        elif isinstance(ev, CollectionStartEvent):
            self._open(ev)
        elif isinstance(ev, MappingEndEvent | SequenceEndEvent):
            self._close(ev)
        elif isinstance(ev, ScalarEvent):
            self._scalar(ev)
        elif isinstance(ev, AliasEvent):
            self._alias(ev)

    def _count(self, ev: Event) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise YamlLimit("YAML-TOO-LARGE", f"more than {MAX_NODES} values", _pos(ev.start_mark),
                            "a topology holds a few hundred values; check that this is the right file")

    # -- collections -------------------------------------------------------------------
    def _open(self, ev: CollectionStartEvent) -> None:
        self._check_tag(ev.tag, COLLECTION_TAGS, ev)
        if len(self.stack) >= MAX_DEPTH:
            raise YamlLimit("YAML-TOO-DEEP", f"nested more than {MAX_DEPTH} levels deep", _pos(ev.start_mark),
                            "a topology nests a few levels; remove the extra brackets or indentation")
        path = self._child_path(ev)
        if ev.anchor is not None:
            self.anchors[ev.anchor] = _Anchor()  # open: an alias to it from inside would be a cycle
        data: dict[str, Any] | list[Any] = {} if isinstance(ev, MappingStartEvent) else []
        self.stack.append(_Frame(path, data, ev.anchor, _pos(ev.start_mark)))

    def _close(self, ev: Event) -> None:
        frame = self.stack.pop()
        if frame.anchor is not None:
            self.anchors[frame.anchor] = _Anchor(frame.data, frame.nodes, True)
        self._attach(frame.data, frame.nodes, frame.start, collection=True)

    # -- leaves ----------------------------------------------------------------------
    def _scalar(self, ev: ScalarEvent) -> None:
        top = self.stack[-1] if self.stack else None
        if isinstance(top, _Frame) and isinstance(top.data, dict) and top.key is None:
            self._key(top, ev)
            return
        value = self._construct(ev)
        if ev.anchor is not None:
            self.anchors[ev.anchor] = _Anchor(value, 1, True)
        self._attach(value, 1, _pos(ev.start_mark), collection=False)

    def _key(self, top: _Frame, ev: ScalarEvent) -> None:
        """Keys stay the text as written: the model's keys are names, never numbers or booleans."""
        self._check_tag(ev.tag, SCALAR_TAGS, ev)
        if ev.tag is None and ev.implicit[0] and self._resolve(ev) == f"{CORE}merge":
            raise YamlLimit("YAML-MERGE", "merge keys ('<<') are not supported", _pos(ev.start_mark),
                            "write the keys out, or alias a whole value (key: *anchor)")
        assert isinstance(top.data, dict)
        if ev.value in top.data:
            raise YamlLimit("YAML-SYNTAX", f"duplicate key '{ev.value}'", _pos(ev.start_mark),
                            "each key appears once in a mapping; remove or merge the repeated one")
        if ev.anchor is not None:
            self.anchors[ev.anchor] = _Anchor(ev.value, 1, True)
        top.key, top.key_pos = ev.value, _pos(ev.start_mark)

    def _alias(self, ev: AliasEvent) -> None:
        anchor = self.anchors.get(ev.anchor or "")
        if anchor is None or not anchor.done:
            what = "undefined" if anchor is None else "recursive"
            raise YamlLimit("YAML-SYNTAX", f"{what} alias '*{ev.anchor}'", _pos(ev.start_mark),
                            "an alias names an anchor (&name) defined before it, outside itself")
        self.alias_nodes += anchor.nodes
        if self.alias_nodes > MAX_ALIAS_NODES:
            raise YamlLimit("YAML-ALIASES", f"aliases expand to more than {MAX_ALIAS_NODES} nodes",
                            _pos(ev.start_mark), "write the values out; aliases are for sharing a few blocks")
        self._attach(anchor.data, anchor.nodes, _pos(ev.start_mark), collection=isinstance(anchor.data, dict | list))

    def _attach(self, value: Any, nodes: int, start: Pos, *, collection: bool) -> None:
        """Into the enclosing collection. In a mapping, a collection is pointed at by its key (the
        line that names a block), a scalar by itself; a list item by where it starts."""
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        top.nodes += nodes
        if isinstance(top.data, list):
            self.where.values[(*top.path, len(top.data))] = start
            top.data.append(value)
            return
        if top.key is None:
            raise YamlLimit("YAML-SYNTAX", "a mapping key must be a plain name, not a list or a mapping",
                            start, "mapping keys must be plain names (check a stray ':' or '?')")
        path = (*top.path, top.key)
        self.where.keys[path] = top.key_pos
        self.where.values[path] = top.key_pos if collection else start
        top.data[top.key] = value
        top.key = None

    def _child_path(self, ev: CollectionStartEvent) -> PathKey:
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.data, list):
            return (*top.path, len(top.data))
        if top.key is None:
            raise YamlLimit("YAML-SYNTAX", "a mapping key must be a plain name, not a list or a mapping",
                            _pos(ev.start_mark), "mapping keys must be plain names (check a stray ':' or '?')")
        return (*top.path, top.key)

    # -- scalars ---------------------------------------------------------------------
    def _check_tag(self, tag: str | None, allowed: set[str], ev: Event) -> None:
        if tag is None or tag == "!" or tag in allowed:
            return
        raise YamlLimit("YAML-TAG", f"tag '{tag}' is not allowed", _pos(ev.start_mark),
                        "remove the tag: a topology holds plain strings, numbers, booleans, lists and mappings")

    def _resolve(self, ev: ScalarEvent) -> str:
        return str(self.resolver.resolve(ScalarNode, ev.value, ev.implicit))

    def _construct(self, ev: ScalarEvent) -> Any:
        self._check_tag(ev.tag, SCALAR_TAGS, ev)
        if ev.tag == "!" or (ev.tag is None and not ev.implicit[0]):
            return ev.value  # quoted (or '!'-tagged): a string whatever it looks like
        tag = ev.tag or self._resolve(ev)
        try:
            return scalar(tag, ev.value)
        except (ValueError, OverflowError) as exc:
            raise YamlLimit("YAML-SCALAR", f"{ev.value[:40]!r} is not a usable {tag.removeprefix(CORE)}: {exc}",
                            _pos(ev.start_mark), "write a plain number, or quote the value") from None


def scalar(tag: str, text: str) -> Any:
    """One scalar of YAML 1.2's core schema; anything else (a timestamp) stays the text it was."""
    kind = tag.removeprefix(CORE)
    if kind == "null":
        return None
    if kind == "bool":
        return text.lower() in ("true", "yes", "on")
    if kind == "int":
        return _int(text)
    if kind == "float":
        return _float(text)
    return text


def _int(text: str) -> int:
    s = text.replace("_", "")
    if len(s) > MAX_NUMBER_DIGITS:
        raise ValueError(f"more than {MAX_NUMBER_DIGITS} digits")
    sign = -1 if s.startswith("-") else 1
    s = s.lstrip("+-")
    for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
        if s.lower().startswith(prefix):
            return sign * int(s[2:], base)
    return sign * int(s, 10)


def _float(text: str) -> float:
    s = text.replace("_", "").lower()
    if len(s) > MAX_NUMBER_DIGITS:
        raise ValueError(f"more than {MAX_NUMBER_DIGITS} characters")
    if s.lstrip("+-") in (".inf", ".nan"):
        value = math.inf if s.endswith("inf") else math.nan
        return -value if s.startswith("-") else value
    return float(s)


def too_large() -> YamlLimit:
    return YamlLimit("YAML-TOO-LARGE", f"the file is larger than {MAX_BYTES // 1024} KiB", (0, 0),
                     "a topology is a few KiB; check that this is the right file")


def build(text: str) -> tuple[Any, Positions]:
    """The document's data and positions. Raises YamlLimit, or ruamel's YAMLError for bad syntax."""
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise too_large()
    builder = _Builder()
    for ev in YAML(typ="safe", pure=True).parse(text):
        builder.feed(ev)
    return builder.root, builder.where
