"""TLS and mutual TLS on the gRPC port, with certificates made by the test."""

from __future__ import annotations

import grpc
import pytest

from middleware.client import AsyncRagpressClient
from middleware.errors import InvalidArgument
from middleware.server import start
from middleware.settings import Settings
from middleware.tls import client_credentials
from tests.certs import make_pki

DOCS = [{"id": "a", "title": "Paris", "text": "Paris has 2,102,650 inhabitants."}]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


async def _server(fast_engine, tmp_path, **tls):
    settings = Settings(port=0, embedding_model="hashing", data_dir=str(tmp_path), ledger_url="none",
                        warm_up=False, **tls)
    running = await start(settings, fast_engine)
    await running.ready
    return running


async def _compress(port: int, credentials, timeout: float = 10.0):
    async with AsyncRagpressClient(f"localhost:{port}", credentials=credentials, timeout=timeout) as client:
        return await client.compress("How many people live in Paris?", DOCS, 40)


async def test_tls_serves_clients_that_trust_the_ca_and_refuses_the_rest(fast_engine, pki, tmp_path):
    running = await _server(fast_engine, tmp_path, tls_cert_file=str(pki.server_cert),
                            tls_key_file=str(pki.server_key))
    try:
        result = await _compress(running.port, client_credentials(pki.ca))
        assert "2,102,650" in result.context
        for credentials in (client_credentials(pki.other_ca), None):  # wrong CA; plaintext
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await _compress(running.port, credentials, timeout=3)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await running.stop(grace=1)


async def test_mutual_tls_needs_a_client_certificate_from_the_ca(fast_engine, pki, tmp_path):
    running = await _server(fast_engine, tmp_path, tls_cert_file=str(pki.server_cert),
                            tls_key_file=str(pki.server_key), tls_client_ca_file=str(pki.ca))
    try:
        result = await _compress(running.port, client_credentials(pki.ca, pki.client_cert, pki.client_key))
        assert "2,102,650" in result.context
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _compress(running.port, client_credentials(pki.ca), timeout=3)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await running.stop(grace=1)


def test_tls_settings_are_checked(pki, tmp_path):
    with pytest.raises(InvalidArgument, match="go together"):
        Settings.from_mapping({"tls_cert_file": str(pki.server_cert)})
    with pytest.raises(InvalidArgument, match="needs tls_cert_file"):
        Settings.from_mapping({"tls_client_ca_file": str(pki.ca)})
    with pytest.raises(InvalidArgument, match="cert_file and key_file go together"):
        client_credentials(pki.ca, cert_file=pki.client_cert)


async def test_a_missing_certificate_file_fails_at_start(fast_engine, tmp_path):
    settings = Settings(port=0, embedding_model="hashing", ledger_url="none", tls_cert_file=str(tmp_path / "no.pem"),
                        tls_key_file=str(tmp_path / "no.key"))
    with pytest.raises(InvalidArgument, match="cannot read tls_key_file"):
        await start(settings, fast_engine)
