"""The Keystone and service-list work of the openstack stage, run as ONE Python process on a controller.

Deploy copies this file to the first controller (`/usr/local/lib/hastack/openstack-admin`) and runs
it with python3 there, the JSON spec on stdin (passwords travel only there, never in argv):

    python3 openstack-admin setup   # projects, roles, domains, users, grants, services, endpoints
    python3 openstack-admin gate    # poll the service/agent lists until every expected row is up
    python3 openstack-admin prune   # service rows of hosts the topology no longer lists
    python3 openstack-admin retire  # service users a finished rotation left behind

Why a script and not the `openstack` CLI: each CLI call is a new Python start-up (~1.6 s measured
in the lab); the catalog alone is ~40 calls. Here one process authenticates once and asks the APIs
directly. `setup` creates only what is missing and prints what it changed as JSON, so deploy can
count changes and a second run reports none (a password that worked once is remembered by a salted
fingerprint in a 0600 file, so a re-run does not pay a bcrypt check per user; a changed secret
changes the fingerprint, which triggers the check and a reset). `gate` prints what it saw as JSON and exits 0 either
way: deploy decides, and reports the rows that were missing.

It runs under Debian 12's python3 with the image's keystoneauth1 (a dependency of the openstack
client); the logic takes an `Http` callable, so tests drive it without a cloud.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

Http = Callable[[str, str, str, dict[str, Any] | None, bool], tuple[int, Any]]
"""(method, service type, path, JSON body, authenticated) -> (status, decoded JSON or None).
The path is relative to the service's catalog URL ('identity': the auth URL, .../v3)."""


def fingerprint(user_id: str, password: str) -> str:
    """What the tool remembers of a password that worked, to skip checking it again: a token request
    costs a bcrypt hash in Keystone (~1.5 s per user on a loaded 2-core lab). Salted with the user
    id, so a re-created user is checked again; kept 0600 on the node (STATE below)."""
    return hashlib.sha256(f"hastack\0{user_id}\0{password}".encode()).hexdigest()


class ApiError(Exception):
    """An API answered with a status the step cannot go on with (never carries a request body)."""


def _check(status: int, doc: Any, what: str, ok: tuple[int, ...] = (200, 201, 204)) -> Any:
    if status not in ok:
        detail = ""
        if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
            detail = f": {doc['error'].get('message', '')}"
        raise ApiError(f"{what}: HTTP {status}{detail}")
    return doc


class Identity:
    """Keystone v3 through an Http: lookups by name, creations, and the list of what changed."""

    def __init__(self, http: Http, known: dict[str, str] | None = None):
        self.http = http
        self.known = known if known is not None else {}
        """user id -> fingerprint of the password last seen working (see `fingerprint`)."""
        self.changed: list[str] = []
        self._domains: dict[str, str] = {}
        self._roles: dict[str, str] | None = None

    def get(self, path: str, what: str) -> Any:
        status, doc = self.http("GET", "identity", path, None, True)
        return _check(status, doc, what)

    def post(self, path: str, body: dict[str, Any], what: str) -> Any:
        status, doc = self.http("POST", "identity", path, body, True)
        return _check(status, doc, what)

    def send(self, method: str, path: str, body: dict[str, Any] | None, what: str) -> None:
        status, doc = self.http(method, "identity", path, body, True)
        _check(status, doc, what)

    # -- lookups ------------------------------------------------------------------------------
    def domain_id(self, name: str) -> str:
        if name not in self._domains:
            found = self.get(f"/domains?name={quote(name)}", f"find domain {name}")["domains"]
            if not found:
                raise ApiError(f"domain {name} does not exist")
            self._domains[name] = found[0]["id"]
        return self._domains[name]

    def roles(self) -> dict[str, str]:
        if self._roles is None:
            # global roles only (domain-specific roles have a domain_id)
            found = self.get("/roles", "list roles")["roles"]
            self._roles = {r["name"]: r["id"] for r in found if not r.get("domain_id")}
        return self._roles

    def project_id(self, name: str, domain: str) -> str:
        did = self.domain_id(domain)
        found = self.get(f"/projects?name={quote(name)}&domain_id={quote(did)}", f"find project {name}")["projects"]
        if not found:
            raise ApiError(f"project {name} does not exist in domain {domain}")
        return str(found[0]["id"])

    # -- ensure -------------------------------------------------------------------------------
    def ensure_domain(self, name: str, description: str) -> None:
        found = self.get(f"/domains?name={quote(name)}", f"find domain {name}")["domains"]
        if found:
            self._domains[name] = found[0]["id"]
            return
        doc = self.post("/domains", {"domain": {"name": name, "description": description, "enabled": True}},
                        f"create domain {name}")
        self._domains[name] = doc["domain"]["id"]
        self.changed.append(f"created domain {name}")

    def ensure_role(self, name: str) -> None:
        roles = self.roles()
        if name in roles:
            return
        doc = self.post("/roles", {"role": {"name": name}}, f"create role {name}")
        roles[name] = doc["role"]["id"]
        self.changed.append(f"created role {name}")

    def ensure_project(self, name: str, domain: str, description: str) -> None:
        did = self.domain_id(domain)
        found = self.get(f"/projects?name={quote(name)}&domain_id={quote(did)}", f"find project {name}")["projects"]
        if found:
            return
        self.post("/projects", {"project": {"name": name, "domain_id": did, "description": description,
                                            "enabled": True}}, f"create project {name}")
        self.changed.append(f"created project {name}")

    def ensure_user(self, name: str, domain: str, password: str) -> str:
        """Create the user, or set its password when the one it has no longer authenticates."""
        did = self.domain_id(domain)
        found = self.get(f"/users?name={quote(name)}&domain_id={quote(did)}", f"find user {name}")["users"]
        if not found:
            doc = self.post("/users", {"user": {"name": name, "domain_id": did, "password": password,
                                                "enabled": True}}, f"create user {name}")
            self.changed.append(f"created user {name}")
            self.known[str(doc["user"]["id"])] = fingerprint(str(doc["user"]["id"]), password)
            return str(doc["user"]["id"])
        uid = str(found[0]["id"])
        mark = fingerprint(uid, password)
        if self.known.get(uid) == mark:
            return uid
        user = {"id": uid, "password": password}
        auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}}
        status, _ = self.http("POST", "identity", "/auth/tokens", auth, False)
        if status not in (201, 401):
            raise ApiError(f"check the password of user {name}: HTTP {status}")
        if status == 401:
            self.send("PATCH", f"/users/{uid}", {"user": {"password": password}}, f"set the password of user {name}")
            self.changed.append(f"reset the password of user {name}")
        self.known[uid] = mark
        return uid

    def ensure_grants(self, uid: str, user: str, grants: list[dict[str, str]]) -> None:
        """grants: {"role", and "project" + "project_domain", or "domain"}."""
        doc = self.get(f"/role_assignments?user.id={quote(uid)}", f"list role assignments of {user}")
        have = set()
        for a in doc["role_assignments"]:
            scope = a.get("scope", {})
            if "project" in scope:
                have.add((a["role"]["id"], "projects", scope["project"]["id"]))
            elif "domain" in scope:
                have.add((a["role"]["id"], "domains", scope["domain"]["id"]))
        for g in grants:
            rid = self.roles()[g["role"]]
            if "project" in g:
                kind, target, label = "projects", self.project_id(g["project"], g["project_domain"]), g["project"]
            else:
                kind, target, label = "domains", self.domain_id(g["domain"]), f"domain {g['domain']}"
            if (rid, kind, target) in have:
                continue
            self.send("PUT", f"/{kind}/{target}/users/{uid}/roles/{rid}", None,
                      f"grant {g['role']} on {label} to {user}")
            self.changed.append(f"granted role {g['role']} on {label} to {user}")

    def ensure_region(self, region: str) -> None:
        status, doc = self.http("GET", "identity", f"/regions/{quote(region)}", None, True)
        if status == 200:
            return
        _check(status, doc, f"find region {region}", ok=(404,))
        self.post("/regions", {"region": {"id": region}}, f"create region {region}")
        self.changed.append(f"created region {region}")

    def ensure_catalog(self, region: str, services: list[dict[str, Any]]) -> None:
        """One service per type+name, exactly one endpoint per interface in the region with the URL
        asked for: a wrong URL is corrected, duplicates are removed."""
        have = self.get("/services", "list services")["services"]
        endpoints = self.get("/endpoints", "list endpoints")["endpoints"]
        for s in services:
            match = [x for x in have if x["type"] == s["type"] and x.get("name") == s["name"]]
            if match:
                sid = match[0]["id"]
            else:
                doc = self.post("/services", {"service": {"name": s["name"], "type": s["type"],
                                                          "description": s.get("description", ""),
                                                          "enabled": True}}, f"create service {s['name']}")
                sid = doc["service"]["id"]
                self.changed.append(f"created service {s['name']} ({s['type']})")
            for iface, url in s["endpoints"].items():
                mine = [e for e in endpoints if e["service_id"] == sid and e["interface"] == iface
                        and (e.get("region_id") or e.get("region")) == region]
                keep = next((e for e in mine if e["url"] == url), mine[0] if mine else None)
                label = f"{iface} endpoint of {s['name']}"
                if keep is None:
                    self.post("/endpoints", {"endpoint": {"service_id": sid, "interface": iface, "url": url,
                                                          "region_id": region, "enabled": True}},
                              f"create the {label}")
                    self.changed.append(f"created the {label}: {url}")
                elif keep["url"] != url:
                    self.send("PATCH", f"/endpoints/{keep['id']}", {"endpoint": {"url": url}}, f"update the {label}")
                    self.changed.append(f"updated the {label}: {url}")
                for extra in mine:
                    if extra is not keep:
                        self.send("DELETE", f"/endpoints/{extra['id']}", None, f"delete a duplicate {label}")
                        self.changed.append(f"deleted a duplicate {label} ({extra['url']})")


def setup(http: Http, spec: dict[str, Any], known: dict[str, str] | None = None) -> list[str]:
    """Everything in the spec exists afterwards; returns what had to change. `known` (password
    fingerprints by user id) is read and updated."""
    ident = Identity(http, known)
    for d in spec.get("domains", []):
        ident.ensure_domain(d["name"], d.get("description", ""))
    for r in spec.get("roles", []):
        ident.ensure_role(r)
    for p in spec.get("projects", []):
        ident.ensure_project(p["name"], p["domain"], p.get("description", ""))
    for u in spec.get("users", []):
        uid = ident.ensure_user(u["name"], u["domain"], u["password"])
        ident.ensure_grants(uid, u["name"], u.get("grants", []))
    ident.ensure_region(spec["region"])
    ident.ensure_catalog(spec["region"], spec.get("services", []))
    return ident.changed


# -- the gate ---------------------------------------------------------------------------------------
LISTS: dict[str, tuple[str, str]] = {
    "compute": ("/os-services", "services"),
    "network": ("/v2.0/agents", "agents"),
    "volumev3": ("/os-services", "services"),
    "orchestration": ("/services", "services"),
}
"""Per service type: the admin list of services/agents and its JSON key."""


def row_up(service: str, r: dict[str, Any]) -> bool:
    """Whatever each API calls "up"."""
    if service == "network":
        return bool(r.get("alive")) and r.get("admin_state_up", True) is not False
    if service == "orchestration":
        return r.get("status") == "up"
    return r.get("state") == "up" and r.get("status", "enabled") == "enabled"


def rows(service: str, doc: Any) -> list[tuple[str, str, bool]]:
    """(binary, host, up) per row."""
    return [(str(r["binary"]), str(r["host"]), row_up(service, r)) for r in doc[LISTS[service][1]]]


def observe(http: Http, expect: list[dict[str, str]]) -> tuple[list[str], dict[str, Any]]:
    """One look at every list the expectations name: (what is missing, what each list said). A token
    is always asked for first (the lists need one anyway): no token, nothing else is tried."""
    seen: dict[str, Any] = {}
    got: dict[str, list[tuple[str, str, bool]]] = {}
    try:
        status, _ = http("GET", "identity", "/auth/projects", None, True)
    except Exception as exc:
        status, seen["identity"] = 0, f"{type(exc).__name__}: {exc}"
    if status != 200:
        seen.setdefault("identity", f"HTTP {status}")
        return ["identity: an admin token through the VIP"], seen
    for service in sorted({e["service"] for e in expect}):
        path, _ = LISTS[service]
        try:
            status, doc = http("GET", service, path, None, True)
        except Exception as exc:  # no answer yet (starting, behind HAProxy): just "not yet"
            seen[service] = f"{type(exc).__name__}: {exc}"
            continue
        if status != 200:
            seen[service] = f"HTTP {status}"
            continue
        got[service] = rows(service, doc)
        seen[service] = [f"{b}@{h}:{'up' if up else 'down'}" for b, h, up in got[service]]
    missing = [f"{e['service']}: {e['binary']}@{e['host']}" for e in expect
               if not any(b == e["binary"] and h == e["host"] and up for b, h, up in got.get(e["service"], []))]
    return missing, seen


def gate(http: Http, spec: dict[str, Any], clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    deadline = clock() + float(spec.get("timeout", 300))
    while True:
        missing, seen = observe(http, spec["expect"])
        if not missing or clock() >= deadline:
            return {"ok": not missing, "missing": missing, "seen": seen}
        sleep(float(spec.get("interval", 2)))


# -- rows of hosts the topology no longer has -------------------------------------------------------
DELETABLE = ("compute", "network")
"""Nova and Neutron delete a service or agent row through their API; Cinder and Heat have no such
call (their manage commands do it on a controller: the deploy stage runs them for what `prune`
returns as stale)."""


def prune(http: Http, spec: dict[str, Any]) -> dict[str, list[Any]]:
    """Every row whose binary the topology runs but on a host it does not list (a controller or a
    compute that was replaced): deleted when it is down, named when it is still up (a host left out
    of the topology but running is the operator's to stop; nothing alive is deleted)."""
    hosts: dict[str, dict[str, set[str]]] = {}
    for e in spec["keep"]:
        hosts.setdefault(e["service"], {}).setdefault(e["binary"], set()).add(e["host"])
    removed: list[str] = []
    stale: list[list[str]] = []
    alive: list[str] = []
    for service in sorted(hosts):
        path, key = LISTS[service]
        status, doc = http("GET", service, path, None, True)
        for r in _check(status, doc, f"list {service} services")[key]:
            binary, host = str(r["binary"]), str(r["host"])
            if binary not in hosts[service] or host in hosts[service][binary]:
                continue
            what = f"{binary}@{host}"
            if row_up(service, r):
                alive.append(what)
            elif service in DELETABLE:
                status, doc = http("DELETE", service, f"{path}/{r['id']}", None, True)
                _check(status, doc, f"delete {what}", ok=(200, 202, 204, 404))
                removed.append(what)
            else:
                stale.append([service, binary, host])
    return {"removed": removed, "stale": stale, "alive": alive}


# -- logins a rotation moved away from ---------------------------------------------------------------
def retire(http: Http, spec: dict[str, Any]) -> dict[str, list[str]]:
    """Delete the users named in the spec (`{"users": [{"name", "domain"}]}`) that exist: the
    previous service logins of a rotation, once every service has moved to its new one. A user
    already gone is no error (a retire interrupted after its DELETE runs again)."""
    ident = Identity(http)
    removed: list[str] = []
    for u in spec.get("users", []):
        did = ident.domain_id(u["domain"])
        found = ident.get(f"/users?name={quote(u['name'])}&domain_id={quote(did)}", f"find user {u['name']}")
        for user in found["users"]:
            status, doc = http("DELETE", "identity", f"/users/{user['id']}", None, True)
            _check(status, doc, f"delete user {u['name']}", ok=(204, 404))
            removed.append(str(u["name"]))
    return {"removed": removed}


# -- on the node ------------------------------------------------------------------------------------
def keystoneauth_http(spec: dict[str, Any]) -> Http:  # pragma: no cover - needs a cloud
    """An Http over one keystoneauth1 session, authenticated as admin in project admin. Catalog URLs
    come from the token (Keystone fills in %(project_id)s); identity is the auth URL itself."""
    from keystoneauth1 import session as ks_session  # type: ignore[import-not-found, unused-ignore]
    from keystoneauth1.identity import v3  # type: ignore[import-not-found, unused-ignore]

    auth = v3.Password(auth_url=spec["auth_url"], username="admin", password=spec["admin_password"],
                       project_name="admin", user_domain_id="default", project_domain_id="default")
    sess = ks_session.Session(auth=auth, timeout=30)
    region = spec["region"]

    def base(service: str) -> str:
        if service == "identity":
            return str(spec["auth_url"])
        catalog = auth.get_access(sess).service_catalog
        url = catalog.url_for(service_type=service, interface="public", region_name=region)
        return str(url).rstrip("/")

    def http(method: str, service: str, path: str, body: dict[str, Any] | None, authenticated: bool
             ) -> tuple[int, Any]:
        resp = sess.request(base(service) + path, method, json=body, raise_exc=False,
                            authenticated=authenticated, connect_retries=3)
        doc = None
        if resp.content and "json" in resp.headers.get("Content-Type", ""):
            doc = resp.json()
        return int(resp.status_code), doc

    return http


STATE = "/var/lib/hastack/openstack-admin.known"
"""Password fingerprints (user id -> sha256) of the Keystone users this tool manages; 0600 root."""


def load_known(path: str = STATE) -> dict[str, str]:
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def save_known(known: dict[str, str], path: str = STATE) -> None:
    """Atomically, 0600 from the first byte, under a fresh unpredictable name: a file or link planted
    under the temporary name is refused (O_EXCL | O_NOFOLLOW), never reused or followed (this tool
    runs alone on a node, so it cannot use hastack.safefs)."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    tmp = f"{path}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            os.fchmod(fh.fileno(), 0o600)
            json.dump(known, fh, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def main(argv: list[str]) -> int:  # pragma: no cover - runs on a node
    if len(argv) != 2 or argv[1] not in ("setup", "gate", "prune", "retire"):
        print("usage: openstack-admin setup|gate|prune|retire  (JSON spec on stdin)", file=sys.stderr)
        return 2
    spec = json.load(sys.stdin)
    try:
        http = keystoneauth_http(spec)
        if argv[1] == "setup":
            known = load_known()
            changed = setup(http, spec, known)
            save_known(known)
            print(json.dumps({"changed": changed}))
        elif argv[1] == "prune":
            print(json.dumps(prune(http, spec)))
        elif argv[1] == "retire":
            print(json.dumps(retire(http, spec)))
        else:
            print(json.dumps(gate(http, spec)))
    except ApiError as exc:
        print(f"openstack-admin {argv[1]}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # keystoneauth: no answer, auth refused...; the message holds no secret
        print(f"openstack-admin {argv[1]}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv))
