"""HAProxy: one Galera writer, VIP-only API binds, real HTTP checks, tuning-driven timings."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import get_args
from urllib.parse import urlsplit

from ruamel.yaml import YAML

from conftest import EXAMPLES
from hastack.components import haproxy, keystone
from hastack.components.base import Ctx, File
from hastack.topology.load import load
from hastack.topology.model import HAProxyTuning, Network, Node, PublicNetwork, ServiceName, Topology

CtxOf = Callable[[Topology], Ctx]
Sections = dict[str, list[str]]


def files(ctx: Ctx, node: Node) -> dict[str, File]:
    return {f.path: f for f in haproxy.COMPONENT.files(ctx, node)}


def sections(ctx: Ctx, node: Node) -> Sections:
    """'listen galera' -> its option lines (comments and blank lines dropped)."""
    out: Sections = {}
    current = ""
    for line in files(ctx, node)[haproxy.CONF].data.decode().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            current = line.strip()
            assert current not in out, f"duplicate section {current}"
            out[current] = []
        else:
            out[current].append(line.strip())
    return out


def lines(section: list[str], keyword: str) -> list[str]:
    return [ln for ln in section if ln.split()[0] == keyword]


def servers(section: list[str]) -> list[list[str]]:
    return [ln.split() for ln in lines(section, "server")]


def with_public(topo: Topology) -> Topology:
    net = Network(management=topo.network.management, vip=topo.network.vip, interface=topo.network.interface,
                  public=PublicNetwork(cidr=ipaddress.IPv4Network("192.0.2.0/24"),
                                       vip=ipaddress.IPv4Address("192.0.2.10"), interface="eth1"))
    return topo.model_copy(update={"network": net})


def test_galera_has_exactly_one_writer(seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    for node in seed.controllers:
        g = sections(ctx, node)["listen galera"]
        srv = servers(g)
        assert [s[1] for s in srv] == [n.name for n in seed.controllers]
        assert [s[2] for s in srv] == [f"{n.address}:3306" for n in seed.controllers]
        writers = [s for s in srv if "backup" not in s]
        assert len(writers) == 1 and writers[0][1] == seed.controllers[0].name
        for s in srv:
            assert "check" in s and s[s.index("port") + 1] == "9200"
            assert s[s.index("on-marked-down") + 1] == "shutdown-sessions"
            assert s[s.index("on-marked-up") + 1] == "shutdown-backup-sessions"
        assert "mode tcp" in g and "option httpchk" in g and "http-check expect status 200" in g
        assert not any("stick" in ln for ln in g)
        assert lines(g, "bind") == [f"bind {seed.network.vip}:3306 tcp-ut 60s"]  # a dead client bounded


def test_binds_vip_never_a_node_address(seed: Topology, four: Topology, ctx_of: CtxOf) -> None:
    for topo in (seed, four):
        ctx = ctx_of(topo)
        node_addrs = {str(n.address) for n in topo.nodes}
        for node in topo.controllers:
            for name, body in sections(ctx, node).items():
                if not name.startswith("listen") or name == "listen stats":
                    continue
                binds = [ln.split()[1].rsplit(":", 1)[0] for ln in lines(body, "bind")]
                assert binds == [str(topo.network.vip)], name
                assert not set(binds) & node_addrs


def test_stats_on_own_address_with_auth_and_monitor(seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    node = seed.controllers[1]
    stats = sections(ctx, node)["listen stats"]
    assert lines(stats, "bind") == [f"bind {node.address}:8404 ssl crt /etc/haproxy/hastack.pem"]
    assert "monitor-uri /healthz" in stats
    assert f"stats auth hastack:{ctx.secrets.password('haproxy/stats')}" in stats
    f = files(ctx, node)[haproxy.CONF]
    assert (f.secret, f.mode, f.owner, f.group, f.restarts) == (True, 0o640, "root", "haproxy", ("haproxy",))


def test_global_admin_socket(seed: Topology, ctx_of: CtxOf) -> None:
    g = sections(ctx_of(seed), seed.controllers[0])["global"]
    assert any(ln.startswith("stats socket /run/haproxy/admin.sock mode 660 level admin") for ln in g)
    assert lines(g, "maxconn")


def test_only_running_services_get_listeners(seed: Topology, no_nova: Topology, ctx_of: CtxOf) -> None:
    seed_names = {s.split()[1] for s in sections(ctx_of(seed), seed.controllers[0]) if s.startswith("listen")}
    assert seed_names == {"stats", "galera", *(a.name for a in haproxy.APIS if a.service != "telemetry")}
    four_names = {s.split()[1] for s in sections(ctx_of(no_nova), no_nova.controllers[0]) if s.startswith("listen")}
    assert "nova_api" not in four_names and "nova_metadata" not in four_names
    assert four_names == {"stats", "galera", "keystone", "glance_api", "placement_api", "neutron_server",
                          "cinder_api", "heat_api", "heat_api_cfn", "gnocchi_api", "aodh_api"}


def test_every_api_checks_the_service_on_every_controller(seed: Topology, ctx_of: CtxOf) -> None:
    secs = sections(ctx_of(seed), seed.controllers[2])
    for api in haproxy.apis(seed):
        body = secs[f"listen {api.name}"]
        assert "mode http" in body and "option httpchk" in body
        assert f"http-check send meth GET uri {api.check_uri}" in body
        assert f"http-check expect status {api.status}" in body
        assert lines(body, "bind") == [f"bind {seed.network.vip}:{api.port} ssl crt /etc/haproxy/hastack.pem"]
        assert "http-request set-header X-Forwarded-Proto https" in body
        srv = servers(body)
        assert [s[2] for s in srv] == [f"{n.address}:{api.port}" for n in seed.controllers]
        assert all("check" in s and "backup" not in s for s in srv)


def every_service(tmp_path: Path) -> Topology:
    """seed.yml with every service hastack knows (telemetry too), loaded and validated as a file."""
    yaml = YAML(typ="safe")
    doc = yaml.load((EXAMPLES / "seed.yml").read_text())
    doc["openstack"]["services"] = list(get_args(ServiceName))
    path = tmp_path / "every-service.yml"
    with path.open("w") as f:
        yaml.dump(doc, f)
    loaded = load(path)
    assert loaded.topology is not None, [r.render() for r in loaded.reports]
    return loaded.topology


def test_gnocchi_is_served_by_one_controller_at_a_time(four: Topology, ctx_of: CtxOf) -> None:
    """Gnocchi's file storage is per controller: the first healthy one serves, the others are backups.
    Every other API is balanced over every controller."""
    secs = sections(ctx_of(four), four.controllers[1])
    assert [s[1:] for s in servers(secs["listen gnocchi_api"])] == [
        ["ctl-1", "10.78.0.11:8041", "check"], ["ctl-2", "10.78.0.12:8041", "check", "backup"]]
    others = [a for a in haproxy.apis(four) if a.name != "gnocchi_api"]
    assert others and all("backup" not in s for a in others for s in servers(secs[f"listen {a.name}"]))


def test_every_catalog_port_is_served_on_the_vip(tmp_path: Path, ctx_of: CtxOf) -> None:
    """Issue #11: the catalog named gnocchi (8041) and aodh (8042) but HAProxy had no listener for them.
    Every endpoint port needs a VIP bind whose servers are every controller, checked over HTTP."""
    topo = every_service(tmp_path)
    ports = {urlsplit(e.url).port for e in keystone.endpoints(topo)}
    assert {8041, 8042} <= ports
    for node in topo.controllers:
        served: dict[int, list[str]] = {}
        for name, body in sections(ctx_of(topo), node).items():
            for bind in lines(body, "bind") if name.startswith("listen") else []:
                address, port = bind.split()[1].rsplit(":", 1)
                if address == str(topo.network.vip):
                    served[int(port)] = body
        assert sorted(ports - set(served)) == [], f"{node.name}: catalog ports without a VIP listener"
        for port in ports:
            body = served[port]
            assert [s[2] for s in servers(body)] == [f"{n.address}:{port}" for n in topo.controllers]
            assert all("check" in s for s in servers(body)) and "option httpchk" in body
            assert lines(body, "http-check")


def test_check_timing_follows_tuning(seed: Topology, ctx_of: CtxOf) -> None:
    h = HAProxyTuning(check_inter_ms=700, check_fastinter_ms=300, check_downinter_ms=1500, check_rise=3, check_fall=4,
                      timeout_connect_ms=1500, timeout_client_s=50, timeout_server_s=60,
                      galera_timeout_s=7200)
    topo = seed.model_copy(update={"tuning": seed.tuning.model_copy(update={"haproxy": h})})
    secs = sections(ctx_of(topo), topo.controllers[0])
    d = secs["defaults"]
    assert "default-server inter 700ms fastinter 300ms downinter 1500ms rise 3 fall 4" in d
    assert "timeout connect 1500ms" in d and "timeout client 50s" in d and "timeout server 60s" in d
    assert "timeout client 7200s" in secs["listen galera"] and "timeout server 7200s" in secs["listen galera"]


def test_public_vip_for_public_apis_only(seed: Topology, ctx_of: CtxOf) -> None:
    topo = with_public(seed)
    secs = sections(ctx_of(topo), topo.controllers[0])
    tls = " ssl crt /etc/haproxy/hastack.pem"
    assert lines(secs["listen keystone"], "bind") == [f"bind 10.77.0.10:5000{tls}", f"bind 192.0.2.10:5000{tls}"]
    assert lines(secs["listen nova_metadata"], "bind") == [f"bind 10.77.0.10:8775{tls}"]
    assert lines(secs["listen galera"], "bind") == ["bind 10.77.0.10:3306 tcp-ut 60s"]


def test_metadata_keeps_the_proxys_forwarded_for(seed: Topology, ctx_of: CtxOf) -> None:
    secs = sections(ctx_of(seed), seed.controllers[0])
    assert "option forwardfor if-none" in secs["listen nova_metadata"]
    assert "option forwardfor" in secs["listen nova_api"]


def test_nonlocal_bind_sysctl(seed: Topology, ctx_of: CtxOf) -> None:
    f = files(ctx_of(seed), seed.controllers[0])[haproxy.SYSCTL]
    assert "net.ipv4.ip_nonlocal_bind = 1" in f.data.decode().splitlines()
    assert "haproxy" in f.restarts
