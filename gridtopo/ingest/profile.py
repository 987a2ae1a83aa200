"""Profiles: a TOML file describing how one company's exports are laid out.

Built-in aliases and detection handle most exports; a profile covers the rest. Every key is
optional; any key ingest does not know is an error (a typo must not be silently ignored)::

    crs = "EPSG:4326"        # default coordinate system of every table's lon/lat
    encoding = "gbk"         # default encoding of every CSV/TSV file

    [customers]
    file = "营销/用户档案_*.csv"   # path or glob, relative to the SOURCE directory (or absolute)
    encoding = "gb18030"          # utf-8, utf-8-sig, gbk, gb18030 or any Python codec
    delimiter = "|"               # one character; "\\t" for TSV
    crs = "gcj02"                 # any EPSG code pyproj knows, or gcj02 / bd09
    columns = { customer_id = "用户编号(新)", contract_kva = "容量" }
    values = { status = { "在用" = "active", "拆除" = "closed" } }

    [transformers]
    file = "pms.gpkg"
    layer = "配变"                # GeoPackage layer (default: the one named like the table)

    [stations]
    file = "台账.xlsx"
    sheet = "变电站"              # sheet name, or its 1-based number (default: the first)

``region`` and ``[limits]`` change the limits of :mod:`gridtopo.ingest.limits`.

``file`` paths and globs must stay inside the source directory (an absolute path is allowed
only when it points into it): a pattern that climbs out with ``..`` is refused. ``file`` globs
are relative to the source directory given to ``gridtopo ingest`` so that one
profile serves every month's export folder. ``columns`` maps canonical field → source header
(matched like aliases: case, spaces, full-width and a trailing unit ignored). ``values`` maps,
per enum or yes/no field, source spellings to canonical values; they extend the built-in maps.

>>> _ = Path("profile.toml").write_text("\\n".join(["[customers]", 'crs = "gcj02"']))
>>> load_profile(Path("profile.toml")).table("customers").crs
'gcj02'
"""

from __future__ import annotations

import codecs
import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gridtopo.errors import InputError
from gridtopo.ingest.crs import parse_crs
from gridtopo.ingest.limits import LIMIT_KEYS, Limits
from gridtopo.ingest.tables import TABLES, Table

TOP_KEYS = ("crs", "encoding", "region", "limits")
TABLE_KEYS = ("file", "encoding", "delimiter", "sheet", "layer", "crs", "columns", "values")


class ProfileError(InputError):
    """A profile cannot be read or says something ingest does not understand."""


@dataclass(frozen=True)
class TableProfile:
    """What a profile says about one table (``None``/empty = not said)."""

    file: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | int | None = None
    layer: str | None = None
    crs: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, str | bool]] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    """A loaded, validated profile."""

    path: Path
    crs: str | None = None
    encoding: str | None = None
    tables: Mapping[str, TableProfile] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)

    def table(self, name: str) -> TableProfile:
        """Settings of table ``name`` with the top-level ``crs``/``encoding`` as defaults."""
        own = self.tables.get(name, TableProfile())
        return replace(own, crs=own.crs or self.crs, encoding=own.encoding or self.encoding)


def _unknown(where: str, key: str, section: str, known: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
    place = "at the top level" if section == "top-level" else f"in {section}"
    return f"{where}: unknown key {key!r} {place}{hint}"


def _string(where: str, section: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ProfileError(f"{where}: {section} {key} must be a non-empty string, "
                           f"got {value!r}")
    return value


def _encoding(where: str, section: str, value: Any) -> str:
    name = _string(where, section, "encoding", value)
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise ProfileError(f"{where}: {section} encoding {name!r} is not an encoding Python "
                           "knows (use utf-8, utf-8-sig, gbk or gb18030)") from None


def _crs(where: str, section: str, value: Any) -> str:
    text = _string(where, section, "crs", value)
    try:
        return parse_crs(text)
    except ValueError as err:
        raise ProfileError(f"{where}: {section} crs {text!r}: {err}") from None


def _columns(where: str, table: Table, value: Any) -> dict[str, str]:
    section = f"[{table.name}.columns]"
    if not isinstance(value, dict):
        raise ProfileError(f"{where}: {section} must be a table of field = \"header\"")
    for key, header in value.items():
        if key not in table.columns:
            raise ProfileError(_unknown(where, key, section, list(table.columns)))
        _string(where, section, key, header)
    return dict(value)


def _values(where: str, table: Table, value: Any) -> dict[str, dict[str, str | bool]]:
    section = f"[{table.name}.values]"
    if not isinstance(value, dict):
        raise ProfileError(f"{where}: {section} must be a table of field = {{ ... }}")
    mappable = [f.name for f in table.fields if f.kind in ("enum", "boolean")]
    out: dict[str, dict[str, str | bool]] = {}
    for key, spellings in value.items():
        if key not in mappable:
            raise ProfileError(_unknown(where, key, section, mappable))
        if not isinstance(spellings, dict):
            raise ProfileError(f"{where}: {section} {key} must be a table of "
                               "\"source value\" = canonical value")
        f = table.field(key)
        for source, target in spellings.items():
            ok = isinstance(target, bool) if f.kind == "boolean" else target in f.domain
            if not ok:
                allowed = "true or false" if f.kind == "boolean" else ", ".join(f.domain)
                raise ProfileError(f"{where}: {section} {key} maps {source!r} to {target!r}, "
                                   f"which is not one of {allowed}")
        out[key] = dict(spellings)
    return out


def _table(where: str, table: Table, raw: Any) -> TableProfile:
    section = f"[{table.name}]"
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: {table.name} must be a table ({section}), got {raw!r}")
    for key in raw:
        if key not in TABLE_KEYS:
            raise ProfileError(_unknown(where, key, section, TABLE_KEYS))
    sheet = raw.get("sheet")
    if sheet is not None and not (isinstance(sheet, str | int) and not isinstance(sheet, bool)):
        raise ProfileError(f"{where}: {section} sheet must be a sheet name or its 1-based "
                           f"number, got {sheet!r}")
    if isinstance(sheet, int) and sheet < 1:
        raise ProfileError(f"{where}: {section} sheet numbers start at 1, got {sheet}")
    delimiter = raw.get("delimiter")
    if delimiter is not None:
        delimiter = {"tab": "\t", "\\t": "\t"}.get(delimiter, delimiter)
        if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\"\r\n":
            raise ProfileError(f"{where}: {section} delimiter must be one character other "
                               f"than a quote or newline, got {raw['delimiter']!r}")
    return TableProfile(
        file=_string(where, section, "file", raw["file"]) if "file" in raw else None,
        encoding=_encoding(where, section, raw["encoding"]) if "encoding" in raw else None,
        delimiter=delimiter,
        sheet=sheet,
        layer=_string(where, section, "layer", raw["layer"]) if "layer" in raw else None,
        crs=_crs(where, section, raw["crs"]) if "crs" in raw else None,
        columns=_columns(where, table, raw.get("columns", {})),
        values=_values(where, table, raw.get("values", {})),
    )


def _limits(where: str, data: dict[str, Any]) -> Limits:
    raw = data.get("limits", {})
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: limits must be a table ([limits])")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in LIMIT_KEYS:
            raise ProfileError(_unknown(where, key, "[limits]", LIMIT_KEYS))
        if key == "shrink_floor":
            ok = isinstance(value, int | float) and not isinstance(value, bool) \
                and 0 <= value <= 1
        else:
            ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
        if not ok:
            wanted = "a share from 0 to 1" if key == "shrink_floor" else "a positive integer"
            raise ProfileError(f"{where}: [limits] {key} must be {wanted}, got {value!r}")
        values[key] = value
    if "region" in data:
        box = data["region"]
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in box)
                or box[0] >= box[2] or box[1] >= box[3]):
            raise ProfileError(f"{where}: region must be [lon_min, lat_min, lon_max, lat_max] "
                               f"with min < max, got {box!r}")
        values["region"] = tuple(float(v) for v in box)
    return Limits(**values)


def load_profile(path: Path | str) -> Profile:
    """Read and validate the profile at ``path``; :class:`ProfileError` says what is wrong,
    naming the file, the section and the key."""
    path = Path(path)
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ProfileError(f"profile {where} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ProfileError(f"profile {where} cannot be read: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ProfileError(f"{where}: not valid TOML: {err}") from None
    known = (*TOP_KEYS, *TABLES)
    for key in data:
        if key not in known:
            raise ProfileError(_unknown(where, key, "top-level", known))
    return Profile(
        path=path,
        crs=_crs(where, "top-level", data["crs"]) if "crs" in data else None,
        encoding=_encoding(where, "top-level", data["encoding"]) if "encoding" in data else None,
        tables={name: _table(where, TABLES[name], data[name]) for name in TABLES if name in data},
        limits=_limits(where, data),
    )
