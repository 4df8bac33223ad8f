"""CLI: `python -m simulator generate ...` and `python -m simulator serve ...`.

    python -m simulator generate --dsn DSN --until 2026-11-20 --records 20000 [--seed 6] [--landing DIR]
    python -m simulator serve --dsn DSN --port 8765 --token sim-token [--faults 503=0.1,429=0.05]

The token may also come from SIM_TOKEN (keeps it out of process listings).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import date

from simulator import sources
from simulator.faults import Faults


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m simulator", description=__doc__.splitlines()[0])
    p.add_argument("--log-level", default="INFO")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="generate or extend the data of every simulated source")
    g.add_argument("--dsn", required=True, help="libpq DSN of the simulator's database")
    g.add_argument("--until", required=True, type=date.fromisoformat, help="last day, YYYY-MM-DD")
    g.add_argument("--seed", type=int, default=6)
    g.add_argument("--province", default="48", help="2025 province code (default 48, Da Nang)")
    g.add_argument("--landing", help="landing folder: also write the deliveries of the file sources there")
    g.add_argument("--files-only", action="store_true",
                   help="write only the file deliveries (needs --landing)")
    for _, _, module in sources.modules():   # each source's own size options
        for flag, (dest, default, help_) in module.CLI_OPTIONS.items():
            g.add_argument(flag, dest=dest, type=int, default=default, help=f"{help_} (default {default})")

    s = sub.add_parser("serve", help="serve the REST resources")
    s.add_argument("--dsn", required=True)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--token", default=os.environ.get("SIM_TOKEN", "sim-token"))
    s.add_argument("--faults", default="", type=Faults.parse,
                   help="e.g. 503=0.1,429=0.05,slow=0.02,truncate=0.02,html=0.02,race=0.05,slow_seconds=2")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "generate" and args.files_only and not args.landing:
        raise SystemExit("--files-only needs --landing")
    if args.command == "generate":
        modules = sources.modules()
        # the database sources first, then the file deliveries, each in catalog order
        for _, kind, module in sorted(modules, key=lambda m: m[1] == "file"):
            sizes = {dest: getattr(args, dest) for dest, _, _ in module.CLI_OPTIONS.values()}
            common = {"province_code": args.province, "until": args.until, "seed": args.seed, **sizes}
            if kind != "file" and not args.files_only:
                module.generate(args.dsn, **common)
            elif kind == "file" and args.landing:
                module.generate(args.dsn, args.landing, **common)
    if args.command == "serve":
        from simulator import server
        server.serve(args.dsn, host=args.host, port=args.port, token=args.token, faults=args.faults)
    return 0


if __name__ == "__main__":
    sys.exit(main())
