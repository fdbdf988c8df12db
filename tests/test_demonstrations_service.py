"""SelectDemonstrations and IndexDemonstrations over a real gRPC server on loopback:
status codes for bad input, tenants, the usage ledger and metrics, the clients, the CLI."""

from __future__ import annotations

import json
import subprocess

import grpc
import pytest

from middleware.client import AsyncRagpressClient, RagpressClient
from middleware.library import Ragpress
from middleware.settings import Settings
from ragpress.v1 import ragpress_pb2 as pb
from ragpress.v1 import ragpress_pb2_grpc as pb_grpc
from tests.servers import ThreadedServer
from tests.test_demonstrations import POOL as TREC_LIKE

# Two demonstrations of each of three labels.
POOL = [d for d in TREC_LIKE if d["id"] in {"h1", "h2", "l1", "l2", "n1", "n2"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("demo-server")
    settings = Settings(port=0, embedding_model="hashing", data_dir=str(data), warm_up=False, metrics_port=0)
    with ThreadedServer(Ragpress(settings)) as srv:
        with RagpressClient(srv.address, tenant="acme") as client:
            client.index_demonstrations("trec", POOL)
        yield srv


def _pb_pool(demos=POOL, labels=True):
    return [pb.Demonstration(id=d["id"], input=d["input"], output=d["output"], label=d["label"] if labels else "")
            for d in demos]


async def _call(server, request, tenant="acme"):
    async with grpc.aio.insecure_channel(server.address) as ch:
        return await pb_grpc.RagpressServiceStub(ch).SelectDemonstrations(
            request, metadata=(("x-ragpress-tenant", tenant),), timeout=30)


async def test_select_from_a_named_pool_returns_the_block_its_tokens_and_why(server):
    req = pb.SelectDemonstrationsRequest(query="Who painted the ceiling ?", pool_name="trec", max_demonstrations=2,
                                         method="dynamic", options={"agreement": 0.99}, model="gpt-4o")
    req.budget.max_tokens = 60
    reply = await _call(server, req)
    assert [d.id for d in reply.demonstrations][-1] == "h2" and len(reply.scores) == len(reply.demonstrations)
    assert reply.prompt.endswith("Question: Who painted the Mona Lisa ?\nAnswer: person\n\n")
    assert 0 < reply.selected_tokens <= reply.budget_tokens == 60
    assert reply.method == "dynamic" and reply.tokenizer == "o200k_base" and reply.request_id
    assert "reason" in reply.details and reply.demonstrations[0].label


@pytest.mark.parametrize("build, code, message", [
    (lambda: pb.SelectDemonstrationsRequest(query="q"), grpc.StatusCode.INVALID_ARGUMENT, "the pool is empty"),
    (lambda: pb.SelectDemonstrationsRequest(query="q", pool=_pb_pool(labels=False), method="balanced"),
     grpc.StatusCode.INVALID_ARGUMENT, "needs a label on every demonstration"),
    (lambda: pb.SelectDemonstrationsRequest(query="q", pool=_pb_pool(), method="kate"),
     grpc.StatusCode.INVALID_ARGUMENT, "unknown demonstration strategy 'kate'; known: balanced, dynamic"),
    (lambda: pb.SelectDemonstrationsRequest(query="q", pool_name="faq"), grpc.StatusCode.NOT_FOUND,
     "demonstration pool 'faq' does not exist for tenant 'acme'"),
    (lambda: pb.SelectDemonstrationsRequest(query="q", pool_name="../etc"), grpc.StatusCode.INVALID_ARGUMENT,
     "pool name '../etc' must be"),
    (lambda: pb.SelectDemonstrationsRequest(query="q", pool=_pb_pool(), options={"x": 1}),
     grpc.StatusCode.INVALID_ARGUMENT, "unknown option(s) ['x']"),
])
async def test_bad_input_is_invalid_argument_or_not_found_and_the_server_keeps_serving(server, build, code, message):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _call(server, build())
    assert info.value.code() == code and message in info.value.details()
    ok = await _call(server, pb.SelectDemonstrationsRequest(query="Where is Rome ?", pool=_pb_pool()))
    assert ok.demonstrations


async def test_a_pool_belongs_to_its_tenant(server):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _call(server, pb.SelectDemonstrationsRequest(query="q", pool_name="trec"), tenant="globex")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and "tenant 'globex'" in info.value.details()


async def test_usage_and_metrics_count_demonstration_tokens_saved(server):
    recorder = server.running.recorder
    reply = await _call(server, pb.SelectDemonstrationsRequest(
        query="Who painted the ceiling ?", pool_name="trec", max_demonstrations=4, budget=pb.Budget(max_tokens=25)),
        tenant="acme")
    assert reply.original_tokens > reply.selected_tokens > 0
    assert recorder.flush(30)
    from middleware.accounting.records import UsageQuery

    rows = recorder.query(UsageQuery(group_by=("rpc", "tenant", "method")))
    row = next(r for r in rows if r.group == {"rpc": "SelectDemonstrations", "tenant": "acme", "method": "similar"})
    assert row.requests >= 1 and row.saved_tokens >= reply.original_tokens - reply.selected_tokens
    from prometheus_client import generate_latest

    text = generate_latest(recorder.metrics.registry).decode()
    assert 'ragpress_saved_tokens_total{method="similar",model="gpt-4o",rpc="SelectDemonstrations",tenant="acme"}' \
        in text


def test_the_clients_index_and_select_sync_and_async(server):
    import asyncio

    with RagpressClient(server.address, tenant="initech") as client:
        assert client.index_demonstrations("qa", POOL[:4]).size == 4
        changed = client.index_demonstrations("qa", [], ["h1"])
        assert (changed.deleted, changed.size) == (1, 3)
        r = client.select_demonstrations("Where is Rome ?", pool_name="qa", max_demonstrations=2, method="mmr",
                                         core_ids=["h2"])
        assert r.demonstrations[0].id == "h2" and r.core_count == 1 and r.stable_prefix_tokens > 0

    async def run():
        async with AsyncRagpressClient(server.address, tenant="initech") as client:
            return await client.select_demonstrations("Where is Rome ?", POOL, max_demonstrations=3,
                                                      method="balanced", order="ranked")

    r = asyncio.run(run())
    assert len({d.label for d in r.demonstrations}) == 3  # balanced: one of each label


def test_cli_indexes_and_selects_in_process_and_against_the_server(tmp_path, server, subprocess_env, python_exe):
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(d) + "\n" for d in POOL), encoding="utf-8")
    env = dict(subprocess_env, RAGPRESS_EMBEDDING_MODEL="hashing", RAGPRESS_DATA_DIR=str(tmp_path / "data"))
    run = lambda *a, **kw: subprocess.run([python_exe, "-m", "middleware.cli", "--log-level", "WARNING", "demos", *a],
                                          env=env, capture_output=True, text=True, timeout=120, **kw)
    out = run("index", "trec", "--file", str(pool))
    assert out.returncode == 0 and json.loads(out.stdout) == {"pool": "trec", "upserted": 6, "deleted": 0, "size": 6}
    one = run("select", "--pool", "trec", "--input", "Who painted the ceiling ?", "-k", "2", "--budget", "40")
    picked = json.loads(one.stdout)
    assert one.returncode == 0 and picked["demonstrations"][-1]["id"] == "h2" and picked["selected_tokens"] <= 40
    batch = run("select", "--pool", "trec", "--batch", "-", "--method", "dynamic", "--option", "agreement=0.5",
                input='{"id": "a", "input": "Where is Rome ?"}\n{"id": "b"}\n')
    lines = [json.loads(line) for line in batch.stdout.splitlines()]
    assert batch.returncode == 0 and lines[0]["id"] == "a" and "reason" in lines[0]["details"]
    assert lines[1] == {"id": "b", "line": 2, "error": "each line needs an 'input' string"}
    missing = run("select", "--pool", "nope", "--input", "x")
    assert missing.returncode == 2 and "demonstration pool 'nope' does not exist" in missing.stderr
    remote = run("select", "--server", server.address, "--tenant", "acme", "--pool", "trec", "--input", "Where ?")
    assert remote.returncode == 0 and json.loads(remote.stdout)["demonstrations"]
    bad_remote = run("select", "--server", server.address, "--pool-file", str(pool), "--input", "x", "--method", "no")
    assert bad_remote.returncode == 2 and "unknown demonstration strategy 'no'" in bad_remote.stderr
