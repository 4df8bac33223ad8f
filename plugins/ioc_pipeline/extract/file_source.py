"""Extractor of file sources (sources.md §6-8, "File delivery rules"; docs/file_sources.md).

Two halves:
- `discover` lists the deliveries a run for as-of date D takes: files of the source's pattern in
  the landing folder whose named day or month ends on or before D (undated files always), that
  have settled (mtime at least SETTLE_SECONDS old), with their SHA-256. Names that do not match
  the pattern, symbolic links and anything resolving outside the landing folder are never read.
- `read_items` streams one delivery as items (dicts of text) for batch.stage_items: CSV read as
  text with no type inference, workbooks cell by cell by the contract's rules. A file that cannot
  be read raises FileUnreadable with one line naming the file and the problem; rows already staged
  are rolled back with the batch. It is the definition of how a delivery is read.
- `read_columns` reads a plain CSV delivery (no quote, no NUL, no lone CR, valid UTF-8, every
  row as wide as the header) as Arrow record batches of text, for ingest/columnar.py: a million
  health visits in 0.2 s, against 2 s as items. On such a file the two readers agree cell for
  cell (tests/unit/test_columnar.py); anything else raises NotColumnar before or while
  reading, and the caller reads the file with read_items.
Cell values never appear in messages: they may be personal data.
"""
from __future__ import annotations

import calendar
import codecs
import contextlib
import csv
import dataclasses
import datetime as dt
import hashlib
import logging
import os
import math
import re
import time
import zipfile
from pathlib import Path
from collections.abc import Iterator

from ioc_pipeline import config
from ioc_pipeline.declaration.catalog import FileSpec, Sheet, Source
from ioc_pipeline.errors import NotColumnar
from ioc_pipeline.ingest.rows import CELL_ERRORS, WHITESPACE

log = logging.getLogger(__name__)

SETTLE_SECONDS = 60          # sources.md: size and mtime unchanged for 60 s
CSV_FIELD_LIMIT = 1_000_000  # characters; a larger cell makes the file unreadable
_CODE_WIDTHS = (("commune_code", 5),)


class FileUnreadable(Exception):
    """The delivery cannot be read as the contract says: its batch fails, other files still load."""


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One delivered file, as discovered (path relative to the landing folder, POSIX form)."""

    name: str
    checksum: str
    size: int
    mtime: float
    named_date: str | None  # ISO date: the named day, or the last day of the named month

    def to_xcom(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_xcom(cls, data: dict) -> Delivery:
        return cls(**data)


# ----------------------------------------------------------------------------- discovery

def landing_root(source: Source) -> Path:
    """The landing folder of the source's connection (type fs, extra {"path": ...})."""
    conn = config.get_connection(source.connection)
    try:
        extra = conn.extra_dejson or {}
    except Exception:  # noqa: BLE001 - malformed extra JSON
        extra = {}
    raw = extra.get("path") or ""
    if not raw:
        raise config.ConfigError(f"connection '{source.connection}' needs extra {{\"path\": \"/landing/folder\"}}")
    root = Path(raw)
    if not root.is_absolute() or not root.is_dir():
        raise config.ConfigError(f"connection '{source.connection}': landing path {raw!r} is not an existing absolute folder")
    return root.resolve()


def named_date(match: re.Match) -> dt.date | None:
    """The date a file name names: its day, or the last day of its month; None if undated.
    Raises ValueError for a name that names no real day or month."""
    groups = match.groupdict()
    if groups.get("day"):
        return dt.datetime.strptime(groups["day"], "%Y%m%d").date()
    if groups.get("month"):
        first = dt.datetime.strptime(groups["month"], "%Y%m").date()
        return first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def discover(root: Path, spec: FileSpec, as_of: dt.date, *, settle_seconds: float = SETTLE_SECONDS,
             now: float | None = None) -> list[Delivery]:
    """Deliveries of `spec` under `root` that a run for `as_of` takes, in named-date order."""
    now = time.time() if now is None else now
    folder = root / spec.folder
    if not folder.is_dir():
        log.warning("landing folder %s does not exist yet: no delivery", folder)
        return []
    found: list[Delivery] = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        rel = f"{spec.folder}/{entry.name}" if spec.folder else entry.name
        match = spec.regex.fullmatch(rel)
        if match is None:
            if entry.is_file(follow_symlinks=False) and not entry.name.startswith("."):
                log.warning("ignored %r: the name does not match %s", _printable(rel), spec.pattern)
            continue
        if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
            log.warning("ignored %s: not a regular file (links are never followed)", rel)
            continue
        if root not in Path(entry.path).resolve().parents:
            log.warning("ignored %s: resolves outside the landing folder", rel)
            continue
        try:
            day = named_date(match)
        except ValueError:
            log.warning("ignored %s: the name names no real date", rel)
            continue
        if day is not None and day > as_of:
            continue  # a later day's delivery: its own run takes it
        stat = entry.stat(follow_symlinks=False)
        if now - stat.st_mtime < settle_seconds:
            log.info("%s is still being written (modified %.0f s ago): the next run takes it", rel, now - stat.st_mtime)
            continue
        found.append(Delivery(name=rel, checksum=sha256_of(Path(entry.path)), size=stat.st_size,
                              mtime=stat.st_mtime, named_date=day.isoformat() if day else None))
    found.sort(key=lambda d: (d.named_date or "", d.name))
    return found


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:120]


# ----------------------------------------------------------------------------- reading

def read_items(root: Path, source: Source, delivery: Delivery) -> Iterator[dict]:
    """The delivery's rows as items; raises FileUnreadable naming the file and the problem."""
    path = root / delivery.name
    if sha256_of(path) != delivery.checksum:
        raise FileUnreadable(f"{delivery.name}: changed since it was discovered; the next run reads the new content")
    spec = source.files
    if spec.format == "csv":
        return _csv_items(path, delivery.name, [f for f in source.field_names])
    return _xlsx_items(path, delivery.name, source)


def _header(cells: list, name: str, where: str, expected: list[str]) -> list[str]:
    header = [str(c).strip() if c is not None else "" for c in cells]
    while header and header[-1] == "":
        header.pop()
    dupes = sorted({h for h in header if h and header.count(h) > 1})
    if dupes:
        raise FileUnreadable(f"{name}: {where}header repeats column(s) {', '.join(map(_printable, dupes))}")
    missing = [c for c in expected if c not in header]
    if missing:
        raise FileUnreadable(f"{name}: {where}column(s) missing from the header: {', '.join(missing)}")
    return header


def _utf8_lines(raw, name: str) -> Iterator[str]:
    """Decode line by line, strictly (a BOM is skipped): invalid bytes make the file unreadable
    and the message says on which physical line, never what the bytes were."""
    for number, line in enumerate(raw, 1):
        if number == 1 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8):]
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileUnreadable(f"{name}: not valid UTF-8 on line {number} (byte {exc.start + 1}: {exc.reason})") from None


def _csv_rows(path: Path, name: str, columns: list[str]) -> Iterator:
    """(header, width) first, then each row after the header, blank lines and blank rows skipped."""
    csv.field_size_limit(CSV_FIELD_LIMIT)
    with open(path, "rb") as raw:
        reader = csv.reader(_utf8_lines(raw, name), strict=True)
        try:
            try:
                first = next(reader)
            except StopIteration:
                raise FileUnreadable(f"{name}: empty file, no header row") from None
            yield _header(first, name, "", columns), len(first)
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue  # blank line
                yield row
        except csv.Error as exc:
            raise FileUnreadable(f"{name}: not readable as CSV at line {reader.line_num}: {exc}") from None


def _csv_items(path: Path, name: str, columns: list[str]) -> Iterator[dict]:
    rows = _csv_rows(path, name, columns)
    header, width = next(rows)
    for row in rows:
        item = dict(zip(header, row))
        if len(row) != width:
            item[CELL_ERRORS] = f"row has {len(row)} fields, header has {width}"
        item.pop("", None)
        yield item


# ----------------------------------------------------------------------------- column by column

COLUMNAR_BLOCK_BYTES = 1 << 20   # CSV bytes per record batch (about 11,000 health visits)
_SCAN_BYTES = 8 << 20


@dataclasses.dataclass
class CsvColumns:
    """A plain CSV delivery as Arrow record batches of text, in file order.

    header: the names the row reader keys its items by ("" for an unnamed column);
    columns: contract field -> the name of its column in the batches (`c<position>`);
    batches: record batches of every column of the file as text, the rows the row reader yields
    (blank rows skipped); raises NotColumnar on a row the row reader would read otherwise."""

    header: list[str]
    columns: dict[str, str]
    batches: Iterator


def plain_csv(path: Path) -> str | None:
    """Why the columnar reader may not read this file (None: it may). The row reader's rules
    differ from a plain split on commas and line ends only at a quote, a NUL, a CR not ending a
    line, bytes that are not UTF-8 (and a field over the size limit, a ragged row: checked while
    reading): the two readers agree on every file without them. One pass, about 10 ms a 10 MB."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    previous = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(_SCAN_BYTES):
            if b'"' in chunk:
                return "a quote"
            if b"\x00" in chunk:
                return "a NUL byte"
            lone = chunk.count(b"\r") - chunk.count(b"\r\n")
            if lone and not (lone == 1 and chunk.endswith(b"\r")):
                return "a carriage return that does not end a line"
            if previous.endswith(b"\r") and not chunk.startswith(b"\n"):
                return "a carriage return that does not end a line"
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return "bytes that are not UTF-8"
            previous = chunk
    if previous.endswith(b"\r"):
        return "a carriage return that does not end a line"
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "bytes that are not UTF-8"
    return None


def read_columns(root: Path, source: Source, delivery: Delivery) -> CsvColumns:
    """The delivery as Arrow record batches (CsvColumns), or NotColumnar when the row reader must
    read it. Raises FileUnreadable as read_items does for a file that cannot be read at all."""
    path = root / delivery.name
    if source.files.format != "csv":
        raise NotColumnar("a workbook")
    if sha256_of(path) != delivery.checksum:
        raise FileUnreadable(f"{delivery.name}: changed since it was discovered; the next run reads the new content")
    if (why := plain_csv(path)) is not None:
        raise NotColumnar(f"the file holds {why}")
    with contextlib.closing(_csv_rows(path, delivery.name, source.field_names)) as rows:
        header, width = next(rows)   # the row reader's own header rules
    import pyarrow as pa  # lazy: only a batch's extract needs it, never the DAG files
    import pyarrow.csv as pa_csv

    names = [f"c{i}" for i in range(width)]
    ragged_rows = []

    def ragged(row) -> str:
        # a row of another width: the row reader stages it with a cell error, unless it is blank
        if not any(cell.strip() for cell in row.text.split(",")):
            return "skip"
        ragged_rows.append(row.number)
        return "error"

    def batches():
        try:
            reader = pa_csv.open_csv(
                path,
                read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1, block_size=COLUMNAR_BLOCK_BYTES),
                parse_options=pa_csv.ParseOptions(quote_char=False, invalid_row_handler=ragged),
                convert_options=pa_csv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                      strings_can_be_null=False, check_utf8=True))
            for batch in reader:
                if any(_longest(batch.column(i)) >= CSV_FIELD_LIMIT for i in range(width)):
                    raise NotColumnar("a field over the size limit")
                yield _without_blank_rows(batch)
        except pa.ArrowInvalid:
            # Arrow's message quotes the row: never logged (personal data)
            raise NotColumnar("a row of another width than the header" if ragged_rows
                              else "a row the columnar reader cannot split") from None

    columns = {f: names[header.index(f)] for f in source.field_names}
    return CsvColumns(header=header, columns=columns, batches=batches())


def _longest(array) -> int:
    import pyarrow.compute as pc

    return pc.max(pc.utf8_length(array)).as_py() or 0


def _without_blank_rows(batch):
    """The batch without the rows whose every cell is whitespace (str.strip: rows.WHITESPACE),
    as the row reader skips them."""
    import pyarrow.compute as pc

    kept = None
    for column in batch.columns:
        filled = pc.not_equal(pc.utf8_trim(column, WHITESPACE), "")
        kept = filled if kept is None else pc.or_(kept, filled)
    if kept is None or pc.all(kept).as_py():
        return batch
    return batch.filter(kept)


def _code_width(column: str) -> int | None:
    """Identifier/code columns whose number cells lost leading zeros (sources.md §7-8)."""
    for col, width in _CODE_WIDTHS:
        if column == col:
            return width
    if column.endswith(("_cccd", "_id")):
        return 12
    return None


def cell_text(column: str, value) -> tuple[str | None, str | None]:
    """(text, cell error) of one workbook cell, by the contract's rules (docs/file_sources.md)."""
    if value is None or isinstance(value, str):
        return value, None
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, dt.datetime):
        if value.time() == dt.time():
            return value.date().isoformat(), None
        return value.isoformat(sep=" ", timespec="seconds"), None
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat(), None
    if isinstance(value, (int, float)):
        whole = isinstance(value, int) or (math.isfinite(value) and float(value).is_integer())
        width = _code_width(column)
        if width is not None:
            if not whole or value < 0:
                return None, f"{column}: number cell that is not a whole number"
            return str(int(value)).zfill(width), None
        return (str(int(value)) if whole else repr(float(value))), None
    return str(value), None  # e.g. an error value (#N/A) read as text: judged by the suite


def _xlsx_items(path: Path, name: str, source: Source) -> Iterator[dict]:
    import openpyxl  # lazy: only file sources need it
    from openpyxl.utils.exceptions import InvalidFileException

    multi = source.files.multi_sheet
    try:
        # data_only=False: a formula cell yields its formula text, never a computed value
        book = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise FileUnreadable(f"{name}: not a readable xlsx workbook (truncated or another format): "
                             f"{type(exc).__name__}") from None
    try:
        for sheet in source.files.sheets:
            if sheet.name not in book.sheetnames:
                raise FileUnreadable(f"{name}: sheet {sheet.name!r} not found (sheets: "
                                     f"{', '.join(map(_printable, book.sheetnames)) or 'none'})")
            yield from _sheet_items(book[sheet.name], name, sheet, multi, source.field_names)
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError) as exc:
        raise FileUnreadable(f"{name}: workbook damaged while reading (truncated?): {type(exc).__name__}") from None
    finally:
        book.close()


def _sheet_items(ws, name: str, sheet: Sheet, multi: bool, fields: list[str]) -> Iterator[dict]:
    rows = ws.iter_rows(values_only=True)
    first = next(rows, None)
    if first is None:
        raise FileUnreadable(f"{name}: sheet {sheet.name!r} is empty, no header row")
    header = _header(list(first), name, f"sheet {sheet.name!r}: ", list(sheet.columns))
    blanks = {c: None for c in fields} if multi else {}
    for cells in rows:
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue  # empty row (workbooks often carry formatted blank rows)
        item = dict(blanks)
        errors = []
        for column, value in zip(header, cells):
            if not column:
                continue
            text, error = cell_text(column, value)
            item[column] = text
            if error:
                errors.append(error)
        if len(cells) > len(header) and any(c is not None for c in cells[len(header):]):
            errors.append(f"row has values beyond the {len(header)} header columns")
        if multi:
            item["sheet"] = sheet.name
            item["item_id"] = item.get(sheet.id)
        if errors:
            item[CELL_ERRORS] = "; ".join(errors)[:500]
        yield item
