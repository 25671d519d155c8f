"""The OpenStack services' rendered configs keep the HA rules: the VIP for everything behind
HAProxy, every broker and every memcached listed, one agent identity on the network nodes, the
same keys on every controller, secrets never world-readable."""

from __future__ import annotations

import configparser
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from ruamel.yaml import YAML

from hastack.components import common, keystone, neutron, openstack, telemetry
from hastack.components.base import Ctx, File
from hastack.components.registry import desired
from hastack.deploy.services import service_units
from hastack.topology.model import Topology

# Files of this task, by path prefix.
OWN = ("/etc/keystone/", "/etc/glance/", "/etc/placement/", "/etc/nova/", "/etc/neutron/", "/etc/cinder/",
       "/etc/heat/", "/etc/ceilometer/", "/etc/gnocchi/", "/etc/aodh/")
DEFAULTS = tuple(f"/etc/default/{n}" for n in (
    "keystone", "placement-api", "nova-api", "nova-api-metadata", "neutron-server", "cinder-api", "heat-api",
    "heat-api-cfn", "gnocchi-api", "aodh-api"))
GROUPS = {"keystone": "keystone", "glance": "glance", "placement": "placement", "nova": "nova",
          "neutron": "neutron", "cinder": "cinder", "heat": "heat", "ceilometer": "ceilometer",
          "gnocchi": "gnocchi", "aodh": "aodh"}
# Options whose value is deliberately NOT the VIP.
NODE_ADDRESS_OK = {"transport_url", "worker_self_reference_url", "memcache_servers", "memcached_servers",
                   "my_ip", "bind_host", "local_ip", "http-socket"}

Rendered = dict[str, dict[str, File]]


def render(ctx: Ctx) -> Rendered:
    return {name: {f.path: f for f in d.files} for name, d in desired(ctx).items()}


def with_services(topo: Topology, *extra: str) -> Topology:
    services = [*topo.openstack.services, *extra]
    return topo.model_copy(update={"openstack": topo.openstack.model_copy(update={"services": services})})


def with_openstack(topo: Topology, **changes: object) -> Topology:
    return topo.model_copy(update={"openstack": topo.openstack.model_copy(update=changes)})


def parse(f: File) -> configparser.RawConfigParser:
    cp = configparser.RawConfigParser(interpolation=None, strict=True)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(f.data.decode())
    return cp


def oslo_files(files: dict[str, File]) -> list[File]:
    return [f for p, f in files.items() if p.startswith(OWN) and p.endswith((".conf", ".ini"))
            and not p.endswith("-uwsgi.ini")]


def options(files: dict[str, File]) -> list[tuple[str, str, str, str]]:
    """(path, section, key, value) of every option of every oslo.config file."""
    out = []
    for f in oslo_files(files):
        cp = parse(f)
        for section in ["DEFAULT", *cp.sections()]:
            items = cp.defaults().items() if section == "DEFAULT" else cp.items(section, raw=True)
            out += [(f.path, section, k, v) for k, v in items
                    if section == "DEFAULT" or k not in cp.defaults()]
    return out


@pytest.fixture
def ctx(seed: Topology, ctx_of: Callable[[Topology], Ctx]) -> Ctx:
    return ctx_of(seed)


@pytest.fixture
def seed_files(ctx: Ctx) -> Rendered:
    return render(ctx)


# -- the VIP rule ----------------------------------------------------------------------------------
def hosts_in(value: str) -> set[str]:
    return set(re.findall(r"(?:https?://|@)([0-9.]+)", value))


def test_every_url_and_database_names_the_vip(ctx: Ctx, seed_files: Rendered) -> None:
    vip = ctx.vip
    nodes = {str(n.address) for n in ctx.topo.nodes}
    checked = 0
    for files in seed_files.values():
        for path, section, key, value in options(files):
            if key in NODE_ADDRESS_OK:
                continue
            assert not nodes & set(re.findall(r"[0-9]+(?:\.[0-9]+){3}", value)), (path, section, key)
            if hosts_in(value):
                assert hosts_in(value) == {vip}, (path, section, key, value)
                checked += 1
    assert checked > 50


def test_databases_go_through_the_vip(ctx: Ctx, seed_files: Rendered) -> None:
    conns = [(p, v) for files in seed_files.values() for p, _, k, v in options(files)
             if k in ("connection", "url")]
    assert {p for p, _ in conns} >= {
        "/etc/keystone/keystone.conf", "/etc/nova/nova.conf", "/etc/neutron/neutron.conf",
        "/etc/glance/glance-api.conf", "/etc/placement/placement.conf", "/etc/cinder/cinder.conf",
        "/etc/heat/heat.conf"}
    for _, v in conns:
        u = urlsplit(v)
        assert u.scheme == "mysql+pymysql" and u.hostname == ctx.vip and u.port is None


def test_computes_and_network_nodes_get_no_database(seed_files: Rendered) -> None:
    for node in ("cmp-1", "net-1", "net-2"):
        assert not [k for _, _, k, _ in options(seed_files[node]) if k == "connection"]


def test_catalog_names_only_the_vip(seed: Topology) -> None:
    eps = keystone.endpoints(seed)
    assert {urlsplit(e.url).hostname for e in eps} == {str(seed.network.vip)}
    kinds = {e.service_type for e in eps}
    assert kinds == {"identity", "image", "placement", "compute", "network", "volumev3", "orchestration",
                     "cloudformation"}
    for kind in kinds:
        assert sorted(e.interface for e in eps if e.service_type == kind) == ["admin", "internal", "public"]


def test_catalog_follows_the_services(no_nova: Topology) -> None:
    kinds = {e.service_type for e in keystone.endpoints(no_nova)}
    assert "compute" not in kinds and "network" in kinds


# -- brokers and caches ----------------------------------------------------------------------------
def transport_hosts(value: str) -> tuple[set[str], set[str], str]:
    u = urlsplit(value)
    assert u.scheme == "rabbit"
    creds_hosts = u.netloc.split(",")
    users = {c.split("@")[0].split(":")[0] for c in creds_hosts}
    return {c.split("@")[1] for c in creds_hosts}, users, u.path.lstrip("/")


def test_transport_url_lists_every_controller_broker(ctx: Ctx, seed_files: Rendered) -> None:
    brokers = {f"{n.address}:5672" for n in ctx.topo.controllers}
    vhosts: dict[str, set[str]] = {}
    for node, files in seed_files.items():
        for path, _, key, value in options(files):
            if key == "transport_url":
                hosts, users, vhost = transport_hosts(value)
                assert hosts == brokers, (node, path)
                assert users == {vhost}, "user and vhost are the service's name"
                vhosts.setdefault(path, set()).add(vhost)
    # Services that share RPC share the vhost, whatever node the process runs on.
    assert vhosts["/etc/nova/nova.conf"] == {"nova"}
    assert vhosts["/etc/neutron/neutron.conf"] == {"neutron"}
    assert vhosts["/etc/cinder/cinder.conf"] == {"cinder"}
    assert vhosts["/etc/heat/heat.conf"] == {"heat"}


def test_quorum_queues_and_rpc_timeout(ctx: Ctx, seed_files: Rendered) -> None:
    for files in seed_files.values():
        for f in oslo_files(files):
            cp = parse(f)
            if cp.has_option("DEFAULT", "transport_url"):
                assert cp.get("oslo_messaging_rabbit", "rabbit_quorum_queue") == "true"
                timeout = ctx.topo.tuning.rabbitmq.rpc_response_timeout
                assert cp.get("DEFAULT", "rpc_response_timeout") == str(timeout)


def test_memcached_lists_every_controller(ctx: Ctx, seed_files: Rendered) -> None:
    want = ",".join(f"{n.address}:11211" for n in ctx.topo.controllers)
    seen = 0
    for files in seed_files.values():
        for _, _, key, value in options(files):
            if key in ("memcache_servers", "memcached_servers"):
                assert value == want
                seen += 1
    assert seen >= 3 * 7


def test_authtoken_cache_is_encrypted(seed_files: Rendered) -> None:
    for files in seed_files.values():
        for f in oslo_files(files):
            cp = parse(f)
            if cp.has_section("keystone_authtoken"):
                assert cp.get("keystone_authtoken", "memcache_security_strategy") == "ENCRYPT"
                assert cp.get("keystone_authtoken", "memcache_secret_key")


# -- keystone keys ---------------------------------------------------------------------------------
def test_fernet_and_credential_keys_identical_on_every_controller(ctx: Ctx, seed_files: Rendered) -> None:
    def keys(node: str) -> dict[str, bytes]:
        return {p: f.data for p, f in seed_files[node].items() if "-keys/" in p}

    first = keys("ctl-1")
    assert sorted(first) == [f"/etc/keystone/credential-keys/{i}" for i in range(2)] + [
        f"/etc/keystone/fernet-keys/{i}" for i in range(3)]
    assert len(set(first.values())) == 5, "every key is its own secret"
    for node in ("ctl-2", "ctl-3"):
        assert keys(node) == first
    for f in (seed_files["ctl-1"][p] for p in first):
        assert (f.owner, f.group, f.mode, f.secret) == ("keystone", "keystone", 0o600, True)
        assert not f.data.endswith(b"\n")
    assert not [p for n in ("net-1", "cmp-1") for p in seed_files[n] if p.startswith("/etc/keystone/")]


def test_bootstrap_keeps_the_password_out_of_argv(ctx: Ctx) -> None:
    argv, env = keystone.bootstrap(ctx)
    pw = ctx.secrets.password("keystone/admin")
    assert pw not in " ".join(argv) and env == {"OS_BOOTSTRAP_PASSWORD": pw}
    assert f"https://{ctx.vip}:5000/v3" in argv and ctx.topo.openstack.region in argv


# -- the shared agent identity ---------------------------------------------------------------------
AGENT_FILES = {
    # what Debian's init scripts pass, in order (later files win)
    "l3": ["/etc/neutron/neutron.conf", "/etc/neutron/l3_agent.ini"],
    "dhcp": ["/etc/neutron/neutron.conf", "/etc/neutron/dhcp_agent.ini"],
    "metadata": ["/etc/neutron/neutron.conf", "/etc/neutron/metadata_agent.ini"],
    "linuxbridge": ["/etc/neutron/neutron.conf", "/etc/neutron/plugins/ml2/ml2_conf.ini",
                    "/etc/neutron/plugins/ml2/linuxbridge_agent.ini"],
}


def host_seen_by(files: dict[str, File], agent: str) -> str | None:
    host = None
    for path in AGENT_FILES[agent]:
        cp = parse(files[path])
        host = cp.defaults().get("host", host)
    return host


def test_agents_share_one_identity_on_both_network_nodes(ctx: Ctx, seed_files: Rendered) -> None:
    for node in ("net-1", "net-2"):
        for agent in AGENT_FILES:
            assert host_seen_by(seed_files[node], agent) == ctx.topo.openstack.agent_host, (node, agent)


def test_compute_l2_agent_keeps_its_own_name(seed_files: Rendered) -> None:
    assert host_seen_by(seed_files["cmp-1"], "linuxbridge") is None
    assert "host" not in parse(seed_files["ctl-1"]["/etc/neutron/neutron.conf"]).defaults()


def test_clustered_agents_are_installed_but_not_enabled(seed: Topology, ctx: Ctx) -> None:
    state = desired(ctx)
    for node in ("net-1", "net-2"):
        assert neutron.cluster_units(seed)[0] == neutron.CLEANUP_UNIT
        for unit in neutron.cluster_units(seed)[1:]:
            assert unit in state[node].packages and unit not in state[node].units
        assert neutron.CLEANUP_UNIT not in state[node].units and "net-tools" in state[node].packages
        cleanup = next(f for f in state[node].files if f.path == neutron.CLEANUP).data.decode()
        assert "ExecStop=/usr/bin/neutron-netns-cleanup " in cleanup and "--force" in cleanup
        assert "neutron-linuxbridge-agent" in state[node].units
    for f in state["net-1"].files:
        assert not set(f.restarts) & set(neutron.cluster_units(seed)), f.path


def test_openvswitch_agent_joins_the_cluster_on_network_nodes(seed: Topology,
                                                               ctx_of: Callable[[Topology], Ctx]) -> None:
    topo = with_openstack(seed, l2_agent="openvswitch")
    state = desired(ctx_of(topo))
    assert neutron.cluster_units(topo)[1] == "neutron-openvswitch-agent"
    assert "neutron-openvswitch-agent" not in state["net-1"].units
    assert "neutron-openvswitch-agent" in state["cmp-1"].units
    ovs = parse(next(f for f in state["cmp-1"].files if f.path.endswith("openvswitch_agent.ini")))
    assert ovs.get("ovs", "local_ip") == "10.77.0.31"
    assert "experimental" not in parse(next(f for f in state["cmp-1"].files if f.path == neutron.CONF))


def test_network_and_compute_on_one_node_is_refused(seed: Topology,
                                                     ctx_of: Callable[[Topology], Ctx]) -> None:
    both = ["network", "compute"]
    nodes = [n.model_copy(update={"roles": both}) if n.name == "net-1" else n for n in seed.nodes]
    with pytest.raises(ValueError, match="network node cannot also be a compute"):
        desired(ctx_of(seed.model_copy(update={"nodes": nodes})))


def test_linuxbridge_vxlan_without_l2population(seed_files: Rendered) -> None:
    for node, addr in (("net-1", "10.77.0.21"), ("cmp-1", "10.77.0.31")):
        lb = parse(seed_files[node]["/etc/neutron/plugins/ml2/linuxbridge_agent.ini"])
        assert lb.get("vxlan", "local_ip") == addr
        assert lb.get("vxlan", "l2_population") == "false"
        assert lb.get("securitygroup", "firewall_driver") == "iptables"
        assert parse(seed_files[node][neutron.CONF]).get("experimental", "linuxbridge") == "true"
    ml2 = parse(seed_files["ctl-1"][neutron.ML2])
    assert ml2.get("ml2", "mechanism_drivers") == "linuxbridge"
    assert ml2.get("ml2", "tenant_network_types") == "vxlan"


def test_metadata_path(ctx: Ctx, seed_files: Rendered) -> None:
    md = parse(seed_files["net-1"][neutron.METADATA]).defaults()
    nova = parse(seed_files["ctl-1"]["/etc/nova/nova.conf"])
    assert md["nova_metadata_host"] == ctx.vip
    assert md["metadata_proxy_shared_secret"] == nova.get("neutron", "metadata_proxy_shared_secret")
    assert nova.get("neutron", "service_metadata_proxy") == "true"


# -- APIs bind their own node ----------------------------------------------------------------------
def test_uwsgi_apis_bind_the_node_address(ctx: Ctx, seed_files: Rendered) -> None:
    for node in ctx.topo.controllers:
        files = seed_files[node.name]
        inis = [f for p, f in files.items() if p.endswith("-uwsgi.ini") and p.startswith(OWN)]
        assert len(inis) == 8
        for f in inis:
            lines = dict(line.split(" = ", 1) for line in f.data.decode().splitlines()[2:])
            host, port = lines["http-socket"].rsplit(":", 1)
            assert host == str(node.address)
            # eventlet under native threads deadlocks: one thread per process, two processes at least
            assert lines["threads"] == "1"
            assert int(lines["processes"]) == max(2, ctx.topo.openstack.api_workers)
        for path in DEFAULTS[:8]:
            text = files[path].data.decode()
            assert re.search(r'^DAEMON_ARGS="--ini /etc/\S+-uwsgi\.ini"$', text, re.M), path
        glance = parse(files["/etc/glance/glance-api.conf"]).defaults()
        assert glance["bind_host"] == str(node.address)


def test_uwsgi_apis_that_fail_to_load_exit_and_come_back(ctx: Ctx, seed_files: Rendered) -> None:
    """need-app: no app -> the process ends (it would answer 500 for ever); the drop-in restarts it
    always (uWSGI's "no app loaded" exit is a success to systemd) and with no start limit."""
    for node in ctx.topo.controllers:
        files = seed_files[node.name]
        inis = [f for p, f in files.items() if p.endswith("-uwsgi.ini") and p.startswith(OWN)]
        for f in inis:
            lines = dict(line.split(" = ", 1) for line in f.data.decode().splitlines()[2:])
            assert lines["need-app"] == "true", f.path
            unit = next(u for u in f.restarts)
            dropin = files[f"/etc/systemd/system/{unit}.service.d/hastack-restart.conf"]
            cp = configparser.ConfigParser()
            cp.read_string(dropin.data.decode())
            assert cp["Service"]["Restart"] == "always" and cp["Unit"]["StartLimitIntervalSec"] == "0"
            assert dropin.restarts == (unit,)


def test_every_openstack_daemon_restarts_always_without_a_start_limit(ctx: Ctx, seed_files: Rendered) -> None:
    """Not only the uWSGI APIs: a scheduler or agent that met its cluster down must come back by
    itself (Debian's units stop after 5 quick failures); Pacemaker's agents get none (it runs them)."""
    for node in ctx.topo.nodes:
        files = seed_files[node.name]
        for unit in service_units(ctx.topo, node):
            dropin = files.get(openstack.restart_dropin(unit))
            assert dropin is not None, (node.name, unit)
            cp = configparser.ConfigParser()
            cp.read_string(dropin.data.decode())
            assert cp["Service"]["Restart"] == "always" and cp["Unit"]["StartLimitIntervalSec"] == "0"
            assert dropin.restarts == (unit,)
        for unit in neutron.cluster_units(ctx.topo) if node.has("network") else ():
            assert openstack.restart_dropin(unit.removesuffix(".service")) not in files, (node.name, unit)


def test_worker_counts_follow_api_workers(seed: Topology, ctx_of: Callable[[Topology], Ctx]) -> None:
    files = render(ctx_of(with_openstack(seed, api_workers=3)))["ctl-2"]
    assert "processes = 3" in files["/etc/keystone/keystone-uwsgi.ini"].data.decode()
    nova = parse(files["/etc/nova/nova.conf"])
    assert nova.get("conductor", "workers") == nova.get("scheduler", "workers") == "3"
    assert parse(files["/etc/neutron/neutron.conf"]).get("DEFAULT", "rpc_workers") == "3"
    assert parse(files["/etc/heat/heat.conf"]).get("DEFAULT", "num_engine_workers") == "3"
    assert parse(files["/etc/glance/glance-api.conf"]).get("DEFAULT", "workers") == "3"


# -- compute ---------------------------------------------------------------------------------------
def test_compute_driver(seed: Topology, ctx_of: Callable[[Topology], Ctx], seed_files: Rendered) -> None:
    fake = parse(seed_files["cmp-1"]["/etc/nova/nova-compute.conf"])
    assert fake.get("DEFAULT", "compute_driver") == "fake.FakeDriver"
    state = desired(ctx_of(with_openstack(seed, compute_driver="libvirt")))["cmp-1"]
    real = parse(next(f for f in state.files if f.path == "/etc/nova/nova-compute.conf"))
    assert real.get("DEFAULT", "compute_driver") == "libvirt.LibvirtDriver"
    assert "nova-compute-kvm" in state.packages and "nova-compute-ironic" not in state.packages
    assert parse(seed_files["cmp-1"]["/etc/nova/nova.conf"]).get("DEFAULT", "my_ip") == "10.77.0.31"


# -- secrets and ownership -------------------------------------------------------------------------
def test_secret_files_are_marked_and_not_world_readable(ctx: Ctx, seed_files: Rendered) -> None:
    values = [v for v in ctx.secrets.values() if len(v) >= 6]
    for node, files in seed_files.items():
        for path, f in files.items():
            if not path.startswith(OWN + DEFAULTS):
                continue
            carries = any(v.encode() in f.data for v in values)
            assert carries == f.secret, (node, path)
            if f.secret:
                assert f.mode & 0o007 == 0, (node, path)
                if "-keys/" not in path:
                    assert (f.owner, f.mode) == ("root", 0o640)
                    assert f.group == GROUPS[path.split("/")[2]], (node, path)


def test_each_service_carries_only_its_own_passwords(ctx: Ctx, seed_files: Rendered) -> None:
    services = ["glance", "placement", "nova", "neutron", "cinder", "heat"]
    for files in seed_files.values():
        for svc in services:
            text = b"".join(f.data for p, f in files.items() if p.startswith(f"/etc/{svc}/"))
            for other in (s for s in services if s != svc):
                for kind in ("keystone", "db", "rabbit"):
                    assert ctx.secrets.password(f"{kind}/{other}").encode() not in text, (svc, kind, other)


# -- region, telemetry -----------------------------------------------------------------------------
def test_region_spelling_is_the_topology_s(seed: Topology, ctx_of: Callable[[Topology], Ctx]) -> None:
    ctx = ctx_of(with_openstack(seed, region="Lab-East"))
    regions = [v for files in render(ctx).values() for _, _, k, v in options(files)
               if k in ("region_name", "os_region_name", "region_name_for_services")]
    assert len(regions) > 20 and set(regions) == {"Lab-East"}
    assert "--bootstrap-region-id" in (argv := keystone.bootstrap(ctx)[0])
    assert argv[argv.index("--bootstrap-region-id") + 1] == "Lab-East"


def test_telemetry_only_when_asked(seed: Topology, ctx_of: Callable[[Topology], Ctx],
                                   seed_files: Rendered) -> None:
    assert not [p for files in seed_files.values() for p in files if p.startswith(OWN[-3:])]
    for files in seed_files.values():
        assert not [k for _, s, k, _ in options(files) if s == "oslo_messaging_notifications"]
    topo = with_services(seed, "telemetry")
    ctx = ctx_of(topo)
    files = render(ctx)
    ctl = files["ctl-1"]
    for path in ("/etc/ceilometer/ceilometer.conf", "/etc/gnocchi/gnocchi.conf", "/etc/aodh/aodh.conf",
                 "/etc/gnocchi/gnocchi-api-uwsgi.ini", "/etc/aodh/aodh-api-uwsgi.ini"):
        assert path in ctl
    assert "/etc/ceilometer/ceilometer.conf" not in files["cmp-1"], "the fake driver has nothing to poll"
    notif = parse(ctl["/etc/nova/nova.conf"]).get("oslo_messaging_notifications", "transport_url")
    assert transport_hosts(notif)[2] == "telemetry"
    assert parse(ctl["/etc/ceilometer/ceilometer.conf"]).get("DEFAULT", "transport_url") == notif
    # a notifier's connection tries every broker before it gives up (oslo.messaging's -1 tries one)
    notifying = [(n, path) for n, fs in files.items() for path, s, k, _ in options(fs)
                 if s == "oslo_messaging_notifications" and k == "transport_url"]
    assert len(notifying) > 5
    for n, path in notifying:
        retry = int(parse(files[n][path]).get("oslo_messaging_notifications", "retry"))
        assert retry == openstack.NOTIFICATION_RETRY >= 2 * len(transport_hosts(notif)[0]), (n, path)
    for path in ("/etc/ceilometer/ceilometer.conf", "/etc/aodh/aodh.conf"):  # notifiers on DEFAULT's transport
        assert int(parse(ctl[path]).get("oslo_messaging_notifications", "retry")) == openstack.NOTIFICATION_RETRY
    gnocchi = urlsplit(parse(ctl["/etc/gnocchi/gnocchi.conf"]).get("indexer", "url"))
    assert gnocchi.hostname == ctx.vip
    kinds = {e.service_type for e in keystone.endpoints(topo)}
    assert {"metric", "alarming"} <= kinds
    assert {"aodh", "gnocchi"} <= {d.name for d in openstack.databases(topo)}


def test_deploy_lists(seed: Topology) -> None:
    dbs = [(d.name, d.user) for d in openstack.databases(seed)]
    assert ("nova_cell0", "nova") in dbs and ("keystone", "keystone") in dbs
    users = [u.name for u in openstack.service_users(seed)]
    assert users == ["glance", "placement", "nova", "neutron", "cinder", "heat"]


def test_merge_refuses_conflicting_values() -> None:
    assert openstack.merge({"a": {"x": 1}}, {"a": {"x": 1, "y": 2}}) == {"a": {"x": 1, "y": 2}}
    with pytest.raises(ValueError):
        openstack.merge({"a": {"x": 1}}, {"a": {"x": 2}})


def test_db_sync_steps(seed: Topology, no_nova: Topology) -> None:
    steps = openstack.db_sync_steps(seed)
    assert steps[0].argv == ("keystone-manage", "db_sync")
    nova = [s.argv[1:3] for s in steps if s.service == "nova"]
    assert nova == [("api_db", "sync"), ("cell_v2", "map_cell0"), ("cell_v2", "create_cell"), ("db", "sync")]
    assert all(s.user == s.service for s in steps)
    assert "nova" not in {s.service for s in openstack.db_sync_steps(no_nova)}


def test_mirrored_queues_switch_the_services_to_classic_ha_queues(four: Topology) -> None:
    topo = four.model_copy(update={"rabbitmq": four.rabbitmq.model_copy(update={"queues": "mirrored"})})
    assert openstack.rabbit_options(topo) == {"oslo_messaging_rabbit": {
        "rabbit_quorum_queue": False, "rabbit_ha_queues": True,
        "heartbeat_timeout_threshold": 20, "heartbeat_rate": openstack.HEARTBEAT_RATE,
        "rabbit_interval_max": openstack.RABBIT_INTERVAL_MAX_S}}
    assert openstack.rabbit_options(four)["oslo_messaging_rabbit"]["rabbit_quorum_queue"] is True


def test_the_heartbeat_follows_the_topologys_tuning(four: Topology) -> None:
    from hastack.drills import profiles

    tuned = four.model_copy(update={"tuning": four.tuning.model_copy(update={
        "rabbitmq": four.tuning.rabbitmq.model_copy(update={"heartbeat_timeout_s": 4})})})
    assert openstack.rabbit_options(tuned)["oslo_messaging_rabbit"]["heartbeat_timeout_threshold"] == 4
    reference = profiles.reference(four)  # oslo.messaging's own default
    assert openstack.rabbit_options(reference)["oslo_messaging_rabbit"]["heartbeat_timeout_threshold"] == 60


def test_ceilometer_waits_for_keystone_and_gnocchi_before_it_starts(four: Topology, ctx_of: Callable[[Topology], Ctx],
                                                                   tmp_path: Path) -> None:
    """Its Gnocchi publisher is built once at start and lost for good if Keystone does not answer
    then: the unit starts the agent only once both answer through the VIP (bounded, then it fails
    and systemd retries). The script is run here with a fake curl, date and sleep."""
    ctl = render(ctx_of(four))["ctl-1"]
    dropin = ctl[telemetry.WAIT_DROPIN].data.decode()
    assert f"ExecStartPre={telemetry.WAIT_SCRIPT}\n" in dropin
    timeout = int(re.search(r"TimeoutStartSec=(\d+)", dropin).group(1))  # type: ignore[union-attr]
    assert timeout > telemetry.WAIT_S
    assert telemetry.NOTIFICATION_UNIT in ctl[telemetry.WAIT_DROPIN].restarts
    script = ctl[telemetry.WAIT_SCRIPT]
    assert script.mode == 0o755
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for name, body in (("curl", 'echo "$@" >> "$LOG"; case "$*" in *"$UP"*) printf 200;; *) printf 000; exit 7;; esac'),
                       ("sleep", "exit 0"),
                       ("date", 'n=$(cat "$CLOCK"); echo $((n + 100)) > "$CLOCK"; echo "$n"')):
        (bin_ / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_ / name).chmod(0o755)
    (tmp_path / "s").write_bytes(script.data)

    def run_it(up: str) -> subprocess.CompletedProcess[str]:
        (tmp_path / "clock").write_text("1000\n")
        (tmp_path / "log").write_text("")
        env = {"PATH": f"{bin_}:/usr/bin:/bin", "LOG": str(tmp_path / "log"), "CLOCK": str(tmp_path / "clock"),
               "UP": up}
        return subprocess.run(["sh", str(tmp_path / "s")], env=env, capture_output=True, text=True, timeout=30)

    both = run_it("https://10.78.0.10:")  # Keystone and Gnocchi answer
    assert both.returncode == 0
    assert (tmp_path / "log").read_text().split("\n")[:2] == [
        "-s -o /dev/null -w %{http_code} --max-time 5 -- https://10.78.0.10:5000/v3",
        "-s -o /dev/null -w %{http_code} --max-time 5 -- https://10.78.0.10:8041/healthcheck"]
    only_keystone = run_it(":5000/")
    assert only_keystone.returncode == 1 and "8041" in only_keystone.stderr


def test_ceilometer_events_go_to_gnocchi(four: Topology, ctx_of: Callable[[Topology], Ctx]) -> None:
    """Debian's default sends events to a queue nothing consumes (it only grows)."""
    text = render(ctx_of(four))["ctl-1"][telemetry.EVENT_PIPELINE].data.decode()
    assert "- gnocchi://" in text and "notifier://" not in text.split("---", 1)[1]


def test_ceilometer_waits_for_a_busy_gnocchi_instead_of_dropping_the_batch(
        four: Topology, ctx_of: Callable[[Topology], Ctx]) -> None:
    """Both pipelines publish every meter and event to Gnocchi with a timeout above the lone
    survivor's slowest measured answers (ceilometer's 6.05 s default drops the batch); only the
    controllers run the notification agent that reads them."""
    files = render(ctx_of(four))
    for path in (telemetry.PIPELINE, telemetry.EVENT_PIPELINE):
        doc = YAML(typ="safe").load(files["ctl-2"][path].data.decode())
        assert [s["publishers"] for s in doc["sinks"]] == [["gnocchi://?timeout=30"]], doc
        assert [len(s.get("meters", s.get("events", []))) for s in doc["sources"]] == [1]
        assert files["ctl-2"][path].mode == 0o640 and files["ctl-2"][path].group == "ceilometer"
        assert path not in files["cmp-1"] and path not in files["net-1"]


def test_every_node_probes_idle_connections_within_a_minute(ctx: Ctx, seed_files: Rendered) -> None:
    """A client of the VIP whose HAProxy end vanished must learn it (keepalive probe -> RST from the
    VIP's new holder) in under a minute, not after the kernel's default 2 hours."""
    for node in ctx.topo.nodes:
        f = seed_files[node.name][common.TCP_SYSCTL]
        values = dict(line.split(" = ") for line in f.data.decode().splitlines() if line and not line.startswith("#"))
        assert set(values) == {"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_keepalive_intvl",
                               "net.ipv4.tcp_keepalive_probes"}
        worst = int(values["net.ipv4.tcp_keepalive_time"]) + \
            int(values["net.ipv4.tcp_keepalive_intvl"]) * int(values["net.ipv4.tcp_keepalive_probes"])
        assert worst < 60, worst
        assert f.mode == 0o644 and not f.secret
