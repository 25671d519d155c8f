"""The reference observer: parsers on recorded output, and one observation over a scripted lab."""

from __future__ import annotations

import ipaddress
import subprocess
import threading

import httpx
from recordings import load

from hastack.drills import observe as ob
from hastack.facts.neutron import SERVING, Serving, serving
from hastack.facts.system import addresses, parse_fib_trie_local
from hastack.topology.model import Topology
from hastack.transport.base import Result

IP_HOLDER = load("ip", "vip-held").stdout  # `ip -j -4 addr show` on a controller holding 10.77.0.10
IP_OTHER = load("ip", "vip-elsewhere").stdout
STATS_HEALTHY = load("haproxy", "show_stat-healthy").stdout  # the writer is ctl-1
STATS_WRITER_DOWN = load("haproxy", "show_stat-writer-down").stdout  # ctl-1 DOWN: the writer is ctl-2
SERVING_NET1 = load("sh", "neutron_serving-active").stdout  # net-1 running the agents, a router and a network


def test_the_observer_reads_through_the_facts_parsers() -> None:
    """The same commands and parsers as status and deploy (facts/), run through the lab."""
    lab = ScriptedLab({("ctl-1", "ip"): IP_HOLDER, ("net-1", "sh"): SERVING_NET1})
    assert ob.lab_fact(lab, "ctl-1", addresses()).holds("10.77.0.10")
    assert lab.argvs == [["ip", "-j", "-4", "addr", "show"]]
    assert ob.lab_fact(lab, "net-1", ob.NETWORK_SERVING).agents is True
    assert ob.lab_fact(lab, "net-2", ob.NETWORK_SERVING) == Serving(False, frozenset(), frozenset())
    assert lab.argvs[-1][-1] == ob.AGENT_PATTERN  # the pattern is an argument, not part of the script


def test_writer_is_the_first_up_active_server_else_the_first_up_backup() -> None:
    """HAProxy's `/stats;csv` is `show stat`'s CSV: the facts parser reads both."""
    assert ob.galera_writer(STATS_HEALTHY) == "ctl-1"
    assert ob.galera_writer(STATS_WRITER_DOWN) == "ctl-2"
    down = "\n".join(line.replace(",UP,", ",DOWN,") if line.startswith("galera,ctl-") else line
                     for line in STATS_WRITER_DOWN.splitlines())
    assert ob.galera_writer(down) is None
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
        b"sh\0-c\0" + SERVING.encode() + b"\0sh\0" + ob.AGENT_PATTERN.encode() + b"\0": False,
        b"grep\0-l\0-a\0-E\0-e\0" + ob.AGENT_PATTERN.encode() + b"\0": False,
        b"neutron-linuxbridge-agent (/usr/bin/python3 /usr/bin/neutron-linuxbridge-agent)": False,
    }
    for cmdline, agent in cases.items():
        res = subprocess.run(["grep", "-c", "-a", "-E", ob.AGENT_PATTERN], input=cmdline, capture_output=True)
        assert (res.stdout.strip() == b"1") is agent, cmdline


class ScriptedLab:
    def __init__(self, outputs: dict[tuple[str, str], str | Exception]) -> None:
        self.outputs = outputs
        self.lock = threading.Lock()
        self.asked: list[str] = []
        self.argvs: list[list[str]] = []

    def run(self, name: str, argv: list[str], timeout: float = 120,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        with self.lock:
            self.asked.append(name)
            self.argvs.append(argv)
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
        return httpx.Response(200, text=STATS_WRITER_DOWN)

    o.http = httpx.Client(transport=httpx.MockTransport(handler))
    return o


def test_one_observation_of_the_lab(seed: Topology) -> None:
    lab = ScriptedLab({("ctl-1", "ip"): IP_HOLDER, ("ctl-2", "ip"): IP_OTHER, ("ctl-3", "ip"): TimeoutError("hung"),
                       ("net-1", "sh"): SERVING_NET1, ("net-2", "sh"): "agents\n"})
    urls: list[str] = []
    o = observer(seed, lab, [], urls)
    try:
        seen = o()
    finally:
        o.close()
    assert seen == {"vip": ["ctl-1"], "agents": ["net-1", "net-2"], "galera_writer": "ctl-2",
                    "routers": ["net-1"], "dhcp": ["net-1"]}
    assert urls == ["https://10.77.0.11:8404/stats;csv"]
    assert sorted(set(lab.asked)) == ["ctl-1", "ctl-2", "ctl-3", "net-1", "net-2"]


def test_a_cut_controller_does_not_count_as_holding_the_vip(seed: Topology) -> None:
    lab = ScriptedLab({("ctl-1", "ip"): IP_HOLDER, ("ctl-2", "ip"): IP_HOLDER.replace("10.77.0.11", "10.77.0.12"),
                       ("net-1", "sh"): SERVING_NET1, ("net-2", "sh"): "agents\n"})
    urls: list[str] = []
    o = observer(seed, lab, [["ctl-1", "*"]], urls)
    try:
        seen = o()
    finally:
        o.close()
    assert seen["vip"] == ["ctl-2"]
    assert seen["agents"] == ["net-1", "net-2"]  # agents on both: the split brain the score counts


def test_serving_finds_a_real_process_by_its_command_line() -> None:
    """The fact's own script and argv, run on this machine against a process started here (this
    machine has no qrouter/qdhcp namespaces: only the agents line can come back)."""
    marker = str(40000 + threading.get_ident() % 9999)
    fact = serving(f"^sleep[^/]{marker}")
    with subprocess.Popen(["sleep", marker]) as proc:
        try:
            res = subprocess.run(list(fact.argv), capture_output=True, text=True, timeout=10)
            assert fact.parse(Result("here", fact.argv, res.returncode, res.stdout, res.stderr)).agents is True
        finally:
            proc.kill()
    res = subprocess.run(list(fact.argv), capture_output=True, text=True, timeout=10)
    assert fact.parse(Result("here", fact.argv, res.returncode, res.stdout, res.stderr)).agents is False


FIB_HELD = load("proc", "fib_trie-vip-held").stdout  # ctl-1's /proc/net/fib_trie, holding 10.77.0.10


def test_local_addresses_from_a_recorded_fib_trie() -> None:
    """Keys followed by a `/32 host LOCAL` leaf, once each although both tables list them; the
    network, broadcast and `/8 host LOCAL` keys are not addresses of the node."""
    got = parse_fib_trie_local(FIB_HELD)
    assert got == {ipaddress.IPv4Address(a) for a in ("10.77.0.10", "10.77.0.11", "127.0.0.1")}
    moved = FIB_HELD.replace("10.77.0.10\n", "10.77.0.99\n")
    assert ipaddress.IPv4Address("10.77.0.99") in parse_fib_trie_local(moved)
    assert parse_fib_trie_local("") == frozenset()


class TogetherLab(ScriptedLab):
    """A lab that reads every controller's addresses at one instant (as hastack.lab.Lab does)."""

    def __init__(self, outputs: dict[tuple[str, str], str | Exception], held: dict[str, str | None]) -> None:
        super().__init__(outputs)
        self.held = held
        self.together: list[list[str]] = []

    def local_ipv4(self, names: list[str]) -> dict[str, frozenset[ipaddress.IPv4Address] | None]:
        self.together.append(list(names))
        return {n: None if self.held.get(n) is None else parse_fib_trie_local(self.held[n] or "") for n in names}


def test_the_vip_is_read_at_one_instant_where_the_lab_can(seed: Topology) -> None:
    """No `ip` is run on a controller: the holders come from the lab's one-pass reading; an off node
    (None) holds nothing; a fully cut holder is still left out."""
    other = FIB_HELD.replace("10.77.0.10\n", "10.77.0.1\n")
    lab = TogetherLab({("net-1", "sh"): "agents\n"}, {"ctl-1": FIB_HELD, "ctl-2": other, "ctl-3": None})
    o = observer(seed, lab, [], [])
    try:
        assert o()["vip"] == ["ctl-1"]
        lab.held["ctl-2"] = FIB_HELD
        assert o()["vip"] == ["ctl-1", "ctl-2"]
        o.cuts = lambda: [["ctl-1", "*"]]
        assert o()["vip"] == ["ctl-2"]
    finally:
        o.close()
    assert lab.together == [["ctl-1", "ctl-2", "ctl-3"]] * 3
    assert not [a for a in lab.argvs if a[0] == "ip"]
