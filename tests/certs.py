"""A throw-away certificate authority for TLS tests: a CA, a server certificate for
127.0.0.1/localhost and a client certificate, written as PEM files (cryptography)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here: trusting it must fail


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key, issuer: str, issuer_key, *, ca: bool, sans=(), client: bool = False):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    if not ca:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(folder: Path, name: str, obj) -> Path:
    from cryptography.hazmat.primitives import serialization

    path = folder / name
    if hasattr(obj, "private_bytes"):
        data = obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    else:
        data = obj.public_bytes(serialization.Encoding.PEM)
    path.write_bytes(data)
    return path


def make_pki(folder: Path) -> Pki:
    from cryptography import x509

    ca_key, other_key, server_key, client_key = _key(), _key(), _key(), _key()
    ca = _cert("ragpress test CA", ca_key, "ragpress test CA", ca_key, ca=True)
    other = _cert("unrelated CA", other_key, "unrelated CA", other_key, ca=True)
    sans = (x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    server = _cert("localhost", server_key, "ragpress test CA", ca_key, ca=False, sans=sans)
    client = _cert("acme-client", client_key, "ragpress test CA", ca_key, ca=False, client=True)
    return Pki(_write(folder, "ca.pem", ca), _write(folder, "server.pem", server),
               _write(folder, "server.key", server_key), _write(folder, "client.pem", client),
               _write(folder, "client.key", client_key), _write(folder, "other-ca.pem", other))
