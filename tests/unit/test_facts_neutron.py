"""What a network node serves to tenants: the serving fact on output recorded on the seed lab."""

from __future__ import annotations

import pytest
from recordings import load

from hastack.drills.observe import NETWORK_SERVING
from hastack.facts.neutron import Serving, parse_serving

NET = "f39d786d-0a91-4f70-b7da-344e5b52a17a"
ROUTER = "9315592e-0060-45b0-9ed0-bf26df2689b0"


def test_the_node_running_the_agents_serves_the_router_and_dhcp() -> None:
    rec = load("sh", "neutron_serving-active")
    assert rec.argv == NETWORK_SERVING.argv  # recorded with the watcher's own command
    assert NETWORK_SERVING.parse(rec.result()) == Serving(True, frozenset({ROUTER}), frozenset({NET}))


def test_the_standby_node_serves_nothing() -> None:
    rec = load("sh", "neutron_serving-standby")
    assert NETWORK_SERVING.parse(rec.result()) == Serving(False, frozenset(), frozenset())


@pytest.mark.parametrize("text", ["agents yes\n", f"router {ROUTER[:-1]}\n", "dhcp\n", f"qrouter-{ROUTER}\n",
                                  "/proc/812/cmdline\n"])
def test_output_the_script_never_prints_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_serving(text)
