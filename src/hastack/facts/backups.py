"""The database backups a controller holds: `db-backup list` (agents/db_backup.py), parsed.

The program prints one JSON object; each backup is what it wrote in that backup's
hastack-backup.json when it took it (name, kind, its chain, the Galera position, size, time).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hastack.facts.base import Fact, require_exit


@dataclass(frozen=True)
class Backup:
    """One copy, and the topology node that holds it."""

    host: str
    name: str
    kind: str
    full: str
    base: str | None
    position: str
    started: float
    seconds: float
    bytes: int
    version: str = ""

    @staticmethod
    def of(host: str, doc: dict[str, object]) -> Backup:
        """From one backup's JSON; ValueError when a field is missing or of the wrong kind."""
        try:
            base = doc.get("base")
            version = str(doc.get("version") or "").strip().splitlines()
            return Backup(host, str(doc["name"]), str(doc["kind"]), str(doc["full"]),
                          None if base is None else str(base), str(doc["position"]), float(str(doc["started"])),
                          float(str(doc["seconds"])), int(str(doc["bytes"])), version[0] if version else "")
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"a backup's description lacks or garbles {exc}") from None


def parse_json(text: str, what: str) -> dict[str, object]:
    """The one JSON object db-backup prints on success."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{what}: not the JSON db-backup prints ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{what}: not a JSON object")
    return doc


def parse_list(host: str, text: str) -> list[Backup]:
    items = parse_json(text, "db-backup list").get("backups")
    if not isinstance(items, list) or not all(isinstance(b, dict) for b in items):
        raise ValueError("db-backup list: no array of backups")
    return [Backup.of(host, b) for b in items]


def backup_list(host: str, program: str, root: str) -> Fact[list[Backup]]:
    """`program` and `root` are the Galera component's (components/galera.py: BACKUP_PROGRAM, BACKUP_ROOT)."""
    return Fact("db_backups", (program, "list", root), lambda r: parse_list(host, require_exit(r).stdout), 60.0)
