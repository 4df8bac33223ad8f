"""One real pipeline run shared by the end-to-end tests that only read its result (the
two-day test continues from it, the IOC page's browser test reads the views it filled), so
`make test` runs the DAGs for D1 once instead of once per test."""
from __future__ import annotations

import pytest

from tests.e2e.test_pipeline_end_to_end import D1, make_run, open_stack


@pytest.fixture(scope="session")
def pipeline_run(make_session_database, tmp_path_factory):
    """The stack after `make run D1` (dict of open_stack plus "run1", the CompletedProcess).
    Tests that read it must compare with what the views hold when they run: the two-day test
    moves it on to D2."""
    with open_stack(make_session_database, tmp_path_factory.mktemp("e2e")) as stack:
        # one run serves several tests: a generous hang guard, so a busy runner does not fail them all
        yield {**stack, "run1": make_run(stack, D1, timeout=3600)}
