"""Load topology.yml into the typed model, keeping every value's line so reports can point at it.

Nothing here raises on bad input: `load` returns the model (or None) and the full list of
reports, so an operator sees every problem in one run.
"""

from __future__ import annotations

import difflib
import os
import stat
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from hastack.reports import Location, Report, Severity
from hastack.topology import yamldoc
from hastack.topology.model import Topology
from hastack.topology.validate import validate
from hastack.topology.yamldoc import PathKey, SourceMap

__all__ = ["Loaded", "PathKey", "SourceMap", "load", "load_text", "parse_yaml"]


@dataclass
class Loaded:
    topology: Topology | None
    reports: list[Report]
    source: SourceMap
    path: Path

    @property
    def ok(self) -> bool:
        return self.topology is not None and not any(r.is_error for r in self.reports)


def _report(file: str, code: str, message: str, pos: tuple[int, int], hint: str) -> Report:
    return Report(code, Severity.ERROR, message, Location(file, pos[0] + 1, pos[1] + 1), hint)


def parse_yaml(text: str, file: str) -> tuple[Any, SourceMap, list[Report]]:
    smap = SourceMap(file)
    try:
        doc, where = yamldoc.build(text)
    except yamldoc.YamlLimit as exc:
        return None, smap, [_report(file, exc.code, exc.message, exc.pos, exc.hint)]
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = (mark.line, mark.column) if mark else (0, 0)
        problem = exc.problem or exc.context or "invalid YAML"
        return None, smap, [_report(file, "YAML-SYNTAX", f"YAML syntax error: {problem}", pos,
                                    "fix the YAML at this line (indentation, a missing ':' or quote)")]
    except YAMLError as exc:  # e.g. a reader error: a character YAML does not allow
        at = getattr(exc, "position", 0) or 0
        pos = (text.count("\n", 0, at), at - text.rfind("\n", 0, at) - 1)
        first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        return None, smap, [_report(file, "YAML-SYNTAX", f"YAML error: {first}", pos,
                                    "remove the character YAML does not allow")]
    if not isinstance(doc, dict):
        return None, smap, [Report("TOPO-NOT-MAPPING", Severity.ERROR,
                                   "the topology must be a YAML mapping (name:, network:, nodes:, ...)",
                                   Location(file, 1, 1))]
    smap.values, smap.keys = where.values, where.keys
    return doc, smap, []


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
    return Loaded(topo, validate(topo, smap), smap, path)


def load(path: Path | str) -> Loaded:
    p = Path(path)
    try:
        data = _read_bounded(p)
        if len(data) > yamldoc.MAX_BYTES:
            limit = yamldoc.too_large()
            return Loaded(None, [_report(str(p), limit.code, limit.message, limit.pos, limit.hint)],
                          SourceMap(str(p)), p)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Loaded(None, [Report("TOPO-UNREADABLE", Severity.ERROR, f"cannot read {p}: {exc}",
                                    Location(str(p)))], SourceMap(str(p)), p)
    return load_text(text, str(p))


def _read_bounded(p: Path) -> bytes:
    """At most one byte past the limit, from a regular file only: /dev/zero or a FIFO named as the
    topology must not fill memory or hang."""
    with p.open("rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError(f"{p} is not a regular file")
        return fh.read(yamldoc.MAX_BYTES + 1)
