"""TLS on the VIP: a per-cluster certificate authority and the certificate HAProxy serves.

hastack makes both the first time a topology with `network.tls` (the default) is rendered, and
keeps them with the other secrets (secrets.yml, 0600):
- `tls/ca.key`, `tls/ca.crt`: an ECDSA P-256 CA, valid CA_DAYS, path length 0 (it signs only
  server certificates). Its certificate is what every node, service and client trusts: it goes
  into each node's system store (/usr/local/share/ca-certificates, then update-ca-certificates),
  which Debian's Python (requests, httpx through certifi, urllib) and curl read, and into the
  services' own `cafile` options.
- `tls/server.key`, `tls/server.crt`: the certificate HAProxy presents on every API frontend and
  on each controller's stats page. Its subject alternative names are the VIP(s), `vip.<domain>`
  and every controller's address and names (the stats page is on the node's own address). When
  that set changes (a controller added, a VIP moved) the next render issues a new one with the
  same CA, so clients need nothing new; an unchanged set keeps the stored certificate, so a render
  is repeatable and `plan` shows no change.

Why ECDSA P-256: every TLS stack here (OpenSSL 3 in HAProxy 2.6, Python, curl) speaks it, and it
costs a 2-core controller far less per handshake than RSA 2048 under a reconnect storm.

PEM text has newlines and secrets.yml holds one line per name, so the PEMs are stored base64.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hastack.secrets import Secrets
from hastack.topology.model import Topology

CA_DAYS = 3650
SERVER_DAYS = 825
"""The longest lifetime clients that follow the CA/Browser rules accept; `deploy` renews it when
less than RENEW_DAYS remain."""
RENEW_DAYS = 30
CA_PATH = "/usr/local/share/ca-certificates/hastack-ca.crt"
"""Where every node keeps the CA certificate (update-ca-certificates adds it to the system store)."""


@dataclass(frozen=True)
class Material:
    ca_cert: str
    server_cert: str
    server_key: str = ""

    @property
    def haproxy_pem(self) -> str:
        """What `bind ... ssl crt` reads: the certificate, then its key."""
        return self.server_cert + self.server_key


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey,
             days: int) -> x509.CertificateBuilder:
    now = _now()
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days)))


def make_ca(cluster: str) -> tuple[str, str]:
    """(key PEM, certificate PEM) of a new CA named after the cluster."""
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hastack"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"hastack CA {cluster}")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (_builder(name, name, key, CA_DAYS)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return _key_pem(key), _cert_pem(cert)


def _general_names(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return out


def make_server(ca_key_pem: str, ca_cert_pem: str, names: list[str]) -> tuple[str, str]:
    """(key PEM, certificate PEM) for `names` (addresses and DNS names), signed by the CA."""
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hastack"),
                         x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (_builder(subject, ca.subject, key, SERVER_DAYS)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return _key_pem(key), _cert_pem(cert)


def names_of(cert_pem: str) -> set[str]:
    """The subject alternative names a certificate covers, as strings."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))


def still_good(cert_pem: str, ca_cert_pem: str, names: list[str]) -> bool:
    """Issued by this CA, for exactly these names, with more than RENEW_DAYS left."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    ca = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    if cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    left = cert.not_valid_after_utc - _now()
    return names_of(cert_pem) == set(names) and left > dt.timedelta(days=RENEW_DAYS)


def names(topo: Topology) -> list[str]:
    """What the server certificate covers: the VIP first (its common name), the public VIP,
    `vip.<domain>`, then each controller's address, FQDN and short name (its stats page)."""
    out = [str(topo.network.vip)]
    if topo.network.public is not None:
        out.append(str(topo.network.public.vip))
    out.append(f"vip.{topo.domain}")
    for n in topo.controllers:
        out += [str(n.address), topo.fqdn(n), n.name]
    return list(dict.fromkeys(out))


def _b64(pem: str) -> str:
    return base64.b64encode(pem.encode()).decode()


def _unb64(value: str) -> str:
    return base64.b64decode(value.encode(), validate=True).decode()


def material(secrets: Secrets, cluster: str, names: list[str]) -> Material:
    """The stored CA and server certificate, made or renewed as needed (see the module doc)."""
    stored = {k: secrets.get(k) for k in ("tls/ca.key", "tls/ca.crt", "tls/server.key", "tls/server.crt")}
    if stored["tls/ca.key"] is None or stored["tls/ca.crt"] is None:
        ca_key, ca_cert = make_ca(cluster)
        secrets.put("tls/ca.key", _b64(ca_key))
        secrets.put("tls/ca.crt", _b64(ca_cert))
        stored["tls/server.crt"] = None
    else:
        ca_key, ca_cert = _unb64(stored["tls/ca.key"]), _unb64(stored["tls/ca.crt"])
    crt, key = stored["tls/server.crt"], stored["tls/server.key"]
    if crt is None or key is None or not still_good(_unb64(crt), ca_cert, names):
        server_key, server_cert = make_server(ca_key, ca_cert, names)
        secrets.put("tls/server.key", _b64(server_key))
        secrets.put("tls/server.crt", _b64(server_cert))
    else:
        server_key, server_cert = _unb64(key), _unb64(crt)
    secrets.also_mask([ca_key, server_key])
    return Material(ca_cert, server_cert, server_key)


def verify(ca_pem: str | None) -> ssl.SSLContext | bool:
    """What an httpx client verifies the VIP with: the cluster's CA, or the system store without one."""
    return ssl.create_default_context(cadata=ca_pem) if ca_pem else True


def ca_cert(secrets: Secrets) -> str | None:
    """The CA certificate PEM clients verify the VIP with, or None before the first render."""
    stored = secrets.get("tls/ca.crt")
    return _unb64(stored) if stored is not None else None
