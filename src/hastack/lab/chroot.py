"""Enter a root directory in private namespaces (run as `python -m hastack.lab.chroot`).

Why a separate process: it runs *after* `unshare --mount --pid --uts --fork --kill-child`, so every
mount it makes (the overlay, /proc, /dev, binds) and every process it starts vanish with it, even if
the caller is killed. Nothing here can leak a mount onto the host or modify the lower directory.

Standard library only; argv:
    --root DIR [--overlay SCRATCH] [--bind SRC:DST]... [--hostname NAME] [--env K=V]... -- CMD...
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys

DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def overlay(root: str, scratch: str) -> str:
    """A throwaway writable layer in a tmpfs of this mount namespace: it disappears with the namespace."""
    mount("-t", "tmpfs", "-o", "mode=0755,size=2g", "hastack-scratch", scratch)
    for sub in ("upper", "work", "merged"):
        os.mkdir(os.path.join(scratch, sub))
    merged = os.path.join(scratch, "merged")
    opts = f"lowerdir={root},upperdir={scratch}/upper,workdir={scratch}/work"
    mount("-t", "overlay", "-o", opts, "hastack-overlay", merged)
    return merged


def dev(root: str) -> None:
    """A minimal /dev: a few host device nodes bound in, a private devpts and shm."""
    target = os.path.join(root, "dev")
    mount("-t", "tmpfs", "-o", "mode=0755,nosuid", "hastack-dev", target)
    for name in DEVICES:
        path = os.path.join(target, name)
        open(path, "w").close()
        mount("--bind", f"/dev/{name}", path)
    for sub in ("pts", "shm"):
        os.mkdir(os.path.join(target, sub))
    mount("-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=0620", "devpts", f"{target}/pts")
    os.symlink("pts/ptmx", f"{target}/ptmx")
    mount("-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "shm", f"{target}/shm")
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{i}", f"{target}/{name}")
    os.symlink("/proc/self/fd", f"{target}/fd")


def bind(root: str, src: str, dst: str) -> None:
    """Bind SRC at DST inside root, creating the mount point (a file or a directory) as needed."""
    target = os.path.join(root, dst.lstrip("/"))
    if os.path.isdir(src):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            open(target, "w").close()
    mount("--bind", src, target)


def prepare(args: argparse.Namespace) -> str:
    root: str = args.root
    if args.overlay:
        root = overlay(root, args.overlay)
    mount("-t", "proc", "-o", "nosuid,nodev,noexec", "proc", os.path.join(root, "proc"))
    mount("-t", "sysfs", "-o", "ro,nosuid,nodev,noexec", "sysfs", os.path.join(root, "sys"))
    dev(root)
    for sub in ("tmp", "run"):
        mode = "1777" if sub == "tmp" else "0755"
        mount("-t", "tmpfs", "-o", f"mode={mode},nosuid,nodev", sub, os.path.join(root, sub))
    for spec in args.bind:
        src, _, dst = spec.rpartition(":")
        bind(root, src, dst)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(prog="hastack.lab.chroot")
    parser.add_argument("--root", required=True)
    parser.add_argument("--overlay", default="")
    parser.add_argument("--bind", action="append", default=[])
    parser.add_argument("--hostname", default="")
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("cmd", nargs="+")
    args = parser.parse_args()
    root = prepare(args)
    if args.hostname:
        socket.sethostname(args.hostname)
        if args.overlay:  # the throwaway layer may say who it is, so `hostname -i` works
            with open(os.path.join(root, "etc/hosts"), "a") as hosts:
                hosts.write(f"127.0.1.1 {args.hostname}\n")
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
           "LANG": "C.UTF-8", "TERM": os.environ.get("TERM", "dumb")}
    env.update(kv.split("=", 1) for kv in args.env)
    os.chroot(root)
    os.chdir("/")
    try:
        os.execvpe(args.cmd[0], args.cmd, env)
    except OSError as exc:
        print(f"hastack.lab.chroot: cannot run {args.cmd[0]}: {exc.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main())
