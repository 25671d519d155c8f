"""crm_mon XML (pacemaker 2.1.5): nodes, quorum, where resources run, failures, fencing."""

from __future__ import annotations

import pytest
from recordings import answer, load

from hastack.facts import crm_mon
from hastack.facts.pacemaker import parse_crm_mon, parse_resource_ids, resource_ids
from hastack.transport.base import Result

AGENTS = ("neutron-metadata-agent", "neutron-dhcp-agent", "neutron-l3-agent")


def test_healthy() -> None:
    m = answer(crm_mon(), "crm_mon", "healthy")
    assert m.available and m.dc == "net-2" and m.with_quorum and m.stonith_enabled is True
    assert m.nodes_in("online") == ("net-1", "net-2") and m.node("net-2").is_dc
    assert m.running_on("neutron-agents") == ("net-1",)
    assert [r.id for r in m.resources if r.group == "neutron-agents"] == list(AGENTS)
    assert m.running_on("fence-net-1") == ("net-2",) and m.resource("fence-net-1").agent == "stonith:fence_hastack"
    assert m.failures == () and m.fencing == ()


def test_recorded_in_the_lab() -> None:
    m = answer(crm_mon(), "crm_mon", "lab-healthy")
    assert m.available and m.pacemakerd_state == "running" and m.with_quorum
    assert m.nodes_in("online") == ("net-1", "net-2") and len(m.running_on("neutron-agents")) == 1


def test_failed_action() -> None:
    m = answer(crm_mon(), "crm_mon", "failed-action")
    (f,) = m.failures
    assert (f.resource, f.node, f.task, f.exitcode, f.exitstatus) == (
        "neutron-l3-agent", "net-1", "monitor", 7, "not running")
    assert m.running_on("neutron-l3-agent") == ("net-1",), "recovered in place"


def test_node_fenced_and_group_moved() -> None:
    m = answer(crm_mon(), "crm_mon", "node-fenced")
    assert m.node("net-1").state == "offline" and m.running_on("neutron-agents") == ("net-2",)
    assert m.resource("fence-net-2").role == "Stopped" and m.running_on("fence-net-2") == ()


def test_fence_history() -> None:
    m = answer(crm_mon(), "crm_mon", "node-fenced-history")
    assert [(e.action, e.target, e.status, e.delegate) for e in m.fencing] == [
        ("reboot", "net-1", "success", "net-2"), ("reboot", "net-1", "failed", "net-2")]


def test_node_unclean() -> None:
    m = answer(crm_mon(), "crm_mon", "node-unclean")
    assert m.node("net-1").state == "unclean" and m.nodes_in("unclean") == ("net-1",)
    assert m.running_on("neutron-agents") == ("net-1",), "believed to run there until fenced"


def test_no_quorum() -> None:
    m = answer(crm_mon(), "crm_mon", "no-quorum")
    assert m.available and not m.with_quorum and m.running_on("neutron-agents") == ()


def test_standby() -> None:
    m = answer(crm_mon(), "crm_mon", "standby")
    assert m.node("net-1").state == "standby" and m.running_on("neutron-agents") == ("net-2",)


def test_not_running_is_an_answer() -> None:
    m = answer(crm_mon(), "crm_mon", "not-running")
    assert load("crm_mon", "not-running").exit_status == 102
    assert not m.available and m.error.startswith("Not connected")
    assert "Connection to cluster failed" in m.error


def test_legacy_as_xml_document() -> None:
    rec = load("crm_mon", "legacy-as-xml")
    m = parse_crm_mon(rec.stdout)
    assert m.available and m.dc == "net-2" and m.running_on("neutron-agents") == ("net-1",)


def test_clones_bundles_and_groups_in_clones() -> None:
    xml = """<pacemaker-result api-version="2.25" request="crm_mon">
  <summary><current_dc present="true" name="a" with_quorum="true"/></summary>
  <resources>
    <clone id="ping-clone" multi_state="false" unique="false" managed="true" failed="false">
      <resource id="ping" resource_agent="ocf:pacemaker:ping" role="Started" active="true" failed="false"
                nodes_running_on="1"><node name="a" id="1"/></resource>
      <resource id="ping" resource_agent="ocf:pacemaker:ping" role="Started" active="true" failed="false"
                nodes_running_on="1"><node name="b" id="2"/></resource>
    </clone>
    <clone id="grp-clone">
      <group id="grp:0" number_resources="1">
        <resource id="r" resource_agent="lsb:x" role="Started" active="true"><node name="b" id="2"/></resource>
      </group>
    </clone>
    <bundle id="b1" type="podman" image="x"><replica id="0">
      <resource id="ip" resource_agent="ocf:heartbeat:IPaddr2" role="Started" active="true">
        <node name="a" id="1"/>
      </resource>
    </replica></bundle>
  </resources>
  <status code="0" message="OK"/>
</pacemaker-result>"""
    m = parse_crm_mon(xml)
    assert m.running_on("ping-clone") == ("a", "b") and m.running_on("ping") == ("a", "b")
    assert m.running_on("grp") == ("b",) and m.resource("r").clone == "grp-clone"
    assert m.running_on("b1") == ("a",)


def test_not_crm_mon_output() -> None:
    with pytest.raises(ValueError):
        parse_crm_mon("<html/>")
    fact = crm_mon()
    m = fact.parse(Result("net-1", fact.argv, 127, "", "sh: 1: crm_mon: not found\n"))
    assert not m.available and "not found" in m.error


def test_resource_ids_read_from_the_lab() -> None:
    """Resources and their nesting, never their operations or attribute sets."""
    ids = answer(resource_ids(), "cibadmin", "resources-deployed")
    assert {"fence-net-1", "fence-net-2", "neutron-agents", "neutron-l3-agent"} <= ids
    assert not any(i.endswith("-monitor-60s") or "instance_attributes" in i for i in ids)


def test_resource_ids_of_an_empty_cib_and_of_garbage() -> None:
    assert parse_resource_ids("<resources/>") == frozenset()
    with pytest.raises(ValueError):
        parse_resource_ids("<cib/>")


def test_pem_body_compares_certificates_not_their_wrapping() -> None:
    from hastack.facts.pacemaker import pem_body

    a = "-----BEGIN CERTIFICATE-----\nMIIB\nabcd\n-----END CERTIFICATE-----\n"
    b = "Certificate: QNet CA\r\n-----BEGIN CERTIFICATE-----\r\nMIIBabcd\r\n-----END CERTIFICATE-----\r\n"
    assert pem_body(a) == pem_body(b) == "MIIBabcd"
    assert pem_body("certutil: Could not find cert: QNet CA\n") == ""
