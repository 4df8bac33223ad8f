"""Quarantined rows per source and batch, for the people who fix the source
(`make quarantine SOURCE=<code> [BATCH=<id>]`, and the Data Docs' batch pages).

Everything read here is what quarantine.rejected_row keeps: business key, record date,
reasons and the failing fields (personal IDs masked). Values come from the source, so callers
must escape them for their medium: `printable()` for a terminal, html.escape for a page.

open_rows() answers "what still needs fixing": a quarantined key counts as open until a later
batch loads it into the source's core table (the row is missing there, or was loaded by an
older batch than the one that quarantined it).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import unicodedata

from psycopg2 import sql

from ioc_pipeline.declaration.catalog import Source


@dataclasses.dataclass
class QuarantinedRow:
    batch_id: int
    business_key: str | None
    record_date: str | None
    reasons: list[str]
    failing_values: dict


@dataclasses.dataclass
class BatchQuarantine:
    batch_id: int
    as_of_date: dt.date
    batch_name: str
    status: str
    rows_quarantined: int
    reasons: list[tuple[str, int]]          # (reason, rows), most frequent first
    rows: list[QuarantinedRow]              # a sample when `limit` was given


def _row(batch_id, key, record_date, reasons, values) -> QuarantinedRow:
    texts = sorted({r.get("reason") or r.get("expectation") or "?" for r in reasons or []})
    return QuarantinedRow(batch_id, key, record_date, texts, values or {})


def reason_counts(cur, source_code: str, batch_id: int) -> list[tuple[str, int]]:
    """Rows per reason in one batch (a row failing two rules counts under both)."""
    cur.execute(
        """SELECT coalesce(r ->> 'reason', r ->> 'expectation', '?') AS reason, count(*)
             FROM quarantine.rejected_row q, jsonb_array_elements(q.reasons) r
            WHERE q.source_code = %s AND q.batch_id = %s
            GROUP BY 1 ORDER BY 2 DESC, 1""",
        (source_code, batch_id),
    )
    return [(reason, n) for reason, n in cur.fetchall()]


def batch_rows(cur, source_code: str, batch_id: int, limit: int | None = None) -> list[QuarantinedRow]:
    cur.execute(
        """SELECT batch_id, business_key, record_date, reasons, failing_values
             FROM quarantine.rejected_row WHERE source_code = %s AND batch_id = %s
            ORDER BY business_key NULLS FIRST LIMIT %s""",
        (source_code, batch_id, limit),
    )
    return [_row(*r) for r in cur.fetchall()]


def batches(conn, source_code: str, batch_id: int | None = None, *, limit: int | None = None,
            max_batches: int = 50) -> list[BatchQuarantine]:
    """The batches of a source that quarantined rows (or the one asked for), newest first, each with
    its reasons and rows (at most `limit` rows per batch when given)."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT b.batch_id, b.as_of_date, b.batch_name, b.status, count(q.*)
                 FROM audit.batch b JOIN quarantine.rejected_row q USING (batch_id)
                WHERE b.source_code = %(s)s AND (%(b)s::bigint IS NULL OR b.batch_id = %(b)s)
                GROUP BY b.batch_id ORDER BY b.batch_id DESC LIMIT %(n)s""",
            {"s": source_code, "b": batch_id, "n": max_batches},
        )
        found = [BatchQuarantine(*r, reasons=[], rows=[]) for r in cur.fetchall()]
        for b in found:
            b.reasons = reason_counts(cur, source_code, b.batch_id)
            b.rows = batch_rows(cur, source_code, b.batch_id, limit)
    conn.commit()
    return found


def _key_expr(source: Source, alias: str) -> sql.Composable:
    """The core row's business key in quarantine's form: coalesce(k, '') joined with '|'
    (a single key as itself, so the primary-key index serves the lookup)."""
    if len(source.key) == 1:
        return sql.SQL("{}.{}::text").format(sql.Identifier(alias), sql.Identifier(source.key[0]))
    return sql.SQL(" || '|' || ").join(
        sql.SQL("coalesce({}.{}::text, '')").format(sql.Identifier(alias), sql.Identifier(k)) for k in source.key)


def open_rows(conn, source: Source) -> list[QuarantinedRow]:
    """The latest quarantine of every key that no later batch has loaded into the core table."""
    schema, table = source.core_table.split(".", 1)
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (source.core_table,))
        core_exists = cur.fetchone()[0] is not None
        loaded_since = sql.SQL(
            "EXISTS (SELECT 1 FROM {core} c WHERE {key} = q.business_key AND c.batch_id >= q.batch_id)"
        ).format(core=sql.Identifier(schema, table), key=_key_expr(source, "c")) if core_exists else sql.SQL("false")
        cur.execute(sql.SQL(
            """SELECT batch_id, business_key, record_date, reasons, failing_values
                 FROM (SELECT DISTINCT ON (business_key) *
                         FROM quarantine.rejected_row WHERE source_code = %s
                        ORDER BY business_key, batch_id DESC) q
                WHERE NOT {loaded_since}
                ORDER BY batch_id, business_key"""
        ).format(loaded_since=loaded_since), (source.code,))
        found = [_row(*r) for r in cur.fetchall()]
    conn.commit()
    return found


def printable(value) -> str:
    """A source value made safe for a terminal: control characters (escape sequences) shown as \\xNN."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return "".join(c if unicodedata.category(c)[0] != "C" else f"\\x{ord(c):02x}" for c in text)


def format_report(source: Source, found: list[BatchQuarantine], open_: list[QuarantinedRow],
                  *, row_limit: int | None) -> list[str]:
    """The lines `make quarantine` prints."""
    if not found:
        return [f"{source.code}: no quarantined rows"]
    lines = []
    for b in found:
        lines.append(f"{source.code} batch {b.batch_id} (as of {b.as_of_date}, {b.status}, {printable(b.batch_name)}):"
                     f" {b.rows_quarantined} rows quarantined")
        lines.append("  reasons:")
        lines += [f"    {n:>6}  {printable(reason)}" for reason, n in b.reasons]
        lines.append(f"  rows ({'|'.join(source.key)}, {source.record_date}, reasons, failing values masked):")
        for r in b.rows:
            values = ", ".join(f"{printable(k)}={printable(v)}" for k, v in sorted(r.failing_values.items()))
            lines.append(f"    {printable(r.business_key or '')}  {printable(r.record_date or '')}  "
                         f"{'; '.join(printable(x) for x in r.reasons)}  [{values}]")
        if row_limit is not None and b.rows_quarantined > len(b.rows):
            lines.append(f"    ... {b.rows_quarantined - len(b.rows)} more: make quarantine SOURCE={source.code} BATCH={b.batch_id}")
    by_batch: dict[int, int] = {}
    for r in open_:
        by_batch[r.batch_id] = by_batch.get(r.batch_id, 0) + 1
    lines.append(f"{source.code}: {len(open_)} quarantined keys not loaded by a later batch since"
                 + (" (" + ", ".join(f"batch {k}: {v}" for k, v in sorted(by_batch.items())) + ")" if by_batch else ""))
    return lines
