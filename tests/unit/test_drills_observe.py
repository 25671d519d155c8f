"""The reference observer: parsers on recorded output, and one observation over a scripted lab."""

from __future__ import annotations

import subprocess
import threading

import httpx

from hastack.drills import observe as ob
from hastack.topology.model import Topology

IP_HOLDER = """1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
2: eth0    inet 10.77.0.11/24 brd 10.77.0.255 scope global eth0\\       valid_lft forever preferred_lft forever
2: eth0    inet 10.77.0.10/32 scope global eth0\\       valid_lft forever preferred_lft forever
"""
IP_OTHER = """1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
2: eth0    inet 10.77.0.12/24 brd 10.77.0.255 scope global eth0\\       valid_lft forever preferred_lft forever
"""
HEADER = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis," \
         "status,weight,act,bck,chkfail,chkdown,lastchg,downtime\n"


def row(px: str, sv: str, status: str, act: str, bck: str) -> str:
    return f"{px},{sv},0,0,0,0,,0,0,0,,0,,0,0,0,0,{status},1,{act},{bck},0,0,5,0\n"


def stats(*rows: str) -> str:
    return HEADER + row("galera", "FRONTEND", "OPEN", "", "") + "".join(rows) + \
        row("galera", "BACKEND", "UP", "1", "2") + row("keystone", "ctl-1", "UP", "1", "0")


def test_vip_address_is_found_only_as_a_whole_address() -> None:
    assert ob.has_address(IP_HOLDER, "10.77.0.10")
    assert not ob.has_address(IP_OTHER, "10.77.0.10")
    assert not ob.has_address(IP_HOLDER, "10.77.0.1")  # a prefix of 10.77.0.10/11 is not the address


def test_writer_is_the_first_up_active_server_else_the_first_up_backup() -> None:
    assert ob.galera_writer(stats(row("galera", "ctl-1", "UP", "1", "0"), row("galera", "ctl-2", "UP", "0", "1"))) \
        == "ctl-1"
    assert ob.galera_writer(stats(row("galera", "ctl-1", "DOWN", "1", "0"), row("galera", "ctl-2", "DOWN", "0", "1"),
                                  row("galera", "ctl-3", "UP 1/2", "0", "1"))) == "ctl-3"
    assert ob.galera_writer(stats(row("galera", "ctl-1", "DOWN", "1", "0"))) is None
    assert ob.galera_writer("") is None


def test_fully_cut_nodes_are_those_cut_from_everyone() -> None:
    assert ob.fully_cut([["ctl-1", "*"], ["net-1", "net-2"]]) == {"ctl-1"}


def test_agents_pattern_matches_only_agent_processes() -> None:
    """Run the real pattern with grep over command lines as /proc shows them (NUL-separated)."""
    import subprocess

    cases = {
        b"neutron-l3-agent (/usr/bin/python3 /usr/bin/neutron-l3-agent --config-file=/etc/neutron/neutron.conf)": True,
        b"/usr/bin/python3\0/usr/bin/neutron-dhcp-agent\0--config-file\0/etc/neutron/neutron.conf\0": True,
        b"systemctl\0show\0-p\0Id\0--\0neutron-l3-agent\0neutron-dhcp-agent\0": False,
        b"python3\0-c\0import sys\0neutron-metadata-agent\0": False,
        b"sh\0-c\0" + ob.FIND_AGENTS[2].encode() + b"\0": False,
        b"neutron-linuxbridge-agent (/usr/bin/python3 /usr/bin/neutron-linuxbridge-agent)": False,
    }
    for cmdline, agent in cases.items():
        res = subprocess.run(["grep", "-c", "-a", "-E", ob.AGENT_PATTERN], input=cmdline, capture_output=True)
        assert (res.stdout.strip() == b"1") is agent, cmdline
    assert ob.FIND_AGENTS[:2] == ["sh", "-c"]


class ScriptedLab:
    def __init__(self, outputs: dict[tuple[str, str], str | Exception]) -> None:
        self.outputs = outputs
        self.lock = threading.Lock()
        self.asked: list[str] = []

    def run(self, name: str, argv: list[str], timeout: float = 120,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        with self.lock:
            self.asked.append(name)
        out = self.outputs.get((name, argv[0]), "")
        if isinstance(out, Exception):
            raise out
        return subprocess.CompletedProcess(argv, 0, out, "")

    def address(self, name: str) -> str:
        return {"ctl-1": "10.77.0.11", "ctl-2": "10.77.0.12", "ctl-3": "10.77.0.13"}[name]


def observer(seed: Topology, lab: ScriptedLab, cuts: list[list[str]], seen_urls: list[str]) -> ob.LabObserver:
    o = ob.LabObserver(lab, seed, "stats-pw", lambda: cuts, timeout=0.5)

    def handler(request: httpx.Request) -> httpx.Response:
        seen_urls.append(str(request.url))
        assert request.headers["authorization"].startswith("Basic ")
        return httpx.Response(200, text=stats(row("galera", "ctl-1", "DOWN", "1", "0"),
                                              row("galera", "ctl-2", "UP", "0", "1")))

    o.http = httpx.Client(transport=httpx.MockTransport(handler))
    return o


def test_one_observation_of_the_lab(seed: Topology) -> None:
    lab = ScriptedLab({("ctl-1", "ip"): IP_HOLDER, ("ctl-2", "ip"): IP_OTHER, ("ctl-3", "ip"): TimeoutError("hung"),
                       ("net-1", "sh"): "/proc/812/cmdline\n", ("net-2", "sh"): ""})
    urls: list[str] = []
    o = observer(seed, lab, [], urls)
    try:
        seen = o()
    finally:
        o.close()
    assert seen == {"vip": ["ctl-1"], "agents": ["net-1"], "galera_writer": "ctl-2"}
    assert urls == ["https://10.77.0.11:8404/stats;csv"]
    assert sorted(set(lab.asked)) == ["ctl-1", "ctl-2", "ctl-3", "net-1", "net-2"]


def test_a_cut_controller_does_not_count_as_holding_the_vip(seed: Topology) -> None:
    lab = ScriptedLab({("ctl-1", "ip"): IP_HOLDER, ("ctl-2", "ip"): IP_HOLDER.replace("10.77.0.11", "10.77.0.12"),
                       ("net-1", "sh"): "/proc/1/cmdline", ("net-2", "sh"): "/proc/2/cmdline"})
    urls: list[str] = []
    o = observer(seed, lab, [["ctl-1", "*"]], urls)
    try:
        seen = o()
    finally:
        o.close()
    assert seen["vip"] == ["ctl-2"]
    assert seen["agents"] == ["net-1", "net-2"]  # agents on both: the split brain the score counts
