"""The OpenAPI document: security schemes, and every status each route answers.

Keyed routes declare the API-key security requirement (``X-API-Key`` header, or the same key
as a bearer token) and the scope they need (``x-required-scope``); every route lists the
statuses it can answer — its success with its schema, each error with the
:class:`~gridtopo.api.schemas.Problem` schema as ``application/problem+json`` — so that a
client (and schemathesis) can check every answer against the document.

>>> sorted(answers(404))
[200, 400, 401, 403, 404, 422, 500]
>>> list(answers(404)[404]["content"])
['application/problem+json']
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from gridtopo.api.auth import SECURITY_SCHEMES
from gridtopo.api.problems import PROBLEM_MEDIA_TYPE
from gridtopo.api.schemas import Problem

KEYED = (400, 401, 403, 422, 500)
"""What every keyed route can answer: two keys (400), no valid key (401), a missing scope
(403), a malformed id, query or body (422), a bug (500)."""
WHY = {
    400: "More than one API key presented, or a body that cannot be read.",
    401: "No API key, or an unknown, revoked or expired one.",
    403: "The key lacks the route's scope.",
    404: "An unknown id (named in detail).",
    408: "The request body did not arrive in time.",
    409: "An event that cannot change that way.",
    413: "A request body over 1 MiB.",
    422: "A malformed request: each refused field in errors.",
    429: "The key read its limit of personal data for now: see Retry-After.",
    500: "A bug: the error's class only, nothing internal.",
    503: "The database holds a newer model than this worker serves yet: see Retry-After.",
}


def answers(*statuses: int, model: type[BaseModel] | None = None, keyed: bool = True
            ) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route answering ``statuses`` (and those of every keyed route
    when ``keyed``, 200 when no success is among them): the success with ``model``'s schema,
    or any JSON object, and each error as a problem document."""
    codes = set(statuses) | ({*KEYED} if keyed else {500})
    if not any(code < 300 for code in codes):
        codes.add(200)
    result: dict[int | str, dict[str, Any]] = {}
    for code in sorted(codes):
        if code < 300:
            result[code] = {"model": model} if model else {"content": {
                "application/json": {"schema": {"type": "object"}}}}
        else:
            result[code] = {"description": WHY[code], "content": {PROBLEM_MEDIA_TYPE: {
                "schema": {"$ref": "#/components/schemas/Problem"}}}}
    return result


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with the security schemes and the problem schema added
    (built once, then cached on the app)."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
        components = document.setdefault("components", {})
        components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}")
        components["securitySchemes"] = SECURITY_SCHEMES
        app.openapi_schema = document
    return app.openapi_schema
