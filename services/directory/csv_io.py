"""Partners as CSV files: reading a file into import rows (every unreadable line reported with
its line number and column) and writing every partner with the same columns.

A cell a spreadsheet would run as a formula (one starting with ``=``, ``+``, ``-``, ``@``, a TAB
or a CR, but no plain number) is written with a leading ``'``, as OWASP's "CSV Injection" advises,
and that ``'`` is removed again on import, so an exported file still imports back unchanged."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterator

from services.directory.columns import COLUMNS, REQUIRED, details_from_record, record_from_partner
from services.directory.domain import Partner
from services.directory.fields import InvalidPartner
from services.directory.importing import ImportRow, RowError, column_of

# The largest file an import takes (about 60,000 full rows): what Litestar allowed before routes
# said otherwise. Every other request to the directory is far smaller (see web.app.MAX_BODY_BYTES).
MAX_FILE_BYTES = 10_000_000

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def defused(value: str) -> str:
    """``value`` as a cell no spreadsheet runs: a would-be formula gets a leading ``'``."""
    return "'" + value if value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value) else value


def restored(value: str) -> str:
    """The value :func:`defused` was given."""
    if not value.startswith("'"):
        return value
    plain = value[1:]
    return plain if plain.startswith(_FORMULA_START) and not _NUMBER.fullmatch(plain) else value


class BadHeader(InvalidPartner):
    """The file's first line does not name the columns an import needs."""


def read_rows(text: str) -> Iterator[ImportRow]:
    """One :class:`ImportRow` per data line of CSV ``text`` (header on line 1). Blank lines
    are skipped. A bad header raises :class:`BadHeader`, since no line can then be read."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = header
    check_header(header)
    for record in reader:
        # The record ends on line_num; it started as many lines earlier as its values hold
        # line breaks (quoted multi-line values), whatever blank lines came before it.
        values = [v for v in record.values() if isinstance(v, str)] + list(record.get(None) or [])
        line_number = reader.line_num - sum(value.count("\n") for value in values)
        if not any((value or "").strip() for value in record.values() if isinstance(value, str)):
            continue
        if None in record:
            yield ImportRow(line=line_number, error=RowError(line_number, "", "more values than columns"))
            continue
        try:
            details, status = details_from_record({name: restored(value or "") for name, value in record.items()})
        except InvalidPartner as exc:
            yield ImportRow(line=line_number, error=RowError(line_number, column_of(exc.field), exc.detail))
            continue
        yield ImportRow(line=line_number, details=details, status=status)


def check_header(header: list[str]) -> None:
    if not header:
        raise BadHeader("the file is empty; its first line must name the columns", field="header")
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise BadHeader(f"unknown column(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}", field="header")
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise BadHeader(f"missing column(s) {', '.join(missing)}", field="header")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise BadHeader(f"column(s) named twice: {', '.join(repeated)}", field="header")


async def write_csv(partners: AsyncIterable[Partner]) -> AsyncIterator[str]:
    """The CSV text of ``partners``, header first, a chunk per partner."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    yield _drain(buffer)
    async for partner in partners:
        writer.writerow({name: defused(value) for name, value in record_from_partner(partner).items()})
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
