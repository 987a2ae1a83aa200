"""API keys: created and revoked from the CLI, checked by the HTTP API.

A key is shown once, at creation; the database keeps only its SHA-256 (``key_hash``) and its
first characters (``key_prefix``) to recognise it in listings. Scopes are among
:data:`~gridtopo.db.models.API_SCOPES`; ``admin`` grants every scope.

>>> key, info = create_key(engine, "95598", ["outage:read"])
>>> sorted(authenticate(engine, key).scopes), info["key_prefix"] == key[:len(info["key_prefix"])]
(['outage:read'], True)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from gridtopo.clock import as_utc
from gridtopo.db.models import API_SCOPES, ApiKey
from gridtopo.errors import GridtopoError

KEY_PREFIX = "gt_"
PREFIX_LENGTH = 10
log = logging.getLogger(__name__)


class ApiKeyError(GridtopoError):
    """A key request that cannot be met: unknown scope, duplicate name, unknown key."""


class AuthenticationError(GridtopoError):
    """The presented API key is missing, unknown, revoked or expired (HTTP 401)."""

    http_status = 401
    http_headers = MappingProxyType({"WWW-Authenticate": "ApiKey"})


class ScopeError(GridtopoError):
    """The key lacks the scope a route needs (HTTP 403)."""

    http_status = 403


@dataclass(frozen=True)
class KeyInfo:
    """What the API needs to know about an authenticated key."""

    name: str
    scopes: tuple[str, ...]
    expires_at: dt.datetime | None

    def allows(self, scope: str) -> bool:
        """Whether the key holds ``scope`` (``admin`` holds them all)."""
        return scope in self.scopes or "admin" in self.scopes


def hash_key(key: str) -> str:
    """The SHA-256 hex digest stored for ``key``."""
    return hashlib.sha256(key.encode()).hexdigest()


def _as_dict(row: ApiKey) -> dict[str, Any]:
    return {"name": row.name, "key_prefix": row.key_prefix, "scopes": list(row.scopes),
            "created_at": as_utc(row.created_at), "created_by": row.created_by,
            "expires_at": as_utc(row.expires_at), "revoked_at": as_utc(row.revoked_at),
            "last_used_at": as_utc(row.last_used_at)}


def check_scopes(scopes: list[str]) -> list[str]:
    """``scopes`` without repeats; :class:`ApiKeyError` naming an unknown one."""
    unknown = [s for s in scopes if s not in API_SCOPES]
    if unknown or not scopes:
        raise ApiKeyError(f"unknown scope(s) {', '.join(unknown) or '(none given)'}: choose "
                          f"among {', '.join(API_SCOPES)}")
    return list(dict.fromkeys(scopes))


def create_key(
    engine: Engine, name: str, scopes: list[str], *, expires_at: dt.datetime | None = None,
    created_by: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """Create a key; return the key itself (show it once) and its stored description."""
    scopes = check_scopes(scopes)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, key_prefix=key[:PREFIX_LENGTH], key_hash=hash_key(key),
                 scopes=scopes, expires_at=as_utc(expires_at), created_by=created_by)
    try:
        with Session(engine) as session, session.begin():
            session.add(row)
            session.flush()
            return key, _as_dict(row)
    except IntegrityError as err:
        raise ApiKeyError(f"an API key named {name!r} exists already") from err


def list_keys(engine: Engine) -> list[dict[str, Any]]:
    """Every key's description (never the key or its hash), oldest first."""
    with Session(engine) as session:
        rows = session.execute(select(ApiKey).order_by(ApiKey.id)).scalars().all()
        return [_as_dict(r) for r in rows]


def revoke_key(engine: Engine, name_or_prefix: str) -> dict[str, Any]:
    """Revoke the key with that name or prefix; :class:`ApiKeyError` when none or ambiguous."""
    with Session(engine) as session, session.begin():
        rows = session.execute(select(ApiKey).where(or_(
            ApiKey.name == name_or_prefix, ApiKey.key_prefix == name_or_prefix))).scalars().all()
        if len(rows) != 1:
            raise ApiKeyError(f"{'no' if not rows else 'more than one'} API key named or "
                              f"prefixed {name_or_prefix!r}")
        rows[0].revoked_at = rows[0].revoked_at or dt.datetime.now(dt.UTC)
        session.flush()
        return _as_dict(rows[0])


def authenticate(engine: Engine, key: str | None) -> KeyInfo:
    """The key's :class:`KeyInfo`, or :class:`AuthenticationError` saying why not (no secret
    or stored value is echoed)."""
    if not key:
        raise AuthenticationError("missing API key: send it in the X-API-Key header")
    with Session(engine) as session:
        row = session.execute(
            select(ApiKey).where(ApiKey.key_hash == hash_key(key))).scalar_one_or_none()
        if row is None:
            raise AuthenticationError("invalid API key")
        if row.revoked_at is not None:
            raise AuthenticationError("API key revoked")
        expires = as_utc(row.expires_at)
        if expires is not None and expires <= dt.datetime.now(dt.UTC):
            raise AuthenticationError("API key expired")
        return KeyInfo(row.name, tuple(row.scopes), expires)


def touch_key(engine: Engine, key_hash: str, at: dt.datetime) -> None:
    """Record that the key with SHA-256 ``key_hash`` was used at ``at`` (``last_used_at``).

    Bookkeeping, run off the request path: a failed write (a locked SQLite file, a dropped
    connection) is logged and forgotten rather than failing anything.
    """
    try:
        with engine.begin() as conn:
            conn.execute(update(ApiKey).where(ApiKey.key_hash == key_hash)
                         .values(last_used_at=at))
    except SQLAlchemyError as err:
        log.warning("could not record the use of an API key: %s", err)
