"""Pseudonymisation of personal identifiers (operations.md, "Personal data").

An ID is kept only as HMAC-SHA256 under the `ioc_pii_key` secret, so the same person joins
across sources without being readable, and only a masked form (`049*********`) is shown to
people who must fix a source.
"""
from __future__ import annotations

import functools
import hashlib
import hmac

# Hash of this fixed text identifies the key in the audit schema without revealing it, so a
# changed key is detected instead of silently splitting every person in two.
_FINGERPRINT_TEXT = b"ioc_pii_key fingerprint v1"


@functools.lru_cache(maxsize=4)
def _hmac_of(key: bytes) -> hmac.HMAC:
    return hmac.new(key, digestmod=hashlib.sha256)


def keyed_hash(key: bytes, value: str) -> str:
    """Hex HMAC-SHA256 of an identifier (already stripped and normalised by the caller). The
    key's HMAC state is built once and copied for each value: two IDs a row, a million rows."""
    h = _hmac_of(key).copy()
    h.update(value.encode("utf-8"))
    return h.hexdigest()


def key_fingerprint(key: bytes) -> str:
    return hmac.new(key, _FINGERPRINT_TEXT, hashlib.sha256).hexdigest()[:16]


def mask(value: str | None, keep: int = 3) -> str | None:
    """Keep the first `keep` characters (a CCCD's birth-registration province), star the rest."""
    if value is None:
        return None
    if len(value) <= keep:
        return "*" * len(value)
    return value[:keep] + "*" * min(len(value) - keep, 40)
