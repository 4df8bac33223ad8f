"""Try an expectation suite before committing it (`make check-suite SOURCE=<code> [SUITE=] [ROWS=]`).

Two steps, the first before any data is read:

1. `lint()` checks the file in about a second: the JSON, each entry's type, kwargs, severity
   and `meta.reason`, every column a rule names against the staged layout of the source, and
   every `unexpected_rows_expectation` query prepared (EXPLAIN) against an empty staged batch of
   the source (created and deduplicated as a real batch is, then dropped). Every problem says how to fix it.
2. `check()` stages a sample of the source (the first `rows` rows of its current window, or of
   its newest delivery) into a scratch staging table exactly as a batch would (same row
   building, PII handling and dedupe), runs the suite on it in PostgreSQL, and drops the table.
   `report()` gives, per expectation, its reason, failing rows and share, up to five sample
   keys with the failing value masked as quarantine shows it, and the verdict the batch would
   get (the same rule as a real batch: batch.verdict_failures). Nothing is published, no audit
   row is written.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import itertools
import json
import re
from pathlib import Path

from psycopg2 import errors as pg_errors
from psycopg2 import sql

from ioc_pipeline import warehouse
from ioc_pipeline.declaration.catalog import Source
from ioc_pipeline.ingest import batch, runner, staging
from ioc_pipeline.ingest.rule_sql import unexpected_rows_sql

SCRATCH_BATCH_ID = 0  # staging.<source>_b0: real batch ids start at 1
DEFAULT_ROWS = 5000
_SEVERITIES = ("critical", "warning", "info")
# kwargs that name one staged column each, and those that name several
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_HELPERS = ("util.try_date(text), util.try_timestamptz(text), util.try_local_timestamp(text), "
            "util.local_date(timestamptz), util.current_commune(code, record_date), util.commune_province(code)")


class SuiteProblems(Exception):
    """The suite cannot be used as written; `problems` lists each with how to fix it."""

    def __init__(self, path: Path, problems: list[str]):
        self.path, self.problems = path, problems
        super().__init__(f"{path}: " + "; ".join(problems))


# ----------------------------------------------------------------------------- 1. lint, before data

def _close(name: str, columns: list[str]) -> str:
    near = difflib.get_close_matches(name, columns, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(near)}?)" if near else ""


def _sql_hint(exc: Exception, columns: list[str]) -> str:
    """One line saying what is wrong with a rule's SQL and how to fix it."""
    message = (getattr(exc, "pgerror", None) or str(exc)).strip().splitlines()[0].removeprefix("ERROR:").strip()
    if isinstance(exc, pg_errors.UndefinedColumn):
        missing = re.search(r'column "?([\w.]+)"? does not exist', message)
        name = missing.group(1) if missing else ""
        if name in ("q._row_id", "_row_id"):
            return (f"{message}: the query must select every column of the batch, i.e. start with "
                    f"SELECT * FROM {{batch}} WHERE ... (the pipeline needs _row_id to quarantine the rows; "
                    f"SELECT record_id or a column list leaves it out)")
        bare = name.rsplit(".", 1)[-1]
        return f"{message}{_close(bare, columns)}; the staged batch has: {', '.join(columns)}"
    if isinstance(exc, pg_errors.UndefinedFunction):
        return f"{message}; compare text with text (every field is staged as text), helpers: {_HELPERS}"
    if isinstance(exc, pg_errors.UndefinedTable):
        return f"{message}: read the staged batch as {{batch}}, not a table name"
    return message


def _explain(cur, query: str, table: str) -> None:
    qualified = sql.Identifier(staging.SCHEMA, table).as_string(cur)
    cur.execute("SAVEPOINT rule")
    try:
        cur.execute("EXPLAIN " + unexpected_rows_sql(query, qualified))
    finally:
        cur.execute("ROLLBACK TO SAVEPOINT rule")


def lint(conn, source: Source, suite_path: Path) -> list[str]:
    """Problems of the suite file (empty: usable), each naming the expectation and how to fix it.
    Reads no data: the SQL is prepared against an empty table of the source's staged layout."""
    try:
        doc = json.loads(Path(suite_path).read_text(encoding="utf-8"))
    except OSError as exc:
        return [f"cannot read the file: {exc.strerror or exc}"]
    except json.JSONDecodeError as exc:
        return [(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg} "
                 f"(a missing or extra comma, quote or bracket just before there)")]
    if not isinstance(doc, dict) or not isinstance(doc.get("expectations"), list):
        return ['the file must be a JSON object {"name": ..., "expectations": [...]}']
    problems = [] if isinstance(doc.get("name"), str) and doc["name"] else ['add a "name" to the suite']
    with warehouse.transaction(conn) as cur:
        table = staging.create(cur, source, SCRATCH_BATCH_ID)
    try:
        # an empty batch prepared as a real one is before validation (dedupe may add columns)
        batch.dedupe(conn, source, batch.BatchPlan(
            source_code=source.code, run_key="suite-check", batch_id=SCRATCH_BATCH_ID, as_of_date="",
            province_code="", staging_table=table))
        with conn.cursor() as cur:
            cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
                        " AND table_name = %s ORDER BY ordinal_position", (staging.SCHEMA, table))
            columns = [r[0] for r in cur.fetchall()]
            for index, item in enumerate(doc["expectations"]):
                problems += [f"#{index} {_label(item)}: {p}" for p in _lint_one(cur, item, columns, table)]
        conn.rollback()
    finally:
        with warehouse.transaction(conn) as cur:
            staging.drop(cur, table)
    return problems


def _label(item) -> str:
    if not isinstance(item, dict):
        return "?"
    kwargs = item.get("kwargs") if isinstance(item.get("kwargs"), dict) else {}
    meta = item.get("meta") if isinstance(item.get("meta"), dict) else {}
    column = kwargs.get("column") or meta.get("column")
    return str(item.get("type") or "?") + (f"({column})" if isinstance(column, str) else "")


def _lint_one(cur, item, columns: list[str], table: str) -> list[str]:
    if not isinstance(item, dict):
        return ['each expectation must be a JSON object {"type", "kwargs", "severity", "meta"}']
    out = []
    if not isinstance(item.get("type"), str) or not item.get("type"):
        out.append('add its "type", e.g. "expect_column_values_to_not_be_null"')
    kwargs = item.get("kwargs")
    if not isinstance(kwargs, dict):
        return out + ['"kwargs" must be an object']
    severity = item.get("severity", "critical")
    if severity not in _SEVERITIES:
        out.append(f'severity {severity!r} must be one of {", ".join(_SEVERITIES)}')
    meta = item.get("meta") or {}
    if not isinstance(meta, dict):
        return out + ['"meta" must be an object']
    if not isinstance(meta.get("reason"), str) or not meta["reason"].strip():
        out.append('add "meta": {"reason": "..."}: the sentence an engineer reads in quarantine and Data Docs')
    named = [kwargs.get(k) for k in _COLUMN_KWARGS if k in kwargs] + [meta.get("column")] * ("column" in meta)
    if isinstance(kwargs.get("column_list"), list) and not str(item.get("type", "")).startswith("expect_table_"):
        named += kwargs["column_list"]
    for name in named:
        if not isinstance(name, str) or name not in columns:
            out.append(f"column {name!r} is not in the staged batch{_close(str(name), columns)}"
                       + (" (a personal ID is staged only as <field>_hash, _mask, _well_formed ...)"
                          if isinstance(name, str) and any(c.startswith(name + "_") for c in columns) else ""))
    if item.get("type") == "unexpected_rows_expectation":
        query = kwargs.get("unexpected_rows_query")
        if not isinstance(query, str) or "{batch}" not in query:
            out.append('unexpected_rows_query must read the staged batch: SELECT * FROM {batch} WHERE ...')
        else:
            try:
                _explain(cur, query, table)
            except (KeyError, IndexError, ValueError) as exc:   # str.format: stray braces
                out.append(f"unexpected_rows_query has a brace other than {{batch}} ({exc}); write a literal "
                           f"brace as {{{{ or }}}}")
            except Exception as exc:  # noqa: BLE001 - any database error is the rule's to fix
                out.append(f"its SQL does not run: {_sql_hint(exc, columns)}")
    return out


# ----------------------------------------------------------------------------- 2. a sample, checked

@dataclasses.dataclass
class Sample:
    rows: int                                   # rows staged
    distinct_keys: int                          # after duplicates are resolved
    results: list                               # validation.ExpectationResult, one per expectation
    reasons: dict[int, str]                     # expectation index -> meta.reason
    kwargs: dict[int, dict]
    keys: dict[int, list[dict]]                 # index -> up to batch.SAMPLE_ROWS {key, value (masked)}
    quarantined: int                            # distinct rows critical row-level rules quarantine
    failures: list[str]                         # why the batch would fail (empty: it would commit)


def check(conn, source: Source, as_of: dt.date, *, fetch, key: bytes, province_code: str,
          sqlalchemy_url: str, suite_path: Path | None = None, rows: int | None = DEFAULT_ROWS) -> Sample:
    """Stage up to `rows` rows of the source, run the suite on them, return what a batch would see.
    Raises validation.SuiteError if the suite does not load."""
    from ioc_pipeline.ingest import validation   # GX: imported only once data is read

    suite = validation.load_suite(suite_path or source.suite_path)
    ses = runner.Session(conn, key=key, province_code=province_code, sqlalchemy_url=sqlalchemy_url)

    def items_for(window):
        items = fetch(window)[0]
        return itertools.islice(items, rows) if rows else items

    with runner.sample(ses, source, as_of, items_for, scratch_batch_id=SCRATCH_BATCH_ID) as (plan, staged):
        distinct = batch.count_keys(conn, source, plan)
        results = validation.validate_table(sqlalchemy_url, staging.SCHEMA, plan.staging_table, suite)
        with warehouse.transaction(conn) as cur:
            keys = batch.sample_failing_rows(cur, source, plan.staging_table, results)
    quarantined = len({i for r in results if r.row_level and r.severity == "critical" and not r.success
                       for i in r.failing_row_ids})
    specs = {s.index: s for s in suite.specs}
    return Sample(rows=staged, distinct_keys=distinct, results=results,
                  reasons={i: s.meta.get("reason") or "" for i, s in specs.items()},
                  kwargs={i: s.kwargs for i, s in specs.items()}, keys=keys, quarantined=quarantined,
                  failures=batch.verdict_failures(source, results, quarantined, distinct))


# ----------------------------------------------------------------------------- report

def _pct(n: int, of: int) -> str:
    return f"{100 * n / of:.2f}%" if of else "-"


def _kwargs_text(kwargs: dict) -> str:
    shown = {k: v for k, v in kwargs.items() if k not in ("column", "unexpected_rows_query", "description")}
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in shown.items())


def report(source: Source, sample: Sample) -> list[str]:
    """The lines `make check-suite` prints: per expectation its outcome, reason, kwargs, failing
    rows with sample keys; then the verdict a batch of these rows would get."""
    from ioc_pipeline.quality.quarantine_report import printable

    lines = []
    for r in sample.results:
        what = f"#{r.index:<3} {r.type}" + (f"({r.column})" if r.column else "")
        if r.exception:
            outcome = "ERROR  the rule could not run"
        elif r.success:
            outcome = "pass"
        elif r.row_level:
            action = "quarantines them" if r.severity == "critical" else "warns, the rows load"
            n = r.unexpected_count or 0
            outcome = f"FAIL   {n:,} of {sample.rows:,} rows ({_pct(n, sample.rows)}); {r.severity}: {action}"
        else:
            outcome = f"FAIL   {r.severity}: " + ("fails the batch" if r.severity == "critical" else "warns")
        lines.append(f"{what:<72} {outcome}")
        lines.append(f"       reason: {printable(sample.reasons.get(r.index) or '(no meta.reason)')}")
        if kw := _kwargs_text(sample.kwargs.get(r.index, {})):
            lines.append(f"       kwargs: {printable(kw)}")
        if r.exception:
            lines.append(f"       error: {printable(r.exception)}")
        elif not r.success and not r.row_level and r.observed_value is not None:
            lines.append(f"       observed: {printable(json.dumps(r.observed_value, default=str))}")
        if sample.keys.get(r.index):
            shown = ", ".join(printable(k["key"]) + (f" [{r.column}={printable(k['value'])}]"
                                                     if r.column and k["value"] is not None else "")
                              for k in sample.keys[r.index])
            lines.append(f"       sample keys ({'|'.join(source.key)}): {shown}")
    passed = sum(r.success for r in sample.results)
    warned = sum(not r.success and r.severity != "critical" for r in sample.results)
    lines.append(f"{passed} of {len(sample.results)} expectations passed, {warned} warning(s); "
                 f"{sample.quarantined:,} of {sample.distinct_keys:,} keys would be quarantined "
                 f"({_pct(sample.quarantined, sample.distinct_keys)}, threshold {source.quarantine_threshold:.0%})")
    if sample.failures:
        lines.append("verdict: the batch would FAIL (nothing published; its failing rows kept as evidence):")
        lines += [f"  - {printable(f)}" for f in sample.failures]
    else:
        lines.append("verdict: the batch would COMMIT" + (" (the quarantined rows held back)" if sample.quarantined else ""))
    return lines


def sample_fetcher(source: Source):
    """fetch(window) -> (items, total) over the configured connection: the window up to D+1, or, for
    a file source, its newest delivery named on or before D (read as a batch reads it)."""
    from ioc_pipeline.extract import fetchers, file_source

    def fetch(window):
        if source.kind != "file":
            return fetchers.fetcher_for(source, window)()
        root = file_source.landing_root(source)
        found = file_source.discover(root, source.files, dt.date.fromisoformat(window.as_of), settle_seconds=0)
        if not found:
            raise file_source.FileUnreadable(f"{source.code}: no delivery of {source.files.pattern} on or before "
                                             f"{window.as_of} in the landing folder")
        newest = max(found, key=lambda d: (d.named_date or "", d.mtime))
        print(f"{source.code}: sample = {newest.name}")
        return file_source.read_items(root, source, newest), (lambda: None)

    return fetch
