"""Switching changes as operators hand them in: a CSV file (or the API's list), read and checked.

A change sets a device's ``normal_open`` and/or ``in_service`` — a tie moved, a section taken
out of service in the field between two exports. The file has a header and one change a line:

| column | aliases | rule |
|---|---|---|
| edge_id | device, device_id, 设备编码 | required |
| normal_open | 常开 | true/false (1/0, yes/no, 是/否, open/closed); switching devices only |
| in_service | 在运, 投运 | true/false (1/0, yes/no, 是/否, in_service/retired, 运行/退役) |
| at | 操作时间, 时间 | ISO date-time when it was done in the field (naive = UTC); blank = now |
| note | 备注, 说明 | why (free text) |

Each line needs ``normal_open`` or ``in_service`` (or both). Whether the device exists and is
a switching device is checked against the model when the changes are recorded
(:func:`gridtopo.db.switching.record_switching`). Every problem is reported at once, naming
the file, line and device (:class:`SwitchingInputError`, exit 2 / HTTP 422), and nothing of a
file with a problem is applied.

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "ops.csv"
>>> _ = path.write_text("edge_id,normal_open,at,note\\nSB-1,false,2026-12-07T08:00,tie moved\\n")
>>> row = read_switching_csv(path)[0]
>>> row.device, row.normal_open, row.in_service, row.at.isoformat(), row.note, row.line
('SB-1', False, None, '2026-12-07T08:00:00+00:00', 'tie moved', 2)
>>> _ = path.write_text("edge_id,normal_open\\nSB-1,maybe\\n")
>>> try:
...     read_switching_csv(path)
... except SwitchingInputError as err:
...     print(err)
ops.csv line 2: device SB-1: normal_open 'maybe' is not true or false
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gridtopo.clock import as_utc
from gridtopo.errors import InputError

COLUMNS: dict[str, tuple[str, ...]] = {
    "edge_id": ("edge_id", "device", "device_id", "设备编码"),
    "normal_open": ("normal_open", "常开"),
    "in_service": ("in_service", "在运", "投运"),
    "at": ("at", "操作时间", "时间"),
    "note": ("note", "备注", "说明"),
}
"""Canonical columns of a switching file and the header names accepted for each."""
_TRUE = {"true", "1", "yes", "y", "t", "是"}
_FALSE = {"false", "0", "no", "n", "f", "否"}
WORDS: dict[str, tuple[set[str], set[str]]] = {
    "normal_open": (_TRUE | {"open", "常开"}, _FALSE | {"closed", "常闭"}),
    "in_service": (_TRUE | {"in_service", "运行", "在运"}, _FALSE | {"retired", "退役", "停运"}),
}
"""Values read as true and as false, per flag."""
MAX_NOTE = 2000


@dataclass(frozen=True)
class SwitchingRow:
    """One change as handed in: ``None`` where a flag or time was not given; ``line`` is the
    file's 1-based line (header = 1) or the request's 1-based change number."""

    device: str
    normal_open: bool | None
    in_service: bool | None
    at: dt.datetime | None
    note: str | None
    line: int


class SwitchingInputError(InputError):
    """Switching changes that cannot be applied; names origin, line and device of each.

    ``problems`` are ``(line, device, message)``; ``item`` is how a line is called
    ("line" in a file, "change" in a request)."""

    def __init__(self, origin: str, problems: Iterable[tuple[int, str, str]],
                 item: str = "line") -> None:
        self.origin = origin
        self.problems = sorted(problems)
        shown = [f"{origin} {item} {line}: device {device}: {message}" if device else
                 f"{origin} {item} {line}: {message}" for line, device, message in self.problems]
        more = f" (+{len(shown) - 20} more)" if len(shown) > 20 else ""
        super().__init__("; ".join(shown[:20]) + more)


def parse_flag(field: str, value: str) -> bool | None:
    """``value`` of flag ``field`` as a bool, ``None`` when blank; ``ValueError`` otherwise."""
    text = value.strip().lower()
    if not text:
        return None
    yes, no = WORDS[field]
    if text in yes:
        return True
    if text in no:
        return False
    raise ValueError(f"{field} {value.strip()!r} is not true or false")


def parse_at(value: str) -> dt.datetime | None:
    """An ISO date-time as aware UTC (naive = UTC), ``None`` when blank; ``ValueError``."""
    text = value.strip()
    if not text:
        return None
    try:
        return as_utc(dt.datetime.fromisoformat(text))
    except ValueError:
        raise ValueError(f"at {text!r} is not an ISO date-time") from None


def _text(path: Path) -> str:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(f"{path.name}: neither UTF-8 nor GB18030")


def _header(origin: str, names: list[str]) -> dict[str, int]:
    wanted = {alias.lower(): canonical for canonical, aliases in COLUMNS.items()
              for alias in aliases}
    found: dict[str, int] = {}
    unknown = []
    for i, name in enumerate(names):
        canonical = wanted.get(name.strip().lower())
        if canonical is None:
            unknown.append(name)
        else:
            found[canonical] = i
    if unknown:
        raise InputError(f"{origin} line 1: unknown column(s) {', '.join(unknown)}; a "
                         f"switching file has {', '.join(COLUMNS)}")
    if "edge_id" not in found or not {"normal_open", "in_service"} & set(found):
        raise InputError(f"{origin} line 1: a switching file needs edge_id and normal_open "
                         "and/or in_service")
    return found


def read_switching_csv(path: Path) -> list[SwitchingRow]:
    """The changes of the CSV file at ``path`` (see the module); :class:`SwitchingInputError`
    naming every bad line, :class:`InputError` for an unreadable file or header."""
    origin = path.name
    try:
        text = _text(path)
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}") from err
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise InputError(f"{origin}: empty file")
    columns = _header(origin, header)
    rows: list[SwitchingRow] = []
    problems: list[tuple[int, str, str]] = []
    for number, record in enumerate(reader, start=2):
        if not any(cell.strip() for cell in record):
            continue
        values = {name: record[i] if i < len(record) else "" for name, i in columns.items()}
        try:
            rows.append(change_row(number, values))
        except ValueError as err:
            problems.append((number, values["edge_id"].strip(), str(err)))
    if problems:
        raise SwitchingInputError(origin, problems)
    if not rows:
        raise InputError(f"{origin}: no switching change in the file")
    return rows


def change_row(line: int, values: dict[str, str]) -> SwitchingRow:
    """One change from its text ``values`` by canonical column; ``ValueError`` says what is
    wrong with it."""
    device = values.get("edge_id", "").strip()
    if not device:
        raise ValueError("edge_id is blank")
    if len(device) > 64:
        raise ValueError("edge_id is longer than 64 characters")
    normal_open = parse_flag("normal_open", values.get("normal_open", ""))
    in_service = parse_flag("in_service", values.get("in_service", ""))
    if normal_open is None and in_service is None:
        raise ValueError("neither normal_open nor in_service is given")
    note = values.get("note", "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise ValueError(f"note is longer than {MAX_NOTE} characters")
    return SwitchingRow(device, normal_open, in_service, parse_at(values.get("at", "")), note,
                        line)
