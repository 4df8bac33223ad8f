"""Source 7, `social_payments` (Department of Home Affairs, former DOLISA): monthly workbooks.

Why this shape: the department exports one workbook per month (`social/social_payments_<YYYYMM>.xlsx`,
sheet `payments`, sources.md §7) from 2025-01 to the last complete month. Real exports mix
cell types, so this one does too: dates as date cells, midnight datetimes or `YYYY-MM-DD`
text; amounts as numbers or text; and a share of IDs and commune codes as NUMBER cells that
lost their leading zeros (valid once left-padded: not a fault). Truth goes to
`sim.social_payments_truth` (one row per delivered row version, each value as the contract
reads it, `sim_cells` naming the cells written as numbers, dates or formulas) and
`sim.file_deliveries`.

Beneficiaries are a fixed pool per (seed, province) paid monthly; the non-cash share rises
from ~76 % to ~84 % over 2025-2026 (the 2024 field figure is 80.76 %). Every month is drawn
from an RNG seeded by (seed, source, month): a later `until` only adds months and the
re-deliveries that fall due. Workbooks are written in openpyxl's write_only mode.

What goes wrong, labelled: row faults (`sim_fault`, FAULT_WEIGHTS) on ~1.2 % of rows;
duplicates (`sim_duplicate`: `exact_copy`, `superseded_in_file`/`in_file_winner`, and
`superseded_by_later_file`/`repeated_from_earlier_file`: a returned bank transfer paid again in
cash the next month, listed in that month's file); file faults (`truncated_workbook`, then
`redelivery` of the complete file two days later; `missing_header_column`;
`extra_unknown_column`; `many_bad_rows`; `correction` 5-12 days later: a few amounts changed,
`sim_correction = 'changed'`, one row removed, named in `sim_detail`).
"""
from __future__ import annotations

import dataclasses
import logging
import random
import unicodedata
from datetime import date, datetime, time, timedelta
from pathlib import Path
from collections.abc import Iterator

from ioc_pipeline.reference.admin_units import load_reference
from simulator import file_truth, landing, people
from simulator.civil_status import Communes, communes_for
from simulator.store import ICT, STATE_DDL, connect, copy_rows, open_state, write_state

log = logging.getLogger(__name__)

SOURCE = "social_payments"
TRUTH = "sim.social_payments_truth"
SHEET = "payments"
START = date(2025, 1, 1)            # first month of the deliveries
REFORM = date(2025, 7, 1)
FIELDS = ("payment_id", "beneficiary_cccd", "commune_code", "program", "period", "amount_vnd",
          "channel", "paid_on")
TRUTH_COLUMNS = ("file_name", "delivery_no", "row_no") + FIELDS + ("sim_cells", "sim_fault",
                                                                    "sim_duplicate", "sim_correction")
PROGRAMS = ("meritorious_people", "social_protection", "elderly_allowance", "disability_allowance")
NONCASH = ("bank_transfer", "e_wallet")
CASH = ("postal_cash", "cash")
EXTRA_COLUMN = "ghi_chu"
NOTES = ("Chi trả đủ", "Nhận thay (ủy quyền)", "Truy lĩnh tháng trước", "Đã xác minh", "")
FAULT_RATE = 0.012
BAD_FILE_FAULT_RATE = 0.15
EXACT_COPY_RATE = 0.004
IN_FILE_REPEAT_RATE = 0.004
RETURNED_RATE = 0.01                # bank transfers returned, paid in cash next month
# file faults: one of each per twelve months (see file_plan)
FILE_FAULTS = ("truncated_workbook", "missing_header_column", "extra_unknown_column", "many_bad_rows",
               "correction")
CORRECTION_CHANGE_SHARE = 0.03

DDL = STATE_DDL + file_truth.DDL + """
CREATE TABLE IF NOT EXISTS sim.social_payments_truth (
    file_name        text NOT NULL,
    delivery_no      integer NOT NULL,
    row_no           integer NOT NULL,
    payment_id       text,              -- every value as the contract reads the cell
    beneficiary_cccd text,
    commune_code     text,
    program          text,
    period           text,
    amount_vnd       text,
    channel          text,
    paid_on          text,
    sim_cells        text,              -- e.g. 'payment_id:number,paid_on:date'; NULL: all text
    sim_fault        text,
    sim_duplicate    text,
    sim_correction   text,
    PRIMARY KEY (file_name, delivery_no, row_no)
);
COMMENT ON TABLE sim.social_payments_truth IS
    'Simulator SOURCE side of social_payments (synthetic, clear IDs): every delivered row version.';
"""

FAULT_WEIGHTS = {
    "missing_required": 3, "cccd_bad_format": 1, "cccd_bad_prefix": 1, "cccd_birth_year_future": 1,
    "commune_unknown": 1, "commune_outside_province": 2, "legacy_code_after_reform": 2,
    "new_code_before_reform": 6, "paid_in_future": 1, "amount_not_positive": 2, "amount_not_integer": 1,
    "enum_invalid": 2, "period_invalid": 1, "date_invalid": 1, "cell_not_whole_number": 1, "formula_cell": 1,
}


@dataclasses.dataclass(frozen=True)
class Beneficiary:
    number: int
    cccd: str
    legacy_commune: str
    commune_2025: str
    program: str
    noncash_u: float       # switches to a non-cash channel once the monthly share exceeds it
    wallet: bool           # non-cash by e-wallet rather than bank
    coefficient: float

    def commune_on(self, d: date) -> str:
        return self.legacy_commune if d < REFORM else self.commune_2025


@dataclasses.dataclass(frozen=True)
class Pools:
    communes: Communes
    beneficiaries: tuple[Beneficiary, ...]


def pools_for(province_code: str, size: int, seed: int) -> Pools:
    ref = load_reference()
    communes = communes_for(province_code)
    rng = random.Random(f"{seed}:{SOURCE}:beneficiaries:{province_code}")
    out = []
    for i in range(size):
        program = rng.choices(PROGRAMS, (20, 30, 35, 15))[0]
        age = rng.randint(80, 100) if program == "elderly_allowance" else rng.randint(55, 95) \
            if program == "meritorious_people" else rng.randint(3, 90)
        birth = date(2025 - age, rng.randint(1, 12), rng.randint(1, 28))
        legacy = rng.choice(communes.legacy_inside)
        out.append(Beneficiary(i + 1, people.cccd(rng, birth, rng.choice("MF"), people.local_prefix(rng, communes.home_prefixes)),
                               legacy, ref.to_2025(legacy), program, rng.random(), rng.random() < 0.15,
                               rng.choice((1.0, 1.5, 2.0, 2.5, 3.0))))
    return Pools(communes, tuple(out))


def month_end(m: date) -> date:
    return (m.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def next_month(m: date) -> date:
    return month_end(m) + timedelta(days=1)


def last_complete_month(until: date) -> date | None:
    """First day of the last month that ended on or before `until`."""
    m = until.replace(day=1) if month_end(until) == until else (until.replace(day=1) - timedelta(days=1)).replace(day=1)
    return m if m >= START else None


def file_name(m: date) -> str:
    return f"social/social_payments_{m:%Y%m}.xlsx"


def noncash_share(d: date) -> float:
    return 0.76 + 0.08 * min(1.0, max(0.0, (d - START).days / 730))


def amount(b: Beneficiary, d: date) -> int:
    """Monthly allowance: the social-assistance base (360,000 VND, 500,000 from 2024-07) times
    the beneficiary's coefficient; meritorious people on their own scale."""
    if b.program == "meritorious_people":
        return int(2_789_000 * b.coefficient / 1.5) // 1000 * 1000
    return int(500_000 * b.coefficient)


def _cells(rng: random.Random) -> dict:
    """How this row's cells are typed (drawn for every row: the RNG stream stays aligned)."""
    u = [rng.random() for _ in range(5)]
    return {"payment_id": "number" if u[0] < 0.15 else "text",
            "beneficiary_cccd": "number" if u[1] < 0.10 else "text",
            "commune_code": "number" if u[2] < 0.20 else "text",
            "amount_vnd": "number" if u[3] < 0.70 else "text",
            "paid_on": "date" if u[4] < 0.65 else "text" if u[4] < 0.90 else "datetime"}


def _clean_payment(rng: random.Random, b: Beneficiary, m: date) -> dict:
    noncash = b.noncash_u < noncash_share(m)
    channel = ("e_wallet" if b.wallet else "bank_transfer") if noncash else \
        rng.choices(CASH, (60, 40))[0]
    day = rng.randint(5, 15) if noncash else rng.randint(10, 22)
    paid = m.replace(day=day)
    return {"payment_id": f"{m:%Y%m}{b.number:06d}", "beneficiary_cccd": b.cccd,
            "commune_code": b.commune_on(paid), "program": b.program, "period": f"{m:%Y-%m}",
            "amount_vnd": str(amount(b, paid)), "channel": channel, "paid_on": paid.isoformat(),
            "cells": _cells(rng), "fault": None, "dup": None, "correction": None}


def _applicable(kind: str, d: date, c: Communes) -> bool:
    return {"legacy_code_after_reform": d >= REFORM and bool(c.legacy_not_2025),
            "new_code_before_reform": d < REFORM and bool(c.current_not_legacy),
            "commune_outside_province": bool(c.legacy_outside if d < REFORM else c.current_outside),
            }.get(kind, True)


def _apply_fault(rng: random.Random, p: dict, kind: str, d: date, c: Communes) -> None:
    """Make a clean payment break exactly the rule named by `kind` (cells typed to fit)."""
    cells, x = p["cells"], p["beneficiary_cccd"]
    if kind.startswith("cccd_"):
        cells["beneficiary_cccd"] = "text"
    if kind == "missing_required":
        p[rng.choice(FIELDS[1:])] = None
    elif kind == "cccd_bad_format":
        p["beneficiary_cccd"] = rng.choice((x[:11], x[:5] + "O" + x[6:], x + "1", f"{x[:6]}.{x[6:]}"))
    elif kind == "cccd_bad_prefix":
        p["beneficiary_cccd"] = rng.choice(people.BAD_PREFIXES) + x[3:]
    elif kind == "cccd_birth_year_future":
        p["beneficiary_cccd"] = x[:3] + rng.choice("4567") + x[4:]
    elif kind == "commune_unknown":
        p["commune_code"] = rng.choice(c.unknown)
    elif kind == "commune_outside_province":
        p["commune_code"] = rng.choice(c.legacy_outside if d < REFORM else c.current_outside)
    elif kind == "legacy_code_after_reform":
        p["commune_code"] = rng.choice(c.legacy_not_2025)
    elif kind == "new_code_before_reform":
        p["commune_code"] = rng.choice(c.current_not_legacy)
    elif kind == "paid_in_future":     # a year typo
        p["paid_on"] = str(d.year + 40) + p["paid_on"][4:]
    elif kind == "amount_not_positive":
        p["amount_vnd"] = rng.choice(("0", "-" + p["amount_vnd"]))
    elif kind == "amount_not_integer":   # thousands separators typed as text, or a fraction
        cells["amount_vnd"] = "text"
        a = int(p["amount_vnd"])
        p["amount_vnd"] = rng.choice((f"{a:,}".replace(",", "."), f"{a:,}", f"{a / 1000:.1f}k", f"{a}.5"))
    elif kind == "enum_invalid":
        field, bad = rng.choice((("channel", "Chuyển khoản"), ("channel", "tien_mat"), ("channel", "bank"),
                                 ("program", "Bảo trợ xã hội"), ("program", "nguoi_cao_tuoi")))
        p[field] = unicodedata.normalize("NFD", bad) if rng.random() < 0.5 else bad
    elif kind == "period_invalid":
        y, m = p["period"].split("-")
        p["period"] = rng.choice((f"{y}/{m}", f"{m}-{y}", f"{y}-13", f"T{int(m)}/{y}", f"{y}{m}"))
    elif kind == "date_invalid":
        cells["paid_on"] = "text"
        pd = date.fromisoformat(p["paid_on"])
        p["paid_on"] = rng.choice((f"{pd:%d/%m/%Y}", f"{pd:%Y-%m}-{32 + pd.day % 3}", f"{pd:%d-%m-%Y}"))
    elif kind == "cell_not_whole_number":  # a number typed into an identifier column
        field = rng.choice(("beneficiary_cccd", "commune_code"))
        cells[field] = "number"
        p[field] = f"{int(p[field] or '1')}.5"
    elif kind == "formula_cell":
        cells["amount_vnd"] = "formula"
        p["amount_vnd"] = f"={int(p['amount_vnd']) // 1000}*1000"
    else:  # pragma: no cover - FAULT_WEIGHTS and this function must list the same kinds
        raise ValueError(kind)
    p["fault"] = kind


@dataclasses.dataclass(frozen=True)
class FilePlan:
    fault: str | None
    detail: str | None
    delivered_at: datetime
    again_at: datetime | None      # redelivery (after truncation) or correction


def file_plan(seed: int, m: date) -> FilePlan:
    """A month's file fault. A few months in twelve are sent badly: each block of twelve months
    (from 2025-01) has one of each FILE_FAULTS at months drawn from an RNG seeded by (seed,
    block), so every kind shows up in any year of deliveries at a low, steady rate."""
    index = (m.year - START.year) * 12 + m.month - START.month
    slots = list(FILE_FAULTS) + [None] * (12 - len(FILE_FAULTS))
    random.Random(f"{seed}:{SOURCE}:file-faults:{index // 12}").shuffle(slots)
    fault = slots[index % 12]
    rng = random.Random(f"{seed}:{SOURCE}:file:{m:%Y%m}")
    missing = rng.choice(("channel", "paid_on", "amount_vnd", "commune_code"))
    first = datetime.combine(next_month(m), time(8), ICT) + timedelta(days=rng.randrange(3), seconds=rng.randrange(9 * 3600))
    later = first + timedelta(days=rng.randint(5, 12))
    if fault == "truncated_workbook":
        return FilePlan(fault, None, first, first + timedelta(days=2))
    if fault == "correction":   # the first delivery is clean; the correction comes days later
        return FilePlan(None, None, first, later)
    detail = missing if fault == "missing_header_column" else EXTRA_COLUMN if fault == "extra_unknown_column" else None
    return FilePlan(fault, detail, first, None)


def _month_payments(seed: int, pools: Pools, m: date) -> Iterator[dict]:
    """The month's payments in file order, faults and in-file duplicates included."""
    c = pools.communes
    rng = random.Random(f"{seed}:{SOURCE}:{m:%Y%m}")
    rate = BAD_FILE_FAULT_RATE if file_plan(seed, m).fault == "many_bad_rows" else FAULT_RATE
    for b in pools.beneficiaries:
        paid, p = rng.random() < 0.97, _clean_payment(rng, b, m)
        fault_u, kind_u, dup_u, ret_u = rng.random(), rng.random(), rng.random(), rng.random()
        fault_rng = random.Random(f"{seed}:{SOURCE}:{m:%Y%m}:{b.number}")
        if not paid:
            continue
        d = date.fromisoformat(p["paid_on"])
        if fault_u < rate:
            kinds = [k for k in FAULT_WEIGHTS if _applicable(k, d, c)]
            total, acc = sum(FAULT_WEIGHTS[k] for k in kinds), 0.0
            kind = kinds[-1]
            for k in kinds:
                acc += FAULT_WEIGHTS[k] / total
                if kind_u < acc:
                    kind = k
                    break
            _apply_fault(fault_rng, p, kind, d, c)
        if dup_u < EXACT_COPY_RATE:
            p["dup"] = "exact_copy"
            yield p
            yield dict(p, cells=dict(p["cells"]))
        elif dup_u < EXACT_COPY_RATE + IN_FILE_REPEAT_RATE:
            # the row entered first with the previous month's amount, then corrected below it
            stale = dict(p, cells=dict(p["cells"]), dup="superseded_in_file",
                         amount_vnd=str(int(p["amount_vnd"]) + 100_000) if p["amount_vnd"] and p["amount_vnd"].isdigit() else "100000")
            p["dup"] = "in_file_winner"
            yield stale
            yield p
        else:
            if p["fault"] is None and p["channel"] == "bank_transfer" and ret_u < RETURNED_RATE:
                p["dup"] = "superseded_by_later_file"
            yield p


def _returned_in(seed: int, pools: Pools, m: date) -> list[dict]:
    """Last month's returned transfers, paid in cash early this month (same payment_id)."""
    if m <= START:
        return []
    prev = (m - timedelta(days=1)).replace(day=1)
    out = []
    for p in _month_payments(seed, pools, prev):
        if p["dup"] == "superseded_by_later_file":
            paid = m.replace(day=int(p["payment_id"][-2:]) % 7 + 3)
            by_number = pools.beneficiaries[int(p["payment_id"][6:]) - 1]
            out.append(dict(p, cells=dict(p["cells"]), channel="postal_cash", paid_on=paid.isoformat(),
                            commune_code=by_number.commune_on(paid), dup="repeated_from_earlier_file"))
    return out


def file_rows(seed: int, pools: Pools, m: date) -> Iterator[dict]:
    yield from _returned_in(seed, pools, m)
    yield from _month_payments(seed, pools, m)


def _corrected_rows(seed: int, pools: Pools, m: date) -> tuple[list, Iterator[dict]]:
    eligible = [i for i, p in enumerate(file_rows(seed, pools, m)) if p["fault"] is None and p["dup"] is None]
    rng = random.Random(f"{seed}:{SOURCE}:correction:{m:%Y%m}")
    if not eligible:
        return [], file_rows(seed, pools, m)
    removed = rng.choice(eligible)
    rest = [i for i in eligible if i != removed]
    changed = set(rng.sample(rest, min(len(rest), max(1, round(CORRECTION_CHANGE_SHARE * len(rest))))))
    removed_id: list = []

    def rows():
        for i, p in enumerate(file_rows(seed, pools, m)):
            if i == removed:
                removed_id.append(p["payment_id"])
                continue
            if i in changed:   # recalculated allowance
                p = dict(p, amount_vnd=str(int(p["amount_vnd"]) + rng.choice((-1, 1)) * rng.randrange(1, 20) * 10_000),
                         correction="changed")
            yield p
    return removed_id, rows()


def _cell(field: str, p: dict):
    """The Python value openpyxl writes for a field: its cell type is the row's `cells` choice."""
    value, kind = p[field], p["cells"].get(field, "text")
    if value is None:
        return None
    if kind == "number":
        return float(value) if "." in value else int(value)
    if kind == "formula":
        return value
    if kind in ("date", "datetime") and len(value) == 10 and value[4] == "-":
        try:
            d = date.fromisoformat(value)
        except ValueError:
            return value
        return d if kind == "date" else datetime.combine(d, time())
    return value


def _cells_label(p: dict) -> str | None:
    typed = [f"{f}:{k}" for f, k in p["cells"].items() if k != "text" and p[f] is not None]
    return ",".join(typed) or None


def _deliver(conn, landing_dir, seed: int, m: date, rows: Iterator[dict], *, delivery_no: int,
             delivered_at: datetime, file_fault: str | None, detail, plan: FilePlan) -> str:
    name = file_name(m)
    header = [f for f in FIELDS if not (plan.fault == "missing_header_column" and f == plan.detail)]
    extra = plan.fault == "extra_unknown_column"
    note_rng = random.Random(f"{seed}:{SOURCE}:extra:{m:%Y%m}")
    tally, truth = file_truth.KeyTally(), []

    def cells():
        for row_no, p in enumerate(rows, 1):
            tally.add(p["payment_id"], p["fault"])
            truth.append((name, delivery_no, row_no, *(p[f] for f in FIELDS), _cells_label(p), p["fault"],
                          p["dup"], p["correction"]))
            row = [_cell(f, p) for f in header]
            if extra:
                note = note_rng.choice(NOTES)
                row.append(unicodedata.normalize("NFD", note) if note_rng.random() < 0.3 else note or None)
            yield row

    writer = landing.xlsx_writer([(SHEET, header + ([EXTRA_COLUMN] if extra else []), cells())],
                                 truncate_to=0.6 if file_fault == "truncated_workbook" else None)
    delivered = landing.deliver(landing_dir, name, writer, delivered_at)
    with conn.cursor() as cur:
        copy_rows(cur, TRUTH, TRUTH_COLUMNS, truth)
        return file_truth.record(cur, source=SOURCE, delivered=delivered, delivery_no=delivery_no,
                                 named_date=month_end(m), delivered_at=delivered_at, tally=tally,
                                 file_fault=file_fault, detail=detail)


# Its size options of `python -m simulator generate` (simulator/sources.py).
CLI_OPTIONS = {
    "--social-payments": ("payments_per_month", 300, "social-allowance beneficiaries paid each month"),
}


def generate(dsn: str, landing_dir: Path | str, *, province_code: str = "48", until: date,
             payments_per_month: int = 300, seed: int = 6) -> dict:
    """Write (or extend up to `until`) one workbook per month from 2025-01 to the last month
    complete on `until`, plus the re-deliveries due by `until`, with their truth in `dsn`.
    `payments_per_month` is the size of the beneficiary pool (~97 % are paid each month).
    Returns {"files", "redeliveries", "rows", "failing_files"}."""
    pools = pools_for(province_code, payments_per_month, seed) if payments_per_month > 0 else None
    conn = connect(dsn)
    try:
        state = open_state(conn, ddl=DDL, source=SOURCE, volume_name="payments_per_month",
                           volume=payments_per_month, seed=seed, province_code=province_code,
                           start=START, until=max(until, START))
        with conn.cursor() as cur:
            done = file_truth.recorded(cur, SOURCE)
        totals = {"files": 0, "redeliveries": 0, "rows": 0, "failing_files": 0}
        last = last_complete_month(until)
        m = START
        while last is not None and m <= last:
            plan, name = file_plan(seed, m), file_name(m)
            if name not in done:
                status = _deliver(conn, landing_dir, seed, m, file_rows(seed, pools, m), delivery_no=1,
                                  delivered_at=plan.delivered_at, file_fault=plan.fault, detail=plan.detail, plan=plan)
                totals["files"] += 1
                totals["failing_files"] += status == "fails"
            if plan.again_at is not None and plan.again_at.date() <= until and done.get(name, 0) < 2:
                if plan.fault == "truncated_workbook":   # the complete file, sent again
                    _deliver(conn, landing_dir, seed, m, file_rows(seed, pools, m), delivery_no=2,
                             delivered_at=plan.again_at, file_fault="redelivery", detail=None,
                             plan=dataclasses.replace(plan, fault=None))
                else:
                    removed, rows = _corrected_rows(seed, pools, m)
                    rows = list(rows)
                    _deliver(conn, landing_dir, seed, m, iter(rows), delivery_no=2, delivered_at=plan.again_at,
                             file_fault="correction", detail=f"removed {removed[0]}" if removed else None, plan=plan)
                totals["redeliveries"] += 1
            with conn.cursor() as cur:
                write_state(cur, dataclasses.replace(state, generated_until=max(state.generated_until, month_end(m))))
            conn.commit()
            m = next_month(m)
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {TRUTH}")
            totals["rows"] = cur.fetchone()[0]
        conn.commit()
        log.info("social_payments files done until %s: %s", until, totals)
        return totals
    finally:
        conn.close()


def expected_values(sim_dsn: str, landing_dir: Path | str, as_of: date,
                    files_until: date | None = None) -> dict[tuple[str, str], tuple[int, int]]:
    """Oracle from the ground truth alone: SOCIAL_NONCASH_PCT per 2025 commune and for the
    province, over the payments paid from Jan 1 of as_of's year to as_of, counting the version
    of each payment the contract leaves after every monthly file whose month ended on or before
    `files_until` (default as_of) was taken. Legacy codes map by the reference data."""
    province, rows = file_truth.current_rows(sim_dsn, landing_dir, SOURCE, TRUTH, "payment_id",
                                             "paid_on, commune_code, channel", files_until or as_of)
    return file_truth.flow_counts("SOCIAL_NONCASH_PCT", [(on, code, channel in NONCASH) for on, code, channel in rows],
                                  as_of, province, load_reference().to_2025)
