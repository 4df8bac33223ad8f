"""Several `airflow dags test` runs, one after another, in ONE process.

Why: every `airflow dags test` process pays its start-up before its first task does any work:
importing Airflow and its providers, starting the in-process execution API, importing Great
Expectations in the first validate task. On 2 cores that is 20-45 s per DAG, most of a small
night's run; the launcher runs nine DAGs a night and the tests' shared run about forty. Here a
process pays it once and then runs each DAG exactly as the CLI does (Airflow's own
`dags test` command function, same arguments), its output written to its own log file.

The child side (`python -m devtools.dag_runs --conf JSON --logdir DIR DAG_ID ...`) writes one
line per event on its standard output, the DAGs' own output going to their files:
    start <dag_id>
    end <dag_id> <exit code>
The parent side, `runs()`, starts it and yields those events (and a heartbeat while a DAG runs).
If the child dies in the middle of a DAG, that DAG ends with the child's exit code and a fresh
child runs the DAGs not yet run, so one crash costs one DAG, not the night.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import selectors
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNNER_LOG = "dag_runs.log"   # the child's own output outside any DAG (start-up, warnings)


@dataclasses.dataclass(frozen=True)
class Event:
    kind: str                 # start | beat | end
    dag_id: str
    seconds: float = 0.0      # since the DAG started (beat, end)
    code: int = 0             # end: 0 = the DAG run succeeded
    note: str = ""            # end: why the runner itself failed, if it did


def runs(dag_ids: list[str], conf: dict, logdir: Path, *, beat_every: float | None = None,
         env: dict | None = None) -> Iterator[Event]:
    """Run `dag_ids` in order (each `airflow dags test <dag_id> -c <conf>`, its output in
    logdir/<dag_id>.log); yield start, beat (every `beat_every` s while a DAG runs) and end events."""
    logdir.mkdir(parents=True, exist_ok=True)
    remaining = list(dag_ids)
    while remaining:
        with open(logdir / RUNNER_LOG, "ab") as runner_log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "devtools.dag_runs", "--conf", json.dumps(conf), "--logdir", str(logdir), *remaining],
                # unbuffered bytes: readline() then takes one line and no more, so an event is
                # never left in a read-ahead buffer while select() waits for the next one
                stdout=subprocess.PIPE, stderr=runner_log, cwd=REPO, env=env, bufsize=0)
        current, t0 = None, 0.0
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while True:
                if not sel.select(timeout=beat_every):
                    if current:
                        yield Event("beat", current, time.monotonic() - t0)
                    continue
                line = proc.stdout.readline()
                if not line:
                    break
                kind, dag_id, *rest = line.decode().split()
                if kind == "start":
                    current, t0 = dag_id, time.monotonic()
                    yield Event("start", dag_id)
                elif kind == "end":
                    remaining.remove(dag_id)
                    current = None
                    yield Event("end", dag_id, time.monotonic() - t0, int(rest[0]))
        code = proc.wait()
        if current is not None:            # died during a DAG: that DAG failed, go on with the rest
            remaining.remove(current)
            yield Event("end", current, time.monotonic() - t0, code or 1,
                        f"the DAG runner process exited with {code} during the run (see {logdir / RUNNER_LOG})")
        elif remaining:                     # died before starting one: nothing more can run
            note = f"the DAG runner process exited with {code} before the run (see {logdir / RUNNER_LOG})"
            for dag_id in remaining:
                yield Event("start", dag_id)
                yield Event("end", dag_id, 0.0, code or 1, note)
            return


def _run_one(parser, dag_id: str, conf: str, logfile: Path) -> int:
    """`airflow dags test dag_id -c conf` in this process, fds 1 and 2 into `logfile`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(logfile, "wb") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        try:
            # the command line the CLI would have: code that asks whether it runs under
            # `airflow dags test` (dag_factory's deadline) reads sys.argv
            sys.argv = ["airflow", "dags", "test", dag_id, "-c", conf]
            args = parser.parse_args(sys.argv[1:])
            args.func(args)
            return 0
        except SystemExit as exc:           # `DagRun failed`, as the CLI exits
            if exc.code not in (None, 0):
                print(exc.code if isinstance(exc.code, str) else f"exit {exc.code}", file=sys.stderr)
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - one DAG's crash is that DAG's failure, not the night's
            traceback.print_exc()
            return 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conf", required=True, help="the runs' conf (JSON), as `dags test -c`")
    ap.add_argument("--logdir", required=True, type=Path)
    ap.add_argument("dag_ids", nargs="+")
    args = ap.parse_args(argv)
    # the events go to the original stdout; every DAG's own output to its file
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)                              # start-up output: the runner's log (stderr)

    from airflow.cli import cli_parser
    from airflow.configuration import write_default_airflow_configuration_if_needed

    write_default_airflow_configuration_if_needed()   # what `airflow` does before any command
    parser = cli_parser.get_parser()
    for dag_id in args.dag_ids:
        print(f"start {dag_id}", file=events)
        code = _run_one(parser, dag_id, args.conf, args.logdir / f"{dag_id}.log")
        print(f"end {dag_id} {code}", file=events)
    return 0


if __name__ == "__main__":
    sys.exit(main())
