"""Every recording is well formed, and saving it again changes nothing (so re-recording one
case never rewrites the others)."""

from __future__ import annotations

import pytest
from recordings import RECORDED, parse, render

FILES = sorted(RECORDED.glob("*/*.txt"))


def test_there_are_recordings() -> None:
    assert len(FILES) > 30


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_recording_round_trips(path) -> None:  # type: ignore[no-untyped-def]
    text = path.read_text()
    rec = parse(text)
    assert rec.argv and rec.source
    assert render(rec) == text
