"""The one way cxrviz hashes bytes and files (cache keys, artifact files, weights identity)."""
from __future__ import annotations

import hashlib

_BLOCK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path) -> str:
    """Streamed, so a 200 MB weights file never sits in memory."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()
