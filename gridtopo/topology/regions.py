"""Regions of the scorecard: the prefecture-level city (地级市) a station belongs to.

The model has no administrative field, so a station's region is taken from its **name** when
the name contains a city's name (``佛山110kV禅城站`` → 佛山), else from its **location**: the
city whose seat (the municipal government's position) is nearest. Nearest-seat is a Voronoi
approximation of the real boundaries; it is right for most stations and wrong only near a
boundary, which moves a station between two neighbouring cities' scorecards, never out of the
province. A station without name match or coordinates is in region ``未知`` (unknown).

>>> import polars as pl
>>> st = pl.DataFrame({"station_id": ["B1", "B2"], "station_name": ["110kV宁涌站", "佛山东站"],
...                    "lon": [113.70, None], "lat": [23.13, None]})
>>> station_regions(st)["region"].to_list()
['东莞', '佛山']
"""

from __future__ import annotations

import polars as pl

from gridtopo.geo import distance_m

UNKNOWN = "未知"

CITY_SEATS: dict[str, tuple[float, float]] = {
    "广州": (113.264, 23.129), "深圳": (114.058, 22.543), "珠海": (113.577, 22.271),
    "汕头": (116.682, 23.354), "佛山": (113.122, 23.021), "韶关": (113.597, 24.810),
    "湛江": (110.359, 21.271), "肇庆": (112.465, 23.047), "江门": (113.082, 22.579),
    "茂名": (110.925, 21.663), "惠州": (114.416, 23.112), "梅州": (116.122, 24.289),
    "汕尾": (115.375, 22.786), "河源": (114.700, 23.744), "阳江": (111.983, 21.858),
    "清远": (113.056, 23.682), "东莞": (113.752, 23.021), "中山": (113.392, 22.517),
    "潮州": (116.622, 23.657), "揭阳": (116.372, 23.550), "云浮": (112.044, 22.915),
}
"""Guangdong's 21 prefecture-level cities and the WGS 84 position of each city's seat."""


def station_regions(stations: pl.DataFrame) -> pl.DataFrame:
    """station_id → region (city name without 市) for stations (station_name, lon, lat)."""
    seats = pl.DataFrame({"city": list(CITY_SEATS),
                          "s_lon": [p[0] for p in CITY_SEATS.values()],
                          "s_lat": [p[1] for p in CITY_SEATS.values()]})
    named = pl.coalesce([
        pl.when(pl.col("station_name").str.contains(city, literal=True)).then(pl.lit(city))
        for city in CITY_SEATS
    ])
    nearest = (
        stations.drop_nulls(["lon", "lat"]).select("station_id", "lon", "lat")
        .join(seats, how="cross")
        .with_columns(distance_m(pl.col("lon"), pl.col("lat"), pl.col("s_lon"),
                                 pl.col("s_lat")).alias("d"))
        .sort("d").group_by("station_id", maintain_order=True).first()
        .select("station_id", pl.col("city").alias("nearest"))
    )
    return stations.select("station_id", named.alias("named")).join(
        nearest, on="station_id", how="left"
    ).select("station_id", pl.coalesce("named", "nearest", pl.lit(UNKNOWN)).alias("region"))
