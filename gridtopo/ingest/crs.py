"""Coordinate systems of source coordinates, and their conversion to WGS 84.

Sources give lon/lat (or line vertices) in WGS 84 / CGCS2000 unless a profile names another
system: any EPSG code (or other definition) pyproj knows — e.g. ``EPSG:4547``, CGCS2000
3-degree Gauss-Krüger zone 38 — converted with :class:`pyproj.Transformer` (x = east first),
or ``gcj02`` / ``bd09``, the offset systems of Chinese web maps, converted with
:mod:`gridtopo.geo`. CGCS2000 (EPSG:4490) is treated as WGS 84, as everywhere in
gridtopo. Everything is vectorised over numpy arrays.

>>> lon, lat = to_wgs84(np.array([116.40337]), np.array([39.91793]), "gcj02")
>>> round(float(lon[0]), 4), round(float(lat[0]), 4)
(116.3971, 39.9165)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import pyproj
import shapely

from gridtopo.geo import bd09_to_wgs84, gcj02_to_wgs84

FloatArray = npt.NDArray[np.float64]

WGS84 = "EPSG:4326"
_WGS84_SPELLINGS = {"wgs84", "wgs 84", "epsg:4326", "4326", "cgcs2000", "epsg:4490", "4490"}
_OFFSET_SPELLINGS = {"gcj02": "gcj02", "gcj-02": "gcj02", "gcj": "gcj02",
                     "bd09": "bd09", "bd-09": "bd09", "bd09ll": "bd09"}
_OFFSET: dict[str, Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]] = {
    "gcj02": gcj02_to_wgs84,
    "bd09": bd09_to_wgs84,
}


def parse_crs(text: str) -> str:
    """Canonical spelling of a coordinate system: ``EPSG:4326`` for WGS 84 and CGCS2000,
    ``gcj02``/``bd09``, or the text itself once pyproj accepts it; ValueError otherwise.

    >>> parse_crs("CGCS2000"), parse_crs("GCJ-02"), parse_crs("EPSG:3857")
    ('EPSG:4326', 'gcj02', 'EPSG:3857')
    """
    key = text.strip().lower()
    if key in _WGS84_SPELLINGS:
        return WGS84
    if key in _OFFSET_SPELLINGS:
        return _OFFSET_SPELLINGS[key]
    try:
        crs = pyproj.CRS.from_user_input(text.strip())
    except pyproj.exceptions.CRSError:
        raise ValueError("not a coordinate system pyproj knows; use an EPSG code such as "
                         "EPSG:4547, or gcj02 / bd09") from None
    if crs.to_epsg() in (4326, 4490):
        return WGS84
    return text.strip()


def is_wgs84(crs: str | None) -> bool:
    """True when coordinates in ``crs`` need no conversion (None means WGS 84)."""
    return crs is None or parse_crs(crs) == WGS84


@lru_cache(maxsize=32)
def _transformer(crs: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(crs, WGS84, always_xy=True)


def to_wgs84(x: FloatArray, y: FloatArray, crs: str | None) -> tuple[FloatArray, FloatArray]:
    """Convert coordinates (east/lon ``x``, north/lat ``y``) in ``crs`` to WGS 84 lon/lat.

    NaN stays NaN; a point outside a projection's domain becomes ±inf or NaN, which range
    checks then reject.
    """
    if is_wgs84(crs):
        return x, y
    assert crs is not None
    name = parse_crs(crs)
    if name in _OFFSET:
        lon, lat = _OFFSET[name](x, y)
        return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    lon, lat = _transformer(name).transform(x, y)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def geometries_to_wgs84(geoms: npt.NDArray[np.object_], crs: str | None) -> npt.NDArray[np.object_]:
    """Convert an array of shapely geometries from ``crs`` to WGS 84 (vertex by vertex)."""
    if is_wgs84(crs):
        return geoms

    def convert(xy: FloatArray) -> FloatArray:
        lon, lat = to_wgs84(xy[:, 0].copy(), xy[:, 1].copy(), crs)
        return np.column_stack([lon, lat])

    return shapely.transform(geoms, convert)
