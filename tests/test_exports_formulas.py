"""CSV injection: text that a spreadsheet would run as a formula leaves every export quoted
(CSV, GeoJSON), masked or not; numbers and ordinary text stay as they are."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from gridtopo.exports.csv import export_csv
from gridtopo.exports.geo import export_geojson

FORMULAS = ['=HYPERLINK("http://x.example/","点我")', "+1+2", "-3+4", "@SUM(A1)", "\tTAB",
            "\rCR"]


@pytest.fixture
def planted(model_engine: Engine) -> dict[str, object]:
    """Customers named like formulas, a transformer named like one, and an ordinary customer
    (its id, name and longitude)."""
    with model_engine.begin() as conn:
        ids = conn.execute(text("SELECT customer_id FROM customer_personal "
                                "ORDER BY customer_id LIMIT :n"),
                           {"n": len(FORMULAS) + 1}).scalars().all()
        names = dict(zip(ids, FORMULAS, strict=False))
        for cid, name in names.items():
            conn.execute(text("UPDATE customer_personal SET customer_name = :n "
                              "WHERE customer_id = :c"), {"n": name, "c": cid})
        transformer = conn.execute(text("SELECT min(transformer_id) FROM transformers")
                                   ).scalar_one()
        conn.execute(text("UPDATE transformers SET transformer_name = '-3+4' "
                          "WHERE transformer_id = :t"), {"t": transformer})
        plain = ids[-1]
        plain_name, lon = conn.execute(text(
            "SELECT p.customer_name, ST_X(c.geom) FROM customer_personal p JOIN customers c "
            "ON c.customer_id = p.customer_id WHERE p.customer_id = :c"), {"c": plain}).one()
    return {"names": names, "transformer": transformer, "plain": plain,
            "plain_name": plain_name, "lon": lon}


def _rows(path: Path, key: str) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row[key]: row for row in csv.DictReader(handle)}


def test_csv_cells_that_start_like_formulas_are_quoted(model_engine: Engine, tmp_path: Path,
                                                       planted: dict[str, object]) -> None:
    names = planted["names"]
    assert isinstance(names, dict)
    export_csv(model_engine, tmp_path / "full", personal=True)
    export_csv(model_engine, tmp_path / "masked")
    full = _rows(tmp_path / "full" / "customers.csv", "customer_id")
    masked = _rows(tmp_path / "masked" / "customers.csv", "customer_id")
    for cid, name in names.items():
        assert full[cid]["customer_name"] == "'" + name
        assert masked[cid]["customer_name"] == "'" + name[0] + "**"
    plain = full[str(planted["plain"])]
    assert plain["customer_name"] == planted["plain_name"]
    assert float(plain["lon"]) == pytest.approx(planted["lon"])
    assert not [r for r in full.values() if r["customer_id"] not in names
                and r["customer_name"].startswith("'")]
    transformers = _rows(tmp_path / "full" / "transformers.csv", "transformer_id")
    assert transformers[str(planted["transformer"])]["transformer_name"] == "'-3+4"


def test_geojson_string_properties_are_quoted(model_engine: Engine, tmp_path: Path,
                                              planted: dict[str, object]) -> None:
    names = planted["names"]
    assert isinstance(names, dict)
    export_geojson(model_engine, tmp_path / "geo", customers=True, personal=True)
    features = json.loads((tmp_path / "geo" / "customers.geojson").read_text("utf-8"))
    props = {f["properties"]["customer_id"]: f for f in features["features"]}
    for cid, name in names.items():
        assert props[cid]["properties"]["customer_name"] == "'" + name
    plain = props[str(planted["plain"])]
    assert plain["properties"]["customer_name"] == planted["plain_name"]
    assert plain["geometry"]["coordinates"][0] == pytest.approx(planted["lon"])
    assert isinstance(plain["properties"]["contract_kva"], float | int | None)
    layer = json.loads((tmp_path / "geo" / "transformers.geojson").read_text("utf-8"))
    named = {f["properties"]["transformer_id"]: f["properties"]["transformer_name"]
             for f in layer["features"]}
    assert named[str(planted["transformer"])] == "'-3+4"
