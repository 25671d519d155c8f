"""The command line: exit codes, every report shown with file:line, no traceback."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from typer.testing import CliRunner

from conftest import EXAMPLES
from hastack.cli.main import app

runner = CliRunner()


def test_validate_valid_example_exits_zero() -> None:
    res = runner.invoke(app, ["validate", str(EXAMPLES / "seed.yml")])
    assert res.exit_code == 0, res.output
    assert "Galera votes 3" in res.output


def test_validate_prints_summary_and_each_report_on_their_own_lines(tmp_path: Path) -> None:
    """Issue #11: the summary came out glued to the first warning (`...votes 3<file>:17:1: warning`)."""
    topo = tmp_path / "dup.yml"
    text = (EXAMPLES / "seed.yml").read_text()
    topo.write_text(text.replace("services: [keystone,", "services: [keystone, keystone,", 1))
    res = runner.invoke(app, ["validate", str(topo)])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    reports = [ln for ln in lines if ln.startswith(f"{topo}:") and "[SVC-DUP]" in ln]
    summaries = [ln for ln in lines if ln.startswith(f"{topo}: valid - ")]
    assert len(reports) == 1 and len(summaries) == 1, lines
    assert lines[-1] == summaries[0] and "[SVC-DUP]" not in summaries[0]


def test_validate_invalid_exits_non_zero_with_every_report() -> None:
    path = EXAMPLES / "invalid" / "bad-addresses.yml"
    res = runner.invoke(app, ["validate", str(path)])
    assert res.exit_code == 1
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert "Traceback" not in res.output
    for code in ["VIP-OUTSIDE-NETWORK", "NODE-DUP-NAME", "NODE-DUP-ADDRESS", "NODE-OUTSIDE-NETWORK"]:
        assert code in res.output
    assert f"{path}:6:" in res.output


def test_validate_json() -> None:
    res = runner.invoke(app, ["validate", "--json", str(EXAMPLES / "invalid" / "typos.yml")])
    assert res.exit_code == 1
    data = json.loads(res.stdout)
    assert {d["code"] for d in data} == {"TOPO-UNKNOWN-KEY", "TOPO-MISSING"}


def test_render_refuses_invalid_topology_and_writes_nothing(tmp_path: Path) -> None:
    res = runner.invoke(app, ["render", str(EXAMPLES / "invalid" / "one-controller.yml"), "-o", str(tmp_path / "o")])
    assert res.exit_code == 1 and not (tmp_path / "o").exists()


def test_render_writes_tree_and_private_secrets(tmp_path: Path) -> None:
    topo = tmp_path / "seed.yml"
    topo.write_text((EXAMPLES / "seed.yml").read_text())
    res = runner.invoke(app, ["render", str(topo), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "ctl-1" / "etc" / "hosts").exists()
    manifest = json.loads((tmp_path / "out" / "ctl-1" / "MANIFEST.json").read_text())
    assert any(f["path"] == "/etc/hosts" for f in manifest["files"])
    secrets = tmp_path / ".hastack" / "seed" / "secrets.yml"
    if secrets.exists():
        assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
        for value in secrets.read_text().splitlines()[1:]:
            assert value.split(": ", 1)[1].strip("'") not in res.output
    first = {p.relative_to(tmp_path / "out"): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    runner.invoke(app, ["render", str(topo), "-o", str(tmp_path / "again")])
    second = {p.relative_to(tmp_path / "again"): p.read_bytes() for p in (tmp_path / "again").rglob("*") if p.is_file()}
    assert first == second, "a second render must reuse the stored secrets and give the same bytes"


def test_schema_is_json() -> None:
    res = runner.invoke(app, ["schema"])
    assert res.exit_code == 0
    assert "nodes" in json.loads(res.stdout)["properties"]
