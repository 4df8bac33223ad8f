"""Failure reasons in their two lengths (docs/ioc_views.md, `last_error`; docs/operations.md).

A failure is a list of reasons, one per failed file or check. The full list, one reason per
line, goes to the task log, the launcher's output and `audit.source_run.error_detail` /
`audit.batch.error_detail` (Data Docs shows it). The short text, at most SHORT_LIMIT
characters, goes to `audit.*.error` and from there to `ioc.source_freshness.last_error`: whole
reasons joined by "; ", then "(+N more)" for the ones that did not fit. A single reason longer
than the limit is cut at a word boundary and ends with "…". Never cut mid-word.
"""
from __future__ import annotations

from collections.abc import Iterable

SHORT_LIMIT = 500
SEPARATOR = "; "
ELLIPSIS = "…"


def reasons(failure: str | Iterable[str] | None) -> list[str]:
    """The reasons of a failure: a text's non-empty lines, or a list's non-empty items."""
    if failure is None:
        return []
    lines = failure.splitlines() if isinstance(failure, str) else [
        line for item in failure for line in str(item).splitlines()]
    return [line.strip() for line in lines if line.strip()]


def full(failure: str | Iterable[str] | None) -> str | None:
    """Every reason, one per line (None when there is none)."""
    found = reasons(failure)
    return "\n".join(found) if found else None


def short(failure: str | Iterable[str] | None, limit: int = SHORT_LIMIT) -> str | None:
    """At most `limit` characters: whole reasons, then "(+N more)"; None when there is none."""
    found = reasons(failure)
    if not found:
        return None
    kept: list[str] = []
    for i, reason in enumerate(found):
        left_after = len(found) - i - 1
        candidate = SEPARATOR.join([*kept, reason]) + _more(left_after)
        if len(candidate) <= limit:
            kept.append(reason)
            continue
        if not kept:   # the first reason alone is too long: cut it at a word
            more = _more(left_after)
            return cut_at_word(reason, limit - len(more)) + more
        return SEPARATOR.join(kept) + _more(len(found) - i)
    return SEPARATOR.join(kept)


def cut_at_word(text: str, limit: int) -> str:
    """`text` if it fits, else its longest prefix ending at a word boundary, plus "…"."""
    if len(text) <= limit:
        return text
    room = max(limit - len(ELLIPSIS), 1)
    head = text[:room + 1]   # one more character: is the cut itself at a space?
    cut = head.rfind(" ")
    head = text[:cut] if cut > room // 2 else text[:room]   # no space in sight: a long token, cut it
    return head.rstrip(" ;,:|-") + ELLIPSIS


def _more(n: int) -> str:
    return f" (+{n} more)" if n else ""
