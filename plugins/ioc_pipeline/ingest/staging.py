"""UNLOGGED staging tables filled with COPY.

A staging table lives for one batch: created before the extract, emptied and dropped after
the batch whatever its outcome. Rows are streamed into COPY in chunks of a few MB, so memory
stays flat however large the source is.
"""
from __future__ import annotations

import hashlib
import io
import logging
import queue
import threading
import unicodedata
from collections.abc import Callable, Iterable

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
    """Create the batch's staging table (dropping a leftover of a crashed attempt): the built
    columns (rows.staging_column_types), then the source's native columns, if any."""
    name = table_name(source, batch_id)
    types = {**rows_mod.staging_column_types(source), **native_columns(source)}
    cols = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in types.items())
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(name)))
    cur.execute(sql.SQL("CREATE UNLOGGED TABLE {}.{} ({})").format(sql.Identifier(SCHEMA), sql.Identifier(name), cols))
    return name


# A field of a parsed type (catalog.PARSED_TYPES) -> (SQL type, parser) of its `_<field>` column.
PARSERS = {"date": ("date", "util.try_date"), "timestamptz": ("timestamptz", "util.try_timestamptz"),
           "local_timestamp": ("timestamptz", "util.try_local_timestamp")}
SCHEME_2025_FROM = "2025-07-01"   # records dated before it use the legacy commune codes


def parsed_name(field: str) -> str:
    """The staging column holding a field's parsed value."""
    return f"_{field}"


# A field of a parsed type that an SQL source's table already holds in that type -> the source
# column's data_type and the range [low, high) of values whose text (as the source writes it:
# ISO DateStyle, offset of Asia/Ho_Chi_Minh) the field's parser accepts unchanged: a year of
# four digits, AD, finite; and for instants, after 1970, when the zone's offsets have no seconds
# (LMT +07:06:40 before 1906). Only such a value is staged in its native column; any other one
# (infinity, 10000-01-01, a BC date) is left to the parser, so the typed result is the same.
NATIVE_TYPES = {"date": ("date", "0001-01-01", "10000-01-01"),
                "timestamptz": ("timestamp with time zone", "1970-01-01 00:00:00+00", "9000-01-01 00:00:00+00")}


def native_name(field: str) -> str:
    """The staging column holding a field's value as the SQL source's own typed column holds it."""
    return f"_{field}_native"


def native_fields(source: Source) -> dict[str, tuple[str, str, str]]:
    """field -> (source data_type, low, high) of the fields an SQL source's extractor may stage
    as its database already typed them (sql_source.copy_query), in its native column."""
    if source.kind != "sql":
        return {}
    return {f.name: NATIVE_TYPES[f.type] for f in source.fields if f.type in NATIVE_TYPES}


def native_columns(source: Source) -> dict[str, str]:
    """name -> SQL type of the native columns (native_fields): dedupe takes such a value as
    parsed instead of running the parser's regular expression over its text, most of dedupe's
    cost. NULL (the item path, a text column in the source, a value out of range): the text
    is parsed, as for any other source."""
    types = {f.name: f.type for f in source.fields}
    return {native_name(name): types[name] for name in native_fields(source)}


def parsed_columns(source: Source) -> dict[str, sql.Composable]:
    """Typed staging columns computed once per batch by dedupe's rebuild, name -> expression
    over the staged row `s`: every field of a parsed type (its native value when staged)."""
    natives = native_columns(source)
    out = {}
    for f in source.fields:
        if f.type not in PARSERS:
            continue
        parse = sql.SQL("{}(s.{})").format(sql.SQL(PARSERS[f.type][1]), sql.Identifier(f.name))
        if native_name(f.name) in natives:  # COALESCE evaluates the parser only when it is NULL
            parse = sql.SQL("COALESCE(s.{}, {})").format(sql.Identifier(native_name(f.name)), parse)
        out[parsed_name(f.name)] = parse
    return out


def derived_columns(source: Source) -> dict[str, sql.Composable]:
    """Typed staging columns computed from the parsed ones, name -> expression over the parsed
    row `p`: for a source with a commune and a parsed record date, its local calendar date
    (_record_date). From the parsed column, not the text: parsing is most of the rebuild's cost."""
    rd = next((f for f in source.fields if f.name == source.record_date and f.type in PARSERS), None)
    if rd is None or not has_commune(source):
        return {}
    value = sql.SQL("p.{}").format(sql.Identifier(parsed_name(rd.name)))
    return {"_record_date": value if rd.type == "date" else sql.SQL("util.local_date({})").format(value)}


def has_commune(source: Source) -> bool:
    return "commune_code" in source.field_names


def commune_join(source: Source) -> tuple[list[sql.Composable], sql.Composable]:
    """The current (2025) commune and its province of each row, util.current_commune's rule as
    one join for the batch instead of two lookups per row in every rule and merge:
    (select expressions over `k`, the joins)."""
    if "_record_date" not in derived_columns(source):
        return [], sql.SQL("")
    since = sql.Literal(SCHEME_2025_FROM)
    select = [
        sql.SQL("CASE WHEN k.commune_code IS NULL OR k._record_date IS NULL THEN NULL"
                " WHEN k._record_date < {d}::date THEN m.new_code ELSE a.code END AS _commune_code_2025").format(d=since),
        sql.SQL("a.province_code AS _commune_province"),
    ]
    joins = sql.SQL(
        " LEFT JOIN core.commune_map_legacy_2025 m ON k._record_date < {d}::date AND m.legacy_code = k.commune_code"
        " LEFT JOIN core.admin_unit a ON k._record_date IS NOT NULL AND a.scheme = '2025' AND a.level = 'commune'"
        " AND a.code = CASE WHEN k._record_date < {d}::date THEN m.new_code ELSE k.commune_code END").format(d=since)
    return select, joins


def rebuild_typed(cur, source: Source, table: str, *, dedupe: bool) -> tuple[int, int]:
    """Rebuild the staging table, in one statement, with its typed columns (parsed_columns,
    commune_join). With `dedupe`, one version per key is kept (superseded_rows): the latest
    parsed watermark (a valid one beats none), then the later row in source order; rows without
    a key are all kept. Returns (rows removed, rows kept)."""
    t = sql.Identifier(SCHEMA, table)
    rebuilt = sql.Identifier(SCHEMA, table + "_typed")
    parsed = parsed_columns(source)
    derived = derived_columns(source)
    cols = [sql.SQL("k.{}").format(sql.Identifier(c)) for c in (*rows_mod.staging_columns(source), *parsed, *derived)]
    commune_select, commune_joins = commune_join(source)
    drop(cur, table + "_typed")
    # JIT compiling the inlined parsers costs seconds and saves nothing on one pass
    cur.execute("SET LOCAL jit = off")
    cur.execute("SET LOCAL work_mem = '256MB'")
    removed, kept_only = 0, sql.SQL("")
    if dedupe:
        removed = superseded_rows(cur, source, table)
        kept_only = sql.SQL(" WHERE NOT EXISTS (SELECT 1 FROM {} x WHERE x._row_id = s._row_id)").format(
            sql.Identifier(SCHEMA, table + "_superseded"))
    # the planner prices the inlined parsers far below their cost (a regular expression a field,
    # about 2 us a row): cheaper rows out of the workers, so the parsing scan runs in parallel
    cur.execute("SET LOCAL parallel_tuple_cost = 0.01")
    # OFFSET 0: each parser, then each derived column, runs once a row, its column then read as
    # is (not inlined again into the commune joins' conditions)
    cur.execute(sql.SQL(
        """CREATE UNLOGGED TABLE {rebuilt} AS
           SELECT {cols}
             FROM (SELECT p.*{derived}
                     FROM (SELECT s.*{parsed} FROM {t} s{kept_only} OFFSET 0) p OFFSET 0) k{joins}"""
    ).format(rebuilt=rebuilt, cols=sql.SQL(", ").join([*cols, *commune_select]), t=t, kept_only=kept_only,
             parsed=sql.SQL("").join(sql.SQL(", {} AS {}").format(e, sql.Identifier(n)) for n, e in parsed.items()),
             derived=sql.SQL("").join(sql.SQL(", {} AS {}").format(e, sql.Identifier(n)) for n, e in derived.items()),
             joins=commune_joins))
    kept = cur.rowcount
    drop(cur, table + "_superseded")
    drop(cur, table)
    cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(rebuilt, sql.Identifier(table)))
    cur.execute(sql.SQL("ANALYZE {}").format(t))
    return removed, kept


def superseded_rows(cur, source: Source, table: str) -> int:
    """Write the _row_id of every staged row a later version of its key supersedes into
    `<table>_superseded`; returns their number. Only the keys staged more than once are ranked:
    finding them sorts the key column alone (narrow, in memory), where ranking every row sorted
    the whole wide rows on disk (health_visits at 1M: about 2.5 s less). The watermark is parsed
    for those rows only."""
    t = sql.Identifier(SCHEMA, table)
    # "C": byte equality, no locale comparisons in the sorts (the same groups)
    keys = sql.SQL(", ").join(sql.SQL('{k} COLLATE "C" AS {k}').format(k=sql.Identifier(k)) for k in source.key)
    partition = sql.SQL(", ").join(sql.SQL('s.{} COLLATE "C"').format(sql.Identifier(k)) for k in source.key)
    not_null = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(k)) for k in source.key)
    same_key = sql.SQL(" AND ").join(sql.SQL("d.{k} = s.{k}").format(k=sql.Identifier(k)) for k in source.key)
    order = sql.SQL("")
    if source.watermark:
        parsed = parsed_columns(source)
        wm = parsed.get(parsed_name(source.watermark),
                        sql.SQL("util.try_timestamptz(s.{})").format(sql.Identifier(source.watermark)))
        order = sql.SQL("{} DESC NULLS LAST, ").format(wm)
    superseded = sql.Identifier(SCHEMA, table + "_superseded")
    drop(cur, table + "_superseded")
    # grouping by sorting the one narrow column beats hashing a million distinct keys (measured:
    # 0.38 against 0.67 s, 87 against 164 MB)
    cur.execute("SET LOCAL enable_hashagg = off")
    cur.execute(sql.SQL(
        """CREATE UNLOGGED TABLE {superseded} AS
           SELECT v._row_id
             FROM (SELECT s._row_id, row_number() OVER (PARTITION BY {partition} ORDER BY {order}s._row_id DESC) AS version
                     FROM {t} s
                     JOIN (SELECT {keys} FROM {t} WHERE {not_null} GROUP BY {group} HAVING count(*) > 1) d
                       ON {same_key}) v
            WHERE v.version > 1"""
    ).format(superseded=superseded, partition=partition, order=order, t=t, keys=keys, not_null=not_null,
             group=sql.SQL(", ").join(sql.SQL('{} COLLATE "C"').format(sql.Identifier(k)) for k in source.key),
             same_key=same_key))
    count = cur.rowcount
    cur.execute("SET LOCAL enable_hashagg = on")
    cur.execute(sql.SQL("ANALYZE {}").format(superseded))
    return count


def drop(cur, name: str) -> None:
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(name)))


def truncate(cur, name: str) -> None:
    cur.execute(sql.SQL("TRUNCATE {}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(name)))


def encode_value(value) -> str:
    """One staged value as COPY text: NULL, booleans, numbers and escaped text."""
    if value is None:
        return "\\N"
    if value.__class__ is str:
        # str.translate is slow: only the rare value with a character COPY escapes goes through it
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            return value.translate(_ESCAPES)
        return value
    if value is True:
        return "t"
    if value is False:
        return "f"
    return str(value).translate(_ESCAPES)


def encode_line(row: Iterable) -> str:
    """One row as a COPY text line. Most rows hold no character COPY escapes: their values are
    joined as they are and the line is checked once (as many tabs as separators, a backslash
    only per NULL, no line break); a row that fails the check is encoded value by value."""
    row = row if row.__class__ in (list, tuple) else list(row)
    line = "\t".join([v if v.__class__ is str else encode_value(v) for v in row])
    if (line.count("\t") == len(row) - 1 and line.count("\\") == row.count(None)
            and "\n" not in line and "\r" not in line):
        return line + "\n"
    return "\t".join(map(encode_value, row)) + "\n"


class CopyWriter:
    """Streams rows into a staging table with COPY; keeps a count and a checksum. Each chunk of
    a few MB is sent by a thread while the caller builds the next one, so the row building
    (Python) and the server's COPY overlap on two cores. flush() sends the rest and waits."""

    def __init__(self, cur, table: str, columns: list[str]):
        self._cur = cur
        self._copy_sql = sql.SQL("COPY {}.{} ({}) FROM STDIN").format(
            sql.Identifier(SCHEMA), sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        ).as_string(cur)
        self._buf = io.StringIO()
        self._size = 0
        self.rows = 0
        self._sha = hashlib.sha256()
        self._sender: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, row: Iterable) -> None:
        line = encode_line(row)
        self._buf.write(line)
        self._size += len(line)
        self.rows += 1
        if self._size >= _FLUSH_BYTES:
            self._send()

    def write_text(self, text: str, rows: int) -> None:
        """`rows` rows already encoded as COPY text lines (row_workers.encode_chunk)."""
        self._buf.write(text)
        self._size += len(text)
        self.rows += rows
        if self._size >= _FLUSH_BYTES:
            self._send()

    def write_bytes(self, data: bytes, rows: int) -> None:
        """`rows` rows already encoded as UTF-8 COPY text lines (columnar.ColumnEncoder)."""
        if not data:
            return
        if self._size:
            self._send()   # keep the order: text written before goes first
        self.rows += rows
        self._send(data)

    def _send(self, data: bytes | None = None) -> None:
        if data is None:
            data = self._buf.getvalue().encode("utf-8")
            self._buf = io.StringIO()
            self._size = 0
        self._sha.update(data)
        self._wait()   # one COPY at a time on the connection

        def send() -> None:
            try:
                self._cur.copy_expert(self._copy_sql, io.BytesIO(data))
            except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread by _wait
                self._error = exc

        self._sender = threading.Thread(target=send, name="copy-writer", daemon=True)
        self._sender.start()

    def _wait(self) -> None:
        if self._sender is not None:
            self._sender.join()
            self._sender = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def flush(self) -> None:
        if self._size:
            self._send()
        self._wait()

    def abandon(self) -> None:
        """The caller failed: wait for the chunk in flight (the transaction is rolled back)."""
        if self._sender is not None:
            self._sender.join()
            self._sender = None
        self._error = None

    @property
    def checksum(self) -> str:
        return self._sha.hexdigest()


# ----------------------------------------------------------------------------- database to database

_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r", "b": "\b", "f": "\f", "v": "\v"}


def _unescape(field: str) -> str:
    """One COPY text field (not \\N) -> its value. COPY TO writes only these escapes."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        ch = field[i]
        if ch == "\\" and i + 1 < len(field):
            out.append(_UNESCAPES.get(field[i + 1], field[i + 1]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _nfc_field(field: str) -> str:
    return field if field == "\\N" else encode_value(unicodedata.normalize("NFC", _unescape(field)))


def copy_text_transform(source: Source, key: bytes) -> Callable[[bytes], bytes]:
    """For whole COPY text lines of [context columns, one column per field] (sql_source's COPY
    query): NFC text, personal-ID columns replaced by their staged parts (keyed hash, mask,
    checks), so the result is staging_columns() order. Only those columns are decoded."""
    first = len(rows_mod.CONTEXT_COLUMNS)
    ids = [(first + i, *rows_mod.PII_PARTS[f.pii]) for i, f in enumerate(source.fields) if f.pii in rows_mod.PII_PARTS]

    def transform(chunk: bytes) -> bytes:
        text = chunk.decode("utf-8")
        if not text.isascii() and not unicodedata.is_normalized("NFC", text):
            # per field: an escape's letter must not compose with a combining mark after it
            text = "".join("\t".join(map(_nfc_field, line.split("\t"))) + "\n"
                           for line in text.split("\n")[:-1])
        if not ids:
            return text.encode("utf-8")
        lines = text.split("\n")[:-1]
        for n, line in enumerate(lines):
            cols = line.split("\t")
            for i, parts, width in reversed(ids):
                raw = cols[i]
                values = [None] * width if raw == "\\N" else parts(key, _unescape(raw))
                cols[i:i + 1] = [encode_value(v) for v in values]
            lines[n] = "\t".join(cols)
        return ("\n".join(lines) + "\n").encode("utf-8")

    return transform


class _Stopped(Exception):
    """The consumer gave up: the producer stops reading the source."""


_CHUNK_BYTES = 1024 * 1024


def copy_from_stream(cur, table: str, columns: list[str], produce: Callable[[Callable[[bytes], None]], None],
                     transform: Callable[[bytes], bytes]) -> tuple[int, str]:
    """COPY FROM STDIN into a staging table what `produce(write)` writes as COPY text rows (one
    whole row per write, as COPY TO gives them). The producer runs in a thread, so reading the
    source and writing the warehouse overlap; the buffer between them is a few MB whatever the
    size. Returns (rows, sha256 of the staged text); a producer's error is raised here."""
    chunks: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()
    failure: list[BaseException] = []

    def put(item) -> None:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        raise _Stopped

    class Sink:
        def __init__(self):
            self.parts: list[bytes] = []
            self.size = 0

        def write(self, data) -> None:
            if isinstance(data, str):
                data = data.encode("utf-8")
            self.parts.append(data)
            self.size += len(data)
            if self.size >= _CHUNK_BYTES:
                self.flush()

        def flush(self) -> None:
            if self.parts:
                put(b"".join(self.parts))
                self.parts, self.size = [], 0

    def run() -> None:
        sink = Sink()
        try:
            produce(sink.write)
            sink.flush()
        except _Stopped:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            failure.append(exc)
        try:
            put(None)
        except _Stopped:
            pass

    sha = hashlib.sha256()
    count = 0

    class Source_:
        def __init__(self):
            self.pending = b""

        def read(self, size: int = -1) -> bytes:
            nonlocal count
            if not self.pending:
                chunk = chunks.get()
                if chunk is None:
                    chunks.put(None)  # later reads see the end again
                    if failure:
                        raise failure[0]
                    return b""
                chunk = transform(chunk)
                sha.update(chunk)
                count += chunk.count(b"\n")
                self.pending = chunk
            out, self.pending = self.pending, b""
            return out

        readline = read

    copy_sql = sql.SQL("COPY {}.{} ({}) FROM STDIN").format(
        sql.Identifier(SCHEMA), sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
    producer = threading.Thread(target=run, name=f"copy-into-{table}", daemon=True)
    producer.start()
    try:
        cur.copy_expert(copy_sql, Source_(), size=_CHUNK_BYTES)
    except BaseException:
        stop.set()
        if failure:  # the COPY was aborted because the source failed: say that, not the abort
            producer.join()
            raise failure[0] from None
        raise
    finally:
        stop.set()
        producer.join()
    if failure:  # the producer failed after the consumer saw its last chunk
        raise failure[0]
    return count, sha.hexdigest()
