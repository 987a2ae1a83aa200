"""What the API does before routing: read the key, cap the body, answer the hot route.

* :func:`request_key` reads a request's API key (``X-API-Key``, else ``Authorization:
  Bearer``);
* :class:`BodyLimit` refuses bodies over :data:`MAX_BODY_BYTES` with 413 before anything
  reads them whole;
* :class:`StatusFastPath` answers ``GET /v1/customers/{id}/status`` without the framework.

>>> request_key({"authorization": "Bearer gt_abc"}.get)
'gt_abc'
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridtopo.api.service import Service

MAX_BODY_BYTES = 1 << 20
"""The largest request body accepted (1 MiB: about 65,000 thirteen-digit customer ids)."""


def request_key(header: Callable[[str], str | None]) -> str | None:
    """The API key of a request: ``X-API-Key``, else ``Authorization: Bearer``."""
    key = header("x-api-key")
    bearer = header("authorization") or ""
    if not key and bearer.lower().startswith("bearer "):
        key = bearer[7:].strip()
    return key


async def _answer(send: Send, status: int, body: bytes,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Send a complete JSON response."""
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class StatusFastPath:
    """ASGI middleware answering ``GET /v1/customers/{id}/status`` without the framework.

    The route is what channels hammer (95598 IVR, app, WeChat); answering it before routing,
    validation and response objects triples the requests a worker serves. The FastAPI route
    of the same path documents it in OpenAPI and gives the same answers
    (:meth:`Service.customer_status`).
    """

    PREFIX, SUFFIX = "/v1/customers/", "/status"

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (scope["type"] != "http" or scope["method"] != "GET"
                or not path.startswith(self.PREFIX) or not path.endswith(self.SUFFIX)):
            await self.app(scope, receive, send)
            return
        customer = path[len(self.PREFIX):-len(self.SUFFIX)]
        if not customer or "/" in customer:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        status, extra, body = self.service.customer_status(request_key(headers.get), customer)
        await _answer(send, status, body, extra)


class BodyLimit:
    """ASGI middleware refusing request bodies over ``limit`` bytes with 413.

    A declared ``Content-Length`` is checked at once; a body without one (chunked) is read
    up to the limit here and handed on only when it fits.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.limit:
                await self._too_large(send)
                return
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._too_large(send)
                return
            if not message.get("more_body", False):
                break
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body over {self.limit} bytes"}).encode()
        await _answer(send, 413, body)
