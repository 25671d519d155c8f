"""From a ClusterState to findings and an exit code. Pure: no I/O, tested on recorded states.

Every finding has a stable code (tests assert codes, never wording), a level, the layer and node
it is about, a message that names nodes and states, and, where a known fix exists, the command
to run next.

Exit codes (Nagios' convention, so any monitoring system can run `hastack status`):

- 0 healthy: every layer serves with every member the topology expects.
- 1 degraded: every layer serves, with lost redundancy: a host that does not answer, a Galera
  node out of the primary component or not Synced, a broker down or a quorum queue replica
  offline, a backend server DOWN, a memcached not answering, a network node offline or in
  standby, a fence device stopped or fencing off, a unit that should run and does not.
- 2 down: a layer cannot serve: Galera without a primary component (or no writer in HAProxy,
  or SQL through the VIP fails); no controller holds the VIP, or more than one does;
  RabbitMQ with fewer than a majority of brokers, a partition, a resource alarm, or a quorum
  queue without leader or below quorum; the Pacemaker agent group stopped, partly stopped or
  running on two nodes, the network cluster without quorum, a blocked resource; a deployed
  OpenStack API the VIP does not answer; every instance of an OpenStack service down.
- 3 unknown: nothing is known to be down, but a layer could not be judged: no host could be
  read, or no member of a layer answered, or a host's answer could not be understood.

Precedence: 2 > 3 > 1 > 0 (what is known to be down is said even when other parts are unknown;
"only degraded" is never claimed for a layer nobody could read).
"""

from __future__ import annotations

from dataclasses import dataclass

from hastack.reports import Report, Severity

Level = Severity
"""A finding's level is a report's severity: INFO, DEGRADED (= WARNING), DOWN (= ERROR), UNKNOWN."""

VERDICT_WORDS = {0: "healthy", 1: "degraded", 2: "down", 3: "unknown"}

Finding = Report
"""A status finding is a report: `area` is its layer, `subject` its node, `hint` the command to run next."""


def finding(code: str, level: Severity, layer: str, message: str, next_step: str = "", node: str = "") -> Report:
    return Report(code, level, message, hint=next_step, area=layer, subject=node)


@dataclass(frozen=True)
class Verdict:
    findings: tuple[Finding, ...]

    @property
    def exit_code(self) -> int:
        worst = max((f.severity for f in self.findings), key=lambda lv: lv.rank, default=Level.INFO)
        return int(worst)

    @property
    def word(self) -> str:
        return VERDICT_WORDS[self.exit_code]

    @property
    def healthy(self) -> bool:
        return self.exit_code == 0

    @property
    def problems(self) -> tuple[Finding, ...]:
        """Every finding above info, worst first (stable order within a level)."""
        bad = [f for f in self.findings if f.severity is not Level.INFO]
        return tuple(sorted(bad, key=lambda f: -f.severity.rank))

    def summary(self, limit: int = 3) -> str:
        """One line: the verdict and the first problems (what drills record at every poll)."""
        if self.healthy:
            return "healthy"
        shown = "; ".join(f"{f.area}: {f.message}" for f in self.problems[:limit])
        more = len(self.problems) - limit
        return f"{self.word}: {shown}" + (f" (+{more} more)" if more > 0 else "")

    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

