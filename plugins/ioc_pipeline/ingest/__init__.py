"""Ingest: the batch sequence (stage, dedupe, validate, publish) and its helpers."""
