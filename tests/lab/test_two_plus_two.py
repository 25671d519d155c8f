"""Lab tier: the seed document's own figure, two controllers + two network nodes (examples/four-servers.yml),
survives the loss of any one of its four servers.

The third votes live on the other pair: garbd and a RabbitMQ broker on net-1, qnetd on ctl-1. Each server
is powered off in turn under every drill workload (writes through the VIP, publishes with confirms to a
quorum queue, Keystone tokens, Neutron network lists): nothing acknowledged may be lost, no split brain,
and publishes must succeed again while the server is still off. While the VIP controller is off (its
drill holds it off longer), `server create --wait` (fake driver) must reach ACTIVE and a telemetry
sample must reach Gnocchi.

Runs on its own lab (10.78.0.0/24) after the seed and status modules (this name sorts after theirs), with
the seed lab taken down first: two full clouds do not fit a 2-core host. The timings are printed for the
record; the benchmark figures come from `hastack drill`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hastack.components import rabbitmq, telemetry
from hastack.topology.load import load
from seedcloud import CLOUDS, amqp_connections, clients_cut_from, clouds_yaml, create_server, ready_to_build
from seedlab import ROOT, hastack, own_lab

pytestmark = pytest.mark.lab

FOUR = ROOT / "examples" / "four-servers.yml"
VIP = "10.78.0.10"
CLIENT = "cmp-1"
NAME = "hs-four"
# In this order each drill hits another server: the VIP and the writer start on one controller, so
# "other" is the second one; the VIP then stays where it is and the writer fails back, so the next
# drill hits the first; the agents stick where they run, so the standby goes before the active one.
POWER_OFFS = ("power-off-other-controller", "power-off-vip-writer", "power-off-passive-network",
              "power-off-active-network")
HIT: list[str] = []
TOPO = load(FOUR).topology
assert TOPO is not None
NET_TICKTIME = TOPO.tuning.rabbitmq.net_ticktime
HOLD_S = 40 if rabbitmq.peer_watch(TOPO) else int(NET_TICKTIME * 1.25) + 15
"""How long each server that runs a broker stays off. The claim tested is that writes and publishes
serve again while the server is still off (in the second half of the hold). A quorum queue whose
leader died serves again once Ra's own failure detector (aten) gives up on the silent node (7-8 s in
the lab). But a publisher that reconnects registers with the queue's recorded leader, the dead node,
and the record moves only after the survivors' `nodedown`. Erlang's tick timer sends it 0.75-1.25 x
net_ticktime after the node went silent (45-75 s with the default 60; CI saw publish gaps of 8 s,
28 s and 49.7 s, issue 13), hence 90 s without the dead-peer watch. The watch
(agents/rabbit_peers.py) drops a peer whose host stopped answering after 3 s (4-5 s measured from
the power-off), so with it on (the default; README) 40 s leaves the 20-s second half to a
publisher that needs 10 s at most."""


def run(*args: str, stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hastack.cli.main", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout, input=stdin if stdin is not None else "")


def on(node: str, command: str, *, stdin: str | None = None, timeout: float = 300) -> str:
    res = run("lab", "ssh", "-t", str(FOUR), node, "--", command, stdin=stdin, timeout=timeout)
    assert res.returncode == 0, f"{node}: {command}: {res.stdout}{res.stderr}"
    return res.stdout


def osc(*args: str, timeout: float = 300) -> Any:
    return json.loads(on(CLIENT, shlex.join(["openstack", "--os-cloud", "four", *args, "-f", "json"]),
                         timeout=timeout))


def osc_quietly(*args: str) -> None:
    run("lab", "ssh", "-t", str(FOUR), CLIENT, "--", shlex.join(["openstack", "--os-cloud", "four", *args]))


def status_code() -> tuple[int, dict[str, Any]]:
    res = hastack("status", str(FOUR), "--json", timeout=120)
    return res.returncode, (json.loads(res.stdout) if res.stdout.strip() else {})


def wait_healthy(timeout: float = 300) -> float:
    t0 = time.monotonic()
    last: dict[str, Any] = {}
    while time.monotonic() - t0 < timeout:
        code, last = status_code()
        if code == 0:
            return time.monotonic() - t0
        time.sleep(3)
    raise AssertionError(f"status not healthy within {timeout:.0f}s: {last.get('summary')} "
                         f"{[f['message'] for f in last.get('findings', [])][:6]}")


@pytest.fixture(scope="module")
def four_lab() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    with own_lab(FOUR, ("ctl-1", "ctl-2", "net-1", "net-2")) as topo:
        yield topo


def test_a_fresh_deploy_is_healthy_with_three_brokers(four_lab: Path) -> None:
    """The deploy gate and status agree: healthy right after deploy (a short bound for the services'
    first reports), and RabbitMQ runs on ctl-1, ctl-2 and the arbitrator net-1."""
    took = wait_healthy(timeout=60)
    code, doc = status_code()
    print(f"healthy {took:.1f} s after deploy returned")
    brokers = {n["node"]: n for n in doc["rabbitmq"]["nodes"]} if "rabbitmq" in doc else {}
    assert set(brokers) == {"ctl-1", "ctl-2", "net-1"}, doc.get("rabbitmq")
    running = on("net-1", "rabbitmqctl -q eval 'lists:sort([node() | nodes()]).'")
    assert all(f"rabbit@{n}" in running for n in ("ctl-1", "ctl-2", "net-1")), running


BROKERS = {n.name for n in TOPO.brokers}
CONTROLLERS = tuple(n.name for n in TOPO.controllers)


def network_victim(scenario: str) -> str | None:
    """The network node a network drill will power off (where the agents run, or the other one)."""
    if not scenario.endswith("-network"):
        return None
    active = on("net-1", "crm_resource --locate -r hastack-neutron-cleanup").split()[-1]
    return active if "active" in scenario else next(n for n in ("net-1", "net-2") if n != active)


BUILD_HOLD_S = 300
"""The longest the VIP controller stays off in its drill: long enough for the brokers to drop it
(nodedown, up to 75 s), the agents' next reports, a server build and a telemetry sample (README).
The test ends the hold as soon as they are done (`--heal-when`): 110-150 s after the fault."""


@pytest.mark.parametrize("scenario", POWER_OFFS)
def test_each_server_powered_off_loses_nothing(four_cloud: Path, scenario: str, tmp_path: Path) -> None:
    wait_healthy()
    victim = network_victim(scenario)
    # the long hold is for a dead broker (see HOLD_S); a network node without one keeps the scenario's own
    hold = ["--hold", str(HOLD_S)] if victim is None or victim in BROKERS else []
    drill = ["drill", scenario, "-t", str(four_cloud), "--report", str(tmp_path)]
    if scenario != "power-off-vip-writer":
        res = hastack(*drill, *hold, timeout=1200)
    else:
        # The same power-off also builds a server and sends a telemetry sample while the controller
        # is off (it was a module test of its own, with its own power-off and heal: ~2 min of CI).
        # The hold ends when the build and the sample are done (--heal-when), BUILD_HOLD_S at the latest.
        victim = galera_writer()
        net = build_prerequisites()
        done: dict[str, Any] = {}
        built = tmp_path / "built"
        runner = threading.Thread(target=lambda: done.update(res=hastack(
            *drill, "--hold", str(BUILD_HOLD_S), "--heal-when", str(built), timeout=1500)), daemon=True)
        runner.start()
        try:
            build_while_off(victim, net)
        finally:
            built.touch()
            runner.join(timeout=1500)
            clean_build()
        res = done["res"]
    print(res.stdout[-4000:], res.stderr[-2000:])
    assert res.returncode in (0, 1), res.stdout + res.stderr  # 1 = a timing target missed (3: not healed, 4: lost)
    HIT.extend(re.findall(rf"{scenario}: target (\S+)", res.stdout))
    runs = [json.loads(p.read_text()) for p in tmp_path.rglob("*.json") if "scores" in p.read_text()]
    runs = [r for r in runs if "scores" in r]
    assert runs, f"no run report in {sorted(tmp_path.rglob('*'))}"
    for r in runs:
        f = r["scores"]["figures"]
        print(scenario, {k: f[k] for k in ("db_gap_s", "publish_gap_s", "consume_gap_s", "keystone_gap_s",
                                           "networks_gap_s", "heal_to_healthy_s")})
        assert f["db_acked"] > 0 and f["db_lost"] == 0
        assert f["messages_confirmed"] > 0 and f["messages_lost"] == 0
        assert f["split_brain_samples"] == 0
        resumed = served_while_off(r["recording"])
        print(scenario, "successes in the second half of the time the server was off:", resumed)
        assert all(resumed.values()), resumed
        assert f["heal_to_healthy_s"] is not None


def build_prerequisites() -> str:
    """A flavor, an image and a network for the server built with a controller off; the network's id."""
    osc("flavor", "create", "--ram", "64", "--disk", "0", "--vcpus", "1", f"{NAME}-flavor")
    osc("image", "create", "--disk-format", "raw", "--container-format", "bare", "--file",
        f"/root/{NAME}.img", f"{NAME}-image")
    net = str(osc("network", "create", f"{NAME}-net")["id"])
    osc("subnet", "create", "--network", net, "--subnet-range", "192.168.78.0/24", f"{NAME}-subnet")
    return net


def build_while_off(victim: str, net: str) -> None:
    """With the VIP controller off (the drill powers it off): tokens, the scheduler and conductor on
    the survivor, RPC through the two remaining brokers (ctl and net-1), and the compute node build a
    server; a telemetry sample still reaches Gnocchi (the survivor's API, agents and storage)."""
    t0, since = time.monotonic(), int(time.time())
    # Until the survivors drop the silent broker, RabbitMQ's metadata operations wait for it and a
    # publish can be nacked: the documented window (README). After it and the agents' next reports,
    # nothing may fail. Polled from before the drill's fault (the broker is still there).
    survivor = next(n for n in CONTROLLERS if n != victim)
    address = str(TOPO.node(victim).address)
    had = amqp_connections(on, address, [n.name for n in rabbitmq.watch_nodes(TOPO) if n.name != victim]) \
        if rabbitmq.peer_watch(TOPO) else None
    deadline = t0 + 300
    while broker_sees(survivor, victim) is not False:
        assert time.monotonic() < deadline, f"{survivor}'s broker still connected to {victim}"
        time.sleep(1)
    t_off = time.monotonic()
    print(f"the brokers dropped {victim} {t_off - t0:.1f} s after the drill started")
    if had is not None:  # dropped by the dead-peer watch, and every host's clients cut from it
        clients_cut_from(on, victim, address, had, since)
    # an agent whose reports went through the dead broker is alive at its first report after that
    deadline = time.monotonic() + 120
    while not ready_to_build(osc):
        assert time.monotonic() < deadline, "nova-compute still down or a Neutron agent still dead"
        time.sleep(1)
    print(f"{victim} off -> the cloud ready to build {time.monotonic() - t_off:.1f} s after nodedown")
    server = create_server(
        lambda *a, timeout=300: on(CLIENT, shlex.join(["openstack", "--os-cloud", "four", *a]), timeout=timeout),
        f"{NAME}-vm", "--flavor", f"{NAME}-flavor", "--image", f"{NAME}-image", "--network", net)
    assert server["status"] == "ACTIVE", server
    print(f"{victim} off -> server ACTIVE {time.monotonic() - t_off:.1f} s after nodedown")
    took = sample_in_gnocchi(f"{NAME}-sample-off")
    print(f"{victim} off -> image.size measure in Gnocchi {took:.1f} s after the upload")
    deadline = time.monotonic() + 120
    while (seen := broker_sees(survivor, victim)) is None and time.monotonic() < deadline:
        time.sleep(1)
    assert seen is False, f"{victim} came back before the build and the sample were done: raise BUILD_HOLD_S"


def broker_sees(node: str, peer: str) -> bool | None:
    """Whether `node`'s broker is connected to `peer`'s; None when it gave no answer within 20 s: one
    probe that hangs is a "not yet", and the caller's deadline bounds the wait."""
    res = answer(node, f"timeout 20 rabbitmqctl -q eval \"lists:member('rabbit@{peer}', nodes()).\"", 40)
    return {"true": True, "false": False}.get(res.stdout.strip()) if res and res.returncode == 0 else None


def answer(node: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str] | None:
    """`command` on `node`, or None when no answer came within `timeout`: a session opened as the node
    was powered off hung for more than 60 s (the lab, 2026-12-07), while the sample test's later probes
    of the same powered-off node did not hold it up (its sample arrived 8.2 s after the upload)."""
    try:
        return run("lab", "ssh", "-t", str(FOUR), node, "--", command, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def clean_build() -> None:
    for argv in (["server", "delete", "--wait", f"{NAME}-vm"], ["subnet", "delete", f"{NAME}-subnet"],
                 ["network", "delete", f"{NAME}-net"], ["flavor", "delete", f"{NAME}-flavor"],
                 ["image", "delete", f"{NAME}-image"]):
        osc_quietly(*argv)


def served_while_off(recording: dict[str, Any]) -> dict[str, int]:
    """Successes of each stream asserted to go on without the server (writes through the VIP,
    publishes with confirms) in the second half of the time it was off: a write acknowledged in the
    instant after the fault, before the server really went, does not count, and a stream that came
    back only with the server has none."""
    t = {e["kind"]: e["t"] for e in recording["events"] if e["kind"] in ("fault", "heal")}
    since = t["heal"] - (t["heal"] - t["fault"]) / 2
    return {stream: sum(1 for s in recording["samples"]
                        if s["stream"] == stream and s["ok"] and since <= s["t"] < t["heal"])
            for stream in ("db", "publish")}


@pytest.fixture(scope="module")
def four_cloud(four_lab: Path) -> Path:
    """The compute node as the operator's client: clouds.yaml with the admin credentials (0600)."""
    on(CLIENT, f"umask 077 && mkdir -p {Path(CLOUDS).parent} && cat > {CLOUDS}",
       stdin=clouds_yaml(FOUR, "four"))
    on(CLIENT, f"head -c 1024 /dev/zero > /root/{NAME}.img")
    return four_lab


PUBLISH_FAILED = (r" ERROR ceilometer\.(pipeline\.sample \S+ Pipeline \S+ Continue after error from publisher"
                  r"|publisher\.gnocchi )")
"""How ceilometer logs a batch its Gnocchi publisher could not deliver, then drops, never to retry
it: the pipeline's "Continue after error from publisher" (an HTTP 503 from the VIP, seen in the lab
with Gnocchi stopped, 2026-12-07), or the publisher's own error for the requests it catches."""


def publish_failures() -> dict[str, int]:
    """How many batches each reachable controller's notification agent has dropped so far."""
    count = shlex.join(["grep", "-c", "-E", PUBLISH_FAILED, telemetry.NOTIFICATION_LOG])
    out = {}
    for node in CONTROLLERS:
        res = answer(node, f"{count} || true", 30)
        if res and res.returncode == 0 and res.stdout.strip().isdigit():
            out[node] = int(res.stdout)
    return out


def telemetry_evidence() -> str:
    """What the controllers say about the notification path, for a sample that did not arrive."""
    probes = (
        # the first line of each error or warning (oslo.log repeats the level on every traceback line)
        f"tail -n 400 {telemetry.NOTIFICATION_LOG} | grep -E ' (ERROR|WARNING) \\S+ \\[' | tail -n 6 | cut -c1-300",
        "systemctl show -p ActiveState -p MainPID -p ActiveEnterTimestamp ceilometer-agent-notification",
        "grep -h oslo.messaging /var/log/glance/glance-api.log | tail -n 4 | cut -c1-300",
        "rabbitmqctl -q list_queues -p telemetry name leader messages consumers 2>&1"
        " | grep -E 'notifications.(info|sample)'",
        # Gnocchi's servers going down or up, and requests HAProxy answered with a 5xx
        "journalctl -u haproxy --since -6min --no-pager"
        r" | grep -E 'Server gnocchi_api/|gnocchi_api/\S+ \S+ 5[0-9][0-9] ' | tail -n 4",
    )
    out = []
    for node in CONTROLLERS:
        for probe in probes:
            res = answer(node, probe, 30)
            said = (res.stdout + res.stderr).strip()[-1200:] if res else "no answer within 30 s"
            out.append(f"[{node}] {probe.split()[0]}: {said}")
    return "\n".join(out)


def sample_in_gnocchi(name: str, timeout: float = 180) -> float:
    """Create an image named `name` and wait until its `image.size` sample is a measure in Gnocchi,
    read through the VIP: Glance's notification -> the telemetry vhost -> ceilometer's notification
    agent -> Gnocchi's API (the resource and its metric) -> metricd (`--refresh` processes what is
    pending). Returns the seconds from the last upload; the images are deleted.

    A sample is at most once: ceilometer's publisher drops a batch that Gnocchi did not take (CI,
    2026-12-06: no measure within 180 s with one controller off; see telemetry.PUBLISHER_TIMEOUT_S).
    So when a controller's agent logs such a drop while this waits, a second image is uploaded, and
    the drop is printed: what must hold is that telemetry flows. A sample that vanishes with no drop
    logged, or a second one lost too, fails the test with what the controllers say."""
    dropped: list[str] = []
    for attempt in (1, 2):
        before = publish_failures()
        image = create_image(f"{name}-{attempt}" if attempt > 1 else name)
        t0 = time.monotonic()
        try:
            last = ""
            while time.monotonic() - t0 < timeout:
                res = run("lab", "ssh", "-t", str(FOUR), CLIENT, "--", shlex.join(
                    ["openstack", "--os-cloud", "four", "metric", "measures", "show", "--resource-id", image,
                     "--refresh", "image.size", "-f", "json"]))
                last = res.stdout.strip() + res.stderr.strip()[-300:]
                if res.returncode == 0 and json.loads(res.stdout or "[]"):
                    values = [m["value"] for m in json.loads(res.stdout)]
                    assert 1024 in values, values  # the image's size, as Glance reported it
                    if dropped:
                        print(f"telemetry: {' '.join(dropped)}; the second image's sample arrived")
                    return time.monotonic() - t0
                now = publish_failures()
                if attempt == 1 and (gone := [n for n in now if now[n] > before.get(n, now[n])]):
                    dropped.append(f"ceilometer on {', '.join(gone)} dropped a batch "
                                   f"{time.monotonic() - t0:.1f} s after the upload of {name}")
                    break
                time.sleep(3)
            else:
                raise AssertionError(f"no image.size measure for {name} (try {attempt}) in Gnocchi after "
                                     f"{timeout:.0f}s: {last}; {dropped}\n{telemetry_evidence()}")
        finally:
            osc_quietly("image", "delete", image)
    # A drop logged during the second try may be another batch's (the central agent's polls): that try
    # waits out its bound, so it returns its time or fails above.
    raise AssertionError("not reached")


def create_image(name: str) -> str:
    """Upload a 1 KiB image through the VIP; its id. An HTTP 503 is retried, bounded, and counted:
    the one surviving controller of the 2+2 answered one in CI, 2026-12-06."""
    create = shlex.join(["openstack", "--os-cloud", "four", "image", "create", "--disk-format", "raw",
                         "--container-format", "bare", "--file", f"/root/{NAME}.img", name, "-f", "json"])
    unavailable, deadline = 0, time.monotonic() + 60
    while True:
        res = run("lab", "ssh", "-t", str(FOUR), CLIENT, "--", create)
        if res.returncode == 0 or "503" not in res.stdout + res.stderr or time.monotonic() > deadline:
            break
        unavailable += 1
        time.sleep(2)
    assert res.returncode == 0, f"image create: {res.stdout}{res.stderr}"
    if unavailable:
        print(f"image create answered HTTP 503 {unavailable} time(s) before it was accepted")
    return str(json.loads(res.stdout)["id"])


def test_the_watchdog_restarts_a_notification_agent_that_gave_up(four_lab: Path) -> None:
    """The log guard on real daemons: a line in ceilometer's own log, with the PID of the running
    agent, saying its publisher failed (what a boot-time Keystone timeout makes it write) gets the
    unit restarted by hastack-api-watchdog; the next test then needs the new agent's samples."""
    node, unit = "ctl-2", telemetry.NOTIFICATION_UNIT
    show = f"systemctl show -p MainPID --value {unit}.service"
    pid = on(node, show).strip()
    assert pid not in ("", "0"), f"{unit} is not running on {node}"
    on(node, f"printf '%s %s ERROR ceilometer.pipeline.base [-] {telemetry.PUBLISHER_FAILED} gnocchi://: "
             f"written by the lab test\\n' \"$(date '+%F %T.000')\" {pid} >> {telemetry.NOTIFICATION_LOG}")
    t0 = time.monotonic()
    while (now := on(node, show).strip()) in (pid, "0", ""):
        assert time.monotonic() - t0 < 60, f"{unit} on {node} still runs as {pid}"
        time.sleep(1)
    print(f"{unit} restarted by the watchdog {time.monotonic() - t0:.1f} s after the line (pid {pid} -> {now})")
    journal = on(node, "journalctl -u hastack-api-watchdog -b --no-pager -n 50")
    assert f"{unit}: its running process logged" in journal and "written by the lab test" in journal, journal


def test_a_telemetry_sample_reaches_gnocchi_through_the_vip(four_cloud: Path) -> None:
    wait_healthy()
    print(f"image.size measure in Gnocchi {sample_in_gnocchi(f'{NAME}-sample'):.1f} s after the upload")


def test_every_server_was_powered_off(four_lab: Path) -> None:
    assert sorted(HIT) == ["ctl-1", "ctl-2", "net-1", "net-2"], HIT


def galera_writer() -> str:
    """The controller the drill will power off: it first moves the VIP to the Galera writer's node
    (scenario `vip_writer`), so that node, not the VIP's holder of the moment, is the victim. When an
    earlier run left the two apart, this test had polled the powered-off node (the lab, 2026-12-07)."""
    _, doc = status_code()
    writers = set(doc["galera"]["writers"].values())
    assert len(writers) == 1, doc["galera"]["writers"]
    return str(writers.pop())
