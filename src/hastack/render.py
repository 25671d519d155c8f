"""`hastack render`: write every node's desired files into a directory tree, with a manifest."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hastack.components.base import Ctx, Desired
from hastack.components.registry import desired
from hastack.secrets import Secrets, secrets_path
from hastack.topology.load import Loaded


def context(loaded: Loaded) -> Ctx:
    """The render context for a loaded (valid) topology, with its persistent secrets."""
    assert loaded.topology is not None
    topo = loaded.topology
    return Ctx(topo, Secrets.load(secrets_path(loaded.path, topo.name)))


def render_tree(ctx: Ctx, out: Path) -> dict[str, Desired]:
    """Files go to OUT/<node>/<path>; OUT/<node>/MANIFEST.json lists owner, mode, units, packages.

    Secret-bearing files are written 0600 whatever their mode on the node: the tree is on the
    operator's machine, where only they should read it.
    """
    state = desired(ctx)
    ctx.secrets.save()
    for name, d in state.items():
        root = out / name
        entries: list[dict[str, object]] = []
        manifest = {"packages": d.packages, "units": d.units, "files": entries}
        for f in d.files:
            dest = root / f.path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if f.secret else 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(f.data)
            os.chmod(dest, 0o600 if f.secret else 0o644)
            entries.append({"path": f.path, "owner": f.owner, "group": f.group, "mode": f"{f.mode:04o}",
                            "secret": f.secret, "restarts": list(f.restarts)})
        (root / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return state
