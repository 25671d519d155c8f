"""Scratch network namespaces for checkers that need an interface or an address to exist
(`keepalived -t`, `corosync -t`, a daemon started for real). Removed, with a bounded wait for the
kernel's asynchronous deletion, whatever the test does."""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def scratch_netns(address: str | None = None, *, ifname: str = "eth0", prefix: str = "hastack-chk"
                  ) -> Iterator[str]:
    """A namespace holding `ifname` (one end of a veth: this kernel has no `dummy` type), with
    `address` (CIDR) on it when given; yields the namespace's name."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "add", ifname, "type", "veth", "peer", "name", f"{ifname}-peer"[:15])
        if address:
            ip("-n", name, "addr", "add", address, "dev", ifname)
        for dev in ("lo", ifname, f"{ifname}-peer"[:15]):
            ip("-n", name, "link", "set", dev, "up")
        yield name
    finally:
        delete(name)


def delete(name: str, timeout: float = 5.0) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    deadline = time.monotonic() + timeout
    while Path(f"/run/netns/{name}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
