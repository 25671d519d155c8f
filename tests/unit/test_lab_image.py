"""The image leaves no unit enabled: wants/requires links and Alias= links all go (an alias alone makes
`systemctl is-enabled` say "enabled", so deploy never created the wants link: garbd did not come back
after a power cycle)."""

from __future__ import annotations

from pathlib import Path

from hastack.lab import image


def unit_tree(root: Path) -> Path:
    base = root / "etc/systemd/system"
    (base / "multi-user.target.wants").mkdir(parents=True)
    (base / "multi-user.target.wants/mariadb.service").symlink_to("/lib/systemd/system/mariadb.service")
    (base / "garbd.service").symlink_to("/lib/systemd/system/garb.service")
    (base / "sshd.service").symlink_to("/lib/systemd/system/ssh.service")
    (base / "masked.service").symlink_to("/dev/null")
    (base / "hastack-own.service").write_text("[Service]\n")
    return base


def test_every_enablement_link_is_found_masks_and_real_units_stay(tmp_path: Path) -> None:
    unit_tree(tmp_path)
    assert image._wants_links(tmp_path) == {"multi-user.target.wants/mariadb.service"}
    assert image._alias_links(tmp_path) == {"garbd.service", "sshd.service"}


def test_a_missing_unit_directory_has_no_links(tmp_path: Path) -> None:
    assert image._alias_links(tmp_path) == set() and image._wants_links(tmp_path) == set()
