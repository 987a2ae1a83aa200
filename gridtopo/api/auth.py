"""Which API key a request presents, read once, and the route class that checks it first.

A key comes in ``X-API-Key: gt_…`` or ``Authorization: Bearer gt_…``. :func:`presented_key`
is the one reading of those headers, for the framework's routes and the status fast path
alike: a repeated ``X-API-Key`` or ``Authorization`` header, or the two headers naming
different keys, is :class:`~gridtopo.api.errors.AmbiguousKeyError` (400) — a proxy that
adds a key must not let the client's own be read instead on some routes.

:class:`KeyedRoute` checks the key, and the route's scope, before FastAPI reads the path,
query or body: a request without a valid key gets 401 whatever else is wrong with it, and
nothing about a route's parameters is revealed to an unauthenticated caller.

>>> presented_key([(b"authorization", b"Bearer gt_abc")])
'gt_abc'
>>> presented_key([(b"x-api-key", b"gt_abc"), (b"authorization", b"Bearer gt_abc")])
'gt_abc'
>>> presented_key([(b"x-api-key", b"gt_a"), (b"x-api-key", b"gt_b")])
Traceback (most recent call last):
gridtopo.api.errors.AmbiguousKeyError: 2 X-API-Key headers: send one key, once
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.routing import APIRoute

from gridtopo.api.errors import AmbiguousKeyError
from gridtopo.api.keys import KeyInfo

SCOPE_FIELD = "x-required-scope"
"""The OpenAPI operation field naming the scope a :class:`KeyedRoute` needs."""
SECURITY_SCHEMES = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "An API key from `gridtopo apikey create` (gt_…)."},
    "Bearer": {"type": "http", "scheme": "bearer",
               "description": "The same key as `Authorization: Bearer gt_…`."},
}
SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}, {"Bearer": []}]
"""The security requirement of every keyed route: either scheme."""


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The API key of a request's raw (ASGI) headers, or None when it presents none;
    :class:`AmbiguousKeyError` when it presents several (see the module docstring)."""
    keys: list[str] = []
    bearers: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"x-api-key":
            keys.append(value.decode("latin-1").strip())
        elif lowered == b"authorization":
            bearers.append(value.decode("latin-1").strip())
    for header, values in (("X-API-Key", keys), ("Authorization", bearers)):
        if len(values) > 1:
            raise AmbiguousKeyError(f"{len(values)} {header} headers: send one key, once")
    key = keys[0] if keys else None
    bearer = None
    if bearers and bearers[0][:7].lower() == "bearer ":
        bearer = bearers[0][7:].strip() or None
    if key and bearer and key != bearer:
        raise AmbiguousKeyError("X-API-Key and Authorization name different keys: send one")
    return key or bearer


def request_key(request: Request) -> KeyInfo:
    """The key :class:`KeyedRoute` checked for this request (a route's dependency)."""
    key: KeyInfo = request.state.api_key
    return key


class KeyedRoute(APIRoute):
    """A route needing an API key with the scope in its OpenAPI ``x-required-scope``: the
    key is checked (401, 403, 400) before anything else of the request is parsed; the route
    reads it with :func:`request_key`. Routes without that field are open (``/health``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The framework's handler, behind the key check."""
        handler = super().get_route_handler()
        scope = (self.openapi_extra or {}).get(SCOPE_FIELD)
        if scope is None:
            return handler

        async def keyed(request: Request) -> Response:
            service = request.app.state.service
            key = presented_key(request.scope["headers"])
            request.state.api_key = await run_in_threadpool(service.authorize, key, scope)
            return await handler(request)

        return keyed


def keyed(scope: str) -> dict[str, Any]:
    """The ``openapi_extra`` of a route needing ``scope``: the scope for :class:`KeyedRoute`
    and the security requirement for the OpenAPI document."""
    return {SCOPE_FIELD: scope, "security": SECURITY}
