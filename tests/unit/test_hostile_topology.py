"""Issue #14, model rows: every string that reaches a file is validated by pattern or escaped, every
number is bounded by what its daemon accepts, and an address is never a number.

Before: a newline in network.interface added a `notify_master` line to keepalived.conf, a fence
parameter key added a whole `primitive` to the crm script, a fence value with a newline validated and
then crashed `render`, and `address: 172818443`, `timeout_client_s: 1e26`, `gcache_size:
999999999999999G` were rendered as given.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import EXAMPLES, FixedSecrets
from hastack.components import pacemaker
from hastack.components.base import Ctx
from hastack.components.registry import desired
from hastack.topology.load import load_text
from hostile import IFACE, KEYS, TRICKY, USER, VALUES, crm_text, mostly, topology

SEED = (EXAMPLES / "seed.yml").read_text()
SEED_LINES = SEED.splitlines()


def line_of(fragment: str) -> int:
    return next(i for i, ln in enumerate(SEED_LINES, 1) if fragment in ln)


def invalid_at(text: str) -> list[tuple[str, int]]:
    loaded = load_text(text, "t.yml")
    assert loaded.topology is None
    return [(r.code, r.location.line if r.location else 0) for r in loaded.reports]


def with_value(fragment: str, replacement: str) -> str:
    assert fragment in SEED
    return SEED.replace(fragment, replacement, 1)


# -- strings ---------------------------------------------------------------------------------------
INJECTED = json.dumps('eth0\n    notify_master "/bin/touch /tmp/x"\n#')


@pytest.mark.parametrize("name", [INJECTED, '"eth 0"', '"."', '".."', '"eth0;reboot"', '"abcdefghijklmnop"', '""',
                                  '"all"', '"default"', '"lo"', '"-x"', '"--help"',
                                  '"eth0/1"', '"eth0\\t"', "0", "true"])
def test_interface_must_be_a_linux_interface_name(name: str) -> None:
    text = with_value("interface: eth0", f"interface: {name}")
    assert invalid_at(text) == [("TOPO-INVALID", line_of("interface: eth0"))]


@pytest.mark.parametrize("name", ["eth0", "ens3.100", "br-ex", "bond0_1", "a", "abcdefghijklmno", "..a"])
def test_ordinary_interface_names_are_accepted(name: str) -> None:
    assert load_text(with_value("interface: eth0", f"interface: {name}"), "t.yml").ok


def test_public_interface_is_checked_too() -> None:
    text = with_value("  interface: eth0\n", "  interface: eth0\n  public: {cidr: 192.0.2.0/24, vip: 192.0.2.10, "
                      f"interface: {INJECTED}}}\n")
    assert invalid_at(text) == [("TOPO-INVALID", line_of("interface: eth0") + 1)]


NET1_FENCE = "fencing: {agent: fence_hastack, params: {plug: net-1}}"
NET1_LINE = line_of(NET1_FENCE)


@pytest.mark.parametrize("params", [
    {"plug": "net-1", "x=1 \\\nprimitive evil ocf:heartbeat:Dummy\n#": "1"},  # the key
    {"Plug": "net-1"}, {"1plug": "x"}, {"plug-name": "x"}, {"": "x"}, {"k" * 65: "x"},
])
def test_fence_parameter_keys_are_names(params: dict[str, str]) -> None:
    text = with_value(NET1_FENCE, "fencing: {agent: fence_hastack, params: " + json.dumps(params) + "}")
    assert {c for c, _ in invalid_at(text)} == {"TOPO-INVALID"}


@pytest.mark.parametrize("value", ["net-1\nprimitive evil ocf:heartbeat:Dummy", "a\rb", "tab\there", "caf\u00e9",
                                   "\u2028", "x" * 513, 2**31, 1.5, [1], {"a": 1}, None])
def test_fence_parameter_values_are_printable_ascii_text_numbers_or_booleans(value: Any) -> None:
    text = with_value(NET1_FENCE, "fencing: {agent: fence_hastack, params: " + json.dumps({"plug": value}) + "}")
    assert invalid_at(text) == [("TOPO-INVALID", NET1_LINE)]


def test_fence_parameter_values_with_syntax_are_quoted_not_refused() -> None:
    params = {"plug": "net-1", "passwd": 'p a"s\\s#\' op x', "port": 623, "ssl_insecure": True}
    text = with_value(NET1_FENCE, "fencing: {agent: fence_hastack, params: " + json.dumps(params) + "}")
    loaded = load_text(text, "t.yml")
    assert loaded.ok and loaded.topology is not None
    expected = {"plug": "net-1", "passwd": 'p a"s\\s#\' op x', "port": "623", "ssl_insecure": "1",
                "pcmk_host_list": "net-1"}
    assert crmsh_fence_params(pacemaker.script(loaded.topology))["fence-net-1"] == expected


@pytest.mark.parametrize(("fragment", "replacement"), [
    ("user: root", 'user: "-oProxyCommand=touch /tmp/x"'),
    ("user: root", 'user: "root@evil"'),
    ("user: root", 'user: "root\\n"'),
    ("key: .hastack/seed/id_ed25519", 'key: "id\\u0000x"'),
    ("known_hosts: .hastack/seed/known_hosts", 'known_hosts: "kh\\nx"'),
])
def test_other_strings_that_reach_an_argv_or_a_file_have_patterns(fragment: str, replacement: str) -> None:
    assert invalid_at(with_value(fragment, replacement)) == [("TOPO-INVALID", line_of(fragment))]


def test_fencing_reason_is_text_without_control_characters() -> None:
    off = SEED + 'fencing: {enabled: false, reason: "lab\\u001b[2J"}\n'
    assert invalid_at(off) == [("TOPO-INVALID", len(SEED_LINES) + 1)]
    ok = SEED + 'fencing: {enabled: false, reason: "a lab:\\nno power switch"}\n'
    assert {r.code for r in load_text(ok, "t.yml").reports} == {"FENCE-OFF"}


# -- types and ranges ------------------------------------------------------------------------------
@pytest.mark.parametrize(("fragment", "replacement"), [
    ("address: 10.77.0.11", "address: 172818443"),
    ("address: 10.77.0.11", "address: true"),
    ("address: 10.77.0.11", "address: 10.77.0.11e0"),
    ("vip: 10.77.0.10", "vip: 172818442"),
    ("management: 10.77.0.0/24", "management: 172818432"),
])
def test_addresses_are_text_never_numbers_or_booleans(fragment: str, replacement: str) -> None:
    assert invalid_at(with_value(fragment, replacement)) == [("TOPO-INVALID", line_of(fragment))]


TUNING_LINE = len(SEED_LINES) + 1


@pytest.mark.parametrize("tuning", [
    {"haproxy": {"timeout_client_s": 1e26}},
    {"haproxy": {"timeout_client_s": 1e18}},
    {"haproxy": {"timeout_client_s": 10**20}},
    {"haproxy": {"timeout_server_s": 86401}},
    {"haproxy": {"timeout_connect_ms": 10**9}},
    {"haproxy": {"galera_timeout_s": 2**31}},
    {"haproxy": {"timeout_client_s": True}},
    {"haproxy": {"timeout_client_s": 90.0}},
    {"haproxy": {"timeout_client_s": "90"}},
    {"galera": {"gcache_size": "999999999999999G"}},
    {"galera": {"gcache_size": "2048G"}},
    {"galera": {"gcache_size": "0M"}},
    {"galera": {"buffer_pool_size": "1K"}},
    {"galera": {"buffer_pool_size": "64MB"}},
    {"galera": {"evs_suspect_timeout": "PT99999999S"}},
    {"galera": {"evs_inactive_timeout": "PT0S"}},
    {"galera": {"pc_recovery": 1}},
    {"keepalived": {"router_id": True}},
    {"corosync": {"token": 1e26}},
])
def test_every_number_has_a_type_and_a_range_its_daemon_accepts(tuning: dict[str, Any]) -> None:
    codes = invalid_at(SEED + "tuning: " + json.dumps(tuning) + "\n")
    assert codes == [("TOPO-INVALID", TUNING_LINE)]


def test_in_range_tuning_still_loads() -> None:
    tuning = {"haproxy": {"timeout_client_s": 86400, "galera_timeout_s": 28800, "timeout_connect_ms": 5000},
              "galera": {"gcache_size": "1G", "buffer_pool_size": "1024M", "evs_suspect_timeout": "PT5S",
                         "evs_inactive_timeout": "PT15S", "evs_keepalive_period": "PT1S"},
              "keepalived": {"advert_int": 1}}
    loaded = load_text(SEED + "tuning: " + json.dumps(tuning) + "\n", "t.yml")
    assert loaded.ok, [r.render() for r in loaded.reports]


# -- property: structured hostile topologies render nothing they did not say ------------------------
def crmsh_lines(text: str) -> list[str]:
    """What crmsh reads: `utils.lines2cli` (split on newlines, strip, a trailing backslash joins)."""
    out, cum = [], []
    for p in text.split("\n"):
        p = p.strip()
        if p.endswith("\\"):
            cum.append(p.rstrip("\\"))
        else:
            cum.append(p)
            out.append("".join(cum).strip())
            cum = []
    return [x for x in out if x and not x.startswith("#")]


def crmsh_fence_params(script: str) -> dict[str, dict[str, str]]:
    """Each fence primitive's params as crmsh gets them (`parse.parse`: shlex.split, POSIX)."""
    out: dict[str, dict[str, str]] = {}
    for line in crmsh_lines(script):
        tokens = shlex.split(line)
        if tokens[0] == "primitive" and tokens[2].startswith("stonith:"):
            params = tokens[tokens.index("params") + 1:tokens.index("op")]
            out[tokens[1]] = dict(p.split("=", 1) for p in params)
    return out


BENIGN = topology("eth0", "eth1", "root", {"ipaddr": "192.0.2.1"}, "x")


def line_counts(doc: dict[str, Any]) -> dict[tuple[str, str], int]:
    loaded = load_text(json.dumps(doc), "h.yml")
    assert loaded.ok and loaded.topology is not None, [r.render() for r in loaded.reports]
    state = desired(Ctx(loaded.topology, FixedSecrets(None)))
    return {(n, f.path): f.data.count(b"\n") for n, d in state.items() for f in d.files}


BENIGN_LINES = line_counts(BENIGN)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(IFACE, IFACE, USER, st.dictionaries(KEYS, VALUES, max_size=4), mostly(TRICKY))
def test_hostile_structured_topologies_inject_nothing(interface: str, public: str, user: str,
                                                       params: dict[str, Any], reason: str) -> None:
    """Whatever strings reach the model, loading answers with reports or a topology whose every
    rendered file has the same lines as a benign one, and whose crm script gives crmsh exactly the
    parameters written: no injected line, directive or primitive, and no traceback."""
    doc = topology(interface, public, user, params, reason)
    loaded = load_text(json.dumps(doc), "h.yml")
    if loaded.topology is None:
        assert loaded.reports and all(r.code and r.location for r in loaded.reports)
        return
    assert line_counts(doc) == BENIGN_LINES
    expected = {k: crm_text(v) for k, v in params.items()}
    for node in ("n1", "n2"):
        got = crmsh_fence_params(pacemaker.script(loaded.topology))[f"fence-{node}"]
        assert got == {"pcmk_host_list": node, **expected}
