"""Every DAG's doc_md says only what is true of that DAG: each `backticked` name in it is checked
against the catalog, the DAG itself and the repository; the statements that differ between
sources (watermark or snapshot, the finish task's output, schedules) are checked one by one."""
import re

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import AirflowFailException

from ioc_pipeline.config import REPO_ROOT
from ioc_pipeline.declaration import catalog
from ioc_pipeline.orchestration import dag_docs, dag_factory

MIGRATIONS = "\n".join(p.read_text() for p in sorted((REPO_ROOT / "include/sql/migrations").glob("*.sql")))
MAKE_TARGETS = set(re.findall(r"^([a-z][a-z-]*):", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE))
PACKAGE_TEXT = "\n".join(p.read_text() for p in (REPO_ROOT / "plugins/ioc_pipeline").rglob("*.py"))


@pytest.fixture(scope="module")
def dagbag():
    return DagBag(dag_folder=str(REPO_ROOT / "dags"))


def _names(doc: str) -> list[str]:
    """`backticked` names outside code blocks."""
    return re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", doc, flags=re.DOTALL))


def _relation_exists(name: str) -> bool:
    return re.search(rf"CREATE (?:TABLE|(?:OR REPLACE )?(?:MATERIALIZED )?VIEW)(?: IF NOT EXISTS)? {re.escape(name)}\b",
                     MIGRATIONS) is not None


def _column_exists(name: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", MIGRATIONS) is not None


def _crons(dag) -> set[str]:
    timetable = dag.timetable
    return {t.expression for t in (timetable, getattr(timetable, "timetable", None)) if hasattr(t, "expression")}


def _assets(dag) -> set[str]:
    uris = {o.uri for t in dag.tasks for o in t.outlets}
    condition = getattr(dag.timetable, "asset_condition", None)
    for asset in getattr(condition, "objects", [condition] if condition is not None else []):
        uris.add(asset.uri)
    return uris


def _true_of(name: str, dag, source, dagbag) -> bool:
    facts = set(dag.task_ids) | set(dag.params) | _crons(dag) | _assets(dag) | set(dagbag.dag_ids)
    if source is not None:
        facts |= {source.connection, source.code, source.core_table, *source.key, *(f for f in [source.path, source.watermark,
                  source.record_date, source.extra.get("table"), source.files and source.files.pattern] if f)}
    if name in facts:
        return True
    if re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", name) and _relation_exists(name):
        return True
    if name.startswith(("include/", "docs/")):
        return (REPO_ROOT / name).exists()
    if m := re.fullmatch(r"make ([a-z-]+)(?: SOURCE=([a-z0-9_]+))?", name):
        return m[1] in MAKE_TARGETS and (m[2] is None or (source is not None and m[2] == source.code))
    if re.fullmatch(r"[A-Z][A-Z0-9_]+", name):   # an environment setting the package reads
        return f'"{name}"' in PACKAGE_TEXT
    if re.fullmatch(r"[a-z_]+", name):           # a column of the audit ledger or of an ioc view
        return _column_exists(name)
    return False


def test_every_backticked_name_is_true_of_its_dag(dagbag):
    sources = {s.dag_id: s for s in catalog.load().values()}
    for dag_id, dag in dagbag.dags.items():
        source = sources.get(dag_id)
        false = [n for n in _names(dag.doc_md) if not _true_of(n, dag, source, dagbag)]
        assert not false, f"{dag_id}: doc_md names what the DAG does not have: {false}"


def test_watermark_or_snapshot_as_the_catalog_says(dagbag):
    for s in catalog.load().values():
        if s.kind == "file":
            continue
        doc = dagbag.dags[s.dag_id].doc_md
        if s.watermark:
            assert f"incremental by `{s.watermark}`" in _flat(doc) and "`audit.watermark`" in doc and "`replay_batch`" in doc
        else:
            assert "incremental" not in doc.lower() and "`audit.watermark`" not in doc and "replay" not in doc.lower()
            assert "snapshot" in doc and "No watermark" in doc
        assert "None" not in doc, s.code


def test_file_dag_doc_shows_what_finish_really_raises(dagbag):
    for s in (s for s in catalog.load().values() if s.kind == "file"):
        dag = dagbag.dags[s.dag_id]
        failures = [f"{s.files.pattern}: <what is wrong with it>"]
        with pytest.raises(AirflowFailException) as raised:
            dag.get_task("finish").python_callable({"files": 3, "failures": failures})
        assert str(raised.value) in dag.doc_md
        lines = str(raised.value).splitlines()
        assert lines[0] == f"{s.code}: 1 of 3 file(s) failed" and lines[1:] == [f"  {failures[0]}"]
        dag.get_task("finish").python_callable({"files": 3, "failures": []})   # nothing failed: no error


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_schedules_in_docs_and_descriptions(dagbag):
    for dag_id, dag in dagbag.dags.items():
        for cron in _crons(dag):
            assert f"nightly at {dag_docs.cron_text(cron)} Asia/Ho_Chi_Minh (cron `{cron}`" in _flat(dag.doc_md)
    for s in (s for s in catalog.load().values() if s.kind == "file"):
        dag = dagbag.dags[s.dag_id]
        assert f"`ioc://landing/{s.code}`" in dag.doc_md and "and on arrival" in _flat(dag.doc_md)
        # the UI shows an asset schedule without its cron: the description carries both
        assert dag.description.startswith(f"Nightly at {dag_docs.cron_text(dag_factory.INGEST_CRON)} and on arrival")


def test_docs_link_inside_the_repository(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert "shared/" not in dag.doc_md and "../" not in dag.doc_md, dag_id
        for path in re.findall(r"\bdocs/[a-z_]+\.md", dag.doc_md):
            assert (REPO_ROOT / path).exists(), (dag_id, path)
