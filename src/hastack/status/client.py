"""The client's view: what the VIP answers, asked from where hastack runs (never over SSH).

Nodes can look healthy one by one while clients get nothing (a VIP nobody answers on, HAProxy
without a backend), so status also asks the VIP the way a client would:
- SQL: `hastack_probe` (the account deploy creates for status and drills) runs one SELECT
  through HAProxy, which says which node took it;
- every API of the topology: an HTTP GET of the page HAProxy's own check asks for
  (components/haproxy.py `APIS`), expecting the same status;
- with Keystone answering and the admin password known: a token, then the service and agent
  lists of compute, network, block storage and orchestration (which hosts are up).

Each call is bounded (a couple of seconds) and runs in a worker thread beside the SSH probes.
HTTP goes through `Fetch`, which tests replace.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hastack.components import galera, haproxy, keystone
from hastack.secrets import write_private
from hastack.status.model import ApiCheck, Catalog, ServiceRow, SqlCheck
from hastack.topology.model import Topology

HTTP_TIMEOUT = 2.0
TOKEN_TIMEOUT = 5.0
"""Keystone checks the password with bcrypt: slow by design, slower on a loaded controller."""
TOKEN_REUSE_S = 600.0
SQL_TIMEOUT = 2
PROBE_USER, PROBE_SECRET = galera.PROBE_USER, galera.PROBE_SECRET
ADMIN_SECRET = keystone.ADMIN_SECRET


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body.decode() or "null")


class FetchError(Exception):
    """No HTTP answer at all (refused, timed out, reset)."""


Fetch = Callable[[str, str, Mapping[str, str], bytes | None, float], Response]
"""(method, url, headers, body, timeout) -> Response; raises FetchError when nothing answered."""


def urllib_fetch(method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                 timeout: float = HTTP_TIMEOUT, *, tls: ssl.SSLContext | None = None) -> Response:
    """Plain urllib, no proxies from the environment (the VIP is on the management network);
    https verified with `tls` (the cluster's CA) or the system's trust store."""
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=tls))
    try:
        with opener.open(req, timeout=timeout) as r:
            return Response(r.status, r.read(), {k.lower(): v for k, v in r.headers.items()})
    except urllib.error.HTTPError as e:
        return Response(e.code, e.read() or b"", {k.lower(): v for k, v in e.headers.items()})
    except (OSError, ValueError) as e:
        raise FetchError(str(getattr(e, "reason", None) or e)) from None


def trusting(ca_pem: str | None) -> Fetch:
    """A fetch that verifies the VIP's certificate against the cluster's CA (secrets `tls/ca.crt`):
    without it (nothing rendered from here yet) https fails verification, reported as such."""
    if ca_pem is None:
        return urllib_fetch
    context = ssl.create_default_context(cadata=ca_pem)

    def fetch(method: str, url: str, headers: Mapping[str, str], body: bytes | None,
              timeout: float = HTTP_TIMEOUT) -> Response:
        return urllib_fetch(method, url, headers, body, timeout, tls=context)
    return fetch


# -- the APIs through the VIP -----------------------------------------------------------------


def api_urls(topo: Topology) -> list[tuple[haproxy.Api, str]]:
    return [(a, topo.vip_url(a.port, a.check_uri)) for a in haproxy.apis(topo)]


def check_api(fetch: Fetch, api: haproxy.Api, url: str) -> ApiCheck:
    t0 = time.monotonic()
    try:
        r = fetch("GET", url, {}, None, HTTP_TIMEOUT)
    except FetchError as exc:
        return ApiCheck(api.name, api.service, api.title, url, api.status, None, str(exc), time.monotonic() - t0)
    return ApiCheck(api.name, api.service, api.title, url, api.status, r.status, "", time.monotonic() - t0)


# -- SQL through the VIP ---------------------------------------------------------------------


def check_sql(vip: str, password: str) -> SqlCheck:
    """One short connection as hastack_probe: a successful login never counts against MariaDB's
    max_connect_errors (a bare TCP probe through HAProxy would, and could block its address)."""
    import pymysql

    t0 = time.monotonic()
    try:
        conn = pymysql.connect(host=vip, user=PROBE_USER, password=password, connect_timeout=SQL_TIMEOUT,
                               read_timeout=SQL_TIMEOUT, write_timeout=SQL_TIMEOUT)
    except pymysql.MySQLError as exc:
        return SqlCheck(False, error=_sql_error(exc), seconds=time.monotonic() - t0)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@hostname")
            row = cur.fetchone()
    except pymysql.MySQLError as exc:
        return SqlCheck(False, error=_sql_error(exc), seconds=time.monotonic() - t0)
    finally:
        conn.close()
    node = str(next(iter(row))).split(".")[0] if row else ""
    return SqlCheck(True, node, seconds=time.monotonic() - t0)


def _sql_error(exc: Exception) -> str:
    """pymysql errors carry (code, message): the message says it."""
    args: tuple[object, ...] = tuple(exc.args)
    return str(args[-1]) if args else str(exc)


# -- Keystone: the service and agent lists ----------------------------------------------------


LISTS: dict[str, str] = {"compute": "/os-services", "network": "/v2.0/agents", "volumev3": "/os-services",
                         "orchestration": "/services"}


def token_request(password: str) -> bytes:
    return json.dumps(keystone.password_auth("admin", password, "admin")).encode()


def endpoints(token_doc: Any, region: str) -> dict[str, str]:
    """type -> URL from a token's catalog: the internal interface of our region, else any."""
    out: dict[str, str] = {}
    for svc in token_doc["token"].get("catalog", []):
        eps = [e for e in svc.get("endpoints", []) if e.get("region_id", e.get("region")) == region] or \
            svc.get("endpoints", [])
        chosen = next((e for e in eps if e.get("interface") == "internal"), eps[0] if eps else None)
        if chosen is not None:
            out[str(svc["type"])] = str(chosen["url"]).rstrip("/")
    return out


def parse_list(kind: str, doc: Any) -> list[ServiceRow]:
    if kind == "network":
        return [ServiceRow(kind, str(a["binary"]), str(a["host"]), bool(a.get("alive")),
                           bool(a.get("admin_state_up", True))) for a in doc["agents"]]
    if kind == "orchestration":
        return [ServiceRow(kind, str(s["binary"]), str(s["host"]), s.get("status") == "up") for s in doc["services"]]
    return [ServiceRow(kind, str(s["binary"]), str(s["host"]), s.get("state") == "up", s.get("status") == "enabled")
            for s in doc["services"]]


@dataclass
class TokenCache:
    """A token kept between rounds (`--watch`) and, with a path, between runs: every new token costs
    Keystone a bcrypt check (~0.4 s here, most of a `status` run). The file sits beside the secrets
    file, mode 0600, and is only trusted when it is still 0600 and ours; a token Keystone refuses
    (401: expired, revoked, rotated keys) is forgotten and a new one asked for in the same round."""

    token: str = field(default="", repr=False)
    urls: dict[str, str] = field(default_factory=dict)
    until: float = 0.0
    """Wall-clock time (it outlives the process) after which the token is not reused."""
    path: Path | None = None

    @property
    def valid(self) -> bool:
        return bool(self.token) and time.time() < self.until

    @classmethod
    def load(cls, path: Path) -> TokenCache:
        cache = cls(path=path)
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            st = path.stat()
            if st.st_mode & 0o077 or st.st_uid != os.geteuid():
                return cache
            doc = json.loads(path.read_text())
            cache.token, cache.urls, cache.until = str(doc["token"]), dict(doc["urls"]), float(doc["until"])
        return cache

    def keep(self, token: str, urls: dict[str, str]) -> None:
        self.token, self.urls, self.until = token, urls, time.time() + TOKEN_REUSE_S
        if self.path is not None:
            with contextlib.suppress(OSError):
                write_private(self.path, json.dumps({"token": token, "urls": urls, "until": self.until}))

    def forget(self) -> None:
        self.token, self.until = "", 0.0
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)


def _token(fetch: Fetch, auth_url: str, password: str, region: str, cache: TokenCache) -> str:
    """"" and the cache filled, or the reason there is no token."""
    if cache.valid:
        return ""
    try:
        r = fetch("POST", f"{auth_url}/v3/auth/tokens", {"Content-Type": "application/json"},
                  token_request(password), TOKEN_TIMEOUT)
    except FetchError as exc:
        return f"Keystone did not issue a token within {TOKEN_TIMEOUT:g}s: {exc}"
    token = r.headers.get("x-subject-token", "")
    if r.status != 201 or not token:
        return f"Keystone refused a token for admin: HTTP {r.status}"
    cache.keep(token, endpoints(r.json(), region))
    return ""


def read_catalog(fetch: Fetch, auth_url: str, password: str, region: str,
                 cache: TokenCache | None = None) -> Catalog:
    """The lists, asked in parallel; a kept token that is refused is replaced once, at once."""
    cache = cache if cache is not None else TokenCache()
    for _attempt in range(2):
        error = _token(fetch, auth_url, password, region, cache)
        if error:
            return Catalog(False, error)
        wanted = [(kind, cache.urls[kind] + path) for kind, path in LISTS.items() if kind in cache.urls]
        with concurrent.futures.ThreadPoolExecutor(max(1, len(wanted))) as pool:
            answers = list(pool.map(lambda kv: _one_list(fetch, kv[0], kv[1], cache.token), wanted))
        if not any(a.refused for a in answers):
            break
        cache.forget()
    rows = [row for a in answers for row in a.rows]
    errors = [a.error for a in answers if a.error]
    return Catalog(True, rows=tuple(rows), errors=tuple(errors))


@dataclass(frozen=True)
class ListAnswer:
    rows: tuple[ServiceRow, ...] = ()
    error: str = ""
    refused: bool = False
    """HTTP 401: the token is expired or revoked."""


def _one_list(fetch: Fetch, kind: str, url: str, token: str) -> ListAnswer:
    try:
        r = fetch("GET", url, {"X-Auth-Token": token, "Accept": "application/json"}, None, HTTP_TIMEOUT)
        if r.status != 200:
            return ListAnswer(error=f"{kind}: GET {url} answered HTTP {r.status}", refused=r.status == 401)
        return ListAnswer(rows=tuple(parse_list(kind, r.json())))
    except FetchError as exc:
        return ListAnswer(error=f"{kind}: GET {url}: {exc}")
    except (ValueError, KeyError, TypeError) as exc:
        return ListAnswer(error=f"{kind}: GET {url}: unexpected answer ({exc})")


# -- all of it -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientView:
    sql: SqlCheck | None = None
    """None when there is no hastack_probe password (nothing deployed from here yet)."""
    apis: tuple[ApiCheck, ...] = ()
    catalog: Catalog | None = None
    catalog_note: str = ""
    """Why the lists were not read (Keystone not answering, no admin password)."""


async def client_view(topo: Topology, db_password: str | None, admin_password: str | None,
                      fetch: Fetch = urllib_fetch, sql: Callable[[str, str], SqlCheck] = check_sql,
                      tokens: TokenCache | None = None) -> ClientView:
    vip = str(topo.network.vip)
    sql_task = asyncio.create_task(asyncio.to_thread(sql, vip, db_password)) if db_password else None
    urls = api_urls(topo)
    apis: Sequence[ApiCheck] = await asyncio.gather(
        *(asyncio.to_thread(check_api, fetch, api, url) for api, url in urls))
    catalog, note = await _catalog(topo, apis, admin_password, fetch, tokens or TokenCache())
    return ClientView(await sql_task if sql_task else None, tuple(apis), catalog, note)


async def _catalog(topo: Topology, apis: Sequence[ApiCheck], password: str | None,
                   fetch: Fetch, tokens: TokenCache) -> tuple[Catalog | None, str]:
    keystone = next((a for a in apis if a.service == "keystone"), None)
    if keystone is None:
        return None, "Keystone is not in this topology"
    if not keystone.ok:
        return None, "Keystone does not answer through the VIP"
    if password is None:
        return None, f"no Keystone admin password ({ADMIN_SECRET}) in the secrets file"
    port = next(a.port for a in haproxy.apis(topo) if a.name == keystone.name)
    auth_url = topo.vip_url(port)
    return await asyncio.to_thread(read_catalog, fetch, auth_url, password, topo.openstack.region, tokens), ""
