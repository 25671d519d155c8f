"""Checks and small helpers about the host itself (root, tools, mounts), with actionable errors."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from hastack.lab.errors import LabError

# Debian host packages the lab needs (tool -> package), installed by the setup script.
HOST_PACKAGES = ("debootstrap", "systemd-container", "iproute2", "util-linux", "nftables", "openssh-client")


def require_root(why: str) -> None:
    if os.geteuid() != 0:
        raise LabError("not-root", f"{why} needs root", "run it as root (e.g. with sudo)")


def require_tools(tools: dict[str, str]) -> None:
    """tools: executable -> Debian package that provides it."""
    missing = {t: p for t, p in tools.items() if shutil.which(t) is None}
    if missing:
        pkgs = " ".join(sorted(set(missing.values())))
        raise LabError("missing-tool", f"missing {', '.join(sorted(missing))} on this host",
                       f"install with: apt-get install -y {pkgs}")


def require_kernel() -> None:
    """Kernel features the lab cannot work without, checked before anything is created."""
    filesystems = Path("/proc/filesystems").read_text()
    missing = [name for name, ok in (
        ("overlayfs", "\toverlay\n" in filesystems),
        ("cgroup v2 (mounted at /sys/fs/cgroup or /sys/fs/cgroup/unified)",
         Path("/sys/fs/cgroup/cgroup.procs").exists() or Path("/sys/fs/cgroup/unified/cgroup.procs").exists()),
        ("network namespaces", Path("/proc/self/ns/net").exists()),
    ) if not ok]
    if missing:
        raise LabError("kernel-feature-missing", f"this kernel lacks {', '.join(missing)}",
                       "run the lab on a Linux kernel with overlayfs, cgroup v2 and namespaces")


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below path in this mount namespace, deepest first."""
    prefix = str(path.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return sorted(found, key=lambda p: -p.count("/"))


def unmount_under(path: Path) -> None:
    for point in mounts_under(path):
        subprocess.run(["umount", "--lazy", point], capture_output=True)
