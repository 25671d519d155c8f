"""The lab image holds every package any component asks for: lab nodes have no route to a
mirror, so a package missing from the image would make deploy fail in the lab only."""

from __future__ import annotations

import pytest

from conftest import FixedSecrets, load_example
from hastack.components.base import Ctx
from hastack.components.registry import desired
from hastack.lab.image import ensure_image, run_in_image

pytestmark = pytest.mark.image


@pytest.mark.parametrize("example", ["seed.yml", "four-servers.yml"])
def test_every_rendered_package_is_in_the_image(example: str) -> None:
    ensure_image()
    state = desired(Ctx(load_example(example), FixedSecrets(None)))
    wanted = sorted({p for d in state.values() for p in d.packages})
    res = run_in_image(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\n", *wanted])
    installed = {line.split("\t")[0] for line in res.stdout.splitlines() if "\tii" in line}
    assert sorted(set(wanted) - installed) == []
