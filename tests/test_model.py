"""Model round trips on both stores: every entity, geometry, constraints and a spatial query."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import LineString, Point
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridtopo.db.models import (
    SRID,
    Customer,
    CustomerPersonal,
    Edge,
    Feeder,
    Finding,
    IngestFile,
    IngestRun,
    Link,
    OutageDevice,
    OutageEvent,
    Station,
    Transformer,
    TransformerArea,
)

T1_AT = Point(113.2644, 23.1291)  # Guangzhou
FAR = Point(114.0579, 22.5431)  # Shenzhen, ~100 km away


def _network(session: Session) -> None:
    run = IngestRun(source="synthetic/", gridtopo_version="test", user_name="tester")
    session.add(run)
    session.flush()
    source = IngestFile(
        run_id=run.id, table_name="customers", path="marketing/customers.csv", sha256="0" * 64,
        size_bytes=10, file_format="csv", encoding="gbk", rows_read=2, rows_loaded=2,
    )
    session.add(source)
    session.flush()
    session.add_all([
        Station(station_id="BDZ-1", station_name="110kV龙华站", voltage_kv=110,
                geom=from_shape(Point(113.26, 23.12), srid=SRID)),
        Feeder(feeder_id="XL-1", feeder_name="10kV龙华线", station_id="BDZ-1", source_node="N1"),
        Edge(edge_id="SB-1", kind="breaker", feeder_id="XL-1", from_node="N0", to_node="N1"),
        Edge(edge_id="SB-2", kind="line", feeder_id="XL-1", from_node="N1", to_node="N2",
             length_m=850.5,
             geom=from_shape(LineString([(113.26, 23.12), (113.2644, 23.1291)]), srid=SRID)),
        Edge(edge_id="SB-3", kind="switch", feeder_id=None, from_node="N2", to_node="N9",
             normal_open=True),
        Transformer(transformer_id="PB-1", transformer_name="龙华村1号配变", feeder_id="XL-1",
                    node="N2", capacity_kva=400, marketing_area_code="TQ1",
                    geom=from_shape(T1_AT, srid=SRID)),
        TransformerArea(area_code="TQ1", area_name="龙华村#1台区", pms_transformer_id="PB-1",
                        capacity_kva=400),
        Customer(customer_id="0300000000001", area_code="TQ1", phase="A", contract_kva=8,
                 voltage_class="220V", source_file_id=source.id, source_line=2,
                 transformer_id="PB-1", link_method="cross_system_id", link_confidence=0.99,
                 updated_at=dt.datetime(2026, 5, 1, 8, 30, tzinfo=dt.UTC),
                 geom=from_shape(Point(113.2646, 23.1292), srid=SRID),
                 personal=CustomerPersonal(customer_name="张伟", phone="13800138000",
                                           address="广东省广州市天河区龙华路1号")),
        Customer(customer_id="0300000000002", area_code="TQ1", phase="B",
                 geom=from_shape(FAR, srid=SRID)),
        Link(kind="area_transformer", from_id="TQ1", to_id="PB-1",
             method="cross_system_id", confidence=0.99, run_id=run.id,
             evidence={"score": 9, "by_pms_id": True}),
    ])
    session.commit()


def test_round_trip_every_entity(engine: Engine) -> None:
    with Session(engine) as session:
        _network(session)
    with Session(engine) as session:
        customer = session.get(Customer, "0300000000001")
        assert customer is not None and customer.personal is not None
        assert customer.personal.customer_name == "张伟"
        assert customer.updated_at is not None
        assert customer.updated_at.replace(tzinfo=dt.UTC) == dt.datetime(2026, 5, 1, 8, 30,
                                                                          tzinfo=dt.UTC)
        assert customer.source_line == 2
        assert to_shape(customer.geom).equals_exact(Point(113.2646, 23.1292), 1e-9)
        line = session.get(Edge, "SB-2")
        assert line is not None and line.geom is not None
        assert to_shape(line.geom).equals_exact(
            LineString([(113.26, 23.12), (113.2644, 23.1291)]), 1e-9
        )
        tie = session.get(Edge, "SB-3")
        assert tie is not None and tie.normal_open is True and tie.feeder_id is None
        link = session.scalars(select(Link)).one()
        assert link.evidence == {"score": 9, "by_pms_id": True}
        assert (customer.transformer_id, customer.link_method) == ("PB-1", "cross_system_id")
        assert session.get(Station, "BDZ-1").station_name == "110kV龙华站"  # type: ignore[union-attr]


def test_spatial_query_finds_customers_near_transformer(engine: Engine) -> None:
    """A bounding-box query through the spatial function set of either backend."""
    with Session(engine) as session:
        _network(session)
        box = func.ST_GeomFromText(
            "POLYGON((113.25 23.11, 113.28 23.11, 113.28 23.14, 113.25 23.14, 113.25 23.11))", SRID
        )
        near = session.scalars(
            select(Customer.customer_id).where(func.ST_Intersects(Customer.geom, box))
        ).all()
        assert near == ["0300000000001"]
        transformer_geom = select(Transformer.geom).where(
            Transformer.transformer_id == "PB-1"
        ).scalar_subquery()
        by_distance = session.execute(
            select(Customer.customer_id, func.ST_Distance(Customer.geom, transformer_geom))
            .order_by(func.ST_Distance(Customer.geom, transformer_geom))
        ).all()
        assert [row[0] for row in by_distance] == ["0300000000001", "0300000000002"]
        assert by_distance[0][1] < 0.001 < by_distance[1][1]  # degrees


def test_personal_data_deleted_with_customer(engine: Engine) -> None:
    with Session(engine) as session:
        _network(session)
        session.delete(session.get(Customer, "0300000000001"))
        session.commit()
        assert session.get(CustomerPersonal, "0300000000001") is None


@pytest.mark.parametrize(
    "bad",
    [
        Link(kind="customer_transformer", from_id="C", to_id="T", method="guess",
             confidence=0.5),
        Link(kind="customer_transformer", from_id="C", to_id="T", method="name_match",
             confidence=1.5),
        Edge(edge_id="E", kind="wire", from_node="a", to_node="b"),
        Customer(customer_id="C", area_code="A", contract_kva=-1),
        Customer(customer_id="C", area_code="A", transformer_id="T", link_method="guess",
                 link_confidence=0.5),
        Customer(customer_id="C", area_code="A", transformer_id="T", link_method="steward",
                 link_confidence=2.0),
        Finding(fingerprint="f", rule="r", dimension="completeness", severity="urgent",
                entity_type="customer", entity_id="C", message="m"),
        OutageEvent(kind="rolling", started_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
    ],
    ids=["link-method", "link-confidence", "edge-kind", "contract-kva",
         "customer-link-method", "customer-link-confidence", "severity",
         "outage-kind"],
)
def test_check_constraints_reject_bad_values(engine: Engine, bad: object) -> None:
    with Session(engine) as session:
        session.add(bad)
        with pytest.raises(IntegrityError):
            session.commit()


def test_one_link_per_entity_and_kind(engine: Engine) -> None:
    with Session(engine) as session:
        for target in ("T1", "T2"):
            session.add(Link(kind="customer_transformer", from_id="C", to_id=target,
                             method="name_match", confidence=0.8))
        with pytest.raises(IntegrityError):
            session.commit()


def test_ingest_file_rows_must_add_up(engine: Engine) -> None:
    with Session(engine) as session:
        run = IngestRun(source="x", gridtopo_version="test")
        session.add(run)
        session.flush()
        session.add(IngestFile(run_id=run.id, table_name="customers", path="c.csv",
                               sha256="0" * 64, size_bytes=1, file_format="csv", rows_read=10,
                               rows_loaded=7, rows_quarantined=2, rows_merged=0))
        with pytest.raises(IntegrityError):
            session.commit()


def test_outage_event_keeps_devices(engine: Engine) -> None:
    start = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
    with Session(engine) as session:
        event = OutageEvent(kind="planned", started_at=start, reason="检修",
                            devices=[OutageDevice(device_id="SB-1"),
                                     OutageDevice(device_id="SB-2")])
        session.add(event)
        session.commit()
        event_id = event.id
    with Session(engine) as session:
        stored = session.get(OutageEvent, event_id)
        assert stored is not None
        assert sorted(d.device_id for d in stored.devices) == ["SB-1", "SB-2"]
        assert stored.status == "active"


@pytest.mark.slow
def test_geo_wheels_imported_after_spatialite_do_not_corrupt_memory(tmp_path: Path) -> None:
    """pyproj and pyogrio bundle PROJ/GDAL; SpatiaLite loads the system ones globally. The
    engine imports the wheels first; in the wrong order the process aborts at exit."""
    script = (
        "from gridtopo.db import open_engine\n"
        f"e = open_engine('sqlite:///{tmp_path / 'x.db'}', create=True)\n"
        "with e.connect() as c: c.exec_driver_sql('SELECT spatialite_version()')\n"
        "import pyproj, pyogrio\n"
        "pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform(113.0, 23.0)\n"
        "pyogrio.list_drivers()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-500:]
