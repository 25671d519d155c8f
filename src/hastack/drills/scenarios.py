"""The drills as data: whom to hit (a selector), how (fault actions), how to undo it (heal actions),
and how long each phase lasts. The lab plugs in through `FaultApi`; nothing here touches a host.

Why it looks like this:
- A target is chosen at run time from what the watcher sees (who holds the VIP, who is the Galera
  writer, who leads the test queue, where the agents run), never fixed to a node name: after an
  earlier drill the VIP may sit on another controller, and hitting a passive node would prove
  nothing. A selector that cannot be satisfied stops the drill *before* any fault.
- Heal actions are idempotent (start a unit that may already run, power on a node that may be
  on): a cut network node is usually fenced (powered off) by its peer, so healing a partition is
  "restore the links, then power on".
- `tags` say which targets apply: the agents' failover time only means something when a network
  node fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol


class FaultApi(Protocol):
    """What the lab provides (hastack.lab.Lab has all but `start_service`; see drills.cli.LabFaults).

    Each call returns once the fault is in place (power really off, rules loaded, cgroup frozen)
    and raises on failure. Parameters are positional so any naming fits.
    """

    def power(self, node: str, action: str, /) -> object: ...
    def cut(self, node: str, peers: Sequence[str] | None = None, /) -> object: ...
    def heal(self, node: str, /) -> object: ...
    def freeze(self, node: str, /) -> object: ...
    def thaw(self, node: str, /) -> object: ...
    def kill_service(self, node: str, unit: str, signal: str, whom: str = "all", /) -> object:
        """`whom`: "all" (every process of the unit) or "main" (its main process only)."""
        ...
    def start_service(self, node: str, unit: str, /) -> object: ...
    def recover(self, /) -> object:
        """`hastack recover all --yes`: what an operator runs after a full power loss."""
        ...


Op = Literal["power_off", "power_on", "cut", "heal", "freeze", "thaw", "kill", "start",
             "power_off_all", "power_on_all", "recover"]
Peers = Literal["all", "cluster", "network_peers"]
Whom = Literal["all", "main"]
MAIN = " (main process)"
"""Which processes of a unit a kill signals: all of them, or the main process (its children run on)."""
"""Whom a cut separates the node from: `all` (its link: every node and the clients on the host),
`cluster` (every other controller and network node, while the clients on the host still reach
it: a partition inside the cluster), `network_peers` (the other network nodes only)."""


@dataclass(frozen=True)
class Action:
    op: Op
    unit: str | None = None
    signal: str = "KILL"
    peers: Peers = "all"
    whom: Whom = "all"

    def describe(self, node: str) -> str:
        cut = {"all": f"cut {node} off the network", "cluster": f"partition {node} from the rest of the cluster",
               "network_peers": f"partition {node} from the other network nodes"}[self.peers]
        texts = {
            "power_off": f"power off {node}", "power_on": f"power on {node}",
            "cut": cut, "heal": f"restore {node}'s links",
            "freeze": f"freeze {node}", "thaw": f"thaw {node}",
            "kill": f"kill -{self.signal} {self.unit}{MAIN if self.whom == 'main' else ''} on {node}",
            "start": f"start {self.unit} on {node}",
            "power_off_all": "power off every controller", "power_on_all": "power on every controller",
            "recover": "hastack recover all --yes",
        }
        return texts[self.op]

    def apply(self, faults: FaultApi, node: str, world: World | None = None) -> None:
        if self.op in ("kill", "start") and not self.unit:
            raise ValueError(f"action {self.op} needs a unit")
        match self.op:
            case "power_off":
                faults.power(node, "off")
            case "power_on":
                faults.power(node, "on")
            case "cut" if self.peers == "all":
                faults.cut(node)
            case "cut":
                if world is None:
                    raise ValueError("a partition needs to know the cluster's nodes")
                faults.cut(node, peers_of(self.peers, world, node))
            case "heal":
                faults.heal(node)
            case "freeze":
                faults.freeze(node)
            case "thaw":
                faults.thaw(node)
            case "power_off_all" | "power_on_all":
                if world is None:
                    raise ValueError("a full power loss needs to know the controllers")
                for n in world.controllers:
                    faults.power(n, "off" if self.op == "power_off_all" else "on")
            case "recover":
                faults.recover()
            case "kill":
                faults.kill_service(node, str(self.unit), self.signal, self.whom)
            case "start":
                faults.start_service(node, str(self.unit))


Selector = Literal["vip_writer", "vip", "writer", "queue_leader", "agents", "passive_network", "other_controller",
                   "none"]


@dataclass(frozen=True)
class World:
    """What the runner knows just before the fault: the topology's roles and one watcher sample."""

    controllers: tuple[str, ...]
    network_nodes: tuple[str, ...]
    vip: tuple[str, ...]
    agents: tuple[str, ...]
    writer: str | None
    queue_leader: str | None = None


def peers_of(peers: Peers, world: World, node: str) -> list[str]:
    group = world.network_nodes if peers == "network_peers" else world.controllers + world.network_nodes
    out = [n for n in group if n != node]
    if not out:
        raise SelectorError(f"{node} has no peer to be partitioned from")
    return out


class SelectorError(Exception):
    """The lab is not in a state where this scenario means anything (nothing was touched)."""


def _one(holders: Sequence[str], what: str) -> str:
    if len(set(holders)) != 1:
        raise SelectorError(f"{what} is on {len(set(holders))} nodes ({', '.join(holders) or 'none'}), "
                            "expected exactly one")
    return holders[0]


def resolve(selector: Selector, world: World) -> str:
    match selector:
        case "vip":
            return _one(world.vip, "the VIP")
        case "vip_writer":
            node = _one(world.vip, "the VIP")
            if world.writer != node:
                raise SelectorError(f"the VIP is on {node} but the Galera writer is {world.writer}: this "
                                    "scenario needs both on one controller (move the VIP or wait for "
                                    "the writer to return)")
            return node
        case "writer":
            if world.writer is None:
                raise SelectorError("no Galera writer is in service")
            return world.writer
        case "queue_leader":
            if world.queue_leader is None:
                raise SelectorError("the test queue has no leader (is the broker workload's queue declared?)")
            return world.queue_leader
        case "agents":
            return _one(world.agents, "the agent group")
        case "passive_network":
            active = _one(world.agents, "the agent group")
            standby = [n for n in world.network_nodes if n != active]
            if not standby:
                raise SelectorError("no network node is on standby")
            return standby[0]
        case "none":
            return ""
        case "other_controller":
            spare = [c for c in world.controllers if c not in world.vip and c != world.writer]
            spare = spare or [c for c in world.controllers if c not in world.vip]
            if not spare:
                raise SelectorError("every controller holds the VIP")
            return spare[0]
    raise SelectorError(f"unknown selector {selector!r}")


@dataclass(frozen=True)
class Then:
    """A second fault in quick succession: `after_s` after the first, on a target chosen from a new
    look at the lab (the first target excluded), e.g. the writer HAProxy moved the sessions to."""

    target: Selector
    fault: tuple[Action, ...]
    heal: tuple[Action, ...]
    after_s: float = 5.0


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    target: Selector
    fault: tuple[Action, ...]
    heal: tuple[Action, ...]
    then: Then | None = None
    hold_s: float = 20.0
    """From the fault to the heal: long enough for every failover (the slowest measured is the
    reference profile's ~10 s corosync token on 3 votes) and a stable period after it."""
    heal_when: str | None = None
    """A path: the heal comes as soon as a file is there, at the latest after `hold_s` (an operator's
    experiment, or a test, done with the fault before the hold is over: `--heal-when`)."""
    baseline_s: float = 5.0
    settle_s: float = 10.0
    """Observation after `status` is healthy: failback effects (sessions moved back) land here."""
    healthy_timeout_s: float = 300.0
    tags: tuple[str, ...] = ()

    def timeline_bound(self) -> float:
        """The longest a run may take: workloads and the watcher stop by then whatever happens."""
        return self.baseline_s + self.hold_s + self.healthy_timeout_s + self.settle_s + 60.0


def _kill(unit: str) -> tuple[tuple[Action, ...], tuple[Action, ...]]:
    return (Action("kill", unit, "KILL"),), (Action("start", unit),)


MARIADB, RABBITMQ, HAPROXY, MEMCACHED = "mariadb", "rabbitmq-server", "haproxy", "memcached"
KEEPALIVED, COROSYNC, PACEMAKER = "keepalived", "corosync", "pacemaker"
DHCP_AGENT = "neutron-dhcp-agent"


def _frozen(unit: str) -> tuple[tuple[Action, ...], tuple[Action, ...]]:
    """SIGSTOP every process of the unit (a hung daemon whose sockets stay open), then SIGCONT."""
    return (Action("kill", unit, "STOP"),), (Action("kill", unit, "CONT"), Action("start", unit))


FENCED_BACK = (Action("power_on"), Action("start", COROSYNC), Action("start", PACEMAKER))
"""A network node its peer fenced comes back with its cluster stack (idempotent when it was not)."""

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("power-off-vip-writer", "power off the controller holding the VIP and the Galera writer",
             "vip_writer", (Action("power_off"),), (Action("power_on"),), tags=("vip", "writer")),
    Scenario("cut-vip-writer", "cut the VIP and Galera writer's controller off the network",
             "vip_writer", (Action("cut"),), (Action("heal"),), tags=("vip", "writer")),
    Scenario("kill-galera-writer", "kill -9 MariaDB on the Galera writer", "writer",
             *_kill(MARIADB), hold_s=15.0, tags=("writer",)),
    Scenario("kill-queue-leader", "kill -9 the RabbitMQ node leading the test queue", "queue_leader",
             *_kill(RABBITMQ), hold_s=15.0, tags=("broker",)),
    Scenario("kill-haproxy-vip", "kill -9 HAProxy on the VIP holder", "vip", *_kill(HAPROXY),
             hold_s=15.0, tags=("vip",)),
    Scenario("kill-memcached", "kill -9 one memcached (a controller not holding the VIP)",
             "other_controller", *_kill(MEMCACHED), hold_s=15.0, tags=("cache",)),
    Scenario("power-off-active-network", "power off the network node running the agents", "agents",
             (Action("power_off"),), (Action("power_on"),), tags=("agents",)),
    # The seed's four-server figure keeps its third votes on these (garbd and a broker on net-1):
    # losing the standby network node or the controller without the VIP must cost nothing either.
    Scenario("power-off-other-controller", "power off a controller holding neither the VIP nor the writer",
             "other_controller", (Action("power_off"),), (Action("power_on"),), tags=("broker",)),
    Scenario("power-off-passive-network", "power off the network node on standby", "passive_network",
             (Action("power_off"),), (Action("power_on"),), tags=("arbitrator",)),
    Scenario("cut-active-network", "partition the network node running the agents", "agents",
             (Action("cut"),), (Action("heal"), Action("power_on")), tags=("agents",)),
    Scenario("freeze-vip-controller", "freeze the controller holding the VIP for 30 s", "vip",
             (Action("freeze"),), (Action("thaw"),), hold_s=30.0, tags=("vip",)),
    # The fault campaign's nemeses (hastack campaign): daemons killed or frozen, partitions inside the
    # cluster, two faults in quick succession.
    Scenario("kill-keepalived-vip", "kill -9 keepalived on the VIP holder", "vip", *_kill(KEEPALIVED),
             hold_s=15.0, tags=("vip",)),
    Scenario("stop-keepalived-vip", "SIGSTOP keepalived on the VIP holder, SIGCONT 20 s later", "vip",
             *_frozen(KEEPALIVED), tags=("vip",)),
    Scenario("stop-galera-writer", "SIGSTOP MariaDB on the Galera writer, SIGCONT 20 s later", "writer",
             *_frozen(MARIADB), tags=("writer",)),
    Scenario("kill-galera-writer-twice", "kill -9 MariaDB on the writer, then on the next writer 8 s later",
             "writer", *_kill(MARIADB), then=Then("writer", *_kill(MARIADB), after_s=8.0), hold_s=25.0,
             tags=("writer",)),
    # No heal: nothing undoes the fault but the product (the network node's watchdog kills the frozen
    # agent, Pacemaker's monitor starts it again). The hold outlasts Neutron's agent_down_time (75 s):
    # an agent still frozen at its end is dead in Neutron, so status is not healthy and the drill fails.
    Scenario("stop-dhcp-agent-active-network",
             "SIGSTOP the DHCP agent's main process on the network node running the agents, never undone",
             "agents", (Action("kill", DHCP_AGENT, "STOP", whom="main"),), (), hold_s=90.0,
             tags=("agent-process", "self-healed")),
    Scenario("kill-corosync-active-network", "kill -9 corosync on the network node running the agents",
             "agents", (Action("kill", COROSYNC, "KILL"),), FENCED_BACK, tags=("agents",)),
    Scenario("kill-pacemaker-active-network", "kill -9 Pacemaker on the network node running the agents",
             "agents", (Action("kill", PACEMAKER, "KILL"),), FENCED_BACK, tags=("agents",)),
    Scenario("partition-network-nodes", "partition the agents' network node from the other (both stay up)",
             "agents", (Action("cut", peers="network_peers"),), (Action("heal"), *FENCED_BACK), tags=("agents",)),
    Scenario("power-off-all-controllers", "power off every controller at once, then hastack recover all",
             "none", (Action("power_off_all"),), (Action("power_on_all"), Action("recover")),
             healthy_timeout_s=600.0, tags=("outage",)),
    Scenario("partition-vip-controller", "partition the VIP holder from the cluster (clients still reach it)",
             "vip", (Action("cut", peers="cluster"),), (Action("heal"),), tags=("vip", "writer")),
    # No fault: the tuning must not buy speed with false failovers (0 VIP moves, 0 Galera
    # membership changes, 0 Pacemaker moves under the workloads).
    Scenario("soak", "no fault: 10 minutes under every workload", "none", (), (), hold_s=600.0,
             tags=("soak",)),
)


ALIASES = {"power-off-network-node": "power-off-active-network"}
"""Names issue 13 uses for the same scenarios (`hastack bench power-off-network-node ...`)."""


def by_name(name: str) -> Scenario:
    name = ALIASES.get(name, name)
    for s in SCENARIOS:
        if s.name == name:
            return s
    raise KeyError(f"no scenario {name!r}; one of: {', '.join(s.name for s in SCENARIOS)}")
