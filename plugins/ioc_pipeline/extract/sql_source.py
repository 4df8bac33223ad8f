"""Extractor of SQL sources (sources.md: land, tuition): a window of a table in the sector's
own PostgreSQL database.

Same contract as rest_source.fetcher: fetch() -> (items, total). Why it reads the way it does:
- every contract column is selected `::text`, so a hostile value arrives as text and is judged
  by the suite (never a crash here); NULL stays None;
- a server-side (named) cursor in a READ ONLY transaction with a statement timeout streams a
  large window without holding it in memory and without ever writing to the source;
- the window is [watermark, D+1 00:00 +07:00) on the watermark column, ordered by
  (watermark, key) so two extractions of the same window read the same sequence;
- a contract column missing from the table fails the batch naming it; extra columns (schema
  drift) are returned in the items so batch.stage_items reports them;
- the source gives no total of its own: total() is None.

A batch does not read items: fetch.copy_to streams the window database to database in COPY
text format (COPY (SELECT ...) TO STDOUT), already shaped as staging rows (row number, as-of
date, province, one text column per contract field, blanks as NULL, names as presence markers),
so that only the personal-ID columns are decoded on the way (ingest/staging.copy_text_transform).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator

import psycopg2
from psycopg2 import sql

from ioc_pipeline import config
from ioc_pipeline.declaration.catalog import Source
from ioc_pipeline.errors import BatchFailed
from ioc_pipeline.extract.window import Window

log = logging.getLogger(__name__)

Fetch = Callable[[], tuple[Iterator[dict], Callable[[], int | None]]]

ITERSIZE = 10_000
STATEMENT_TIMEOUT = "10min"
_QUALIFIED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)")


def table_of(source: Source) -> tuple[str, str]:
    """(schema, table) of the catalog's `table: schema.name` (a bare name means public)."""
    raw = str(source.extra.get("table") or "")
    if m := _QUALIFIED.fullmatch(raw):
        return m.group(1), m.group(2)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", raw):
        return "public", raw
    raise BatchFailed(f"{source.code}: the catalog entry needs `table: schema.name` (got {raw!r})")


def source_columns(cur, schema: str, table: str) -> dict[str, str]:
    """The table's columns in table order -> their data_type (empty when the table does not
    exist or is not visible)."""
    cur.execute(
        """SELECT column_name, data_type FROM information_schema.columns
            WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position""",
        (schema, table),
    )
    return dict(cur.fetchall())


def plan_columns(source: Source, present: list[str], schema: str, table: str) -> list[str]:
    """Contract columns then extra ones; a missing contract column fails the batch."""
    if not present:
        raise BatchFailed(f"{source.code}: table {schema}.{table} does not exist in the source database "
                          "(or the connection's user cannot see it)")
    missing = [f for f in source.field_names if f not in present]
    if missing:
        raise BatchFailed(f"{source.code}: column(s) missing from the source table {schema}.{table}: {', '.join(missing)}")
    extra = [c for c in present if c not in source.field_names]
    if extra:
        log.warning("%s: schema drift: extra column(s) in %s.%s: %s", source.code, schema, table, ", ".join(extra))
    return source.field_names + extra


def window_query(source: Source, schema: str, table: str, columns: list[str], window: Window,
                 select: sql.Composable | None = None) -> tuple[sql.Composed, dict]:
    """SELECT every column ::text (or `select`) over the window, in a stable order."""
    if not source.watermark:
        raise BatchFailed(f"{source.code}: an SQL source needs a watermark column in the catalog")
    wm = sql.Identifier(source.watermark)
    if select is None:
        select = sql.SQL(", ").join(
            sql.SQL("{c}::text AS {c}").format(c=sql.Identifier(c)) for c in columns)
    conds = [sql.SQL("{wm} < %(until)s::timestamptz").format(wm=wm)]
    params = {"until": window.end}
    if window.start:
        conds.append(sql.SQL("{wm} >= %(since)s::timestamptz").format(wm=wm))
        params["since"] = window.start
    query = sql.SQL("SELECT {select} FROM {t} WHERE {conds} ORDER BY {order}").format(
        select=select, t=sql.Identifier(schema, table), conds=sql.SQL(" AND ").join(conds), order=_order(source))
    return query, params


def _order(source: Source) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, (source.watermark, *source.key)))


def copy_query(source: Source, schema: str, table: str, window: Window, *, redacted: str, whitespace: str,
               native: dict[str, tuple[str, str, str]], column_types: dict[str, str]) -> tuple[sql.Composed, dict]:
    """The window as staging rows, for COPY TO: a row number in window order, the as-of date and
    province, then one column per contract field, `::text`, a value made only of `whitespace`
    as NULL, a personal name as `redacted` (its presence only), then one column per field of
    `native` (field -> data_type, low, high): its value as the table types it when the column
    has that data_type and the value lies in [low, high), else NULL. Extra columns stay behind."""
    cols = [sql.SQL("row_number() OVER (ORDER BY {})").format(_order(source)),
            sql.SQL("%(as_of)s"), sql.SQL("%(province)s")]
    for f in source.fields:
        c = sql.Identifier(f.name)
        value = sql.Literal(redacted) if f.pii == "name" else sql.SQL("{}::text").format(c)
        # a value whose first character is not whitespace is not blank: the full btrim (most of
        # the source's COPY time: 3.0 s -> 1.7 s a million rows of tuition) only for the others
        cols.append(sql.SQL("CASE WHEN strpos(%(ws)s, left({c}::text, 1)) = 0 THEN {v}"
                            " WHEN btrim({c}::text, %(ws)s) <> '' THEN {v} END").format(c=c, v=value))
    for name, (data_type, low, high) in native.items():
        c, t = sql.Identifier(name), sql.SQL(data_type)
        cols.append(sql.SQL("CASE WHEN {c} >= {lo}::{t} AND {c} < {hi}::{t} THEN {c} END").format(
            c=c, t=t, lo=sql.Literal(low), hi=sql.Literal(high)) if column_types.get(name) == data_type
            else sql.SQL("NULL"))
    query, params = window_query(source, schema, table, [], window, select=sql.SQL(", ").join(cols))
    params.update(as_of=window.as_of, province=window.province_code, ws=whitespace)
    return query, params


class SqlSourceError(Exception):
    """The source database could not be reached or read: retryable, unlike BatchFailed."""


def connect(source: Source):
    params = config.postgres_params(source.connection)
    try:
        return psycopg2.connect(params.dsn(application_name=f"ioc_extract_{source.code}"))
    except psycopg2.OperationalError as exc:
        raise SqlSourceError(f"{source.code}: cannot connect to the source database of connection "
                             f"'{source.connection}': {str(exc).strip().splitlines()[0]}") from None


def _open(source: Source, schema: str, table: str):
    """A read-only connection with the session rules, and the table's columns (contract first)."""
    conn = connect(source)
    try:
        conn.set_session(readonly=True, autocommit=False)
        with conn.cursor() as cur:
            cur.execute("SET LOCAL statement_timeout = %s", (STATEMENT_TIMEOUT,))
            # Deterministic ::text of dates and instants whatever the server's defaults.
            cur.execute("SET LOCAL DateStyle = 'ISO, YMD'")
            cur.execute("SET LOCAL TimeZone = %s", (config.LOCAL_TZ,))
            types = source_columns(cur, schema, table)
            columns = plan_columns(source, list(types), schema, table)
    except BaseException:
        conn.close()
        raise
    return conn, columns, types


def fetcher(source: Source, window: Window) -> Fetch:
    """A fetch() for batch.extract: each call reads the whole window again, as items (a suite
    check's sample, tests). A batch uses fetch.copy_to(write, redacted=, whitespace=): the
    window as COPY text rows, one write per row; it returns the extra columns (schema drift)."""
    schema, table = table_of(source)

    def copy_to(write: Callable[[bytes], None], *, redacted: str, whitespace: str,
                native: dict[str, tuple[str, str, str]] | None = None) -> list[str]:
        conn, columns, types = _open(source, schema, table)
        read = 0

        def counted(data) -> None:
            nonlocal read
            read += 1
            write(data)

        try:
            query, params = copy_query(source, schema, table, window, redacted=redacted, whitespace=whitespace,
                                       native=native or {}, column_types=types)
            with conn.cursor() as cur:
                copy_sql = sql.SQL("COPY ({}) TO STDOUT").format(sql.SQL(cur.mogrify(query, params).decode()))
                cur.copy_expert(copy_sql, _Writer(counted))
            conn.rollback()  # read only: nothing to commit
        except psycopg2.Error as exc:
            raise SqlSourceError(f"{source.code}: reading {schema}.{table} failed after {read} rows: "
                                 f"{str(exc).strip().splitlines()[0]}") from None
        finally:
            conn.close()
        log.info("%s: %d rows read from %s.%s by COPY", source.code, read, schema, table)
        return [c for c in columns if c not in source.field_names]

    def fetch():
        conn, columns, _types = _open(source, schema, table)
        try:
            query, params = window_query(source, schema, table, columns, window)
        except BaseException:
            conn.close()
            raise

        def items() -> Iterator[dict]:
            n = 0
            try:
                with conn.cursor(name=f"ioc_extract_{source.code}") as cur:
                    cur.itersize = ITERSIZE
                    cur.execute(query, params)
                    for row in cur:
                        n += 1
                        yield dict(zip(columns, row))
                conn.rollback()  # read only: nothing to commit
                log.info("%s: %d rows read from %s.%s", source.code, n, schema, table)
            except psycopg2.Error as exc:
                raise SqlSourceError(f"{source.code}: reading {schema}.{table} failed after {n} rows: "
                                     f"{str(exc).strip().splitlines()[0]}") from None
            finally:
                conn.close()

        return items(), lambda: None

    fetch.copy_to = copy_to
    return fetch


class _Writer:
    """The file object COPY TO writes into: each write is one row."""

    def __init__(self, write):
        self.write = write
