"""Who is out now: the combined switching state of the active outage events.

Overlapping events combine into one switching state: every device any started event opens is
open, every tie any started event closes is closed — unless another event opens it (opening
wins: a device opened for work or a fault must not be assumed closed). A customer is out when
that combined state leaves its transformer dead — no remaining source reaches it; so a tie
closed by one event picks up customers another event cut off, and two openings that cut a
loop only together put its customers out. The responsible events are those whose own impact
reaches the customer; the expected restoration is the latest expected end among them.

:class:`OutageState` holds the active events (:mod:`gridtopo.outages.events`) as de-energized
positions of the index, so that a status check is a few array reads.

An event opens SB-00000009 and SB-00000014 and closes the tie SB-00000080: customer
0300100000000 is out, 0300100006257 is fed from feeder XL-000002 through the tie:

>>> from gridtopo.outages.events import declare
>>> from gridtopo.topology.index import load_index
>>> index = load_index(engine)
>>> _ = declare(engine, index, ["SB-00000009", "SB-00000014"], close=["SB-00000080"])
>>> state = OutageState.load(engine, index)
>>> customer_status(index, state, "0300100000000")["out"]
True
>>> customer_status(index, state, "0300100006257")["transfer"]
{'tie': 'SB-00000080', 'events': [1]}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Engine

from gridtopo.clock import as_utc, now_seconds
from gridtopo.outages.records import active_events
from gridtopo.topology.index import QueryIndex, UnknownIdError
from gridtopo.topology.queries import Impact, _find, impact


def combined_impact(index: QueryIndex, events: Iterable[dict[str, Any]]) -> Impact:
    """The impact of ``events``' switching taken together (the rule of the module docstring:
    opening wins over closing). Devices the current model does not hold, or can no longer
    close, are left out: the model may have changed since the events were declared."""
    events = list(events)
    opened = list(dict.fromkeys(d for e in events for d in e["devices"]
                                if _find(index.edge_ids, d) >= 0))
    shut = set(opened)
    closed = list(dict.fromkeys(d for e in events for d in e["closed"]
                                if d not in shut and _find(index.edge_ids, d) >= 0))
    if closed:
        usable = index.closable(index.edge_indices(closed)).tolist()
        closed = [d for d, ok in zip(closed, usable, strict=True) if ok]
    return impact(index, opened, close=closed)


@dataclass
class ActiveEvent:
    """An active event and the index positions it de-energizes (on its own)."""

    data: dict[str, Any]
    positions: np.ndarray


@dataclass
class OutageState:
    """The active events over the index: who is out now, and because of which events.

    ``out`` marks the positions dead under the started events' combined switching (a position
    off the normal-state forest is out without an event, unless ``transferred`` holds it);
    ``soon`` those that an event not started yet de-energizes; ``transferred`` maps the
    positions fed through a tie the started events close to that tie's id.
    """

    events: list[ActiveEvent]
    out: np.ndarray
    soon: np.ndarray
    at: dt.datetime
    by_position: dict[int, list[int]]
    transferred: dict[int, str] = field(default_factory=dict)

    @classmethod
    def from_events(cls, events: list[ActiveEvent], positions: int, at: dt.datetime,
                    combined: np.ndarray | None = None,
                    transferred: dict[int, str] | None = None) -> OutageState:
        """The state of ``events`` over an index of ``positions`` positions at time ``at``.

        ``combined`` are the positions dead under every started event's switching at once
        (:func:`combined_impact`); it can exceed the union of the events' own positions (two
        openings, each harmless alone, that cut a loop) or fall short of it (a tie one event
        closes picks up what another cuts off). Without it the union is taken, which is exact
        only when no started event closes a tie.
        """
        out = np.zeros(positions, dtype=bool)
        soon = np.zeros(positions, dtype=bool)
        by_position: dict[int, list[int]] = {}
        for i, event in enumerate(events):
            if event.data["started_at"] > at:
                soon[event.positions] = True
            elif combined is None:
                out[event.positions] = True
            for p in event.positions.tolist():
                by_position.setdefault(p, []).append(i)
        if combined is not None:
            out[combined] = True
        return cls(events, out, soon, at, by_position, transferred or {})

    @classmethod
    def from_data(cls, index: QueryIndex, data: list[dict[str, Any]], at: dt.datetime
                  ) -> OutageState:
        """The state of active events given as data (the form of
        :func:`~gridtopo.outages.records.event_data`) at ``at``."""
        events = [ActiveEvent(item, combined_impact(index, [item]).positions) for item in data]
        started = [item for item in data if item["started_at"] <= at]
        if not started:
            return cls.from_events(events, len(index.order), at)
        together = combined_impact(index, started)
        ties = index.names(index.edge_ids, together.via)
        return cls.from_events(events, len(index.order), at, together.positions,
                               dict(zip(together.picked.tolist(), ties, strict=True)))

    @classmethod
    def load(cls, engine: Engine, index: QueryIndex, *, at: dt.datetime | None = None
             ) -> OutageState:
        """Read the active events; those started by ``at`` (default now) count as out."""
        return cls.from_data(index, active_events(engine), as_utc(at) or now_seconds())

    def covering(self, position: int) -> list[dict[str, Any]]:
        """Active events (started or not) whose own outage reaches ``position``."""
        return [self.events[i].data for i in self.by_position.get(position, ())]

    def overlapping(self, index: QueryIndex, event_id: int) -> list[int]:
        """Ids of the other active events that meet ``event_id``: they switch a same device,
        their de-energized nodes intersect, or taken together the two de-energize something
        else than each alone (a tie one closes picks up what the other cuts off; two
        openings cut a loop)."""
        mine = next((e for e in self.events if e.data["id"] == event_id), None)
        if mine is None:
            return []
        switched = {*mine.data["devices"], *mine.data["closed"]}
        found = []
        for other in self.events:
            if other is mine:
                continue
            apart = np.union1d(mine.positions, other.positions)
            if (switched & {*other.data["devices"], *other.data["closed"]}
                    or apart.size < mine.positions.size + other.positions.size
                    or not np.array_equal(
                        combined_impact(index, [mine.data, other.data]).positions, apart)):
                found.append(other.data["id"])
        return found


def customer_status(index: QueryIndex, state: OutageState, customer_id: str) -> dict[str, Any]:
    """Is ``customer_id`` out of supply now, why, and until when?

    ``out`` is true when the started events' combined switching de-energizes its transformer,
    or when the transformer is dead in the normal state and no closed tie feeds it (``reason``
    says which); ``events`` are the started events responsible, ``upcoming`` the planned ones
    not started yet, ``expected_restoration`` the latest expected end of the responsible events
    (None when unknown). ``transfer`` names the tie, and the events closing it, when the
    customer is fed through a tie a switching plan closed (转供), else None.

    A planned outage that starts tomorrow leaves the customer in supply today, as upcoming:

    >>> from gridtopo.outages.events import declare
    >>> from gridtopo.topology.index import load_index
    >>> index = load_index(engine)
    >>> tomorrow = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    >>> _ = declare(engine, index, ["SB-00000009"], kind="planned", started_at=tomorrow)
    >>> status = customer_status(index, OutageState.load(engine, index), "0300100000000")
    >>> status["out"], status["transformer_id"], [e["id"] for e in status["upcoming"]]
    (False, 'PB-0001024', [1])
    """
    customer = _find(index.customer_ids, customer_id)
    if customer < 0:
        raise UnknownIdError("customer", [customer_id])
    result: dict[str, Any] = {"customer_id": customer_id, "out": False, "reason": None,
                              "events": [], "upcoming": [], "expected_restoration": None,
                              "transformer_id": None, "transfer": None}
    tr = int(index.customer_transformer[customer])
    if not index.customer_active[customer]:
        result["reason"] = "account closed"
        return result
    if tr < 0:
        result.update(out=None, reason="no reconciled transformer: supply unknown")
        return result
    result["transformer_id"] = index.transformer_ids[tr].decode()
    position = int(index.pos[int(index.transformer_node[tr])])
    tie = state.transferred.get(position)
    if tie is not None:
        result["transfer"] = {"tie": tie, "events": [
            e.data["id"] for e in state.events
            if tie in e.data["closed"] and e.data["started_at"] <= state.at]}
    elif position >= index.n_energized:
        result.update(out=True, reason="not energized in the normal switching state")
    out = bool(state.out[position])
    if out or state.soon[position]:
        for event in state.covering(position):
            if event["started_at"] > state.at:
                result["upcoming"].append(_brief(event))
            elif out:
                result["events"].append(_brief(event))
    if out and not result["events"]:  # only the events together cut it
        result["events"] = [_brief(e.data) for e in state.events
                            if e.data["started_at"] <= state.at]
        result["reason"] = "outage events together (no single one cuts it)"
    if result["events"]:
        ends = [e["expected_end"] for e in result["events"]]
        result["out"] = True
        result["reason"] = result["reason"] or "outage event"
        result["expected_restoration"] = None if None in ends else max(ends)
    return result


def _brief(event: dict[str, Any]) -> dict[str, Any]:
    """What a status answer tells about an event."""
    return {k: event[k] for k in ("id", "kind", "reason", "started_at", "expected_end")}
