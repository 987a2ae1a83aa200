"""The API's edge: every value bounded (422, not 500), the key read once and checked first,
every error a problem document, and no error or stalled body that drops or holds a connection —
through TestClient and a real uvicorn server on 127.0.0.1 (raw sockets where the connection
itself is the point)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gridtopo.api.app import create_app
from gridtopo.api.keys import create_key
from gridtopo.api.limits import KEEP_ALIVE_SECONDS
from gridtopo.api.public_routes import PUBLIC_PATHS
from gridtopo.api.schemas import MAX_EVENT_ID, MAX_ID_LENGTH
from gridtopo.api.server import PROTOCOL
from gridtopo.db import open_engine
from gridtopo.topology.index import load_index
from tests.conftest import BACKENDS, _clone
from tests.test_api_service import _free_port
from tests.test_outage_events import Oracle, _fuse_with_customers

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The store under test, once per module: the many refusals here share one model copy."""
    return str(request.param)


@pytest.fixture(scope="module")
def edge(backend: str, request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The API over a copy of the model (one per store for the module), with its keys."""
    root = tmp_path_factory.mktemp(f"edge-{backend}")
    clone = _clone(backend, root, request, "sqlite_model_template", "pg_model_template")
    url = next(clone)
    engine = open_engine(url)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # the PostgreSQL model's index goes to the working directory
        app = create_app(engine, load_index(engine), refresh_seconds=0, key_cache_seconds=0,
                         body_timeout_seconds=0.5)
        fuse, below = _fuse_with_customers(Oracle(engine))
        yield {"app": app, "engine": engine, "fuse": fuse, "customer": sorted(below)[0],
               "admin": create_key(engine, "admin", ["admin"])[0],
               "reader": create_key(engine, "reader", ["outage:read"])[0]}
    engine.dispose()
    next(clone, None)


def _events(client: TestClient) -> int:
    total: int = client.get("/v1/outages").json()["total"]
    return total


@pytest.fixture
def client(edge: dict[str, Any]) -> TestClient:
    return TestClient(edge["app"], raise_server_exceptions=False,
                      headers={"X-API-Key": edge["admin"]})


def _is_problem(r: Any, status: int) -> dict[str, Any]:
    """The answer's problem document, checked for its media type and members."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    doc: dict[str, Any] = r.json()
    assert doc["status"] == status and doc["type"].startswith("urn:gridtopo:problem:")
    assert isinstance(doc["title"], str) and isinstance(doc["detail"], str)
    return doc


NUL, ZWSP, RLO = "\u0000", "\u200b", "\u202e"


@pytest.mark.parametrize(("method", "url", "body"), [
    ("GET", "/v1/customers/{customer}%00/status", None),          # the fast path
    ("GET", "/v1/customers/{customer}%E2%80%8B/status", None),
    ("GET", "/v1/customers/%20%20/status", None),
    ("GET", "/v1/customers/{customer}%0A/upstream", None),
    ("GET", "/v1/devices/{fuse}%C2%9B/downstream", None),
    ("GET", "/v1/devices/" + "X" * (MAX_ID_LENGTH + 1) + "/downstream", None),
    ("POST", "/v1/impact", {"devices": ["{fuse}" + NUL]}),
    ("POST", "/v1/impact", {"devices": ["{fuse}"], "close": [RLO + "SB-1"]}),
    ("POST", "/v1/impact", {"devices": ["   "]}),
    ("POST", "/v1/outages", {"devices": ["{fuse}" + NUL]}),
    ("POST", "/v1/predict", {"customers": ["{customer}" + ZWSP]}),
    ("POST", "/v1/calls", {"call_id": "c1" + NUL, "customer_id": "{customer}",
                           "trouble": "no_supply"}),
    ("POST", "/v1/calls", {"call_id": "c1", "customer_id": "{customer}" + ZWSP,
                           "trouble": "no_supply"}),
    ("GET", "/v1/customers?customer_id={customer}%00", None),
    ("GET", "/v1/customers?q=%E5%B0%8F%00", None),
    ("POST", "/v1/meter-events", {"events": [{"meter_id": "M" + RLO, "kind": "power_off",
                                              "at": "2026-12-07T08:00:00Z"}]}),
])
def test_ids_with_control_or_invisible_characters_are_refused(
        client: TestClient, edge: dict[str, Any], method: str, url: str, body: Any) -> None:
    fill = {"customer": edge["customer"], "fuse": edge["fuse"]}
    content = None if body is None else json.dumps(body).replace("{fuse}", fill["fuse"]).replace(
        "{customer}", fill["customer"])
    r = client.request(method, url.format(**fill), content=content,
                       headers={"content-type": "application/json"})
    doc = _is_problem(r, 422)
    assert doc["type"] == "urn:gridtopo:problem:invalid-request" and doc["errors"]
    assert "characters" in doc["detail"]


def test_ids_are_stripped_and_a_nul_suffix_never_passes_for_the_id(
        client: TestClient, edge: dict[str, Any]) -> None:
    padded = client.post("/v1/impact", json={"devices": [f" {edge['fuse']} "]})
    assert padded.status_code == 200 and padded.json()["devices"] == [edge["fuse"]]
    status = client.get(f"/v1/customers/%20{edge['customer']}/status")
    assert status.status_code == 200 and status.json()["customer_id"] == edge["customer"]
    before = _events(client)
    r = client.post("/v1/outages", json={"devices": [edge["fuse"] + NUL]})
    assert r.status_code == 422
    assert _events(client) == before  # nothing stored


@pytest.mark.parametrize("event_id", ["0", "-1", str(MAX_EVENT_ID + 1), str(2**63),
                                      "1" + "0" * 30, "1.5", "abc"])
@pytest.mark.parametrize("suffix", ["", "/customers"])
def test_event_ids_outside_the_column_are_refused(client: TestClient, event_id: str,
                                                  suffix: str) -> None:
    doc = _is_problem(client.get(f"/v1/outages/{event_id}{suffix}"), 422)
    assert doc["errors"][0]["loc"] == ["path", "event_id"]
    _is_problem(client.post(f"/v1/outages/{event_id}/close"), 422)


def test_the_largest_event_id_is_looked_up(client: TestClient) -> None:
    assert "outage event" in _is_problem(client.get(f"/v1/outages/{MAX_EVENT_ID}"), 404)[
        "detail"]


@pytest.mark.parametrize(("field", "value"), [
    ("started_at", "0001-01-01T00:00:00+14:00"),
    ("started_at", "9999-12-31T23:59:59-14:00"),
    ("expected_end", "1899-12-31T23:59:59Z"),
    ("expected_end", "10000-01-01T00:00:00Z"),
    ("started_at", "2026-02-30T00:00:00Z"),
    ("reason", "fault" + NUL),
    ("reason", "\u001b[31mred"),
    ("reason", "x" * 1001),
    ("kind", "accidental"),
])
def test_bad_datetimes_and_texts_are_refused(client: TestClient, edge: dict[str, Any],
                                             field: str, value: str) -> None:
    before = _events(client)
    doc = _is_problem(client.post("/v1/outages", json={"devices": [edge["fuse"]],
                                                       field: value}), 422)
    assert doc["errors"][0]["loc"] == ["body", field]
    assert _events(client) == before


def test_the_bounds_themselves_are_accepted_and_stored(client: TestClient,
                                                       edge: dict[str, Any]) -> None:
    r = client.post("/v1/outages", json={
        "devices": [edge["fuse"]], "kind": "planned", "started_at": "1900-01-01T08:00:00+08:00",
        "expected_end": "9999-12-31T23:59:59Z", "reason": "line 1\nline 2\ttab"})
    assert r.status_code == 201, r.text
    event = client.get(f"/v1/outages/{r.json()['id']}").json()
    assert event["started_at"].startswith("1900-01-01 00:00:00")
    assert event["expected_end"].startswith("9999-12-31 23:59:59")
    assert event["reason"] == "line 1\nline 2\ttab"
    _is_problem(client.post(f"/v1/outages/{event['id']}/close",
                            json={"ended_at": "0001-01-01T00:00:00+14:00"}), 422)
    closed = client.post(f"/v1/outages/{event['id']}/close",
                         json={"ended_at": "2000-01-01T00:00:00Z"})
    assert closed.status_code == 200 and closed.json()["customer_minutes"] > 0


@pytest.mark.parametrize("query", ["limit=0", f"limit={10**6}", f"offset={2**31}",
                                   "offset=-1", f"offset={10**30}", "status=open"])
def test_pages_are_bounded(client: TestClient, edge: dict[str, Any], query: str) -> None:
    _is_problem(client.get(f"/v1/outages?{query}"), 422)
    if query.startswith(("limit", "offset")):
        _is_problem(client.get(f"/v1/outages/1/customers?{query}"), 422)


@pytest.mark.parametrize(("method", "url", "body"), [
    ("POST", "/v1/impact", b"{not json"),
    ("POST", "/v1/impact", b"{}"),
    ("POST", "/v1/impact", b'{"devices": "SB-1"}'),
    ("POST", "/v1/outages", b'{"started_at": "9999-12-31T23:59:59-14:00"}'),
    ("POST", "/v1/outages/abc/close", b"[]"),
    ("GET", "/v1/outages/-5/customers?limit=0", None),
    ("GET", "/v1/customers/%00/status", None),
    ("GET", "/v1/devices/%00/downstream", None),
    ("POST", "/v1/calls", b"{}"),
    ("POST", "/v1/meter-events", b"[]"),
    ("POST", "/v1/predictions/1/confirm", b"{}"),
])
def test_no_key_is_401_before_anything_else_is_looked_at(
        edge: dict[str, Any], method: str, url: str, body: bytes | None) -> None:
    anonymous = TestClient(edge["app"], raise_server_exceptions=False)
    r = anonymous.request(method, url, content=body,
                          headers={"content-type": "application/json"})
    doc = _is_problem(r, 401)
    assert r.headers["www-authenticate"] == "ApiKey" and "errors" not in doc
    wrong_scope = anonymous.request(method, url, content=body, headers={
        "content-type": "application/json", "X-API-Key": edge["reader"]})
    if method == "POST" and url != "/v1/impact":  # outage:write routes
        _is_problem(wrong_scope, 403)


@pytest.mark.parametrize("url", ["/v1/customers/{customer}/status",
                                 "/v1/customers/{customer}/upstream", "/v1/outages"])
def test_one_key_once(edge: dict[str, Any], url: str) -> None:
    """Duplicate or conflicting key headers are 400 on the fast path and the framework alike;
    the same key in both headers is one key."""
    anonymous = TestClient(edge["app"], raise_server_exceptions=False)
    url = url.format(customer=edge["customer"])
    admin, reader = edge["admin"], edge["reader"]
    for headers in ([("X-API-Key", admin), ("X-API-Key", reader)],
                    [("X-API-Key", admin), ("X-API-Key", admin)],
                    [("X-API-Key", reader), ("Authorization", f"Bearer {admin}")],
                    [("Authorization", f"Bearer {admin}"), ("Authorization", f"Bearer {admin}")]):
        doc = _is_problem(anonymous.get(url, headers=headers), 400)
        assert doc["type"] == "urn:gridtopo:problem:ambiguous-key"
        assert admin not in doc["detail"] and reader not in doc["detail"]
    both = anonymous.get(url, headers=[("X-API-Key", reader), ("Authorization",
                                                                f"bearer {reader}")])
    assert both.status_code == 200


def test_framework_errors_are_problem_documents(client: TestClient,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert _is_problem(client.get("/v1/nowhere"), 404)["type"].endswith(":not-found")
    assert _is_problem(client.delete("/v1/impact"), 405)["type"].endswith(
        ":method-not-allowed")
    doc = _is_problem(client.post("/v1/impact", json={"devices": [], "close": []}), 422)
    assert "at least one device" in doc["detail"]
    assert _is_problem(client.post("/v1/outages/424242/close"), 404)["type"].endswith(
        ":event-not-found")

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("SELECT secret FROM /var/lib/gridtopo")

    monkeypatch.setattr("gridtopo.api.routes.queries.upstream", broken)
    doc = _is_problem(client.get("/v1/customers/X/upstream"), 500)
    assert doc == {"type": "urn:gridtopo:problem:internal", "title": "Internal Server Error",
                   "status": 500, "detail": "internal error (RuntimeError)"}


def test_openapi_declares_the_key_and_every_answer(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": "An API key from `gridtopo apikey create` (gt_…)."}
    assert document["components"]["securitySchemes"]["Bearer"]["scheme"] == "bearer"
    problem = {"$ref": "#/components/schemas/Problem"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answers = operation["responses"]
            errors = {int(code) for code in answers if int(code) >= 400}
            for code in errors:
                assert answers[str(code)]["content"] == {PROBLEM: {"schema": problem}}
            if path in PUBLIC_PATHS:  # no key: /health, the public outage feed and map
                assert "security" not in operation and errors == {500}
                continue
            assert operation["security"] == [{"ApiKey": []}, {"Bearer": []}]
            assert operation["x-required-scope"] in ("outage:read", "outage:write",
                                                     "network:write", "calls:write",
                                                     "notify:read")
            assert {400, 401, 403, 422, 500} <= errors, (method, path)
    assert {429, 503} <= {int(c) for c in document["paths"]["/v1/impact"]["post"]["responses"]}
    assert {429, 503} <= {int(c) for c in document["paths"]["/v1/customers"]["get"]["responses"]}
    assert document["paths"]["/v1/calls"]["post"]["x-required-scope"] == "calls:write"
    assert {201, 409} <= {int(c) for c in document["paths"]["/v1/calls"]["post"]["responses"]}


# --------------------------------------------------------------------------- connections


@pytest.fixture
def live(edge: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """A real uvicorn server (in a thread) on the edge app: (host, port)."""
    app: FastAPI = edge["app"]
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="critical",
                                           timeout_keep_alive=KEEP_ALIVE_SECONDS))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield "127.0.0.1", port
    server.should_exit = True
    thread.join(10)


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-response: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    headers = {k.lower(): v for k, v in headers.items()}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    return int(lines[0].split()[1]), headers, rest[:length]


def test_a_500_keeps_the_connection_usable(live: tuple[str, int], edge: dict[str, Any],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> None:
        raise ValueError("bug")

    monkeypatch.setattr("gridtopo.api.routes.queries.upstream", broken)
    key = edge["admin"]
    request = (f"GET /v1/customers/{edge['customer']}/upstream HTTP/1.1\r\nHost: x\r\n"
               f"X-API-Key: {key}\r\n\r\n").encode()
    health = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(live, timeout=10) as sock:
        sock.sendall(request)
        status, headers, body = _read_response(sock)
        assert status == 500 and headers["content-type"] == PROBLEM
        assert json.loads(body)["detail"] == "internal error (ValueError)"
        sock.sendall(health)  # the same connection answers the next request
        status, _, body = _read_response(sock)
        assert status == 200 and json.loads(body)["status"] == "ok"


def test_a_stalled_upload_is_answered_408_and_closed(live: tuple[str, int],
                                                     edge: dict[str, Any]) -> None:
    head = (f"POST /v1/impact HTTP/1.1\r\nHost: x\r\nX-API-Key: {edge['admin']}\r\n"
            "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n").encode()
    with socket.create_connection(live, timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(head + b'{"devices": [')
        status, headers, body = _read_response(sock)
        waited = time.monotonic() - started
        assert status == 408 and headers["content-type"] == PROBLEM
        assert headers["connection"] == "close" and "within 0.5 s" in json.loads(body)["detail"]
        assert sock.recv(1) == b""  # closed by the server
    assert waited < 10
    with socket.create_connection(live, timeout=10) as sock:  # the server serves on
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(sock)[0] == 200


def test_a_future_event_far_off_is_stored_on_both_stores(client: TestClient,
                                                          edge: dict[str, Any]) -> None:
    far = dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.UTC).isoformat()
    r = client.post("/v1/outages", json={"devices": [edge["fuse"]], "kind": "planned",
                                         "started_at": far})
    assert r.status_code == 201, r.text
    status = client.get(f"/v1/customers/{edge['customer']}/status").json()
    assert status["out"] is False and status["upcoming"][0]["id"] == r.json()["id"]


@pytest.mark.parametrize(("protocol", "nodelay"), [("h11", 0), (PROTOCOL, 1)])
def test_serve_turns_nagle_off_on_a_socket_bound_like_uvicorn_workers(
        edge: dict[str, Any], protocol: str, nodelay: int) -> None:
    """uvicorn's workers accept on a socket made as ``socket.socket(family)`` (protocol 0),
    which asyncio leaves with Nagle on: keep-alive answers waited for the client's delayed
    ACK. ``gridtopo serve``'s protocol turns it off on every connection."""
    listener = socket.socket(socket.AF_INET)  # as uvicorn's Config.bind_socket does
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(edge["app"], http=protocol, log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        with socket.create_connection(listener.getsockname(), timeout=10) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_response(sock)[0] == 200
            (connection,) = server.server_state.connections
            accepted = connection.transport.get_extra_info("socket")  # type: ignore[attr-defined]
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == nodelay
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
