"""Simulator fault switches: the CLI spec and the seeded decisions (no database needed)."""
from __future__ import annotations

import pytest

from simulator.faults import FaultDecider, Faults


def test_faults_parse_from_cli_spec():
    f = Faults.parse("503=0.1,429=0.05,slow=0.02,truncate=0.02,html=0.02,race=0.05,slow_seconds=3")
    assert (f.unavailable, f.throttled, f.slow, f.truncate, f.html, f.race, f.slow_seconds) == (
        0.1, 0.05, 0.02, 0.02, 0.02, 0.05, 3.0)
    assert Faults.parse("") == Faults()
    for bad in ("503", "404=0.1", "503=0.9,429=0.2", "race=-1"):
        with pytest.raises(ValueError):
            Faults.parse(bad)


def test_decider_is_reproducible_and_respects_rates():
    f = Faults.parse("503=0.25,429=0.25,seed=3")
    a, b = FaultDecider(f), FaultDecider(f)
    seq = [a.draw()[0] for _ in range(400)]
    assert seq == [b.draw()[0] for _ in range(400)]
    assert 60 < seq.count("unavailable") < 140 and 60 < seq.count("throttled") < 140
    assert seq.count(None) > 150 and "html" not in seq
    assert {FaultDecider(Faults()).draw()[0] for _ in range(50)} == {None}
