"""`--engine ray`: embed_files's decode and model steps on a Ray cluster, into the same cache.

The driver lists the files the cache cannot answer yet; Ray Data reads that list, CPU tasks
decode (the same `prepare_file` as the local engine) and store display images and skip reasons,
and an actor pool runs the embedder (built in each actor from the driver's weights spec) on
batches of exactly the spec's batch size and stores the outputs. Every entry lands in the
ResultCache under `features.cache_keys`, on a folder every node must reach (--cache-dir). The
driver then runs the local `embed_files`, which finds every image in the cache, so UMAP, derive
and the artifact are the local engine's; a killed run resumes from the cache as a local one does.

Ray is optional (requirements-ray.txt): nothing here imports it at module level.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from cxrviz.compute import killpoint
from cxrviz.compute.cache import ResultCache
from cxrviz.compute.features import cache_keys, embed_files as embed_local, prepare_file, \
    read_and_hash
from cxrviz.schema import DISPLAY_MAX_SIDE

INSTALL = "pip install -r requirements-ray.txt"
# A local instance on a small machine: Ray's default object store is 30% of RAM (7 GiB here);
# what flows through it is 200 KB per decoded image, a few batches at a time.
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20
ROWS_PER_BLOCK = 16  # paths per decode task: small enough to spread 40 images over 2 CPUs
MAX_MODEL_THREADS = 4  # torch threads per CPU actor; more actors rather than wider ones
# What one decoding task may hold (Ray measured up to 490 MiB per decoding worker on this
# collection: the worker itself, an image and its float copies). Reserving it also keeps decoding
# a pool of tasks of its own: Ray Data fuses a map into the next one when their resources match,
# and decoding inside the model actors would leave the other CPUs idle.
DECODE_MEMORY_BYTES = 1024 * 2**20


class RayUnavailable(RuntimeError):
    """--engine ray was asked for where Ray Data cannot be imported."""


def require_ray():
    """The ray module, or RayUnavailable saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is an extra of the ray package)
    except ImportError as exc:
        raise RayUnavailable(
            f"--engine ray needs Ray Data, which cannot be imported here ({exc}). Install it "
            f"into this Python with: {INSTALL}   (or use --engine local)") from None
    return ray


@contextmanager
def connected(address: str | None):
    """Ray for the length of one run: the cluster at `address`, or a local instance of this
    machine's CPUs with a small object store. What this call started it stops (ray.shutdown
    ends the local raylet, object store and workers); a Ray already initialised in this process
    (a caller's own ray.init) is used as it is and left running."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    if address:  # the nodes get this package from the driver; its requirements they must have
        package = str(Path(__file__).resolve().parents[1])
        ray.init(address=address, log_to_driver=True, runtime_env={"py_modules": [package]})
    else:  # "local": never attach to a cluster some other user started on this machine
        ray.init(address="local", object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                 include_dashboard=False, log_to_driver=True)
    try:
        yield ray
    finally:
        ray.shutdown()


def actor_plan(cluster: dict, device: str = "cpu") -> dict:
    """How many model actors, what each reserves and what a decoding task reserves, from
    ray.cluster_resources().

    Half the CPUs run models (actors of up to MAX_MODEL_THREADS torch threads), the other half
    decode, one CPU per task; a 2-CPU instance gets one 1-thread actor and one decoding task at
    a time, a 1-CPU one half a CPU each (a whole CPU for the actor would leave none to decode,
    and the run would wait forever). `device` is the weights spec's device class: for cuda one
    actor per GPU of the cluster, each reserving one (a cluster without GPUs is an error, not a
    silent CPU run: CPU and GPU outputs never share a cache key).
    """
    cpus = float(cluster.get("CPU", 1))
    if device == "cuda":
        gpus = int(cluster.get("GPU", 0))
        if gpus < 1:
            raise RuntimeError("the weights spec asks for CUDA, but the Ray cluster has no GPU "
                               "(use --device cpu, or a cluster with GPUs)")
        return {"actors": gpus, "num_cpus": 1, "threads": 1, "decode_cpus": 1, "num_gpus": 1}
    if cpus < 2:
        return {"actors": 1, "num_cpus": cpus / 2, "threads": 1, "decode_cpus": cpus / 2,
                "num_gpus": 0}
    threads = max(1, min(MAX_MODEL_THREADS, int(cpus) // 2))
    return {"actors": max(1, (int(cpus) // 2) // threads), "num_cpus": threads,
            "threads": threads, "decode_cpus": 1, "num_gpus": 0}


def _missing(path: str, spec, cache: ResultCache, display_size):
    """(features key, display key, skip key, outputs cached?) of an image the cache cannot
    answer yet; None for one it can (a cached skip, or outputs and display image both cached)
    and for an unreadable file (the driver's embed_files records why it was skipped)."""
    sha, reason = read_and_hash(path)
    if reason:
        return None
    fkey, dkey, skey = cache_keys(sha, spec, display_size)
    if cache.get_bytes("skip", skey, ".txt") is not None:
        return None
    has_outputs = cache.get_arrays("features", fkey) is not None
    if has_outputs and (dkey is None or cache.has("display", dkey, ".jpg")):
        return None
    return fkey, dkey, skey, has_outputs


def _decode(batch: dict, cache_root: str, spec, display_size):
    """One Ray task: paths -> a batch of the model inputs the cache lacks (none yielded when it
    lacks none: Ray cannot type an empty tensor column).

    embed_files's decisions: what the cache holds by now is passed over (another run may have
    put it there), a decode failure is cached as a skip, a display image cached on decoding."""
    cache = ResultCache(cache_root)
    paths, keys, inputs = [], [], []
    for path in map(str, batch["path"]):
        missing = _missing(path, spec, cache, display_size)
        if missing is None:
            continue
        fkey, dkey, skey, has_outputs = missing
        arr, jpeg, reason = prepare_file(path, display_size)
        if reason:
            cache.put_bytes("skip", skey, reason.encode(), ".txt")
            continue
        if dkey is not None:
            cache.put_bytes("display", dkey, jpeg, ".jpg")
        if not has_outputs:
            paths.append(path)
            keys.append(fkey)
            inputs.append(arr)
    if paths:
        yield {"path": np.array(paths), "key": np.array(keys), "input": np.stack(inputs)}


class _Embed:
    """A model actor: the driver's embedder rebuilt from its spec (random weights are checked
    against the spec's sha256, a file is found by it), storing outputs in the cache."""

    def __init__(self, spec, cache_root: str, threads: int):
        import torch

        from cxrviz.compute.model import embedder_from_spec
        from cxrviz import schema as S

        torch.set_num_threads(threads)
        given = spec.path if spec.kind == S.W_KIND_FILE else None  # the user named that file
        self.embedder = embedder_from_spec(spec, weights_path=given)
        if self.embedder.spec.signature != spec.signature:  # e.g. no such device on this node
            raise RuntimeError(f"this Ray node cannot run the weights spec as given ({spec.device}"
                               f", {spec.precision}): it would run {self.embedder.spec.device}, "
                               f"{self.embedder.spec.precision}")
        self.cache = ResultCache(cache_root)

    def __call__(self, batch: dict) -> dict:
        if len(batch["path"]):
            feats, logits = self.embedder.embed(np.asarray(batch["input"], np.float32))
            for key, f, l in zip(batch["key"], feats, logits):
                self.cache.put_arrays("features", str(key), features=f, logits=l)
        return {"path": batch["path"]}


def fill_cache(paths, embedder, cache: ResultCache, *, address: str | None = None,
               progress: bool = True, display_size=DISPLAY_MAX_SIDE) -> int:
    """Put every distinct path's outputs, display image or skip reason into `cache` on Ray;
    the number of images the model ran on. Only what the cache lacks goes to Ray (the driver
    hashes every file once for that: a sequential read of the collection on this machine)."""
    from tqdm import tqdm

    distinct = list(dict.fromkeys(str(p) for p in paths))
    todo = [p for p in tqdm(distinct, desc="look up", unit="img", disable=not progress,
                            leave=False)
            if _missing(p, embedder.spec, cache, display_size) is not None]
    if not todo:  # a re-run with everything cached starts no Ray
        return 0
    root = str(cache.root.resolve())
    with connected(address) as ray:
        from ray.data import ActorPoolStrategy, DataContext

        DataContext.get_current().enable_progress_bars = progress
        plan = actor_plan(ray.cluster_resources(), embedder.spec.device)
        ds = ray.data.from_items([{"path": p} for p in todo],
                                 override_num_blocks=math.ceil(len(todo) / ROWS_PER_BLOCK))
        ds = ds.map_batches(_decode, fn_kwargs={"cache_root": root, "spec": embedder.spec,
                                              "display_size": display_size},
                            batch_size=None, batch_format="numpy",
                            num_cpus=plan["decode_cpus"], memory=DECODE_MEMORY_BYTES)
        ds = ds.map_batches(_Embed, fn_constructor_kwargs={"spec": embedder.spec,
                                                           "cache_root": root,
                                                           "threads": plan["threads"]},
                            batch_size=embedder.spec.batch_size, batch_format="numpy",
                            compute=ActorPoolStrategy(size=plan["actors"]),
                            num_cpus=plan["num_cpus"], num_gpus=plan["num_gpus"] or None)
        computed = 0
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                for _ in batch["path"]:
                    computed += 1
                    killpoint.reached("features", computed)
        except ray.exceptions.RayError as exc:
            raise RuntimeError(f"the Ray run stopped ({type(exc).__name__}): {exc}") from None
    return computed


def embed_files(paths, embedder, cache: ResultCache, *, address: str | None = None,
                workers: int = 0, progress: bool = True, display_size=DISPLAY_MAX_SIDE):
    """embed_files's result, computed on Ray: the cache is filled there, then read here.

    `workers` is the local engine's and unused (Ray decides from the cluster's resources); the
    local pass that reads the cache computes nothing unless an image escaped the Ray run."""
    del workers
    computed = fill_cache(paths, embedder, cache, address=address, progress=progress,
                          display_size=display_size)
    result = embed_local(paths, embedder, cache, workers=0, progress=progress,
                         display_size=display_size)
    result.computed += computed
    result.from_cache -= computed
    return result

