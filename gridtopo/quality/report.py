"""The audit report: one self-contained HTML file (inline CSS, JS and SVG; no network).

Sections: province scores, trend charts across audit runs, region scores, the worst feeders,
a map of findings (SVG scatter of their coordinates, coloured by severity) and the findings
table, sortable (click a header) and filterable (text box, rule and severity selects). The page
reads ``?q=TEXT&rule=R&severity=S&sort=COLUMN&dir=asc|desc`` on load, so a filtered view can be
bookmarked (and tested with a headless browser); the table's ``data-shown`` attribute holds the
number of rows shown. At most ``max_rows`` findings (worst severity first) are embedded; the
total is stated. GX data docs are linked relatively when they were built.

>>> from gridtopo.quality.audit import run_audit
>>> from gridtopo.quality.config import load_config
>>> from gridtopo.quality.scores import trend
>>> result = run_audit(engine, load_config(None), gx=False)
>>> with engine.connect() as conn:
...     page = write_report(Path("audit.html"), result, trend(conn), url, "2024-12-31")
>>> "<svg" in page.read_text(encoding="utf-8")
True
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import jinja2
import polars as pl

from gridtopo.quality.audit import AuditResult

SEVERITY_ORDER = {"critical": 0, "error": 1, "warning": 2, "info": 3}
COLOURS = {"critical": "#7b1fa2", "error": "#d32f2f", "warning": "#f57c00", "info": "#1976d2"}
SERIES = {"overall": "#263238", "completeness": "#2e7d32", "accuracy": "#1565c0",
          "timeliness": "#ef6c00"}

TEMPLATE = jinja2.Template("""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>gridtopo audit {{ run_id }}</title>
<style>
body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:1.5em;color:#222;max-width:1400px}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ccc}
.cards{display:flex;gap:1em}.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1.2em}
.card b{display:block;font-size:1.8em}.muted{color:#777;font-size:.9em}
table{border-collapse:collapse;font-size:.85em;width:100%}
th,td{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f5f5f5;cursor:pointer;user-select:none;position:sticky;top:0}
th[data-dir=asc]::after{content:" ▲"}th[data-dir=desc]::after{content:" ▼"}
.sev{color:#fff;border-radius:3px;padding:0 4px;font-size:.85em}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1.5em}
#controls{margin:.5em 0}#controls input{width:20em}
.scroll{max-height:40em;overflow:auto}
</style></head><body>
<h1>gridtopo data-quality audit — run {{ run_id }}</h1>
<p class="muted">{{ database }} · clock {{ now }} · {{ total }} findings
{% if gx_link %}· <a href="{{ gx_link }}">Great Expectations data docs</a>{% endif %}
{% if gx %}· GX checkpoint {{ "passed" if gx.success else "failed" }}
({{ gx.customers_validated }} of {{ gx.customers_population }} customers validated){% endif %}</p>
<div class="cards">{% for name, value in scores %}
<div class="card" id="score-{{ name }}">{{ name }}<b>{{ "%.1f"|format(value * 100) }}%</b></div>
{% endfor %}</div>
<div class="grid"><div>
<h2>Trend across audit runs (province)</h2>{{ trend_svg }}
</div><div>
<h2>Map of findings</h2>{{ map_svg }}
</div></div>
<div class="grid"><div>
<h2>Regions</h2>{{ regions_table }}
</div><div>
<h2>Worst feeders</h2>{{ feeders_table }}
</div></div>
<h2>Findings</h2>
<p class="muted">{{ shown_note }}</p>
<div id="controls"><input id="q" placeholder="filter: id, entity, message…">
<select id="rule"><option value="">all rules</option>{% for r in rules %}
<option>{{ r }}</option>{% endfor %}</select>
<select id="severity"><option value="">all severities</option>{% for s in severities %}
<option>{{ s }}</option>{% endfor %}</select> <span id="count"></span></div>
<div class="scroll"><table id="findings" data-shown="0"><thead><tr>
{% for c in columns %}<th data-col="{{ c }}">{{ c }}</th>{% endfor %}
</tr></thead><tbody></tbody></table></div>
<script id="data" type="application/json">{{ data }}</script>
<script>
(function(){
const cols={{ columns_json }};const colours={{ colours_json }};
const rows=JSON.parse(document.getElementById('data').textContent);
const table=document.getElementById('findings'),body=table.tBodies[0];
const q=document.getElementById('q'),rule=document.getElementById('rule'),
sev=document.getElementById('severity');
let sortCol=null,sortDir='asc';
function cell(r,c){const v=r[c];return v===null||v===undefined?'':v;}
function render(){
 const text=q.value.toLowerCase(),rv=rule.value,sv=sev.value;
 let shown=rows.filter(r=>(!rv||r.rule===rv)&&(!sv||r.severity===sv)&&
  (!text||cols.some(c=>String(cell(r,c)).toLowerCase().includes(text))));
 if(sortCol){shown.sort((a,b)=>{const x=cell(a,sortCol),y=cell(b,sortCol);
  const n=(typeof x==='number'&&typeof y==='number')?x-y:String(x).localeCompare(String(y));
  return sortDir==='asc'?n:-n;});}
 const html=[];for(const r of shown){html.push('<tr>'+cols.map(c=>{
  const v=String(cell(r,c)).replace(/&/g,'&amp;').replace(/</g,'&lt;');
  return c==='severity'?'<td><span class="sev" style="background:'+colours[v]+'">'+v+
   '</span></td>':'<td>'+v+'</td>';}).join('')+'</tr>');}
 body.innerHTML=html.join('');table.dataset.shown=shown.length;
 document.getElementById('count').textContent=shown.length+' shown';
 for(const th of table.tHead.rows[0].cells){
  if(th.dataset.col===sortCol){th.dataset.dir=sortDir;}else{delete th.dataset.dir;}}
}
for(const th of table.tHead.rows[0].cells){th.addEventListener('click',()=>{
 const c=th.dataset.col;sortDir=(sortCol===c&&sortDir==='asc')?'desc':'asc';sortCol=c;render();});}
for(const el of [q,rule,sev]){el.addEventListener('input',render);}
const p=new URLSearchParams(location.search);
q.value=p.get('q')||'';rule.value=p.get('rule')||'';sev.value=p.get('severity')||'';
if(p.get('sort')){sortCol=p.get('sort');sortDir=p.get('dir')==='desc'?'desc':'asc';}
render();
})();
</script></body></html>
""", autoescape=False)


def _table(frame: pl.DataFrame, percent: tuple[str, ...], table_id: str) -> str:
    """A static HTML table of ``frame`` (scores shown as percentages, missing values as —)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    rows = []
    for row in frame.iter_rows(named=True):
        cells = ["—" if v is None else f"{v * 100:.1f}%" if k in percent
                 else html.escape(str(v)) for k, v in row.items()]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def trend_svg(trend: pl.DataFrame, width: int = 600, height: int = 240) -> str:
    """Line chart of the province scores across runs (inline SVG)."""
    province = trend.filter(pl.col("level") == "province").sort("audit_run_id")
    if province.is_empty():
        return "<p>No audit run yet.</p>"
    n = province.height
    low = max(0.0, min(province.select(list(SERIES)).min().row(0)) - 0.02)
    pad = 36

    def xy(i: int, v: float) -> str:
        x = pad + (width - 2 * pad) * (i / (n - 1) if n > 1 else 0.5)
        y = height - pad - (height - 2 * pad) * ((v - low) / (1 - low) if low < 1 else 1)
        return f"{x:.1f},{y:.1f}"

    parts = [f'<svg id="trend" width="{width}" '
             f'height="{height}" role="img"><rect width="100%" height="100%" fill="#fff"/>',
             f'<text x="4" y="{pad}" font-size="10">100%</text>',
             f'<text x="4" y="{height - pad}" font-size="10">{low * 100:.0f}%</text>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
             'stroke="#999"/>']
    for k, (series, colour) in enumerate(SERIES.items()):
        values = province[series].to_list()
        points = " ".join(xy(i, v) for i, v in enumerate(values))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{points}"><title>{series}</title></polyline>')
        parts += [f'<circle cx="{xy(i, v).split(",")[0]}" cy="{xy(i, v).split(",")[1]}" '
                  f'r="3" fill="{colour}"/>' for i, v in enumerate(values)]
        parts.append(f'<text x="{pad + k * 120}" y="14" font-size="11" fill="{colour}">'
                     f'{series} {values[-1] * 100:.1f}%</text>')
    runs = province["audit_run_id"].to_list()
    parts += [f'<text x="{xy(i, low).split(",")[0]}" y="{height - pad + 14}" font-size="9" '
              f'text-anchor="middle">#{r}</text>' for i, r in enumerate(runs)]
    return "".join(parts) + "</svg>"


def map_svg(findings: pl.DataFrame, width: int = 600, height: int = 420) -> str:
    """Scatter of located findings on lon/lat (equirectangular), coloured by severity."""
    located = findings.drop_nulls(["lon", "lat"])
    if located.is_empty():
        return "<p>No located findings.</p>"
    x0, x1 = located["lon"].min(), located["lon"].max()
    y0, y1 = located["lat"].min(), located["lat"].max()
    span = max(x1 - x0, y1 - y0, 1e-3)  # type: ignore[operator]
    pad = 12
    scale = min(width, height) - 2 * pad
    parts = [f'<svg id="map" width="{width}" '
             f'height="{height}" role="img"><rect width="100%" height="100%" fill="#f8fbff" '
             'stroke="#ccd"/>']
    for row in located.sort("severity", descending=True).iter_rows(named=True):
        x = pad + (row["lon"] - x0) / span * scale
        y = height - pad - (row["lat"] - y0) / span * scale
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" '
                     f'fill="{COLOURS.get(row["severity"], "#000")}" fill-opacity="0.7">'
                     f'<title>{html.escape(row["rule"])} {html.escape(row["entity_id"])}'
                     '</title></circle>')
    legend = "".join(f'<text x="{pad + i * 80}" y="{height - 2}" font-size="11" fill="{c}">'
                     f'● {s}</text>' for i, (s, c) in enumerate(COLOURS.items()))
    return "".join(parts) + legend + "</svg>"


def write_report(path: Path, result: AuditResult, trend: pl.DataFrame, database: str,
                 now: str, max_rows: int = 5000) -> Path:
    """Write the HTML report of ``result`` to ``path``; return the path."""
    found = result.findings.with_columns(
        pl.col("severity").replace_strict(SEVERITY_ORDER, default=9).alias("_order"))
    embedded = found.sort("_order", "rule", "entity_id").head(max_rows)
    columns = ["id", "status", "severity", "rule", "dimension", "entity_type", "entity_id",
               "feeder_id", "message", "fix"]
    rows = embedded.with_columns(
        pl.col("suggested_fix").str.json_path_match("$.text").alias("fix")).select(columns)
    data = json.dumps(rows.to_dicts(), ensure_ascii=False).replace("</", "<\\/")
    cards = result.scorecards
    previous = trend.filter((pl.col("level") == "region")
                            & (pl.col("audit_run_id") < result.run_id))
    previous = previous.filter(pl.col("audit_run_id") == pl.col("audit_run_id").max()).select(
        "entity_id", pl.col("overall").alias("before"))
    regions = cards.filter(pl.col("level") == "region").join(
        previous, on="entity_id", how="left").sort("overall").select(
        pl.col("entity_id").alias("region"), "completeness", "accuracy", "timeliness",
        "overall", pl.format("{} pt", ((pl.col("overall") - pl.col("before")) * 100).round(1))
        .alias("change since last run"))
    feeders = cards.filter(pl.col("level") == "feeder").sort("overall").head(20).select(
        pl.col("entity_id").alias("feeder"), pl.col("entity_name").alias("name"),
        "completeness", "accuracy", "timeliness", "overall")
    pct = ("completeness", "accuracy", "timeliness", "overall")
    gx = result.gx
    gx_link = None
    if gx and gx.get("data_docs"):
        gx_link = os.path.relpath(gx["data_docs"], path.resolve().parent)
    province = result.scores["province"]
    page = TEMPLATE.render(
        run_id=result.run_id, database=html.escape(database), now=html.escape(now),
        total=f"{result.findings.height:,}", gx=gx, gx_link=gx_link,
        scores=[(k, province[k]) for k in ("overall", *pct[:3])],
        trend_svg=trend_svg(trend), map_svg=map_svg(embedded),
        regions_table=_table(regions, pct, "regions"),
        feeders_table=_table(feeders, pct, "worst-feeders"),
        shown_note=(f"{embedded.height:,} of {result.findings.height:,} findings embedded, "
                    "worst severity first; `gridtopo findings list --json` has them all"),
        rules=sorted(embedded["rule"].unique().to_list()),
        severities=[s for s in SEVERITY_ORDER if s in set(embedded["severity"].to_list())],
        columns=columns, columns_json=json.dumps(columns), colours_json=json.dumps(COLOURS),
        data=data,
    )
    path.write_text(page, encoding="utf-8")
    return path
