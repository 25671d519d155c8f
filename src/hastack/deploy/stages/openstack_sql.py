"""The OpenStack stage's SQL and identity spec, apart from its steps: what the services' databases,
accounts and grants should be, read in one round trip and compared (pure), and the spec of the
projects, users, roles and catalog that `agents/openstack_admin.py` applies.

Secrets stay out of argv: the read and the changes are SQL on `mariadb`'s stdin, the spec JSON on
the admin program's stdin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hastack.components import heat, keystone, logins
from hastack.components import openstack as os_
from hastack.components.galera import sql_quote
from hastack.secrets import Secrets
from hastack.topology.model import Topology


@dataclass(frozen=True)
class Accounts:
    """The databases and their owners' logins (each service's current login: during a rotation
    the previous one keeps its grants until the rotation retires it)."""

    dbs: tuple[os_.Database, ...]
    passwords: dict[str, str]
    """SQL-quoted password per owner."""

    @property
    def users(self) -> list[str]:
        return sorted({db.user for db in self.dbs})


def accounts(topo: Topology, secrets: Secrets) -> Accounts:
    login = {db.user: logins.login(secrets, "db", db.user) for db in os_.databases(topo)}
    dbs = tuple(os_.Database(db.name, login[db.user].user) for db in os_.databases(topo))
    return Accounts(dbs, {lg.user: sql_quote(lg.password) for lg in login.values()})


def read_sql(a: Accounts) -> str:
    """Tagged rows (mariadb --batch separates columns by tabs): what exists, in one round trip. A
    user whose hash is not the secret's (the secrets file was re-created) reads 'stale'."""
    read = ["SELECT 'db', SCHEMA_NAME FROM information_schema.SCHEMATA;",
            "SELECT 'grant', Db, User FROM mysql.db WHERE Host = '%' AND Select_priv = 'Y'"
            " AND Insert_priv = 'Y' AND Alter_priv = 'Y' AND Drop_priv = 'Y' AND Index_priv = 'Y';"]
    read += [f"SELECT 'user', User, IF(plugin IN ('', 'mysql_native_password') AND "
             f"authentication_string <> PASSWORD({a.passwords[u]}), 'stale', 'ok') FROM mysql.user "
             f"WHERE User = {sql_quote(u)} AND Host = '%';" for u in a.users]
    return "\n".join(read)


@dataclass(frozen=True)
class Change:
    sql: str
    todo: str
    """What the plan says ("create database nova")."""
    done: str
    """What deploy reports once written ("created database nova")."""


def changes(a: Accounts, rows: str) -> list[Change]:
    """What differs, in order: databases, users (created, or their password set), grants. Empty:
    nothing to write."""
    have_db: set[str] = set()
    grants: set[tuple[str, str]] = set()
    have_user: dict[str, str] = {}
    for line in rows.splitlines():
        row = line.split("\t")
        if row[0] == "db" and len(row) == 2:
            have_db.add(row[1])
        elif row[0] == "grant" and len(row) == 3:
            grants.add((row[1], row[2]))
        elif row[0] == "user" and len(row) == 3:
            have_user[row[1]] = row[2]
    out = [Change(f"CREATE DATABASE IF NOT EXISTS `{db.name}`;", f"create database {db.name}",
                  f"created database {db.name}") for db in a.dbs if db.name not in have_db]
    for u in a.users:
        who = f"{sql_quote(u)}@'%'"
        if u not in have_user:
            out.append(Change(f"CREATE USER IF NOT EXISTS {who} IDENTIFIED BY {a.passwords[u]};",
                              f"create SQL user {u}", f"created SQL user {u}"))
        elif have_user[u] == "stale":
            out.append(Change(f"ALTER USER {who} IDENTIFIED BY {a.passwords[u]};",
                              f"set the password of SQL user {u}", f"set the password of SQL user {u}"))
    out += [Change(f"GRANT ALL PRIVILEGES ON `{db.name}`.* TO {sql_quote(db.user)}@'%';",
                   f"grant {db.user} all on {db.name}", f"granted {db.user} all on {db.name}")
            for db in a.dbs if (db.name, db.user) not in grants]
    return out


def identity_spec(topo: Topology, secrets: Secrets, auth: dict[str, Any]) -> dict[str, Any]:
    """Projects, roles, users (with their grants) and the catalog, every endpoint the VIP: the
    `setup` spec of `agents/openstack_admin.py`, which changes only what differs."""
    project = {"project": os_.SERVICE_PROJECT, "project_domain": os_.DOMAIN}
    users = [{"name": lg.user, "domain": os_.DOMAIN, "password": lg.password,
              "grants": [{"role": "admin", **project}, {"role": "service", **project}]}
             for lg in (logins.login(secrets, "keystone", u.name) for u in os_.service_users(topo))]
    roles, domains = ["service"], []
    if topo.runs("heat"):
        roles += list(heat.STACK_ROLES)
        domains.append({"name": heat.STACK_DOMAIN, "description": "Heat stack users and projects"})
        users.append({"name": heat.DOMAIN_ADMIN, "domain": heat.STACK_DOMAIN,
                      "password": secrets.password(f"keystone/{heat.DOMAIN_ADMIN}"),
                      "grants": [{"role": "admin", "domain": heat.STACK_DOMAIN}]})
    services: dict[tuple[str, str], dict[str, Any]] = {}
    for e in keystone.endpoints(topo):
        s = services.setdefault((e.service_name, e.service_type),
                                {"name": e.service_name, "type": e.service_type, "endpoints": {}})
        s["endpoints"][e.interface] = e.url
    return {**auth, "domains": domains, "roles": roles,
            "projects": [{"name": os_.SERVICE_PROJECT, "domain": os_.DOMAIN, "description": "OpenStack services"}],
            "users": users, "services": list(services.values())}
