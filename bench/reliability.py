"""Reliability suite: fuzz, load, soak, SIGTERM under load, upstream faults, oversized inputs.

    .venv/bin/python bench/reliability.py                 # full run (about 6 minutes), README figures
    .venv/bin/python bench/reliability.py --quick         # a few seconds a section (smoke; own JSON)

Everything runs on loopback against `ragpress serve` started here as a separate
process (its own RSS, a real SIGTERM), with a real OpenAI-compatible upstream
(tests/openai_server.py) for the fault section. Bounded in time and count.
Prints a table and writes bench/results/reliability.json (reliability_quick.json
with --quick, so a smoke run never overwrites the full figures).

Load documents: --data PATH (batch JSONL rows: query + documents); default the
repository's tests/fixtures/batch_small.jsonl (10 HotpotQA questions).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from ragpress.v1 import ragpress_pb2 as pb  # noqa: E402
from ragpress.v1 import ragpress_pb2_grpc as pb_grpc  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`ragpress serve` in a child process, on a free loopback port, with its own data folder."""

    def __init__(self, folder: Path, **env: str) -> None:
        self.port = free_port()
        self.folder = folder
        self.env = dict(os.environ, RAGPRESS_DATA_DIR=str(folder), RAGPRESS_PORT=str(self.port),
                        RAGPRESS_HOST="127.0.0.1", RAGPRESS_LEDGER_FLUSH_SECONDS="0.2",
                        **{f"RAGPRESS_{k.upper()}": v for k, v in env.items()})
        self.env.pop("RAGPRESS_CONFIG", None)
        self.log = open(folder / "server.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "middleware.cli", "--log-level", "WARNING", "serve"],
                                     cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_serving(self, seconds: float = 300) -> None:
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                try:
                    if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                        return
                except grpc.RpcError:
                    pass
                if self.proc.poll() is not None:
                    raise SystemExit(f"server exited early; see {self.folder / 'server.log'}")
                time.sleep(0.1)
        raise SystemExit("server did not report SERVING")

    def alive(self) -> bool:
        try:
            with grpc.insecure_channel(self.address) as channel:
                return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status == 1
        except grpc.RpcError:
            return False

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120) -> float:
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return time.monotonic() - started

    def error_lines(self) -> int:
        return sum(1 for line in (self.folder / "server.log").read_text(errors="replace").splitlines()
                   if " ERROR " in line)


def load_rows(path: Path) -> list[pb.CompressRequest]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # the fixture holds deliberately broken lines for the batch CLI's tests
        if not row.get("documents") or not isinstance(row.get("query"), str):
            continue
        req = pb.CompressRequest(query=row["query"], model="gpt-4o", documents=[
            pb.Document(id=str(d.get("id", i)), title=d.get("title", ""), text=d["text"])
            for i, d in enumerate(row["documents"])])
        req.budget.max_tokens = 300
        out.append(req)
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# -- sections ---------------------------------------------------------------------------------

def fuzz(server: Server, examples: int) -> dict:
    """Hypothesis-generated requests for every RPC (tests/fuzz_requests.py) and raw bodies."""
    from hypothesis import HealthCheck, given, settings, strategies as st

    from tests import fuzz_requests as fz

    codes: Counter = Counter()
    channel = grpc.insecure_channel(server.address)
    errors_before = server.error_lines()
    started = time.monotonic()
    def fuzz_rpc(rpc: str) -> None:
        strategy, response, streaming = fz.RPCS[rpc]
        method = f"/ragpress.v1.RagpressService/{rpc}"
        kind = channel.unary_stream if streaming else channel.unary_unary
        call = kind(method, request_serializer=lambda m: m.SerializeToString(),
                    response_deserializer=response.FromString)

        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(request=strategy)
        def run(request):
            try:
                result = call(request, timeout=30)
                if streaming:
                    list(result)
                codes["OK"] += 1
            except grpc.RpcError as exc:
                codes[exc.code().name] += 1

        run()

    for rpc in sorted(fz.RPCS):
        fuzz_rpc(rpc)

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(body=fz.raw_bodies, rpc=st.sampled_from(sorted(fz.RPCS)))
    def raw(body, rpc):
        try:
            channel.unary_unary(f"/ragpress.v1.RagpressService/{rpc}")(body, timeout=30)
            codes["OK"] += 1
        except grpc.RpcError as exc:
            codes[exc.code().name] += 1

    raw()
    channel.close()
    return {"requests": sum(codes.values()), "codes": dict(codes), "bugs": codes["INTERNAL"] + codes["UNKNOWN"],
            "error_log_lines": server.error_lines() - errors_before, "alive_after": server.alive(),
            "seconds": round(time.monotonic() - started, 1)}


async def _drive(address: str, requests: list[pb.CompressRequest], clients: int, seconds: float,
                 on_sample=None, ids: list | None = None, stop_event: asyncio.Event | None = None) -> dict:
    """``clients`` concurrent callers for ``seconds`` (or until ``stop_event``): latencies and codes."""
    latencies: list[float] = []
    codes: Counter = Counter()
    end = time.monotonic() + seconds
    channels = [grpc.aio.insecure_channel(address) for _ in range(max(1, clients // 8))]

    async def client(n: int) -> None:
        stub = pb_grpc.RagpressServiceStub(channels[n % len(channels)])
        i = n
        while time.monotonic() < end and not (stop_event and stop_event.is_set()):
            started = time.perf_counter()
            try:
                reply = await stub.Compress(requests[i % len(requests)], timeout=30)
                codes["OK"] += 1
                latencies.append(time.perf_counter() - started)
                if ids is not None:
                    ids.append(reply.request_id)
            except grpc.aio.AioRpcError as exc:
                codes[exc.code().name] += 1
            i += clients

    async def sampler() -> None:
        while time.monotonic() < end and not (stop_event and stop_event.is_set()):
            on_sample()
            await asyncio.sleep(1.0)

    started = time.monotonic()
    tasks = [client(n) for n in range(clients)] + ([sampler()] if on_sample else [])
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    for ch in channels:
        await ch.close()
    ok = codes["OK"]
    return {"clients": clients, "seconds": round(elapsed, 1), "calls": sum(codes.values()), "ok": ok,
            "errors": {k: v for k, v in codes.items() if k != "OK"}, "rps": round(ok / elapsed, 1),
            "p50_ms": round(pct(latencies, 0.5) * 1000, 1), "p99_ms": round(pct(latencies, 0.99) * 1000, 1)}


def _no_result_cache(requests: list[pb.CompressRequest]) -> list[pb.CompressRequest]:
    # Vary the budget so that no two calls of a round are identical (the SIGTERM server runs
    # with the default result cache; the main server runs without one).
    out = []
    for i in range(500):
        req = pb.CompressRequest()
        req.CopyFrom(requests[i % len(requests)])
        req.budget.max_tokens = 200 + i
        out.append(req)
    return out


async def load(server: Server, requests, clients: int, seconds: float) -> dict:
    rss: list[float] = []
    result = await _drive(server.address, _no_result_cache(requests), clients, seconds,
                          on_sample=lambda: rss.append(server.rss_mb()))
    return dict(result, rss_mb_max=round(max(rss), 1) if rss else None, alive_after=server.alive())


async def soak(server: Server, requests, clients: int, seconds: float) -> dict:
    rss: list[tuple[float, float]] = []
    started = time.monotonic()
    result = await _drive(server.address, _no_result_cache(requests), clients, seconds,
                          on_sample=lambda: rss.append((time.monotonic() - started, server.rss_mb())))
    warm = [m for t, m in rss if t >= seconds * 0.2]
    first, last = statistics.median(warm[:5]), statistics.median(warm[-5:])
    return dict(result, rss_mb_after_warmup=round(first, 1), rss_mb_end=round(last, 1),
                rss_growth_pct=round(100 * (last - first) / first, 1), samples=len(rss))


async def sigterm_under_load(folder: Path, requests, clients: int, load_seconds: float) -> dict:
    """SIGTERM while calls are in flight: every call that succeeded has its ledger record."""
    ledger = folder / "sigterm.sqlite3"
    server = Server(folder, ledger_url=f"sqlite://{ledger}", drain_seconds="10", result_cache_entries="0")
    try:
        await asyncio.to_thread(server.wait_serving)
        ids: list[str] = []
        stop = asyncio.Event()
        driver = asyncio.ensure_future(_drive(server.address, _no_result_cache(requests), clients,
                                              load_seconds + 30, ids=ids, stop_event=stop))
        await asyncio.sleep(load_seconds)
        exit_seconds = await asyncio.to_thread(server.stop, signal.SIGTERM)
        stop.set()
        traffic = await driver
    finally:
        if server.proc.poll() is None:  # a failure above must not leave the server running
            server.stop(signal.SIGKILL)
    with sqlite3.connect(ledger) as db:
        recorded = {row[0] for row in db.execute("SELECT request_id FROM ragpress_usage")}
    missing = [i for i in ids if i not in recorded]
    return {"succeeded": len(ids), "recorded": len(recorded), "missing_records": len(missing),
            "refused_while_draining": traffic["errors"], "exit_seconds": round(exit_seconds, 2),
            "exit_code": server.proc.returncode}


async def upstream_faults(folder: Path) -> dict:
    """500s, time-outs and connection resets from a real local upstream, per fallback policy."""
    from tests.openai_server import OpenAIServer

    upstream = OpenAIServer()
    await upstream.start()
    # The local model is converted from GGUF once into <data_dir>/models: reuse the repository's.
    shared_models = ROOT / ".ragpress" / "models"
    shared_models.mkdir(parents=True, exist_ok=True)
    (folder / "models").symlink_to(shared_models, target_is_directory=True)
    server = Server(folder, llm_api_base=upstream.api_base, llm_api_key="sk-test", llm_timeout_seconds="3",
                    llm_retries="2", local_threads="1", local_max_new_tokens="8")
    faults = {"500": {"fail_first": 100}, "500 once": {"fail_first": 1}, "timeout": {"delay": 8.0},
              "reset": {"reset_first": 100}}
    policies = {"fail": pb.FALLBACK_POLICY_FAIL, "retry": pb.FALLBACK_POLICY_RETRY, "local": pb.FALLBACK_POLICY_LOCAL}
    rows: list[dict] = []
    warm: dict[str, float] = {}
    try:
        await asyncio.to_thread(server.wait_serving)
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.RagpressServiceStub(channel)
            # Warm both answerers first (litellm's first call imports its stack; the local model
            # loads once), so each row times the fault handling, not a cold start.
            for model in ("openai/gpt-4o-mini", "local/smollm2"):
                upstream.reset()
                req = pb.GenerateRequest(query="Warm-up?", model=model, documents=[pb.Document(id="w", text="Warm.")])
                req.budget.max_tokens = 20
                started = time.perf_counter()
                for attempt in range(5):  # on a loaded machine the very first call may time out
                    try:
                        await stub.Generate(req, timeout=600)
                        break
                    except grpc.aio.AioRpcError as exc:
                        print(f"  warm-up of {model}: {exc.code().name}, again", flush=True)
                warm[model] = round(time.perf_counter() - started, 1)
            for fault, behaviour in faults.items():
                for policy, value in policies.items():
                    upstream.reset(**behaviour)
                    req = pb.GenerateRequest(query="How many people live in Paris?", model="openai/gpt-4o-mini",
                                             documents=[pb.Document(id="a", text="Paris has 2,102,650 inhabitants.")],
                                             fallback=value)
                    req.budget.max_tokens = 40
                    started = time.perf_counter()
                    try:
                        reply = await stub.Generate(req, timeout=120)
                        outcome = f"OK ({reply.model}{', fell back' if reply.fell_back else ''})"
                    except grpc.aio.AioRpcError as exc:
                        outcome = exc.code().name
                    rows.append({"fault": fault, "policy": policy, "outcome": outcome,
                                 "upstream_requests": len(upstream.behaviour.requests),
                                 "seconds": round(time.perf_counter() - started, 2)})
        alive = server.alive()
        errors = server.error_lines()
    finally:  # never leave the child server or the upstream behind
        server.stop()
        await upstream.stop()

    return {"rows": rows, "warm_up_seconds": warm, "alive_after": alive, "error_log_lines": errors}


async def oversized(server: Server) -> dict:
    """Inputs past the limits are refused before any work: code and time to the answer."""
    doc = pb.Document(id="a", title="t", text="Some text.")
    cases = {
        "50 MB request": lambda r: r.documents.add(id="big", text="x" * 50_000_000),
        "2,000 documents": lambda r: r.documents.extend(pb.Document(id=str(i), text="x") for i in range(2000)),
        "5 MB document": lambda r: r.documents.add(id="big", text="word " * 1_000_000),
        "1.5 MB query": lambda r: setattr(r, "query", "q" * 1_500_000),
        "100 KB separator": lambda r: setattr(r.context_format, "separator", "-" * 100_000),
        "10^9 target tokens": lambda r: setattr(r.budget, "max_tokens", 10**9),
    }
    template = pb.GenerateRequest(query="q?", model="openai/gpt-4o-mini", documents=[doc],
                                  template="{context:>100000000}\n{question}")
    template.budget.max_tokens = 50
    rows = []

    async def timed(name: str, call) -> None:
        started = time.perf_counter()
        try:
            await call(timeout=60)
            code = "OK"
        except grpc.aio.AioRpcError as exc:
            code = exc.code().name
        rows.append({"input": name, "code": code, "ms": round((time.perf_counter() - started) * 1000, 1)})

    async with grpc.aio.insecure_channel(server.address, options=[("grpc.max_send_message_length", 2**28)]) as ch:
        stub = pb_grpc.RagpressServiceStub(ch)
        for name, mutate in cases.items():
            req = pb.CompressRequest(query="q?", model="gpt-4o", documents=[doc])
            req.budget.max_tokens = 50
            mutate(req)
            await timed(name, lambda timeout, req=req: stub.Compress(req, timeout=timeout))
        await timed("padded template", lambda timeout: stub.Generate(template, timeout=timeout))
    return {"rows": rows, "alive_after": server.alive()}


# -- driver -----------------------------------------------------------------------------------

def table(results: dict) -> str:
    f, l, s, t = results["fuzz"], results["load"], results["soak"], results["sigterm"]
    lines = ["| check | result | target |", "|---|---|---|",
             f"| fuzz: {f['requests']:,} generated requests over 7 RPCs + raw bodies | {f['bugs']} INTERNAL/UNKNOWN, "
             f"{f['error_log_lines']} ERROR log lines, alive after: {f['alive_after']} | 0, 0, alive |",
             f"| load: {l['clients']} clients x {l['seconds']:.0f} s Compress | {l['rps']} RPS, p50 {l['p50_ms']} ms, "
             f"p99 {l['p99_ms']} ms, {sum(l['errors'].values())} errors {l['errors'] or ''}, max RSS "
             f"{l['rss_mb_max']} MB | 0 errors |",
             f"| soak: {s['clients']} clients x {s['seconds']:.0f} s | RSS {s['rss_mb_after_warmup']} -> "
             f"{s['rss_mb_end']} MB after warm-up ({s['rss_growth_pct']:+.1f}%), {sum(s['errors'].values())} errors "
             f"| within 10% |",
             f"| SIGTERM under load ({t['succeeded']} calls succeeded) | {t['missing_records']} without a ledger "
             f"record; exit in {t['exit_seconds']} s (code {t['exit_code']}) | 0 missing |"]
    for row in results["upstream"]["rows"]:
        lines.append(f"| upstream {row['fault']}, policy {row['policy']} | {row['outcome']} in {row['seconds']} s "
                     f"({row['upstream_requests']} upstream requests) | as the policy says |")
    for row in results["oversized"]["rows"]:
        lines.append(f"| oversized: {row['input']} | {row['code']} in {row['ms']} ms | refused fast |")
    return "\n".join(lines)


async def main_async(args) -> dict:
    requests = load_rows(Path(args.data))
    with tempfile.TemporaryDirectory(prefix="ragpress-reliability-") as tmp:
        tmp = Path(tmp)
        results: dict = {"load_average": os.getloadavg()}
        (tmp / "main").mkdir()
        # No result cache: load and soak measure compression, not cache hits.
        server = Server(tmp / "main", llm_api_base="http://127.0.0.1:9/v1", ledger_url="none",
                        result_cache_entries="0")
        try:
            await asyncio.to_thread(server.wait_serving)
            print("fuzz ...", flush=True)
            results["fuzz"] = await asyncio.to_thread(fuzz, server, args.fuzz_examples)
            print("load ...", flush=True)
            results["load"] = await load(server, requests, args.clients, args.load_seconds)
            print("soak ...", flush=True)
            results["soak"] = await soak(server, requests, args.soak_clients, args.soak_seconds)
            print("oversized ...", flush=True)
            results["oversized"] = await oversized(server)
        finally:
            server.stop()
        (tmp / "sigterm").mkdir()
        print("SIGTERM under load ...", flush=True)
        results["sigterm"] = await sigterm_under_load(tmp / "sigterm", requests, args.clients, args.sigterm_seconds)
        (tmp / "upstream").mkdir()
        print("upstream faults ...", flush=True)
        results["upstream"] = await upstream_faults(tmp / "upstream")
    results["load_average_end"] = os.getloadavg()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT / "tests" / "fixtures" / "batch_small.jsonl"))
    ap.add_argument("--quick", action="store_true", help="a few seconds a section; writes reliability_quick.json")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--load-seconds", type=float, default=60)
    ap.add_argument("--soak-clients", type=int, default=8)
    ap.add_argument("--soak-seconds", type=float, default=180)
    ap.add_argument("--sigterm-seconds", type=float, default=8)
    ap.add_argument("--fuzz-examples", type=int, default=300, help="per RPC")
    args = ap.parse_args()
    if args.quick:
        args.load_seconds, args.soak_seconds, args.sigterm_seconds, args.fuzz_examples = 5, 15, 3, 20
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    results = asyncio.run(main_async(args))
    results["command"] = " ".join(["bench/reliability.py", *sys.argv[1:]])
    print(table(results))
    out = RESULTS / ("reliability_quick.json" if args.quick else "reliability.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}; load average {results['load_average']} -> {results['load_average_end']}")


if __name__ == "__main__":
    main()
