"""Ground truth of the file deliveries, shared by the three file-source generators.

Why: a file source's outcome is decided per file (sources.md, "File delivery rules"): a file
that cannot be read fails, and so does one whose quarantined keys exceed 5 % of its distinct
keys after duplicates are resolved (the later row of a key wins; exact copies count once). The
simulator knows every row it wrote, so it records, per delivery, what the contract makes of it
(`expected_status`), and the oracles count only rows of deliveries that load. Nothing here
uses the pipeline's code: this is the SOURCE side's own account.

`sim.file_deliveries` has one row per delivered file version (a correction or a re-send is
`delivery_no` 2, 3, ...); each source keeps its rows in `sim.<source>_truth`, one row per
delivered row version, keyed by (file_name, delivery_no, row_no).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from simulator import landing
from simulator.store import connect

REFORM = date(2025, 7, 1)        # legacy commune codes on record dates before this day

QUARANTINE_THRESHOLD = 0.05      # sources.md / the brief: a file fails above 5 % quarantined keys

DDL = """
CREATE SCHEMA IF NOT EXISTS sim;
CREATE TABLE IF NOT EXISTS sim.file_deliveries (
    source           text NOT NULL,
    file_name        text NOT NULL,         -- relative to the landing folder
    delivery_no      integer NOT NULL,      -- 1 = first delivery; later = correction / re-send
    named_date       date,                  -- the day, or the month's last day; NULL: tracker
    delivered_at     timestamptz NOT NULL,  -- simulated delivery time
    mtime            timestamptz NOT NULL,  -- what was set on the file (never later than now - 300 s)
    sha256           text NOT NULL,
    size_bytes       bigint NOT NULL,
    rows_written     integer NOT NULL,      -- data rows written (all sheets), before truncation
    distinct_keys    integer NOT NULL,      -- after duplicates are resolved
    quarantined_keys integer NOT NULL,      -- keys whose surviving row carries a row fault
    sim_file_fault   text,                  -- NULL, missing_header_column, truncated_workbook,
                                            -- extra_unknown_column, many_bad_rows, correction,
                                            -- redelivery (complete file after a truncated one)
    sim_detail       text,                  -- which column / key the file fault concerns
    expected_status  text NOT NULL,         -- 'loads' or 'fails' under the contract
    expected_reason  text,                  -- why it fails: unreadable / quarantine share
    PRIMARY KEY (file_name, delivery_no)
);
COMMENT ON TABLE sim.file_deliveries IS
    'Simulator ground truth: one row per delivered file version and what the contract makes of it.';
"""

UNREADABLE = ("missing_header_column", "truncated_workbook")


@dataclass
class KeyTally:
    """Per file: the fault of each key's LAST row (the version the contract keeps)."""

    last_fault: dict = field(default_factory=dict)
    rows: int = 0

    def add(self, key, fault: str | None) -> None:
        self.rows += 1
        self.last_fault[key] = fault

    @property
    def distinct(self) -> int:
        return len(self.last_fault)

    @property
    def quarantined(self) -> int:
        return sum(1 for f in self.last_fault.values() if f is not None)


def expected_outcome(tally: KeyTally, file_fault: str | None) -> tuple[str, str | None]:
    if file_fault in UNREADABLE:
        return "fails", f"unreadable: {file_fault}"
    if tally.distinct and tally.quarantined / tally.distinct > QUARANTINE_THRESHOLD:
        return "fails", f"quarantine share {tally.quarantined}/{tally.distinct} above 5 %"
    return "loads", None


def recorded(cur, source: str) -> dict[str, int]:
    """file_name -> number of deliveries recorded so far."""
    cur.execute("SELECT file_name, max(delivery_no) FROM sim.file_deliveries WHERE source = %s"
                " GROUP BY file_name", (source,))
    return dict(cur.fetchall())


def record(cur, *, source: str, delivered: landing.Delivered, delivery_no: int,
           named_date: date | None, delivered_at: datetime, tally: KeyTally,
           file_fault: str | None, detail: str | None = None) -> str:
    """Insert the delivery's row; returns its expected status."""
    status, reason = expected_outcome(tally, file_fault)
    cur.execute(
        """INSERT INTO sim.file_deliveries (source, file_name, delivery_no, named_date, delivered_at,
               mtime, sha256, size_bytes, rows_written, distinct_keys, quarantined_keys,
               sim_file_fault, sim_detail, expected_status, expected_reason)
           VALUES (%s, %s, %s, %s, %s, to_timestamp(%s), %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (source, delivered.name, delivery_no, named_date, delivered_at, delivered.mtime,
         delivered.sha256, delivered.size, tally.rows, tally.distinct, tally.quarantined,
         file_fault, detail, status, reason))
    return status


def check_landing(cur, source: str, landing_dir: Path | str) -> None:
    """The landing folder must hold the latest recorded delivery of every file: an oracle
    computed from the truth of another folder's deliveries would be meaningless."""
    cur.execute("""SELECT DISTINCT ON (file_name) file_name, sha256 FROM sim.file_deliveries
                    WHERE source = %s ORDER BY file_name, delivery_no DESC""", (source,))
    for name, digest in cur.fetchall():
        path = landing.target_path(landing_dir, name)
        if not path.exists() or landing.sha256_of(path) != digest:
            raise ValueError(f"{path} is not the delivery the simulator recorded for {name}")


def current_rows_sql(truth_table: str, key: str, columns: str) -> str:
    """SQL (params: source, files_until) for the version of each key the contract leaves in
    the warehouse after every delivery named on or before files_until was taken: among the
    files that load (their latest loading delivery), each file's last row of the key, if
    valid; of those, the one from the file with the latest named date."""
    return f"""
        WITH eff AS (
            SELECT DISTINCT ON (file_name) file_name, delivery_no, named_date
              FROM sim.file_deliveries
             WHERE source = %(source)s AND expected_status = 'loads'
               AND (named_date IS NULL OR named_date <= %(files_until)s)
             ORDER BY file_name, delivery_no DESC),
        surviving AS (
            SELECT DISTINCT ON (t.file_name, t.{key}) t.*, eff.named_date AS _named
              FROM {truth_table} t JOIN eff USING (file_name, delivery_no)
             ORDER BY t.file_name, t.{key}, t.row_no DESC)
        SELECT DISTINCT ON ({key}) {columns} FROM surviving WHERE sim_fault IS NULL
         ORDER BY {key}, _named DESC NULLS LAST, file_name DESC"""


def current_rows(sim_dsn: str, landing_dir: Path | str, source: str, truth_table: str, key: str, columns: str,
                 files_until: date) -> tuple[str, list[tuple]]:
    """(the source's province, the rows of current_rows_sql), after checking that the landing
    folder holds the recorded deliveries. Shared by the file sources' oracles."""
    conn = connect(sim_dsn)
    try:
        with conn.cursor() as cur:
            check_landing(cur, source, landing_dir)
            cur.execute("SELECT province_code FROM sim.generator_state WHERE source = %s", (source,))
            province = cur.fetchone()[0]
            cur.execute(current_rows_sql(truth_table, key, columns), {"source": source, "files_until": files_until})
            return province, cur.fetchall()
    finally:
        conn.close()


def flow_counts(indicator: str, rows, as_of: date, province: str, to_2025) -> dict[tuple[str, str], tuple[int, int]]:
    """A flow indicator's (numerator, denominator) per 2025 commune and for the province, over
    rows (record day as ISO text, commune code, counts in the numerator) whose day lies in Jan 1
    .. as_of of as_of's year; legacy codes of days before the reform mapped by `to_2025`."""
    counts: dict = {}
    for record_day, code, hit in rows:
        day = date.fromisoformat(record_day[:10])
        if not date(as_of.year, 1, 1) <= day <= as_of:
            continue
        commune = code if day >= REFORM else to_2025(code)
        for unit in (commune, province):
            n = counts.setdefault((indicator, unit), [0, 0])
            n[0] += bool(hit)
            n[1] += 1
    return {k: tuple(v) for k, v in counts.items()}
