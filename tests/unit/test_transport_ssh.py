"""SSH transport: argv quoting, options, and (when openssh-server is installed) a real sshd.

The real-sshd tests start their own `sshd -D` on 127.0.0.1 with a generated host key in a
temp dir, and stop exactly that process. They skip when /usr/sbin/sshd is missing
(CI: install openssh-server; never enable it as a service).
"""

from __future__ import annotations

import asyncio
import getpass
import grp
import os
import shlex
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from hastack.topology.model import Node, Ssh, Topology
from hastack.transport.base import CommandTimeout, HostUnreachable
from hastack.transport.fleet import Unreachable
from hastack.transport.ssh import _options, connect, connect_all, remote_command

SSHD = Path("/usr/sbin/sshd")


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


# -- quoting and options (no sshd needed) --------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["echo", "plain"],
    ["sh", "-c", 'echo "$1"; exit 3', "sh", "it's a $(trap) `x` ; rm -rf / *"],
    ["mariadb", "-N", "-B", "-e", "SHOW GLOBAL STATUS LIKE 'wsrep_%'"],
    ["printf", "%s\n", "line one\nline two", "", "tab\there"],
])
def test_remote_command_round_trips_through_a_posix_shell(argv: list[str]) -> None:
    command = remote_command(argv)
    assert command.startswith("env LC_ALL=C ")
    assert shlex.split(command) == ["env", "LC_ALL=C", *argv]
    shown = subprocess.run(["sh", "-c", command.replace("env LC_ALL=C ", "printf '<%s>' ", 1)],
                           capture_output=True, text=True, check=True).stdout
    assert shown == "".join(f"<{a}>" for a in argv)


@pytest.mark.parametrize("argv", [[], ["A=1", "cmd"], ["echo", "nul\0byte"]])
def test_remote_command_refuses(argv: list[str]) -> None:
    with pytest.raises(ValueError):
        remote_command(argv)


def test_options_always_verify_host_keys(tmp_path: Path) -> None:
    opts = _options(Ssh(key=Path("keys/id"), known_hosts=Path("kh")), tmp_path)
    assert opts["known_hosts"] == str(tmp_path / "kh")
    assert opts["client_keys"] == [str(tmp_path / "keys/id")] and opts["agent_path"] is None
    assert opts["config"] is None and opts["connect_timeout"] == 5.0 and opts["keepalive_interval"] >= 1
    default = _options(Ssh(), tmp_path)
    assert default["known_hosts"] == str(Path("~/.ssh/known_hosts").expanduser())
    assert "client_keys" not in default


def node(port_host: str = "127.0.0.1") -> Node:
    return Node(name="ctl-1", address=port_host, roles=["controller"])  # type: ignore[arg-type]


def test_missing_known_hosts_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HostUnreachable, match="known_hosts file .* does not exist"):
        run(connect(node(), Ssh(known_hosts=Path("nope")), tmp_path))


def test_missing_key_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "kh").write_text("")
    with pytest.raises(HostUnreachable, match="SSH key .* does not exist"):
        run(connect(node(), Ssh(known_hosts=Path("kh"), key=Path("id")), tmp_path))


# -- a real sshd ---------------------------------------------------------------------------

@dataclass
class Sshd:
    dir: Path
    port: int
    ssh: Ssh


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keypair(path: Path) -> str:
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(path))
    path.chmod(0o600)
    return key.export_public_key().decode().strip()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if not SSHD.exists():
        pytest.skip("openssh-server is not installed (/usr/sbin/sshd)")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    d = tmp_path_factory.mktemp("sshd")
    host_pub = _keypair(d / "host_key")
    (d / "authorized_keys").write_text(_keypair(d / "id_ed25519") + "\n")
    port = _free_port()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    (d / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host_key'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "PermitRootLogin prohibit-password",
        "PidFile none", "LogLevel ERROR", ""]))
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(d / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.skip(f"sshd did not start: {err.strip()}")
                time.sleep(0.02)
        ssh = Ssh(user=getpass.getuser(), port=port, key=Path("id_ed25519"), known_hosts=Path("known_hosts"),
                  connect_timeout=3)
        yield Sshd(d, port, ssh)
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_ssh_transport_end_to_end(sshd: Sshd, tmp_path: Path) -> None:
    """One connection, like a deploy uses it: commands, stdin, put/get, a timeout."""
    group = grp.getgrgid(os.getgid()).gr_name
    path = tmp_path / "etc" / "svc.conf"

    async def go() -> None:
        t = await connect(node(), sshd.ssh, sshd.dir)
        try:
            r = await t.run(["sh", "-c", 'printf "%s|" "$@"; cat; echo err >&2; echo $LC_ALL >&2; exit 3', "sh",
                             "a b", "it's", "$(x)"], stdin=b"from stdin")
            assert (r.exit_status, r.stdout, r.stderr, r.host) == (3, "a b|it's|$(x)|from stdin", "err\nC\n", "ctl-1")
            assert (await t.run(["cat"], timeout=5)).stdout == "", "stdin must be closed when not given"
            assert (await t.run(["/nonexistent/tool"])).exit_status == 127
            await t.put(str(path), b"password = x\n", owner=sshd.ssh.user, group=group, mode=0o640)
            assert await t.get(str(path)) == b"password = x\n"
            assert await t.get(str(tmp_path / "missing")) is None
            start = time.monotonic()
            with pytest.raises(CommandTimeout, match="did not finish within 0.3s"):
                await t.run(["sleep", "10"], timeout=0.3)
            assert time.monotonic() - start < 2
            assert (await t.run(["true"])).ok, "the connection survives a timed-out command"
        finally:
            await t.close()

    run(go())
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_unknown_host_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {other}\n")
    (tmp_path / "id_ed25519").write_bytes((sshd.dir / "id_ed25519").read_bytes())
    with pytest.raises(HostUnreachable, match="host key of 127.0.0.1:.* is not trusted"):
        run(connect(node(), sshd.ssh, tmp_path))


def test_connect_all_keeps_unreachable_hosts(sshd: Sshd, tmp_path: Path) -> None:
    topo_file = sshd.dir / "topology.yml"
    topo = Topology.model_validate({
        "name": "t", "network": {"management": "127.0.0.0/8", "vip": "127.0.0.100"},
        "ssh": sshd.ssh.model_dump(),
        "nodes": [{"name": "ctl-1", "address": "127.0.0.1", "roles": ["controller"]},
                  {"name": "ctl-2", "address": "127.0.0.2", "roles": ["controller"]}],
    })
    with (sshd.dir / "known_hosts").open("a") as f:  # ctl-2 is known but nothing listens there
        f.write(f"[127.0.0.2]:{sshd.port} {_keypair(tmp_path / 'unused')}\n")

    async def go() -> None:
        transports = await connect_all(topo, topo_file)
        try:
            assert list(transports) == ["ctl-1", "ctl-2"]
            assert isinstance(transports["ctl-2"], Unreachable)
            assert (await transports["ctl-1"].run(["true"])).ok
        finally:
            for t in transports.values():
                await t.close()

    run(go())
