"""Local engine vs --engine ray on this machine: the same N distinct images, both engines cold
(each with an empty cache of its own), in one run; prints images/s and the ratio.

    python benchmarks/ray_overhead.py [--dataset PATH] [--n 200] [--workers 2]

What is timed is embedding (decode + model + cache writes), the stage the engines differ in:
the local engine's embed_files vs ray_engine.embed_files (which includes starting and stopping a
local Ray instance of this machine's CPUs, reported apart, and the local pass that reads its
results back from the cache). Then a warm re-run of each (everything cached), and how far the
two engines' features differ (their model threads differ: see README, "A cluster"). Random
weights: speed does not depend on their values.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATASET = ROOT.parent / "shared" / "data" / "covid-chestxray-dataset"


def distinct_paths(dataset, n: int) -> list:
    """The first n frontal images of the collection whose bytes differ (the cache is keyed by
    content, so two copies of one file would be one image)."""
    from cxrviz.compute.features import read_and_hash
    from cxrviz.data.covid import read_covid

    seen, out = set(), []
    for path in read_covid(dataset).frame["path"].drop_duplicates():
        sha, reason = read_and_hash(path)
        if reason is None and sha not in seen:
            seen.add(sha)
            out.append(path)
        if len(out) == n:
            return out
    raise SystemExit(f"only {len(out)} distinct readable images in {dataset}; ask for fewer")


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default=str(DEFAULT_DATASET))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2, help="the local engine's decoders")
    args = ap.parse_args()

    import ray

    from cxrviz.compute import ray_engine
    from cxrviz.compute.cache import ResultCache
    from cxrviz.compute.features import embed_files
    from cxrviz.compute.model import load_embedder

    paths = distinct_paths(args.dataset, args.n)
    embedder = load_embedder("random")
    embedder.model  # built before the clock starts, as a run's "weights" stage does
    n = len(paths)
    print(f"{n} distinct images, batch {embedder.spec.batch_size}, fp32, CPU")
    with tempfile.TemporaryDirectory(prefix="cxrviz-ray-bench-") as tmp:
        local_cache, ray_cache = ResultCache(Path(tmp) / "local"), ResultCache(Path(tmp) / "ray")
        local, t_local = timed(lambda: embed_files(paths, embedder, local_cache,
                                                   workers=args.workers, progress=False))
        _, t_start = timed(lambda: ray.init(address="local", include_dashboard=False,
                                            object_store_memory=ray_engine
                                            .LOCAL_OBJECT_STORE_BYTES))
        plan = ray_engine.actor_plan(ray.cluster_resources())
        _, t_stop = timed(ray.shutdown)
        on_ray, t_ray = timed(lambda: ray_engine.embed_files(paths, embedder, ray_cache,
                                                             progress=False))
        _, t_local_warm = timed(lambda: embed_files(paths, embedder, local_cache,
                                                    workers=args.workers, progress=False))
        _, t_ray_warm = timed(lambda: ray_engine.embed_files(paths, embedder, ray_cache,
                                                             progress=False))
    assert local.computed == n and on_ray.computed == n, (local.computed, on_ray.computed)
    a = np.stack([local.features[p] for p in paths])
    b = np.stack([on_ray.features[p] for p in paths])
    drift = float(np.abs(a - b).max() / np.abs(a).max())
    print(f"Ray plan on this machine: {plan}")
    print(f"local engine ({args.workers} decoders):  {n / t_local:6.1f} img/s ({t_local:.1f} s)")
    print(f"--engine ray (local instance): {n / t_ray:6.1f} img/s ({t_ray:.1f} s), of which "
          f"Ray start ~{t_start:.1f} s and stop ~{t_stop:.1f} s (measured apart)")
    print(f"ray / local time: {t_ray / t_local:.2f}x; without start and stop: "
          f"{(t_ray - t_start - t_stop) / t_local:.2f}x")
    print(f"warm re-run (all cached): local {t_local_warm:.1f} s, ray {t_ray_warm:.1f} s")
    print(f"features, ray vs local: max |diff| = {drift:.1e} of the largest feature "
          f"({'identical' if np.array_equal(a, b) else 'not bit-identical'})")


if __name__ == "__main__":
    main()
