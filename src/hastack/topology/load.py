"""Load topology.yml into the typed model, keeping every value's line so reports can point at it.

Nothing here raises on bad input: `load` returns the model (or None) and the full list of
reports, so an operator sees every problem in one run.
"""

from __future__ import annotations

import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from hastack.reports import Location, Report, Severity
from hastack.topology.model import Topology

PathKey = tuple[str | int, ...]


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
class Loaded:
    topology: Topology | None
    reports: list[Report]
    source: SourceMap
    path: Path

    @property
    def ok(self) -> bool:
        return self.topology is not None and not any(r.is_error for r in self.reports)


def _index(node: Any, path: PathKey, smap: SourceMap) -> None:
    if isinstance(node, CommentedMap):
        for k in node:
            kline, kcol, vline, vcol = node.lc.data[k]
            smap.keys[(*path, str(k))] = (kline, kcol)
            # A block (mapping or list) is best pointed at by its key's line, a scalar by its value.
            block = isinstance(node[k], CommentedMap | CommentedSeq)
            smap.values[(*path, str(k))] = (kline, kcol) if block else (vline, vcol)
            _index(node[k], (*path, str(k)), smap)
    elif isinstance(node, CommentedSeq):
        for i, item in enumerate(node):
            line, col = node.lc.data[i]
            smap.values[(*path, i)] = (line, col)
            _index(item, (*path, i), smap)


def _plain(node: Any) -> Any:
    """ruamel's round-trip containers -> plain dicts/lists (keys as strings) for pydantic."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def parse_yaml(text: str, file: str) -> tuple[Any, SourceMap, list[Report]]:
    smap = SourceMap(file)
    yaml = YAML(typ="rt")
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        problem = exc.problem or exc.context or "invalid YAML"
        return None, smap, [Report("YAML-SYNTAX", Severity.ERROR, f"YAML syntax error: {problem}", loc,
                                   "fix the YAML at this line (indentation, a missing ':' or quote)")]
    except (TypeError, ValueError) as exc:  # e.g. a list used as a mapping key: ruamel cannot hash it
        return None, smap, [Report("YAML-SYNTAX", Severity.ERROR, f"YAML structure not usable: {exc}",
                                   Location(file, 1, 1), "mapping keys must be plain names (check stray ':')")]
    except YAMLError as exc:  # e.g. a reader error: a character YAML does not allow
        pos = getattr(exc, "position", 0) or 0
        loc = Location(file, text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos))
        first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        return None, smap, [Report("YAML-SYNTAX", Severity.ERROR, f"YAML error: {first}", loc,
                                   "remove the character YAML does not allow")]
    if not isinstance(doc, CommentedMap):
        return None, smap, [Report("TOPO-NOT-MAPPING", Severity.ERROR,
                                   "the topology must be a YAML mapping (name:, network:, nodes:, ...)",
                                   Location(file, 1, 1))]
    _index(doc, (), smap)
    return _plain(doc), smap, []


def _model_at(loc: PathKey) -> type[BaseModel] | None:
    """Walk the model classes along a pydantic error location to the model that holds it."""
    model: Any = Topology
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        info = model.model_fields.get(str(part))
        if info is None:
            return model
        model = _unwrap(info.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """list[X] / X | None / Annotated[X, ...] -> X, for the first model-typed member."""
    for arg in typing.get_args(annotation) or ():
        inner = _unwrap(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return annotation


def _pydantic_reports(err: ValidationError, smap: SourceMap) -> list[Report]:
    out: list[Report] = []
    for e in err.errors():
        loc: PathKey = tuple(p for p in e["loc"] if isinstance(p, str | int))
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            parent = _model_at(loc[:-1])
            known = sorted(parent.model_fields) if parent else []
            guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f"did you mean '{guess[0]}'?" if guess else f"known keys here: {', '.join(known)}"
            out.append(Report("TOPO-UNKNOWN-KEY", Severity.ERROR, f"unknown key '{dotted}'",
                              smap.at(loc, key=True), hint, loc))
        elif e["type"] == "missing":
            out.append(Report("TOPO-MISSING", Severity.ERROR, f"'{dotted}' is required",
                              smap.at(loc[:-1]), f"add '{loc[-1]}:' here", loc))
        else:
            value = e.get("input")
            shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
            out.append(Report("TOPO-INVALID", Severity.ERROR, f"'{dotted}': {e['msg']}{shown}",
                              smap.at(loc), "", loc))
    return out


def load_text(text: str, file: str) -> Loaded:
    data, smap, reports = parse_yaml(text, file)
    path = Path(file)
    if data is None:
        return Loaded(None, reports, smap, path)
    try:
        topo = Topology.model_validate(data)
    except ValidationError as err:
        return Loaded(None, _pydantic_reports(err, smap), smap, path)
    from hastack.topology.validate import validate

    return Loaded(topo, validate(topo, smap), smap, path)


def load(path: Path | str) -> Loaded:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Loaded(None, [Report("TOPO-UNREADABLE", Severity.ERROR, f"cannot read {p}: {exc}",
                                    Location(str(p)))], SourceMap(str(p)), p)
    return load_text(text, str(p))
