"""The gridtopo data model: one schema for SQLite+SpatiaLite and PostgreSQL+PostGIS.

Three groups of tables:

* **source model** (what the two systems said, after validation): ``stations``, ``feeders``,
  ``nodes``, ``edges``, ``transformers`` from distribution; ``transformer_areas``,
  ``customers`` and ``customer_personal`` from marketing. Each row keeps the ingest file and line
  it came from (``source_file_id``, ``source_line``). Personal data (name, address, phone) lives
  in ``customer_personal`` so it can be masked, exported or purged separately.
* **reconciled links** (``links``): the decided station-feeder-transformer-customer chain, each
  link with the method that decided it, a confidence in [0, 1] and its evidence.
* **operations**: ingest runs and their files and quarantined rows, steward decisions, audit
  runs and findings, outage events, snapshots.

Ids from the source systems are text (codes such as ``XL-000123`` or ``0300123456789``).
Geometries are WGS 84 (SRID 4326) with spatial indexes on both backends.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from gridtopo.clock import utcnow
from gridtopo.reconcile.kinds import LINK_KINDS

SRID = 4326
"""WGS 84; CGCS2000 (EPSG:4490) is treated as equal at the precision of these sources."""

ID = String(64)
"""Type of a source-system identifier."""

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

LINK_METHODS = ("source_code", "cross_system_id", "name_match", "spatial_match", "steward")
EDGE_KINDS = ("line", "cable", "switch", "breaker", "fuse", "recloser")
SWITCHING_KINDS = ("switch", "breaker", "fuse", "recloser")
FINDING_STATUSES = ("open", "accepted", "fixed", "waived")
SCORE_LEVELS = ("province", "region", "station", "feeder")
API_SCOPES = ("outage:read", "personal:read", "outage:write", "network:write", "admin",
              "calls:write", "notify:read")
SWITCHING_STATUSES = ("active", "confirmed", "overridden", "replaced")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention both backends and Alembic share."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012 - read by SQLAlchemy


class VersionedMixin:
    """Record versioning for snapshots: the run a row's current content dates from.

    When an ingest changes or removes a row, its previous version moves to the table's
    ``<name>_history`` twin with ``valid_to_run`` set, so the model as of any run is the current
    rows with ``valid_from_run <= run`` plus the history rows valid at that run — without copying
    the whole model on every run. ``row_hash`` fingerprints the content to find changes cheaply.
    """

    valid_from_run: Mapped[int | None] = mapped_column(Integer)
    row_hash: Mapped[int | None] = mapped_column(BigInteger)


class SourceRowMixin:
    """Where a source-model row came from: the ingest file and its 1-based line (header = 1)."""

    source_file_id: Mapped[int | None] = mapped_column(
        ForeignKey("ingest_files.id", ondelete="SET NULL"), index=False
    )
    source_line: Mapped[int | None] = mapped_column(Integer)


# --------------------------------------------------------------------------- ingest bookkeeping


RUN_STATUSES = ("running", "succeeded", "failed", "interrupted")
"""``interrupted``: the run's process died (killed, machine down) before it finished; the next
command that finds its lock free says so (:mod:`gridtopo.db.runlock`)."""


class IngestRun(Base):
    """One ``gridtopo ingest`` run: who ran it, when, on what, and how it ended."""

    __tablename__ = "ingest_runs"
    __table_args__ = (CheckConstraint(_in("status", RUN_STATUSES), "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="running")
    user_name: Mapped[str | None] = mapped_column(String(128))
    host: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(Text)
    profile: Mapped[str | None] = mapped_column(Text)
    gridtopo_version: Mapped[str] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any] | None]
    pid: Mapped[int | None] = mapped_column(Integer)
    """Process id of the ``gridtopo ingest`` running it, on ``host``."""
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    """When the run last reported progress (its start, the end of its read, its load)."""

    files: Mapped[list[IngestFile]] = relationship(back_populates="run", cascade="all")


class IngestFile(Base):
    """One input file of a run with its checksum and row accounting.

    ``rows_read == rows_loaded + rows_quarantined + rows_merged`` always holds for a finished run.
    ``fields_quarantined`` counts the unusable fields set aside in rows that were kept.
    """

    __tablename__ = "ingest_files"
    __table_args__ = (
        CheckConstraint(
            "rows_read = rows_loaded + rows_quarantined + rows_merged", "rows_add_up"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("ingest_runs.id", ondelete="CASCADE"), index=True
    )
    table_name: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    file_format: Mapped[str] = mapped_column(String(16))
    encoding: Mapped[str | None] = mapped_column(String(16))
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_loaded: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_quarantined: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_merged: Mapped[int] = mapped_column(BigInteger, default=0)
    fields_quarantined: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    run: Mapped[IngestRun] = relationship(back_populates="files")


class QuarantinedRow(Base):
    """A source row that could not be loaded, with the rule it broke, kept for the steward —
    or, with ``row_kept``, one unusable field of a row that was loaded without it.
    ``entity_id`` is the row's key when it is a usable one."""

    __tablename__ = "quarantined_rows"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("ingest_runs.id", ondelete="CASCADE"), index=True
    )
    file_id: Mapped[int] = mapped_column(
        ForeignKey("ingest_files.id", ondelete="CASCADE"), index=True
    )
    line: Mapped[int] = mapped_column(Integer)
    field: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[str | None] = mapped_column(Text)
    rule: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    raw: Mapped[dict[str, Any] | None]
    row_kept: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    entity_id: Mapped[str | None] = mapped_column(ID)


# --------------------------------------------------------------------------- distribution side


class Station(VersionedMixin, SourceRowMixin, Base):
    """A substation (变电站)."""

    __tablename__ = "stations"

    station_id: Mapped[str] = mapped_column(ID, primary_key=True)
    station_name: Mapped[str | None] = mapped_column(String(255))
    voltage_kv: Mapped[float | None] = mapped_column(Float)
    in_service: Mapped[bool] = mapped_column(Boolean, default=True)
    geom: Mapped[WKBElement | None] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=True)
    )


class Feeder(VersionedMixin, SourceRowMixin, Base):
    """A 10 kV feeder (馈线), radial from the station breaker at ``source_node``.

    ``station_id`` is the distribution system's own code; it is not a foreign key because
    orphans are findings to report, not rows to reject.
    """

    __tablename__ = "feeders"

    feeder_id: Mapped[str] = mapped_column(ID, primary_key=True)
    feeder_name: Mapped[str | None] = mapped_column(String(255))
    station_id: Mapped[str | None] = mapped_column(ID, index=True)
    voltage_kv: Mapped[float | None] = mapped_column(Float)
    source_node: Mapped[str | None] = mapped_column(ID, index=True)
    in_service: Mapped[bool] = mapped_column(Boolean, default=True)


class Node(Base):
    """A connectivity node that edges and transformers attach to."""

    __tablename__ = "nodes"

    node_id: Mapped[str] = mapped_column(ID, primary_key=True)
    feeder_id: Mapped[str | None] = mapped_column(ID, index=True)
    geom: Mapped[WKBElement | None] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=True)
    )


class Edge(VersionedMixin, SourceRowMixin, Base):
    """A two-terminal conducting element: line, cable or switching device.

    ``normal_open`` is only meaningful for switching devices; ``in_service`` false takes the
    element out of the network entirely (it conducts in no switching state).
    """

    __tablename__ = "edges"
    __table_args__ = (
        CheckConstraint(_in("kind", EDGE_KINDS), "kind"),
        Index("ix_edges_from_node", "from_node"),
        Index("ix_edges_to_node", "to_node"),
    )

    edge_id: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    feeder_id: Mapped[str | None] = mapped_column(ID, index=True)
    from_node: Mapped[str] = mapped_column(ID)
    to_node: Mapped[str] = mapped_column(ID)
    normal_open: Mapped[bool] = mapped_column(Boolean, default=False)
    in_service: Mapped[bool] = mapped_column(Boolean, default=True)
    length_m: Mapped[float | None] = mapped_column(Float)
    geom: Mapped[WKBElement | None] = mapped_column(
        Geometry("LINESTRING", srid=SRID, spatial_index=True)
    )


class Transformer(VersionedMixin, SourceRowMixin, Base):
    """A distribution transformer (配变) hanging on ``node`` of ``feeder_id``."""

    __tablename__ = "transformers"
    __table_args__ = (
        CheckConstraint(_in("status", ("in_service", "retired")), "status"),
        Index("ix_transformers_node", "node"),
    )

    transformer_id: Mapped[str] = mapped_column(ID, primary_key=True)
    transformer_name: Mapped[str | None] = mapped_column(String(255))
    feeder_id: Mapped[str | None] = mapped_column(ID, index=True)
    node: Mapped[str | None] = mapped_column(ID)
    capacity_kva: Mapped[float | None] = mapped_column(Float)
    marketing_area_code: Mapped[str | None] = mapped_column(ID, index=True)
    status: Mapped[str] = mapped_column(String(16), default="in_service")
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    geom: Mapped[WKBElement | None] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=True)
    )


# --------------------------------------------------------------------------- marketing side


class TransformerArea(VersionedMixin, SourceRowMixin, Base):
    """A transformer area (台区), the marketing system's unit of low-voltage supply."""

    __tablename__ = "transformer_areas"

    area_code: Mapped[str] = mapped_column(ID, primary_key=True)
    area_name: Mapped[str | None] = mapped_column(String(255))
    feeder_name: Mapped[str | None] = mapped_column(String(255))
    station_name: Mapped[str | None] = mapped_column(String(255))
    capacity_kva: Mapped[float | None] = mapped_column(Float)
    pms_transformer_id: Mapped[str | None] = mapped_column(ID, index=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Customer(VersionedMixin, SourceRowMixin, Base):
    """An electricity account (户号) with its marketing-side view of the chain, and its
    reconciled link to a transformer.

    The customer→transformer link lives on this row (``transformer_id``, ``link_method``,
    ``link_confidence``), not in :class:`Link`: there is one per customer, its evidence is the
    row's own ``area_code`` (the customer inherits its area's link), and at 14 million customers
    a separate link row with two indexes cost more to load than the customer itself. A
    customer whose link could not be decided has a null ``transformer_id`` (the ingest report
    and the audit say why). Names, addresses and phones are in :class:`CustomerPersonal`.
    """

    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint(_in("status", ("active", "closed")), "status"),
        CheckConstraint("contract_kva IS NULL OR contract_kva >= 0", "contract_kva"),
        CheckConstraint("link_method IS NULL OR " + _in("link_method", LINK_METHODS),
                        "link_method"),
        CheckConstraint("link_confidence IS NULL OR (link_confidence >= 0 AND "
                        "link_confidence <= 1)", "link_confidence"),
        # snapshot diffs ask "which customers began after run A": without this index that is
        # a scan of 14 million rows (~80 s cold on SQLite); covering, it reads only the change
        Index("ix_customers_valid_from_run", "valid_from_run", "customer_id", "transformer_id"),
    )

    customer_id: Mapped[str] = mapped_column(ID, primary_key=True)
    area_code: Mapped[str] = mapped_column(ID, index=True)
    area_name: Mapped[str | None] = mapped_column(String(255))
    feeder_name: Mapped[str | None] = mapped_column(String(255))
    station_name: Mapped[str | None] = mapped_column(String(255))
    meter_id: Mapped[str | None] = mapped_column(ID, index=True)
    """Indexed: a caller or an AMI last-gasp event names the meter (电能表资产号)."""
    phase: Mapped[str | None] = mapped_column(String(3))
    voltage_class: Mapped[str | None] = mapped_column(String(16))
    contract_kva: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="active")
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    geom: Mapped[WKBElement | None] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=False)
    )
    """Not spatially indexed: no query looks customers up by place (they are reached through
    their transformer), and at 14 million points the R*Tree took a minute of every load."""
    transformer_id: Mapped[str | None] = mapped_column(ID, index=True)
    link_method: Mapped[str | None] = mapped_column(String(32))
    link_confidence: Mapped[float | None] = mapped_column(Float)

    personal: Mapped[CustomerPersonal | None] = relationship(
        back_populates="customer", cascade="all, delete-orphan", uselist=False
    )


class CustomerPersonal(Base):
    """Personal data of a customer, kept apart so that it can be masked or withheld."""

    __tablename__ = "customer_personal"

    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customers.customer_id", ondelete="CASCADE"), primary_key=True
    )
    customer_name: Mapped[str | None] = mapped_column(String(255))
    address: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(64), index=True)
    """Indexed: a trouble call is matched to its customer by the phone it comes from."""

    customer: Mapped[Customer] = relationship(back_populates="personal")


# --------------------------------------------------------------------------- reconciled chain


class Link(VersionedMixin, Base):
    """One decided link of the chain, with how it was decided and how sure gridtopo is.

    ``kind`` is one of ``area_transformer``, ``transformer_feeder``, ``feeder_station``;
    ``from_id`` is the lower entity (e.g. the area) and ``to_id`` the upper one (e.g. the
    transformer). Customer→transformer links are stored on :class:`Customer` instead;
    ``customer_transformer`` stays a link kind of steward decisions, findings and the
    reconciliation's result. An entity has at most one link of each kind; what could not be
    decided has no link and is reported instead. ``evidence`` holds the values that decided it,
    e.g. ``{"score": 9, "by_pms_id": true, "by_area_code": true, ...}``.
    """

    __tablename__ = "links"
    __table_args__ = (
        UniqueConstraint("kind", "from_id"),
        Index("ix_links_kind_to_id", "kind", "to_id"),
        CheckConstraint(_in("kind", LINK_KINDS), "kind"),
        CheckConstraint(_in("method", LINK_METHODS), "method"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", "confidence"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    from_id: Mapped[str] = mapped_column(ID)
    to_id: Mapped[str] = mapped_column(ID)
    method: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float] = mapped_column(Float)
    evidence: Mapped[dict[str, Any] | None]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id", ondelete="SET NULL"))


class StewardDecision(Base):
    """A data steward's ruling on one link; it overrides every automatic method on every run.

    ``decision`` is the id to link to, or ``none`` to keep the entity unlinked.
    """

    __tablename__ = "steward_decisions"
    __table_args__ = (
        UniqueConstraint("link_kind", "entity_id"),
        CheckConstraint(_in("link_kind", LINK_KINDS), "link_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    link_kind: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(ID)
    decision: Mapped[str] = mapped_column(ID)
    note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    origin: Mapped[str | None] = mapped_column(String(255))


# --------------------------------------------------------------------------- quality


class AuditRun(Base):
    """One audit of the stored model; its scores feed the scorecard trend."""

    __tablename__ = "audit_runs"
    __table_args__ = (CheckConstraint(_in("status", RUN_STATUSES), "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="running")
    ingest_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("ingest_runs.id", ondelete="SET NULL")
    )
    config: Mapped[dict[str, Any] | None]
    scores: Mapped[dict[str, Any] | None]


class Finding(Base):
    """A quality finding on one entity, worked by stewards through its ``status``.

    ``fingerprint`` (rule + entity) makes a finding the same across audit runs, so its status
    carries over; a ``fixed`` finding that is found again is reopened.
    """

    __tablename__ = "findings"
    __table_args__ = (
        CheckConstraint(_in("status", FINDING_STATUSES), "status"),
        CheckConstraint(_in("severity", ("info", "warning", "error", "critical")), "severity"),
        Index("ix_findings_rule_status", "rule", "status"),
        Index("ix_findings_entity", "entity_type", "entity_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    rule: Mapped[str] = mapped_column(String(64))
    dimension: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(ID)
    message: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any] | None]
    suggested_fix: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(String(16), default="open")
    status_note: Mapped[str | None] = mapped_column(Text)
    status_by: Mapped[str | None] = mapped_column(String(128))
    status_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    first_seen_run: Mapped[int | None] = mapped_column(
        ForeignKey("audit_runs.id", ondelete="SET NULL")
    )
    last_seen_run: Mapped[int | None] = mapped_column(
        ForeignKey("audit_runs.id", ondelete="SET NULL"), index=True
    )


# --------------------------------------------------------------------------- outages


class OutageEvent(Base):
    """A planned (计划停电) or unplanned (故障停电) outage: devices opened over a time span."""

    __tablename__ = "outage_events"
    __table_args__ = (
        CheckConstraint(_in("kind", ("planned", "unplanned")), "kind"),
        CheckConstraint(_in("status", ("active", "closed")), "status"),
        Index("ix_outage_events_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="active")
    reason: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expected_end: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(128))
    customers_interrupted: Mapped[int | None] = mapped_column(BigInteger)
    customer_minutes: Mapped[float | None] = mapped_column(Float)

    devices: Mapped[list[OutageDevice]] = relationship(
        back_populates="event", cascade="all, delete-orphan"
    )


class OutageDevice(Base):
    """A device (edge) an outage event switches: ``action`` ``open`` (the outage itself) or
    ``close`` (a normally-open tie closed to pick up load, 转供)."""

    __tablename__ = "outage_devices"
    __table_args__ = (CheckConstraint(_in("action", ("open", "close")), "action"),)

    event_id: Mapped[int] = mapped_column(
        ForeignKey("outage_events.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[str] = mapped_column(ID, primary_key=True, index=True)
    action: Mapped[str] = mapped_column(String(8), default="open", server_default="open")

    event: Mapped[OutageEvent] = relationship(back_populates="devices")


class SwitchingChange(Base):
    """A field operation recorded between exports: a device's ``normal_open`` and/or
    ``in_service`` set at ``at`` (when it was done in the field), by whom, why and from where.

    Each applied file or request is one ingest run of its own (``run_id``, source
    ``switching:…``) with a snapshot, so edge history and ``snapshot diff`` show it like any
    change. ``status``: ``active`` while the model holds it; ``replaced`` by a later change of
    the device, ``confirmed`` by an export showing the same state, ``overridden`` by a newer
    export disagreeing (``ended_run`` says which run). A ``pinned`` change stays active
    against every export until unpinned (see :mod:`gridtopo.db.switching`)."""

    __tablename__ = "switching_changes"
    __table_args__ = (
        CheckConstraint(_in("status", SWITCHING_STATUSES), "status"),
        Index("ix_switching_changes_status_device", "status", "device_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("ingest_runs.id", ondelete="CASCADE"),
                                        index=True)
    device_id: Mapped[str] = mapped_column(ID)
    normal_open: Mapped[bool | None] = mapped_column(Boolean)
    in_service: Mapped[bool | None] = mapped_column(Boolean)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str | None] = mapped_column(String(128))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    origin: Mapped[str | None] = mapped_column(Text)
    origin_line: Mapped[int | None] = mapped_column(Integer)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    ended_run: Mapped[int | None] = mapped_column(Integer)


# --------------------------------------------------------------------------- trouble calls


CALL_TROUBLES = ("no_supply", "partial_supply", "flicker", "wire_down", "behind_meter",
                 "restored")
"""Trouble codes of a call; ``restored`` is a call-back saying supply is back."""
CALL_STATUSES = ("in_event", "in_prediction", "predicting", "behind_meter", "recorded",
                 "unresolved", "closed_account", "outside_territory")
PREDICTION_STATUSES = ("open", "confirmed", "merged", "cancelled", "restored")
METER_EVENT_KINDS = ("power_off", "power_on", "closed")


class Call(Base):
    """A trouble call (95598, app, WeChat, SMS) as received, with whom it was resolved to and
    the answer given (kept so that a retry with the same ``call_id`` gets the same answer).
    ``signal`` marks a call that counts as evidence of an outage for prediction;
    ``processed`` whether the predictor has taken it into account."""

    __tablename__ = "calls"
    __table_args__ = (
        CheckConstraint(_in("trouble", CALL_TROUBLES), "trouble"),
        CheckConstraint(_in("status", CALL_STATUSES), "status"),
        Index("ix_calls_feeder_id_at", "feeder_id", "at"),
    )

    call_id: Mapped[str] = mapped_column(ID, primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    trouble: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    photo: Mapped[str | None] = mapped_column(Text)
    identified_by: Mapped[str] = mapped_column(String(16))
    identifier: Mapped[str | None] = mapped_column(String(255))
    customer_id: Mapped[str | None] = mapped_column(ID, index=True)
    transformer_id: Mapped[str | None] = mapped_column(ID)
    feeder_id: Mapped[str | None] = mapped_column(ID)
    status: Mapped[str] = mapped_column(String(24))
    signal: Mapped[bool] = mapped_column(Boolean, default=False)
    processed: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    prediction_id: Mapped[int | None] = mapped_column(Integer, index=True)
    event_id: Mapped[int | None] = mapped_column(Integer)
    answer: Mapped[dict[str, Any]]


class MeterEvent(Base):
    """An AMI event: a meter's last gasp (``power_off``) or its return (``power_on``), or a
    device reported ``closed`` (energized) by telemetry. One row per source, kind and time:
    a repeat is a duplicate."""

    __tablename__ = "meter_events"
    __table_args__ = (
        CheckConstraint(_in("kind", METER_EVENT_KINDS), "kind"),
        UniqueConstraint("source_id", "kind", "at"),
        Index("ix_meter_events_feeder_id_at", "feeder_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    source_id: Mapped[str] = mapped_column(ID)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    customer_id: Mapped[str | None] = mapped_column(ID, index=True)
    transformer_id: Mapped[str | None] = mapped_column(ID)
    feeder_id: Mapped[str | None] = mapped_column(ID)
    processed: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    prediction_id: Mapped[int | None] = mapped_column(Integer, index=True)


class Prediction(Base):
    """A predicted device outage (故障研判): the device the calls and last gasps point to, kept
    up to date as signals arrive until a dispatcher confirms (``event_id``), merges
    (``merged_into``) or cancels it, or every signal is cleared (``restored``). A ``pinned``
    prediction keeps the device a dispatcher re-targeted it to."""

    __tablename__ = "predictions"
    __table_args__ = (
        CheckConstraint(_in("status", PREDICTION_STATUSES), "status"),
        Index("ix_predictions_status_feeder_id", "status", "feeder_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ID)
    device_kind: Mapped[str | None] = mapped_column(String(16))
    feeder_id: Mapped[str | None] = mapped_column(ID)
    status: Mapped[str] = mapped_column(String(16), default="open")
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    meter_events: Mapped[int] = mapped_column(Integer, default=0)
    customers_below: Mapped[int | None] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_signal_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    event_id: Mapped[int | None] = mapped_column(Integer)
    merged_into: Mapped[int | None] = mapped_column(Integer)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)


NOTICE_KINDS = ("planned", "reminder", "acknowledged", "etr", "restored")
NOTICE_STATUSES = ("pending", "released", "withdrawn")
NOTICE_CHANNELS = ("sms", "voice")
DELIVERY_STATUSES = ("pending", "delivered", "dead")


class Notice(Base):
    """One notice to one customer about one outage event: the transactional outbox.

    Written in the same transaction as the event change that causes it, ``pending`` until
    ``due_at`` (a planned notice days ahead, a notice held through do-not-disturb hours),
    then ``released`` with the next ``seq`` — the cursor of the pull feed, increasing in the
    order notices are released — or ``withdrawn`` when it no longer applies (the event ended
    or was cancelled first, a newer ETR replaced it). ``dedupe_key`` makes a notice unique:
    one per customer, event and kind (and ETR for ``etr``)."""

    __tablename__ = "notices"
    __table_args__ = (
        CheckConstraint(_in("kind", NOTICE_KINDS), "kind"),
        CheckConstraint(_in("status", NOTICE_STATUSES), "status"),
        CheckConstraint(_in("channel", NOTICE_CHANNELS), "channel"),
        Index("ix_notices_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    event_id: Mapped[int] = mapped_column(ForeignKey("outage_events.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ID, index=True)
    channel: Mapped[str] = mapped_column(String(8))
    recipient: Mapped[str] = mapped_column(String(64))
    """The phone number the notice goes to (personal data: masked in the feed unless the key
    may read personal data)."""
    text: Mapped[str] = mapped_column(Text)
    etr: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    released_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    withdrawn_reason: Mapped[str | None] = mapped_column(String(64))
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)


class NoticePreference(Base):
    """A customer's choice about notices: ``opt_out`` stops every notice to them."""

    __tablename__ = "notice_preferences"

    customer_id: Mapped[str] = mapped_column(ID, primary_key=True)
    opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(128))


class Webhook(Base):
    """A receiver notices are pushed to: POSTed in batches, signed with ``secret``
    (HMAC-SHA256), retried with back-off until delivered or dead."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(128))


class NoticeDelivery(Base):
    """The delivery of one released notice to one webhook: ``pending`` (due at
    ``next_attempt_at``), ``delivered``, or ``dead`` after the last attempt failed (the
    dead-letter list, which can be requeued)."""

    __tablename__ = "notice_deliveries"
    __table_args__ = (
        CheckConstraint(_in("status", DELIVERY_STATUSES), "status"),
        UniqueConstraint("notice_id", "webhook_id"),
        Index("ix_notice_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"))
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


# --------------------------------------------------------------------------- quality scores


class Scorecard(Base):
    """Scores of one entity (province, region, station or feeder) in one audit run.

    Scores are in [0, 1]; the trend of an entity is its scorecards across audit runs.
    """

    __tablename__ = "scorecards"
    __table_args__ = (
        UniqueConstraint("audit_run_id", "level", "entity_id"),
        Index("ix_scorecards_level_entity", "level", "entity_id"),
        CheckConstraint(_in("level", SCORE_LEVELS), "level"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    audit_run_id: Mapped[int] = mapped_column(ForeignKey("audit_runs.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[str] = mapped_column(ID)
    entity_name: Mapped[str | None] = mapped_column(String(255))
    completeness: Mapped[float | None] = mapped_column(Float)
    accuracy: Mapped[float | None] = mapped_column(Float)
    timeliness: Mapped[float | None] = mapped_column(Float)
    overall: Mapped[float | None] = mapped_column(Float)
    counts: Mapped[dict[str, Any] | None]


# --------------------------------------------------------------------------- API access


class ApiKey(Base):
    """An HTTP API key: only its SHA-256 is stored; ``key_prefix`` identifies it in listings."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[Any]]
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(128))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class PersonalAccess(Base):
    """One API answer that revealed customers' personal data unmasked: which key, when, on
    which route and worker, and whose — the listed customers' ids (at most a page, 1,000),
    so that "who read this customer's data?" has an answer. No personal data itself."""

    __tablename__ = "personal_access_log"
    __table_args__ = (Index("ix_personal_access_log_key_name_read_at", "key_name", "read_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    read_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    key_name: Mapped[str] = mapped_column(String(128))
    route: Mapped[str] = mapped_column(String(128))
    path: Mapped[str] = mapped_column(String(255))
    worker: Mapped[str] = mapped_column(String(128))
    customers: Mapped[int] = mapped_column(Integer)
    customer_ids: Mapped[list[Any]]


# --------------------------------------------------------------------------- snapshots


class Snapshot(Base):
    """A recorded state of the model after an ingest run that changed it."""

    __tablename__ = "snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("ingest_runs.id", ondelete="CASCADE"), unique=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    label: Mapped[str | None] = mapped_column(String(255))
    counts: Mapped[dict[str, Any] | None]
    content_hash: Mapped[str | None] = mapped_column(String(64))


VERSIONED_KEYS: dict[str, tuple[str, ...]] = {
    "stations": ("station_id",),
    "feeders": ("feeder_id",),
    "edges": ("edge_id",),
    "transformers": ("transformer_id",),
    "transformer_areas": ("area_code",),
    "customers": ("customer_id",),
    "links": ("kind", "from_id"),
}
"""Versioned tables and their natural keys (personal data is deliberately not versioned)."""


def _history_table(name: str, keys: tuple[str, ...]) -> Table:
    """``<name>_history``: former versions of ``name``'s rows with their validity interval."""
    source = Base.metadata.tables[name]
    columns = []
    for column in source.columns:
        if column.name == "id":
            continue
        kind = column.type
        if isinstance(kind, Geometry):
            kind = Geometry(kind.geometry_type, srid=kind.srid, spatial_index=False)
        columns.append(Column(column.name, kind))
    columns.append(Column("valid_to_run", Integer, nullable=False))
    return Table(
        f"{name}_history",
        Base.metadata,
        *columns,
        PrimaryKeyConstraint(*keys, "valid_from_run"),
        Index(f"ix_{name}_history_valid", "valid_from_run", "valid_to_run"),
    )


HISTORY_TABLES: dict[str, Table] = {
    name: _history_table(name, keys) for name, keys in VERSIONED_KEYS.items()
}
"""History twin of every versioned table."""

MODEL_TABLES: tuple[str, ...] = tuple(t.name for t in Base.metadata.sorted_tables)
"""Every table of the model, in dependency order."""

SOURCE_TABLES: dict[str, type[Base]] = {
    "stations": Station,
    "feeders": Feeder,
    "edges": Edge,
    "transformers": Transformer,
    "transformer_areas": TransformerArea,
    "customers": Customer,
}
"""The canonical source tables of ``sources.md`` and the model class each loads into."""
