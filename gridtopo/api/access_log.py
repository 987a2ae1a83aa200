"""The personal-data access log: who read whose names, phones and addresses through the API.

Every API answer that lists customers with their personal data **unmasked** (a key with
``personal:read``: ``POST /v1/impact`` with ``list_customers``, ``GET
/v1/outages/{id}/customers``) adds one ``personal_access_log`` row: the key's name, the time,
the route and path, the worker, how many customers and their ids. The ids (a page holds at
most 1,000) are kept rather than a hash or a count so that a customer's question "who read
my data?" can be answered; the personal data itself is never copied. Masked answers are not
logged: they are designed not to disclose.

The API writes the rows in the background (:meth:`~gridtopo.api.service.Service.reveal`), so
no request waits for it; ``gridtopo apikey access-log`` reads them.

>>> entry = Access(key_name="95598", route="POST /v1/impact", path="/v1/impact",
...                customer_ids=["0300100000000"], read_at=dt.datetime(2026, 12, 7, tzinfo=dt.UTC))
>>> entry.customers
1
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError

from gridtopo.clock import as_utc, utcnow
from gridtopo.db.models import PersonalAccess

WORKER = f"{socket.gethostname()}:{os.getpid()}"[:128]
"""This process, as the log names it (host and process id)."""
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Access:
    """One answer that revealed personal data."""

    key_name: str
    route: str
    path: str
    customer_ids: list[str]
    read_at: dt.datetime = field(default_factory=utcnow)
    worker: str = WORKER

    @property
    def customers(self) -> int:
        """How many customers' data the answer revealed."""
        return len(self.customer_ids)


def record_access(engine: Engine, access: Access) -> None:
    """Append ``access`` to the log. Run off the request path: a failed write (a locked
    SQLite file, a dropped connection) is logged as an error, never raised into a request."""
    try:
        with engine.begin() as conn:
            conn.execute(insert(PersonalAccess).values(
                read_at=access.read_at, key_name=access.key_name[:128],
                route=access.route[:128], path=access.path[:255], worker=access.worker,
                customers=access.customers, customer_ids=access.customer_ids))
    except SQLAlchemyError as err:
        log.error("could not log a personal-data read by API key %s (%s, %d customers): %s",
                  access.key_name, access.route, access.customers, err)


def recent_reads(engine: Engine, key_name: str, since: dt.datetime, *, besides: str = WORKER
                 ) -> list[tuple[float, int]]:
    """``(time, customers)`` of ``key_name``'s logged reads after ``since`` by workers other
    than ``besides`` (this one: it counts its own in memory), times as epoch seconds."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(PersonalAccess.read_at, PersonalAccess.customers)
            .where(PersonalAccess.key_name == key_name, PersonalAccess.read_at > since,
                   PersonalAccess.worker != besides)).all()
    return [(as_utc(at).timestamp(), int(n)) for at, n in rows]


def access_log(engine: Engine, *, key_name: str | None = None, since: dt.datetime | None = None,
               customer_id: str | None = None, limit: int | None = None
               ) -> list[dict[str, Any]]:
    """Logged reads, newest first: of the key ``key_name``, after ``since``, revealing
    ``customer_id`` — each ``{"read_at", "key_name", "route", "path", "worker", "customers",
    "customer_ids"}``; at most ``limit``."""
    query = select(*PersonalAccess.__table__.c).order_by(PersonalAccess.read_at.desc(),
                                            PersonalAccess.id.desc())
    if key_name is not None:
        query = query.where(PersonalAccess.key_name == key_name)
    if since is not None:
        query = query.where(PersonalAccess.read_at >= as_utc(since))
    found: list[dict[str, Any]] = []
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            if customer_id is not None and customer_id not in row["customer_ids"]:
                continue
            found.append({"read_at": as_utc(row["read_at"]), "key_name": row["key_name"],
                          "route": row["route"], "path": row["path"], "worker": row["worker"],
                          "customers": row["customers"],
                          "customer_ids": list(row["customer_ids"])})
            if limit is not None and len(found) >= limit:
                break
    return found
