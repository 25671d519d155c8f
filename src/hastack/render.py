"""`hastack render`: write every node's desired files into a directory tree, with a manifest.

The tree holds secrets (passwords, keys) on the operator's machine, so it is written with the
care of `safefs`: a secret-bearing file is 0600 from its first byte, every file replaces its
predecessor by rename (never truncated in place, never written through a link), and a link
planted in place of -o or of a directory under it stops the render with a coded report.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from hastack import safefs
from hastack.components import pacemaker
from hastack.components.base import Ctx, Desired, File
from hastack.components.registry import desired
from hastack.reports import Location, Report, ReportError, Severity
from hastack.secrets import Secrets, secrets_path
from hastack.topology.load import Loaded


def context(loaded: Loaded) -> Ctx:
    """The render context for a loaded (valid) topology, with its persistent secrets, and the
    topology's own credentials (fence passwords) known to the masker. Raises ReportError."""
    assert loaded.topology is not None
    topo = loaded.topology
    secrets = Secrets.load(secrets_path(loaded.path, topo.name))
    secrets.also_mask(pacemaker.fence_secrets(topo))
    return Ctx(topo, secrets)


def render_tree(ctx: Ctx, out: Path) -> dict[str, Desired]:
    """Files go to OUT/<node>/<path>; OUT/<node>/MANIFEST.json lists owner, mode, units, packages.

    Secret-bearing files are written 0600 whatever their mode on the node: the tree is on the
    operator's machine, where only they should read it. Raises ReportError (RENDER-*) before
    anything is written when OUT is unusable.
    """
    root = _open_output(out)
    try:
        state = desired(ctx)
        ctx.secrets.save()
        for name, d in state.items():
            _write_node(root, out, name, d)
    finally:
        os.close(root)
    return state


def _write_node(root: int, out: Path, name: str, d: Desired) -> None:
    entries: list[dict[str, object]] = []
    for f in d.files:
        *dirs, base = f.path.lstrip("/").split("/")
        _write(root, out, [name, *dirs], base, f.data, 0o600 if f.secret else 0o644)
        entries.append(_entry(f))
    manifest = {"packages": d.packages, "units": d.units, "files": entries}
    _write(root, out, [name], "MANIFEST.json", (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(),
           0o644)


def _entry(f: File) -> dict[str, object]:
    return {"path": f.path, "owner": f.owner, "group": f.group, "mode": f"{f.mode:04o}", "secret": f.secret,
            "restarts": list(f.restarts)}


def _write(root: int, out: Path, dirs: list[str], base: str, data: bytes, mode: int) -> None:
    try:
        with safefs.subdir(root, dirs) as fd:
            safefs.write_at(fd, base, data, mode)
    except safefs.UnsafePath:
        where = out.joinpath(*dirs)
        raise _error("RENDER-SYMLINK", where, f"a symbolic link or a file stands in {where} or a directory above "
                     "it, up to the output directory; nothing was written through it",
                     "remove it and render again") from None


def _open_output(out: Path) -> int:
    """-o as a directory fd, created 0700 when missing; a file or a link there is an error."""
    try:
        with contextlib.suppress(FileExistsError):
            out.mkdir(parents=True, mode=0o700)
        return safefs.open_dir(out)
    except safefs.UnsafePath:
        kind = "a symbolic link" if out.is_symlink() else "not a directory"
        raise _error("RENDER-OUTPUT", out, f"{out} is {kind}",
                     "give -o a directory (created when missing); hastack writes through no link") from None
    except OSError as exc:
        raise _error("RENDER-OUTPUT", out, f"cannot use {out}: {exc.strerror}", "give -o a directory you can "
                     "write") from None


def _error(code: str, path: Path, message: str, hint: str) -> ReportError:
    return ReportError([Report(code, Severity.ERROR, message, Location(str(path)), hint)])
