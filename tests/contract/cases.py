"""The per-source contract fixtures: tests/contract/fixtures/<source>.jsonl, one case per line,
in the order the source delivers them:

  {"expect": "loaded", "item": {...}, "core": {"<column or SQL expression>": <value>, ...}}
      a clean row: its key is loaded; `core` (optional): what the core table holds for the key,
      as JSON (dates "YYYY-MM-DD", timestamps in UTC)
  {"expect": "replaced", "item": {...}, "note": "..."}
      a row that loses to another row of its key in the same batch (an exact duplicate, an older
      version): neither loaded as such nor quarantined
  {"expect": "quarantined", "reason": "...", "item": {...}, "failing_values": {...}, "record_date": "..."}
      a row that breaks the contract: quarantined, and one of its reasons contains `reason`
      (file sources: `reason` is the whole reason of the suite rule that names it);
      `failing_values` and `record_date` (optional): what quarantine.rejected_row shows

The items are exactly what the extractor hands the batch (REST: JSON values; SQL: text; files:
the cells as text, `_cell_errors` when the reader found some).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@dataclasses.dataclass(frozen=True)
class Case:
    expect: str
    item: dict
    reason: str | None = None
    core: dict | None = None
    failing_values: dict | None = None
    record_date: str | None = None
    note: str | None = None


def codes() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.jsonl"))


def load(code: str) -> list[Case]:
    path = FIXTURES / f"{code}.jsonl"
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            case = Case(**json.loads(line))
            assert case.expect in ("loaded", "replaced", "quarantined"), f"{path.name}:{n}: expect {case.expect!r}"
            assert (case.reason is not None) == (case.expect == "quarantined"), f"{path.name}:{n}: reason"
            out.append(case)
    return out


def items(code: str) -> list[dict]:
    """The fixture's items in delivery order (fresh copies)."""
    return [json.loads(json.dumps(c.item)) for c in load(code)]
