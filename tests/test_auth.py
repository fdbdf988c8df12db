"""API keys, roles and tenant isolation, on a real server with a key file.

A keyed tenant can never read, retrieve, or be billed for another tenant's data,
whatever tenant header it sends; the metrics/dashboard port asks for an admin key.
(Result-cache isolation: tests/test_shared_cache.py.)
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import grpc
import pytest

from middleware.auth import KeyStore, check_exposure, new_key
from middleware.errors import InvalidArgument
from middleware.library import Ragpress
from middleware.server import start
from middleware.settings import Settings
from ragpress.v1 import ragpress_pb2 as pb
from ragpress.v1 import ragpress_pb2_grpc as pb_grpc

KEYS = {name: new_key() for name in ("acme", "acme_reader", "globex", "admin", "later")}


def _entry(name: str, tenant: str, role: str) -> str:
    return f'[[keys]]\nname = "{name}"\nsha256 = "{KEYS[name][1]}"\ntenant = "{tenant}"\nrole = "{role}"\n'


BASE = _entry("acme", "acme", "writer") + _entry("acme_reader", "acme", "reader") + \
    _entry("globex", "globex", "writer") + _entry("admin", "ops", "admin")


def _meta(name: str | None, tenant: str | None = None) -> tuple[tuple[str, str], ...]:
    out = []
    if name:
        out.append(("authorization", f"Bearer {KEYS[name][0]}"))
    if tenant:
        out.append(("x-ragpress-tenant", tenant))
    return tuple(out)


@pytest.fixture(scope="module")
def key_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys.toml"
    path.write_text(BASE)
    return path


@pytest.fixture(scope="module")
async def server(key_file, tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    settings = Settings(port=0, embedding_model="hashing", data_dir=str(data), api_keys_file=str(key_file),
                        metrics_port=0, ledger_flush_seconds=0.05, warm_up=False)
    running = await start(settings, Ragpress(settings))
    await running.ready
    yield running
    await running.stop(grace=1)


@pytest.fixture(scope="module")
async def stub(server):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield pb_grpc.RagpressServiceStub(ch)


def _compress(**kw) -> pb.CompressRequest:
    req = pb.CompressRequest(query="How many people live in Paris?", model="gpt-4o", **kw)
    req.budget.max_tokens = 60
    return req


def _docs(text: str) -> list[pb.Document]:
    return [pb.Document(id="p", title="Paris", text=text)]


async def _rpc_error(coro) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await coro
    return info.value


async def test_a_call_without_a_key_is_unauthenticated(stub):
    err = await _rpc_error(stub.Compress(_compress(documents=_docs("Paris has 2,102,650 inhabitants.")),
                                         metadata=_meta(None, "acme")))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "authorization: Bearer" in err.details()


async def test_an_unknown_key_is_unauthenticated(stub):
    err = await _rpc_error(stub.Compress(_compress(documents=_docs("x")),
                                         metadata=(("authorization", "Bearer rp_not-a-key"),)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "not valid" in err.details()


async def test_a_reader_may_not_index(stub):
    err = await _rpc_error(stub.Index(pb.IndexRequest(collection="c", documents=_docs("x")),
                                      metadata=_meta("acme_reader")))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "may not call Index" in err.details()


async def test_a_tenant_cannot_read_or_overwrite_another_tenants_collection(stub):
    await stub.Index(pb.IndexRequest(collection="wiki", documents=_docs("Paris has 2,102,650 inhabitants.")),
                     metadata=_meta("acme"))
    # globex claims to be acme in the header: the header is ignored for keyed callers.
    err = await _rpc_error(stub.Retrieve(pb.RetrieveRequest(collection="wiki", query="Paris"),
                                         metadata=_meta("globex", "acme")))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await _rpc_error(stub.Compress(_compress(collection="wiki"), metadata=_meta("globex", "acme")))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    # Writing "wiki" as globex creates globex's own collection; acme's is untouched.
    await stub.Index(pb.IndexRequest(collection="wiki", documents=_docs("Globex secret: 42.")),
                     metadata=_meta("globex", "acme"))
    mine = await stub.Retrieve(pb.RetrieveRequest(collection="wiki", query="Paris"), metadata=_meta("acme"))
    assert [d.document.text for d in mine.documents] == ["Paris has 2,102,650 inhabitants."]
    theirs = await stub.Retrieve(pb.RetrieveRequest(collection="wiki", query="secret"), metadata=_meta("globex"))
    assert [d.document.text for d in theirs.documents] == ["Globex secret: 42."]
    # A reader of acme reads acme's collection.
    also = await stub.Retrieve(pb.RetrieveRequest(collection="wiki", query="Paris"), metadata=_meta("acme_reader"))
    assert [d.document.text for d in also.documents] == ["Paris has 2,102,650 inhabitants."]


async def _usage(stub, key: str) -> dict[str, int]:
    req = pb.GetUsageRequest(group_by=[pb.USAGE_GROUP_BY_TENANT])
    reply = await stub.GetUsage(req, metadata=_meta(key))
    return {row.group["tenant"]: row.requests for row in reply.rows}


async def test_calls_are_billed_to_the_keys_tenant_and_usage_shows_only_your_own(stub, server):
    before = await _usage(stub, "admin")
    await stub.Compress(_compress(documents=_docs("Paris has 2,102,650 inhabitants.")),
                        metadata=_meta("globex", "acme"))
    assert await asyncio.to_thread(server.recorder.flush, 10)
    after = await _usage(stub, "admin")
    assert after.get("globex", 0) == before.get("globex", 0) + 1
    assert after.get("acme", 0) == before.get("acme", 0)
    # Non-admins see their own tenant only, whatever they group by.
    assert set(await _usage(stub, "globex")) == {"globex"}
    assert set(await _usage(stub, "acme_reader")) <= {"acme"}


def _http(port: int, path: str, key: str | None) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if key:
        req.add_header("Authorization", f"Bearer {KEYS[key][0]}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


async def test_metrics_and_dashboard_need_an_admin_key_and_stay_on_loopback(server):
    assert server.http.server.server_address[0] == "127.0.0.1"
    for path in ("/metrics", "/dashboard", "/api/usage"):
        codes = [await asyncio.to_thread(_http, server.metrics_port, path, key) for key in (None, "acme", "admin")]
        assert codes == [401, 403, 200], (path, codes)


async def test_the_key_file_is_reloaded_when_it_changes(stub, key_file):
    req = _compress(documents=_docs("Paris has 2,102,650 inhabitants."))
    assert (await _rpc_error(stub.Compress(req, metadata=_meta("later")))).code() == grpc.StatusCode.UNAUTHENTICATED
    # Add a key and revoke globex's.
    key_file.write_text(BASE.replace(_entry("globex", "globex", "writer"), "") + _entry("later", "later", "reader"))
    await asyncio.sleep(KeyStore.CHECK_SECONDS + 0.2)
    assert (await stub.Compress(req, metadata=_meta("later"))).compressed_tokens > 0
    err = await _rpc_error(stub.Compress(req, metadata=_meta("globex")))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    # A broken edit keeps the keys in force (and is logged), never opens the door.
    key_file.write_text("[[keys]]\nsha256 = 'nope'\n")
    await asyncio.sleep(KeyStore.CHECK_SECONDS + 0.2)
    assert (await stub.Compress(req, metadata=_meta("later"))).compressed_tokens > 0
    assert (await _rpc_error(stub.Compress(req))).code() == grpc.StatusCode.UNAUTHENTICATED
    key_file.write_text(BASE)
    await asyncio.sleep(KeyStore.CHECK_SECONDS + 0.2)


def test_keys_are_stored_hashed_and_parsed_strictly(tmp_path):
    key, digest = new_key()
    store = KeyStore(inline=f"{digest}:acme:writer")
    assert store.authenticate(key).tenant == "acme" and key not in repr(store.__dict__)
    for bad in ("abc:acme:writer", f"{digest}:acme:root", f"{digest}:../x:reader", f"{digest}:acme"):
        with pytest.raises(InvalidArgument):
            KeyStore(inline=bad)
    with pytest.raises(InvalidArgument, match="cannot read api_keys_file"):
        KeyStore(tmp_path / "missing.toml")


@pytest.mark.parametrize("host, keys, insecure, refused", [
    ("127.0.0.1", "", False, False), ("::1", "", False, False), ("localhost", "", False, False),
    ("0.0.0.0", "", False, True), ("10.1.2.3", "", False, True),
    ("0.0.0.0", "", True, False), ("0.0.0.0", f"{'a' * 64}:acme:reader", False, False),
])
def test_a_public_address_needs_keys_or_insecure(host, keys, insecure, refused):
    settings = Settings(host=host, api_keys=keys, insecure=insecure)
    if refused:
        with pytest.raises(InvalidArgument, match="without authentication"):
            check_exposure(settings, KeyStore.from_settings(settings))
    else:
        check_exposure(settings, KeyStore.from_settings(settings))


async def test_the_python_client_sends_the_key(server):
    from middleware.client import AsyncRagpressClient

    async with AsyncRagpressClient(f"127.0.0.1:{server.port}", api_key=KEYS["acme"][0]) as client:
        hits = await client.retrieve("wiki", "Paris", 1)
    assert hits[0][0].text == "Paris has 2,102,650 inhabitants."
    async with AsyncRagpressClient(f"127.0.0.1:{server.port}", tenant="acme") as client:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.retrieve("wiki", "Paris", 1)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_the_langchain_retriever_sends_the_key(server):
    from middleware.integrations.langchain import RagpressRetriever

    retriever = RagpressRetriever(target=f"127.0.0.1:{server.port}", collection="wiki", k=1,
                                  api_key=KEYS["acme"][0])
    assert KEYS["acme"][0] not in repr(retriever)
    assert (await retriever.ainvoke("Paris"))[0].page_content == "Paris has 2,102,650 inhabitants."


def test_keys_new_prints_a_key_once_and_an_entry_that_authenticates_it(capsys):
    from middleware.auth import parse_file
    from middleware.cli import main

    assert main(["keys", "new", "--tenant", "acme", "--role", "writer", "--name", "ci"]) == 0
    out = capsys.readouterr().out
    key = out.splitlines()[0].rsplit(" ", 1)[1]
    entries = parse_file(out, "output")
    store = KeyStore(inline=";".join(f"{d}:{p.tenant}:{p.role}" for d, p in entries.items()))
    principal = store.authenticate(key)
    assert (principal.tenant, principal.role) == ("acme", "writer") and key not in "".join(entries)
    assert main(["keys", "new", "--tenant", "acme", "--role", "root"]) == 2


def test_serve_refuses_a_public_host_without_keys_before_binding(capsys, monkeypatch):
    from middleware.cli import main

    monkeypatch.delenv("RAGPRESS_API_KEYS", raising=False)
    monkeypatch.delenv("RAGPRESS_API_KEYS_FILE", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "without authentication" in capsys.readouterr().err
