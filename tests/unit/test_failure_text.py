"""Failure reasons: the full list, and the short text of ioc.source_freshness.last_error."""
from ioc_pipeline import failure_text

FILES = [f"health/bhyt_visits_4801{n}_20261115.csv: column(s) missing from the header: patient_cccd"
         for n in range(6)]


def test_short_keeps_whole_reasons_and_counts_the_rest():
    text = failure_text.short(FILES, limit=300)
    assert len(text) <= 300
    kept = text.rsplit(" (+", 1)[0].split("; ")
    assert kept == FILES[:len(kept)]            # whole reasons only, in order
    assert text.endswith(f" (+{len(FILES) - len(kept)} more)")


def test_short_is_the_whole_text_when_it_fits():
    assert failure_text.short(FILES[:2]) == "; ".join(FILES[:2])
    assert failure_text.short("one line") == "one line"
    assert failure_text.short([]) is None and failure_text.short("  \n") is None


def test_a_single_long_reason_is_cut_at_a_word():
    reason = "validation failed: " + " ".join(f"expectation{n}" for n in range(100))
    text = failure_text.short(reason, limit=120)
    assert len(text) <= 120 and text.endswith("…")
    assert reason.startswith(text[:-1])
    assert reason[len(text) - 1] == " "          # the cut fell between two words


def test_a_long_first_reason_still_counts_the_others():
    long = "x.csv: " + "word " * 200
    text = failure_text.short([long, "y.csv: unreadable", "z.csv: unreadable"], limit=100)
    assert len(text) <= 100 and text.endswith("… (+2 more)")


def test_a_token_without_spaces_is_cut_hard():
    assert failure_text.cut_at_word("a" * 50, 10) == "a" * 9 + "…"


def test_full_keeps_every_reason_one_per_line():
    assert failure_text.full(FILES).splitlines() == FILES
    assert failure_text.full("first\n\n  second  ") == "first\nsecond"
    assert failure_text.full(None) is None
