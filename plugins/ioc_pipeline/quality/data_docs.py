"""A static data-quality site built from the warehouse (`make docs`, and after each refresh).

GX's own Data Docs are rendered from GX's stores, which this pipeline does not keep (it runs GX
in PostgreSQL and stores every result in audit.validation_result); this is the equivalent
browsable report operations.md allows, with what GX's pages show per expectation (its kwargs,
% unexpected, sample failing values, masked here) plus the pipeline's own verdict. Pages:

    index.html              per source: latest batch and its verdict, expectation outcomes,
                            rows, share valid, last error; the trend of the last days
                            (ioc.data_quality); reconciliation
    suites/<code>.html      what the source's suite checks and why (meta.reason), with what a
                            failure of each expectation does
    sources/<code>.html     the source's batches
    batches/<id>.html       the batch's verdict, then every expectation result (kwargs,
                            unexpected count and share, sample keys with masked values,
                            observed value, full error), a "failures only" filter, the
                            quarantined rows (or a failed batch's rows kept as evidence) and the
                            reconciliation warnings of its as-of date
    reconciliation.html     cross-source warnings per check, date and commune (counts only)

Rendered by the Jinja2 templates in templates/ with autoescape: every value that comes from the
warehouse is escaped (source values are hostile) and control characters are shown as \\xNN.
Self-contained HTML (inline CSS; the filter is CSS-only, no script; nothing fetched). The site
is built in a temporary directory next to the target and swapped in, so a reader never sees
half a site.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

import jinja2
import markupsafe

from ioc_pipeline import config
from ioc_pipeline.declaration import catalog
from ioc_pipeline.quality import quarantine_report

log = logging.getLogger(__name__)

SAMPLE_ROWS = 50          # quarantined keys shown per batch page
_SAFE_CODE = re.compile(r"[a-z][a-z0-9_]{0,40}")
TEMPLATES = Path(__file__).resolve().parent / "templates"


def default_dir() -> Path:
    if os.environ.get("IOC_DATA_DOCS_DIR"):
        return Path(os.environ["IOC_DATA_DOCS_DIR"]).resolve()
    return Path(os.environ.get("IOC_DATA_DIR", config.REPO_ROOT / ".data")).resolve() / "data_docs"


# ----------------------------------------------------------------------------- template environment

def _finalize(value):
    """Every {{ value }}: None shows as nothing, text with its control characters as \\xNN
    (markup our templates made, e.g. a macro's output, passes as it is)."""
    if value is None:
        return ""
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return quarantine_report.printable(value)
    return value


def _num(value) -> str:
    return "" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def _pct(share) -> str:
    return "" if share is None else f"{float(share) * 100:.2f}%"


def _json(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _kwarg(value) -> str:
    """A kwarg as an analyst wrote it: text as is, a list (a value set) comma-separated, the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(v if isinstance(v, str) else _json(v) for v in value)
    return _json(value)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, finalize=_finalize,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(num=_num, pct=_pct, json=_json, kwarg=_kwarg)
    return env


# ----------------------------------------------------------------------------- what an outcome means

def outcome(r: dict) -> str:
    """One word per expectation result, for its colour and the filter:
    pass | quarantined (critical row-level: its rows held back, the batch goes on) | warning |
    fail (a critical batch-level failure, or a rule that could not run and so fails the batch)."""
    if r["exception"]:
        return "fail" if r["severity"] == "critical" or not r["row_level"] else "warning"
    if r["success"]:
        return "pass"
    if r["severity"] != "critical":
        return "warning"
    return "quarantined" if r["row_level"] else "fail"


def tally(results: list[dict]) -> dict[str, int]:
    counts = {"evaluated": len(results), "pass": 0, "quarantined": 0, "warning": 0, "fail": 0}
    for r in results:
        counts[outcome(r)] += 1
    return counts


def _share_valid(b: dict):
    loaded, quarantined = b["rows_loaded"], b["rows_quarantined"]
    if b["status"] != "committed" or not (loaded or 0) + (quarantined or 0):
        return None
    return loaded / (loaded + quarantined)


def _verdict(b: dict, threshold) -> str:
    """The batch's own outcome in one sentence, apart from its expectations' results."""
    if b["status"] == "committed":
        q = b["rows_quarantined"] or 0
        keys = b["distinct_keys"] or 0
        share = f" ({q / keys:.2%} of {keys:,} keys" + (f", threshold {threshold:.0%})" if threshold is not None else ")") \
            if keys else ""
        return f"committed: {b['rows_loaded'] or 0:,} rows loaded, {q:,} quarantined{share}"
    if b["status"] == "failed":
        return "failed: nothing of this batch was published"
    return str(b["status"])


# ----------------------------------------------------------------------------- warehouse reads

def _fetch(cur, query: str, params=None) -> list[dict]:
    cur.execute(query, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _source_codes(cur) -> list[str]:
    codes = list(catalog.load())
    for r in _fetch(cur, "SELECT source_code FROM audit.source ORDER BY 1"):
        if r["source_code"] not in codes:
            codes.append(r["source_code"])
    return [c for c in codes if _SAFE_CODE.fullmatch(c)]   # codes become file names


BATCHES_SQL = """
SELECT b.batch_id, b.source_code, b.as_of_date, b.batch_name, b.status, b.rows_read, b.distinct_keys,
       b.rows_loaded, b.rows_quarantined, b.extra_columns, b.started_at, b.finished_at, b.error,
       (SELECT count(*) FROM quarantine.rejected_row q WHERE q.batch_id = b.batch_id) AS kept_rows
  FROM audit.batch b WHERE b.source_code = %s ORDER BY b.batch_id DESC LIMIT %s"""

RESULTS_SQL = """
SELECT batch_id, expectation_index, expectation_type, column_name, severity, row_level, success, observed_value,
       element_count, unexpected_count, reason, exception, kwargs, sample_rows
  FROM audit.validation_result WHERE batch_id = ANY(%s) ORDER BY batch_id, expectation_index"""


def _batches(cur, code: str, limit: int, threshold) -> list[dict]:
    batches = _fetch(cur, BATCHES_SQL, (code, limit))
    results: dict[int, list[dict]] = {}
    for r in _fetch(cur, RESULTS_SQL, ([b["batch_id"] for b in batches],)):
        results.setdefault(r["batch_id"], []).append(r)
    for b in batches:
        b["results"] = results.get(b["batch_id"], [])
        for r in b["results"]:
            r["outcome"] = outcome(r)
            of = r["element_count"] or b["distinct_keys"]
            r["unexpected_share"] = (r["unexpected_count"] / of) if r["unexpected_count"] is not None and of else None
        b["tally"] = tally(b["results"])
        b["share_valid"] = _share_valid(b)
        b["verdict"] = _verdict(b, threshold)
    return batches


def _reconciliation(cur, days: int) -> list[dict]:
    return _fetch(cur, """
        SELECT r.as_of_date, r.check_code, r.commune_code, u.name AS commune_name, r.rows_flagged,
               r.persons_flagged, r.computed_at
          FROM audit.reconciliation_result r
          LEFT JOIN core.admin_unit u ON u.scheme = '2025' AND u.level = 'commune' AND u.code = r.commune_code
         WHERE r.as_of_date > (SELECT max(as_of_date) FROM audit.reconciliation_result) - %s
         ORDER BY r.as_of_date DESC, r.check_code, r.rows_flagged DESC, r.commune_code""", (days,))


def _recon_totals(recon: list[dict]) -> list[dict]:
    last = [r for r in recon if r["as_of_date"] == recon[0]["as_of_date"]] if recon else []
    totals: dict[str, dict] = {}
    for r in last:
        t = totals.setdefault(r["check_code"], {"as_of_date": r["as_of_date"], "check_code": r["check_code"],
                                                "rows_flagged": 0, "persons_flagged": 0, "communes": 0})
        t["rows_flagged"] += r["rows_flagged"]
        t["persons_flagged"] += r["persons_flagged"]
        t["communes"] += 1
    return [totals[c] for c in sorted(totals)]


def _suite(source) -> dict:
    """What the suite file checks now, or why it does not load (shown, never hidden)."""
    from ioc_pipeline.ingest import validation   # GX: imported only when the site is built

    try:
        suite = validation.load_suite(source.suite_path)
    except validation.SuiteError as exc:
        return {"path": source.suite_path, "name": None, "error": str(exc), "specs": []}
    specs = [{"index": s.index, "type": s.type, "column": s.column, "kwargs": s.kwargs, "severity": s.severity,
              "row_level": s.row_level, "reason": s.meta.get("reason"),
              "on_failure": ("quarantines the failing rows" if s.row_level else "fails the batch")
              if s.severity == "critical" else "recorded as a warning"} for s in suite.specs]
    return {"path": source.suite_path, "name": suite.name, "error": None, "specs": specs}


# ----------------------------------------------------------------------------- build

def build(conn, out_dir: Path | None = None, *, days: int = 14, batches_per_source: int = 100) -> Path:
    """Write the whole site to `out_dir` (default: default_dir()), swapped in at the end; return index.html."""
    target = Path(out_dir or default_dir()).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    built = dt.datetime.now(dt.UTC).astimezone().isoformat(timespec="seconds")
    env = environment()
    env.globals.update(built_at=built)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    pages = 0
    try:
        for folder in ("sources", "batches", "suites"):
            (tmp / folder).mkdir()

        def write(rel: str, template: str, **context) -> None:
            root = "../" * rel.count("/")
            (tmp / rel).write_text(env.get_template(template).render(root=root, **context), encoding="utf-8")

        sources = catalog.load()
        with conn.cursor() as cur:
            codes = _source_codes(cur)
            threshold = {c: s.quarantine_threshold for c, s in sources.items()}
            batches = {c: _batches(cur, c, batches_per_source, threshold.get(c)) for c in codes}
            recon = _reconciliation(cur, days)
            runs = {r["source_code"]: r for r in _fetch(cur, """
                SELECT DISTINCT ON (source_code) source_code, error, coalesce(finished_at, started_at) AS at
                  FROM audit.source_run WHERE error IS NOT NULL ORDER BY source_code, started_at DESC""")}
            trend = _fetch(cur, """
                SELECT source_code, date, batch_status, expectations_evaluated, expectations_passed, rows_read,
                       rows_loaded, rows_quarantined, share_valid
                  FROM ioc.data_quality
                 WHERE date > (SELECT max(date) FROM ioc.data_quality) - %s
                 ORDER BY source_code, date DESC""", (days,))
            suites = {c: _suite(sources[c]) for c in codes if c in sources}
            write("index.html", "index.html.j2", title="Data quality of the IOC's sources",
                  rows=[{"code": c, "source": sources.get(c), "latest": batches[c][0] if batches[c] else None,
                         "last_error": runs.get(c), "has_suite": c in suites} for c in codes],
                  trend=trend, days=days, recon_totals=_recon_totals(recon))
            write("reconciliation.html", "reconciliation.html.j2", title="Cross-source reconciliation",
                  recon=recon, days=days)
            for code in codes:
                if code in suites:
                    write(f"suites/{code}.html", "suite.html.j2", title=f"Suite of {code}", code=code,
                          source=sources[code], suite=suites[code])
                write(f"sources/{code}.html", "source.html.j2", title=f"Source {code}", code=code,
                      source=sources.get(code), batches=batches[code], limit=batches_per_source,
                      has_suite=code in suites)
                for b in batches[code]:
                    reasons = quarantine_report.reason_counts(cur, code, b["batch_id"])
                    rows = quarantine_report.batch_rows(cur, code, b["batch_id"], SAMPLE_ROWS)
                    write(f"batches/{b['batch_id']}.html", "batch.html.j2", title=f"{code} batch {b['batch_id']}",
                          code=code, b=b, reasons=reasons, rows=rows, sample_limit=SAMPLE_ROWS,
                          recon=[r for r in recon if r["as_of_date"] == b["as_of_date"]], has_suite=code in suites)
                    pages += 1
        conn.commit()
        os.chmod(tmp, 0o755)
        _swap(tmp, target)
    except BaseException:
        conn.rollback()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("data docs: %d sources, %d batch pages in %s", len(codes), pages, target)
    return target / "index.html"


def _swap(tmp: Path, target: Path) -> None:
    """Replace `target` with `tmp`: two renames in one directory, the old site removed after."""
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        os.rename(target, old)
    os.rename(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
