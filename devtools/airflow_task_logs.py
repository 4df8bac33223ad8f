"""Task logs of `airflow dags test` runs, where the Airflow UI looks for them.

`airflow dags test` runs every task in its own process and prints the task logs to its
output; it writes no log file, so the UI of `make ui` says "Log file not found on worker".
The launcher keeps that output (.data/logs/run-<date>/<dag_id>.log); this module cuts it
into one file per task attempt, at the path Airflow's file task handler reads
(`[logging] base_log_folder` + the run's log filename template), one JSON log record per line
as Airflow's own task logs are.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

# 2026-12-02T08:58:50.159137Z [info     ] message [logger.name] key=value ...
_HEAD = r"^(?P<ts>\d{4}-\d\d-\d\dT[\d:.]+Z?) \[(?P<level>\w+)\s*\] "
_WITH_LOGGER = re.compile(_HEAD + r"(?P<event>.*) \[(?P<logger>[\w.]+)\](?: \w+=.*)?$")   # the last [logger]
_WITHOUT_LOGGER = re.compile(_HEAD + r"(?P<event>.*)$")
_START = re.compile(r"\[DAG TEST\] starting task_id=(?P<task>\S+) map_index=(?P<map>-?\d+)")
_END = re.compile(r"\[DAG TEST\] end task task_id=(?P<task>\S+) map_index=(?P<map>-?\d+)")
_RUN_ID = re.compile(r"<TaskInstance: [\w.-]+ (?P<run_id>\S+) \[")


def split_by_task(lines: list[str]) -> tuple[str | None, dict[tuple[str, int], list[list[str]]]]:
    """(run_id, {(task_id, map_index): [lines of each attempt, in order]}) from a dags-test output."""
    run_id = None
    attempts: dict[tuple[str, int], list[list[str]]] = defaultdict(list)
    current: list[str] | None = None
    for line in lines:
        if m := _START.search(line):
            current = []
            attempts[(m["task"], int(m["map"]))].append(current)
        if run_id is None and (m := _RUN_ID.search(line)):
            run_id = m["run_id"]
        if current is not None:
            current.append(line)
        if _END.search(line):
            current = None
    return run_id, dict(attempts)


def as_record(line: str) -> dict:
    """One output line as an Airflow structured log record (plain text when it does not parse)."""
    m = _WITH_LOGGER.match(line) or _WITHOUT_LOGGER.match(line)
    if not m:
        return {"event": line}
    record = {"timestamp": m["ts"], "level": m["level"], "event": m["event"].rstrip()}
    if "logger" in m.groupdict():
        record["logger"] = m["logger"]
    return record


def write(dag_id: str, output: Path) -> list[Path]:
    """Write the task logs of the dags-test run whose output is `output`; returns the files."""
    from airflow.configuration import conf
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.log.file_task_handler import FileTaskHandler
    from airflow.utils.session import create_session

    run_id, attempts = split_by_task(output.read_text(errors="replace").splitlines())
    if run_id is None:
        return []
    handler = FileTaskHandler(base_log_folder=conf.get("logging", "base_log_folder"))
    written = []
    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id).all()
        for ti in tis:
            runs = attempts.get((ti.task_id, ti.map_index), [])
            first_try = max(ti.try_number - len(runs) + 1, 1)
            for try_number, lines in enumerate(runs, first_try):
                path = Path(handler.local_base) / handler._render_filename(ti, try_number, session=session)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("".join(json.dumps(as_record(line)) + "\n" for line in lines), encoding="utf-8")
                written.append(path)
    return written
