"""Extraction from the sector sources: REST clients, SQL readers and landed files.

Extractors only fetch and check the *shape* of what a source sends; what the rows mean is
validated later, in PostgreSQL, by the source's expectation suite.
"""
