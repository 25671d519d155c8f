"""One deployed seed lab for the whole lab tier (three controllers cost minutes of CPU to boot).

Modules that break something heal it and wait for health before the next runs; the most
destructive (full power loss, recovery) live in the module that sorts last.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from seedlab import SEED, hastack


@pytest.fixture(scope="session")
def seed_lab() -> Iterator[Path]:
    """`lab up` resumes a lab that is already up and deploy is idempotent, so a developer's running
    lab is reused. HASTACK_KEEP_LAB=1 keeps it afterwards."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    up = hastack("lab", "up", str(SEED))
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        dep = hastack("deploy", str(SEED))
        print(dep.stdout)
        assert dep.returncode == 0, dep.stdout + dep.stderr
        yield SEED
    finally:
        if not os.environ.get("HASTACK_KEEP_LAB"):
            down = hastack("lab", "down", str(SEED))
            assert down.returncode == 0, down.stdout + down.stderr
