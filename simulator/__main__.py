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

from simulator.faults import Faults


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m simulator", description=__doc__.splitlines()[0])
    p.add_argument("--log-level", default="INFO")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="generate or extend the civil_status source data")
    g.add_argument("--dsn", required=True, help="libpq DSN of the simulator's database")
    g.add_argument("--until", required=True, type=date.fromisoformat, help="last day, YYYY-MM-DD")
    g.add_argument("--records", type=int, default=20000, help="records from 2005-01-01 to --until")
    g.add_argument("--seed", type=int, default=6)
    g.add_argument("--province", default="48", help="2025 province code (default 48, Da Nang)")
    g.add_argument("--population-days", type=int, default=60,
                   help="days of population snapshots up to --until (default 60)")
    g.add_argument("--dossiers", type=int, default=5000,
                   help="public-service dossiers from 2024-01-01 to --until (default 5000)")
    g.add_argument("--land-certificates", type=int, default=3000,
                   help="land-use right certificates from 2012-01-01 to --until (default 3000)")
    g.add_argument("--tuition-payments", type=int, default=3000,
                   help="school-fee payments from 2024-01-01 to --until (default 3000)")
    g.add_argument("--landing", help="landing folder: also write the file deliveries (health_visits, "
                                     "social_payments, project06_tracker) there")
    g.add_argument("--files-only", action="store_true",
                   help="write only the file deliveries (needs --landing)")
    g.add_argument("--visits-per-day", type=int, default=600,
                   help="health-insurance visits per weekday in the province (default 600)")
    g.add_argument("--health-days", type=int, default=14,
                   help="days of visit files up to --until on the first call (default 14)")
    g.add_argument("--facilities", type=int, default=6, help="health facilities exporting files (default 6)")
    g.add_argument("--social-payments", type=int, default=300,
                   help="social-allowance beneficiaries paid each month (default 300)")
    g.add_argument("--tracker-tasks", type=int, default=60, help="Project 06 tracker tasks (default 60)")

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
    if args.command == "generate" and not args.files_only:
        from simulator import civil_status
        civil_status.generate(args.dsn, province_code=args.province, until=args.until,
                              records=args.records, seed=args.seed)
        from simulator import population
        population.generate(args.dsn, province_code=args.province, until=args.until,
                            days=args.population_days, seed=args.seed)
        from simulator import public_services
        public_services.generate(args.dsn, province_code=args.province, until=args.until,
                                 dossiers=args.dossiers, seed=args.seed)
        from simulator import land
        land.generate(args.dsn, province_code=args.province, until=args.until,
                      certificates=args.land_certificates, seed=args.seed)
        from simulator import tuition
        tuition.generate(args.dsn, province_code=args.province, until=args.until,
                         payments=args.tuition_payments, seed=args.seed)
    if args.command == "generate" and args.landing:
        from simulator import health_visits, project06_tracker, social_payments
        health_visits.generate(args.dsn, args.landing, province_code=args.province, until=args.until,
                               visits_per_day=args.visits_per_day, health_days=args.health_days,
                               facilities=args.facilities, seed=args.seed)
        social_payments.generate(args.dsn, args.landing, province_code=args.province, until=args.until,
                                 payments_per_month=args.social_payments, seed=args.seed)
        project06_tracker.generate(args.dsn, args.landing, province_code=args.province, until=args.until,
                                   tasks=args.tracker_tasks, seed=args.seed)
    if args.command == "serve":
        from simulator import server
        server.serve(args.dsn, host=args.host, port=args.port, token=args.token, faults=args.faults)
    return 0


if __name__ == "__main__":
    sys.exit(main())
