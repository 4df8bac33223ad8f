"""ioc_pipeline: the core of the Project 06 IOC data pipeline.

One package used by every DAG: extract in pages or chunks, COPY into UNLOGGED staging,
pseudonymise personal IDs before they reach the database, validate in PostgreSQL with the
source's Great Expectations suite, quarantine failing rows, and publish into the core
tables together with the audit ledger and the watermark in one transaction.
"""

import logging as _logging

# GX logs hundreds of INFO lines at import; whoever imports it first, keep them out of task logs.
_logging.getLogger("great_expectations").setLevel(_logging.WARNING)
