"""The gRPC server on grpc.aio: health, reflection, the error interceptor, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from middleware.interceptors import ErrorInterceptor
from middleware.library import Ragpress
from middleware.service import SERVICE_NAME, RagpressServicer
from middleware.settings import Settings
from ragpress.v1 import ragpress_pb2_grpc as pb_grpc

log = logging.getLogger("ragpress.server")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    engine: Ragpress
    executor: ThreadPoolExecutor
    ready: asyncio.Task
    # middleware.accounting Recorder (ledger + metrics) and HttpEndpoint (None when metrics_port is -1).
    recorder: Any = None
    http: Any = None

    @property
    def metrics_port(self) -> int | None:
        return self.http.port if self.http is not None else None

    @property
    def address(self) -> str:
        return f"{self.engine.settings.host}:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking calls, let in-flight ones finish within ``grace`` seconds, release threads."""
        await self.health.enter_graceful_shutdown()
        self.ready.cancel()
        await self.server.stop(self.engine.settings.drain_seconds if grace is None else grace)
        self.executor.shutdown(wait=False, cancel_futures=True)
        # In-flight calls have finished and recorded: now write every pending usage record.
        if self.recorder is not None:
            await asyncio.to_thread(self.recorder.close)
        if self.http is not None:
            await asyncio.to_thread(self.http.close)


async def start(settings: Settings, engine: Ragpress | None = None) -> RunningServer:
    """Bind (port 0 picks a free one), start, and warm up in the background.

    Health reports NOT_SERVING until the models are loaded and have run once.
    """
    from middleware.accounting import Recorder, prices
    from middleware.accounting.http import HttpEndpoint

    engine = engine or Ragpress(settings)
    executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="ragpress-worker")
    recorder = Recorder(settings)
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.aio.server(interceptors=[ErrorInterceptor(observer=recorder.metrics)], options=options)
    pb_grpc.add_RagpressServiceServicer_to_server(
        RagpressServicer(settings, engine.pipeline, executor, recorder, engine.generator,
                         collections=engine.collections, demonstrations=engine.demonstrations), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    if port == 0:
        recorder.close()
        raise OSError(f"could not bind {settings.host}:{settings.port}")
    http = None
    if settings.metrics_port >= 0:
        try:
            http = HttpEndpoint(recorder, settings.host, settings.metrics_port)
        except OSError:
            recorder.close()
            raise
        log.info("metrics on http://%s:%d/metrics, dashboard on /dashboard", settings.host, http.port)
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, NOT_SERVING)
    await server.start()

    async def warm() -> None:
        started = time.perf_counter()
        if settings.warm_up:
            try:
                await asyncio.get_running_loop().run_in_executor(executor, engine.warm_up)
                # litellm's price map takes seconds to import; load it before traffic arrives.
                await asyncio.get_running_loop().run_in_executor(
                    executor, prices.prompt_cost, settings.default_model, 1)
            except Exception:
                log.exception("warm-up failed; health stays NOT_SERVING")
                raise
        for name in ("", SERVICE_NAME):
            await health_servicer.set(name, SERVING)
        log.info("SERVING on %s:%d (warm-up %.1f s)", settings.host, port, time.perf_counter() - started)

    ready = asyncio.create_task(warm())
    return RunningServer(server, port, health_servicer, engine, executor, ready, recorder, http)


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then drain gracefully."""
    running = await start(settings)
    log.info("listening on %s:%d", settings.host, running.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("draining for up to %.1f s", settings.drain_seconds)
    await running.stop()
    log.info("stopped")
