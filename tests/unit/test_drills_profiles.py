"""The `reference` tuning profile: the common defaults, and nothing else changed."""

from __future__ import annotations

from collections.abc import Callable

from hastack.components import galera, haproxy, keepalived
from hastack.components.base import Ctx
from hastack.drills import profiles
from hastack.topology.model import Topology
from hastack.topology.validate import validate
from hastack.topology.yamldoc import SourceMap


def test_reference_sets_the_common_defaults(seed: Topology) -> None:
    t = profiles.reference(seed).tuning
    assert t.keepalived.advert_int == 1.0
    assert (t.haproxy.check_inter_ms, t.haproxy.check_fastinter_ms, t.haproxy.check_rise,
            t.haproxy.check_fall) == (2000, 2000, 2, 5)
    assert t.corosync.token == 3000
    assert t.corosync.dc_deadtime_s == 20
    assert (t.galera.evs_suspect_timeout, t.galera.evs_inactive_timeout, t.galera.evs_keepalive_period) == \
        ("PT5S", "PT15S", "PT1S")
    assert (t.rabbitmq.partition_handling, t.rabbitmq.net_ticktime, t.rabbitmq.rpc_response_timeout) == \
        ("ignore", 60, 60)


def test_reference_changes_only_the_listed_fields_and_leaves_the_input_alone(seed: Topology) -> None:
    before = seed.model_dump()
    ref = profiles.reference(seed)
    assert seed.model_dump() == before
    changed = {path for path, _, _ in profiles.differences(seed, ref)}
    listed = {f"tuning.{sec}.{k}" for sec, vals in profiles.REFERENCE.items() for k in vals}
    assert changed <= listed
    assert "tuning.galera.evs_suspect_timeout" in changed
    assert ref.model_dump(exclude={"tuning"}) == seed.model_dump(exclude={"tuning"})
    assert ref.tuning.galera.gcache_size == seed.tuning.galera.gcache_size
    assert ref.tuning.keepalived.router_id == seed.tuning.keepalived.router_id


def test_profiles_are_idempotent_and_hastack_is_the_identity(seed: Topology) -> None:
    ref = profiles.reference(seed)
    assert profiles.reference(ref) == ref
    assert profiles.hastack(seed) is seed
    assert set(profiles.PROFILES) == {"hastack", "reference"}


def test_reference_topology_passes_validation(seed: Topology) -> None:
    reports = validate(profiles.reference(seed), SourceMap("seed.yml"))
    assert not [r.code for r in reports if r.is_error]


def test_reference_reaches_the_rendered_configs(seed: Topology, ctx_of: Callable[[Topology], Ctx]) -> None:
    ref = profiles.reference(seed)
    assert "evs.suspect_timeout=PT5S" in galera.evs_options(ref.tuning.galera)
    ctl = ref.controllers[0]
    assert "inter 2000ms fastinter 2000ms downinter 2000ms rise 2 fall 5" in haproxy.config(ctx_of(ref), ctl)
    assert "advert_int 1" in keepalived.config(ref, ctl)
