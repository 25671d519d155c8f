"""Issue #14, secrets rows: a secret is never readable by others, not even for a moment, and no write
follows a link hastack did not make; every refusal is a coded report, never a traceback.

Before: a fence `passwd` went into a 0644 crm file shown unmasked by plans; secrets.yml was written
through a fixed `secrets.yml.tmp` (a planted 0644 one made secrets.yml 0644, and the next render a
traceback); a rendered 0644 file was truncated and rewritten before its chmod 0600, through links;
a corrupt or 0644 secrets.yml and `render -o FILE` were tracebacks.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import EXAMPLES, FixedSecrets
from hastack import safefs
from hastack.cli.main import app
from hastack.components import pacemaker
from hastack.components.base import Ctx
from hastack.components.registry import desired
from hastack.plan.files import FileChange, diff
from hastack.reports import ReportError
from hastack.secrets import Secrets, SecretsFileError, mask, secrets_path
from hastack.topology.load import load, load_text

runner = CliRunner()
SEED = (EXAMPLES / "seed.yml").read_text()
WITH_PASSWD = SEED.replace("params: {plug: net-1}", "params: {plug: net-1, passwd: S3cret-pw}")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def topology(tmp_path: Path, text: str = SEED) -> Path:
    path = tmp_path / "seed.yml"
    path.write_text(text)
    return path


def render(topo: Path, out: Path) -> tuple[int, str]:
    res = runner.invoke(app, ["render", str(topo), "-o", str(out)])
    assert "Traceback" not in res.output and (res.exception is None or isinstance(res.exception, SystemExit))
    return res.exit_code, res.output


# -- fence credentials -------------------------------------------------------------------------------
def test_fence_password_makes_the_crm_file_a_0600_secret() -> None:
    loaded = load_text(WITH_PASSWD, "t.yml")
    assert loaded.ok and loaded.topology is not None
    files = [f for f in desired(Ctx(loaded.topology, FixedSecrets(None)))["net-1"].files if f.path == pacemaker.SCRIPT]
    assert [(f.mode, f.secret) for f in files] == [(0o600, True)]
    change = FileChange("net-1", files[0], "update", None)  # type: ignore[arg-type]
    assert "S3cret-pw" not in diff(change, "old text")


def test_without_credentials_the_crm_file_stays_public() -> None:
    loaded = load_text(SEED, "t.yml")
    assert loaded.topology is not None
    files = [f for f in desired(Ctx(loaded.topology, FixedSecrets(None)))["net-1"].files if f.path == pacemaker.SCRIPT]
    assert [(f.mode, f.secret) for f in files] == [(0o644, False)]


@pytest.mark.parametrize(("key", "secret"), [
    ("passwd", True), ("password", True), ("snmp_priv_passwd", True), ("passwd_script", True), ("community", True),
    ("api_key", True), ("token", True), ("client_secret", True), ("ipaddr", False),
    ("login", False), ("port", False),
])
def test_credential_names(key: str, secret: bool) -> None:
    text = SEED.replace("params: {plug: net-1}", f"params: {{plug: net-1, {key}: value-123}}")
    loaded = load_text(text, "t.yml")
    assert loaded.topology is not None
    assert pacemaker.fence_secrets(loaded.topology) == (["value-123"] if secret else [])


def test_fence_password_is_masked_wherever_deploy_masks(tmp_path: Path) -> None:
    from hastack.render import context

    ctx = context(load(topology(tmp_path, WITH_PASSWD)))
    assert "S3cret-pw" not in mask("crm: passwd=S3cret-pw failed", ctx.secrets)
    assert not secrets_path(tmp_path / "seed.yml", "seed").exists(), "a topology's own secret is never stored"


# -- the secrets file ----------------------------------------------------------------------------------
def test_planted_tmp_file_does_not_widen_secrets(tmp_path: Path) -> None:
    topo = topology(tmp_path)
    path = secrets_path(topo, "seed")
    path.parent.mkdir(parents=True)
    planted = path.with_name("secrets.yml.tmp")
    planted.write_text("junk\n")
    planted.chmod(0o644)
    assert render(topo, tmp_path / "out")[0] == 0
    assert mode(path) == 0o600 and planted.read_text() == "junk\n"
    assert render(topo, tmp_path / "again")[0] == 0


def test_temp_name_is_unpredictable_exclusive_and_never_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  ) -> None:
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    monkeypatch.setattr(safefs.secrets, "token_hex", lambda n: "0" * 2 * n)
    (tmp_path / f".secrets.yml.{'0' * 16}.tmp").symlink_to(victim)
    with pytest.raises(FileExistsError):
        safefs.write_private(tmp_path / "secrets.yml", "a: 'b'\n")
    assert victim.read_text() == "untouched\n" and not (tmp_path / "secrets.yml").exists()


def test_private_file_is_0600_from_its_first_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[tuple[int, int]] = []
    real_open = os.open

    def spy(path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if flags & os.O_CREAT:
            opened.append((flags, mode))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", spy)
    safefs.write_private(tmp_path / "s.yml", "x")
    ((flags, created_mode),) = opened
    assert flags & os.O_EXCL and flags & os.O_NOFOLLOW and created_mode & 0o077 == 0


@pytest.mark.parametrize(("content", "chmod", "code"), [
    ("a: 'b'\n", 0o644, "SECRETS-MODE"),
    ("a: 'b'\n", 0o640, "SECRETS-MODE"),
    ("a: [1, 2]\n", 0o600, "SECRETS-CORRUPT"),
    ("{{{\n", 0o600, "SECRETS-CORRUPT"),
    ("- a\n", 0o600, "SECRETS-CORRUPT"),
    ("a: !!python/object/apply:os.system [id]\n", 0o600, "SECRETS-CORRUPT"),
    ("\xff\n", 0o600, "SECRETS-CORRUPT"),
])
def test_unusable_secrets_file_is_a_coded_report(tmp_path: Path, content: str, chmod: int, code: str) -> None:
    topo = topology(tmp_path)
    path = secrets_path(topo, "seed")
    path.parent.mkdir(parents=True)
    path.write_bytes(content.encode("latin-1"))
    path.chmod(chmod)
    with pytest.raises(SecretsFileError) as err:
        Secrets.load(path)
    assert [r.code for r in err.value.reports] == [code]
    status, output = render(topo, tmp_path / "out")
    assert status == 1 and f"[{code}]" in output and not (tmp_path / "out").exists()
    assert path.read_bytes() == content.encode("latin-1"), "a refused secrets file is never replaced"


def test_secrets_file_that_is_a_link_is_refused(tmp_path: Path) -> None:
    topo = topology(tmp_path)
    path = secrets_path(topo, "seed")
    path.parent.mkdir(parents=True)
    (tmp_path / "elsewhere.yml").write_text("a: 'b'\n")
    (tmp_path / "elsewhere.yml").chmod(0o600)
    path.symlink_to(tmp_path / "elsewhere.yml")
    status, output = render(topo, tmp_path / "out")
    assert status == 1 and "[SECRETS-UNREADABLE]" in output


def test_saved_values_round_trip_even_with_quotes(tmp_path: Path) -> None:
    s = Secrets(tmp_path / "s.yml", {"odd": "it's"})
    s.password("new")
    s.save()
    assert Secrets.load(tmp_path / "s.yml")._values == s._values


# -- render -o ---------------------------------------------------------------------------------------------
def secret_file(out: Path) -> Path:
    manifest = json.loads((out / "ctl-1" / "MANIFEST.json").read_text())
    path = next(f["path"] for f in manifest["files"] if f["secret"])
    return out / "ctl-1" / path.lstrip("/")


def test_rerender_replaces_files_never_writes_them_in_place_or_through_links(tmp_path: Path) -> None:
    topo, out = topology(tmp_path), tmp_path / "out"
    assert render(topo, out)[0] == 0
    target = secret_file(out)
    target.chmod(0o644)  # e.g. copied around with a permissive umask
    before = target.stat().st_ino
    hosts = out / "ctl-1" / "etc" / "hosts"
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    hosts.unlink()
    hosts.symlink_to(victim)
    assert render(topo, out)[0] == 0
    assert mode(target) == 0o600 and target.stat().st_ino != before, "a new file, 0600 from its first byte"
    assert victim.read_text() == "untouched\n" and not hosts.is_symlink() and mode(hosts) == 0o644


def test_link_in_place_of_a_directory_stops_the_render(tmp_path: Path) -> None:
    topo, out = topology(tmp_path), tmp_path / "out"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "ctl-1").mkdir(parents=True)
    (out / "ctl-1" / "etc").symlink_to(elsewhere)
    status, output = render(topo, out)
    assert status == 1 and "[RENDER-SYMLINK]" in output
    assert not any(elsewhere.iterdir())


@pytest.mark.parametrize("kind", ["file", "link"])
def test_output_that_is_a_file_or_a_link_is_a_clean_error(tmp_path: Path, kind: str) -> None:
    topo, out = topology(tmp_path), tmp_path / "out"
    if kind == "file":
        out.write_text("not a directory\n")
    else:
        (tmp_path / "real").mkdir()
        out.symlink_to(tmp_path / "real")
    status, output = render(topo, out)
    assert status == 1 and "[RENDER-OUTPUT]" in output
    assert kind == "link" or out.read_text() == "not a directory\n"


def test_new_output_directory_is_private(tmp_path: Path) -> None:
    topo = topology(tmp_path)
    assert render(topo, tmp_path / "new" / "out")[0] == 0
    assert mode(tmp_path / "new" / "out") == 0o700


def test_library_raises_reports_not_oserrors(tmp_path: Path) -> None:
    from hastack.render import context, render_tree

    (tmp_path / "f").write_text("x")
    with pytest.raises(ReportError) as err:
        render_tree(context(load(topology(tmp_path))), tmp_path / "f")
    assert [r.code for r in err.value.reports] == ["RENDER-OUTPUT"]


def test_the_admin_tools_state_ignores_a_planted_temporary_file(tmp_path: Path) -> None:
    """openstack-admin's remembered passwords: 0600, and a file or link left under the old fixed
    temporary name (`state.tmp`, 0644, or a link to another file) is neither reused nor followed."""
    from hastack.agents import openstack_admin as tool

    path = tmp_path / "state"
    other = tmp_path / "other"
    other.write_text("keep\n")
    (tmp_path / "state.tmp").symlink_to(other)
    tool.save_known({"nova": "abc"}, str(path))
    assert path.stat().st_mode & 0o777 == 0o600 and not path.is_symlink()
    assert other.read_text() == "keep\n"
    assert json.loads(path.read_text()) == {"nova": "abc"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "state", "state.tmp"]
