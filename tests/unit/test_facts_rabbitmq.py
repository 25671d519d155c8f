"""RabbitMQ 3.10: cluster_status and list_queues in JSON, recorded from real brokers."""

from __future__ import annotations

import pytest
from recordings import answer

from hastack.facts import cluster_status, queues
from hastack.facts.rabbitmq import Alarm, parse_cluster_status, parse_stopped_vhosts, stopped_vhosts, users
from hastack.transport.base import CommandError, Result

NODES = ("rabbit@ctl-1", "rabbit@ctl-2", "rabbit@ctl-3")


def test_healthy_cluster() -> None:
    c = answer(cluster_status(), "rabbitmqctl", "cluster_status-healthy")
    assert c.available and c.members == NODES and sorted(c.running_nodes) == list(NODES)
    assert c.stopped_nodes == () and not c.partitioned and c.alarms == ()
    assert c.cluster_name == "rabbit@ctl-1" and c.versions["rabbit@ctl-2"] == "3.10.8"
    assert c.maintenance["rabbit@ctl-3"] == "not under maintenance"


def test_recorded_in_the_lab() -> None:
    c = answer(cluster_status(), "rabbitmqctl", "lab-healthy")
    assert c.available and len(c.running_nodes) == 3 and c.stopped_nodes == ()


def test_a_member_not_running() -> None:
    c = answer(cluster_status(), "rabbitmqctl", "cluster_status-node-down")
    assert c.members == NODES and c.stopped_nodes == ("rabbit@ctl-3",)
    assert "rabbit@ctl-3" not in c.versions


def test_app_stopped_on_the_asked_node() -> None:
    c = answer(cluster_status(), "rabbitmqctl", "cluster_status-app-stopped")
    assert not c.available and "requires the 'rabbit' app to be running" in c.error


def test_node_unreachable() -> None:
    c = answer(cluster_status(), "rabbitmqctl", "cluster_status-unreachable")
    assert not c.available and c.error.startswith("Error: unable to perform an operation on node 'rabbit@ctl-3'")


def test_partitions_and_alarms() -> None:
    """3.10's JSON: partitions map a node to the peers it cannot reach; alarms are maps."""
    text = ('{"alarms":[{"node":"rabbit@ctl-2","resource":"memory","type":"resource_limit"}],'
            '"cluster_name":"rabbit@ctl-1","disk_nodes":["rabbit@ctl-1","rabbit@ctl-2","rabbit@ctl-3"],'
            '"partitions":{"rabbit@ctl-1":["rabbit@ctl-3"],"rabbit@ctl-2":["rabbit@ctl-3"]},"ram_nodes":[],'
            '"running_nodes":["rabbit@ctl-2","rabbit@ctl-1"],"versions":{}}')
    c = parse_cluster_status("Cluster status of node rabbit@ctl-1 ...\n" + text)
    assert c.partitioned and c.partitions["rabbit@ctl-1"] == ("rabbit@ctl-3",)
    assert c.alarms == (Alarm("rabbit@ctl-2", "memory"),)


def test_not_a_cluster_status() -> None:
    with pytest.raises(ValueError):
        parse_cluster_status('{"name": "x"}')


def test_quorum_and_classic_queues() -> None:
    q = answer(queues("/nova"), "rabbitmqctl", "list_queues-healthy")
    assert q.available and q.complete and q.vhost == "/nova"
    quorum = q.of_type("quorum")
    assert [x.name for x in quorum] == ["scheduler", "conductor"]
    assert all(x.leader == "rabbit@ctl-1" and sorted(x.members) == list(NODES) and not x.offline
               for x in quorum)
    (reply,) = q.of_type("classic")
    assert (reply.leader, reply.members, reply.online) == ("", (), ())


def test_a_quorum_member_offline() -> None:
    q = answer(queues("/nova"), "rabbitmqctl", "list_queues-member-down")
    assert {x.name: x.offline for x in q.of_type("quorum")} == {
        "scheduler": ("rabbit@ctl-3",), "conductor": ("rabbit@ctl-3",)}


def test_rows_before_a_failure_are_kept_but_flagged() -> None:
    q = answer(queues("/nova"), "rabbitmqctl", "list_queues-stream-cut")
    assert q.available and not q.complete and len(q.queues) == 3
    assert "unresponsive" in q.error


def test_an_unknown_vhost_lists_nothing() -> None:
    q = answer(queues("/nova"), "rabbitmqctl", "lab-vhost-missing")
    assert q.available and q.complete and q.queues == ()


def test_stopped_vhosts_read_from_the_lab() -> None:
    """A new cluster's brokers booted together: some vhosts stayed stopped on some brokers."""
    assert answer(stopped_vhosts(), "rabbitmqctl", "lab-vhosts-stopped") == [
        ("rabbit@ctl-1", "cinder"), ("rabbit@ctl-1", "drills"), ("rabbit@ctl-1", "neutron"),
        ("rabbit@ctl-2", "drills"), ("rabbit@ctl-2", "heat"), ("rabbit@ctl-2", "nova")]
    assert parse_stopped_vhosts('[{"name":"nova","cluster_state":{"rabbit@ctl-1":"running"}}]') == []
    with pytest.raises(ValueError):
        parse_stopped_vhosts('{"not": "a list"}')


def test_users_read_from_the_lab() -> None:
    """hastack's deploy removes `guest`: the lab's brokers list only the accounts it made."""
    names = answer(users(), "rabbitmqctl", "list_users-deployed")
    assert names == {"hastack", "keystone", "neutron"}


def test_users_failing_rabbitmqctl_is_an_error() -> None:
    fact = users()
    with pytest.raises(CommandError):
        fact.parse(Result("ctl-1", fact.argv, 69, "", "Error: unable to perform an operation on node"))


def test_grow_lists_every_queue_it_added_the_broker_to() -> None:
    from hastack.facts.rabbitmq import grow_queues

    grown = answer(grow_queues("rabbit@ctl-3"), "rabbitmq-queues", "grow-all")
    assert len(grown.added) == 81 and grown.failed == ()
    assert "nova/scheduler" in grown.added and "neutron/q-plugin.ctl-3" in grown.added
    again = answer(grow_queues("rabbit@ctl-3"), "rabbitmq-queues", "grow-nothing")
    assert again.added == () and again.failed == ()


def test_a_stopped_brokers_database_names_its_cluster() -> None:
    from hastack.facts.rabbitmq import cluster_file, parse_cluster_nodes_config

    fact = cluster_file("/var/lib/rabbitmq/mnesia/rabbit@ctl-3")
    assert answer(fact, "rabbitmq-data", "cluster_nodes-stopped-member") == (
        "rabbit@ctl-1", "rabbit@ctl-2", "rabbit@ctl-3")
    # no database yet (a new broker): no cluster, not an error
    assert fact.parse(Result("ctl-4", fact.argv, 66, "", "")) is None
    assert parse_cluster_nodes_config("{['rabbit@ctl-1'],['rabbit@ctl-1']}.") == ("rabbit@ctl-1",)
    with pytest.raises(ValueError):
        parse_cluster_nodes_config("garbage")
