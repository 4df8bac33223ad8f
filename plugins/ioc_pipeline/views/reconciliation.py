"""Cross-source reconciliation: warnings no single source's suite can raise.

Each file in include/sql/reconciliation/ is one check joining sources on the keyed hash of the
citizen ID (e.g. a social payment made after the beneficiary's registered death) and returns
counts per 2025 commune: check_code, commune_code, rows_flagged, persons_flagged. Only counts
are stored (audit.reconciliation_result, readable by the IOC through
ioc.data_quality_reconciliation): never a hash, key or clear ID.

A re-run of an as-of date replaces that date's rows in one transaction. Flagged rows are
warnings: they never fail a run. A check whose tables do not exist yet (its first line reads
`-- requires: <schema.table> ...`) is skipped with a warning, so a warehouse that does not
carry a source yet still reconciles the others.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path

from ioc_pipeline import config, warehouse

log = logging.getLogger(__name__)

CHECKS_DIR = config.SQL_DIR / "reconciliation"
_REQUIRES = "-- requires:"


@dataclasses.dataclass(frozen=True)
class Check:
    path: Path
    requires: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def code(self) -> str:
        """The check_code the file returns: its name in capitals."""
        return self.path.stem.upper()


def checks() -> list[Check]:
    found = []
    for path in sorted(CHECKS_DIR.glob("*.sql")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        requires = tuple(first[len(_REQUIRES):].split()) if first.startswith(_REQUIRES) else ()
        found.append(Check(path, requires))
    return found


def _missing_tables(cur, names: tuple[str, ...]) -> list[str]:
    missing = []
    for name in names:
        cur.execute("SELECT to_regclass(%s)", (name,))
        if cur.fetchone()[0] is None:
            missing.append(name)
    return missing


def reconcile(conn, as_of: dt.date, province: str) -> dict:
    """Run every check for the as-of date; replace that date's stored results. Returns a summary:
    {"as_of_date", "checks": {check_code: {"rows_flagged", "persons_flagged", "communes"}}, "skipped"}."""
    params = {"as_of": as_of, "province": province}
    summary: dict = {"as_of_date": as_of.isoformat(), "checks": {}, "skipped": []}
    with warehouse.transaction(conn) as cur:
        cur.execute("DELETE FROM audit.reconciliation_result WHERE as_of_date = %s", (as_of,))
        for check in checks():
            missing = _missing_tables(cur, check.requires)
            if missing:
                log.warning("reconciliation %s skipped: %s not in the warehouse yet", check.name, ", ".join(missing))
                summary["skipped"].append(check.name)
                continue
            cur.execute(check.path.read_text(encoding="utf-8"), params)
            rows = cur.fetchall()
            if any(r[0] != check.code for r in rows):
                raise ValueError(f"{check.path.name} must return check_code {check.code!r} (its file name)")
            for check_code, commune, flagged, persons in rows:
                cur.execute(
                    """INSERT INTO audit.reconciliation_result
                           (as_of_date, check_code, commune_code, rows_flagged, persons_flagged)
                       VALUES (%s, %s, %s, %s, %s)""",
                    (as_of, check_code, commune, flagged, persons),
                )
            code = check.code
            totals = {"rows_flagged": sum(r[2] for r in rows), "persons_flagged": sum(r[3] for r in rows),
                      "communes": len(rows)}
            summary["checks"][code] = totals
            if totals["rows_flagged"]:
                # counts only: the log never names a person
                log.warning("reconciliation %s for %s: %d rows, %d persons in %d communes",
                            code, as_of, totals["rows_flagged"], totals["persons_flagged"], totals["communes"])
            else:
                log.info("reconciliation %s for %s: nothing flagged", code, as_of)
    return summary
