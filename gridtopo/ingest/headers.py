"""Match a file's headers to canonical fields.

A header names a field when, after :func:`normalise_header`, it equals the field's name or one
of its aliases (:mod:`gridtopo.ingest.tables`): case, surrounding and inner spaces,
underscores, hyphens, full-width forms and a trailing unit in brackets do not matter, so
``" 合同容量（kVA）"``, ``"Contract_KVA"`` and ``"contract kva"`` all name ``contract_kva``.
A profile's ``columns`` map overrides the aliases for the fields it names.

>>> from gridtopo.ingest.tables import TABLES
>>> m = map_headers(TABLES["customers"], ["户号", "户名", "台区编号", "备注"], "c.csv")
>>> m.fields["customer_id"], m.unknown
('户号', ('备注',))
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gridtopo.errors import InputError, snippets
from gridtopo.ingest.tables import Table, fold

_TRAILING_UNIT = re.compile(r"\s*[(\[【〔][^()\[\]【】〔〕]*[)\]】〕]\s*$")


def normalise_header(header: str) -> str:
    """The spelling-insensitive form of a header (see the module docstring).

    >>> [normalise_header(h) for h in ("合同容量（kVA）", " Customer ID ", "长度[m]")]
    ['合同容量', 'customerid', '长度']
    """
    text = unicodedata.normalize("NFKC", header).strip()
    stripped = _TRAILING_UNIT.sub("", text)
    return fold(stripped if stripped else text)


@dataclass(frozen=True)
class HeaderMap:
    """Which source column holds each canonical field.

    ``fields`` maps canonical field → source header (as in the file); ``unknown`` lists the
    headers that name no field (kept only in quarantined rows' ``raw``); ``ignored`` lists
    headers that name a field already taken by an earlier column, with that field.
    """

    fields: Mapping[str, str]
    unknown: tuple[str, ...]
    ignored: Mapping[str, str]

    def header_of(self, field: str) -> str | None:
        """The source header of ``field``, if the file has one."""
        return self.fields.get(field)


def alias_index(table: Table) -> dict[str, str]:
    """Normalised header → field for every name and alias of ``table``'s fields."""
    index: dict[str, str] = {}
    for f in table.fields:
        for header in f.headers:
            index.setdefault(normalise_header(header), f.name)
    return index


def map_headers(
    table: Table,
    headers: Sequence[str],
    path: str,
    columns: Mapping[str, str] | None = None,
    fixed: Mapping[str, str] | None = None,
    profile: str | None = None,
) -> HeaderMap:
    """Map ``headers`` (unique, in file order) of the file ``path`` to ``table``'s fields.

    ``columns`` is a profile's ``canonical = "source header"`` map (``profile`` names it in
    errors); ``fixed`` maps fields to columns a reader derived itself (a GIS layer's
    geometry), which win over everything. Raises :class:`InputError` when a ``columns`` entry
    names a header the file lacks, or when a required field has no column.
    """
    by_norm: dict[str, str] = {}
    for h in headers:
        by_norm.setdefault(normalise_header(h), h)
    fields: dict[str, str] = dict(fixed or {})
    for name, source in (columns or {}).items():
        if name in fields:
            continue
        found = by_norm.get(normalise_header(source))
        if found is None:
            where = f"{profile}: " if profile else ""
            raise InputError(
                f"{where}[{table.name}.columns] maps {name} to the header {source!r}, which "
                f"{path} does not have (its headers: {snippets(headers)})"
            )
        fields[name] = found
    taken = set(fields.values())
    index = alias_index(table)
    unknown: list[str] = []
    ignored: dict[str, str] = {}
    for h in headers:
        if h in taken:
            continue
        match = index.get(normalise_header(h))
        if match is None:
            unknown.append(h)
        elif match in fields:
            ignored[h] = match
        else:
            fields[match] = h
    missing = [f for f in table.fields if f.required and f.name not in fields]
    if missing:
        f = missing[0]
        raise InputError(
            f"{path}: no column for the required field {f.name} of {table.name}; accepted "
            f"headers: {', '.join(f.headers)} (or map one with [{table.name}.columns] "
            f"{f.name} = \"...\" in a profile). The file's headers: {snippets(headers)}"
        )
    ordered = {f.name: fields[f.name] for f in table.fields if f.name in fields}
    return HeaderMap(ordered, tuple(unknown), ignored)
