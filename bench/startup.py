"""Service start-up: time from `ragpress serve` to health SERVING (models loaded and warm).

    .venv/bin/python bench/startup.py [--runs 3]

Prints a table and writes bench/results/startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run() -> dict:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "middleware.cli", "--log-level", "WARNING", "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    listening = serving = None
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.perf_counter() - started < 300:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
            except grpc.RpcError:
                time.sleep(0.05)
                continue
            listening = listening or time.perf_counter() - started
            if status == health_pb2.HealthCheckResponse.SERVING:
                serving = time.perf_counter() - started
                break
            time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    return {"listening_s": listening, "serving_s": serving}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    runs = [one_run() for _ in range(args.runs)]
    result = {"runs": runs,
              "median_listening_s": statistics.median(r["listening_s"] for r in runs),
              "median_serving_s": statistics.median(r["serving_s"] for r in runs)}
    print("| measure | median (s) |\n|---|---|")
    print(f"| process start to gRPC listening | {result['median_listening_s']:.2f} |")
    print(f"| process start to health SERVING (warm) | {result['median_serving_s']:.2f} |")
    out = HERE / "results" / "startup.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
