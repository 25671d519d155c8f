"""fence_hastack: option parsing, metadata and the conversation with a (fake) power switch."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import io
import json
import socket
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

AGENT = Path(__file__).resolve().parents[2] / "src/hastack/lab/fence_hastack"


def load_agent() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("fence_hastack", str(AGENT))
    spec = importlib.util.spec_from_loader("fence_hastack", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


fence = load_agent()


def test_stdin_options_as_pacemaker_sends_them() -> None:
    opts, warnings = fence.parse_stdin("action=off\nplug=net-1\nnodename=net-1\n# c\n\npcmk_x=1\n")
    assert opts == {"action": "off", "plug": "net-1", "nodename": "net-1"}
    assert warnings == ["Parse error: Ignoring unknown option 'pcmk_x=1'"]


def test_command_line_flags_long_short_and_equals() -> None:
    assert fence.parse_argv(["-o", "status", "-n", "ctl-1"]) == {"action": "status", "plug": "ctl-1"}
    assert fence.parse_argv(["--action=reboot", "--plug", "x", "--socket=/s", "-v"]) == {
        "action": "reboot", "plug": "x", "socket": "/s", "verbose": "1"}
    assert fence.parse_argv(["--port=x", "--power-timeout", "5"]) == {"port": "x", "power_timeout": "5"}
    with pytest.raises(fence.FenceError):
        fence.parse_argv(["--bogus=1"])
    with pytest.raises(fence.FenceError):
        fence.parse_argv(["-o"])


def test_target_prefers_plug_then_port_then_nodename() -> None:
    assert fence.target({"plug": "a", "port": "b", "nodename": "c"}) == "a"
    assert fence.target({"port": "b", "nodename": "c"}) == "b"
    assert fence.target({"nodename": "c"}) == "c"
    with pytest.raises(fence.FenceError):
        fence.target({})


def test_metadata_is_the_xml_pacemaker_expects() -> None:
    root = ET.fromstring(fence.metadata())
    assert root.tag == "resource-agent" and root.get("name") == "fence_hastack"
    params = {p.get("name") for p in root.iter("parameter")}
    assert {"action", "plug", "port", "socket"} <= params
    actions = {a.get("name") for a in root.iter("action")}
    assert {"on", "off", "reboot", "status", "list", "monitor", "metadata", "validate-all"} <= actions


class FakeSwitch:
    """A power switch speaking the lab protocol, with nodes in memory."""

    def __init__(self, path: Path) -> None:
        self.nodes = {"net-1": "on", "net-2": "on"}
        self.requests: list[dict[str, str]] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen()
        threading.Thread(target=self.serve, daemon=True).start()

    def answer(self, req: dict[str, str]) -> dict[str, object]:
        self.requests.append(req)
        op, node = req["op"], req.get("node", "")
        if op == "list":
            return {"ok": True, "nodes": self.nodes}
        if node not in self.nodes:
            return {"ok": False, "error": f"no node {node}"}
        if op in ("on", "off"):
            self.nodes[node] = op
        if op == "reboot":
            self.nodes[node] = "on"
        return {"ok": True, "state": self.nodes[node]}

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                req = json.loads(conn.makefile("rb").readline())
                conn.sendall((json.dumps(self.answer(req)) + "\n").encode())


@pytest.fixture
def switch(tmp_path: Path) -> Iterator[FakeSwitch]:
    sw = FakeSwitch(tmp_path / "power.sock")
    yield sw
    sw.sock.close()


def run(argv: list[str], capsys: pytest.CaptureFixture[str], stdin: str = "") -> tuple[int, str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stdin", io.StringIO(stdin))
        rc = fence.main(argv)
    return rc, capsys.readouterr().out


def test_status_off_on_reboot_and_list(switch: FakeSwitch, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    sock = f"--socket={tmp_path / 'power.sock'}"
    assert run(["-o", "status", "-n", "net-1", sock], capsys) == (0, "Status: ON\n")
    assert run(["-o", "off", "-n", "net-1", sock], capsys)[0] == 0
    assert switch.nodes["net-1"] == "off"
    assert run(["-o", "status", "-n", "net-1", sock], capsys) == (2, "Status: OFF\n")
    assert run([], capsys, f"action=on\nport=net-1\nsocket={tmp_path / 'power.sock'}\n")[0] == 0
    assert run(["-o", "reboot", "-n", "net-2", sock], capsys)[0] == 0
    assert {"op": "reboot", "node": "net-2"} in switch.requests
    assert run(["-o", "list", sock], capsys) == (0, "net-1,\nnet-2,\n")
    assert run(["-o", "monitor", sock], capsys)[0] == 0


def test_errors_exit_1(switch: FakeSwitch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["-o", "off", "-n", "nope", f"--socket={tmp_path / 'power.sock'}"], capsys)[0] == 1
    assert run(["-o", "status", "-n", "x", "--socket=/nonexistent/power.sock"], capsys)[0] == 1
    assert run(["-o", "dance", "-n", "x"], capsys)[0] == 1
    assert "switch unreachable" not in capsys.readouterr().out  # errors go to stderr
