"""CGMES (IEC 61970-600, ENTSO-E) export: the EQ, TP, SSH and SV instance files that
CGMES tools (pypowsybl, pandapower's CIM converter) load and compute on.

``gridtopo export cgmes FILE.zip|DIR [--version 2.4.15|3.0]`` writes four instance files,
``<name>_EQ.xml``, ``<name>_TP.xml``, ``<name>_SSH.xml``, ``<name>_SV.xml`` — into a zip
(``<name>`` = the zip's stem) or a directory (``<name>`` = its name). Each has its
``md:FullModel`` header: ``Model.profile`` URIs of the version (:mod:`.versions`),
``modelingAuthoritySet``, ``scenarioTime`` (the time of the snapshot the export shows),
``created``, and ``DependentOn`` (TP and SSH on EQ, SV on TP and SSH). The model is a
self-contained node-breaker model of the distribution network with no boundary objects.

=====================  =================================================================
gridtopo               CGMES
=====================  =================================================================
station                ``Substation`` (in one ``SubGeographicalRegion``)
feeder                 ``Line`` (its conductors) and ``VoltageLevel`` ``_VLF.<feeder>`` (its
                       line junctions, in its station's substation); neither version's EQ
                       profile has ``Feeder``
switching devices      a ``VoltageLevel`` per group of nodes joined by switching devices
                       (station bus, ring main unit, pole switch, tie, fuse), in the station's,
                       the transformer's or a switching point's substation
                       (:func:`.grid.build_grid` says why)
connectivity node      ``ConnectivityNode`` in its voltage level, at the voltage of the
                       smallest feeder id among the equipment on it
line, cable            ``ACLineSegment`` with ``r``, ``x``, ``bch`` of the typical conductor
                       (:mod:`gridtopo.exports.electrical`), ``length`` in km
breaker, recloser      ``Breaker``
switch                 ``LoadBreakSwitch``
fuse                   ``Switch`` (3.0's ``Fuse`` is read by neither pypowsybl nor pandapower)
normal state           EQ ``Switch.normalOpen``; SSH ``Switch.open`` (normally open or out of
                       service) and ``ACDCTerminal.connected`` (in service)
transformer            ``PowerTransformer`` in its own ``Substation`` ``_DS.<id>`` with two
                       ``PowerTransformerEnd`` s (Dyn11, typical S13 impedance and losses):
                       end 1 at its feeder node, end 2 at ``<id>.LV`` in a 0.4 kV level
the 台区 load           ``EnergyConsumer`` ``<id>.LOAD`` at the 0.4 kV node, constant power
                       (``LoadResponseCharacteristic``); SSH ``p``/``q`` from the load model
                       (:mod:`gridtopo.exports.demand`)
feeder supply          ``ExternalNetworkInjection`` where each supplying feeder's supply
                       enters (the station bus beyond the feeder breaker), with a voltage
                       ``RegulatingControl`` at 1.0 pu and ``referencePriority`` 1
topology               TP ``TopologicalNode`` s (nodes joined by closed switches)
state                  SV flat start, ``SvStatus``, ``TopologicalIsland`` s (:mod:`.sv`)
=====================  =================================================================

Transformers without a connectivity node cannot be connected and are left out. The layout is
computed in memory (:mod:`.grid`: frames of the scope's equipment, about as large as the
pandapower export's), then each file is written as a stream.

>>> import zipfile
>>> counts = export_cgmes(engine, Path("grid.zip"), version="3.0")
>>> [counts[c] for c in ("Substation", "ConnectivityNode", "PowerTransformer", "TopologicalNode")]
[26, 116, 36, 66]
>>> sorted(zipfile.ZipFile("grid.zip").namelist())
['grid_EQ.xml', 'grid_SSH.xml', 'grid_SV.xml', 'grid_TP.xml']
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
import zipfile
from collections import Counter
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine

from gridtopo import __version__
from gridtopo.db.read.asof import list_snapshots
from gridtopo.db.read.scope import Scope, open_view
from gridtopo.errors import GridtopoError
from gridtopo.exports.cgmes import eq, ssh, sv, tp
from gridtopo.exports.cgmes.grid import Grid, build_grid
from gridtopo.exports.cgmes.rdf import Document, Header
from gridtopo.exports.cgmes.versions import DEPENDS_ON, PROFILES, VERSIONS
from gridtopo.exports.demand import LoadModel
from gridtopo.exports.files import atomic_open, atomic_path, refuse_existing
from gridtopo.progress import ProgressCallback

DEFAULT_AUTHORITY = "urn:gridtopo:distribution"
"""``Model.modelingAuthoritySet`` unless the caller names its own (a URI of the grid company)."""
WRITERS = {"EQ": eq.write, "TP": tp.write, "SSH": ssh.write, "SV": sv.write}


class CgmesVersionError(GridtopoError):
    """A CGMES version gridtopo does not write."""


def file_names(path: Path) -> dict[str, str]:
    """``{profile: file name}`` of the instance files of an export to ``path``."""
    stem = path.stem if path.suffix.lower() == ".zip" else path.name
    return {profile: f"{stem}_{profile}.xml" for profile in PROFILES}


def _time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scenario_time(conn: Connection, run: int | None) -> dt.datetime:
    """When the exported state held: the export's snapshot (the latest for the current
    model), or now when the database has none."""
    shots = [s for s in list_snapshots(conn) if run is None or s.run_id <= run]
    return shots[-1].created_at if shots else dt.datetime.now(dt.UTC)


def _headers(run: int | None, scenario: dt.datetime, authority: str) -> dict[str, Header]:
    ids = {profile: f"urn:uuid:{uuid.uuid4()}" for profile in PROFILES}
    created = _time(dt.datetime.now(dt.UTC))
    as_of = f" as of run {run}" if run is not None else ""
    return {profile: Header(
        model_id=ids[profile], scenario_time=_time(scenario), created=created,
        description=f"gridtopo {__version__} {profile} of the distribution model{as_of}",
        authority=authority, depends_on=tuple(ids[d] for d in DEPENDS_ON[profile]),
    ) for profile in PROFILES}


def export_cgmes(
    engine: Engine,
    path: Path,
    scope: Scope = Scope(),  # noqa: B008 - frozen dataclass
    *,
    version: str = "2.4.15",
    load_model: LoadModel = "contract",
    authority: str = DEFAULT_AUTHORITY,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> dict[str, int]:
    """Write the CGMES ``version`` instance files of ``scope`` to ``path`` (a ``.zip`` file,
    else a directory); return the objects defined per class over the four files."""
    if version not in VERSIONS:
        raise CgmesVersionError(f"CGMES version {version!r}: expected one of "
                                + ", ".join(VERSIONS))
    names = file_names(path)
    as_zip = path.suffix.lower() == ".zip"
    refuse_existing([path] if as_zip else [path / n for n in names.values()], overwrite)
    if progress:
        progress("cgmes layout", 0, 1)
    with engine.connect() as conn:
        view = open_view(conn, scope)
        grid = build_grid(conn, view, load_model)
        headers = _headers(view.run, _scenario_time(conn, view.run), authority)
    if progress:
        progress("cgmes layout", 1, 1)
    counts: Counter[str] = Counter()

    def write(profile: str, handle: IO[str]) -> None:
        counts.update(_write_profile(handle, grid, version, profile, headers[profile]))
        if progress:
            progress(f"cgmes {profile}", 1, 1)

    if as_zip:
        with atomic_path(path) as partial, zipfile.ZipFile(partial, "w",
                                                           zipfile.ZIP_DEFLATED) as archive:
            for profile in PROFILES:
                with archive.open(names[profile], "w", force_zip64=True) as raw, \
                        io.TextIOWrapper(raw, encoding="utf-8") as text:
                    write(profile, text)
    else:
        for profile in PROFILES:
            with atomic_open(path / names[profile], "w", encoding="utf-8") as handle:
                write(profile, handle)
    return dict(counts)


def _write_profile(handle: IO[str], grid: Grid, version: str, profile: str,
                   header: Header) -> Counter[str]:
    doc = Document(handle, VERSIONS[version], profile, header)
    WRITERS[profile](doc, grid)
    doc.close()
    return doc.counts
