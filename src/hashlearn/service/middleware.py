"""ASGI middleware guarding request bodies: size limit (413), time limit (408), ambiguous framing (400).

* A declared ``Content-Length`` over the limit is answered 413 at once; a streamed body is counted and
  cut at the limit.
* A body that stops arriving (``Content-Length: 1000`` and 6 bytes sent) is answered 408 after
  ``timeout`` seconds, and the connection is closed, instead of being held open.
* A request with both ``Content-Length`` and ``Transfer-Encoding`` is refused (400): the two framings
  could disagree (request smuggling).
"""

from __future__ import annotations

import asyncio
import json

__all__ = ["BodyGuard"]


async def _answer(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


async def _within(awaitable, seconds: float):
    """``await awaitable`` with a time limit (``asyncio.timeout`` where it exists: no extra task)."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


class BodyGuard:
    def __init__(self, app, max_bytes: int, timeout: float):
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers", ()))
        if b"transfer-encoding" in headers and b"content-length" in headers:
            return await _answer(send, 400, "a request may not carry both Content-Length and Transfer-Encoding")
        if b"content-length" in headers:
            try:
                declared = int(headers[b"content-length"])
            except ValueError:
                declared = -1
            if declared < 0:
                return await _answer(send, 400, "Content-Length is not a non-negative integer")
            if declared > self.max_bytes:
                return await _answer(send, 413, f"request body of {declared} bytes exceeds the limit of {self.max_bytes} bytes")
        seen = 0
        body_done = started = rejected = False

        async def guarded_receive():
            nonlocal seen, body_done, rejected
            if rejected:
                return {"type": "http.disconnect"}
            if body_done:
                return await receive()  # e.g. waiting for a disconnect while a response streams
            try:
                message = await _within(receive(), self.timeout)
            except asyncio.TimeoutError:
                rejected = True
                if not started:
                    await _answer(send, 408, f"the request body did not arrive within {self.timeout:g} seconds")
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if not message.get("more_body", False):
                    body_done = True
                if seen > self.max_bytes:
                    # Answer 413 now and tell the app the client went away; its own answer is dropped.
                    rejected = True
                    if not started:
                        await _answer(send, 413, f"request body of more than {self.max_bytes} bytes exceeds the "
                                                 f"limit of {self.max_bytes} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal started
            if rejected:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if not rejected:
                raise
