"""`make stop` leaves no process of the project running: the launcher's `ui` (airflow standalone
and its scheduler, API server, DAG processor and triggerer) and the embedded PostgreSQL it
started are all gone after `pipeline.py stop`, and IOC_UI_PORT moved the UI's port."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from ioc_pipeline.config import REPO_ROOT

pytestmark = pytest.mark.e2e
LAUNCHER = str(REPO_ROOT / "scripts" / "pipeline.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(data: Path, port: int) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__", "AIRFLOW_HOME", "IOC_"))}
    env.update(IOC_DATA_DIR=str(data), IOC_UI_PORT=str(port), GX_ANALYTICS_ENABLED="false",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    # every sector connection configured: this test is about processes, not the simulator's data
    for conn in ("civil_status", "population", "public_services"):
        env[f"AIRFLOW_CONN_SECTOR_{conn.upper()}"] = '{"conn_type": "http", "host": "127.0.0.1", "port": 9}'
    for conn in ("land", "tuition"):
        env[f"AIRFLOW_CONN_SECTOR_{conn.upper()}"] = '{"conn_type": "postgres", "host": "127.0.0.1", "port": 9}'
    env["AIRFLOW_CONN_SECTOR_LANDING"] = f'{{"conn_type": "fs", "extra": {{"path": "{data / "landing"}"}}}}'
    return env


def _project_processes(root: psutil.Process, data: Path) -> set[int]:
    """The launcher's process tree, plus every process whose command line names the data folder
    (the embedded PostgreSQL is daemonised, so not in the tree)."""
    pids = {root.pid, *(p.pid for p in root.children(recursive=True))}
    for p in psutil.process_iter(["pid", "cmdline"]):
        if str(data) in " ".join(p.info["cmdline"] or []):
            pids.add(p.info["pid"])
    return pids


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_stop_leaves_no_process_of_the_project(tmp_path):
    data, port = tmp_path / "data", _free_port()
    env = _env(data, port)
    log = open(tmp_path / "ui.log", "wb")
    launcher = subprocess.Popen([sys.executable, LAUNCHER, "ui"], env=env, cwd=REPO_ROOT,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            assert launcher.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
            try:
                if requests.get(f"http://127.0.0.1:{port}/api/v2/version", timeout=3).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(3)
        else:
            pytest.fail("the UI did not answer on IOC_UI_PORT within 7 min:\n" + (tmp_path / "ui.log").read_text()[-3000:])
        time.sleep(5)   # let standalone start its other components
        seen = _project_processes(psutil.Process(launcher.pid), data)
        postmaster = int((data / "pg" / "postmaster.pid").read_text().split()[0])
        assert postmaster in seen
        assert len(seen) >= 4, seen   # launcher, standalone, its components, PostgreSQL

        stop = subprocess.run([sys.executable, LAUNCHER, "stop"], env=env, cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=180)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "Airflow UI" in stop.stdout and "embedded PostgreSQL" in stop.stdout
        launcher.wait(timeout=60)
        time.sleep(1)
        naming_data = {p.info["pid"] for p in psutil.process_iter(["pid", "cmdline"])
                       if str(data) in " ".join(p.info["cmdline"] or [])}
        left = {p for p in seen | naming_data if _running(p)}
        assert not left, [" ".join(psutil.Process(p).cmdline())[:150] for p in left]
        assert not (data / "pg" / "postmaster.pid").exists()
        assert not (data / "airflow-ui.pid").exists()
    finally:
        for pid in seen:
            try:
                psutil.Process(pid).kill()
            except psutil.NoSuchProcess:
                pass
        if launcher.poll() is None:
            os.killpg(launcher.pid, 9)
        log.close()
