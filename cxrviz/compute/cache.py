"""A content-addressed cache of per-image results, safe against a run killed at any moment.

Each entry is one small file named by the hash of everything that decides it (image bytes,
weights, preprocessing version, precision, batch size, device class). Files appear by atomic rename, so a killed
run leaves either a whole entry or none.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np

from cxrviz.hashing import sha256_bytes


def key_of(*parts) -> str:
    return sha256_bytes("|".join(str(p) for p in parts).encode())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultCache:
    def __init__(self, root):
        self.root = Path(root).expanduser()

    def _path(self, kind: str, key: str, suffix: str) -> Path:
        return self.root / kind / key[:2] / f"{key}{suffix}"

    def path_of(self, kind: str, key: str, suffix: str) -> Path:
        """Where an entry lives (whether or not it exists yet)."""
        return self._path(kind, key, suffix)

    def has(self, kind: str, key: str, suffix: str) -> bool:
        return self._path(kind, key, suffix).is_file()

    def get_arrays(self, kind: str, key: str):
        path = self._path(kind, key, ".npz")
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError):  # absent, or damaged by something other than us
            return None

    def put_arrays(self, kind: str, key: str, **arrays) -> None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(self._path(kind, key, ".npz"), buf.getvalue())

    def get_bytes(self, kind: str, key: str, suffix: str = ".bin"):
        try:
            return self._path(kind, key, suffix).read_bytes()
        except OSError:
            return None

    def put_bytes(self, kind: str, key: str, data: bytes, suffix: str = ".bin") -> None:
        atomic_write_bytes(self._path(kind, key, suffix), data)
