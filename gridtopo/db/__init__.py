"""Storage: the model, engines for both backends, and migrations.

>>> from gridtopo.db import open_engine, upgrade
>>> example = open_engine("sqlite:///example.db", create=True)
>>> upgrade(example) == head_revision()
True
"""

from gridtopo.db.engine import backend_of, open_engine, parse_url, resolve_url
from gridtopo.db.migrate import current_revision, downgrade, head_revision, require_current, upgrade

__all__ = [
    "backend_of",
    "current_revision",
    "downgrade",
    "head_revision",
    "open_engine",
    "parse_url",
    "require_current",
    "resolve_url",
    "upgrade",
]
