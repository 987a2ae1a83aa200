"""One CGMES instance file as RDF/XML, written as a stream: the header, then one object at a
time.

An object is either *defined* here (``rdf:ID``: the file that owns the class, EQ for
equipment) or *described* (``rdf:about="#id"``: attributes another profile adds to an object
defined elsewhere, e.g. SSH's ``Switch.open``). Values are written in CGMES units (kV, MW,
MVAr, MVA, ohm, siemens, km); ``None`` values and references are left out.

>>> import io
>>> out = io.StringIO()
>>> doc = Document(out, VERSIONS["3.0"], "SSH", Header("urn:uuid:1", "2024-12-31T00:00:00Z",
...                "2025-01-01T00:00:00Z", "example", "urn:example", ()))
>>> doc.describe("Breaker", "_E.SB-1", [("Switch.open", True)])
>>> doc.close()
>>> print(out.getvalue().splitlines()[-2])
<cim:Breaker rdf:about="#_E.SB-1"><cim:Switch.open>true</cim:Switch.open></cim:Breaker>
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

from gridtopo.exports.cgmes.versions import MD_NS, RDF_NS, VERSIONS, Version

__all__ = ["VERSIONS", "Document", "Header"]

Fields = Iterable[tuple[str, Any]]
Refs = Sequence[tuple[str, str | None]]


@dataclass(frozen=True)
class Header:
    """The ``md:FullModel`` of one instance file."""

    model_id: str
    scenario_time: str
    created: str
    description: str
    authority: str
    depends_on: tuple[str, ...]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.10g}"
    return escape(str(value))


class Document:
    """Writes one profile's instance file to ``handle`` and counts the objects it defines per
    class."""

    def __init__(self, handle: IO[str], version: Version, profile: str, header: Header) -> None:
        self.handle = handle
        self.version = version
        self.counts: Counter[str] = Counter()
        v = version
        lines = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<rdf:RDF xmlns:rdf="{RDF_NS}" xmlns:cim="{v.cim_ns}" xmlns:md="{MD_NS}" '
            f'xmlns:{v.extension_prefix}="{v.extension_ns}">',
            f"<md:FullModel rdf:about={quoteattr(header.model_id)}>",
            f"<md:Model.scenarioTime>{header.scenario_time}</md:Model.scenarioTime>",
            f"<md:Model.created>{header.created}</md:Model.created>",
            f"<md:Model.description>{escape(header.description)}</md:Model.description>",
            "<md:Model.version>1</md:Model.version>",
            *(f"<md:Model.DependentOn rdf:resource={quoteattr(d)}/>" for d in header.depends_on),
            *(f"<md:Model.profile>{p}</md:Model.profile>" for p in v.profiles[profile]),
            f"<md:Model.modelingAuthoritySet>{escape(header.authority)}"
            "</md:Model.modelingAuthoritySet>",
            "</md:FullModel>",
        ]
        handle.write("\n".join(lines) + "\n")

    def _write(self, cls: str, head: str, fields: Fields, refs: Refs,
               enums: Sequence[tuple[str, str]]) -> None:
        parts = [f"<cim:{cls} {head}>"]
        for name, value in fields:
            if value is not None:
                parts.append(f"<cim:{name}>{_text(value)}</cim:{name}>")
        parts.extend(f'<cim:{name} rdf:resource="#{target}"/>' for name, target in refs
                     if target is not None)
        parts.extend(f'<cim:{name} rdf:resource="{self.version.cim_ns}{value}"/>'
                     for name, value in enums)
        parts.append(f"</cim:{cls}>\n")
        self.handle.write("".join(parts))

    def define(self, cls: str, ident: str, fields: Fields = (), refs: Refs = (),
               enums: Sequence[tuple[str, str]] = (), *, identified: bool = True) -> None:
        """An object this file owns: ``rdf:ID``, and in 3.0 ``IdentifiedObject.mRID`` (the
        id without its leading ``_``) unless the class is no ``IdentifiedObject``."""
        if identified and self.version.mrid:
            fields = [("IdentifiedObject.mRID", ident[1:]), *fields]
        self._write(cls, f"rdf:ID={quoteattr(ident)}", fields, refs, enums)
        self.counts[cls] += 1

    def describe(self, cls: str, ident: str, fields: Fields = (), refs: Refs = (),
                 enums: Sequence[tuple[str, str]] = ()) -> None:
        """This profile's attributes of an object another file defines."""
        self._write(cls, f'rdf:about="#{ident}"', fields, refs, enums)

    def close(self) -> None:
        """End the document (the handle stays open)."""
        self.handle.write("</rdf:RDF>\n")
