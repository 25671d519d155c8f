"""Rendered files for the examples, byte for byte. Regenerate on purpose with UPDATE_GOLDEN=1."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import ROOT, FixedSecrets, load_example
from hastack.components.base import Ctx
from hastack.components.registry import desired

GOLDEN = ROOT / "tests" / "golden"
EXAMPLES = ["seed.yml", "four-servers.yml"]
PEM = re.compile(rb"(-----BEGIN ([A-Z ]+)-----\n).*?(-----END \2-----)", re.S)
"""Keys and certificates are new for every fresh secrets store (test_pki.py checks what they hold):
their bodies are left out of the golden copies, their place and kind are kept."""


def rendered(example: str) -> dict[Path, bytes]:
    topo = load_example(example)
    state = desired(Ctx(topo, FixedSecrets(None)))
    base = Path(example.removesuffix(".yml"))
    out: dict[Path, bytes] = {}
    for name, d in state.items():
        for f in d.files:
            out[base / name / f.path.lstrip("/")] = PEM.sub(rb"\1(made by pki.py)\n\3", f.data)
    return out


@pytest.mark.parametrize("example", EXAMPLES)
def test_render_matches_golden(example: str) -> None:
    files = rendered(example)
    root = GOLDEN / example.removesuffix(".yml")
    if os.environ.get("UPDATE_GOLDEN"):
        for p in sorted(root.rglob("*"), reverse=True) if root.exists() else []:
            p.unlink() if p.is_file() else p.rmdir()
        for rel, data in files.items():
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / rel).write_bytes(data)
    on_disk = {p.relative_to(GOLDEN): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert sorted(on_disk) == sorted(files), "file set differs: run UPDATE_GOLDEN=1 pytest and review the diff"
    for rel, data in files.items():
        assert on_disk[rel] == data, f"{rel} differs from its golden copy"


@pytest.mark.parametrize("example", EXAMPLES)
def test_render_is_deterministic(example: str) -> None:
    assert rendered(example) == rendered(example)
