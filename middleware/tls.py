"""TLS and mutual TLS for the gRPC port and its clients (PEM files).

Server: ``tls_cert_file`` + ``tls_key_file`` serve TLS; ``tls_client_ca_file``
also requires every client to present a certificate signed by that CA (mTLS).
Clients: :func:`client_credentials` with the CA that signed the server's
certificate (the system roots when omitted) and, for mTLS, their own pair.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from middleware.errors import InvalidArgument
from middleware.settings import Settings


def _read(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"cannot read {what} {path}: {exc.strerror}") from exc


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """The port's credentials, or None for plaintext (no certificate configured)."""
    if not settings.tls_cert_file:
        return None
    pair = (_read(settings.tls_key_file, "tls_key_file"), _read(settings.tls_cert_file, "tls_cert_file"))
    ca = _read(settings.tls_client_ca_file, "tls_client_ca_file") if settings.tls_client_ca_file else None
    return grpc.ssl_server_credentials([pair], root_certificates=ca, require_client_auth=ca is not None)


def client_credentials(ca_file: str | Path | None = None, cert_file: str | Path | None = None,
                       key_file: str | Path | None = None) -> grpc.ChannelCredentials:
    """Channel credentials: trust ``ca_file`` (system roots when None); present
    ``cert_file``/``key_file`` for mutual TLS."""
    if (cert_file is None) != (key_file is None):
        raise InvalidArgument("a client certificate needs its key (cert_file and key_file go together)")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca_file, "CA file") if ca_file else None,
        private_key=_read(key_file, "client key") if key_file else None,
        certificate_chain=_read(cert_file, "client certificate") if cert_file else None)
