"""Keystone on every controller (Debian runs it under uWSGI, unit `keystone`, port 5000).

Why it looks like this:
- Fernet tokens and credential encryption with keys from the secrets file, written IDENTICALLY on
  every controller: a token issued by one controller must validate on another (HAProxy may send the
  next request anywhere). Deploy must never run `keystone-manage fernet_setup`/`credential_setup`,
  which would make per-node keys. Key 0 is the staged key, the highest number the primary; rotation
  is a later command that rewrites the secrets and re-renders. Keystone reads the key directories
  on use, so a key change needs no restart. The directories must be 0700 keystone:keystone.
- Fernet rotation (`hastack rotate-keys`, `rotate_fernet`) keeps the slots 0..FERNET_KEYS-1 and moves
  the values: the staged key becomes the primary (highest slot), the old primary the newest
  secondary, the oldest secondary goes, a fresh key is staged. Files are written in the order of
  `FERNET_ORDER` (secondaries, primary, staged): a node part-way through holds the old staged and
  the old primary at every moment, and a node not yet reached holds the new primary as its staged
  key, so every token issued anywhere validates everywhere. (One key load that straddles a rename on
  its own node can still see a torn set: Keystone reads the files one by one, as it does during
  `keystone-manage fernet_rotate`; the window is the fraction of a millisecond of one load.) Rotations are at least
  token expiration + allow_expired_window apart, the bound Keystone's docs give for 3 active keys.
- Credential-encryption keys (`hastack rotate-keys --credentials`, `rotate_credential`): Keystone
  encrypts every stored credential (EC2, TOTP, ...) with the primary key (the highest slot) and
  decrypts with any key present. A cloud starts with two slots (0 staged, 1 primary); its first
  rotation adds slot 2. A rotation makes the staged key primary, keeps the old primary as the
  secondary (slot 1) and stages a fresh key; the secondary it drops was the primary before the
  previous rotation, so every credential must have been re-encrypted with a newer key first
  (`keystone-manage credential_migrate`, which the command runs after each rotation and records;
  a rotation whose last migrate is not recorded runs it first). Files are written in the order
  1, 2, 0, as the Fernet keys: at every moment a node holds the old primary and the old staged key,
  so whatever a node encrypts, every other node decrypts.
- Token validations are cached in every controller's memcached ([cache]); all URLs name the VIP.
- `endpoints()` is the catalog deploy registers; `bootstrap()` the first admin and identity service.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from hastack import pki
from hastack.components import openstack as os_
from hastack.components.base import HEADER, Ctx, File
from hastack.secrets import Secrets, new_fernet_key
from hastack.topology.model import Node, ServiceName, Topology

CONF = "/etc/keystone/keystone.conf"
FERNET_DIR = "/etc/keystone/fernet-keys"
CREDENTIAL_DIR = "/etc/keystone/credential-keys"
KEYS_STAGE = "/etc/keystone"
"""Where key writes make their temporary file: Keystone opens every entry of a key directory before
it looks at the name, and a root-only temporary file there failed its token requests (CI, 2026-12-05:
`PermissionError: ... /etc/keystone/fernet-keys/.hastack-put.urQk9tFA` during a rotation)."""
FERNET_KEYS = 3
FERNET_ORDER = (*range(1, FERNET_KEYS), 0)
"""The order key files are written in (see the module's docstring)."""
TOKEN_EXPIRATION_S = 3600
ALLOW_EXPIRED_WINDOW_S = 172800
ROTATION_INTERVAL_S = TOKEN_EXPIRATION_S + ALLOW_EXPIRED_WINDOW_S
"""The shortest safe time between two rotations: the key a rotation drops stopped issuing tokens at
the rotation before, and a token may be validated (with allow_expired) this long after its issue."""
FERNET_ROTATED = "keystone/fernet-rotated-at"
"""Unix time of the last rotation, kept beside the keys it describes (absent: never rotated, so the
oldest secondary never issued a token and a first rotation is safe at once)."""
CREDENTIAL_KEYS = 2
"""Slots before the first credential-key rotation; it adds a third (`credential_slots`)."""
CREDENTIAL_ORDER = (1, 2, 0)
CREDENTIAL_ROTATED = "keystone/credential-rotated-at"
CREDENTIAL_MIGRATED = "keystone/credential-migrated-at"
"""Unix times of the last credential-key rotation and of the last `credential_migrate` that completed
after it (a migrate older than the rotation, or none, means credentials may still need the
secondary key)."""
UNIT = "keystone"
ADMIN_SECRET = "keystone/admin"
"""The password of Keystone's `admin` user (project admin, domain Default)."""
OPENRC = "/root/admin-openrc"
"""The cloud admin's credentials for the `openstack` client on a controller (`. /root/admin-openrc`):
0600, the Keystone URL on the VIP, and the cluster's CA when TLS is on."""

# Debian's ini also loads uWSGI's apparmor plugin with `apparmor-profile = keystone`. No package
# defines a profile of that name (keystone's own profile is named after keystone-wsgi-public and is
# in complain mode), and on a kernel without AppArmor (the lab's) uWSGI exits at start when the
# profile change fails (measured). So the rendered ini leaves both lines out.
UWSGI = os_.Uwsgi(
    unit=UNIT, init_name="keystone", ini="/etc/keystone/keystone-uwsgi.ini", port=os_.KEYSTONE_PORT,
    lines=os_.debian_uwsgi("keystone-api", "keystone", ("wsgi-file", "/usr/bin/keystone-wsgi-public"),
                           "/var/log/keystone/keystone.log"),
)


class Endpoint(NamedTuple):
    service_name: str
    service_type: str
    interface: str
    url: str


# (service this topology must run, catalog name, type, port, path)
CATALOG: tuple[tuple[ServiceName, str, str, int, str], ...] = (
    ("keystone", "keystone", "identity", os_.KEYSTONE_PORT, "/v3"),
    ("glance", "glance", "image", 9292, ""),
    ("placement", "placement", "placement", 8778, ""),
    ("nova", "nova", "compute", 8774, "/v2.1"),
    ("neutron", "neutron", "network", 9696, ""),
    ("cinder", "cinderv3", "volumev3", 8776, "/v3/%(project_id)s"),
    ("heat", "heat", "orchestration", 8004, "/v1/%(tenant_id)s"),
    ("heat", "heat-cfn", "cloudformation", 8000, "/v1"),
    ("telemetry", "gnocchi", "metric", 8041, ""),
    ("telemetry", "aodh", "alarming", 8042, ""),
)
INTERFACES = ("public", "internal", "admin")


def project_scope(project: str, domain: str = os_.DOMAIN) -> dict[str, Any]:
    return {"project": {"name": project, "domain": {"name": domain}}}


def password_auth(user: str, password: str, project: str, domain: str = os_.DOMAIN) -> dict[str, Any]:
    """The body of `POST /v3/auth/tokens`: a project-scoped token by password (user and project in `domain`).
    The one copy every in-package client uses (deploy's gate, status, the drills' workload); the
    node-side `agents/openstack_admin.py` runs alone and keeps its own."""
    who = {"name": user, "domain": {"name": domain}, "password": password}
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": who}},
                     "scope": project_scope(project, domain)}}


def token_auth(token: str, project: str, domain: str = os_.DOMAIN) -> dict[str, Any]:
    """A new project-scoped token from a held one (`methods: token`), as a long-running service renews."""
    return {"auth": {"identity": {"methods": ["token"], "token": {"id": token}},
                     "scope": project_scope(project, domain)}}


def endpoints(topo: Topology) -> list[Endpoint]:
    """The catalog: every interface of every service on the VIP (never a node address).

    One address for all three interfaces: the lab has one network. With a public VIP (network.public)
    HAProxy also listens there, but the catalog keeps the management VIP so every client inside the
    deployment resolves the same URLs.
    """
    return [Endpoint(name, kind, iface, topo.vip_url(port, path))
            for svc, name, kind, port, path in CATALOG if topo.runs(svc)
            for iface in INTERFACES]


def bootstrap(ctx: Ctx) -> tuple[list[str], dict[str, str]]:
    """`keystone-manage bootstrap` (argv, extra environment): admin user, admin/member/reader roles,
    the admin project and the identity endpoints. The password goes in the environment, not argv
    (argv is visible in `ps` to every user of the node)."""
    ident = [e for e in endpoints(ctx.topo) if e.service_type == "identity"]
    argv = ["keystone-manage", "bootstrap", "--bootstrap-username", "admin",
            "--bootstrap-project-name", "admin", "--bootstrap-role-name", "admin",
            "--bootstrap-service-name", "keystone", "--bootstrap-region-id", ctx.topo.openstack.region]
    for e in ident:
        argv += [f"--bootstrap-{e.interface}-url", e.url]
    return argv, {"OS_BOOTSTRAP_PASSWORD": ctx.secrets.password(ADMIN_SECRET)}


def conf(ctx: Ctx) -> os_.Sections:
    return os_.merge(
        os_.oslo_cache(ctx),
        {"credential": {"provider": "fernet", "key_repository": CREDENTIAL_DIR}},
        os_.database(ctx, "keystone", "keystone"),
        {"fernet_tokens": {"key_repository": FERNET_DIR, "max_active_keys": FERNET_KEYS}},
        {"oslo_policy": {"policy_dirs": "/etc/keystone/policy.d"}},
        {"token": {"provider": "fernet", "expiration": TOKEN_EXPIRATION_S,
                   "allow_expired_window": ALLOW_EXPIRED_WINDOW_S}},
        os_.proxy_headers(),
        os_.notifications(ctx),
    )


def openrc(ctx: Ctx) -> File:
    """Every value is either generated (alphanumeric password) or validated by the topology model
    (address, region pattern), so nothing here needs shell quoting beyond the plain single quotes."""
    env = {"OS_AUTH_URL": ctx.topo.vip_url(os_.KEYSTONE_PORT, "/v3"), "OS_IDENTITY_API_VERSION": "3",
           "OS_USERNAME": "admin", "OS_PASSWORD": ctx.secrets.password(ADMIN_SECRET),
           "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": os_.DOMAIN, "OS_PROJECT_DOMAIN_NAME": os_.DOMAIN,
           "OS_REGION_NAME": ctx.topo.openstack.region, "OS_INTERFACE": "public",
           **({"OS_CACERT": pki.CA_PATH} if ctx.topo.network.tls else {})}
    body = "".join(f"export {k}='{v}'\n" for k, v in env.items())
    return File(OPENRC, f"# {HEADER}\n{body}", mode=0o600, secret=True)


def fernet_paths() -> list[str]:
    return [f"{FERNET_DIR}/{i}" for i in FERNET_ORDER]


def rotate_fernet(secrets: Secrets, now: float) -> None:
    """The next key set in the secrets (saved by the caller): fresh staged key in slot 0, the old
    primary and younger secondaries one slot down, the old staged key in the primary slot."""
    old = [secrets.fernet_key(f"fernet/{i}") for i in range(FERNET_KEYS)]
    for i, value in enumerate([new_fernet_key(), *old[2:], old[0]]):
        secrets.put(f"fernet/{i}", value)
    secrets.put(FERNET_ROTATED, str(int(now)))


def rotation_wait(secrets: Secrets, now: float) -> float:
    """Seconds until a rotation is safe (0: now)."""
    last = secrets.get(FERNET_ROTATED)
    if last is None or not last.isdigit():
        return 0.0
    return max(0.0, int(last) + ROTATION_INTERVAL_S - now)


def credential_slots(secrets: Secrets) -> list[int]:
    """The credential key slots in write order: (0, 1) until the first rotation, then CREDENTIAL_ORDER."""
    return list(CREDENTIAL_ORDER) if secrets.get("credential/2") is not None else list(range(CREDENTIAL_KEYS))


def credential_paths(secrets: Secrets) -> list[str]:
    return [f"{CREDENTIAL_DIR}/{i}" for i in credential_slots(secrets)]


def migrate_pending(secrets: Secrets) -> bool:
    """A rotation happened and no credential_migrate completed after it: the secondary key may still
    be the only one that decrypts some credential, so the next rotation must migrate first."""
    rotated, migrated = secrets.get(CREDENTIAL_ROTATED), secrets.get(CREDENTIAL_MIGRATED)
    if rotated is None:
        return False
    if not (rotated.isdigit() and migrated is not None and migrated.isdigit()):
        return True  # an unreadable time proves nothing: migrate again, which is harmless
    return int(migrated) < int(rotated)


def rotate_credential(secrets: Secrets, now: float) -> None:
    """The next credential key set in the secrets (saved by the caller): the staged key primary
    (slot 2), the old primary secondary (slot 1), a fresh staged key (slot 0). Refuses while a
    migrate is pending: the dropped secondary might still be the only key of some credential."""
    if migrate_pending(secrets):
        raise ValueError("the last credential-key rotation has no completed credential_migrate after it")
    staged = secrets.fernet_key("credential/0")
    primary = secrets.fernet_key(f"credential/{max(credential_slots(secrets))}")
    for i, value in ((0, new_fernet_key()), (1, primary), (2, staged)):
        secrets.put(f"credential/{i}", value)
    secrets.put(CREDENTIAL_ROTATED, str(int(now)))


def key_files(ctx: Ctx) -> list[File]:
    """Raw key text, no newline (as keystone-manage writes it), 0600 keystone:keystone; Fernet keys in
    FERNET_ORDER, credential keys in their write order."""
    keys = [(f"{FERNET_DIR}/{i}", f"fernet/{i}") for i in FERNET_ORDER]
    keys += [(f"{CREDENTIAL_DIR}/{i}", f"credential/{i}") for i in credential_slots(ctx.secrets)]
    return [File(path, ctx.secrets.fernet_key(name), owner="keystone", group="keystone", mode=0o600,
                 secret=True, stage_dir=KEYS_STAGE) for path, name in keys]


class Keystone:
    name = "keystone"

    def applies(self, topo: Topology, node: Node) -> bool:
        return topo.runs("keystone") and node.has("controller")

    def packages(self, topo: Topology, node: Node) -> list[str]:
        return ["keystone", "python3-openstackclient"]

    def units(self, topo: Topology, node: Node) -> list[str]:
        return [UNIT]

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        return [
            os_.config_file(CONF, conf(ctx), "keystone", (UNIT,)),
            *os_.uwsgi_files(UWSGI, node, ctx.topo.openstack.api_workers),
            *key_files(ctx),
            openrc(ctx),
        ]


COMPONENT = Keystone()
