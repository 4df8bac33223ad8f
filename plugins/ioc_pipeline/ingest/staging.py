"""UNLOGGED staging tables filled with COPY.

A staging table lives for one batch: created before the extract, emptied and dropped after
the batch whatever its outcome. Rows are streamed into COPY in chunks of a few MB, so memory
stays flat however large the source is.
"""
from __future__ import annotations

import hashlib
import io
import logging
from typing import Iterable

from psycopg2 import sql

from ioc_pipeline.ingest import rows as rows_mod
from ioc_pipeline.declaration.catalog import Source

log = logging.getLogger(__name__)

SCHEMA = "staging"
_FLUSH_BYTES = 4 * 1024 * 1024
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def table_name(source: Source, batch_id: int) -> str:
    return f"{source.code}_b{batch_id}"


def create(cur, source: Source, batch_id: int) -> str:
    """Create the batch's staging table (dropping a leftover of a crashed attempt)."""
    name = table_name(source, batch_id)
    types = rows_mod.staging_column_types(source)
    cols = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(types[c])) for c in rows_mod.staging_columns(source)
    )
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(name)))
    cur.execute(sql.SQL("CREATE UNLOGGED TABLE {}.{} ({})").format(sql.Identifier(SCHEMA), sql.Identifier(name), cols))
    return name


def drop(cur, name: str) -> None:
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(name)))


def truncate(cur, name: str) -> None:
    cur.execute(sql.SQL("TRUNCATE {}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(name)))


def _encode(value) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    return str(value).translate(_ESCAPES)


class CopyWriter:
    """Streams rows into a staging table with COPY; keeps a count and a checksum."""

    def __init__(self, cur, table: str, columns: list[str]):
        self._cur = cur
        self._copy_sql = sql.SQL("COPY {}.{} ({}) FROM STDIN").format(
            sql.Identifier(SCHEMA), sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        ).as_string(cur)
        self._buf = io.StringIO()
        self._size = 0
        self.rows = 0
        self._sha = hashlib.sha256()

    def write(self, row: Iterable) -> None:
        line = "\t".join(_encode(v) for v in row) + "\n"
        self._buf.write(line)
        self._size += len(line)
        self.rows += 1
        if self._size >= _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._size:
            return
        data = self._buf.getvalue().encode("utf-8")
        self._sha.update(data)
        self._cur.copy_expert(self._copy_sql, io.BytesIO(data))
        self._buf = io.StringIO()
        self._size = 0

    @property
    def checksum(self) -> str:
        return self._sha.hexdigest()
