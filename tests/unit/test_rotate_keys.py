"""Fernet key rotation: the slot arithmetic, the safety of the write order checked with real Fernet
tokens, the interval between rotations, and the check/write over a scripted fleet."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence

import pytest
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from hastack.components import keystone
from hastack.components.base import Ctx
from hastack.deploy.rotate import key_drift, keystone_nodes, write_keys
from hastack.secrets import Secrets, new_fernet_key
from hastack.topology.model import Topology
from hastack.transport.fake import Script

CtxOf = Callable[[Topology], Ctx]
N = keystone.FERNET_KEYS


def keyset(s: Secrets) -> list[str]:
    return [s.fernet_key(f"fernet/{i}") for i in range(N)]


def fresh() -> Secrets:
    s = Secrets(None)
    keyset(s)
    return s


def test_the_staged_key_becomes_primary_and_the_oldest_secondary_goes() -> None:
    s = fresh()
    old = keyset(s)
    keystone.rotate_fernet(s, 1_000_000)
    new = keyset(s)
    assert new[N - 1] == old[0]  # staged -> primary (the highest slot)
    assert new[1:N - 1] == old[2:]  # the old primary and younger secondaries move down one slot
    assert old[1] not in new  # the oldest secondary is dropped
    assert new[0] not in old and len(set(new)) == N  # a fresh staged key
    assert s.get(keystone.FERNET_ROTATED) == "1000000"
    assert s.unsaved()  # the caller saves


def test_rotations_are_token_expiration_plus_allow_expired_window_apart() -> None:
    s = fresh()
    assert keystone.rotation_wait(s, 5_000_000) == 0  # never rotated: the oldest secondary never signed
    keystone.rotate_fernet(s, 5_000_000)
    assert keystone.ROTATION_INTERVAL_S == 3600 + 172800
    assert keystone.rotation_wait(s, 5_000_000 + 60) == keystone.ROTATION_INTERVAL_S - 60
    assert keystone.rotation_wait(s, 5_000_000 + keystone.ROTATION_INTERVAL_S) == 0


def rendered_expiry(ctx: Ctx) -> dict[str, str]:
    return {k: str(v) for k, v in keystone.conf(ctx)["token"].items()}


def test_keystone_conf_names_the_expiry_the_interval_is_built_on(seed: Topology, ctx_of: CtxOf) -> None:
    token = rendered_expiry(ctx_of(seed))
    assert token["expiration"] == "3600" and token["allow_expired_window"] == "172800"


# -- the write order, with real Fernet tokens ------------------------------------------------------------

def states_while_writing(old: list[str], new: list[str], order: Sequence[int]) -> list[dict[int, str]]:
    """A node's key slots before, between and after each file write in `order`."""
    slots = dict(enumerate(old))
    out = [dict(slots)]
    for i in order:
        slots[i] = new[i]
        out.append(dict(slots))
    return out


def issue(slots: dict[int, str]) -> bytes:
    """Keystone signs with the primary: the highest slot."""
    return Fernet(slots[max(slots)].encode()).encrypt(b"token")


def validates(slots: dict[int, str], token: bytes) -> bool:
    try:
        MultiFernet([Fernet(k.encode()) for k in slots.values()]).decrypt(token)
    except InvalidToken:
        return False
    return True


def refused(order: Sequence[int]) -> list[tuple[int, int]]:
    """Every (issuer state, validator state) pair, over every moment of one node's writes and the
    finished states of the others, where a token one node signs is refused by another."""
    old = [new_fernet_key() for _ in range(N)]
    new = [new_fernet_key(), *old[2:], old[0]]
    states = states_while_writing(old, new, order)
    return [(a, b) for a, b in itertools.product(range(len(states)), repeat=2)
            if not validates(states[b], issue(states[a]))]


def test_in_fernet_order_every_token_validates_on_every_node_at_every_moment() -> None:
    assert keystone.FERNET_ORDER == (1, 2, 0)
    assert refused(keystone.FERNET_ORDER) == []


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (0, 2, 1)])
def test_another_order_would_refuse_tokens_part_way(order: tuple[int, ...]) -> None:
    """The check above can fail: each of these orders leaves a moment where a node lacks the old
    primary or the old staged key while another node signs with it."""
    assert refused(order)


# -- over a scripted fleet ---------------------------------------------------------------------------------

def fleet_with_current_keys(ctx: Ctx, script: Script, skip: tuple[str, str] | None = None) -> None:
    from hastack.components.registry import desired

    for name, d in desired(ctx).items():
        for f in d.files:
            if f.path in keystone.fernet_paths() and (name, f.path) != skip:
                script.file(name, f.path, f.data, owner=f.owner, group=f.group, mode=f.mode)


def test_drift_names_a_node_without_the_staged_key_and_a_write_brings_every_node_in_step(
        seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    nodes = keystone_nodes(ctx)
    assert nodes == ["ctl-1", "ctl-2", "ctl-3"]
    script = Script().serve_file_state()
    fleet_with_current_keys(ctx, script, skip=("ctl-2", f"{keystone.FERNET_DIR}/0"))
    transports = script.fleet(*nodes)
    drift = asyncio.run(key_drift(ctx, dict(transports)))
    assert [(d.host, d.paths) for d in drift] == [("ctl-2", (f"{keystone.FERNET_DIR}/0",))]

    keystone.rotate_fernet(ctx.secrets, 7_000_000)
    assert asyncio.run(write_keys(ctx, dict(transports))) == []
    for name in nodes:
        written = [c.path for c in script.puts(name)]
        assert written == [f"{keystone.FERNET_DIR}/{i}" for i in keystone.FERNET_ORDER]
        assert all((c.owner, c.group, c.mode, c.stage_dir) == ("keystone", "keystone", 0o600, keystone.KEYS_STAGE)
                   for c in script.puts(name))
    assert asyncio.run(key_drift(ctx, dict(transports))) == []


def test_an_unreachable_node_is_drift_not_a_traceback(seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    script = Script().serve_file_state()
    fleet_with_current_keys(ctx, script)
    script.unreachable("ctl-3", "no route to host")
    drift = asyncio.run(key_drift(ctx, dict(script.fleet(*keystone_nodes(ctx)))))
    assert [d.host for d in drift] == ["ctl-3"] and "no route to host" in drift[0].render()


def test_key_files_are_staged_outside_the_key_directories(seed: Topology, ctx_of: CtxOf) -> None:
    """Keystone opens every entry of a key directory (its temp files included): every key file, Fernet and
    credential, is written through a temporary file in the parent directory, on the same file system."""
    files = keystone.key_files(ctx_of(seed))
    assert len(files) == keystone.FERNET_KEYS + keystone.CREDENTIAL_KEYS
    for f in files:
        assert f.stage_dir == keystone.KEYS_STAGE
        assert f.path.startswith(keystone.KEYS_STAGE + "/") and f.path.count("/") == keystone.KEYS_STAGE.count("/") + 2


# -- credential-encryption keys ----------------------------------------------------------------------------

def creds(s: Secrets) -> dict[int, str]:
    return {i: s.fernet_key(f"credential/{i}") for i in keystone.credential_slots(s)}


def test_the_first_credential_rotation_adds_a_third_slot_and_drops_nothing() -> None:
    s = Secrets(None)
    before = creds(s)
    assert sorted(before) == [0, 1]  # a fresh cloud: staged and primary
    keystone.rotate_credential(s, 1_000)
    after = creds(s)
    assert keystone.credential_slots(s) == [1, 2, 0]
    assert after[2] == before[0] and after[1] == before[1] and after[0] not in before.values()
    assert keystone.migrate_pending(s)


def test_a_credential_rotation_waits_for_the_last_migrate() -> None:
    s = Secrets(None)
    keystone.rotate_credential(s, 1_000)
    with pytest.raises(ValueError, match="credential_migrate"):
        keystone.rotate_credential(s, 2_000)
    s.put(keystone.CREDENTIAL_MIGRATED, "1500")
    old = creds(s)
    keystone.rotate_credential(s, 2_000)
    new = creds(s)
    assert new[2] == old[0] and new[1] == old[2] and old[1] not in new.values()  # the old secondary goes
    s.put(keystone.CREDENTIAL_MIGRATED, "1999")  # a migrate before this rotation proves nothing
    assert keystone.migrate_pending(s)
    s.put(keystone.CREDENTIAL_MIGRATED, "garbled")
    assert keystone.migrate_pending(s)


def unreadable(old: dict[int, str], new: dict[int, str], order: Sequence[int]) -> list[tuple[int, int]]:
    """Every (encrypting state, decrypting state) pair over every moment of one node's writes, where
    a credential one node encrypts (with its primary) cannot be decrypted by another; plus, as state
    -1, a credential stored before the rotation and migrated to the old primary."""
    slots = dict(old)
    states = [dict(slots)]
    for i in order:
        slots[i] = new[i]
        states.append(dict(slots))
    stored = {-1: Fernet(old[max(old)].encode()).encrypt(b"ec2 secret")}
    made = {a: Fernet(st[max(st)].encode()).encrypt(b"ec2 secret") for a, st in enumerate(states)} | stored
    return [(a, b) for a in made for b in range(len(states)) if not validates(states[b], made[a])]


@pytest.mark.parametrize("first", [True, False], ids=["two-slots-to-three", "three-slots"])
def test_in_credential_order_every_node_reads_every_credential_at_every_moment(first: bool) -> None:
    s = Secrets(None)
    if not first:
        keystone.rotate_credential(s, 1_000)
        s.put(keystone.CREDENTIAL_MIGRATED, "1001")
    old = creds(s)
    keystone.rotate_credential(s, 2_000)
    new = creds(s)
    assert unreadable(old, new, keystone.CREDENTIAL_ORDER) == []
    if not first:  # the check can fail: primary first leaves a moment without the old primary
        assert unreadable(old, new, (2, 1, 0))


def test_credential_keys_are_written_in_their_order_and_checked(seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    script = Script().serve_file_state()
    nodes = keystone_nodes(ctx)
    keystone.rotate_credential(ctx.secrets, 7_000_000)
    transports = script.fleet(*nodes)
    assert {d.host for d in asyncio.run(key_drift(ctx, dict(transports), credentials=True))} == set(nodes)
    assert asyncio.run(write_keys(ctx, dict(transports), credentials=True)) == []
    for name in nodes:
        assert [c.path for c in script.puts(name)] == [f"{keystone.CREDENTIAL_DIR}/{i}" for i in (1, 2, 0)]
    assert asyncio.run(key_drift(ctx, dict(transports), credentials=True)) == []
    assert asyncio.run(key_drift(ctx, dict(transports))) != []  # the Fernet token keys were not touched
