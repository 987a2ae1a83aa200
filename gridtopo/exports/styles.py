"""Default layer styles in the GeoPackage, so a planner who opens it in QGIS sees the network.

QGIS reads a layer's default style from the GeoPackage's ``layer_styles`` table (the table
QGIS itself writes with "Save as Default"): one row per layer with the style as QML, and an
SLD version for other tools. gridtopo writes it as an attribute table registered in
``gpkg_contents``, as QGIS does.

* ``edges``: lines and cables coloured **per feeder** (a hue from the digits of
  ``feeder_id``, stepped by the golden angle so neighbouring feeders differ; ties without a
  feeder grey), switching devices drawn thin and grey with a square at their middle —
  **filled black when normally closed, white with a red outline when normally open**, crossed
  out (light grey) when out of service;
* ``transformers``: small squares in their feeder's colour, retired ones hollow;
* ``stations``: red triangles, labelled by name;
* ``customers`` (when exported): small grey dots.

The SLD (OGC SE 1.1) carries the same rules with fixed colours (SLD has no expression for a
colour per feeder).

>>> sorted(STYLED)
['customers', 'edges', 'stations', 'transformers']
>>> import xml.etree.ElementTree as ET
>>> ET.fromstring(qml("edges")).tag
'qgis'
>>> ET.fromstring(sld("edges")).tag
'{http://www.opengis.net/sld}StyledLayerDescriptor'

"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pyarrow as pa
import pyogrio

STYLES_TABLE = "layer_styles"
GEOMETRY_COLUMN = "geom"
SWITCHING = "'switch', 'breaker', 'recloser', 'fuse'"
FEEDER_COLOUR = (
    "if(\"feeder_id\" IS NULL, color_rgb(150,150,150), color_hsv("
    "(coalesce(to_int(right(regexp_replace(\"feeder_id\", '[^0-9]', ''), 6)), 0) * 137.508)"
    " % 360, 80, 80))"
)
"""QGIS expression: the colour of a feature's feeder."""


def _option(name: str, value: str, kind: str = "QString") -> str:
    return f'<Option name="{name}" type="{kind}" value={quoteattr(value)}/>'


def _data_defined(properties: dict[str, str]) -> str:
    body = "".join(
        f'<Option name="{key}" type="Map">{_option("active", "true", "bool")}'
        f'{_option("expression", expression)}{_option("type", "3", "int")}</Option>'
        for key, expression in properties.items())
    return ('<data_defined_properties><Option type="Map">' + _option("name", "")
            + f'<Option name="properties" type="Map">{body}</Option>'
            + _option("type", "collection") + "</Option></data_defined_properties>")


def _layer(cls: str, options: dict[str, str], data_defined: dict[str, str] | None = None,
           inner: str = "") -> str:
    opts = "".join(_option(k, v) for k, v in options.items())
    return (f'<layer class="{cls}" enabled="1" locked="0" pass="0">'
            f'<Option type="Map">{opts}</Option>{_data_defined(data_defined or {})}{inner}'
            "</layer>")


def _symbol(kind: str, name: str, *layers: str) -> str:
    return (f'<symbol type="{kind}" name="{name}" alpha="1" clip_to_extent="1" '
            f'force_rhr="0">{"".join(layers)}</symbol>')


def _marker(shape: str, fill: str, outline: str, size: str,
            data_defined: dict[str, str] | None = None) -> str:
    return _layer("SimpleMarker", {"name": shape, "color": fill, "outline_color": outline,
                                   "size": size, "size_unit": "MM", "outline_width": "0.3",
                                   "outline_width_unit": "MM"}, data_defined)


def _line(colour: str, width: str, data_defined: dict[str, str] | None = None,
          style: str = "solid") -> str:
    return _layer("SimpleLine", {"line_color": colour, "line_width": width,
                                 "line_width_unit": "MM", "line_style": style,
                                 "capstyle": "round", "joinstyle": "round"}, data_defined)


def _middle_marker(name: str, fill: str, outline: str) -> str:
    """A marker at the middle of a line (QGIS marker line, central point)."""
    inner = _symbol("marker", f"@{name}@1", _marker("square", fill, outline, "2.2"))
    return _layer("MarkerLine", {"placements": "CentralPoint", "placement": "centralpoint",
                                 "rotate": "1"}, inner=inner)


_RULES = {
    "edges": [
        ("lines and cables, coloured per feeder", f"\"kind\" NOT IN ({SWITCHING})",
         _symbol("line", "0", _line("31,120,180,255", "0.6", {"outlineColor": FEEDER_COLOUR}))),
        ("switching device, out of service",
         f"\"kind\" IN ({SWITCHING}) AND NOT coalesce(\"in_service\", true)",
         _symbol("line", "1", _line("200,200,200,255", "0.4", style="dash"),
                 _middle_marker("1", "230,230,230,255", "160,160,160,255"))),
        ("switching device, normally closed",
         f"\"kind\" IN ({SWITCHING}) AND coalesce(\"in_service\", true) "
         "AND NOT coalesce(\"normal_open\", false)",
         _symbol("line", "2", _line("90,90,90,255", "0.4"),
                 _middle_marker("2", "0,0,0,255", "0,0,0,255"))),
        ("switching device, normally open (tie)",
         f"\"kind\" IN ({SWITCHING}) AND coalesce(\"in_service\", true) "
         "AND coalesce(\"normal_open\", false)",
         _symbol("line", "3", _line("90,90,90,255", "0.4"),
                 _middle_marker("3", "255,255,255,255", "220,30,30,255"))),
    ],
    "transformers": [
        ("in service, coloured per feeder", "coalesce(\"status\", 'in_service') = 'in_service'",
         _symbol("marker", "0", _marker("square", "31,120,180,255", "40,40,40,255", "1.8",
                                        {"fillColor": FEEDER_COLOUR}))),
        ("retired", "coalesce(\"status\", 'in_service') <> 'in_service'",
         _symbol("marker", "1", _marker("square", "255,255,255,0", "120,120,120,255",
                                        "1.8"))),
    ],
    "stations": [
        ("station", "TRUE",
         _symbol("marker", "0", _marker("triangle", "220,30,30,255", "90,0,0,255", "4"))),
    ],
    "customers": [
        ("customer", "TRUE",
         _symbol("marker", "0", _marker("circle", "110,110,110,180", "110,110,110,0", "0.8"))),
    ],
}
STYLED = tuple(_RULES)
_LABELS = {"stations": "station_name"}


def qml(layer: str) -> str:
    """The QGIS style (QML) of ``layer``: a rule-based renderer (see the module doc)."""
    rules = "".join(f'<rule key="{{r{i}}}" label={quoteattr(label)} filter={quoteattr(rule)} '
                    f'symbol="{i}"/>' for i, (label, rule, _) in enumerate(_RULES[layer]))
    symbols = "".join(symbol for _, _, symbol in _RULES[layer])
    labels = ""
    if layer in _LABELS:
        labels = (f'<labeling type="simple"><settings calloutType="simple">'
                  f'<text-style fieldName="{_LABELS[layer]}" fontSize="9" '
                  'textColor="60,0,0,255"/><placement placement="0" dist="1.5"/>'
                  "</settings></labeling>")
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
            '<qgis version="3.28.0" styleCategories="Symbology|Labeling">'
            '<renderer-v2 type="RuleRenderer" symbollevels="0" enableorderby="0" '
            f'forceraster="0"><rules key="{{root}}">{rules}</rules><symbols>{symbols}'
            f"</symbols></renderer-v2>{labels}</qgis>")


_SLD_SYMBOLS: dict[str, list[tuple[str, str | None, str]]] = {
    "edges": [
        ("lines and cables", "NOT_SWITCHING", "<se:LineSymbolizer><se:Stroke>"
         '<se:SvgParameter name="stroke">#1f78b4</se:SvgParameter>'
         '<se:SvgParameter name="stroke-width">2</se:SvgParameter></se:Stroke>'
         "</se:LineSymbolizer>"),
        ("switching device, normally closed", "CLOSED", "<se:PointSymbolizer>"
         "<se:Geometry><ogc:Function name=\"centroid\"><ogc:PropertyName>geom"
         "</ogc:PropertyName></ogc:Function></se:Geometry><se:Graphic><se:Mark>"
         "<se:WellKnownName>square</se:WellKnownName><se:Fill>"
         '<se:SvgParameter name="fill">#000000</se:SvgParameter></se:Fill></se:Mark>'
         "<se:Size>8</se:Size></se:Graphic></se:PointSymbolizer>"),
        ("switching device, normally open (tie)", "OPEN", "<se:PointSymbolizer>"
         "<se:Geometry><ogc:Function name=\"centroid\"><ogc:PropertyName>geom"
         "</ogc:PropertyName></ogc:Function></se:Geometry><se:Graphic><se:Mark>"
         "<se:WellKnownName>square</se:WellKnownName><se:Fill>"
         '<se:SvgParameter name="fill">#ffffff</se:SvgParameter></se:Fill><se:Stroke>'
         '<se:SvgParameter name="stroke">#dc1e1e</se:SvgParameter></se:Stroke></se:Mark>'
         "<se:Size>8</se:Size></se:Graphic></se:PointSymbolizer>"),
    ],
    "transformers": [("transformer", None, "<se:PointSymbolizer><se:Graphic><se:Mark>"
                      "<se:WellKnownName>square</se:WellKnownName><se:Fill>"
                      '<se:SvgParameter name="fill">#1f78b4</se:SvgParameter></se:Fill>'
                      "</se:Mark><se:Size>6</se:Size></se:Graphic></se:PointSymbolizer>")],
    "stations": [("station", None, "<se:PointSymbolizer><se:Graphic><se:Mark>"
                  "<se:WellKnownName>triangle</se:WellKnownName><se:Fill>"
                  '<se:SvgParameter name="fill">#dc1e1e</se:SvgParameter></se:Fill></se:Mark>'
                  "<se:Size>12</se:Size></se:Graphic></se:PointSymbolizer>")],
    "customers": [("customer", None, "<se:PointSymbolizer><se:Graphic><se:Mark>"
                   "<se:WellKnownName>circle</se:WellKnownName><se:Fill>"
                   '<se:SvgParameter name="fill">#6e6e6e</se:SvgParameter></se:Fill></se:Mark>'
                   "<se:Size>3</se:Size></se:Graphic></se:PointSymbolizer>")],
}


def _sld_filter(kind: str | None) -> str:
    if kind is None:
        return ""
    switching = "".join(f"<ogc:PropertyIsEqualTo><ogc:PropertyName>kind</ogc:PropertyName>"
                        f"<ogc:Literal>{k}</ogc:Literal></ogc:PropertyIsEqualTo>"
                        for k in ("switch", "breaker", "recloser", "fuse"))
    is_switching = f"<ogc:Or>{switching}</ogc:Or>"
    if kind == "NOT_SWITCHING":
        return f"<ogc:Filter><ogc:Not>{is_switching}</ogc:Not></ogc:Filter>"
    flag = "true" if kind == "OPEN" else "false"
    return (f"<ogc:Filter><ogc:And>{is_switching}<ogc:PropertyIsEqualTo><ogc:PropertyName>"
            f"normal_open</ogc:PropertyName><ogc:Literal>{flag}</ogc:Literal>"
            "</ogc:PropertyIsEqualTo></ogc:And></ogc:Filter>")


def sld(layer: str) -> str:
    """The SLD (SE 1.1) of ``layer``, fixed colours."""
    rules = "".join(f"<se:Rule><se:Name>{escape(name)}</se:Name>{_sld_filter(kind)}{symbol}"
                    "</se:Rule>" for name, kind, symbol in _SLD_SYMBOLS[layer])
    return ('<?xml version="1.0" encoding="UTF-8"?><StyledLayerDescriptor version="1.1.0" '
            'xmlns="http://www.opengis.net/sld" xmlns:se="http://www.opengis.net/se" '
            'xmlns:ogc="http://www.opengis.net/ogc"><NamedLayer>'
            f"<se:Name>{layer}</se:Name><UserStyle><se:Name>{layer}</se:Name>"
            f"<se:FeatureTypeStyle>{rules}</se:FeatureTypeStyle></UserStyle></NamedLayer>"
            "</StyledLayerDescriptor>")


def add_layer_styles(path: Path, layers: list[str]) -> None:
    """Write the ``layer_styles`` table into the GeoPackage at ``path`` with the default
    style of each of ``layers`` that has one."""
    styled = [name for name in layers if name in _RULES]
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    table = pa.table({
        "f_table_catalog": [""] * len(styled),
        "f_table_schema": [""] * len(styled),
        "f_table_name": styled,
        "f_geometry_column": [GEOMETRY_COLUMN] * len(styled),
        "styleName": styled,
        "styleQML": [qml(name) for name in styled],
        "styleSLD": [sld(name) for name in styled],
        "useAsDefault": [True] * len(styled),
        "description": [f"gridtopo default style of {name}" for name in styled],
        "owner": [""] * len(styled),
        "ui": pa.array([None] * len(styled), pa.string()),
        "update_time": [now] * len(styled),
    })
    pyogrio.write_arrow(table, path, layer=STYLES_TABLE, driver="GPKG", append=True)
