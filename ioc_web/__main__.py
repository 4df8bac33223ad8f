"""Serve the IOC page: `IOC_WEB_DSN='host=... port=... dbname=ioc user=ioc_dashboard password=...'
python -m ioc_web --port 8050`. The DSN comes from the environment, never the command line
(process listings), and must name a login IN ROLE ioc_reader: a superuser or the pipeline's
login is refused."""
from __future__ import annotations

import argparse
import logging
import os
import sys

DEFAULT_PORT = 8050


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ioc_web", description=__doc__)
    ap.add_argument("--host", default=os.environ.get("IOC_WEB_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("IOC_WEB_PORT", DEFAULT_PORT)))
    ap.add_argument("--data-docs", default=os.environ.get("IOC_DATA_DOCS_DIR"),
                    help="folder of the Data Docs site to serve under /data-docs (optional)")
    args = ap.parse_args(argv)
    dsn = os.environ.get("IOC_WEB_DSN")
    if not dsn:
        print("set IOC_WEB_DSN to a libpq DSN of a login IN ROLE ioc_reader (README: Reading the views from a BI tool)",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    from .app import create_app
    from .db import LoginRefused

    try:
        app = create_app(dsn, data_docs_dir=args.data_docs)
    except LoginRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    print(f"IOC page: http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
