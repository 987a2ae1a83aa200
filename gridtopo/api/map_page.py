"""The public outage map page (``GET /map``): one self-contained HTML document.

Nothing is downloaded at run time — no script, style sheet, font or map tile: the CSS and
JavaScript are inline, the outages are drawn as SVG in a plain lon/lat projection (longitude
scaled by the cosine of the middle latitude) fitted to the network's extent (light grey) and
the features, and listed in a table (feeder, areas, customers out, cause, ETR, current or
planned). The feed the page starts with is embedded (so it shows without a round trip) and
re-read from ``/v1/outages.geojson`` every 60 s.

Every text of the feed reaches the page through ``textContent`` or an SVG attribute set by
``setAttribute``, never parsed as HTML; the embedded feed is JSON whose ``<``, ``>`` and ``&``
are written as ``\\u003c`` … so that no reason text can close the script element:

>>> b"</script><b>" in map_page(b'{"cause": "</script><b>"}')
False
"""

from __future__ import annotations

CURRENT_COLOUR = (214, 39, 40)
"""The colour of an outage now (停电中): lines, points and the table's marks."""
PLANNED_COLOUR = (242, 142, 28)
"""The colour of a planned outage (计划停电)."""
EXTENT_GREY = (235, 238, 241)
"""The fill of the network's extent, the map's light grey frame (a tinted grey: no
anti-aliased text has it)."""
REFRESH_SECONDS = 60


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def embed_json(body: bytes) -> bytes:
    """JSON text made safe inside a ``<script>`` element: ``<``, ``>``, ``&`` and the two
    JavaScript line separators escaped (the JSON value is unchanged).

    >>> embed_json('{"a": "</script>&\u2028"}'.encode())
    b'{"a": "\\\\u003c/script\\\\u003e\\\\u0026\\\\u2028"}'
    """
    return (body.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")
            .replace("\u2028".encode(), b"\\u2028").replace("\u2029".encode(), b"\\u2029"))


_PAGE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; \
script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'none'">
<title>停电地图 Outage map</title>
<style>
body { font-family: sans-serif; margin: 0; color: #222; background: #fff; }
header { padding: 8px 16px; border-bottom: 1px solid #ddd; }
h1 { font-size: 20px; margin: 4px 0; }
#summary { font-size: 14px; color: #444; }
#map { display: block; width: 100%; height: 520px; background: #fff; }
table { border-collapse: collapse; margin: 8px 16px; font-size: 13px; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 4px 8px; text-align: left; }
th { background: #f6f6f6; }
td.num { text-align: right; }
.legend { display: inline-block; margin-left: 12px; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
</style>
</head>
<body>
<header>
<h1>停电地图 Outage map</h1>
<div id="summary">加载中 Loading…</div>
</header>
<svg id="map" xmlns="http://www.w3.org/2000/svg" role="img"
 aria-label="停电区域 outage areas"></svg>
<table id="outages">
<thead><tr><th>状态 Status</th><th>馈线 Feeder</th><th>台区 Areas</th>
<th>停电户数 Customers out</th><th>原因 Cause</th><th>开始 Started</th>
<th>预计恢复 ETR</th><th>事件 Events</th></tr></thead>
<tbody></tbody>
</table>
<script id="feed" type="application/json">@FEED@</script>
<script>
(function () {
  "use strict";
  var COLOURS = {current: "@CURRENT@", planned: "@PLANNED@"};
  var LABELS = {current: "停电中 current outage", planned: "计划停电 planned outage"};
  var SVG = "http://www.w3.org/2000/svg";
  var W = 1000, H = 520;

  function el(name, attrs, text) {
    var node = name.indexOf("svg:") === 0 ?
      document.createElementNS(SVG, name.slice(4)) : document.createElement(name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function eachPoint(geometry, visit) {
    if (!geometry) { return; }
    var c = geometry.coordinates;
    if (geometry.type === "Point") { visit(c); }
    else if (geometry.type === "MultiPoint" || geometry.type === "LineString") { c.forEach(visit); }
    else if (geometry.type === "MultiLineString" || geometry.type === "Polygon") {
      c.forEach(function (line) { line.forEach(visit); });
    }
  }

  function frame(feed) {
    var box = [Infinity, Infinity, -Infinity, -Infinity];
    function grow(p) {
      box = [Math.min(box[0], p[0]), Math.min(box[1], p[1]),
             Math.max(box[2], p[0]), Math.max(box[3], p[1])];
    }
    if (feed.extent) {
      grow([feed.extent[0], feed.extent[1]]);
      grow([feed.extent[2], feed.extent[3]]);
    }
    feed.features.forEach(function (f) { eachPoint(f.geometry, grow); });
    if (!isFinite(box[0])) { box = [113.2, 23.0, 113.4, 23.2]; }
    var kx = Math.cos((box[1] + box[3]) / 2 * Math.PI / 180);
    var spanX = Math.max((box[2] - box[0]) * kx, 1e-4), spanY = Math.max(box[3] - box[1], 1e-4);
    var scale = Math.min((W - 40) / spanX, (H - 40) / spanY);
    var ox = (W - spanX * scale) / 2, oy = (H - spanY * scale) / 2;
    return function (p) {
      return [ox + (p[0] - box[0]) * kx * scale, H - oy - (p[1] - box[1]) * scale];
    };
  }

  function path(points, project) {
    return points.map(function (p, i) {
      var xy = project(p);
      return (i ? "L" : "M") + xy[0].toFixed(1) + " " + xy[1].toFixed(1);
    }).join(" ");
  }

  function draw(svg, feed) {
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    var project = frame(feed);
    if (feed.extent) {
      var a = project([feed.extent[0], feed.extent[3]]);
      var b = project([feed.extent[2], feed.extent[1]]);
      svg.appendChild(el("svg:rect", {x: a[0], y: a[1], width: Math.max(b[0] - a[0], 1),
        height: Math.max(b[1] - a[1], 1), fill: "@GREY@", stroke: "#c8c8c8"}));
    }
    var order = feed.features.slice().sort(function (f, g) {  // current drawn last, on top
      return (f.properties.status === "current") - (g.properties.status === "current");
    });
    order.forEach(function (f) {
      var g = f.geometry, colour = COLOURS[f.properties.status] || "#000";
      if (!g) { return; }
      var title = el("svg:title", {}, (f.properties.feeder_name || f.properties.feeder_id || "") +
                     " " + (f.properties.area_name || "") + " " + LABELS[f.properties.status]);
      var shape;
      if (g.type === "MultiLineString") {
        var d = g.coordinates.map(function (l) { return path(l, project); }).join(" ");
        shape = el("svg:path", {d: d,
          fill: "none", stroke: colour, "stroke-width": 4, "stroke-linecap": "round"});
      } else if (g.type === "Polygon") {
        shape = el("svg:path", {d: path(g.coordinates[0], project) + " Z", fill: colour,
          "fill-opacity": 0.3, stroke: colour, "stroke-width": 3});
      } else {
        shape = el("svg:g", {});
        (g.type === "Point" ? [g.coordinates] : g.coordinates).forEach(function (p) {
          var xy = project(p);
          shape.appendChild(el("svg:circle", {cx: xy[0], cy: xy[1], r: 5, fill: colour}));
        });
      }
      shape.appendChild(title);
      svg.appendChild(shape);
    });
  }

  function when(text) { return text ? text.replace("T", " ").slice(0, 16) + " UTC" : "—"; }

  function table(body, feed) {
    while (body.firstChild) { body.removeChild(body.firstChild); }
    var areas = {};
    feed.features.forEach(function (f) {
      var p = f.properties;
      if (p.level !== "area") { return; }
      (areas[p.section] = areas[p.section] || [])
        .push(p.area_name || p.area_code || p.transformer_id);
    });
    feed.features.filter(function (f) { return f.properties.level === "feeder"; })
      .forEach(function (f) {
        var p = f.properties, names = areas[p.section] || [];
        var shown = names.slice(0, 3).join("、") + (names.length > 3 ? " …" : "");
        var row = el("tr", {"data-status": p.status});
        var mark = el("td", {});
        mark.appendChild(el("span", {"class": "swatch", style: "background:" + COLOURS[p.status]}));
        mark.appendChild(document.createTextNode(LABELS[p.status]));
        row.appendChild(mark);
        row.appendChild(el("td", {}, (p.feeder_name || "") + " (" + (p.feeder_id || "—") + ")"));
        row.appendChild(el("td", {},
                           p.transformers_out + " 台区 areas" + (shown ? ": " + shown : "")));
        row.appendChild(el("td", {"class": "num"}, p.customers_out));
        row.appendChild(el("td", {"class": "cause"}, p.cause || "—"));
        row.appendChild(el("td", {}, when(p.started_at)));
        row.appendChild(el("td", {}, when(p.etr)));
        row.appendChild(el("td", {}, p.event_ids.join(", ")));
        body.appendChild(row);
      });
  }

  function summary(node, feed) {
    var count = {current: 0, planned: 0}, customers = {current: 0, planned: 0};
    feed.features.forEach(function (f) {
      if (f.properties.level === "feeder") {
        count[f.properties.status] += 1;
        customers[f.properties.status] += f.properties.customers_out;
      }
    });
    while (node.firstChild) { node.removeChild(node.firstChild); }
    if (!count.current && !count.planned) {
      node.textContent = "目前没有停电 No outages now · 更新 updated " + when(feed.generated_at);
      return;
    }
    ["current", "planned"].forEach(function (s) {
      if (!count[s]) { return; }
      var item = el("span", {"class": "legend"});
      item.appendChild(el("span", {"class": "swatch", style: "background:" + COLOURS[s]}));
      item.appendChild(document.createTextNode(LABELS[s] + ": " + count[s] + " 条馈线 feeders, " +
                                               customers[s] + " 户 customers"));
      node.appendChild(item);
    });
    node.appendChild(el("span", {"class": "legend"}, "更新 updated " + when(feed.generated_at)));
  }

  function show(feed) {
    draw(document.getElementById("map"), feed);
    table(document.querySelector("#outages tbody"), feed);
    summary(document.getElementById("summary"), feed);
  }

  show(JSON.parse(document.getElementById("feed").textContent));
  setInterval(function () {
    fetch("/v1/outages.geojson", {cache: "no-store"}).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (feed) { if (feed) { show(feed); } }).catch(function () {});
  }, @REFRESH@ * 1000);
})();
</script>
</body>
</html>
"""


def map_page(feed: bytes) -> bytes:
    """The page, starting with the GeoJSON ``feed`` (as the feed route answers it)."""
    page = (_PAGE.replace("@CURRENT@", _hex(CURRENT_COLOUR))
            .replace("@PLANNED@", _hex(PLANNED_COLOUR))
            .replace("@GREY@", _hex(EXTENT_GREY)).replace("@REFRESH@", str(REFRESH_SECONDS)))
    head, tail = page.encode().split(b"@FEED@")
    return head + embed_json(feed) + tail
