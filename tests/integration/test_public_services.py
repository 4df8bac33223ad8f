"""public_services end to end in the warehouse (merge, indicators) on its contract fixture
(tests/contract/fixtures/public_services.jsonl: one quarantine reason per fault kind, checked
row by row in tests/contract) with indicator values worked out by hand below: the year window by
the Asia/Ho_Chi_Minh calendar date of the named timestamp, dossiers without a commune at
province level only, withdrawn dossiers in neither count, legacy commune codes mapped by the
local submission date."""
import datetime as dt
from decimal import Decimal

import pytest

from ioc_pipeline.views import refresh
from tests.contract import cases
from tests.integration.test_refresh_civil_status import values
from tests.integration.warehouse_helpers import migrated, run_batch

pytestmark = pytest.mark.integration

AS_OF = dt.date(2026, 11, 20)
SOURCE = "public_services"


def dos(dossier_id, **over):
    """A clean dossier: essential, online, completed on time with a digitized result, in 20194."""
    base = {
        "dossier_id": dossier_id, "procedure_code": "1.004000", "essential_service": True,
        "commune_code": "20194", "receiving_agency": "UBND Phường Hải Châu", "channel": "online",
        "submitted_at": "2026-03-02T09:00:00+07:00", "due_at": "2026-03-05T17:00:00+07:00",
        "status": "completed", "completed_at": "2026-03-04T10:00:00+07:00", "result_digitized": True,
        "updated_at": "2026-03-04T10:00:05+07:00",
    }
    base.update(over)
    return base


def open_(dossier_id, **over):
    """Not completed yet: counts only in the online share."""
    return dos(dossier_id, **{"status": "processing", "completed_at": None, "result_digitized": False, **over})


# Count in no indicator (not essential, not completed): keep the quarantine share under 5 %.
FILLER = [open_(f"F{i}", essential_service=False) for i in range(300)]


def load(conn, dsn):
    return run_batch(conn, dsn, SOURCE, AS_OF, [cases.items(SOURCE) + FILLER])


def test_indicators_by_hand(warehouse_db):
    conn = migrated(warehouse_db)
    load(conn, warehouse_db)
    refresh.refresh(conn, AS_OF, "48")
    v = values(conn)

    def got(code, unit):
        r = v[(code, unit)]
        return r["numerator"], r["denominator"], r["value"], r["status"], r["rank_in_province"]

    online, ontime, digitized = ("PUBLIC_SERVICE_ONLINE_PCT", "PUBLIC_SERVICE_ONTIME_PCT",
                                 "PUBLIC_SERVICE_RESULT_DIGITIZED_PCT")
    for code in (online, ontime, digitized):
        assert len([k for k in v if k[0] == code]) == 95          # province + 94 communes
        assert v[(code, "48")]["period_start"] == dt.date(2026, 1, 1)
    # ONLINE (essential, submitted 2026-01-01..2026-11-20 local, withdrawn in neither):
    # 20194: A1 on, A2 in, A3 on, LATE1 on (W1, W2 withdrawn; N1 not essential) -> 3/4
    assert got(online, "20194") == (3, 4, Decimal("75.00"), "below_target", 1)
    # 20197: E_in on (03:00 local on Jan 1), E_in2 in, E_last on (23:59 on the as-of date);
    # E_out (23:59 on Dec 31) and C2025/C2026 (submitted in 2025) out -> 2/3
    assert got(online, "20197") == (2, 3, Decimal("66.67"), "below_target", 2)
    assert got(online, "20350")[:4] == (0, 0, None, "no_data")      # L1 submitted in 2025
    # province: communes (3+2)/(4+3) = 5/7, plus P1 on, P2 in, P4 on (P3 withdrawn) -> 7/10
    assert got(online, "48") == (7, 10, Decimal("70.00"), "below_target", None)

    # ONTIME (completed, completed_at local date in 2026): 20194 A1, A2, N1 on time, LATE1 late
    assert got(ontime, "20194") == (3, 4, Decimal("75.00"), "below_target", 2)
    # 20197: C2026 (completed 00:30 local on Jan 1) on time; C2025 (23:59 on Dec 31) out
    assert got(ontime, "20197") == (1, 1, Decimal("100.00"), "met", 1)
    assert got(ontime, "20350") == (1, 1, Decimal("100.00"), "met", 1)   # L1 via legacy 20344
    # province: 3+1+1 of 4+1+1, plus P1 on time, P2 late -> 6/8
    assert got(ontime, "48") == (6, 8, Decimal("75.00"), "below_target", None)

    # RESULT_DIGITIZED: 20194 A1, LATE1 digitized; A2, N1 not -> 2/4; 20197 C2026 not -> 0/1
    assert got(digitized, "20194") == (2, 4, Decimal("50.00"), "below_target", 2)
    assert got(digitized, "20197") == (0, 1, Decimal("0.00"), "below_target", 3)
    assert got(digitized, "20350") == (1, 1, Decimal("100.00"), "met", 1)
    # province: 2+0+1 of 4+1+1, plus P1, P2 digitized -> 5/8
    assert got(digitized, "48") == (5, 8, Decimal("62.50"), "below_target", None)

    # null-commune dossiers only at province level: commune rows sum to the province minus P*
    for code, p_num, p_den in ((online, 2, 3), (ontime, 1, 2), (digitized, 2, 2)):
        communes = [r for (c, _), r in v.items() if c == code and r["admin_level"] == "commune"]
        assert sum(r["numerator"] for r in communes) + p_num == v[(code, "48")]["numerator"]
        assert sum(r["denominator"] or 0 for r in communes) + p_den == v[(code, "48")]["denominator"]


def test_later_version_replaces_and_older_does_not(warehouse_db):
    conn = migrated(warehouse_db)
    run_batch(conn, warehouse_db, SOURCE, AS_OF - dt.timedelta(days=1),
              [[open_("U1", updated_at="2026-03-02T09:00:00+07:00")] + FILLER[:50]], run_id="r1")
    # next window: U1 completed (newer), and a stale copy of U1 alone in a third batch
    run_batch(conn, warehouse_db, SOURCE, AS_OF, [[dos("U1", updated_at="2026-03-04T10:00:05+07:00")]], run_id="r2")
    run_batch(conn, warehouse_db, SOURCE, AS_OF + dt.timedelta(days=1),
              [[open_("U1", updated_at="2026-03-03T09:00:00+07:00")]], run_id="r3")
    with conn.cursor() as cur:
        cur.execute("SELECT status, completed_on FROM core.public_services WHERE dossier_id = 'U1'")
        assert cur.fetchone() == ("completed", dt.date(2026, 3, 4))
    conn.commit()
