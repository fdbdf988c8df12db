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

from middleware.interceptors import ErrorInterceptor
from middleware import reflection
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
    # middleware.limits.Gate (calls in flight) and middleware.auth.KeyStore.
    gate: Any = None
    keys: Any = None
    monitor: asyncio.Task | None = None
    heavy: ThreadPoolExecutor | None = None

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
        if self.monitor is not None:
            self.monitor.cancel()
        await self.server.stop(self.engine.settings.drain_seconds if grace is None else grace)
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.heavy is not None:
            self.heavy.shutdown(wait=False, cancel_futures=True)
        # In-flight calls have finished and recorded: now write every pending usage record.
        if self.recorder is not None:
            await asyncio.to_thread(self.recorder.close)
        if self.http is not None:
            await asyncio.to_thread(self.http.close)
        from middleware.llm import completion

        await completion.shutdown()


async def start(settings: Settings, engine: Ragpress | None = None) -> RunningServer:
    """Bind (port 0 picks a free one), start, and warm up in the background.

    Health reports NOT_SERVING until the models are loaded and have run once.
    """
    from middleware.accounting import Recorder, prices
    from middleware.accounting.http import HttpEndpoint
    from middleware.auth import KeyStore, check_exposure
    from middleware.limits import Gate, Limits
    from middleware.tls import server_credentials

    keys = KeyStore.from_settings(settings)
    check_exposure(settings, keys)
    credentials = server_credentials(settings)
    gate = Gate.from_settings(settings)
    engine = engine or Ragpress(settings)
    executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="ragpress-worker")
    recorder = Recorder(settings)
    # A body past max_request_bytes is refused by grpc as it arrives, before it is read
    # and parsed (the 64 KiB leave room for framing; the interceptor names the setting
    # for anything between).
    receive = min(settings.max_message_bytes, settings.max_request_bytes + 64 * 1024)
    options = [
        ("grpc.max_receive_message_length", receive),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    interceptor = ErrorInterceptor(observer=recorder.metrics, keys=keys, gate=gate,
                                   limits=Limits.from_settings(settings))
    server = grpc.aio.server(interceptors=[interceptor], options=options)
    servicer = RagpressServicer(settings, engine.pipeline, executor, recorder, engine.generator,
                                collections=engine.collections, demonstrations=engine.demonstrations)
    heavy = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragpress-heavy")
    servicer.heavy_executor = heavy
    pb_grpc.add_RagpressServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable(server, (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name))
    address = f"{settings.host}:{settings.port}"
    port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    if port == 0:
        recorder.close()
        raise OSError(f"could not bind {settings.host}:{settings.port}")
    http = None
    if settings.metrics_port >= 0:
        try:
            http = HttpEndpoint(recorder, settings.metrics_host, settings.metrics_port,
                                keys=keys if keys.enabled else None)
        except OSError:
            recorder.close()
            raise
        log.info("metrics on http://%s:%d/metrics, dashboard on /dashboard", settings.metrics_host, http.port)
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
    monitor = asyncio.create_task(_readiness(health_servicer, gate, ready))
    return RunningServer(server, port, health_servicer, engine, executor, ready, recorder, http, gate, keys, monitor,
                         heavy)


async def _readiness(health_servicer: health.aio.HealthServicer, gate: Any, ready: asyncio.Task,
                     every: float = 0.5) -> None:
    """Readiness: the service's own health name goes NOT_SERVING while the gate is under
    pressure (calls in flight at the limit, memory over max_rss_bytes), so a load
    balancer or Kubernetes sends new calls elsewhere. The server-wide name ("") stays
    SERVING: that is liveness, and a busy process is alive."""
    shedding = False
    while True:
        await asyncio.sleep(every)
        if not ready.done() or ready.cancelled() or ready.exception() is not None:
            continue
        reason = gate.pressure()
        if bool(reason) != shedding:
            shedding = bool(reason)
            await health_servicer.set(SERVICE_NAME, NOT_SERVING if shedding else SERVING)
            log.warning("readiness %s%s", "NOT_SERVING: " if shedding else "SERVING again", reason)


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
