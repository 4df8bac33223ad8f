"""Profile of the validate step: where its time goes, expectation by expectation, on a staged
batch of a SQL source (the suite in PostgreSQL, as batch.validate runs it), and the whole suite
with the current validation.py against the one of an earlier commit (--baseline REF).

Why: validate is the largest step of the ingest path (docs/performance.md); an optimisation of
it must be measured on the same staged rows, not across two runs of the whole benchmark.

    python bench/profile_validate.py --source tuition --rows 1000000 [--baseline 667b2d6] [--repeat 2]

1. fresh databases; the simulator generates N records; begin, stage and dedupe put them in staging
   (not timed) in this process;
2. the whole suite with validation.validate_table, --repeat times (and with the baseline module);
3. each expectation alone (a one-expectation suite), minus the time of an empty suite's run
   (context, data source, batch: the fixed cost every validate pays once).
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib
from benchlib import PROVINCE, REPO

log = logging.getLogger("profile_validate")
UNTIL = dt.date(2026, 11, 19)


def baseline_module(ref: str, workdir: Path):
    """ingest/validation.py as of git `ref`, imported under another name (it has no relative imports)."""
    for where in ("plugins/ioc_pipeline/ingest/validation.py", "plugins/ioc_pipeline/validation.py"):  # moved in v2
        shown = subprocess.run(["git", "show", f"{ref}:{where}"], cwd=REPO, capture_output=True, text=True)
        if shown.returncode == 0:
            text = shown.stdout
            break
    else:
        raise SystemExit(f"--baseline {ref}: no validation.py there")
    path = workdir / "validation_baseline.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("validation_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def timed(fn, *a) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*a)
    return time.perf_counter() - t, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="tuition", choices=("tuition", "land"))
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--baseline", help="git ref whose validation.py to compare with")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--server", default="")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from ioc_pipeline.ingest import batch, runner, validation
    from ioc_pipeline.declaration import catalog
    from ioc_pipeline import config, warehouse

    params, label, started_here = benchlib.resolve_server(args.server)
    created: list[str] = []
    source = catalog.get(args.source)
    env = f"AIRFLOW_CONN_{source.connection.upper()}"
    try:
        info = benchlib.machine(params, label)
        with tempfile.TemporaryDirectory(prefix="ioc_bench_validate_") as tmp:
            os.environ["AIRFLOW_HOME"] = str(Path(tmp) / "airflow")
            wh_dsn = benchlib.create_database(params, "wh", created)
            sim_dsn = benchlib.create_database(params, "sim", created)
            if args.source == "tuition":
                from simulator import tuition
                tuition.generate(sim_dsn, until=UNTIL, payments=args.rows, seed=11)
            else:
                from simulator import land
                land.generate(sim_dsn, until=UNTIL, certificates=args.rows, seed=11)
            os.environ[env] = benchlib.pg_conn_json(sim_dsn)
            conn = warehouse.connect(wh_dsn)
            warehouse.migrate(conn)
            key = os.urandom(32).hex().encode()
            ses = runner.Session(conn, key=key, province_code=PROVINCE)
            plan = runner.open_window(ses, source, "profile", UNTIL)
            staged = runner.stage(ses, source, plan)
            batch.dedupe(conn, source, plan)
            url = benchlib.sqlalchemy_url(wh_dsn)
            suite_path = config.EXPECTATIONS_DIR / f"{source.code}.json"
            load_before = os.getloadavg()

            modules = [("current", validation)]
            if args.baseline:
                modules.append((f"baseline {args.baseline}", baseline_module(args.baseline, Path(tmp))))
            whole = {}
            for _ in range(args.repeat):  # alternate, so load changes hit both alike
                for name, module in modules:
                    suite = module.load_suite(suite_path)
                    whole.setdefault(name, []).append(
                        timed(module.validate_table, url, "staging", plan.staging_table, suite)[0])
            suite = validation.load_suite(suite_path)
            empty = replace(suite, specs=[], gx_suite=validation.ExpectationSuite(name="empty"))
            fixed = statistics.median(timed(validation.validate_table, url, "staging", plan.staging_table, empty)[0]
                                      for _ in range(3))
            per = []
            for spec in suite.specs:
                one = validation.load_suite(suite_path)
                gx_one = validation.ExpectationSuite(name="one", expectations=[
                    validation.copy.copy(one.gx_suite.expectations[spec.index])])
                gx_one.expectations[0].id = one.gx_suite.expectations[spec.index].id
                s1 = replace(one, specs=[replace(spec, index=spec.index)], gx_suite=gx_one)
                secs, res = timed(validation.validate_table, url, "staging", plan.staging_table, s1)
                per.append((spec, secs - fixed, res[0]))
            load_after = os.getloadavg()
            runner.cleanup(ses, plan)
            conn.close()
    finally:
        os.environ.pop(env, None)
        benchlib.drop_databases(params, created)
        benchlib.stop_embedded(started_here)

    print()
    print(benchlib.machine_line(info, load_before, load_after))
    print(f"{args.source}: {staged['rows_read']:,} rows staged; suite {suite_path.name}, {len(suite.specs)} expectations")
    for name, secs in whole.items():
        print(f"whole suite, {name} validation.py: " + ", ".join(f"{s:.1f}" for s in secs) + " s")
    print(f"fixed cost of one validate_table call (empty suite): {fixed:.2f} s")
    lines = [(str(spec.index), spec.type.replace("expect_", "")[:44], spec.column or "", f"{secs:.2f}",
              "" if res.success else f"{res.unexpected_count or 0:,}")
             for spec, secs, res in sorted(per, key=lambda p: -p[1])]
    print(benchlib.format_table(("#", "expectation", "column", "s (alone)", "failing"), lines))
    print(f"sum of the expectations alone: {sum(p[1] for p in per):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
