"""A ragpress server on a loopback port, run in a background thread with its own
event loop, so that blocking clients (and LangChain's sync paths) can call it."""

from __future__ import annotations

import asyncio
import threading

from middleware.library import Ragpress
from middleware.server import RunningServer, start


class ThreadedServer:
    """``with ThreadedServer(engine) as srv: RagpressClient(srv.address)``."""

    def __init__(self, engine: Ragpress) -> None:
        self.engine = engine
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ragpress-test-server", daemon=True)
        self.running: RunningServer | None = None

    @property
    def address(self) -> str:
        assert self.running is not None
        return f"127.0.0.1:{self.running.port}"

    def __enter__(self) -> "ThreadedServer":
        self.thread.start()

        async def up() -> RunningServer:
            running = await start(self.engine.settings, self.engine)
            await running.ready
            return running

        self.running = asyncio.run_coroutine_threadsafe(up(), self.loop).result(timeout=120)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.running is not None:
            asyncio.run_coroutine_threadsafe(self.running.stop(grace=1), self.loop).result(timeout=30)
        # Libraries start background tasks on the loop they are first called from (litellm's
        # logging worker): end them here, or they complain when the closed loop is collected.
        asyncio.run_coroutine_threadsafe(_cancel_tasks(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


async def _cancel_tasks() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
