"""Start one node (run as `unshare --mount --propagation private python -m hastack.lab.launch ...`).

Why a launcher process: it joins the node's cgroup *before* anything else runs (so every process
of the node is tracked from the start), and mounts the node's overlay root and a private tmpfs on
/run/systemd/nspawn (nspawn's lock files) in its own mount namespace, where they vanish with
the node instead of leaking onto the host. Then it becomes systemd-nspawn.

argv: --cgroup REL --lower DIR --upper DIR --work DIR --merged DIR -- systemd-nspawn ARGS...
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from hastack.lab import cgroup


def main() -> int:
    p = argparse.ArgumentParser(prog="hastack.lab.launch")
    for opt in ("--cgroup", "--lower", "--upper", "--work", "--merged"):
        p.add_argument(opt, required=True)
    p.add_argument("cmd", nargs="+")
    args = p.parse_args()
    cgroup.join(args.cgroup)
    os.makedirs("/run/systemd/nspawn", exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "hastack-nspawn", "/run/systemd/nspawn"],
                   check=True)
    opts = f"lowerdir={args.lower},upperdir={args.upper},workdir={args.work}"
    subprocess.run(["mount", "-t", "overlay", "-o", opts, "hastack-node", args.merged], check=True)
    env = dict(os.environ, SYSTEMD_NSPAWN_API_VFS_WRITABLE="network")
    os.execvpe(args.cmd[0], args.cmd, env)


if __name__ == "__main__":
    sys.exit(main())
