"""Every DAG imports and carries what operations.md requires (owner, tags, retries on network
steps, doc_md, max_active_runs=1, failure callback)."""
import pytest
from airflow.dag_processing.dagbag import DagBag

from ioc_pipeline.declaration import catalog
from ioc_pipeline.config import REPO_ROOT


@pytest.fixture(scope="module")
def dagbag():
    return DagBag(dag_folder=str(REPO_ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_one_ingest_dag_per_source_and_the_refresh(dagbag):
    expected = {s.dag_id for s in catalog.load().values()} | {"refresh_ioc_views"}
    assert set(dagbag.dag_ids) == expected


def test_every_dag_is_documented_owned_tagged_and_serial(dagbag):
    for dag in dagbag.dags.values():
        assert dag.doc_md and "When it fails" in dag.doc_md, dag.dag_id
        assert dag.tags, dag.dag_id
        assert dag.max_active_runs == 1, dag.dag_id
        for t in dag.tasks:
            assert t.owner == "ioc-data-engineering", (dag.dag_id, t.task_id)
            assert t.on_failure_callback, (dag.dag_id, t.task_id)


# the task that reads the source (network or landing folder) and the one that publishes the Asset
READS = {"rest": "extract", "sql": "extract", "file": "load_files"}
PUBLISHES = {"rest": "publish", "sql": "publish", "file": "load_files"}


def test_network_steps_retry_with_backoff(dagbag):
    for s in catalog.load().values():
        extract = dagbag.dags[s.dag_id].get_task(READS[s.kind])
        assert extract.retries >= 1 and extract.retry_exponential_backoff


def test_file_sources_load_every_file_then_fail_naming_the_failed_ones(dagbag):
    files = [s for s in catalog.load().values() if s.kind == "file"]
    assert {s.code for s in files} == {"health_visits", "social_payments", "project06_tracker"}
    for s in files:
        dag = dagbag.dags[s.dag_id]
        assert [t.task_id for t in dag.topological_sort()] == ["begin", "load_files", "finish"]
        assert "landing folder" in dag.doc_md and s.files.pattern in dag.doc_md
        # nightly OR on arrival: an asset watched by the landing trigger
        schedule = dag.timetable
        assert schedule.timetable is not None
        (landing,) = [schedule.asset_condition]
        assert landing.uri == f"ioc://landing/{s.code}"
        (watcher,) = landing.watchers
        assert watcher.trigger.serialize()[1]["source_code"] == s.code


def test_windowed_sources_can_replay_a_batch(dagbag):
    for s in catalog.load().values():
        assert ("replay_batch" in dagbag.dags[s.dag_id].params) == bool(s.watermark), s.code


def test_ingest_publishes_the_asset_refresh_consumes(dagbag):
    refresh = dagbag.dags["refresh_ioc_views"]
    for s in catalog.load().values():
        publish = dagbag.dags[s.dag_id].get_task(PUBLISHES[s.kind])
        assert [o.uri for o in publish.outlets] == [s.asset_uri]
    condition = refresh.timetable.asset_condition   # assets OR a nightly cron
    uris = {a.uri for a in getattr(condition, "objects", [condition])}
    assert uris == {s.asset_uri for s in catalog.load().values()}
    assert refresh.timetable.timetable is not None


@pytest.mark.parametrize("exc, permanent", [
    ("SourceError('token refused', status=401, attempts=1)", True),
    ("SourceError('not found', status=404, attempts=1)", True),
    ("SourceError('gave up', status=503, attempts=6)", False),
    ("SourceError('gave up', status=429, attempts=6)", False),
    ("SourceError('connection refused', status=None, attempts=6)", False),
    ("SourceError('AIRFLOW_CONN missing', attempts=0)", True),
    ("BatchFailed('column missing')", True),
    ("ConnectionError('db restarting')", False),
])
def test_only_transient_extract_errors_are_retried(exc, permanent):
    from airflow.sdk.exceptions import AirflowFailException

    from ioc_pipeline.ingest.batch import BatchFailed  # noqa: F401 - used by eval
    from ioc_pipeline.orchestration.dag_factory import _fail_now_if_permanent
    from ioc_pipeline.extract.rest import SourceError  # noqa: F401 - used by eval

    error = eval(exc)
    if permanent:
        with pytest.raises(AirflowFailException):
            _fail_now_if_permanent(error)
    else:
        assert _fail_now_if_permanent(error) is None
