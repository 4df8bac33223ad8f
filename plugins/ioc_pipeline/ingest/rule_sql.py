"""How an `unexpected_rows_expectation` query is run: shared by validation (GX's rules, in a DAG)
and the analysts' suite check (EXPLAINed before any data is read), without importing GX."""
from __future__ import annotations


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def unexpected_rows_sql(query: str, qualified: str, row_id_column: str = "_row_id") -> str:
    """The SQL that runs an unexpected-rows query: (row id, rows returned for it), by id."""
    inner = query.format(batch=qualified).rstrip("; \t\r\n\v\f")  # GX's {batch}/{{ }} rules
    # newline before ")": a trailing "-- comment" in the query must not swallow the wrapper
    return f"SELECT q.{quote_ident(row_id_column)}, count(*) FROM ({inner}\n) AS q GROUP BY 1 ORDER BY 1"
