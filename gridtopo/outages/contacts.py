"""Customers' contact details for notices, masked unless the caller may see personal data.

Names, phones and addresses live in ``customer_personal``. Channels without the right to see
personal data get masked values (``138****5678``, ``张*``, the address cut after six
characters), enough to confirm an identity on the phone but not to harvest it.

>>> contacts(engine, ["0300000000017"], reveal=False)  # doctest: +SKIP
{'0300000000017': {'name': '李*', 'phone': '138****5678', 'address': '广东省惠州市***'}}
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from gridtopo.db.models import CustomerPersonal

CHUNK = 5000


def mask_phone(phone: str | None) -> str | None:
    """Keep the first three and last four digits of a phone number."""
    if not phone:
        return phone
    return phone[:3] + "*" * max(len(phone) - 7, 1) + phone[-4:] if len(phone) > 7 else "*" * 4


def mask_name(name: str | None) -> str | None:
    """Keep the first character of a name."""
    return name[0] + "*" * max(len(name) - 1, 1) if name else name


def mask_address(address: str | None) -> str | None:
    """Keep the first six characters of an address (province, city)."""
    return address[:6] + "***" if address else address


def contacts(engine: Engine, customer_ids: list[str], *, reveal: bool
             ) -> dict[str, dict[str, Any]]:
    """Name, phone and address of each customer that has them; masked unless ``reveal``."""
    found: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for start in range(0, len(customer_ids), CHUNK):
            rows = conn.execute(select(
                CustomerPersonal.customer_id, CustomerPersonal.customer_name,
                CustomerPersonal.phone, CustomerPersonal.address,
            ).where(CustomerPersonal.customer_id.in_(customer_ids[start:start + CHUNK])))
            for cid, name, phone, address in rows:
                found[cid] = ({"name": name, "phone": phone, "address": address} if reveal else
                              {"name": mask_name(name), "phone": mask_phone(phone),
                               "address": mask_address(address)})
    return found
