"""The IOC page's number and date formats (Vietnamese first) and its trend lines."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from ioc_web import i18n, pages


def test_vietnamese_and_english_numbers():
    assert i18n.indicator_value(Decimal("61.64"), "percent", "vi") == "61,64 %"
    assert i18n.indicator_value(Decimal("61.64"), "percent", "en") == "61.64 %"
    assert i18n.indicator_value(Decimal(1234567), "count", "vi") == "1.234.567"
    assert i18n.indicator_value(Decimal(1234567), "count", "en") == "1,234,567"
    assert i18n.indicator_value(None, "percent", "vi") == "–"
    # share_valid is a fraction in ioc.data_quality; the page multiplies before formatting
    assert i18n.indicator_value(Decimal("0.9731") * 100, "percent", "vi") == "97,31 %"


def test_changes_are_signed_and_in_points_for_percents():
    assert i18n.change(Decimal("1.5"), "percent", "vi") == "+1,50 điểm"
    assert i18n.change(Decimal("-0.25"), "percent", "en") == "−0.25 pts"
    assert i18n.change(Decimal(0), "count", "en") == "±0"
    assert i18n.change(None, "count", "vi") == "chưa có"


def test_dates():
    assert i18n.date(dt.date(2026, 11, 20), "vi") == "20/11/2026"
    assert i18n.date(dt.date(2026, 11, 20), "en") == "2026-11-20"


def test_sparkline_scales_to_its_range_and_thins_long_series():
    line = pages.sparkline([50.0, None, 100.0], width=100, height=20, target=100)
    assert line["points"] == "0.0,18.0 100.0,2.0" and line["target_y"] == 2.0
    year = pages.sparkline([float(i) for i in range(365)], max_points=70)
    points = year["points"].split()
    assert len(points) <= 70 and points[-1].startswith("140.0,")   # the last day is always drawn
    assert pages.sparkline([None, None])["points"] == ""


def test_flags_name_the_source_and_why():
    fresh = {"last_success_at": dt.datetime(2026, 11, 20, 20), "stale": False, "last_status": "success"}
    freshness = {"civil_status": fresh,
                 "health_visits": {"last_success_at": None, "stale": True, "last_status": "failed"},
                 "land": {**fresh, "last_status": "failed"}}
    assert pages.source_flags("civil_status", freshness, "vi") == []
    [never] = pages.source_flags("health_visits", freshness, "en")
    assert never.level == "never" and "health_visits" in never.text
    assert [f.level for f in pages.source_flags("land,civil_status", freshness, "vi")] == ["partial"]
    assert [f.level for f in pages.source_flags("tuition", freshness, "vi")] == ["never"]   # never ran at all
