"""What the API does before routing: cap and time the body, answer the hot route.

* :class:`BodyLimit` reads a request's body before anything else does: over
  :data:`~gridtopo.api.limits.MAX_BODY_BYTES` it answers 413 at once, and a body that has
  not fully arrived :data:`~gridtopo.api.limits.BODY_TIMEOUT_SECONDS` after the request began
  (a stalled upload) 408 — both as problem documents, closing the connection;
* :class:`StatusFastPath` answers ``GET /v1/customers/{id}/status`` without the framework.

Stalled connections between requests are closed by uvicorn after ``timeout_keep_alive``
(:data:`~gridtopo.api.limits.KEEP_ALIVE_SECONDS`).
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridtopo.api.errors import BodyTimeoutError
from gridtopo.api.limits import BODY_TIMEOUT_SECONDS, MAX_BODY_BYTES
from gridtopo.api.problems import error_problem, problem, send_problem
from gridtopo.api.service import Service

CLOSE = ("connection", "close")


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
        status, headers, body = self.service.customer_status(scope["headers"], customer)
        await send({"type": "http.response.start", "status": status, "headers": [
            *headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware reading a request body whole, within ``limit`` bytes and ``timeout``
    seconds, before handing it on (413 or 408 otherwise; see the module docstring).

    A declared ``Content-Length`` over the limit is refused before reading; a request
    declaring neither ``Content-Length`` nor ``Transfer-Encoding`` has no body and passes
    as is. A client that disconnects mid-body gets no answer."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES,
                 timeout: float = BODY_TIMEOUT_SECONDS) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._too_large(send)
            return
        body = bytearray()
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                err = BodyTimeoutError(f"the request body did not arrive within "
                                       f"{self.timeout:g} s")
                document, extra = error_problem(err)
                await send_problem(send, document, [*extra.items(), CLOSE])
                return
            if message["type"] != "http.request":
                return  # the client went away
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
        await send_problem(send, problem(413, f"request body over {self.limit} bytes",
                                         kind="body-too-large"), [CLOSE])
