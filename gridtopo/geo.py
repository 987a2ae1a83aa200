"""Coordinate helpers: the Chinese offset systems (GCJ-02, BD-09) and geodesic distances.

GCJ-02 ("Mars coordinates") is the obfuscated datum every Chinese web map and phone app uses;
BD-09 is Baidu's further offset of it. Exports typed in from such apps carry these offsets, so
the generator injects them as a defect and ingest converts them back. The forward transform is
the publicly documented "eviltransform" formula (Krasovsky ellipsoid constants); it has no
closed-form inverse, so :func:`gcj02_to_wgs84` refines the classic one-step approximation by
fixed-point iteration until it is exact to well under a millimetre.

All functions are vectorised: they take scalars or numpy arrays (broadcast together) and return
``(lon, lat)`` as float64 arrays (0-d for scalar input). Points outside China's bounding box are
returned unchanged, as the reference implementations do.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]

_A = 6378245.0  # semi-major axis of the Krasovsky 1940 ellipsoid used by GCJ-02
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = np.pi * 3000.0 / 180.0  # BD-09's rotation constant
_EARTH_RADIUS_M = 6371008.8  # mean Earth radius (IUGG), for haversine distances


def _as_arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon_a, lat_a = np.broadcast_arrays(np.asarray(lon, dtype=np.float64),
                                       np.asarray(lat, dtype=np.float64))
    return lon_a, lat_a


def out_of_china(lon: ArrayLike, lat: ArrayLike) -> npt.NDArray[np.bool_]:
    """True where a point lies outside the rectangle in which GCJ-02 applies an offset."""
    lon_a, lat_a = _as_arrays(lon, lat)
    return (lon_a < 72.004) | (lon_a > 137.8347) | (lat_a < 0.8293) | (lat_a > 55.8271)


def _gcj02_delta(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The GCJ-02 offset (degrees) to add to a WGS 84 point; zero outside China."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    d_lat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x + common
             + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
             + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    d_lon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x + common
             + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
             + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    rad_lat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    outside = out_of_china(lon, lat)
    return np.where(outside, 0.0, d_lon), np.where(outside, 0.0, d_lat)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """WGS 84 → GCJ-02 (the forward eviltransform formula)."""
    lon_a, lat_a = _as_arrays(lon, lat)
    d_lon, d_lat = _gcj02_delta(lon_a, lat_a)
    return lon_a + d_lon, lat_a + d_lat


def gcj02_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, tolerance_deg: float = 1e-10, max_iter: int = 30
) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 → WGS 84 by fixed-point iteration of the forward transform.

    The usual one-step inverse (subtract the offset evaluated at the GCJ-02 point) is off by up
    to a couple of metres; iterating ``w ← w − (f(w) − g)`` converges in a handful of steps to
    the point whose forward transform is ``g`` within ``tolerance_deg`` (1e-10° ≈ 0.01 mm).
    """
    g_lon, g_lat = _as_arrays(lon, lat)
    w_lon, w_lat = g_lon.copy(), g_lat.copy()
    for _ in range(max_iter):
        f_lon, f_lat = wgs84_to_gcj02(w_lon, w_lat)
        e_lon, e_lat = f_lon - g_lon, f_lat - g_lat
        w_lon = w_lon - e_lon
        w_lat = w_lat - e_lat
        if np.all(np.abs(e_lon) < tolerance_deg) and np.all(np.abs(e_lat) < tolerance_deg):
            break
    return w_lon, w_lat


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 → BD-09 (Baidu's published rotation-and-shift)."""
    x, y = _as_arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """BD-09 → GCJ-02 (the published approximate inverse, good to a few centimetres)."""
    lon_a, lat_a = _as_arrays(lon, lat)
    x = lon_a - 0.0065
    y = lat_a - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """WGS 84 → BD-09, through GCJ-02."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """BD-09 → WGS 84, through GCJ-02."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def haversine_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> FloatArray:
    """Great-circle distance in metres on the mean-radius sphere (≤0.5 % from the geodesic)."""
    l1, p1 = _as_arrays(lon1, lat1)
    l2, p2 = _as_arrays(lon2, lat2)
    p1r, p2r = np.radians(p1), np.radians(p2)
    d_lat = p2r - p1r
    d_lon = np.radians(l2 - l1)
    h = np.sin(d_lat / 2.0) ** 2 + np.cos(p1r) * np.cos(p2r) * np.sin(d_lon / 2.0) ** 2
    return 2.0 * _EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0)))


def offset_m(lon: ArrayLike, lat: ArrayLike, east_m: ArrayLike,
             north_m: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Move points by local east/north offsets in metres (flat-earth, fine below ~50 km)."""
    lon_a, lat_a = _as_arrays(lon, lat)
    east = np.asarray(east_m, dtype=np.float64)
    north = np.asarray(north_m, dtype=np.float64)
    d_lat = north / _EARTH_RADIUS_M * (180.0 / np.pi)
    d_lon = east / (_EARTH_RADIUS_M * np.cos(np.radians(lat_a))) * (180.0 / np.pi)
    return lon_a + d_lon, lat_a + d_lat


def distance_m(lon1: pl.Expr, lat1: pl.Expr, lon2: pl.Expr, lat2: pl.Expr) -> pl.Expr:
    """Equirectangular distance in metres between two lon/lat columns: exact enough below a
    few km, and columnar (the audit's distance rules use it too)."""
    kx = (lat1.radians().cos()) * 111_320.0
    return (((lon2 - lon1) * kx) ** 2 + ((lat2 - lat1) * 110_574.0) ** 2).sqrt()
