"""Source 8, `project06_tracker` (Provincial Police, standing agency of Project 06): the tracker
workbook `project06/project06_tracker.xlsx`, sheets `tasks` and `models` (sources.md §8).

Why this shape: the agency re-sends the whole workbook every Monday (from 2025-01-06) and the
newest delivery is the truth. The state of version k (week k) is a pure function of (seed, k):
each item has its own seeded trajectory (created, started, done, sometimes removed), so a later
`until` rewrites the file with the newest version only (what a real folder would hold), and
`sim.project06_tracker_truth` keeps the rows of every version written, `sim.file_deliveries`
one row per delivery (`delivery_no` 2, 3, ... are re-sends, labelled `resent`).

Pilot models follow the field figure (38 models: 6 done, 20 in progress, 12 not started)
at the end of 2026; tasks are ~60 with deadlines through 2026, a few added and one removed
over time. Text comes in NFC or NFD per item.

What goes wrong, labelled: four rows broken from the day they were entered and never fixed
(`done_without_completed_on`, `group_no_out_of_range`, `missing_required` on tasks,
`enum_invalid` on a 39th model: 4 of ~105 keys, under the 5 % that would fail the file), an exact
copy of a task row (`exact_copy`), a model listed twice with its old status first
(`superseded_in_file` / `in_file_winner`), and from week 80 on an extra `ghi_chu` column in
`tasks` (`extra_unknown_column`: schema drift, loads).
"""
from __future__ import annotations

import dataclasses
import logging
import random
import unicodedata
from datetime import date, datetime, time, timedelta
from pathlib import Path

from simulator import file_truth, landing
from simulator.store import ICT, STATE_DDL, connect, copy_rows, open_state, write_state

log = logging.getLogger(__name__)

SOURCE = "project06_tracker"
TRUTH = "sim.project06_tracker_truth"
FILE = "project06/project06_tracker.xlsx"
START = date(2025, 1, 6)            # week 0: the first Monday the tracker was sent
TASK_COLUMNS = ("task_id", "group_no", "title", "owner_unit", "deadline", "status", "completed_on")
MODEL_COLUMNS = ("model_id", "name", "owner_unit", "status", "started_on")
STATUSES = ("done", "in_progress", "not_started")
MODELS = 38
MODEL_MIX = {"done": 6, "in_progress": 20, "not_started": 12}   # at FIELD_WEEK (field figure)
FIELD_WEEK = 96                     # 2026-11-09: the mix holds for weeks 96-99
ADDED_TASKS = ((20, 2), (45, 1), (70, 2))   # (week, how many) tasks added later
REMOVED_TASK_WEEK = 60              # one task merged into another: gone from the tracker
EXTRA_COLUMN, EXTRA_FROM_WEEK = "ghi_chu", 80
TRUTH_COLUMNS = ("file_name", "delivery_no", "sheet", "row_no", "item_id") + TASK_COLUMNS + (
    "model_id", "name", "started_on", "sim_cells", "sim_fault", "sim_duplicate")

UNITS = ("Công an tỉnh", "Sở Y tế", "Sở Tư pháp", "Sở Giáo dục và Đào tạo", "Sở Nội vụ",
         "Sở Nông nghiệp và Môi trường", "Bảo hiểm xã hội tỉnh", "Văn phòng UBND tỉnh",
         "Sở Khoa học và Công nghệ", "Sở Tài chính")
_ACTIONS = ("Làm sạch dữ liệu", "Số hóa hồ sơ", "Kết nối, chia sẻ dữ liệu", "Triển khai dịch vụ công trực tuyến",
            "Tích hợp trên VNeID", "Tuyên truyền, hướng dẫn", "Đào tạo cán bộ", "Rà soát, đối soát")
_OBJECTS = ("dân cư", "hộ tịch", "bảo hiểm y tế", "đất đai", "an sinh xã hội", "giáo dục", "y tế",
            "thủ tục hành chính", "giấy phép lái xe", "thuế")
_THEMES = ("Khám chữa bệnh bằng CCCD gắn chip", "Chi trả an sinh xã hội không dùng tiền mặt",
           "Thu học phí không dùng tiền mặt", "Trường học số", "Bệnh viện không tiền mặt", "Chợ 4.0",
           "Xã, phường số", "Khu dân cư an toàn", "Tiếp công dân trực tuyến", "Điểm dịch vụ công tự động")

DDL = STATE_DDL + file_truth.DDL + """
CREATE TABLE IF NOT EXISTS sim.project06_tracker_truth (
    file_name     text NOT NULL,
    delivery_no   integer NOT NULL,
    sheet         text NOT NULL,        -- tasks | models
    row_no        integer NOT NULL,     -- data row within its sheet
    item_id       text,                 -- task_id or model_id
    task_id text, group_no text, title text, owner_unit text, deadline text, status text,
    completed_on text, model_id text, name text, started_on text,
    sim_cells     text,                 -- cells written as numbers or dates
    sim_fault     text,
    sim_duplicate text,
    PRIMARY KEY (file_name, delivery_no, sheet, row_no)
);
COMMENT ON TABLE sim.project06_tracker_truth IS
    'Simulator SOURCE side of project06_tracker (synthetic): the rows of every delivered version.';
"""

FAULTS = ("done_without_completed_on", "group_no_out_of_range", "missing_required", "enum_invalid")


def week_date(k: int) -> date:
    return START + timedelta(weeks=k)


def version_for(until: date) -> int | None:
    return (until - START).days // 7 if until >= START else None


def _nfd(text: str, flag: bool) -> str:
    return unicodedata.normalize("NFD", text) if flag else text


@dataclasses.dataclass(frozen=True)
class Task:
    task_id: str
    group_no: int
    title: str
    owner_unit: str
    deadline: date
    created: int          # weeks
    start: int
    done: int | None
    removed: int | None
    done_lag: int         # days between completion and the Monday it is reported
    date_as_text: bool
    fault: str | None

    def row(self, k: int) -> dict:
        status = ("done" if self.done is not None and k >= self.done else
                  "in_progress" if k >= self.start else "not_started")
        completed = week_date(self.done) - timedelta(days=self.done_lag) if status == "done" else None
        r = {"task_id": self.task_id, "group_no": self.group_no, "title": self.title,
             "owner_unit": self.owner_unit, "deadline": self.deadline, "status": status, "completed_on": completed}
        if self.fault == "done_without_completed_on":
            r.update(status="done", completed_on=None)
        elif self.fault == "group_no_out_of_range":
            r["group_no"] = 11 if self.group_no > 5 else 0
        elif self.fault == "missing_required":
            r["owner_unit"] = None
        return r


@dataclasses.dataclass(frozen=True)
class Model:
    model_id: str
    name: str
    owner_unit: str
    start: int | None
    done: int | None
    start_lag: int
    fault: str | None

    def status(self, k: int) -> str:
        if self.done is not None and k >= self.done:
            return "done"
        return "in_progress" if self.start is not None and k >= self.start else "not_started"

    def row(self, k: int) -> dict:
        status = self.status(k)
        started = week_date(self.start) - timedelta(days=self.start_lag) if status != "not_started" else None
        if self.fault == "enum_invalid":
            status = _nfd("Đang triển khai", True)
        return {"model_id": self.model_id, "name": self.name, "owner_unit": self.owner_unit,
                "status": status, "started_on": started}


@dataclasses.dataclass(frozen=True)
class Items:
    tasks: tuple[Task, ...]
    models: tuple[Model, ...]
    copied_task: str          # its row appears twice (exact copy)
    repeated_model: str       # listed twice, the old status first


def items_for(seed: int, tasks: int) -> Items:
    """Every item's whole trajectory, from (seed, number of base tasks)."""
    rng = random.Random(f"{seed}:{SOURCE}:items")
    created = [0] * tasks + [w for w, n in ADDED_TASKS for _ in range(n)]
    faulty = rng.sample(range(1, tasks), 3)
    removed = rng.choice([i for i in range(tasks) if i not in faulty])
    out = []
    for i, c in enumerate(created):
        r = random.Random(f"{seed}:{SOURCE}:task:{i}")
        deadline_q = r.randint(1, 8)          # a quarter end in 2025-2026
        deadline = date(2025 + (deadline_q - 1) // 4, 3 * ((deadline_q - 1) % 4) + 3, 1)
        deadline = (deadline.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        start = c + r.randint(0, 30)
        done = start + r.randint(6, 70) if r.random() < 0.85 else None
        title = f"{r.choice(_ACTIONS)} {r.choice(_OBJECTS)}"
        fault = FAULTS[faulty.index(i)] if i in faulty else None
        out.append(Task(f"NV06-{i + 1:03d}", r.randint(1, 10), _nfd(title, r.random() < 0.2),
                        _nfd(r.choice(UNITS), r.random() < 0.2), deadline, c, start, done,
                        REMOVED_TASK_WEEK if i == removed else None, r.randrange(7), r.random() < 0.2, fault))
    # models: the field figure's mix at FIELD_WEEK, then they keep moving
    classes = [s for s, n in MODEL_MIX.items() for _ in range(n)]
    rng.shuffle(classes)
    models = []
    for j, cls in enumerate(classes):
        r = random.Random(f"{seed}:{SOURCE}:model:{j}")
        if cls == "done":
            start = r.randint(0, 50)
            done = r.randint(start + 10, FIELD_WEEK - 1)
        elif cls == "in_progress":
            start, done = r.randint(0, FIELD_WEEK - 1), FIELD_WEEK + r.randint(5, 60)
        else:
            start, done = FIELD_WEEK + r.randint(4, 80), None
        name = f"{r.choice(_THEMES)} ({r.choice(('phường', 'xã'))} {r.randint(1, 20)})"
        models.append(Model(f"MH06-{j + 1:02d}", _nfd(name, r.random() < 0.2), _nfd(r.choice(UNITS), r.random() < 0.2),
                            start, done, r.randrange(7), None))
    # one more model entered with a free-text status: quarantined, so the valid ones keep the mix
    models.append(Model(f"MH06-{MODELS + 1:02d}", _THEMES[0] + " (xã 21)", UNITS[1], 10, None, 0, "enum_invalid"))
    clean = [t.task_id for t in out if t.fault is None and t.removed is None]
    return Items(tuple(out), tuple(models), rng.choice(clean),
                 rng.choice([m.model_id for m in models if m.fault is None]))


def _tasks_at(items: Items, k: int) -> list[dict]:
    rows = []
    for t in items.tasks:
        if t.created > k or (t.removed is not None and k >= t.removed):
            continue
        r = dict(t.row(k), fault=t.fault, dup=None, text_dates=t.date_as_text)
        rows.append(r)
        if t.task_id == items.copied_task:
            r["dup"] = "exact_copy"
            rows.append(dict(r))
    return rows


def _models_at(items: Items, k: int) -> list[dict]:
    rows = []
    for m in items.models:
        r = dict(m.row(k), fault=m.fault, dup=None, text_dates=False)
        if m.model_id == items.repeated_model:
            old = {"done": "in_progress", "in_progress": "not_started", "not_started": "in_progress"}[r["status"]]
            rows.append(dict(r, status=old, dup="superseded_in_file"))
            r["dup"] = "in_file_winner"
        rows.append(r)
    return rows


def _text(v) -> str | None:
    return None if v is None else v.isoformat() if isinstance(v, date) else str(v)


def _cell(v, as_text: bool):
    """Dates as date cells (or YYYY-MM-DD text for some items), group_no as a number cell."""
    return v.isoformat() if as_text and isinstance(v, date) else v


def _deliver(conn, landing_dir, seed: int, items: Items, k: int, delivery_no: int) -> str:
    tasks, models = _tasks_at(items, k), _models_at(items, k)
    extra = k >= EXTRA_FROM_WEEK
    notes = random.Random(f"{seed}:{SOURCE}:notes:{k}")
    tally, truth = file_truth.KeyTally(), []
    for sheet, rows, columns, key in (("tasks", tasks, TASK_COLUMNS, "task_id"), ("models", models, MODEL_COLUMNS, "model_id")):
        for row_no, r in enumerate(rows, 1):
            tally.add((sheet, r[key]), r["fault"])
            typed = [f"{c}:{'number' if isinstance(r[c], int) else 'text' if r['text_dates'] else 'date'}"
                     for c in columns if isinstance(r[c], (int, date))]
            values = {c: _text(r.get(c)) for c in TASK_COLUMNS + ("model_id", "name", "started_on")}
            truth.append((FILE, delivery_no, sheet, row_no, r[key], *values.values(), ",".join(typed) or None,
                          r["fault"], r["dup"]))
    task_rows = [[_cell(r[c], r["text_dates"]) for c in TASK_COLUMNS] +
                 ([_nfd(notes.choice(("Đúng tiến độ", "Chậm do thiếu kinh phí", "Đã báo cáo Ban Chỉ đạo")),
                        notes.random() < 0.3)] if extra else []) for r in tasks]
    model_rows = [[_cell(r[c], False) for c in MODEL_COLUMNS] for r in models]
    writer = landing.xlsx_writer([("tasks", list(TASK_COLUMNS) + ([EXTRA_COLUMN] if extra else []), task_rows),
                                  ("models", list(MODEL_COLUMNS), model_rows)])
    at = datetime.combine(week_date(k), time(8), ICT) + timedelta(seconds=random.Random(f"{seed}:{SOURCE}:at:{k}").randrange(3 * 3600))
    delivered = landing.deliver(landing_dir, FILE, writer, at)
    fault = "extra_unknown_column" if extra else "resent" if delivery_no > 1 else None
    with conn.cursor() as cur:
        copy_rows(cur, TRUTH, TRUTH_COLUMNS, truth)
        return file_truth.record(cur, source=SOURCE, delivered=delivered, delivery_no=delivery_no, named_date=None,
                                 delivered_at=at, tally=tally, file_fault=fault,
                                 detail=f"week {k}" + (f", {EXTRA_COLUMN}" if extra else ""))


# Its size options of `python -m simulator generate` (simulator/sources.py).
CLI_OPTIONS = {
    "--tracker-tasks": ("tasks", 60, "Project 06 tracker tasks"),
}


def generate(dsn: str, landing_dir: Path | str, *, province_code: str = "48", until: date,
             tasks: int = 60, seed: int = 6) -> dict:
    """Write the tracker version of the last Monday on or before `until` (if newer than the one
    delivered), with its truth in `dsn`. Returns {"files", "version", "tasks", "models"}."""
    if tasks < 10:
        raise ValueError("tasks must be at least 10")
    items = items_for(seed, tasks)
    conn = connect(dsn)
    try:
        state = open_state(conn, ddl=DDL, source=SOURCE, volume_name="tasks", volume=tasks, seed=seed,
                           province_code=province_code, start=START, until=max(until, START))
        k = version_for(until)
        totals = {"files": 0, "version": k, "tasks": 0, "models": 0}
        if k is None or week_date(k) <= state.generated_until:
            return totals
        with conn.cursor() as cur:
            delivery_no = file_truth.recorded(cur, SOURCE).get(FILE, 0) + 1
        _deliver(conn, landing_dir, seed, items, k, delivery_no)
        with conn.cursor() as cur:
            write_state(cur, dataclasses.replace(state, generated_until=week_date(k)))
        conn.commit()
        totals.update(files=1, tasks=len(_tasks_at(items, k)), models=len(_models_at(items, k)))
        log.info("project06_tracker version of %s written: %s", week_date(k), totals)
        return totals
    finally:
        conn.close()


def expected_values(sim_dsn: str, landing_dir: Path | str, as_of: date,
                    files_until: date | None = None) -> dict[tuple[str, str], tuple[int, int | None]]:
    """Oracle from the ground truth alone: the five P06_* indicators for the province from the
    valid rows of the newest tracker delivery that loads (the newest delivery is the truth;
    items it no longer lists are gone). Count indicators have denominator None. `files_until`
    is accepted for symmetry with the other oracles: the tracker is always taken."""
    province, rows = file_truth.current_rows(sim_dsn, landing_dir, SOURCE, TRUTH, "sheet, item_id",
                                             "sheet, item_id, status, deadline", files_until or as_of)
    tasks = [(s, date.fromisoformat(d)) for sheet, _, s, d in rows if sheet == "tasks"]
    models = [s for sheet, _, s, _ in rows if sheet == "models"]
    done = sum(s == "done" for s, _ in tasks)
    return {
        ("P06_TASKS_DONE_PCT", province): (done, len(tasks)),
        ("P06_TASKS_OVERDUE", province): (sum(s != "done" and d < as_of for s, d in tasks), None),
        ("P06_MODELS_DONE", province): (models.count("done"), None),
        ("P06_MODELS_IN_PROGRESS", province): (models.count("in_progress"), None),
        ("P06_MODELS_NOT_STARTED", province): (models.count("not_started"), None),
    }
