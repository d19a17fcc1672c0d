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
DISPLAY_VERSION = f"display-{DISPLAY_MAX_SIDE}-q{DISPLAY_QUALITY}-v2"


@dataclass
class EmbedResult:
    """Per input path: outputs, or the reason it was skipped."""

    features: dict = field(default_factory=dict)  # path -> (1024,) float32
    logits: dict = field(default_factory=dict)  # path -> (k,) float32
    display: dict = field(default_factory=dict)  # path -> JPEG bytes
    skipped: dict = field(default_factory=dict)  # path -> reason
    computed: int = 0  # images that went through the model in this run
    from_cache: int = 0


def cache_keys(sha: str, spec):
    """(features, display, skip) cache keys of the image whose bytes hash to `sha`.

    Every engine (this module's embed_files, cxrviz.compute.ray_engine) writes and reads the
    cache under these keys, so either finds what the other computed.
    """
    return (key_of(sha, spec.signature, PREPROCESS_VERSION), key_of(sha, DISPLAY_VERSION),
            key_of(sha, PREPROCESS_VERSION))


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


def prepare_file(path: str):
    """Worker-side: decode one file -> (model input, display JPEG, None) or (None, None, reason)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        image = decode_xray(data)
        return model_input(image), display_jpeg(image), None
    except ImageSkip as exc:
        return None, None, str(exc)
    except OSError as exc:
        return None, None, f"cannot read file: {exc.strerror or exc}"
    except Exception as exc:  # one bad file never stops the run
        return None, None, f"cannot preprocess image: {type(exc).__name__}: {exc}"


class _Files:
    """A map-style dataset of paths, for torch's DataLoader."""

    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        arr, jpeg, reason = prepare_file(self.paths[i])
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
                progress: bool = True) -> EmbedResult:
    """Run every distinct path through the model once (or take it from the cache)."""
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    result = EmbedResult()
    todo = []  # (path, feature key, display key)
    for path in tqdm(list(dict.fromkeys(paths)), desc="hash", unit="img", disable=not progress,
                     leave=False):
        sha, reason = read_and_hash(path)
        if reason:
            result.skipped[path] = reason
            continue
        fkey, dkey, skey = cache_keys(sha, embedder.spec)
        skip = cache.get_bytes("skip", skey, ".txt")
        if skip is not None:
            result.skipped[path] = skip.decode()
            continue
        cached = cache.get_arrays("features", fkey)
        jpeg = cache.get_bytes("display", dkey, ".jpg")
        if cached is not None and jpeg is not None:
            result.features[path], result.logits[path] = cached["features"], cached["logits"]
            result.display[path] = jpeg
            result.from_cache += 1
        else:
            todo.append((path, skey, fkey, dkey))
    if not todo:
        return result

    loader = DataLoader(_Files([t[0] for t in todo]), batch_size=None, shuffle=False,
                        num_workers=workers, collate_fn=_keep_item,
                        worker_init_fn=partial(_worker_init, os.getpid()) if workers else None,
                        prefetch_factor=2 * embedder.spec.batch_size if workers else None,
                        persistent_workers=False)
    pending = []  # (todo index, model input)

    def flush():
        if not pending:
            return
        feats, logits = embedder.embed(np.stack([arr for _, arr in pending]))
        for (i, _), f, l in zip(pending, feats, logits):
            path, _, fkey, _ = todo[i]
            cache.put_arrays("features", fkey, features=f, logits=l)
            result.features[path], result.logits[path] = f, l
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
            cache.put_bytes("display", dkey, jpeg, ".jpg")
            result.display[path] = jpeg
            cached = cache.get_arrays("features", fkey)
            if cached is not None:  # only the display image was missing
                result.features[path], result.logits[path] = cached["features"], cached["logits"]
                result.from_cache += 1
                bar.update(1)
                continue
            pending.append((i, arr))
            if len(pending) == embedder.spec.batch_size:
                flush()
        flush()
    return result
