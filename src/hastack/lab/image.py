"""The one Debian 12 image every lab node (and every offline config check) runs from.

Why one image with every role's packages: nodes share it read-only under a per-node overlay, so a
node costs ~10 MB of disk, and a role change needs no rebuild. It is built once per package list
(cache key = sha256 of the list + builder version) and only marked complete when the build finished.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from hastack.lab import apt, host
from hastack.lab.errors import LabError

Progress = Callable[[str], None]

BUILDER_VERSION = "hastack-image-5"
IMAGES = Path("/var/lib/hastack/images")
SCRATCH = Path("/run/hastack/scratch")
FENCE_AGENT = Path(__file__).with_name("fence_hastack")
BUILD_HOSTNAME = "hastack-build"

PACKAGES: tuple[str, ...] = (
    # init, basics, tools the lab and operators use
    "systemd", "systemd-sysv", "dbus", "openssh-server", "iproute2", "iputils-ping", "iputils-arping",
    "curl", "procps", "less", "psmisc", "rsync", "socat", "netcat-openbsd", "ca-certificates", "crudini",
    "ebtables", "iptables", "ipset", "nftables", "conntrack", "dnsmasq-base", "bridge-utils", "sudo",
    "net-tools",  # netstat, for neutron-netns-cleanup
    "python3",  # the API watchdog's interpreter
    # database, messaging, balancing, VIP, cache
    "mariadb-server", "mariadb-client", "galera-4", "mariadb-backup", "galera-arbitrator-4",
    "rabbitmq-server", "haproxy", "keepalived", "memcached",
    # cluster stack for the network nodes
    "corosync", "corosync-qdevice", "corosync-qnetd", "pacemaker", "pacemaker-cli-utils", "crmsh",
    "resource-agents", "fence-agents", "cluster-glue",
    # OpenStack Zed
    "python3-pymysql", "python3-openstackclient", "python3-osc-placement", "python3-oslo.config",
    "keystone", "glance", "glance-api", "placement-api",
    "nova-api", "nova-conductor", "nova-scheduler", "nova-compute", "nova-compute-ironic",
    "neutron-api", "neutron-rpc-server", "neutron-l3-agent", "neutron-dhcp-agent", "neutron-metadata-agent",
    "neutron-linuxbridge-agent",
    "cinder-api", "cinder-scheduler",
    "heat-api", "heat-api-cfn", "heat-engine",
    # Telemetry (ceilometer's compute agent is left out: it pulls libvirt, and the lab's computes run
    # the fake driver, which it has nothing to inspect on)
    "ceilometer-agent-central", "ceilometer-agent-notification", "gnocchi-api", "gnocchi-metricd",
    "aodh-api", "aodh-evaluator", "aodh-notifier", "aodh-listener",
    "python3-gnocchiclient", "python3-aodhclient",
)

# dpkg settings kept in the image: no docs/man/locales (smaller image, nothing runs from them).
DPKG_EXCLUDES = """\
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
"""
APT_ENV = ["DEBIAN_FRONTEND=noninteractive", "DEBCONF_NONINTERACTIVE_SEEN=true"]
APT_OPTS = ["-y", "-q", "--no-install-recommends", "-o", "Dpkg::Options::=--force-confold",
            "-o", "Dpkg::Options::=--force-confdef", "-o", "Acquire::Retries=3"]
# Files every node must own itself (a copy per node breaks corosync ids, ssh trust, rabbit cookies).
QNETD_DB = "etc/corosync/qnetd/nssdb"
IDENTITY = ("etc/machine-id", "etc/hostname", "var/lib/rabbitmq/.erlang.cookie", "var/lib/dbus/machine-id")


def image_key(packages: tuple[str, ...] = PACKAGES) -> str:
    text = "\n".join([BUILDER_VERSION, apt.SUITE, *sorted(packages)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def image_dir(packages: tuple[str, ...] = PACKAGES) -> Path:
    return IMAGES / image_key(packages)


def image_info(packages: tuple[str, ...] = PACKAGES) -> dict[str, object] | None:
    """What the completion marker recorded (build time, size), or None when there is no complete image."""
    marker = image_dir(packages) / "complete.json"
    if not marker.is_file():
        return None
    data: dict[str, object] = json.loads(marker.read_text())
    return data


# -- progress ----------------------------------------------------------------------------------------

class Phases:
    """Phase names with elapsed time, either to a caller's callback or to a rich status line."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.start = time.monotonic()
        self.console = None
        if progress is None:
            from rich.console import Console

            self.console = Console(stderr=True)

    def say(self, text: str) -> None:
        if self.progress is not None:
            self.progress(text)
        elif self.console is not None:
            self.console.print(f"[dim]{time.monotonic() - self.start:6.1f}s[/] {text}", highlight=False)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[Callable[[str], None]]:
        t0 = time.monotonic()
        self.say(f"{name} ...")
        status = None
        if self.console is not None:
            status = self.console.status(name)
            status.start()

        def tick(detail: str) -> None:
            if status is not None:
                status.update(f"{name} [dim]{time.monotonic() - t0:5.0f}s  {detail[:70]}[/]")

        try:
            yield tick
        finally:
            if status is not None:
                status.stop()
        self.say(f"{name} done in {time.monotonic() - t0:.1f} s")


# -- running things during the build ------------------------------------------------------------------

def _last_line(log: Path) -> str:
    with log.open("rb") as f:
        f.seek(max(0, log.stat().st_size - 400))
        lines = f.read().decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


def _run_logged(argv: list[str], log: Path, tick: Callable[[str], None], timeout: float = 3600) -> None:
    """Run with output appended to the build log; poll (bounded) so the status line stays alive."""
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while True:
        try:
            rc = proc.wait(timeout=1)
            break
        except subprocess.TimeoutExpired:
            tick(_last_line(log))
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise LabError("image-build-timeout", f"{argv[0]} ran longer than {timeout:.0f} s",
                               f"see {log}") from None
    if rc != 0:
        tail = _last_line(log)
        raise LabError("image-build-failed", f"image build step `{argv[0]}` failed (exit {rc}): {tail}",
                       f"full log in {log}; fix the cause and run again (the half-built image is discarded)")


def _in_root(root: Path, argv: list[str], *, overlay: bool = False, binds: dict[str, str] | None = None,
             hostname: str = BUILD_HOSTNAME, env: list[str] | None = None) -> list[str]:
    """argv that runs `argv` chrooted into root, inside fresh mount/pid/uts namespaces."""
    cmd = ["unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child", "--propagation", "private",
           sys.executable, "-m", "hastack.lab.chroot", "--root", str(root), "--hostname", hostname]
    if overlay:
        cmd += ["--overlay", str(SCRATCH)]
    for src, dst in (binds or {}).items():
        cmd += ["--bind", f"{src}:{dst}"]
    for kv in env or []:
        cmd += ["--env", kv]
    return [*cmd, "--", *argv]


# -- the build -----------------------------------------------------------------------------------------

def _wants_links(root: Path) -> set[str]:
    """Enablement symlinks (`*.wants/`, `*.requires/`) under /etc/systemd/system, relative paths."""
    base = root / "etc/systemd/system"
    if not base.is_dir():
        return set()
    return {str(p.relative_to(base)) for d in base.iterdir() if d.suffix in (".wants", ".requires")
            for p in d.iterdir() if p.is_symlink()}


def _alias_links(root: Path) -> set[str]:
    """Alias symlinks (`Alias=` in [Install], e.g. garbd.service -> garb.service) under
    /etc/systemd/system. They are enablement too: with one left behind, `systemctl is-enabled garb`
    says "enabled" although nothing wants the unit at boot, so deploy saw nothing to enable and garbd
    did not come back after its node's power cycle (seen in the lab, 2026-12-04)."""
    base = root / "etc/systemd/system"
    if not base.is_dir():
        return set()
    return {p.name for p in base.iterdir() if p.is_symlink() and p.suffix in (".service", ".socket", ".timer")
            and os.readlink(p).startswith(("/lib/systemd/system/", "/usr/lib/systemd/system/"))
            and Path(os.readlink(p)).name != p.name}


def _prepare(root: Path, sources: list[str]) -> None:
    (root / "etc/apt/sources.list").write_text("\n".join(sources) + "\n")
    for stale in (root / "etc/apt/sources.list.d").glob("*"):
        stale.unlink()
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\n# hastack image build: no service starts during the install\nexit 101\n")
    policy.chmod(0o755)
    (root / "etc/hostname").write_text(BUILD_HOSTNAME + "\n")
    (root / "etc/hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {BUILD_HOSTNAME}\n")
    dpkg_d = root / "etc/dpkg/dpkg.cfg.d"
    (dpkg_d / "hastack-nodoc").write_text(DPKG_EXCLUDES)
    (dpkg_d / "hastack-build-unsafe-io").write_text("force-unsafe-io\n")


def _finish(root: Path) -> list[str]:
    """Turn the build root into a shareable image; returns the units it disabled.

    Every enablement link (wants, requires, aliases) goes, even debootstrap's own timers (apt-daily,
    fstrim, ...): a lab node runs only what `lab up` (ssh) and the deployment enable on it.
    """
    base = root / "etc/systemd/system"
    disabled = sorted(_wants_links(root) | _alias_links(root))
    for rel in disabled:
        (base / rel).unlink()
    share = root / "usr/share/hastack"
    share.mkdir(parents=True, exist_ok=True)
    (share / "disabled-units").write_text("".join(f"{u}\n" for u in disabled))
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    for rel in IDENTITY:
        p = root / rel
        if p.is_file() and not p.is_symlink():
            p.unlink()
    # corosync-qnetd's postinst made a CA here: every node built from the image would share its key.
    # Deploy creates one on the qnetd host (corosync-qnetd-certutil -i).
    shutil.rmtree(root / QNETD_DB, ignore_errors=True)
    (root / "etc/machine-id").write_text("")  # empty = "not yet set": systemd's convention for images
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
    (root / "etc/resolv.conf").unlink(missing_ok=True)
    (root / "etc/resolv.conf").write_text("")  # nodes have no DNS: everything is in /etc/hosts
    for rel in ("usr/sbin/policy-rc.d", "etc/dpkg/dpkg.cfg.d/hastack-build-unsafe-io"):
        (root / rel).unlink(missing_ok=True)
    for d in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for p in (root / d).glob("*"):
            if p.is_file():
                p.unlink()
    install_fence_agent(root)
    return disabled


def install_fence_agent(root: Path) -> None:
    target = root / "usr/sbin/fence_hastack"
    shutil.copyfile(FENCE_AGENT, target)
    target.chmod(0o755)


def _du(path: Path) -> int:
    out = subprocess.run(["du", "-sb", "--one-file-system", str(path)], capture_output=True, text=True)
    return int(out.stdout.split()[0]) if out.returncode == 0 else 0


def _discard(path: Path) -> None:
    if path.exists():
        host.unmount_under(path)
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)


def _build(dest: Path, phases: Phases) -> dict[str, object]:
    found = apt.image_sources(apt.host_sources())
    if found is None:
        raise LabError("no-debian-source", "the host's apt sources name no Debian archive for the image",
                       "add a Debian 'deb' source (bookworm, main) to /etc/apt/sources.list(.d)")
    mirror, sources = found
    partial, log = dest / "rootfs.partial", dest / "build.log"
    _discard(partial)
    log.write_text("")
    t0 = time.monotonic()
    with phases.phase("debootstrap bookworm (minbase)") as tick:
        _run_logged(["unshare", "--mount", "--propagation", "private", "debootstrap", "--variant=minbase",
                     apt.SUITE, str(partial), mirror], log, tick)
    _prepare(partial, sources)
    env = [*APT_ENV]
    with phases.phase("apt-get update") as tick:
        _run_logged(_in_root(partial, ["apt-get", "update", "-q"], env=env), log, tick)
    with phases.phase(f"install {len(PACKAGES)} packages and their dependencies") as tick:
        _run_logged(_in_root(partial, ["apt-get", "install", *APT_OPTS, *PACKAGES], env=env), log, tick)
    with phases.phase("finish image (disable units, drop build identity)"):
        disabled = _finish(partial)
    partial.rename(dest / "rootfs")
    pkgs = subprocess.run(["chroot", str(dest / "rootfs"), "dpkg-query", "-f", ".\n", "-W"],
                          capture_output=True, text=True).stdout.count(".")
    return {"key": dest.name, "builder": BUILDER_VERSION, "build_seconds": round(time.monotonic() - t0, 1),
            "size_bytes": _du(dest / "rootfs"), "packages_installed": pkgs, "units_disabled": len(disabled),
            "mirror_from_host": True, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


@contextlib.contextmanager
def _locked(path: Path, phases: Phases) -> Iterator[None]:
    """One builder at a time; others wait here and then find the image complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        if not _try_lock(f):
            phases.say("another process is building the image; waiting for it")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _try_lock(f: IO[str]) -> bool:
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def ensure_image(progress: Progress | None = None) -> Path:
    """The rootfs of the complete lab image, building it first when the cache has none (~3-4 min)."""
    dest = image_dir()
    rootfs, marker = dest / "rootfs", dest / "complete.json"
    if marker.is_file() and rootfs.is_dir():
        return rootfs
    host.require_root("building the lab image")
    host.require_tools({"debootstrap": "debootstrap", "unshare": "util-linux", "chroot": "coreutils"})
    phases = Phases(progress)
    with _locked(IMAGES / f"{dest.name}.lock", phases):
        if marker.is_file() and rootfs.is_dir():
            return rootfs
        phases.say(f"building the lab image {dest.name} (Debian {apt.SUITE}, {len(PACKAGES)} packages)")
        _discard(rootfs)
        dest.mkdir(parents=True, exist_ok=True)
        info = _build(dest, phases)
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2) + "\n")
        tmp.rename(marker)
        size_gb = int(info["size_bytes"]) / 1e9  # type: ignore[call-overload]
        phases.say(f"image ready: {rootfs} ({size_gb:.2f} GB, {info['build_seconds']} s)")
    return rootfs


def run_in_image(argv: list[str], binds: dict[str, str] | None = None, netns: str | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run argv inside a throwaway writable overlay of the image (the cached image is never modified).

    /proc, /dev, /sys (read-only), /tmp and /run are available; `binds` maps host paths to paths
    inside (read-write, so `CIB_file=... crm configure` can write its file). With `netns`, runs in
    /run/netns/NAME (e.g. for `keepalived -t`, which wants its interface to exist). On timeout the
    whole process tree is killed and subprocess.TimeoutExpired is raised.
    """
    host.require_root("running a command in the lab image")
    rootfs = ensure_image()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    all_binds = {str(FENCE_AGENT): "/usr/sbin/fence_hastack", **(binds or {})}
    cmd = _in_root(rootfs, argv, overlay=True, binds=all_binds, hostname="hastack-check")
    if netns:
        if not Path(f"/run/netns/{netns}").exists():
            raise LabError("no-netns", f"network namespace {netns} does not exist",
                           "create it with `ip netns add`")
        cmd = ["nsenter", f"--net=/run/netns/{netns}", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def main() -> None:
    """`python -m hastack.lab.image`: build (or find) the image and print its path."""
    print(ensure_image())


if __name__ == "__main__":
    main()
