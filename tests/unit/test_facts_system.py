"""Debian packages, systemd units and IPv4 addresses, parsed from recorded output."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from recordings import answer, load

from hastack.facts import addresses, gather, packages, units
from hastack.facts.system import http_codes, parse_packages
from hastack.transport.base import CommandError, Result
from hastack.transport.fake import Script, on_fact

# -- dpkg-query --------------------------------------------------------------------------------

INSTALLED = ["mariadb-server", "galera-4", "rabbitmq-server", "haproxy", "keepalived", "memcached"]


def test_all_installed() -> None:
    pkgs = answer(packages(INSTALLED), "dpkg-query", "installed")
    assert list(pkgs) == INSTALLED
    assert all(p.installed and not p.broken for p in pkgs.values())
    assert pkgs["mariadb-server"].version == "1:10.11.19-0+deb12u1"
    assert pkgs["rabbitmq-server"].version.startswith("3.10.8")


def test_removed_and_unknown() -> None:
    pkgs = answer(packages(["mariadb-server", "galera-4", "memcached", "openvswitch-switch"]),
                  "dpkg-query", "removed-and-unknown")
    assert pkgs["mariadb-server"].installed
    assert (pkgs["memcached"].status, pkgs["memcached"].installed) == ("rc ", False)
    assert (pkgs["openvswitch-switch"].status, pkgs["openvswitch-switch"].installed) == ("un ", False)


def test_none_known_exits_1_and_is_an_answer() -> None:
    rec = load("dpkg-query", "none-known")
    assert rec.exit_status == 1
    pkgs = answer(packages(["nosuch-one", "nosuch-two"]), "dpkg-query", "none-known")
    assert {n: p.installed for n, p in pkgs.items()} == {"nosuch-one": False, "nosuch-two": False}


def test_exit_1_for_another_reason_is_a_failure() -> None:
    fact = packages(["x"])
    with pytest.raises(CommandError):
        fact.parse(Result("h", fact.argv, 1, "", "dpkg-query: error: cannot access archive\n"))
    with pytest.raises(CommandError):
        fact.parse(Result("h", fact.argv, 2, "", "dpkg-query: error: parsing file\n"))


def test_a_package_dpkg_is_silent_about_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_packages(["a", "b"], "a\tii \t1.0\n")


def test_dpkg_format_is_passed_as_one_argument() -> None:
    argv = packages(["haproxy"]).argv
    assert argv == ("dpkg-query", "-W", "-f", r"${Package}\t${db:Status-Abbrev}\t${Version}\n", "haproxy")


# -- systemctl show ----------------------------------------------------------------------------

def test_units_active() -> None:
    names = ["mariadb.service", "haproxy.service", "keepalived.service", "memcached.service"]
    states = answer(units(names), "systemctl", "show-active")
    assert list(states) == names
    assert all(s.exists and s.active and s.enabled and not s.failed for s in states.values())


def test_units_mixed() -> None:
    names = ["mysql.service", "rabbitmq-server.service", "neutron-l3-agent.service", "nosuch.service"]
    states = answer(units(names), "systemctl", "show-mixed")
    assert states["mysql.service"].id == "mariadb.service" and states["mysql.service"].active
    assert states["rabbitmq-server.service"].failed and states["rabbitmq-server.service"].sub_state == "failed"
    l3 = states["neutron-l3-agent.service"]
    assert (l3.exists, l3.active, l3.enabled) == (True, False, False)
    missing = states["nosuch.service"]
    assert (missing.exists, missing.active, missing.unit_file_state) == (False, False, "")


def test_units_recorded_in_the_lab() -> None:
    names = ["mysql.service", "rabbitmq-server.service", "neutron-l3-agent.service", "nosuch.service"]
    states = answer(units(names), "systemctl", "lab-ctl-1")
    assert states["mysql.service"].id == "mariadb.service"
    assert not states["nosuch.service"].exists and not states["neutron-l3-agent.service"].enabled


def test_units_block_count_must_match() -> None:
    fact = units(["a.service", "b.service"])
    with pytest.raises(ValueError):
        fact.parse(Result("h", fact.argv, 0, "Id=a.service\nLoadState=loaded\n", ""))


def test_units_without_systemd_is_a_failure() -> None:
    fact = units(["a.service"])
    with pytest.raises(CommandError):
        fact.parse(Result("h", fact.argv, 1, "", "System has not been booted with systemd as init system (PID 1).\n"))


# -- ip -j -4 addr show ------------------------------------------------------------------------

VIP = ipaddress.IPv4Address("10.77.0.10")


def test_vip_held() -> None:
    addrs = answer(addresses(), "ip", "vip-held")
    assert addrs.holds(VIP) and addrs.holds("10.77.0.12") and addrs.interface_of(VIP) == "eth0"
    assert addrs.all == {ipaddress.IPv4Address(a) for a in ("127.0.0.1", "10.77.0.12", "10.77.0.10")}
    eth0 = addrs.interfaces[1]
    assert eth0.up and ipaddress.IPv4Interface("10.77.0.10/32") in eth0.addresses


def test_vip_elsewhere() -> None:
    addrs = answer(addresses(), "ip", "vip-elsewhere")
    assert not addrs.holds(VIP) and addrs.interface_of(VIP) is None


def test_interfaces_without_ipv4_come_out_empty() -> None:
    """Older iproute2 prints `{}` for links without an IPv4 address."""
    fact = addresses()
    text = '[{},{"ifindex":2,"ifname":"eth0","flags":["BROADCAST"],"addr_info":[]}]'
    addrs = fact.parse(Result("h", fact.argv, 0, text, ""))
    assert [i.name for i in addrs.interfaces] == ["eth0"] and not addrs.interfaces[0].up


def test_finding_the_vip_holder_across_hosts() -> None:
    fact = addresses()
    script = Script(on_fact(fact, host="ctl-1", stdout=load("ip", "vip-elsewhere").stdout),
                    on_fact(fact, host="ctl-2", stdout=load("ip", "vip-held").stdout))

    async def holders() -> list[str]:
        found = []
        for name, t in script.fleet("ctl-1", "ctl-2").items():
            if (await gather(t, fact)).holds(VIP):
                found.append(name)
        return found

    assert asyncio.run(holders()) == ["ctl-2"]


def test_http_codes_read_from_the_lab() -> None:
    """One probe, every URL: 000 when nothing answered."""
    got = answer(http_codes(["http://10.81.0.11:5000/v3", "http://10.81.0.11:8774/"]), "sh", "http_codes-keystone-up")
    assert got == {"http://10.81.0.11:5000/v3": "200", "http://10.81.0.11:8774/": "000"}


def test_http_codes_refuse_output_that_is_not_code_and_url() -> None:
    fact = http_codes(["http://x/"])
    with pytest.raises(ValueError):
        fact.parse(Result("h", fact.argv, 0, "curl: command not found\n", ""))
