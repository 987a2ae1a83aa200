"""The impact report: what a switching plan or an event cuts off, and who, for every caller.

``gridtopo outage impact --list --phones`` and the API (``POST /v1/impact``, ``GET
/v1/outages/{id}/customers``) both answer with :func:`impact_report` or
:func:`event_customers`: the impact's counts (:meth:`~gridtopo.topology.queries.Impact.to_dict`)
and, when asked, a :class:`CustomerPage` of the customers it leaves without supply, each with
its contact details masked by :mod:`gridtopo.privacy` unless the caller may see them.

>>> from gridtopo.topology.index import load_index
>>> index = load_index(engine)
>>> report = impact_report(engine, index, ["SB-00000009"], customers=CustomerPage(limit=2))
>>> report["customers"], report["customer_list"]["personal_data"]
(1254, 'masked')
>>> first = report["customer_list"]["items"][0]
>>> first["customer_id"], first["phone"]
('0300100002560', '138****4174')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine

from gridtopo.outages.contacts import contacts
from gridtopo.outages.events import get_event, switching_lists
from gridtopo.outages.state import combined_impact
from gridtopo.topology import queries
from gridtopo.topology.index import QueryIndex


@dataclass(frozen=True)
class CustomerPage:
    """Which of the affected customers to list (``limit`` None: all from ``offset``), and
    whether with their contact details (``contacts``), unmasked (``reveal``) or masked."""

    limit: int | None = None
    offset: int = 0
    contacts: bool = True
    reveal: bool = False


def customer_page(engine: Engine, index: QueryIndex, numbers: np.ndarray, page: CustomerPage
                  ) -> dict[str, Any]:
    """``{"total", "limit", "offset", "personal_data", "items"}`` for the customers of index
    numbers ``numbers``: ``items`` one ``{"customer_id", "name", "phone", "address"}`` per
    customer of the page (only the id without ``contacts``); ``personal_data`` says
    ``"full"``, ``"masked"`` or ``"none"``."""
    end = None if page.limit is None else page.offset + page.limit
    ids = index.names(index.customer_ids, numbers[page.offset:end])
    people = contacts(engine, ids, reveal=page.reveal) if page.contacts else {}
    shown = "none" if not page.contacts else "full" if page.reveal else "masked"
    return {"total": len(numbers), "limit": page.limit, "offset": page.offset,
            "personal_data": shown, "items": [{"customer_id": c, **people.get(c, {})}
                                              for c in ids]}


def impact_report(engine: Engine, index: QueryIndex, devices: Iterable[str],
                  close: Iterable[str] = (), *, customers: CustomerPage | None = None
                  ) -> dict[str, Any]:
    """What opening ``devices`` and closing the ties ``close`` de-energizes (the
    :func:`~gridtopo.topology.queries.impact` counts, in total, per feeder and per tie), with
    ``customer_list`` the :func:`customer_page` of the customers it cuts off when
    ``customers`` says which."""
    result = queries.impact(index, *switching_lists(devices, close))
    data = result.to_dict()
    if customers is not None:
        data["customer_list"] = customer_page(engine, index,
                                              index.customers_at(result.positions), customers)
    return data


def event_customers(engine: Engine, index: QueryIndex, event_id: int, page: CustomerPage
                    ) -> dict[str, Any]:
    """The :func:`customer_page` of the customers the event ``event_id`` interrupts (its own
    impact), with ``event_id``; :class:`~gridtopo.outages.events.EventNotFoundError` if none.

    >>> from gridtopo.outages.events import declare
    >>> from gridtopo.topology.index import load_index
    >>> index = load_index(engine)
    >>> event = declare(engine, index, ["SB-00000009", "SB-00000014"], close=["SB-00000080"])
    >>> page = event_customers(engine, index, event["id"], CustomerPage(limit=2, contacts=False))
    >>> page["total"], page["personal_data"], page["items"]
    (950, 'none', [{'customer_id': '0300100002560'}, {'customer_id': '0300100006680'}])
    """
    result = combined_impact(index, [get_event(engine, event_id)])
    return {"event_id": event_id,
            **customer_page(engine, index, index.customers_at(result.positions), page)}
