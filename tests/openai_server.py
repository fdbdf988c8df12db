"""A small OpenAI-compatible chat-completions server (aiohttp) for tests, on loopback.

It is a real HTTP server: litellm talks to it over TCP exactly as it would to
vLLM or OpenAI. Behaviour per test is set through :class:`Behaviour`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Behaviour:
    reply: str = "Paris has 2,102,650 inhabitants."
    # Fail this many requests with `fail_status` before answering.
    fail_first: int = 0
    fail_status: int = 500
    # A Retry-After header on those failures (seconds or an HTTP date), when set.
    retry_after: str = ""
    # Seconds to wait before answering (a slow upstream).
    delay: float = 0.0
    # Drop the connection without an answer for this many requests (a reset).
    reset_first: int = 0
    requests: list = field(default_factory=list)
    # time.monotonic() and time.time() at each request's arrival.
    arrivals: list = field(default_factory=list)
    arrived_at: list = field(default_factory=list)
    cancelled: int = 0
    completed: int = 0


class OpenAIServer:
    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self, **kw) -> Behaviour:
        self.behaviour = Behaviour(**kw)
        return self.behaviour

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        # handler_cancellation: a client that hangs up cancels the handler, which is how
        # the tests see that a cancelled gRPC call cancelled the upstream request.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        b = self.behaviour
        body = await request.json()
        b.requests.append(body)
        b.arrivals.append(time.monotonic())
        b.arrived_at.append(time.time())
        try:
            if b.reset_first > 0 and request.transport is not None:
                b.reset_first -= 1
                request.transport.close()  # the client sees the connection drop; this handler is cancelled
                await asyncio.sleep(3600)
            if b.fail_first > 0:
                b.fail_first -= 1
                return web.json_response({"error": {"message": "upstream exploded", "type": "server_error"}},
                                         status=b.fail_status,
                                         headers={"Retry-After": b.retry_after} if b.retry_after else None)
            if b.delay:
                await asyncio.sleep(b.delay)
            words = b.reply.split(" ")
            usage = {"prompt_tokens": 42, "completion_tokens": len(words), "total_tokens": 42 + len(words)}
            if body.get("stream"):
                return await self._stream(request, body, words, usage)
            b.completed += 1
            return web.json_response({
                "id": "cmpl-1", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": b.reply}}],
                "usage": usage})
        except asyncio.CancelledError:
            b.cancelled += 1
            raise

    async def _stream(self, request: web.Request, body: dict, words: list[str], usage: dict) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        base = {"id": "cmpl-2", "object": "chat.completion.chunk", "created": int(time.time()), "model": body["model"]}
        for i, word in enumerate(words):
            delta = {"content": (" " if i else "") + word}
            chunk = dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": None}])
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
            await asyncio.sleep(0.01)
        end = dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])
        await resp.write(f"data: {json.dumps(end)}\n\n".encode())
        await resp.write(f"data: {json.dumps(dict(base, choices=[], usage=usage))}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        self.behaviour.completed += 1
        await resp.write_eof()
        return resp
