"""Ingest: read the marketing and distribution exports into validated canonical tables.

:func:`read_sources` finds and reads the exports under a directory (optionally guided by a
:class:`Profile` from :func:`load_profile`) and returns a :class:`SourceBundle`: per canonical
table (:data:`TABLES`) the loadable rows and the quarantined ones, plus a
:class:`FileAccount` for every file read. Loading into the database is
:mod:`gridtopo.pipeline`'s business.
"""

from gridtopo.ingest.contracts import contract
from gridtopo.ingest.profile import Profile, ProfileError, TableProfile, load_profile
from gridtopo.ingest.sources import FileAccount, SourceBundle, TableData, read_sources
from gridtopo.ingest.tables import TABLES, Field, Table, canonical_schema

__all__ = [
    "TABLES",
    "Field",
    "FileAccount",
    "Profile",
    "ProfileError",
    "SourceBundle",
    "Table",
    "TableData",
    "TableProfile",
    "canonical_schema",
    "contract",
    "load_profile",
    "read_sources",
]
