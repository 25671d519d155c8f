"""The image's mirror comes from the host's apt sources: parsing of both formats."""

from __future__ import annotations

from pathlib import Path

from hastack.lab import apt

DEB822 = """\
Types: deb
# a comment line
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main contrib

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main
"""

ONE_LINE = """\
# comment
deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian/ bookworm main contrib
deb-src http://one.example/debian bookworm main
deb http://one.example/debian-security bookworm-security main  # trailing comment
deb https://packages.vendor.example/apt stable main
"""


def test_deb822_keeps_enabled_deb_stanzas_per_suite() -> None:
    found = apt.parse_deb822(DEB822)
    assert [(s.uri, s.suite) for s in found] == [
        ("http://mirror.example/debian", "bookworm"),
        ("http://mirror.example/debian", "bookworm-updates"),
        ("http://mirror.example/debian-security", "bookworm-security"),
    ]
    assert found[2].components == ("main", "contrib")


def test_one_line_format_drops_options_comments_and_trailing_slash() -> None:
    found = apt.parse_one_line(ONE_LINE)
    assert found[0] == apt.Source("http://one.example/debian", "bookworm", ("main", "contrib"))
    assert found[1].suite == "bookworm-security"
    assert len(found) == 3


def test_image_sources_use_the_hosts_servers() -> None:
    mirror, lines = apt.image_sources(apt.parse_deb822(DEB822)) or ("", [])
    assert mirror == "http://mirror.example/debian"
    assert lines == ["deb http://mirror.example/debian bookworm main",
                     "deb http://mirror.example/debian bookworm-updates main",
                     "deb http://mirror.example/debian-security bookworm-security main"]


def test_a_newer_debian_host_still_gives_a_bookworm_image() -> None:
    found = apt.parse_one_line("deb http://m.example/debian trixie main\n")
    mirror, lines = apt.image_sources(found) or ("", [])
    assert mirror == "http://m.example/debian"
    assert lines[0] == "deb http://m.example/debian bookworm main"
    assert not any("security" in line for line in lines)


def test_no_debian_source_is_reported_as_none() -> None:
    assert apt.image_sources(apt.parse_one_line("deb https://vendor.example/apt stable main\n")) is None


def test_host_sources_reads_list_and_sources_files_only(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(ONE_LINE)
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    disabled = tmp_path / "sources.list.d" / "x.list.disabled"
    disabled.write_text("deb http://no.example/debian bookworm main\n")
    uris = {s.uri for s in apt.host_sources(tmp_path)}
    assert "http://no.example/debian" not in uris
    assert {"http://one.example/debian", "http://mirror.example/debian"} <= uris
