"""Every error the API answers is an RFC 7807 problem document, and no error drops a connection.

A problem document is ``application/problem+json``::

    {"type": "urn:gridtopo:problem:unknown-id", "title": "Not Found", "status": 404,
     "detail": "unknown customer id(s): NO-SUCH"}

``type`` names the kind of problem: for a :class:`~gridtopo.errors.GridtopoError` its class
(``AuthenticationError`` → ``authentication``, ``UnknownIdError`` → ``unknown-id``), for the
framework's own refusals ``not-found`` (no such route), ``method-not-allowed``,
``invalid-request`` (422, with ``errors``: each refused field as ``{loc, msg}``),
``body-too-large``, ``request-timeout`` and ``internal`` (500, naming only the exception's
class: no SQL, path or traceback reaches a client). A :class:`RetryLaterError` adds
``Retry-After``.

:class:`CatchAll` is the outermost middleware: an exception anywhere below it is logged and
answered with a 500 problem document, so uvicorn never sees it — uvicorn closes the
keep-alive connection after an exception, which failed the client's next request.

>>> problem(404, "unknown customer id(s): NO-SUCH", kind="unknown-id")["title"]
'Not Found'
>>> problem_kind(RetryLaterError("busy", 5))
'retry-later'
"""

from __future__ import annotations

import http
import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridtopo.api.errors import RetryLaterError
from gridtopo.api.schemas import json_body
from gridtopo.errors import GridtopoError

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:gridtopo:problem:"
MAX_PROBLEMS = 20
"""Validation problems one 422 answer lists at most."""
log = logging.getLogger(__name__)


def problem_kind(err: GridtopoError) -> str:
    """The ``type`` suffix of ``err``: its class name without ``Error``, in kebab case."""
    name = type(err).__name__.removesuffix("Error") or "error"
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()


def problem(status: int, detail: str, *, kind: str | None = None, **extra: Any
            ) -> dict[str, Any]:
    """The problem document of an answer with ``status`` (``kind`` defaults to the status
    phrase, e.g. ``not-found``)."""
    title = http.HTTPStatus(status).phrase
    kind = kind or title.lower().replace(" ", "-")
    return {"type": TYPE_PREFIX + kind, "title": title, "status": status, "detail": detail,
            **extra}


def error_problem(err: GridtopoError) -> tuple[dict[str, Any], dict[str, str]]:
    """The problem document and headers answering ``err`` with its own status."""
    headers = dict(err.http_headers)
    if isinstance(err, RetryLaterError):
        headers["Retry-After"] = str(err.retry_after)
    return problem(err.http_status, str(err), kind=problem_kind(err)), headers


def problem_response(document: dict[str, Any], headers: dict[str, str] | None = None
                     ) -> Response:
    """``document`` as a framework response."""
    return Response(json_body(document), document["status"], headers or None,
                    media_type=PROBLEM_MEDIA_TYPE)


async def send_problem(send: Send, document: dict[str, Any],
                       headers: Sequence[tuple[str, str]] = ()) -> None:
    """Send ``document`` as a complete ASGI response (for middleware, ahead of the framework)."""
    body = json_body(document)
    await send({"type": "http.response.start", "status": document["status"], "headers": [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers)]})
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- handlers


async def on_gridtopo_error(_: Request, err: Exception) -> Response:
    """Any :class:`GridtopoError` with its class's own status and headers."""
    assert isinstance(err, GridtopoError)
    return problem_response(*error_problem(err))


async def on_invalid(_: Request, err: Exception) -> Response:
    """A request the schemas refuse: 422 with where and what (never the refused value)."""
    assert isinstance(err, RequestValidationError)
    errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg"))} for e in err.errors()]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"]) or "request"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return problem_response(problem(422, f"{where}: {first['msg']}{more}",
                                    kind="invalid-request", errors=errors[:MAX_PROBLEMS]))


async def on_http_error(_: Request, err: Exception) -> Response:
    """The framework's own refusals (no such route 404, method not allowed 405, a body it
    cannot parse 400) as problem documents."""
    assert isinstance(err, HTTPException)
    detail = err.detail if isinstance(err.detail, str) else http.HTTPStatus(err.status_code
                                                                            ).phrase
    return problem_response(problem(err.status_code, detail), dict(err.headers or {}))


class CatchAll:
    """Outermost middleware: an exception below is logged with its traceback and answered
    with a 500 problem document naming only its class — the connection stays usable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as err:
            log.exception("internal error answering %s %s", scope.get("method"),
                          scope.get("path"))
            if not started:
                await send_problem(send, problem(
                    500, f"internal error ({type(err).__name__})", kind="internal"))
