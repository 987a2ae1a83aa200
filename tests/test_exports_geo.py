"""GeoPackage and GeoJSON: read back with pyogrio/geopandas with the model's counts and
geometry; the GeoPackage's spatial indexes as GDAL builds them; filters; masking; refusal and
a failing writer or index build leave no file under the final name."""

from __future__ import annotations

import errno
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyarrow as pa
import pyogrio
import pytest
import shapely
from click.testing import CliRunner
from sqlalchemy import Engine, text

from gridtopo.cli.main import main
from gridtopo.db.engine import sqlite_dbapi
from gridtopo.db.read.scope import Scope, UnknownFilterError
from gridtopo.errors import OutputExistsError
from gridtopo.exports import geo


def db_geometries(engine: Engine, table: str, key: str) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {key}, ST_AsText(geom) FROM {table}")).all()
    return {k: shapely.from_wkt(w) if w else None for k, w in rows}


def test_gpkg_and_geojson_read_back(model_engine: Engine, tmp_path: Path) -> None:
    gpkg = tmp_path / "model.gpkg"
    counts = geo.export_gpkg(model_engine, gpkg, customers=True)
    layers = dict(pyogrio.list_layers(gpkg))
    assert layers == {"stations": "Point", "feeders": None, "edges": "LineString",
                      "transformers": "Point", "customers": "Point", "layer_styles": None}
    edges_db = db_geometries(model_engine, "edges", "edge_id")
    with model_engine.connect() as conn:
        tables = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in ("stations", "feeders", "edges", "transformers", "customers")}
    assert counts == tables
    geojson = tmp_path / "geojson"
    assert geo.export_geojson(model_engine, geojson, customers=True) == {
        f"{k}.geojson": v for k, v in tables.items()}
    for frame in (gpd.read_file(gpkg, layer="edges"), gpd.read_file(geojson / "edges.geojson")):
        assert frame.crs.to_epsg() == 4326
        assert len(frame) == len(edges_db)
        for edge_id, geometry in zip(frame["edge_id"], frame.geometry, strict=True):
            expected = edges_db[edge_id]
            assert (geometry is None and expected is None) or shapely.equals_exact(
                geometry, expected, tolerance=1e-9)
    stations_db = db_geometries(model_engine, "stations", "station_id")
    stations = gpd.read_file(gpkg, layer="stations")
    assert {k: (g.x, g.y) for k, g in zip(stations["station_id"], stations.geometry,
                                          strict=True)} == {
        k: (g.x, g.y) for k, g in stations_db.items()}
    feeders = pyogrio.read_dataframe(gpkg, layer="feeders", read_geometry=False)
    assert len(feeders) == tables["feeders"]
    customers = gpd.read_file(gpkg, layer="customers")
    assert customers["customer_name"].dropna().str.endswith("**").all()
    assert customers["transformer_id"].notna().sum() > 0.9 * len(customers)


def rtree_objects(gpkg: Path, table: str) -> dict[str, str]:
    """SQL of the R*Tree table and triggers of ``table`` in ``gpkg``, whitespace and case
    folded (GDAL's own text differs from ours only in spacing)."""
    db = sqlite_dbapi().connect(str(gpkg))
    try:
        rows = db.execute("SELECT name, sql FROM sqlite_master WHERE name LIKE ?",
                          (f"rtree_{table}_geom%",)).fetchall()
    finally:
        db.close()
    return {name: re.sub(r"\s+", "", sql).lower() for name, sql in rows if sql}


def test_gpkg_spatial_index(model_engine: Engine, tmp_path: Path) -> None:
    with model_engine.begin() as conn:  # a customer without coordinates has no index entry
        conn.execute(text("UPDATE customers SET geom = NULL WHERE customer_id = "
                          "(SELECT min(customer_id) FROM customers)"))
    gpkg = tmp_path / "model.gpkg"
    geo.export_gpkg(model_engine, gpkg, customers=True)
    spatial = ("customers", "edges", "stations", "transformers")
    db = sqlite_dbapi().connect(str(gpkg))
    try:
        extensions = db.execute("SELECT table_name, column_name, extension_name, definition, "
                                "scope FROM gpkg_extensions ORDER BY table_name").fetchall()
        assert extensions == [(t, "geom", *geo.RTREE_EXTENSION) for t in spatial]
        for table in spatial:
            assert db.execute(f"SELECT rtreecheck('rtree_{table}_geom')").fetchone() == ("ok",)
        boxes = {key: {k: box for k, *box in db.execute(
            f"SELECT t.{key}, r.minx, r.miny, r.maxx, r.maxy FROM rtree_{table}_geom r "
            f"JOIN {table} t ON t.fid = r.id")} for table, key in (("customers", "customer_id"),
                                                                   ("edges", "edge_id"))}
    finally:
        db.close()

    # one entry per non-null geometry, bounding it: SQLite stores float32 bounds rounded
    # outwards, at most about two float32 steps (2.4e-7 relative) away
    def near(outer: float, exact: float) -> bool:
        return abs(outer - exact) <= 2.4e-7 * abs(exact)

    customers = db_geometries(model_engine, "customers", "customer_id")
    points = {k: g for k, g in customers.items() if g is not None}
    assert len(points) == len(customers) - 1
    for key, expected in (("customer_id", points),
                          ("edge_id", db_geometries(model_engine, "edges", "edge_id"))):
        located = {k: g for k, g in expected.items() if g is not None}
        assert set(boxes[key]) == set(located)
        for k, (x0, y0, x1, y1) in boxes[key].items():
            bx0, by0, bx1, by1 = located[k].bounds
            assert x0 <= bx0 and y0 <= by0 and bx1 <= x1 and by1 <= y1
            assert near(x0, bx0) and near(y0, by0) and near(x1, bx1) and near(y1, by1)

    # the same table and triggers GDAL makes when it builds the index itself
    reference = tmp_path / "gdal.gpkg"
    point = shapely.to_wkb(shapely.points([113.0, 23.0]), flavor="iso")
    pyogrio.write_arrow(pa.table({"customer_id": ["x"], "geometry": [point]}), reference,
                        layer="customers", driver="GPKG", geometry_name="geometry",
                        geometry_type="Point", crs="EPSG:4326")
    assert rtree_objects(gpkg, "customers") == rtree_objects(reference, "customers") != {}

    # GDAL sees the index and a bounding-box read through it returns exactly the points inside
    info = pyogrio.read_info(gpkg, layer="customers")
    assert info["capabilities"]["fast_spatial_filter"]
    xs = sorted(g.x for g in points.values())
    ys = sorted(g.y for g in points.values())
    box = (xs[len(xs) // 4], ys[len(ys) // 4], xs[len(xs) // 2], ys[len(ys) // 2])
    inside = {k for k, g in points.items() if shapely.intersects(g, shapely.box(*box))}
    read = pyogrio.read_dataframe(gpkg, layer="customers", bbox=box, read_geometry=False,
                                  columns=["customer_id"])
    assert 0 < len(inside) < len(points) // 2
    assert set(read["customer_id"]) == inside and len(read) == len(inside)


def test_filters_and_errors(model_engine: Engine, model_db_url: str, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    with model_engine.connect() as conn:
        feeder, station = conn.execute(text(
            "SELECT feeder_id, station_id FROM feeders ORDER BY feeder_id LIMIT 1")).one()
        lon, lat = conn.execute(text(
            "SELECT ST_X(geom), ST_Y(geom) FROM transformers WHERE geom IS NOT NULL "
            "ORDER BY transformer_id LIMIT 1")).one()
        in_feeder = conn.execute(text("SELECT count(*) FROM edges WHERE feeder_id = :f"),
                                 {"f": feeder}).scalar_one()
    out = tmp_path / "feeder.gpkg"
    counts = geo.export_gpkg(model_engine, out, Scope(feeders=(feeder,)))
    assert counts["feeders"] == 1 and counts["edges"] == in_feeder and counts["stations"] == 1
    edges = gpd.read_file(out, layer="edges")
    assert set(edges["feeder_id"]) == {feeder}
    box = (lon - 0.002, lat - 0.002, lon + 0.002, lat + 0.002)
    boxed = geo.export_geojson(model_engine, tmp_path / "box", Scope(bbox=box))
    points = gpd.read_file(tmp_path / "box" / "transformers.geojson")
    assert boxed["transformers.geojson"] == len(points) >= 1
    assert points.geometry.within(shapely.box(*box)).all()
    by_station = geo.export_gpkg(model_engine, tmp_path / "s.gpkg", Scope(stations=(station,)))
    assert by_station["stations"] == 1
    with pytest.raises(UnknownFilterError, match="--feeder NOPE"):
        geo.export_gpkg(model_engine, tmp_path / "x.gpkg", Scope(feeders=("NOPE",)))
    with pytest.raises(OutputExistsError):
        geo.export_gpkg(model_engine, out)

    result = CliRunner().invoke(main, ["--db", model_db_url, "export", "gpkg", str(out)])
    assert result.exit_code == 2 and result.stderr.startswith("Error: ")
    result = CliRunner().invoke(main, ["--db", model_db_url, "export", "geojson",
                                       str(tmp_path / "y"), "--station", "NOPE"])
    assert result.exit_code == 2 and "--station NOPE" in result.stderr
    result = CliRunner().invoke(main, ["--db", model_db_url, "export", "gpkg",
                                       str(tmp_path / "z.gpkg"), "--bbox", "1,2,3"])
    assert result.exit_code == 2 and "--bbox" in result.stderr

    real = pyogrio.write_arrow

    def full_disk(table: Any, path: Any, layer: str | None = None, **kwargs: Any) -> Any:
        if layer == "transformers":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, path, layer=layer, **kwargs)

    monkeypatch.setattr(pyogrio, "write_arrow", full_disk)
    final = tmp_path / "full.gpkg"
    with pytest.raises(OSError, match="No space left"):
        geo.export_gpkg(model_engine, final)
    assert sorted(p.name for p in tmp_path.glob("*full*")) == []
    # the disk fills up while the spatial indexes are built: SQLite refuses to grow the file
    dbapi = sqlite_dbapi()

    class FullDisk:
        @staticmethod
        def connect(*args: Any, **kwargs: Any) -> Any:
            db = dbapi.connect(*args, **kwargs)
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            db.execute(f"PRAGMA max_page_count = {pages}")
            return db

    monkeypatch.setattr(pyogrio, "write_arrow", real)
    monkeypatch.setattr(geo, "sqlite_dbapi", FullDisk)
    with pytest.raises(dbapi.OperationalError, match="full"):
        geo.export_gpkg(model_engine, final)
    assert sorted(p.name for p in tmp_path.glob("*full*")) == []
    monkeypatch.setattr(geo.shapely, "to_geojson", lambda *a, **k: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(OSError):
        geo.export_geojson(model_engine, tmp_path / "gj")
    assert [p.name for p in (tmp_path / "gj").iterdir()] == []


GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"


def test_gdal_reads_every_layer(model_engine: Engine, tmp_path: Path) -> None:
    """GDAL (through pyogrio) opens every GeoPackage layer and GeoJSON file with the model's
    feature counts and EPSG:4326."""
    gpkg, geojson = tmp_path / "model.gpkg", tmp_path / "geojson"
    geo.export_gpkg(model_engine, gpkg, customers=True)
    geo.export_geojson(model_engine, geojson, customers=True)
    with model_engine.connect() as conn:
        tables = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in ("stations", "feeders", "edges", "transformers", "customers")}
    for layer, count in tables.items():
        for source, kwargs in ((gpkg, {"layer": layer}), (geojson / f"{layer}.geojson", {})):
            info = pyogrio.read_info(source, **kwargs)
            assert info["features"] == count, (source, layer)
            if layer == "feeders":
                assert info["geometry_type"] is None or source.suffix == ".geojson"
            else:
                assert info["crs"] == "EPSG:4326", (source, layer)
                assert info["geometry_type"] in ("Point", "LineString"), (source, layer)
            assert info["driver"] == ("GPKG" if source == gpkg else "GeoJSON")


def test_gpkg_follows_the_specification(model_engine: Engine, tmp_path: Path) -> None:
    """The checks of the GeoPackage 1.2+ requirements that GDAL's validate_gpkg.py makes,
    on the file gridtopo writes (core tables, their rows, geometry blobs, extensions)."""
    gpkg = tmp_path / "model.gpkg"
    geo.export_gpkg(model_engine, gpkg, customers=True)
    db = sqlite_dbapi().connect(str(gpkg))
    try:
        def rows(sql: str) -> list[Any]:
            return db.execute(sql).fetchall()

        assert rows("PRAGMA application_id") == [(GPKG_APPLICATION_ID,)]
        assert rows("PRAGMA user_version")[0][0] >= 10200
        assert rows("PRAGMA integrity_check") == [("ok",)]
        assert rows("PRAGMA foreign_key_check") == []
        srs = {r[0]: r for r in rows("SELECT srs_id, organization, organization_coordsys_id, "
                                     "definition FROM gpkg_spatial_ref_sys")}
        assert {-1, 0, 4326} <= set(srs) and srs[4326][1].upper() == "EPSG"
        assert all(r[3] for r in srs.values())  # every SRS has a definition
        existing = {r[0] for r in rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
        contents = {r[0]: r for r in rows("SELECT table_name, data_type, srs_id, min_x, max_x "
                                          "FROM gpkg_contents")}
        assert set(contents) <= existing
        assert set(contents) == {"stations", "feeders", "edges", "transformers", "customers",
                                 "layer_styles"}
        geometry = {r[0]: r for r in rows("SELECT table_name, column_name, geometry_type_name,"
                                          " srs_id, z, m FROM gpkg_geometry_columns")}
        assert set(geometry) == {t for t, r in contents.items() if r[1] == "features"}
        for table, (_, column, kind, srs_id, z, m) in geometry.items():
            assert contents[table][2] == srs_id == 4326 and (z, m) == (0, 0)
            assert kind == ("LINESTRING" if table == "edges" else "POINT")
            columns = {r[1] for r in rows(f"PRAGMA table_info({table})")}
            assert column in columns
            # GeoPackage binary: magic "GP", version 0, the layer's SRS id (little endian)
            blobs = rows(f"SELECT substr({column}, 1, 2), hex(substr({column}, 3, 1)), "
                         f"hex(substr({column}, 5, 4)) FROM {table} WHERE {column} NOT NULL")
            assert blobs and all(b[0] == b"GP" and b[1] == "00" for b in blobs)
            assert {b[2] for b in blobs} == {"E6100000"}  # 4326
        for table, column, name, _, scope in rows("SELECT * FROM gpkg_extensions"):
            assert table in existing and scope in ("read-write", "write-only")
            if column is not None:
                assert column in {r[1] for r in rows(f"PRAGMA table_info({table})")}
            if name == "gpkg_rtree_index":
                assert f"rtree_{table}_{column}" in {
                    r[0] for r in rows("SELECT name FROM sqlite_master")}
    finally:
        db.close()


def test_gpkg_default_styles_for_qgis(model_engine: Engine, tmp_path: Path) -> None:
    """layer_styles holds a default style per drawn layer, on the layer's geometry column,
    whose QML and SLD parse and whose rules name only fields the layer has; the edges' rules
    tell switching devices apart by state and colour lines by feeder."""
    import xml.etree.ElementTree as ET

    from gridtopo.exports import styles

    gpkg = tmp_path / "model.gpkg"
    geo.export_gpkg(model_engine, gpkg)
    styled = pyogrio.read_dataframe(gpkg, layer="layer_styles")
    info = {layer: pyogrio.read_info(gpkg, layer=layer) for layer in styled["f_table_name"]}
    assert sorted(styled["f_table_name"]) == ["edges", "stations", "transformers"]
    assert styled["useAsDefault"].all()
    db = sqlite_dbapi().connect(str(gpkg))
    try:
        columns = dict(db.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
    finally:
        db.close()
    for row in styled.itertuples():
        assert row.f_geometry_column == columns[row.f_table_name]
        qml = ET.fromstring(row.styleQML)
        rules = qml.findall("./renderer-v2/rules/rule")
        symbols = {s.get("name") for s in qml.findall("./renderer-v2/symbols/symbol")}
        assert rules and {r.get("symbol") for r in rules} == symbols
        expressions = [r.get("filter") for r in rules] + [
            o.get("value") for o in qml.iter("Option") if o.get("name") == "expression"]
        fields = set(info[row.f_table_name]["fields"])
        for expression in expressions:
            assert set(re.findall(r'"(\w+)"', expression)) <= fields, expression
        assert ET.fromstring(row.styleSLD.encode()).tag.endswith("StyledLayerDescriptor")
    edges = ET.fromstring(styled.set_index("f_table_name").at["edges", "styleQML"])
    filters = " ".join(r.get("filter") for r in edges.iter("rule"))
    assert "normal_open" in filters and "in_service" in filters and "kind" in filters
    assert styles.FEEDER_COLOUR in [o.get("value") for o in edges.iter("Option")]
