"""Screenshots of `make ui` after `make demo`, taken with headless Chromium (a check by eye that
runs show their real durations, task logs and local times).

    IOC_UI_PORT=8080 AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True make ui   # another shell
    .venv/bin/python devtools/ui_screenshots.py [--port 8080] [--dag ingest_health_visits] [--out .data/screenshots]

The UI shows times in the browser's time zone: Chromium runs with TZ=Asia/Ho_Chi_Minh, as a
browser in the province would. The runs are the latest ones the launcher recorded in
.data/logs/run-<date>/<dag_id>.log.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devtools import airflow_task_logs  # noqa: E402


def latest_run_id(data: Path, dag_id: str) -> str:
    logs = sorted((data / "logs").glob(f"run-*/{dag_id}.log"), key=lambda p: p.stat().st_mtime)
    if not logs:
        raise SystemExit(f"no run of {dag_id} in {data / 'logs'}: run `make demo` first")
    run_id, _ = airflow_task_logs.split_by_task(logs[-1].read_text(errors="replace").splitlines())
    if run_id is None:
        raise SystemExit(f"{logs[-1]} names no run")
    return run_id


def shoot(url: str, path: Path, *, width: int = 1600, height: int = 1000, wait_s: float = 25,
          token: str | None = None) -> Path:
    """Open `url` in headless Chromium, let the page load its data for `wait_s` seconds, save a
    PNG. `token`: a JWT of the API server (POST /auth/token), handed to the UI as the `_token`
    cookie its login sets, for a UI that asks for a login (the compose stack's). Driven through the DevTools protocol: the UI polls the API all the time, so Chromium's
    own --screenshot (virtual time) either never finishes or shoots an empty page."""
    import asyncio
    import tempfile

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        raise SystemExit("needs Chromium (Debian: apt-get install chromium)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        port = _free_port()
        proc = subprocess.Popen([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                 f"--remote-debugging-port={port}", f"--user-data-dir={profile}",
                                 f"--window-size={width},{height}", "about:blank"],
                                env={**os.environ, "TZ": LOCAL_TZ},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            png = asyncio.run(_capture(port, url, width, height, wait_s, token))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    path.write_bytes(png)
    return path


LOCAL_TZ = "Asia/Ho_Chi_Minh"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _capture(port: int, url: str, width: int, height: int, wait_s: float, token: str | None = None) -> bytes:
    import asyncio
    import base64
    import itertools
    import json

    import requests
    import websockets

    for _ in range(100):
        try:
            pages = [t for t in requests.get(f"http://127.0.0.1:{port}/json", timeout=2).json() if t["type"] == "page"]  # noqa: ASYNC210
            if pages:
                break
        except requests.RequestException:
            pass
        await asyncio.sleep(0.3)
    else:
        raise SystemExit("Chromium's DevTools endpoint did not answer")
    ids = itertools.count(1)
    async with websockets.connect(pages[0]["webSocketDebuggerUrl"], max_size=None) as ws:
        async def call(method: str, **params) -> dict:
            n = next(ids)
            await ws.send(json.dumps({"id": n, "method": method, "params": params}))
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("id") == n:
                    return msg.get("result", {})

        await call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        await call("Emulation.setTimezoneOverride", timezoneId=LOCAL_TZ)
        if token:
            await call("Network.setCookie", name="_token", value=token, url=url)
        await call("Page.navigate", url=url)
        await asyncio.sleep(wait_s)
        shot = await call("Page.captureScreenshot", format="png")
    return base64.b64decode(shot["data"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=int(os.environ.get("IOC_UI_PORT", "8080")))
    ap.add_argument("--dag", default="ingest_health_visits", help="the DAG whose latest run is shown")
    ap.add_argument("--task", default="finish", help="the task whose log is shown")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("IOC_DATA_DIR", REPO / ".data")))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or args.data / "screenshots"
    base = f"http://localhost:{args.port}"
    run = quote(latest_run_id(args.data, args.dag), safe="")
    pages = {
        "dag_list.png": f"{base}/dags",
        "run_grid.png": f"{base}/dags/{args.dag}/runs/{run}",
        "task_log.png": f"{base}/dags/{args.dag}/runs/{run}/tasks/{args.task}",
        "runs_list.png": f"{base}/dag_runs",
    }
    for name, url in pages.items():
        print(f"{shoot(url, out / name)}  <- {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
