"""The one way cxrviz hashes bytes and files (cache keys, artifact files, weights identity)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

_BLOCK = 1 << 20
# Files hashed through sha256_file_cached: one JSON in the user's cache folder, newest entries kept.
HASH_CACHE_NAME = "file-sha256.json"
HASH_CACHE_ENTRIES = 512


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path) -> str:
    """Streamed, so a 200 MB weights file never sits in memory."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def user_cache_dir() -> Path:
    """$XDG_CACHE_HOME/cxrviz, else ~/.cache/cxrviz: the user's, never inside an artifact."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "cxrviz"


def _identity(path: Path) -> tuple:
    """What changes whenever a file's bytes may have: device, inode, size, mtime and ctime (in ns).

    ctime is set by the kernel on every write and on every utime call, so a file rewritten and
    given back its old mtime still looks changed.
    """
    st = path.stat()
    return str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def sha256_file_cached(path) -> str:
    """sha256_file, remembered per file identity (_identity) in the user's cache folder.

    Opening a 377k-image artifact would otherwise re-read 1.6 GB on every start
    (benchmarks/artifact_open.py). The cache is a plain JSON written atomically; an unreadable
    or unwritable one only costs a re-hash.
    """
    path = Path(path).resolve()
    key = json.dumps(_identity(path))
    cache_file = user_cache_dir() / HASH_CACHE_NAME
    entries = _read_cache(cache_file)
    if key in entries:
        return entries[key]
    digest = sha256_file(path)
    if _identity(path) == tuple(json.loads(key)):  # unchanged while it was read
        entries = _read_cache(cache_file)  # another process may have added some meanwhile
        entries.pop(key, None)
        entries[key] = digest
        _write_cache(cache_file, dict(list(entries.items())[-HASH_CACHE_ENTRIES:]))
    return digest


def _read_cache(cache_file: Path) -> dict:
    try:
        entries = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items() if isinstance(v, str) and len(v) == 64}


def _write_cache(cache_file: Path, entries: dict) -> None:
    from cxrviz.compute.cache import atomic_write_bytes

    try:
        atomic_write_bytes(cache_file, json.dumps(entries).encode())
    except OSError:
        pass  # a read-only home: hashing still works, it is only not remembered
