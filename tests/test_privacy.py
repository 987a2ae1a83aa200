"""One masking rule: its bounds as properties, its examples, one definition of the personal
fields, and the same masked values from the API, the CLI and the exports for one customer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from gridtopo.api.app import create_app
from gridtopo.api.keys import create_key
from gridtopo.cli.main import main
from gridtopo.db.models import CustomerPersonal
from gridtopo.exports.csv import export_csv
from gridtopo.exports.geo import export_geojson
from gridtopo.ingest.tables import TABLES
from gridtopo.privacy import PERSONAL_FIELDS, mask, mask_frame
from gridtopo.topology.index import load_index
from tests.test_outage_events import Oracle, _fuse_with_customers

CHARACTERS = st.characters(exclude_categories=("Cs",))
TEXT = st.text(CHARACTERS, max_size=40)
DIGITS = st.text("0123456789", min_size=0, max_size=20)
SEPARATORS = st.sampled_from(["", " ", "-"])


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch in "0123456789")


# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(("field", "value", "masked"), [
    ("customer_name", "张三丰", "张**"),
    ("customer_name", "张三", "张**"),
    ("customer_name", "张", "**"),
    ("phone", "13812345678", "138****5678"),
    ("phone", "+86 138 1234 5678", "138****5678"),
    ("phone", "86-138-1234-5678", "138****5678"),
    ("phone", "8613812345678", "138****5678"),
    ("phone", "8123456", "****456"),
    ("phone", "83456789", "****6789"),
    ("phone", "020-83456789", "****6789"),
    ("phone", "12", "****2"),
    ("address", "广州市", "广**"),
    ("address", "广东省广州市天河区体育西路1号", "广东省广州市**"),
    ("address", "天河区", "天**"),
    ("customer_name", None, None),
    ("phone", None, None),
    ("address", None, None),
])
def test_rule_examples(field: str, value: str | None, masked: str | None) -> None:
    assert mask(field, value) == masked


def _mobile(digits: str) -> bool:
    national = digits[2:] if len(digits) == 13 and digits.startswith("86") else digits
    return len(national) == 11 and national.startswith("1")


def _same_length(data: st.DataObject, alphabet: st.SearchStrategy[str], n: int) -> str:
    return data.draw(st.text(alphabet, min_size=n, max_size=n))


@given(TEXT, st.data())
def test_a_name_shows_its_first_character_of_two_or_more(name: str, data: st.DataObject
                                                         ) -> None:
    masked = mask("customer_name", name)
    assert masked is not None and masked.endswith("**")
    shown = masked[:-2]
    assert len(shown) == (1 if len(name) >= 2 else 0) and name.startswith(shown)
    other = _same_length(data, CHARACTERS, len(name) - len(shown))
    assert mask("customer_name", shown + other) == masked  # the rest never shows


@given(TEXT, st.data())
def test_an_address_shows_at_most_six_characters_and_at_most_half(address: str,
                                                                  data: st.DataObject) -> None:
    masked = mask("address", address)
    assert masked is not None and masked.endswith("**")
    shown = masked[:-2]
    assert len(shown) <= min(6, len(address) // 2) and address.startswith(shown)
    assert len(shown) == min(6, len(address) // 2)  # as much as the bounds allow, no less
    other = _same_length(data, CHARACTERS, len(address) - len(shown))
    assert mask("address", shown + other) == masked


@given(st.text("0123456789", min_size=10, max_size=10), st.text("0123456789", min_size=4,
                                                                 max_size=4),
       st.sampled_from(["", "86", "+86", "+86 ", "86-"]), SEPARATORS)
def test_a_mobile_shows_three_and_four_digits(rest: str, middle: str, prefix: str, sep: str
                                              ) -> None:
    mobile = "1" + rest
    written = prefix + sep.join((mobile[:3], mobile[3:7], mobile[7:]))
    masked = mask("phone", written)
    assert masked == mobile[:3] + "****" + mobile[-4:]
    assert mask("phone", mobile[:3] + middle + mobile[7:]) == masked  # middle never shows


@given(DIGITS.filter(lambda d: not _mobile(d)), SEPARATORS, st.data())
def test_another_number_shows_at_most_four_last_digits_and_at_most_half(
    number: str, sep: str, data: st.DataObject
) -> None:
    written = sep.join(number[i:i + 3] for i in range(0, len(number), 3))
    masked = mask("phone", written)
    assert masked is not None and masked.startswith("****")
    shown = masked[4:]
    assert len(shown) <= min(4, len(number) // 2) and number.endswith(shown)
    assert len(shown) == min(4, len(number) // 2)
    other = _same_length(data, st.sampled_from("0123456789"), len(number) - len(shown))
    assume(not _mobile(other + shown))
    assert mask("phone", other + shown) == masked  # the leading digits never show


@given(TEXT)
def test_any_phone_text_shows_few_digits_and_nothing_else(phone: str) -> None:
    masked = mask("phone", phone)
    assert masked is not None
    shown = masked.replace("*", "")
    assert shown == _digits(shown) and len(shown) <= 7
    digits = _digits(phone)
    assert len(shown) <= min(4, len(digits) // 2) or (len(shown) == 7 and _mobile(digits))


@settings(deadline=None)  # each single value is a polars query of its own: ~2 ms
@given(st.lists(st.one_of(st.none(), TEXT), max_size=30))
def test_the_vectorised_and_the_single_value_forms_agree(values: list[str | None]) -> None:
    frame = pl.DataFrame({f: values for f in PERSONAL_FIELDS}, schema=dict.fromkeys(
        PERSONAL_FIELDS, pl.String))
    masked = mask_frame(frame)
    for field in PERSONAL_FIELDS:
        assert masked[field].to_list() == [mask(field, v) for v in values]


def test_personal_fields_are_defined_once() -> None:
    """privacy names them; ingest marks exactly those customer fields; the model keeps them
    apart in customer_personal."""
    marked = {(t.name, f.name) for t in TABLES.values() for f in t.fields if f.personal}
    assert marked == {("customers", f) for f in PERSONAL_FIELDS}
    assert list(CustomerPersonal.__table__.columns.keys()) == ["customer_id", *PERSONAL_FIELDS]


# --------------------------------------------------------------------------- every output


def _contact(item: dict[str, Any]) -> tuple[Any, ...]:
    return item.get("name"), item.get("phone"), item.get("address")


def test_api_cli_and_exports_mask_alike(model_engine: Engine, model_db_url: str,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fuse, below = _fuse_with_customers(Oracle(model_engine))
    with model_engine.connect() as conn:
        raw = {r[0]: tuple(r[1:]) for r in conn.execute(text(
            "SELECT customer_id, customer_name, phone, address FROM customer_personal"))
            if r[0] in below}
    assert len(raw) == len(below) > 5
    expected = {c: (mask("customer_name", n), mask("phone", p), mask("address", a))
                for c, (n, p, a) in raw.items()}
    assert all(e != raw[c] for c, e in expected.items())

    reader = create_key(model_engine, "reader", ["outage:read"])[0]
    personal = create_key(model_engine, "personal", ["outage:read", "personal:read"])[0]
    client = TestClient(create_app(model_engine, load_index(model_engine)))
    body = {"devices": [fuse], "list_customers": True, "limit": 1000}
    api = {key: {i["customer_id"]: _contact(i) for i in client.post(
        "/v1/impact", json=body, headers={"X-API-Key": key}).json()["customer_list"]["items"]}
        for key in (reader, personal)}

    def cli(*extra: str) -> dict[str, tuple[Any, ...]]:
        result = CliRunner().invoke(main, ["--db", model_db_url, "outage", "impact", fuse,
                                           "--list", "--phones", *extra, "--json"])
        assert result.exit_code == 0, result.output
        return {i["customer_id"]: _contact(i) for i in json.loads(result.stdout)[
            "customer_list"]}

    export_csv(model_engine, tmp_path / "csv")
    rows = pl.read_csv(tmp_path / "csv" / "customers.csv", infer_schema=False).filter(
        pl.col("customer_id").is_in(sorted(below)))
    csv = {r["customer_id"]: (r["customer_name"], r["phone"], r["address"])
           for r in rows.iter_rows(named=True)}
    export_geojson(model_engine, tmp_path / "geo", customers=True)
    features = json.loads((tmp_path / "geo" / "customers.geojson").read_text("utf-8"))
    geo = {p["customer_id"]: (p["customer_name"], p["phone"], p["address"])
           for p in (f["properties"] for f in features["features"])
           if p["customer_id"] in below}

    assert api[reader] == cli() == csv == geo == expected
    assert api[personal] == cli("--personal") == raw
