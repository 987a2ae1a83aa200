"""Customers' contact details for notices, masked unless the caller may see personal data.

Names, phones and addresses live in ``customer_personal``. Callers without the right to see
personal data get them masked by the one rule of :mod:`gridtopo.privacy` (``李**``,
``138****5678``, ``广东省惠州市**``) — the same values an export without ``--personal`` holds.

>>> contacts(engine, ["0300100000000"], reveal=False)
{'0300100000000': {'name': '余**', 'phone': '183****1304', 'address': '广东省东莞市**'}}
"""

from __future__ import annotations

from typing import Any

import polars as pl
from sqlalchemy import Engine, select

from gridtopo.db.models import CustomerPersonal
from gridtopo.privacy import PERSONAL_FIELDS, mask_frame

CHUNK = 5000
"""Customer ids per query (bound parameters stay well under every driver's limit)."""
ANSWER_KEYS = {"customer_name": "name", "phone": "phone", "address": "address"}
"""The key each personal field has in a contact's answer, in the answer's order."""


def contacts(engine: Engine, customer_ids: list[str], *, reveal: bool
             ) -> dict[str, dict[str, Any]]:
    """Name, phone and address of each customer that has them; masked unless ``reveal``."""
    columns = [CustomerPersonal.__table__.c[f] for f in ("customer_id", *PERSONAL_FIELDS)]
    rows: list[Any] = []
    with engine.connect() as conn:
        for start in range(0, len(customer_ids), CHUNK):
            rows += conn.execute(select(*columns).where(
                CustomerPersonal.customer_id.in_(customer_ids[start:start + CHUNK]))).all()
    frame = pl.DataFrame(rows, schema=dict.fromkeys(("customer_id", *PERSONAL_FIELDS),
                                                    pl.String), orient="row")
    if not reveal:
        frame = mask_frame(frame)
    return {row["customer_id"]: {key: row[field] for field, key in ANSWER_KEYS.items()}
            for row in frame.to_dicts()}
