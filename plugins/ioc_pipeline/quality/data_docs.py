"""A static data-quality site built from the warehouse (`make docs`, and after each refresh).

GX's own Data Docs are rendered from GX's stores, which this pipeline does not keep (it runs GX
in PostgreSQL and stores every result in audit.validation_result); this is the equivalent
browsable report operations.md allows. Pages:

    index.html              per source: latest batch, expectations, rows, share valid, last
                            error; the trend of the last days (ioc.data_quality); reconciliation
    sources/<code>.html     the source's batches
    batches/<id>.html       every expectation result of the batch, its quarantine summary
                            (reasons with counts, a sample of keys with masked failing values)
                            and the reconciliation warnings of its as-of date
    reconciliation.html     cross-source warnings per check, date and commune (counts only)

Self-contained HTML (inline CSS, no script, nothing fetched). Every value that comes from the
warehouse is escaped: source values are hostile. The site is built in a temporary directory
next to the target and swapped in, so a reader never sees half a site.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

from ioc_pipeline.declaration import catalog
from ioc_pipeline import config
from ioc_pipeline.quality import quarantine_report

log = logging.getLogger(__name__)

SAMPLE_ROWS = 50          # quarantined keys shown per batch page
_SAFE_CODE = re.compile(r"[a-z][a-z0-9_]{0,40}")


def default_dir() -> Path:
    if os.environ.get("IOC_DATA_DOCS_DIR"):
        return Path(os.environ["IOC_DATA_DOCS_DIR"]).resolve()
    return Path(os.environ.get("IOC_DATA_DIR", config.REPO_ROOT / ".data")).resolve() / "data_docs"


# ----------------------------------------------------------------------------- HTML pieces

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem auto;max-width:78rem;
     padding:0 1rem;color:#1d2733;line-height:1.4}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #d5dbe1;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#eef2f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#176f2c;font-weight:600}.bad{color:#b3261e;font-weight:600}.warn{color:#8a5a00;font-weight:600}
.bar{background:#e4e8ec;width:8rem;height:.7rem;display:inline-block}
.bar span{background:#2f7d4a;height:100%;display:block}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem;white-space:pre-wrap;word-break:break-all}
nav a{margin-right:1rem}footer{margin-top:3rem;color:#5b6773;font-size:.8rem}
"""


def e(value) -> str:
    """Escape anything for HTML text and attributes, control characters shown as \\xNN; None is empty."""
    return "" if value is None else html.escape(quarantine_report.printable(str(value)), quote=True)


def _num(value) -> str:
    return "" if value is None else f"{value:,}" if isinstance(value, int) else e(value)


def _status(status) -> str:
    cls = {"committed": "ok", "success": "ok", "failed": "bad", "running": "warn"}.get(status, "")
    return f'<span class="{cls}">{e(status)}</span>'


def _bool(ok) -> str:
    return '<span class="ok">pass</span>' if ok else '<span class="bad">FAIL</span>'


def _share(share) -> str:
    if share is None:
        return ""
    pct = float(share) * 100
    return f'<span class="bar"><span style="width:{pct:.1f}%"></span></span> {pct:.2f}%'


def _json(value, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return e(text if len(text) <= limit else text[:limit] + "…")


def table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """Cells are already-escaped HTML; headers are ours."""
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r)) + "</tr>"
        for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: str, *, root: str, built_at: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title><style>{CSS}</style></head>
<body><nav><a href="{root}index.html">Data quality: all sources</a><a href="{root}reconciliation.html">Reconciliation</a></nav>
<h1>{e(title)}</h1>
{body}
<footer>Built {e(built_at)} from the warehouse's stored results (audit.batch, audit.validation_result,
quarantine.rejected_row, ioc.data_quality, audit.reconciliation_result). GX's own Data Docs need GX's
stores, which this pipeline does not keep; this site is the equivalent report operations.md allows
("GX Data Docs or equivalent"). Personal IDs appear masked only.</footer>
</body></html>
"""


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
       (SELECT count(*) FROM audit.validation_result r WHERE r.batch_id = b.batch_id) AS evaluated,
       (SELECT count(*) FROM audit.validation_result r WHERE r.batch_id = b.batch_id AND r.success) AS passed
  FROM audit.batch b WHERE b.source_code = %s ORDER BY b.batch_id DESC LIMIT %s"""


def _share_valid(b: dict):
    loaded, quarantined = b["rows_loaded"], b["rows_quarantined"]
    if b["status"] != "committed" or not (loaded or 0) + (quarantined or 0):
        return None
    return loaded / (loaded + quarantined)


def _reconciliation(cur, days: int) -> list[dict]:
    return _fetch(cur, """
        SELECT r.as_of_date, r.check_code, r.commune_code, u.name AS commune_name, r.rows_flagged,
               r.persons_flagged, r.computed_at
          FROM audit.reconciliation_result r
          LEFT JOIN core.admin_unit u ON u.scheme = '2025' AND u.level = 'commune' AND u.code = r.commune_code
         WHERE r.as_of_date > (SELECT max(as_of_date) FROM audit.reconciliation_result) - %s
         ORDER BY r.as_of_date DESC, r.check_code, r.rows_flagged DESC, r.commune_code""", (days,))


def _reconciliation_table(rows: list[dict]) -> str:
    return table(["as of", "check", "commune", "rows flagged", "persons flagged"],
                 [[e(r["as_of_date"]), f"<code>{e(r['check_code'])}</code>",
                   f"{e(r['commune_code'])} {e(r['commune_name'])}", _num(r["rows_flagged"]),
                   _num(r["persons_flagged"])] for r in rows], numeric={3, 4})


RECONCILIATION_INTRO = """<p>Cross-source checks joined on the pseudonymised citizen ID (warnings, never a
reason to reject a batch): <code>DEATH_BEFORE_SOCIAL_PAYMENT</code>, social payments made to a person
whose death was registered before the payment date; <code>DEATH_BEFORE_HEALTH_VISIT</code>,
health-insurance visits by a person whose death was registered before the visit date. Counts per
2025 commune of the payment or visit, up to the as-of date. No ID is stored with them.</p>"""


# ----------------------------------------------------------------------------- pages

def _index(cur, codes: list[str], latest: dict[str, list[dict]], days: int, recon: list[dict], built: str) -> str:
    runs = {r["source_code"]: r for r in _fetch(cur, """
        SELECT DISTINCT ON (source_code) source_code, error, coalesce(finished_at, started_at) AS at
          FROM audit.source_run WHERE error IS NOT NULL ORDER BY source_code, started_at DESC""")}
    rows = []
    for code in codes:
        b = latest[code][0] if latest[code] else None
        err = runs.get(code)
        title = catalog.load()[code].title if code in catalog.load() else ""
        rows.append([
            f'<a href="sources/{e(code)}.html">{e(code)}</a><br><small>{e(title)}</small>',
            f'<a href="batches/{b["batch_id"]}.html">{b["batch_id"]}</a> {_status(b["status"])}<br><small>as of {e(b["as_of_date"])}</small>'
            if b else "no batch yet",
            f'{b["passed"]} / {b["evaluated"]}' if b else "",
            _num(b["rows_read"]) if b else "", _num(b["rows_loaded"]) if b else "",
            _num(b["rows_quarantined"]) if b else "", _share(_share_valid(b)) if b else "",
            f'<small>{e(err["at"])}</small><br><code>{e(err["error"])}</code>' if err else "",
        ])
    body = ["<h2>Sources: latest batch</h2>",
            table(["source", "latest batch", "expectations passed / evaluated", "rows read", "rows loaded",
                   "rows quarantined", "share valid", "last error"], rows, numeric={3, 4, 5})]
    trend = _fetch(cur, """
        SELECT source_code, date, batch_status, expectations_evaluated, expectations_passed, rows_read,
               rows_loaded, rows_quarantined, share_valid
          FROM ioc.data_quality
         WHERE date > (SELECT max(date) FROM ioc.data_quality) - %s
         ORDER BY source_code, date DESC""", (days,))
    body.append(f"<h2>Trend: the last {days} days (ioc.data_quality)</h2>")
    body.append(table(["source", "date", "status", "expectations passed / evaluated", "rows read", "rows loaded",
                       "rows quarantined", "share valid"],
                      [[e(t["source_code"]), e(t["date"]), _status(t["batch_status"]),
                        f'{t["expectations_passed"]} / {t["expectations_evaluated"]}', _num(t["rows_read"]),
                        _num(t["rows_loaded"]), _num(t["rows_quarantined"]), _share(t["share_valid"])] for t in trend],
                      numeric={4, 5, 6}))
    body.append('<h2>Reconciliation warnings (<a href="reconciliation.html">all</a>)</h2>')
    last = [r for r in recon if recon and r["as_of_date"] == recon[0]["as_of_date"]]
    totals: dict[str, list[int]] = {}
    for r in last:
        t = totals.setdefault(r["check_code"], [0, 0, 0])
        t[0] += r["rows_flagged"]; t[1] += r["persons_flagged"]; t[2] += 1   # noqa: E702
    body.append(table(["as of", "check", "rows flagged", "persons flagged", "communes"],
                      [[e(last[0]["as_of_date"]), f"<code>{e(c)}</code>", _num(t[0]), _num(t[1]), _num(t[2])]
                       for c, t in sorted(totals.items())], numeric={2, 3, 4})
                if last else "<p>No reconciliation warning stored.</p>")
    return page("Data quality of the IOC's sources", "\n".join(body), root="", built_at=built)


def _source_page(code: str, batches: list[dict], limit: int, built: str) -> str:
    src = catalog.load().get(code)
    intro = (f"<p>{e(src.title)} ({e(src.owner)}), {e(src.kind)} source; key {e(', '.join(src.key))};"
             f" suite <code>include/expectations/{e(code)}.json</code>; core table <code>{e(src.core_table)}</code>;"
             f" quarantine threshold {src.quarantine_threshold:.0%}.</p>") if src else ""
    rows = [[f'<a href="../batches/{b["batch_id"]}.html">{b["batch_id"]}</a>', e(b["as_of_date"]), e(b["batch_name"]),
             _status(b["status"]), f'{b["passed"]} / {b["evaluated"]}', _num(b["rows_read"]), _num(b["rows_loaded"]),
             _num(b["rows_quarantined"]), _share(_share_valid(b)), e(b["finished_at"]), f'<code>{e(b["error"])}</code>'
             if b["error"] else ""] for b in batches]
    body = intro + f"<h2>Batches (newest first, at most {limit})</h2>" + table(
        ["batch", "as of", "window / file", "status", "expectations passed / evaluated", "rows read", "rows loaded",
         "rows quarantined", "share valid", "finished", "error"], rows, numeric={5, 6, 7})
    return page(f"Source {code}", body, root="../", built_at=built)


def _batch_page(cur, b: dict, recon: list[dict], built: str) -> str:
    code = b["source_code"]
    results = _fetch(cur, """
        SELECT expectation_index, expectation_type, column_name, severity, row_level, success, observed_value,
               element_count, unexpected_count, reason, exception
          FROM audit.validation_result WHERE batch_id = %s ORDER BY expectation_index""", (b["batch_id"],))
    facts = table(["source", "as of", "window / file", "status", "rows read", "distinct keys", "rows loaded",
                   "rows quarantined", "schema drift", "started", "finished"],
                  [[f'<a href="../sources/{e(code)}.html">{e(code)}</a>', e(b["as_of_date"]), e(b["batch_name"]),
                    _status(b["status"]), _num(b["rows_read"]), _num(b["distinct_keys"]), _num(b["rows_loaded"]),
                    _num(b["rows_quarantined"]), e(", ".join(b["extra_columns"] or [])), e(b["started_at"]),
                    e(b["finished_at"])]], numeric={4, 5, 6, 7})
    body = [facts]
    if b["error"]:
        body.append(f'<p class="bad">Error:</p><pre>{e(b["error"])}</pre>')
    body.append(f"<h2>Expectations: {b['passed']} of {b['evaluated']} passed</h2>")
    body.append(table(["#", "type", "column", "severity", "level", "result", "observed value", "unexpected / of",
                       "reason (meta.reason)", "exception"],
                      [[str(r["expectation_index"]), f'<code>{e(r["expectation_type"])}</code>', e(r["column_name"]),
                        e(r["severity"]), "row" if r["row_level"] else "batch", _bool(r["success"]),
                        f'<code>{_json(r["observed_value"])}</code>' if r["observed_value"] is not None else "",
                        _num(r["unexpected_count"]) + (f' / {_num(r["element_count"])}' if r["element_count"] else ""),
                        e(r["reason"]), f'<code>{e(r["exception"])}</code>' if r["exception"] else ""]
                       for r in results]))
    reasons = quarantine_report.reason_counts(cur, code, b["batch_id"])
    sample = quarantine_report.batch_rows(cur, code, b["batch_id"], SAMPLE_ROWS)
    body.append(f"<h2>Quarantine: {_num(b['rows_quarantined'] or 0)} rows</h2>")
    body.append(table(["reason", "rows"], [[e(r), _num(n)] for r, n in reasons], numeric={1}))
    if sample:
        body.append(f"<p>Keys{' (first ' + str(SAMPLE_ROWS) + ')' if len(sample) == SAMPLE_ROWS else ''}, with the"
                    f" failing fields (personal IDs masked); all of them: <code>make quarantine SOURCE={e(code)}"
                    f" BATCH={b['batch_id']}</code></p>")
        body.append(table(["business key", "record date", "reasons", "failing values"],
                          [[f"<code>{e(r.business_key)}</code>", e(r.record_date), "<br>".join(e(x) for x in r.reasons),
                            "<br>".join(f"<code>{e(k)}</code> = <code>{e(v)}</code>"
                                        for k, v in sorted(r.failing_values.items()))] for r in sample]))
    same_day = [r for r in recon if r["as_of_date"] == b["as_of_date"]]
    body.append(f"<h2>Reconciliation warnings as of {e(b['as_of_date'])}</h2>")
    body.append(_reconciliation_table(same_day) if same_day else "<p>None stored for this date.</p>")
    return page(f"{code} batch {b['batch_id']}", "\n".join(body), root="../", built_at=built)


# ----------------------------------------------------------------------------- build

def build(conn, out_dir: Path | None = None, *, days: int = 14, batches_per_source: int = 100) -> Path:
    """Write the whole site to `out_dir` (default: default_dir()), swapped in at the end; return index.html."""
    target = Path(out_dir or default_dir()).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    built = dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        (tmp / "sources").mkdir()
        (tmp / "batches").mkdir()
        with conn.cursor() as cur:
            codes = _source_codes(cur)
            latest = {c: _fetch(cur, BATCHES_SQL, (c, batches_per_source)) for c in codes}
            recon = _reconciliation(cur, days)
            write = lambda rel, text: (tmp / rel).write_text(text, encoding="utf-8")  # noqa: E731
            write("index.html", _index(cur, codes, latest, days, recon, built))
            write("reconciliation.html", page("Cross-source reconciliation", RECONCILIATION_INTRO
                                              + f"<h2>The last {days} as-of dates</h2>" + _reconciliation_table(recon),
                                              root="", built_at=built))
            pages = 0
            for code in codes:
                write(f"sources/{code}.html", _source_page(code, latest[code], batches_per_source, built))
                for b in latest[code]:
                    write(f"batches/{b['batch_id']}.html", _batch_page(cur, b, recon, built))
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
