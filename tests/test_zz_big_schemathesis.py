"""schemathesis against a real server: uvicorn on 127.0.0.1 (a random port) over the model on
each store, the `st run` command line in a subprocess, every phase it has (examples, coverage,
fuzzing, stateful), with the checks that the server never errs (no 5xx), answers only
statuses the OpenAPI document lists and every answer matches its declared schema.

Bounded: a few dozen cases per operation and phase, a fixed seed, a timeout on the whole run.
The model's real ids are given to schemathesis as dictionaries, so that besides malformed
input it also sends requests that reach the model.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine

from gridtopo.api.app import create_app
from gridtopo.api.keys import create_key
from gridtopo.outages import events as outages
from gridtopo.topology.index import load_index
from tests.test_api_service import _free_port

EXAMPLES = 400
"""Cases per operation and phase."""
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
ST = [sys.executable, "-m", "schemathesis.cli"]
"""The `st` command line of this interpreter's schemathesis (a dev dependency)."""


@pytest.fixture
def fuzzed(model_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[dict[str, Any]]:
    """A real server on the model with an admin key, and the ids schemathesis may use."""
    monkeypatch.chdir(tmp_path)
    index = load_index(model_engine)
    event = outages.declare(model_engine, index, [index.edge_ids[1].decode()], reason="fuzz")
    app = create_app(model_engine, index, personal_per_minute=10**9)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    ties = [e.decode() for e, open_ in zip(index.edge_ids, index.edge_normal_open, strict=True)
            if open_]
    yield {"url": f"http://127.0.0.1:{port}",
           "key": create_key(model_engine, "fuzz", ["admin"])[0],
           "customers": [c.decode() for c in index.customer_ids[:: max(1, len(
               index.customer_ids) // 40)]],
           "devices": [e.decode() for e in index.edge_ids[:: max(1, len(index.edge_ids) // 40)]],
           "ties": ties or ["NONE"], "events": [event["id"]]}
    server.should_exit = True
    thread.join(10)


def _config(fuzzed: dict[str, Any]) -> str:
    """schemathesis.toml: the key in both headers (one key, as the API demands), the
    dictionaries of real ids and where they go."""
    def values(items: list[Any]) -> str:
        return json.dumps(items)

    bindings = {"path.customer_id": "customers", "path.device_id": "devices",
                "path.event_id": "events", "body.devices[*]": "devices",
                "body.close[*]": "ties", "body.customers[*]": "customers"}
    lines = ["[headers]", f'X-API-Key = "{fuzzed["key"]}"',
             f'Authorization = "Bearer {fuzzed["key"]}"', ""]
    for name in ("customers", "devices", "ties", "events"):
        lines += [f"[dictionaries.{name}]", f"values = {values(fuzzed[name])}", ""]
    lines.append("[parameters]")
    lines += [f'"{where}" = {{ dictionary = "{name}", probability = 0.5 }}'
              for where, name in bindings.items()]
    return "\n".join(lines) + "\n"


def test_schemathesis_finds_no_server_error_nor_undocumented_answer(
        fuzzed: dict[str, Any], tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(fuzzed))
    har, report = tmp_path / "run.har", tmp_path / "run.json"
    done = subprocess.run(
        [*ST, "--config-file", str(config), "run",
         f"{fuzzed['url']}/openapi.json", "--checks", CHECKS,
         "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(EXAMPLES),
         "--seed", "19", "--workers", "1", "--no-shrink", "--continue-on-failure",
         "--request-timeout", "30", "--report", "har,json", "--report-har-path", str(har),
         "--report-json-path", str(report)],
        capture_output=True, text=True, timeout=3000, cwd=tmp_path)
    entries = json.loads(har.read_text())["log"]["entries"]
    codes = collections.Counter(e["response"]["status"] for e in entries)
    print(f"schemathesis: {len(entries)} requests, statuses {dict(sorted(codes.items()))}")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    summary = json.loads(report.read_text())
    assert summary["failures"] == [] and summary["errors"] == []
    assert {name for name, phase in summary["phases"].items()
            if phase["status"] == "success"} >= {"coverage", "fuzzing", "stateful"}
    assert not [c for c in codes if c >= 500]
    assert codes[200] > 50 and codes[404] > 0 and codes[422] > 0  # it reached the model
