"""Image files -> model outputs and display JPEGs, batched, cached, with decoding overlapped.

Decoding (PIL / pydicom, normalise, crop, skimage resize) runs in DataLoader worker processes
while the main process runs the model on full batches. Results land in the ResultCache after every
batch, so a killed run resumes where it stopped and a re-run recomputes nothing unchanged.
Workers die with the main process, even when it is killed with SIGKILL (_die_with_parent).
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from cxrviz.compute import killpoint
from cxrviz.compute.cache import ResultCache, key_of, sha256_bytes
from cxrviz.data.images import (DISPLAY_QUALITY, ImageSkip, decode_xray, display_jpeg,
                                model_input)
from cxrviz.schema import DISPLAY_MAX_SIDE, PREPROCESS_VERSION

NICE = 10
PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_POLL_S = 1.0
# Decoded images waiting for the model, over all workers: about two batches (each worker at
# least MIN_PREFETCH), so memory in flight does not grow with the number of workers.
INFLIGHT_BATCHES = 2
MIN_PREFETCH = 2


def display_version(size: int | None) -> str | None:
    """What decides a display JPEG besides the image (None: --display none, no JPEGs)."""
    return None if size is None else f"display-{int(size)}-q{DISPLAY_QUALITY}-v2"


DISPLAY_VERSION = display_version(DISPLAY_MAX_SIDE)


def cache_keys(sha: str, spec, display_size: int | None = DISPLAY_MAX_SIDE) -> tuple:
    """(features, display or None, skip) cache keys of the image whose bytes hash to `sha`.

    Every engine (embed_files here, cxrviz.compute.ray_engine) writes and reads the cache under
    these keys, so either finds what the other computed.
    """
    version = display_version(display_size)
    return (feature_key(sha, spec), None if version is None else key_of(sha, version),
            key_of(sha, PREPROCESS_VERSION))


def feature_key(image_sha256: str, spec) -> str:
    """The cache key of one image's model outputs: its bytes, and everything else that decides
    them (weights, precision, batch size, device class: WeightsSpec.signature; preprocessing)."""
    return key_of(image_sha256, spec.signature, PREPROCESS_VERSION)


class _Entries:
    """path -> cache key of its outputs; reads one entry at a time (the last one kept, so that
    features[p] and then logits[p] read the file once)."""

    def __init__(self, cache: ResultCache):
        self.cache, self.keys, self._last = cache, {}, (None, None)

    def load(self, path):
        if self._last[0] != path:
            arrays = self.cache.get_arrays("features", self.keys[path])
            if arrays is None:
                raise RuntimeError(f"the cache entry of {path} under {self.cache.root} vanished "
                                   "during the run (removed by something else); run again")
            self._last = (path, arrays)
        return self._last[1]


class CachedOutputs(Mapping):
    """path -> one output ('features' or 'logits') as stored in the cache, read on access: the
    run never holds every image's arrays (they stream to disk as they come; the artifact is
    assembled from the cache into its final arrays)."""

    def __init__(self, entries: _Entries, name: str):
        self._entries, self._name = entries, name

    def __getitem__(self, path):
        return self._entries.load(path)[self._name]

    def __iter__(self):
        return iter(self._entries.keys)

    def __len__(self):
        return len(self._entries.keys)


class CachedFiles(Mapping):
    """path -> the cached display JPEG's file (copied into the artifact, never read whole)."""

    def __init__(self, cache: ResultCache):
        self.cache, self.keys = cache, {}

    def __getitem__(self, path):
        return self.cache.path_of("display", self.keys[path], ".jpg")

    def __iter__(self):
        return iter(self.keys)

    def __len__(self):
        return len(self.keys)


@dataclass
class EmbedResult:
    """Per input path: outputs (mappings read from the cache), or the reason it was skipped."""

    # EmbedResult.over(cache): mappings that read the cache on access; plain dicts otherwise
    features: Mapping = field(default_factory=dict)  # path -> (1024,) float32
    logits: Mapping = field(default_factory=dict)  # path -> (k,) float32
    display: Mapping = field(default_factory=dict)  # path -> JPEG (a file, or bytes)
    skipped: dict = field(default_factory=dict)  # path -> reason
    computed: int = 0  # images that went through the model in this run
    from_cache: int = 0

    @classmethod
    def over(cls, cache: ResultCache) -> "EmbedResult":
        entries = _Entries(cache)
        return cls(CachedOutputs(entries, "features"), CachedOutputs(entries, "logits"),
                   CachedFiles(cache))

    def add(self, path, feature_key_: str, display_key: str | None) -> None:
        self.features._entries.keys[path] = feature_key_
        if display_key is not None:
            self.display.keys[path] = display_key


def read_and_hash(path: str):
    """(bytes' sha256, None) or (None, reason) without keeping the bytes around."""
    try:
        with open(path, "rb") as fh:
            return sha256_bytes(fh.read()), None
    except FileNotFoundError:
        return None, "image file not found (listed in the metadata, absent from the folder)"
    except IsADirectoryError:
        return None, "path is a directory, not an image file"
    except OSError as exc:
        return None, f"cannot read file: {exc.strerror or exc}"


def prepare_file(path: str, display_size: int | None = DISPLAY_MAX_SIDE):
    """Worker-side: decode one file -> (model input, display JPEG or None, None) or
    (None, None, reason). display_size None: no display JPEG (--display none)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        image = decode_xray(data)
        jpeg = None if display_size is None else display_jpeg(image, display_size)
        return model_input(image), jpeg, None
    except ImageSkip as exc:
        return None, None, str(exc)
    except OSError as exc:
        return None, None, f"cannot read file: {exc.strerror or exc}"
    except Exception as exc:  # one bad file never stops the run
        return None, None, f"cannot preprocess image: {type(exc).__name__}: {exc}"


class _Files:
    """A map-style dataset of paths, for torch's DataLoader."""

    def __init__(self, paths, display_size):
        self.paths, self.display_size = paths, display_size

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        arr, jpeg, reason = prepare_file(self.paths[i], self.display_size)
        return i, arr, jpeg, reason


def _worker_init(parent_pid: int, _worker_id: int):
    """One thread per decoder, at lower priority: the model's threads wait for each other."""
    import torch

    torch.set_num_threads(1)
    os.nice(NICE)
    _die_with_parent(parent_pid)


def _die_with_parent(parent_pid: int) -> None:
    """End this worker when the process that started it is gone.

    A main process killed with SIGKILL runs no clean-up, and torch's own check in the worker
    loop is not reached by a worker blocked on a full queue (its siblings keep the pipe open),
    so two ~500 MB decoders lived on, re-parented. Linux: the kernel sends SIGKILL when the
    parent dies (prctl PR_SET_PDEATHSIG). Everywhere, also: a thread that polls getppid() and
    exits at once (os._exit: a normal exit would wait on the dead parent's queues)."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        except (OSError, AttributeError):  # no prctl in this libc: the thread below suffices
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True,
                     name="cxrviz-parent-watch").start()


def _watch_parent(parent_pid: int, interval: float = PARENT_POLL_S) -> None:
    while os.getppid() == parent_pid:
        time.sleep(interval)
    os._exit(1)


def _keep_item(item):
    return item


def embed_files(paths, embedder, cache: ResultCache, *, workers: int = 1,
                progress: bool = True,
                display_size: int | None = DISPLAY_MAX_SIDE) -> EmbedResult:
    """Run every distinct path through the model once (or take it from the cache).

    Each batch's outputs go to the cache as soon as they exist; the result maps paths to cache
    entries (read on access), so memory does not grow with the number of images.
    display_size: the display JPEGs' long side, None for none.
    """
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    result = EmbedResult.over(cache)
    todo = []  # (path, feature key, display key)
    for path in tqdm(list(dict.fromkeys(paths)), desc="hash", unit="img", disable=not progress,
                     leave=False):
        sha, reason = read_and_hash(path)
        if reason:
            result.skipped[path] = reason
            continue
        fkey, dkey, skey = cache_keys(sha, embedder.spec, display_size)
        skip = cache.get_bytes("skip", skey, ".txt")
        if skip is not None:
            result.skipped[path] = skip.decode()
            continue
        if cache.get_arrays("features", fkey) is not None and (
                dkey is None or cache.has("display", dkey, ".jpg")):
            result.add(path, fkey, dkey)
            result.from_cache += 1
        else:
            todo.append((path, skey, fkey, dkey))
    if not todo:
        return result

    prefetch = max(MIN_PREFETCH, -(-INFLIGHT_BATCHES * embedder.spec.batch_size // max(workers, 1)))
    loader = DataLoader(_Files([t[0] for t in todo], display_size), batch_size=None,
                        shuffle=False, num_workers=workers, collate_fn=_keep_item,
                        worker_init_fn=partial(_worker_init, os.getpid()) if workers else None,
                        prefetch_factor=prefetch if workers else None,
                        persistent_workers=False)
    pending = []  # (todo index, model input)

    def flush():
        if not pending:
            return
        feats, logits = embedder.embed(np.stack([arr for _, arr in pending]))
        for (i, _), f, l in zip(pending, feats, logits):
            path, _, fkey, dkey = todo[i]
            cache.put_arrays("features", fkey, features=f, logits=l)
            result.add(path, fkey, dkey)
            result.computed += 1
            killpoint.reached("features", result.computed)
        bar.update(len(pending))
        pending.clear()

    with tqdm(total=len(todo), desc="embed", unit="img", disable=not progress) as bar:
        for i, arr, jpeg, reason in loader:
            path, skey, fkey, dkey = todo[i]
            if reason:
                cache.put_bytes("skip", skey, reason.encode(), ".txt")
                result.skipped[path] = reason
                bar.update(1)
                continue
            if dkey is not None:
                cache.put_bytes("display", dkey, jpeg, ".jpg")
            if cache.get_arrays("features", fkey) is not None:  # only the display was missing
                result.add(path, fkey, dkey)
                result.from_cache += 1
                bar.update(1)
                continue
            pending.append((i, arr))
            if len(pending) == embedder.spec.batch_size:
                flush()
        flush()
    return result
