"""Galera: every member in gcomm://, own-address binds, tuning reaches the provider, and the
HTTP health check answers what HAProxy needs (driven for real with a fake `mariadb` client)."""

from __future__ import annotations

import concurrent.futures
import configparser
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import FixedSecrets, replace_node
from hastack.agents import galera_check
from hastack.components import galera
from hastack.components.base import Ctx, File
from hastack.topology.model import GaleraTuning, Node, Topology

CtxOf = Callable[[Topology], Ctx]


def files(ctx: Ctx, node: Node) -> dict[str, File]:
    return {f.path: f for f in galera.COMPONENT.files(ctx, node)}


def server_cnf(ctx: Ctx, node: Node) -> configparser.RawConfigParser:
    """Both of hastack's server files, read in mariadbd's order (by name); a key set in both fails."""
    cp = configparser.RawConfigParser(allow_no_value=True, strict=True)
    seen: set[tuple[str, str]] = set()
    for path in sorted((galera.CONF, galera.MEMBERS_CONF)):
        one = configparser.RawConfigParser(allow_no_value=True, strict=True)
        one.read_string(files(ctx, node)[path].data.decode())
        for section in one.sections():
            if not cp.has_section(section):
                cp.add_section(section)
            for key, value in one[section].items():
                assert (section, key) not in seen, f"{key} set twice"
                seen.add((section, key))
                cp[section][key] = value
    return cp


def test_a_membership_change_restarts_no_member(seed: Topology, ctx_of: CtxOf) -> None:
    """The member list is its own file and asks for no restart; the server file does not change
    when a controller is replaced (ctl-2 by ctl-4 at another address)."""
    ctx = ctx_of(seed)
    replaced = replace_node(seed, "ctl-2", "ctl-4", "10.77.0.14")
    ctx4 = ctx_of(replaced)
    for name in ("ctl-1", "ctl-3"):
        before, after = files(ctx, seed.node(name)), files(ctx4, replaced.node(name))
        assert before[galera.CONF].data == after[galera.CONF].data
        assert before[galera.MEMBERS_CONF].data != after[galera.MEMBERS_CONF].data
        assert after[galera.MEMBERS_CONF].restarts == ()
        assert "10.77.0.14:4567" in after[galera.MEMBERS_CONF].data.decode()


def provider_options(cp: configparser.RawConfigParser) -> dict[str, str]:
    raw = cp["galera"]["wsrep_provider_options"].strip('"')
    return dict(item.split("=", 1) for item in raw.split(";"))


def with_galera(topo: Topology, **changes: object) -> Topology:
    g = GaleraTuning.model_validate({**topo.tuning.galera.model_dump(), **changes})
    return topo.model_copy(update={"tuning": topo.tuning.model_copy(update={"galera": g})})


def test_applies_to_controllers_only(seed: Topology) -> None:
    assert [n.name for n in seed.nodes if galera.COMPONENT.applies(seed, n)] == ["ctl-1", "ctl-2", "ctl-3"]


def test_every_controller_is_in_gcomm_on_every_controller(seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    want = {f"{n.address}:4567" for n in seed.controllers}
    for node in seed.controllers:
        address = server_cnf(ctx, node)["galera"]["wsrep_cluster_address"]
        assert address.startswith("gcomm://")
        assert set(address.removeprefix("gcomm://").split(",")) == want


def test_garbd_is_a_gcomm_peer(four: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(four)
    peers = server_cnf(ctx, four.controllers[0])["galera"]["wsrep_cluster_address"].removeprefix("gcomm://")
    assert set(peers.split(",")) == {"10.78.0.11:4567", "10.78.0.12:4567", "10.78.0.21:4567"}


def test_binds_own_address_and_names_itself(seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    for node in seed.controllers:
        cp = server_cnf(ctx, node)
        assert cp["mysqld"]["bind-address"] == str(node.address)
        assert cp["galera"]["wsrep_node_address"] == str(node.address)
        assert cp["galera"]["wsrep_node_name"] == node.name
        assert cp["galera"]["wsrep_cluster_name"] == seed.name
        assert "0.0.0.0" not in files(ctx, node)[galera.CONF].data.decode()


def test_galera_essentials(seed: Topology, ctx_of: CtxOf) -> None:
    cp = server_cnf(ctx_of(seed), seed.controllers[0])
    assert cp["galera"]["wsrep_on"] == "ON"
    assert cp["galera"]["wsrep_provider"] == "/usr/lib/galera/libgalera_smm.so"
    assert cp["mysqld"]["binlog_format"] == "ROW"
    assert cp["mysqld"]["default_storage_engine"] == "InnoDB"
    assert cp["mysqld"]["innodb_autoinc_lock_mode"] == "2"
    assert cp["mysqld"]["innodb_buffer_pool_size"] == seed.tuning.galera.buffer_pool_size
    assert int(cp["mysqld"]["max_connections"]) >= 1000


def test_provider_options_follow_tuning(seed: Topology, ctx_of: CtxOf) -> None:
    topo = with_galera(seed, evs_suspect_timeout="PT5S", evs_inactive_timeout="PT9S",
                       evs_keepalive_period="PT1S", evs_install_timeout="PT8S", gcache_size="1G", pc_recovery=False)
    opts = provider_options(server_cnf(ctx_of(topo), topo.controllers[1]))
    assert opts["evs.suspect_timeout"] == "PT5S"
    assert opts["evs.inactive_timeout"] == "PT9S"
    assert opts["evs.keepalive_period"] == "PT1S"
    assert opts["evs.install_timeout"] == "PT8S"  # garbd gets the same list (test_render_garbd)
    assert opts["gcache.size"] == "1G"
    assert opts["pc.recovery"] == "FALSE"
    assert opts["gmcast.listen_addr"] == "tcp://10.77.0.12:4567"


def test_mariabackup_sst_auth_is_secret(seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    f = files(ctx, seed.controllers[0])[galera.CONF]
    assert (f.secret, f.mode, f.owner, f.group) == (True, 0o640, "root", "mysql")
    cp = server_cnf(ctx, seed.controllers[0])
    assert cp["galera"]["wsrep_sst_method"] == "mariabackup"
    assert cp["galera"]["wsrep_sst_auth"] == f"sst:{ctx.secrets.password('galera/sst')}"
    assert {"mariadb-backup", "socat"} <= set(galera.COMPONENT.packages(seed, seed.controllers[0]))


def test_rsync_sst_needs_no_auth(seed: Topology, ctx_of: CtxOf) -> None:
    topo = with_galera(seed, sst_method="rsync")
    cp = server_cnf(ctx_of(topo), topo.controllers[0])
    assert cp["galera"]["wsrep_sst_method"] == "rsync"
    assert "wsrep_sst_auth" not in cp["galera"]
    assert "rsync" in galera.COMPONENT.packages(topo, topo.controllers[0])
    # no socat for the state transfer; mariadb-backup stays, for `hastack backup`
    assert "socat" not in galera.COMPONENT.packages(topo, topo.controllers[0])
    assert "mariadb-backup" in galera.COMPONENT.packages(topo, topo.controllers[0])


def test_health_check_files(seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    node = seed.controllers[2]
    fs = files(ctx, node)
    socket = fs["/etc/systemd/system/hastack-galera-check.socket"].data.decode()
    assert f"ListenStream={node.address}:9200" in socket
    assert "Accept=no" in socket  # one resident checker, not an instance per check
    service = fs["/etc/systemd/system/hastack-galera-check.service"].data.decode()
    assert f"ExecStart=/usr/bin/python3 {galera.CHECK_SCRIPT}\n" in service and "User=mysql" in service
    assert "Requires=hastack-galera-check.socket" in service and "Restart=always" in service
    assert fs[galera.CHECK_SCRIPT].data == Path(galera_check.__file__).read_bytes()
    assert fs[galera.CHECK_SCRIPT].restarts == fs[galera.CHECK_CNF].restarts == (galera.CHECK_SERVICE,)
    cnf = fs[galera.CHECK_CNF]
    assert (cnf.secret, cnf.mode, cnf.group) == (True, 0o640, "mysql")
    assert f"password = {ctx.secrets.password('galera/check')}" in cnf.data.decode()
    assert "user = clustercheck" in cnf.data.decode()
    assert "[hastack-galera-check]\ndonor_ok = yes\ntimeout = 2\n" in cnf.data.decode()
    assert fs[galera.CHECK_SCRIPT].mode == 0o755
    assert galera.COMPONENT.units(seed, node) == ["mariadb", "hastack-galera-check.socket"]


def test_db_users_cover_the_secrets() -> None:
    users = {(u.name, u.secret) for u in galera.DB_USERS}
    assert users == {("sst", "galera/sst"), ("clustercheck", "galera/check")}


# -- the health check itself (agents/galera_check.py) -----------------------------------------------

REQUEST = b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"
FAKE_CLIENT = """#!/bin/bash
# a stand-in for the mariadb client: one session, a query per check; its mode and answer are files
dir=$(dirname "$0")
echo spawn >> "$dir/spawns"
[ "$(cat "$dir/mode")" = down ] && { echo 'ERROR 2002' >&2; exit 1; }
while IFS= read -r line; do
    case "$line" in
        SHOW*) case "$(cat "$dir/mode")" in hang) sleep 30 ;; quit) exit 1 ;; esac
               read -r state ready < "$dir/state"
               printf 'wsrep_local_state\t%s\nwsrep_ready\t%s\n' "$state" "$ready" ;;
        SELECT*) echo hastack-end ;;
    esac
done
"""


def check_env(tmp_path: Path, topo: Topology, state: str = "4 ON", mode: str = "up") -> list[str]:
    """A rendered check file (its settings section) and the fake client; the agent's argv."""
    ctx = Ctx(topo, FixedSecrets(None))
    cnf = next(f for f in galera.check_files(ctx, topo.controllers[0]) if f.path == galera.CHECK_CNF)
    (tmp_path / "check.cnf").write_bytes(cnf.data)
    fake = tmp_path / "mariadb"
    fake.write_text(FAKE_CLIENT)
    fake.chmod(0o755)
    (tmp_path / "state").write_text(state + "\n")
    (tmp_path / "mode").write_text(mode + "\n")
    return [sys.executable, str(Path(galera_check.__file__)), "--cnf", str(tmp_path / "check.cnf"),
            "--client", str(fake)]


def one_shot(tmp_path: Path, topo: Topology, state: str = "4 ON", mode: str = "up") -> tuple[str, str]:
    out = subprocess.run(check_env(tmp_path, topo, state, mode), input=REQUEST, capture_output=True,
                         timeout=10).stdout.decode()
    head, _, body = out.partition("\r\n\r\n")
    return head.splitlines()[0], body


@pytest.mark.parametrize(("state", "status"), [
    ("4 ON", "HTTP/1.1 200 OK"),
    ("2 ON", "HTTP/1.1 200 OK"),            # donor under mariabackup keeps serving
    ("1 ON", "HTTP/1.1 503 Service Unavailable"),
    ("3 ON", "HTTP/1.1 503 Service Unavailable"),
    ("4 OFF", "HTTP/1.1 503 Service Unavailable"),
])
def test_check_answers(tmp_path: Path, seed: Topology, state: str, status: str) -> None:
    line, body = one_shot(tmp_path, seed, state)
    assert line == status
    assert body.endswith("\n")


def test_check_donor_is_down_with_rsync(tmp_path: Path, seed: Topology) -> None:
    line, _ = one_shot(tmp_path, with_galera(seed, sst_method="rsync"), "2 ON")
    assert line == "HTTP/1.1 503 Service Unavailable"


def test_check_server_down(tmp_path: Path, seed: Topology) -> None:
    line, body = one_shot(tmp_path, seed, mode="down")
    assert line == "HTTP/1.1 503 Service Unavailable"
    assert "not answering" in body


def test_check_content_length_matches() -> None:
    raw = galera_check.response(*galera_check.verdict({"wsrep_ready": "ON", "wsrep_local_state": "4"}, False))
    head, _, body = raw.partition(b"\r\n\r\n")
    headers = dict(h.split(b": ", 1) for h in head.split(b"\r\n")[1:])
    assert int(headers[b"Content-Length"]) == len(body)


@pytest.mark.parametrize(("written", "timeout"), [("2", 2.0), ("0", 0.5), ("99", 30.0), ("two", 2.0), ("", 2.0)])
def test_check_settings_are_read_within_bounds(tmp_path: Path, written: str, timeout: float) -> None:
    cnf = tmp_path / "check.cnf"
    cnf.write_text(f"[client]\nuser = x\n\n[hastack-galera-check]\ndonor_ok = yes\ntimeout = {written}\n")
    got = galera_check.Settings(str(cnf), "/usr/bin/mariadb")
    assert (got.timeout_s, got.donor_ok) == (timeout, True)
    assert galera_check.Settings(str(tmp_path / "missing.cnf"), "c").donor_ok is False


def ask(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(REQUEST)
        got = b""
        while chunk := c.recv(4096):
            got += chunk
    return got.decode().splitlines()[0]


def test_the_resident_check_keeps_one_session_and_replaces_a_broken_one(tmp_path: Path, seed: Topology) -> None:
    """Many checks, one client session; a session that ends (MariaDB restarted) or hangs answers 503 once
    (the hang within the timeout) and the next check opens a new one; a silent caller is let go."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([*check_env(tmp_path, seed), "--listen", f"127.0.0.1:{port}"])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                first = ask(port)
                break
            except OSError:
                assert time.monotonic() < deadline, "the check never listened"
                time.sleep(0.05)
        assert first == "HTTP/1.1 200 OK"
        assert [ask(port) for _ in range(20)] == ["HTTP/1.1 200 OK"] * 20
        assert (tmp_path / "spawns").read_text().count("spawn") == 1
        (tmp_path / "state").write_text("1 ON\n")
        assert ask(port) == "HTTP/1.1 503 Service Unavailable"
        (tmp_path / "state").write_text("4 ON\n")
        (tmp_path / "mode").write_text("quit\n")
        assert ask(port) == "HTTP/1.1 503 Service Unavailable"
        (tmp_path / "mode").write_text("hang\n")
        # three HAProxies ask at once: one query, every one answered 503 when it gives up (not one
        # after another, each waiting out the one before)
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: (ask(port), time.monotonic() - t0), range(3)))
        assert [a for a, _ in answers] == ["HTTP/1.1 503 Service Unavailable"] * 3
        assert max(t for _, t in answers) < galera.CHECK_DB_TIMEOUT_S + 1, answers
        (tmp_path / "mode").write_text("up\n")
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            t0 = time.monotonic()  # a caller that connects and says nothing holds up no one
            assert ask(port) == "HTTP/1.1 200 OK"
            assert time.monotonic() - t0 < 0.9
        assert (tmp_path / "spawns").read_text().count("spawn") == 3  # first, after the quit, after the hang
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_join_may_take_longer_than_galera_derives(seed: Topology, ctx_of: CtxOf) -> None:
    """Galera derives install_timeout = inactive/2 (1.5 s with PT3S): a controller booting its whole
    OpenStack answered too late and the survivor went non-Primary. The defaults give 7.5 s, inside
    Galera's allowed range [keepalive_period, inactive_timeout)."""
    g = seed.tuning.galera
    opts = provider_options(server_cnf(ctx_of(seed), seed.controllers[0]))
    assert opts["evs.install_timeout"] == g.evs_install_timeout == "PT7.5S"
    keep, install, inactive = (float(v[2:-1]) for v in (g.evs_keepalive_period, g.evs_install_timeout,
                                                         g.evs_inactive_timeout))
    assert keep <= install < inactive
