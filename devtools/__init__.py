"""Development tooling (not part of the DAG package): the embedded PostgreSQL for demo, tests and benchmarks."""
