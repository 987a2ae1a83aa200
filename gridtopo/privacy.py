"""Customers' personal data: which fields it is, and the one rule that masks it.

Names, addresses and phone numbers (:data:`PERSONAL_FIELDS`, kept apart in
``customer_personal``) reach a caller without the right to see them — an API key lacking
``personal:read``, ``outage impact --phones`` or an export without ``--personal`` — masked by
the same rule, enough to confirm an identity on the phone but not to harvest it:

* a **name** shows its first character, then ``**`` (``张三丰`` → ``张**``); a one-character
  name shows nothing of itself (``张`` → ``**``);
* an 11-digit **mobile** number (with or without ``+86``/``86``, spaces or dashes) shows its
  first 3 and last 4 digits (``138****5678``); any **other number** ``****`` and at most its
  last 4 digits, at most half of its digits (``8123456`` → ``****456``);
* an **address** shows at most its first 6 characters, at most half of them, then ``**``
  (``广州市`` → ``广**``).

What is shown depends only on the shown characters and the length, never on the hidden rest.
The rule is written once, as polars expressions (:func:`mask_expression`), so that an export
masks 14 million rows vectorised; :func:`mask_frame` applies it to a frame's personal columns
and :func:`mask` to one value through the very same expressions.

>>> mask("customer_name", "张三丰"), mask("customer_name", "张")
('张**', '**')
>>> mask("phone", "+86 138-1234-5678"), mask("phone", "020-83456789"), mask("phone", "8123456")
('138****5678', '****6789', '****456')
>>> mask("address", "广东省广州市天河区体育西路1号"), mask("address", "广州市")
('广东省广州市**', '广**')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import polars as pl

PERSONAL_FIELDS: tuple[str, ...] = ("customer_name", "address", "phone")
"""Customers' personal-data fields: the ``customer_personal`` columns besides the id, the
fields ingest marks ``personal`` and the columns every output masks."""

NAME_SHOWN = 1
"""Characters of a name shown (of a name of at least twice as many)."""
ADDRESS_SHOWN = 6
"""Characters of an address shown at most (and at most half of them)."""
MOBILE_HEAD, MOBILE_TAIL = 3, 4
"""Digits of a mobile number shown before and after its mask."""
NUMBER_TAIL = 4
"""Last digits of any other number shown at most (and at most half of them)."""
TEXT_MASK, DIGIT_MASK = "**", "****"
"""What stands for the hidden part of a text and of a number, whatever its length."""


def _head(text: pl.Expr, limit: int) -> pl.Expr:
    """The first characters of ``text``: at most ``limit``, at most half of them."""
    return text.str.head(pl.min_horizontal(pl.lit(limit), text.str.len_chars() // 2))


def mask_name(name: pl.Expr) -> pl.Expr:
    """A name's first character and ``**`` (``**`` alone for a one-character name)."""
    return _head(name, NAME_SHOWN) + pl.lit(TEXT_MASK)


def mask_address(address: pl.Expr) -> pl.Expr:
    """An address's first characters (at most 6, at most half) and ``**``."""
    return _head(address, ADDRESS_SHOWN) + pl.lit(TEXT_MASK)


def mask_phone(phone: pl.Expr) -> pl.Expr:
    """``138****5678`` for an 11-digit mobile number (``+86``/``86``, spaces and dashes
    allowed); ``****`` and at most the last 4 digits, at most half, for any other number."""
    digits = phone.str.replace_all(r"[^0-9]", "")
    mobile = digits.str.contains(r"^(?:86)?1[0-9]{10}$")
    head = pl.when(mobile).then(digits.str.tail(11).str.head(MOBILE_HEAD)).otherwise(pl.lit(""))
    tail = (pl.when(mobile).then(pl.lit(MOBILE_TAIL))
            .otherwise(pl.min_horizontal(pl.lit(NUMBER_TAIL), digits.str.len_chars() // 2)))
    return head + pl.lit(DIGIT_MASK) + digits.str.tail(tail)


MASKS: Mapping[str, Callable[[pl.Expr], pl.Expr]] = MappingProxyType({
    "customer_name": mask_name, "address": mask_address, "phone": mask_phone})
"""The masking rule of each personal field."""


def mask_expression(field: str, value: pl.Expr | None = None) -> pl.Expr:
    """``field``'s masked value (null stays null), of ``value`` or else of the column named
    ``field``, under that name."""
    source = pl.col(field) if value is None else value
    return pl.when(source.is_null()).then(None).otherwise(MASKS[field](source)).alias(field)


def mask_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with each of its personal columns masked (other columns untouched).

    >>> mask_frame(pl.DataFrame({"customer_id": ["C1"], "customer_name": ["李四"]})).row(0)
    ('C1', '李**')
    """
    present = [f for f in PERSONAL_FIELDS if f in frame.columns]
    if not present:
        return frame
    # lazily, so that polars computes a phone's digits once, not once per use (4x faster)
    return frame.lazy().with_columns(mask_expression(f) for f in present).collect()


def mask(field: str, value: str | None) -> str | None:
    """One masked value of the personal ``field`` (through :func:`mask_expression`)."""
    result: str | None = pl.select(mask_expression(field, pl.lit(value, dtype=pl.String))).item()
    return result
