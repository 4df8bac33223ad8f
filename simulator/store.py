"""Database plumbing shared by the source generators: schema, COPY, generation state.

Why: every source keeps its current records in schema `sim` of the simulator's own
database, loads them with COPY (millions of rows must stay fast and memory-bounded), and
remembers how far it has generated so that a later `until` only adds the new days.
"""
from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

import psycopg2

log = logging.getLogger(__name__)

ICT = timezone(timedelta(hours=7), "+07:00")  # Asia/Ho_Chi_Minh, no DST

STATE_DDL = """
CREATE SCHEMA IF NOT EXISTS sim;
CREATE TABLE IF NOT EXISTS sim.generator_state (
    source          text PRIMARY KEY,
    seed            integer NOT NULL,
    records         bigint NOT NULL,
    province_code   text NOT NULL,
    daily_rate      double precision NOT NULL,
    generated_until date NOT NULL
);
"""


class GeneratorStateError(Exception):
    """The store was generated with other parameters: extending it would mix two datasets."""


@dataclass(frozen=True)
class GeneratorState:
    source: str
    seed: int
    records: int
    province_code: str
    daily_rate: float
    generated_until: date


def connect(dsn: str):
    return psycopg2.connect(dsn)


def read_state(cur, source: str) -> GeneratorState | None:
    cur.execute("SELECT source, seed, records, province_code, daily_rate, generated_until"
                " FROM sim.generator_state WHERE source = %s", (source,))
    row = cur.fetchone()
    return GeneratorState(*row) if row else None


def write_state(cur, st: GeneratorState) -> None:
    cur.execute(
        "INSERT INTO sim.generator_state AS s (source, seed, records, province_code, daily_rate,"
        " generated_until) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (source) DO UPDATE"
        " SET generated_until = EXCLUDED.generated_until",
        (st.source, st.seed, st.records, st.province_code, st.daily_rate, st.generated_until))


def _copy_text(value) -> str:
    """One value in COPY text format: None -> \\N, escapes for backslash and separators."""
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    text = str(value)
    if any(c in text for c in "\\\t\n\r"):
        text = (text.replace("\\", "\\\\").replace("\t", "\\t")
                .replace("\n", "\\n").replace("\r", "\\r"))
    return text


def copy_rows(cur, table: str, columns: tuple[str, ...], rows) -> int:
    """COPY an iterable of tuples into `table`; returns the row count."""
    buf = io.StringIO()
    n = 0
    for row in rows:
        buf.write("\t".join(_copy_text(v) for v in row))
        buf.write("\n")
        n += 1
    buf.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buf)
    return n


def open_state(conn, *, ddl: str, source: str, volume_name: str, volume: int, seed: int,
               province_code: str, start: date, until: date,
               day_weight: Callable[[date], float] = lambda d: 1.0) -> GeneratorState:
    """Create the source's tables and return its generator state: the stored one (which must
    have been made with the same seed, volume and province), or a new one whose daily rate
    spreads `volume` over start..until by `day_weight`. Shared by every generator."""
    if until < start:
        raise ValueError(f"until {until} is before {start}")
    if volume <= 0:
        raise ValueError(f"{volume_name} must be positive")
    with conn.cursor() as cur:
        cur.execute(ddl)
        state = read_state(cur, source)
    conn.commit()
    if state is None:
        weights = sum(day_weight(start + timedelta(days=k)) for k in range((until - start).days + 1))
        return GeneratorState(source, seed, volume, province_code, volume / weights, start - timedelta(days=1))
    if (state.seed, state.records, state.province_code) != (seed, volume, province_code):
        raise GeneratorStateError(
            f"sim store holds {source} for seed={state.seed}, {volume_name}={state.records}, "
            f"province={state.province_code}; use a fresh database for other parameters")
    return state
