"""Writing file deliveries into a landing folder the way a careful sector export job does.

Why: the pipeline takes a file once its size and mtime have been stable for 60 s and never reads
a name that does not match its pattern (docs/file_sources.md). So a delivery is written to a
hidden temp file in the target's own directory (same filesystem: the rename is atomic), given
its simulated delivery time as mtime (capped at now - 300 s, so even a delivery "of today" is
already settled), then renamed over the target. A reader sees the old file or the new one,
never half of one. Workbooks are repacked with fixed zip timestamps so the same seed gives the
same bytes.
"""
from __future__ import annotations

import csv
import hashlib
import os
import re
import shutil
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from collections.abc import Callable, Iterable

SETTLED_MARGIN_S = 300      # a delivery's mtime is at least this old when written
FIXED_STAMP = datetime(2024, 1, 1)   # workbook metadata: constant, so bytes depend on content only


@dataclass(frozen=True)
class Delivered:
    name: str          # relative to the landing folder, '/'-separated
    sha256: str
    size: int
    mtime: float


def settled_mtime(delivered_at: datetime, now: float | None = None) -> float:
    """The delivery time as a POSIX mtime, never later than now - SETTLED_MARGIN_S."""
    now = time.time() if now is None else now
    return min(delivered_at.timestamp(), now - SETTLED_MARGIN_S)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def target_path(landing_dir: Path | str, name: str) -> Path:
    """`name` inside the landing folder; refuses anything that would land outside it."""
    root = Path(landing_dir).resolve()
    path = (root / name).resolve()
    if root not in path.parents:
        raise ValueError(f"{name!r} is outside the landing folder")
    return path


def deliver(landing_dir: Path | str, name: str, write: Callable[[Path], None],
            delivered_at: datetime) -> Delivered:
    """Write a delivery atomically: `write(tmp_path)` fills a hidden temp file next to the
    target, which then gets its mtime and is renamed over `name`."""
    path = target_path(landing_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        mtime = settled_mtime(delivered_at)
        os.utime(tmp, (mtime, mtime))
        digest, size = sha256_of(tmp), tmp.stat().st_size
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return Delivered(name, digest, size, mtime)


def csv_writer(header: Iterable[str], rows: Iterable[Iterable], *, bom: bool = False,
               line_end: str = "\r\n") -> Callable[[Path], None]:
    """A `write` for deliver(): UTF-8 CSV (optionally with BOM), streamed row by row."""
    def write(path: Path) -> None:
        with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
            w = csv.writer(f, lineterminator=line_end)
            w.writerow(header)
            for row in rows:
                w.writerow("" if v is None else v for v in row)
    return write


def xlsx_writer(sheets: Iterable[tuple[str, list[str], Iterable[Iterable]]], *,
                truncate_to: float | None = None) -> Callable[[Path], None]:
    """A `write` for deliver(): a workbook with one sheet per (name, header, rows), written in
    openpyxl's write_only mode (rows streamed to disk). Cell types follow the Python values:
    str -> text (a leading '=' makes a formula), int/float -> number, date/datetime -> date
    cell. `truncate_to` keeps only that share of the bytes (a delivery cut off in transfer)."""
    def write(path: Path) -> None:
        from openpyxl import Workbook

        wb = Workbook(write_only=True)
        wb.properties.created = wb.properties.modified = FIXED_STAMP
        wb.properties.creator = "export"
        for title, header, rows in sheets:
            ws = wb.create_sheet(title)
            ws.append(header)
            for row in rows:
                ws.append(list(row))
        raw = path.with_name(path.name + ".raw")
        try:
            wb.save(raw)
            _repack(raw, path)
        finally:
            raw.unlink(missing_ok=True)
        if truncate_to is not None:
            with open(path, "rb+") as f:
                f.truncate(int(path.stat().st_size * truncate_to))
    return write


_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


def _repack(src: Path, dst: Path) -> None:
    """Copy a zip with every entry's timestamp fixed (zipfile stamps entries with the clock) and
    the workbook's `modified` property fixed (openpyxl sets it to the time of saving)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            out = zipfile.ZipInfo(info.filename, date_time=FIXED_STAMP.timetuple()[:6])
            out.compress_type = zipfile.ZIP_DEFLATED
            out.external_attr = 0o600 << 16
            if info.filename == "docProps/core.xml":
                stamp = FIXED_STAMP.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
                zout.writestr(out, _MODIFIED.sub(rb"\g<1>" + stamp + rb"\g<2>", zin.read(info)))
                continue
            with zin.open(info) as r, zout.open(out, "w") as w:
                shutil.copyfileobj(r, w, 1 << 20)
