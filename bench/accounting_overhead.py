"""What cost accounting adds to a request, and what batching buys the ledger.

    nice python bench/accounting_overhead.py [--questions 100]

1. Request path: one ``Recorder.record_compress`` call (metrics + queueing the
   record; pricing and writing happen on the writer thread), next to a
   HotpotQA question's compress (hashing embedder, 300-token budget).
2. gRPC Compress end to end on loopback: two servers, SQLite ledger and /metrics
   on versus ``ledger_url = "none"`` (metrics only), called alternately with the
   same requests (paired, so machine load hits both alike).
3. SQLite ledger throughput: 500-record batches versus one commit per record.

Prints a table and writes bench/results/accounting_overhead.json. Medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from middleware.offline import configure_offline  # noqa: E402

configure_offline()

from middleware.accounting import Recorder, UsageRecord, open_ledger  # noqa: E402
from middleware.library import Ragpress  # noqa: E402
from middleware.settings import Settings  # noqa: E402

from datapaths import data_file, existing, results_path  # noqa: E402

DEFAULT_QUESTIONS = 100


def questions(path: Path, limit: int) -> list[dict]:
    rows = [json.loads(line) for line in existing(path).read_text(encoding="utf-8").splitlines()
            if line.strip()][:limit]
    return [{"query": r["question"], "documents": [{"id": f"p{k}", "title": t, "text": " ".join(s)}
                                                   for k, (t, s) in enumerate(r["context"])]} for r in rows]


def request_path(engine: Ragpress, qs: list[dict], tmp: Path) -> dict:
    results, compress_ms = [], []
    for q in qs:
        started = time.perf_counter()
        results.append(engine.compress(q["query"], q["documents"], 300))
        compress_ms.append((time.perf_counter() - started) * 1000)
    rec = Recorder(Settings(data_dir=str(tmp / "a"), ledger_flush_seconds=0.2))
    rec.flush()
    record_us = []
    for _ in range(50):
        for result in results:
            started = time.perf_counter_ns()
            rec.record_compress(result)
            record_us.append((time.perf_counter_ns() - started) / 1000)
    rec.close()
    return {"compress_ms_median": statistics.median(compress_ms),
            "record_compress_us_median": statistics.median(record_us), "record_calls": len(record_us)}


async def grpc_latency(engine: Ragpress, qs: list[dict], tmp: Path, rounds: int) -> dict:
    """Two servers (SQLite ledger + /metrics, and ledger_url=none), called alternately with the
    same request, so both see the same load from the rest of the machine."""
    import grpc

    from middleware import convert
    from middleware.server import start
    from ragpress.v1 import ragpress_pb2_grpc as pb_grpc

    servers = {}
    for name, url, port in (("sqlite", "", 0), ("none", "none", -1)):
        settings = Settings(port=0, embedding_model="hashing", data_dir=str(tmp / name), ledger_url=url,
                            metrics_port=port)
        servers[name] = await start(settings, engine)
        await servers[name].ready
    reqs = [convert.compress_request_to_pb(engine.request(q["query"], q["documents"], 300)) for q in qs]
    times: dict[str, list[float]] = {name: [] for name in servers}
    channels = {n: grpc.aio.insecure_channel(f"127.0.0.1:{s.port}") for n, s in servers.items()}
    stubs = {n: pb_grpc.RagpressServiceStub(ch) for n, ch in channels.items()}
    for req in reqs[:10]:
        for stub in stubs.values():
            await stub.Compress(req)
    for r in range(rounds):
        order = list(stubs) if r % 2 == 0 else list(reversed(stubs))
        for req in reqs:
            for name in order:
                started = time.perf_counter()
                await stubs[name].Compress(req)
                times[name].append((time.perf_counter() - started) * 1000)
    for ch in channels.values():
        await ch.close()
    for s in servers.values():
        await s.stop(grace=1)
    ratios = [a / b for a, b in zip(times["sqlite"], times["none"])]
    return {"grpc_ms_median_sqlite_ledger": statistics.median(times["sqlite"]),
            "grpc_ms_median_no_ledger": statistics.median(times["none"]),
            "grpc_paired_ratio_median": statistics.median(ratios), "grpc_calls_each": len(ratios)}


def ledger_throughput(tmp: Path, n_batched: int, n_single: int) -> dict:
    records = [UsageRecord(tenant="t", rpc="Compress", model="gpt-4o", method="extractive", original_tokens=900,
                           compressed_tokens=300, request_id=str(i)) for i in range(n_batched)]
    ledger = open_ledger(Settings(data_dir=str(tmp / "batched")))
    started = time.perf_counter()
    for i in range(0, n_batched, 500):
        ledger.write(records[i:i + 500])
    batched = n_batched / (time.perf_counter() - started)
    ledger.close()
    ledger = open_ledger(Settings(data_dir=str(tmp / "single")))
    started = time.perf_counter()
    for r in records[:n_single]:
        ledger.write([r])
    single = n_single / (time.perf_counter() - started)
    ledger.close()
    return {"sqlite_batched_records_per_s": batched, "sqlite_single_records_per_s": single}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="questions in the HotpotQA row format (default: "
                                                 "$RAGPRESS_DATA/hotpotqa/hotpot_distractor_dev100.jsonl)")
    ap.add_argument("--questions", type=int, default=DEFAULT_QUESTIONS, help="how many questions to use")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the paired gRPC comparison")
    ap.add_argument("--out", default=None, help="results JSON (default: bench/results/accounting_overhead.json)")
    args = ap.parse_args()
    engine = Ragpress(Settings(embedding_model="hashing"))
    path = Path(args.data) if args.data else data_file("hotpotqa", "hotpot_distractor_dev100.jsonl")
    qs = questions(path, args.questions)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        out = request_path(engine, qs, tmp)
        out.update(asyncio.run(grpc_latency(engine, qs, tmp, args.rounds)))
        out.update(ledger_throughput(tmp, 20000, 2000))
    out["record_share_of_grpc_compress"] = out["record_compress_us_median"] / 1000 / out["grpc_ms_median_no_ledger"]
    out["questions"] = len(qs)
    rows = [("Pipeline.compress, first pass (cold caches), median", f"{out['compress_ms_median']:.2f} ms"),
            ("Recorder.record_compress on the request path, median", f"{out['record_compress_us_median']:.1f} us"),
            ("  share of a warm gRPC Compress (no ledger)", f"{out['record_share_of_grpc_compress']:.2%}"),
            ("gRPC Compress, SQLite ledger + /metrics, median", f"{out['grpc_ms_median_sqlite_ledger']:.2f} ms"),
            ("gRPC Compress, ledger_url=none, median", f"{out['grpc_ms_median_no_ledger']:.2f} ms"),
            ("  median of paired ratios ledger / none", f"{out['grpc_paired_ratio_median']:.3f}"),
            ("SQLite ledger, 500-record batches", f"{out['sqlite_batched_records_per_s']:,.0f} records/s"),
            ("SQLite ledger, one commit per record", f"{out['sqlite_single_records_per_s']:,.0f} records/s")]
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"{a:<{width}}  {b:>18}")
    subset = args.data is not None or args.questions != DEFAULT_QUESTIONS
    target = results_path("accounting_overhead", subset, args.out)
    target.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
