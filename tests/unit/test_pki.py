"""TLS on the VIP: the cluster CA, the VIP's certificate, where they go and that a real TLS client
accepts them (a handshake through Python's ssl, verifying the name as the services do)."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509

from conftest import FixedSecrets
from hastack import pki
from hastack.components import haproxy, keepalived, keystone, neutron
from hastack.components.base import Ctx
from hastack.components.registry import desired
from hastack.secrets import Secrets, mask
from hastack.topology.model import Topology


def no_tls(topo: Topology) -> Topology:
    return topo.model_copy(update={"network": topo.network.model_copy(update={"tls": False})})


def handshake(material: pki.Material, ca_pem: str, name: str, tmp_path: Path) -> str:
    """Serve the certificate on 127.0.0.1 and connect verifying it for `name`: the peer's subject CN."""
    pem = tmp_path / "server.pem"
    pem.write_text(material.haproxy_pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pem)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    client = ssl.create_default_context(cadata=ca_pem)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                client.wrap_socket(raw, server_hostname=name) as tls:
            cert = tls.getpeercert()
            tls.sendall(b"x")
    finally:
        t.join(5)
        listener.close()
    return str(dict(x[0] for x in cert["subject"])["commonName"])


def test_the_vip_certificate_passes_a_real_handshake_for_every_name(seed: Topology, tmp_path: Path) -> None:
    secrets = Secrets(None)
    m = pki.material(secrets, seed.name, pki.names(seed))
    assert handshake(m, m.ca_cert, str(seed.network.vip), tmp_path) == str(seed.network.vip)
    for name in (f"vip.{seed.domain}", str(seed.controllers[1].address), seed.fqdn(seed.controllers[2])):
        handshake(m, m.ca_cert, name, tmp_path)
    with pytest.raises(ssl.SSLCertVerificationError):  # a name it does not cover
        handshake(m, m.ca_cert, str(seed.network_nodes[0].address), tmp_path)
    other_ca = pki.material(Secrets(None), seed.name, pki.names(seed)).ca_cert
    with pytest.raises(ssl.SSLCertVerificationError):  # another cluster's CA
        handshake(m, other_ca, str(seed.network.vip), tmp_path)


def test_the_ca_signs_servers_only_and_the_server_certificate_is_for_servers(seed: Topology) -> None:
    m = pki.material(Secrets(None), seed.name, pki.names(seed))
    ca = x509.load_pem_x509_certificate(m.ca_cert.encode())
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 0
    srv = x509.load_pem_x509_certificate(m.server_cert.encode())
    assert not srv.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = srv.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
    assert pki.names_of(m.server_cert) == set(pki.names(seed))
    assert srv.not_valid_after_utc - srv.not_valid_before_utc <= dt.timedelta(days=pki.SERVER_DAYS, minutes=5)


def test_made_once_then_reused_and_saved_with_the_secrets(seed: Topology, tmp_path: Path) -> None:
    path = tmp_path / "secrets.yml"
    secrets = Secrets(path)
    first = pki.material(secrets, seed.name, pki.names(seed))
    assert set(secrets.unsaved()) == {"tls/ca.key", "tls/ca.crt", "tls/server.key", "tls/server.crt"}
    secrets.save()
    assert path.stat().st_mode & 0o777 == 0o600
    again = Secrets.load(path)
    assert pki.material(again, seed.name, pki.names(seed)) == first and again.unsaved() == []
    assert pki.ca_cert(again) == first.ca_cert


def test_a_new_name_reissues_the_server_certificate_under_the_same_ca(seed: Topology, tmp_path: Path) -> None:
    secrets = Secrets(tmp_path / "secrets.yml")
    first = pki.material(secrets, seed.name, pki.names(seed))
    secrets.save()
    moved = seed.model_copy(update={"network": seed.network.model_copy(update={"vip": "10.77.0.9"})})
    second = pki.material(secrets, seed.name, pki.names(moved))
    assert second.ca_cert == first.ca_cert and second.server_cert != first.server_cert
    assert "10.77.0.9" in pki.names_of(second.server_cert)
    assert secrets.unsaved() == ["tls/server.crt", "tls/server.key"]


def test_a_certificate_near_its_end_is_renewed(seed: Topology, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = Secrets(None)
    first = pki.material(secrets, seed.name, pki.names(seed))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=pki.SERVER_DAYS - pki.RENEW_DAYS + 1)
    monkeypatch.setattr(pki, "_now", lambda: later.replace(microsecond=0))
    assert not pki.still_good(first.server_cert, first.ca_cert, pki.names(seed))
    assert pki.material(secrets, seed.name, pki.names(seed)).server_cert != first.server_cert


def test_private_keys_are_masked_and_only_in_private_files(seed: Topology) -> None:
    ctx = Ctx(seed, FixedSecrets(None))
    state = desired(ctx)
    key = ctx.tls.server_key
    assert mask(f"oops {key}", ctx.secrets) == "oops ********"
    holders = [(n, f) for n, d in state.items() for f in d.files if "PRIVATE KEY" in f.data.decode(errors="replace")]
    assert {n for n, _ in holders} == {n.name for n in seed.controllers}
    for _, f in holders:
        assert (f.path, f.mode, f.owner, f.secret) == (haproxy.CERT, 0o600, "root", True)
        assert haproxy.UNIT in f.restarts
    ca_files = [f for d in state.values() for f in d.files if f.path == pki.CA_PATH]
    assert len(ca_files) == len(seed.nodes) and all(f.data.decode() == ctx.tls.ca_cert for f in ca_files)


def everything(ctx: Ctx) -> str:
    return "\n".join(f.data.decode(errors="replace") for d in desired(ctx).values() for f in d.files)


@pytest.mark.parametrize("name", ["seed", "four"])
def test_with_tls_nothing_names_the_vip_over_plain_http(name: str, seed: Topology, four: Topology) -> None:
    topo = {"seed": seed, "four": four}[name]
    text = everything(Ctx(topo, FixedSecrets(None)))
    assert f"http://{topo.network.vip}" not in text
    assert f"https://{topo.network.vip}:5000" in text
    assert "X-Forwarded-Proto https" in text and "enable_proxy_headers_parsing = true" in text


def test_tls_off_is_plain_http_everywhere_and_makes_no_ca(seed: Topology) -> None:
    topo = no_tls(seed)
    secrets = FixedSecrets(None)
    ctx = Ctx(topo, secrets)
    text = everything(ctx)
    assert "https://" not in text and " ssl crt " not in text and "ssl-default-bind" not in text
    assert "X-Forwarded-Proto http\n" in text
    assert not [n for n in secrets.names() if n.startswith("tls/")]
    paths = {f.path for d in desired(ctx).values() for f in d.files}
    assert haproxy.CERT not in paths and pki.CA_PATH not in paths
    assert "--cacert" not in keepalived.check_command(topo, topo.controllers[0])
    assert neutron.metadata_conf(ctx)["DEFAULT"]["nova_metadata_protocol"] == "http"


def test_the_metadata_agent_reaches_nova_over_tls(seed: Topology) -> None:
    conf = neutron.metadata_conf(Ctx(seed, FixedSecrets(None)))["DEFAULT"]
    assert conf["nova_metadata_protocol"] == "https" and conf["auth_ca_cert"] == pki.CA_PATH


def test_the_admin_openrc_points_the_client_at_the_vip_over_tls(seed: Topology) -> None:
    ctx = Ctx(seed, FixedSecrets(None))
    f = keystone.openrc(ctx)
    text = f.data.decode()
    assert (f.path, f.mode, f.secret) == ("/root/admin-openrc", 0o600, True)
    assert f"export OS_AUTH_URL='https://{seed.network.vip}:5000/v3'\n" in text
    assert f"export OS_CACERT='{pki.CA_PATH}'\n" in text
    assert "OS_CACERT" not in keystone.openrc(Ctx(no_tls(seed), FixedSecrets(None))).data.decode()
