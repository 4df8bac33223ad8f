"""The doc_md of every DAG, generated from the source catalog and the DAG's own settings.

Each statement is built from a fact the DAG carries (connection, path or table, watermark or
snapshot, key, threshold, tasks, schedule, Assets), so a doc cannot say what the DAG does not
do. tests/unit/test_dag_docs.py checks every `backticked` name of every doc against the
catalog, the DAG and the repository. Longer explanations live in docs/ (linked, inside the
repository).
"""
from __future__ import annotations

from ioc_pipeline.declaration.catalog import Source

LOCAL_TZ_NAME = "Asia/Ho_Chi_Minh"


def cron_text(cron: str) -> str:
    """'30 0 * * *' -> '00:30' (the only cron shape the DAGs use: a daily time)."""
    minute, hour, *rest = cron.split()
    if rest != ["*", "*", "*"] or not (minute.isdigit() and hour.isdigit()):
        raise ValueError(f"not a daily cron: {cron!r}")
    return f"{int(hour):02d}:{int(minute):02d}"


def _reads(source: Source) -> str:
    if source.kind == "rest":
        what = f"the REST resource `{source.path}`"
    else:
        what = f"the table `{source.extra['table']}` (read-only transaction, server-side cursor)"
    return f"**Reads** {what} through connection `{source.connection}` (docs/sources.md)."


def _window(source: Source) -> str:
    if source.watermark:
        return (f"**Window**: incremental by `{source.watermark}`, from the watermark of the last committed "
                f"batch (`audit.watermark`; none on the first run: the whole history) up to D+1 00:00 +07:00. "
                f"A run whose window is empty succeeds and loads nothing.")
    return (f"**Window**: none, this source is a daily snapshot: a run for D asks the snapshot of D "
            f"(`{source.record_date}` = D); a re-run of D replaces that date's rows key by key. "
            f"No watermark is kept.")


def _when_it_fails(source: Source) -> str:
    return f"""**When it fails** nothing of the batch was published: `{source.core_table}` and the IOC views
keep the last good data, and `ioc.source_freshness` shows the failure (`last_error`, the short
form). The failed task's log names the problem; `audit.batch` and `audit.source_run` keep it in
`error` (short) and `error_detail` (every reason, one per line):
- *token refused / connection missing*: fix connection `{source.connection}`;
- *gave up after N attempts*: the source is down or overloaded; clear the task later;
- *failed validation*: `make quarantine SOURCE={source.code}` lists the quarantined rows (masked)
  with their reasons, `make docs` every expectation result; fix the source or the suite, then
  re-run the same date (re-runs are idempotent)."""


def _replay(source: Source) -> str:
    if not source.watermark:
        return ""
    return f"""
**Replay** rows that were quarantined, once the source fixed them without touching their
`{source.watermark}`: trigger with the `replay_batch` param = the batch id of the quarantine
(`make quarantine SOURCE={source.code}` lists them); its window is read again and merged (a
stored version is replaced only by one at least as recent; the watermark never moves back).
"""


def ingest_doc(source: Source, cron: str) -> str:
    """doc_md of a REST or SQL source's DAG: begin -> extract -> validate -> publish (+ cleanup)."""
    writes = [f"`{source.core_table}`", "`quarantine.rejected_row`", "`audit.batch`",
              "`audit.validation_result`", "`audit.source_run`"] + (["`audit.watermark`"] if source.watermark else [])
    return f"""### {source.dag_id} — {source.title} ({source.owner})

**Runs** nightly at {cron_text(cron)} {LOCAL_TZ_NAME} (cron `{cron}`; as-of date D = yesterday), or by hand
with the `as_of_date` param (docs/operations.md, "As-of date").

{_reads(source)}
{_window(source)}

**Tasks**: `begin` (checks the warehouse is migrated, as-of date, audit rows, window, staging table) → `extract`
(retried with backoff) → `validate` (keeps one version per key, runs the suite) → `publish`; `cleanup` drops
the staging tables whatever happened.

**Writes** {", ".join(writes)}: the latest valid version per key ({", ".join(f"`{k}`" for k in source.key)}),
failing rows with their reasons and personal IDs masked. `publish` emits the Asset
`{source.asset_uri}` each time it commits a batch (an empty window too), which triggers
`refresh_ioc_views`.

**Checks** `include/expectations/{source.code}.json` (a GX suite run inside PostgreSQL; docs/expectations.md).
Critical row-level failures quarantine rows; more than {source.quarantine_threshold:.0%} of the batch's keys
quarantined, or a critical batch-level failure, fails the whole batch.

{_when_it_fails(source)}
{_replay(source)}"""


def file_failure_message(source: Source, files: int, failures: list[str]) -> str:
    """What the `finish` task raises (and its log shows): a count, then one failed file per line."""
    return "\n".join([f"{source.code}: {len(failures)} of {files} file(s) failed",
                      *(f"  {reason}" for reason in failures)])


def file_doc(source: Source, cron: str) -> str:
    """doc_md of a file source's DAG: begin -> load_files -> finish."""
    example = file_failure_message(source, 3, [f"{source.files.pattern}: <what is wrong with it>"])
    return f"""### {source.dag_id} — {source.title} ({source.owner})

**Runs** nightly at {cron_text(cron)} {LOCAL_TZ_NAME} (cron `{cron}`; as-of date D = yesterday), and on
arrival: when the triggerer sees a new or changed settled file in the landing folder (Asset
`ioc://landing/{source.code}`; D = yesterday too, so a file named today waits for the night), or by
hand with the `as_of_date` param.

**Reads** the files `{source.files.pattern}` ({source.files.format}) of the landing folder of connection
`{source.connection}` (type fs, extra path; docs/sources.md, docs/file_sources.md): every delivery
named on or before D (undated files always) that has settled for 60 s and whose name and
checksum have not loaded yet. Each file is one batch; a file delivered again under the same name
is a correction that replaces the rows it brought.

**Tasks**: `begin` (lists the deliveries to load) → `load_files` (each file its own batch: stage,
dedupe, validate, publish; a failed file does not stop the others) → `finish`.

**Writes** `{source.core_table}` (latest valid version per key {", ".join(f"`{k}`" for k in source.key)}),
`quarantine.rejected_row` (failing rows with reasons, personal IDs masked), `audit.file_delivery`
(the file ledger), `audit.batch`, `audit.validation_result`, `audit.source_run`. `load_files` emits
the Asset `{source.asset_uri}` each time it ends, with the number of files committed in the
event's extra (0 when nothing new loaded), which triggers `refresh_ioc_views`.

**Checks** `include/expectations/{source.code}.json` (a GX suite run inside PostgreSQL) on each file.
More than {source.quarantine_threshold:.0%} of a file's keys quarantined, or a critical batch-level
failure, fails that file only.

**When it fails** the other files loaded; nothing of a failed file was published. `finish` fails
the run with a count, then each failed file on its own line:

```
{example}
```

The same reasons, one per line, are in `audit.source_run` (`error_detail`); `error` and
`ioc.source_freshness` (`last_error`) hold the short form (whole reasons, then "(+N more)").
- *cannot be read* (truncated, not UTF-8, wrong sheet, column missing): ask the department to
  deliver the file again under the same name; the next run loads it;
- *failed validation*: `make quarantine SOURCE={source.code}` and `make docs`; fix the file or the
  suite; a failed file is tried again at every run until it loads;
- *landing path missing*: fix connection `{source.connection}`.
"""


def refresh_doc(cron: str) -> str:
    return f"""### refresh_ioc_views — recompute the IOC's indicators

**Runs** when an ingest DAG emits its Asset (D = the greatest `as_of_date` in the triggering events'
extra), nightly at {cron_text(cron)} {LOCAL_TZ_NAME} (cron `{cron}`; D = yesterday) as a fallback, or by hand
with the `as_of_date` param.

**Tasks**: `refresh_views` → `reconcile` → `build_data_docs` (a teardown: runs after a failure too).

**Reads** the core tables, `core.admin_unit` and the audit ledger. **Writes**
`mart.indicator_history` for D in one transaction: the views `ioc.indicator_values` and
`ioc.indicator_history` show the old or the new row set, never a mix, and readers are never
blocked (docs/ioc_views.md). Sources whose last
batch failed count with their last good data.

`reconcile` stores the cross-source warnings of D (deaths registered before a social payment or
a health visit, per commune, joined on the pseudonymised ID) in `audit.reconciliation_result`
(view `ioc.data_quality_reconciliation`); a flagged row never fails it. `build_data_docs`
rebuilds the data-quality report (`make docs` prints where).

**When it fails** the views keep the previous row set. Look at the task log: a SQL error names the
indicator file in `include/sql/indicators/`; re-run the same date once fixed (idempotent). A
failed `build_data_docs` leaves the views as refreshed: fix it (disk, permissions of
`IOC_DATA_DOCS_DIR`) and run `make docs`.
"""
