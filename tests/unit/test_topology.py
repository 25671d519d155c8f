"""The topology loader and every validation rule: codes and file:line, never wording."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from conftest import EXAMPLES, load_example
from hastack.reports import Severity
from hastack.topology.load import load, load_text
from hastack.topology.model import Topology

INVALID = sorted((EXAMPLES / "invalid").glob("*.yml"))


def expected(path: Path) -> Counter[str]:
    m = re.search(r"^# expect: (.+)$", path.read_text(), re.M)
    assert m, f"{path} has no '# expect:' line"
    return Counter(m.group(1).split())


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_examples_report_their_codes_at_their_lines(path: Path) -> None:
    loaded = load(path)
    assert not loaded.ok
    got = Counter(f"{r.code}:{r.location.line}" for r in loaded.reports if r.location)
    assert got == expected(path)
    assert all(r.location and r.location.file == str(path) for r in loaded.reports)


@pytest.mark.parametrize("name", ["seed.yml", "four-servers.yml", "four-servers-mirrored.yml"])
def test_examples_are_valid(name: str) -> None:
    loaded = load(EXAMPLES / name)
    assert loaded.ok, [r.render() for r in loaded.reports]


def test_the_mirrored_example_differs_only_in_its_queues_and_addresses() -> None:
    """Its figures compare with four-servers.yml's only if the clouds are otherwise the same."""
    quorum = load(EXAMPLES / "four-servers.yml").topology
    mirrored_loaded = load(EXAMPLES / "four-servers-mirrored.yml")
    mirrored = mirrored_loaded.topology
    assert quorum and mirrored
    assert [r.code for r in mirrored_loaded.reports] == ["RABBIT-MIRRORED"]
    assert mirrored.rabbitmq.queues == "mirrored" and quorum.rabbitmq.queues == "quorum"
    assert [(n.name, n.roles) for n in mirrored.nodes] == [(n.name, n.roles) for n in quorum.nodes]
    assert mirrored.openstack == quorum.openstack
    assert [n.name for n in mirrored.brokers] == ["ctl-1", "ctl-2", "net-1"]


def test_seed_votes(seed: Topology) -> None:
    assert [n.name for n in seed.controllers] == ["ctl-1", "ctl-2", "ctl-3"]
    assert seed.galera_votes == 3 and not seed.garbd_nodes
    assert [n.name for n in seed.qnetd_nodes] == ["ctl-3"] and seed.corosync_votes == 3


def test_four_servers_places_the_extra_votes(four: Topology) -> None:
    assert [n.name for n in four.garbd_nodes] == ["net-1"]
    assert [n.name for n in four.qnetd_nodes] == ["ctl-1"]
    assert four.galera_votes == 3 and four.corosync_votes == 3
    # net-1 also runs the third RabbitMQ broker; services list the controllers only
    assert [n.name for n in four.brokers] == ["ctl-1", "ctl-2", "net-1"]
    assert four.partition_handling == "pause_minority"
    assert not load(EXAMPLES / "four-servers.yml").reports


def test_two_brokers_with_quorum_queues_are_refused() -> None:
    """Two controllers and a garbd elsewhere: Galera is safe, but with no third broker a quorum queue
    of two members stops with either controller: an error, unless mirrored queues are chosen."""
    text = BASE.replace("  - {name: ctl-3, address: 10.0.0.13, roles: [controller]}\n", "")
    reports = {r.code: r for r in load_text(text, "t.yml").reports}
    assert reports["RABBIT-TWO-BROKERS"].is_error
    mirrored = load_text(text + "rabbitmq: {queues: mirrored}\n", "t.yml")
    codes = {r.code: r.is_error for r in mirrored.reports}
    assert "RABBIT-TWO-BROKERS" not in codes and codes["RABBIT-MIRRORED"] is False
    assert mirrored.topology is None or mirrored.topology.partition_handling == "autoheal"


def test_pause_minority_with_two_brokers_is_refused() -> None:
    text = BASE.replace("  - {name: ctl-3, address: 10.0.0.13, roles: [controller]}\n", "")
    text += "rabbitmq: {queues: mirrored}\ntuning: {rabbitmq: {partition_handling: pause_minority}}\n"
    assert "RABBIT-PAUSE-TWO" in codes_of(text)


@pytest.mark.parametrize(("value", "refused"), [("0", False), ("0.5", True), ("1", False), ("3", False)])
def test_a_dead_peer_must_miss_a_whole_probe_round(value: str, refused: bool) -> None:
    codes = codes_of(BASE + f"tuning: {{rabbitmq: {{dead_peer_after_s: {value}}}}}\n")
    assert ("RABBIT-DEAD-PEER-SHORT" in codes) is refused


BASE = """\
name: t
network: {management: 10.0.0.0/24, vip: 10.0.0.10}
fencing: {enabled: false, reason: unit test}
nodes:
  - {name: ctl-1, address: 10.0.0.11, roles: [controller]}
  - {name: ctl-2, address: 10.0.0.12, roles: [controller]}
  - {name: ctl-3, address: 10.0.0.13, roles: [controller]}
openstack: {services: [keystone]}
"""


def codes_of(text: str) -> set[str]:
    return {r.code for r in load_text(text, "t.yml").reports}


def test_base_is_valid_apart_from_fencing_warning() -> None:
    assert codes_of(BASE) == {"FENCE-OFF"}


def test_garbd_vote_makes_two_controllers_enough() -> None:
    text = BASE.replace("  - {name: ctl-3, address: 10.0.0.13, roles: [controller]}\n",
                        "  - {name: arb, address: 10.0.0.13, roles: [arbitrator]}\n")
    assert codes_of(text) == {"FENCE-OFF"}


def test_four_galera_votes_are_even() -> None:
    text = BASE + ""
    text = text.replace("openstack:", "  - {name: arb, address: 10.0.0.14, roles: [arbitrator]}\nopenstack:")
    assert "GALERA-VOTES-EVEN" in codes_of(text)


def test_two_network_nodes_with_fencing_delay_are_accepted() -> None:
    text = BASE.replace("openstack: {services: [keystone]}", """\
  - {name: net-1, address: 10.0.0.21, roles: [network]}
  - {name: net-2, address: 10.0.0.22, roles: [network]}
openstack: {services: [keystone, neutron]}
tuning: {corosync: {priority_fencing_delay_s: 5}}
""")
    assert codes_of(text) == {"FENCE-OFF"}
    assert "PCMK-QUORUM-UNSAFE" in codes_of(text.replace("priority_fencing_delay_s: 5", "token: 1000"))


def test_network_nodes_whose_corosync_ids_clash_are_refused() -> None:
    """corosync's nodeid is the address's low 16 bits: a /15 holds two hosts with the same."""
    text = BASE.replace("10.0.0.0/24", "10.0.0.0/15").replace("openstack: {services: [keystone]}", """\
  - {name: net-1, address: 10.0.0.21, roles: [network]}
  - {name: net-2, address: 10.1.0.21, roles: [network]}
openstack: {services: [keystone, neutron]}
tuning: {corosync: {priority_fencing_delay_s: 5}}
""")
    assert "COROSYNC-NODEID" in codes_of(text)
    assert "COROSYNC-NODEID" in codes_of(text.replace("10.1.0.21", "10.1.0.0"))  # id 0
    assert "COROSYNC-NODEID" not in codes_of(text.replace("10.1.0.21", "10.1.0.22"))


def test_two_qnetd_hosts_are_refused() -> None:
    text = BASE.replace("roles: [controller]}\n  - {name: ctl-2", "roles: [controller, arbitrator]}\n  - {name: ctl-2")
    text = text.replace("name: ctl-3, address: 10.0.0.13, roles: [controller]",
                        "name: ctl-3, address: 10.0.0.13, roles: [controller, arbitrator]")
    assert "QNETD-MULTIPLE" in codes_of(text)


def test_public_vip_rules() -> None:
    text = BASE.replace("vip: 10.0.0.10}", "vip: 10.0.0.10, public: {cidr: 10.0.0.0/16, vip: 10.1.0.1}}")
    text += "tuning: {keepalived: {router_id: 7, public_router_id: 7}}\n"
    assert {"PUBLIC-OVERLAPS", "VIP-OUTSIDE-NETWORK", "VRRP-ROUTER-ID-DUP"} <= codes_of(text)


def test_unknown_key_suggests_the_right_one() -> None:
    reports = load_text(BASE.replace("name: t\n", "name: t\ndomian: x\n"), "t.yml").reports
    (r,) = [r for r in reports if r.code == "TOPO-UNKNOWN-KEY"]
    assert "'domain'" in r.hint and r.location is not None and r.location.line == 2


def test_every_report_has_a_location_and_severity() -> None:
    for path in INVALID:
        for r in load(path).reports:
            assert r.location is not None and r.location.line >= 1
            assert isinstance(r.severity, Severity)


def test_defaults_are_filled_in(seed: Topology) -> None:
    assert seed.tuning.keepalived.advert_int == 0.1
    assert seed.tuning.corosync.token == 1000
    assert seed.ssh.user == "root" and seed.fencing.enabled


def test_json_schema_names_every_top_level_key() -> None:
    schema = Topology.model_json_schema()
    assert set(schema["properties"]) == set(Topology.model_fields)
    assert schema.get("additionalProperties") is False
    json.dumps(schema)


def test_unreadable_file_is_a_report(tmp_path: Path) -> None:
    loaded = load(tmp_path / "missing.yml")
    assert [r.code for r in loaded.reports] == ["TOPO-UNREADABLE"]


def test_example_loader_helper() -> None:
    assert load_example("seed.yml").name == "seed"
