"""Generated secrets, kept in one 0600 file beside the topology and reused on every render.

A secret is created the first time a component asks for it, so adding a service later adds
its passwords without touching the existing ones. Values never reach logs or output: the
`Secrets` object has no useful repr, and rendered files that embed one are marked secret.
Secrets the topology itself holds (fence passwords) are not stored here but are masked alike.
"""

from __future__ import annotations

import base64
import os
import secrets as _rand
import stat
import string
from collections.abc import Iterable
from pathlib import Path

from ruamel.yaml.error import YAMLError

from hastack.reports import Location, Report, ReportError, Severity
from hastack.safefs import write_private
from hastack.topology import yamldoc

_ALNUM = string.ascii_letters + string.digits

__all__ = ["Secrets", "SecretsFileError", "mask", "new_fernet_key", "secrets_path", "state_dir", "write_private"]


class SecretsFileError(ReportError):
    """A secrets file hastack will not use (widened mode, a link, unreadable, corrupt): a coded
    report like any other, never a traceback, and never silently replaced (that would lose every
    password the running cloud uses)."""

    def __init__(self, code: str, path: Path, message: str, hint: str):
        super().__init__([Report(code, Severity.ERROR, message, Location(str(path)), hint)])


def new_fernet_key() -> str:
    """32 random bytes, URL-safe base64: what `keystone-manage fernet_setup` writes."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _new_password(length: int) -> str:
    return "".join(_rand.choice(_ALNUM) for _ in range(length))


class Secrets:
    def __init__(self, path: Path | None, values: dict[str, str] | None = None):
        self.path = path
        self._values: dict[str, str] = dict(values or {})
        self._masked: set[str] = set()
        self._new: set[str] = set()
        self._dropped = False

    def __repr__(self) -> str:
        return f"Secrets({self.path}, {len(self._values)} values)"

    # -- kinds of secret -----------------------------------------------------------
    def password(self, name: str, length: int = 32) -> str:
        """Alphanumeric only: safe inside URLs (transport_url, connection strings) and INI files."""
        return self._get(name, lambda: _new_password(length))

    def renew(self, name: str, length: int = 32) -> str:
        """A new password under an existing name (a rotation); saved like a generated one."""
        self.put(name, _new_password(length))
        return self._values[name]

    def token_b64(self, name: str, nbytes: int) -> str:
        """Random bytes, standard base64 (e.g. the corosync authkey)."""
        return self._get(name, lambda: base64.b64encode(os.urandom(nbytes)).decode())

    def fernet_key(self, name: str) -> str:
        """A Fernet key as Keystone writes it: 32 random bytes, URL-safe base64."""
        return self._get(name, new_fernet_key)

    def _get(self, name: str, make: object) -> str:
        if name not in self._values:
            assert callable(make)
            self._values[name] = str(make())
            self._new.add(name)
        return self._values[name]

    def get(self, name: str) -> str | None:
        """A stored value, or None: for secrets made elsewhere (pki.py) that may need renewing."""
        return self._values.get(name)

    def put(self, name: str, value: str) -> None:
        """Store a value made elsewhere (a new or renewed certificate); saved like a generated one."""
        if self._values.get(name) != value:
            self._values[name] = value
            self._new.add(name)

    def discard(self, name: str) -> None:
        """Forget a value (the login a finished rotation retired); the next save writes the file without it."""
        if self._values.pop(name, None) is not None:
            self._new.discard(name)
            self._dropped = True

    def unsaved(self) -> list[str]:
        """Names generated in this process and not written yet (a plan reports them, deploy saves them)."""
        return sorted(self._new)

    def names(self) -> list[str]:
        return sorted(self._values)

    def values(self) -> list[str]:
        """For masking: every secret value (stored, or known from the topology), longest first."""
        return sorted(set(self._values.values()) | self._masked, key=len, reverse=True)

    def also_mask(self, values: Iterable[str]) -> None:
        """Secrets that live elsewhere (a fence password in the topology): masked, never stored."""
        self._masked.update(values)

    # -- persistence -----------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> Secrets:
        """The stored secrets; none yet is fine. Refused: a file others may read (its secrets are
        out; rotate them), a link (hastack follows none it did not make), a corrupt file."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise SecretsFileError("SECRETS-UNREADABLE", path, f"cannot open {path}: {exc.strerror}",
                                   "secrets.yml must be a regular file (not a symbolic link) you can read") from None
        with os.fdopen(fd, "rb") as fh:
            _check_private(path, os.fstat(fh.fileno()))
            raw = fh.read(yamldoc.MAX_BYTES + 1)
        return cls(path, _parse(path, raw))

    def save(self) -> None:
        """Write atomically with mode 0600 from the first byte (never world-readable, even briefly)."""
        if self.path is None or not (self._new or self._dropped):
            return
        lines = [f"{k}: '{self._values[k].replace(chr(39), chr(39) * 2)}'\n" for k in sorted(self._values)]
        write_private(self.path, "# generated by hastack; keep private (mode 0600)\n" + "".join(lines))
        self._new.clear()
        self._dropped = False


def _check_private(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise SecretsFileError("SECRETS-UNREADABLE", path, f"{path} is not a regular file",
                               "move it away; hastack writes a new one")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise SecretsFileError("SECRETS-MODE", path, f"{path} has mode {mode:04o}: others may have read it",
                               f"chmod 600 {path}, and consider its passwords known")


def _parse(path: Path, raw: bytes) -> dict[str, str]:
    """name: value lines as `save` writes them, through the hardened topology parser (no tags,
    bounded size, depth and aliases): a corrupt file is a report, not a traceback."""
    corrupt = f"{path} is not a mapping of name: value"
    hint = "restore it from a backup; deleting it makes new passwords the running cloud does not know"
    try:
        data, _ = yamldoc.build(raw.decode("utf-8"))
    except (yamldoc.YamlLimit, YAMLError, UnicodeDecodeError) as exc:
        raise SecretsFileError("SECRETS-CORRUPT", path, f"{corrupt}: {exc}", hint) from None
    data = {} if data is None else data
    if not isinstance(data, dict) or not all(isinstance(v, str | int) and not isinstance(v, bool)
                                             for v in data.values()):
        raise SecretsFileError("SECRETS-CORRUPT", path, corrupt, hint)
    return {str(k): str(v) for k, v in data.items()}


def state_dir(topology_file: Path, name: str) -> Path:
    """Per-topology state beside the topology file: secrets, lab SSH key, known hosts."""
    return topology_file.resolve().parent / ".hastack" / name


def secrets_path(topology_file: Path, name: str) -> Path:
    return state_dir(topology_file, name) / "secrets.yml"


def mask(text: str, secrets: Secrets) -> str:
    for v in secrets.values():
        if len(v) >= 6:
            text = text.replace(v, "********")
    return text
