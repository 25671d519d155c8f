"""The OpenStack services' logins (SQL, RabbitMQ, Keystone) and how they rotate without a gap.

A service logs in three ways: as an SQL user to its database (`db/<user>`), as a RabbitMQ user to its
vhost (`rabbit/<service>`), as a Keystone service user (`keystone/<user>`). Each is a name and a
password, kept in the secrets file; the name is the base (`nova`) until the first rotation.

Why a rotation changes the name too. MariaDB has no second password per account, RabbitMQ none per
user, and Keystone revokes every token of a user whose password is set (identity `update_user`). A
password changed in place therefore locks out every running copy of the service from that moment
until its own restart: on three controllers restarted one at a time, minutes. So a rotation makes a
*second* account (the base name and `<base>_b` alternate) with the same rights and a new password,
restarts the services onto it one node at a time (each copy works with either account), and only then
removes the previous account, once nothing is logged in as it. The previous account's name and
password stay in the secrets file (`<kind>/<base>/previous-user`, `<kind>/<base>/previous`) for as
long as the rotation is under way: an interrupted rotation is finished by the next deploy.

Not rotated here (and why): the Keystone admin (the operator's and hastack's own login: change it
with Keystone and the secrets file together), Heat's stack domain admin, hastack's probe and watch
accounts, the RabbitMQ admin, the Erlang cookie (a change restarts the whole broker cluster at once),
Galera's SST account, memcached's and the metadata proxy's shared keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hastack.secrets import Secrets

Kind = Literal["db", "rabbit", "keystone"]
KINDS: tuple[Kind, ...] = ("db", "rabbit", "keystone")
ALTERNATE_SUFFIX = "_b"


@dataclass(frozen=True)
class Login:
    user: str
    password: str


def secret_name(kind: Kind, base: str) -> str:
    return f"{kind}/{base}"


def login(secrets: Secrets, kind: Kind, base: str) -> Login:
    """The login a service uses now (its password made on first use, like every secret)."""
    name = secret_name(kind, base)
    return Login(secrets.get(f"{name}/user") or base, secrets.password(name))


def previous(secrets: Secrets, kind: Kind, base: str) -> Login | None:
    """The login a rotation under way is moving away from, or None."""
    name = secret_name(kind, base)
    user, password = secrets.get(f"{name}/previous-user"), secrets.get(f"{name}/previous")
    return Login(user, password) if user is not None and password is not None else None


def alternate(base: str, user: str) -> str:
    return base + ALTERNATE_SUFFIX if user == base else base


def begin(secrets: Secrets, kind: Kind, base: str) -> bool:
    """Start rotating one login: the current one becomes the previous, a new name and password the
    current. False (nothing done) when its rotation is already under way."""
    if previous(secrets, kind, base) is not None:
        return False
    name = secret_name(kind, base)
    old = login(secrets, kind, base)
    secrets.put(f"{name}/previous-user", old.user)
    secrets.put(f"{name}/previous", old.password)
    secrets.put(f"{name}/user", alternate(base, old.user))
    secrets.renew(name)
    return True


def unfinished(secrets: Secrets) -> list[str]:
    """Every login (`kind/base`) whose rotation the secrets file records as under way."""
    return sorted(n.removesuffix("/previous-user") for n in secrets.names() if n.endswith("/previous-user"))


def finish(secrets: Secrets, kind: Kind, base: str) -> None:
    """The previous login is gone from every store: forget it."""
    name = secret_name(kind, base)
    secrets.discard(f"{name}/previous-user")
    secrets.discard(f"{name}/previous")
