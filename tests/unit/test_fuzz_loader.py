"""Malformed and mutated topologies: the loader always answers with reports, never an exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import EXAMPLES
from hastack.topology.load import load_text

SEED = (EXAMPLES / "seed.yml").read_text()
LINES = SEED.splitlines()

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=True),
                    st.text(max_size=12), st.just("10.77.0.300"), st.just("[a, b"), st.just("{x: 1}"))


def check(text: str) -> None:
    loaded = load_text(text, "fuzz.yml")
    assert loaded.topology is not None or loaded.reports
    for r in loaded.reports:
        assert r.code and r.location is not None and r.location.line >= 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    check(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(LINES) - 1), scalars)
def test_one_value_replaced(index: int, value: object) -> None:
    line = LINES[index]
    if ":" in line and not line.lstrip().startswith("#"):
        key, _, _ = line.partition(":")
        line = f"{key}: {value}"
    check("\n".join([*LINES[:index], line, *LINES[index + 1:]]))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, len(LINES) - 1), min_size=1, max_size=6))
def test_lines_dropped(drop: list[int]) -> None:
    check("\n".join(line for i, line in enumerate(LINES) if i not in set(drop)))


JUNK = ["\t", ":", "- ", "{", "]", "  ", "\x00", "&a", "*a", "!!python/object"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(SEED)), st.sampled_from(JUNK))
def test_characters_inserted(pos: int, junk: str) -> None:
    check(SEED[:pos] + junk + SEED[pos:])
