"""Precompute speed on the shared dataset: prints numbers and ratios measured in one run.

    python benchmarks/precompute.py [--dataset PATH] [--precision fp32|bf16] [--workers N]
                                    [--naive-images 120]
    python benchmarks/precompute.py --sizes 1000 4000 [16000] [--workers N] [--tmp DIR]

`--sizes`: at each size N, N *distinct* images (copies of the collection's frontal images, each
with a comment naming its copy: a JPEG COM segment or a PNG tEXt chunk, so its bytes and
hash differ while its pixels and decoding cost are the original's) are built by the CLI, in a
process of its own, from an empty cache: images/s end to end against the model-only ceiling and
the decode-only rate measured in the same run, the limit of this machine (model and decoders
sharing its cores) and peak RSS at each size (scale.py).

Measures, on the same images: the naive torchxrayvision loop (per image: read, normalize, crop,
resize, model at batch 1, fp32), the model-only ceiling (preloaded tensors, best batch size, at the
chosen precision), the end-to-end cold run (empty cache), a warm re-run (same cache), and peak
memory. Random weights: speed does not depend on their values.
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATASET = ROOT.parent / "shared" / "data" / "covid-chestxray-dataset"


def present_frontal_paths(dataset) -> list:
    from cxrviz.data.covid import read_covid

    paths = read_covid(dataset).frame["path"].drop_duplicates()
    return [p for p in paths if Path(p).is_file()]


def naive_loop(paths, model) -> float:
    """torchxrayvision's documented per-image recipe; returns images/s."""
    import skimage.io
    import torch
    import torchxrayvision as xrv

    start = time.perf_counter()
    for p in paths:
        img = xrv.datasets.normalize(skimage.io.imread(p), 255)
        if img.ndim > 2:
            img = img[:, :, 0]
        img = xrv.datasets.XRayCenterCrop()(img[None])
        img = xrv.datasets.XRayResizer(224)(img)
        with torch.no_grad():
            model.classifier(model.features2(torch.from_numpy(img)[None]))
    return len(paths) / (time.perf_counter() - start)


def model_ceiling(inputs, embedder_factory, batch_sizes=(8, 16, 32)) -> tuple:
    best = (0.0, None)
    for bs in batch_sizes:
        emb = embedder_factory(bs)
        emb.embed(inputs[:bs])  # warm-up
        start = time.perf_counter()
        emb.embed(inputs)
        rate = len(inputs) / (time.perf_counter() - start)
        print(f"  model only, batch {bs:>2}: {rate:6.1f} img/s")
        best = max(best, (rate, bs))
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default=str(DEFAULT_DATASET))
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--workers", type=int, default=None,
                    help="decoding processes (default: the device default, see cxrviz.compute.device)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--naive-images", type=int, default=120)
    ap.add_argument("--ceiling-images", type=int, default=160)
    ap.add_argument("--sizes", type=int, nargs="+",
                    help="distinct-image runs at these sizes instead (see the module's docstring)")
    ap.add_argument("--tmp", default=None, help="where --sizes writes its copies (default /tmp)")
    ap.add_argument("--prefill", action="store_true",
                    help="--sizes: memory only (the cache filled with random outputs first, so "
                         "the model never runs)")
    ap.add_argument("--decode-images", type=int, default=240,
                    help="--sizes: images for the decode-only rates")
    args = ap.parse_args()
    if args.sizes:
        from benchmarks.scale import run_sizes

        run_sizes(args)
        return

    import torch

    from cxrviz.compute.features import prepare_file
    from cxrviz.compute.model import load_embedder
    from precompute.pipeline import Config, build_artifact

    paths = present_frontal_paths(args.dataset)
    print(f"dataset: {args.dataset}: {len(paths)} distinct frontal image files; "
          f"torch threads {torch.get_num_threads()}, precision {args.precision}")

    emb = load_embedder("random", precision="fp32", batch_size=1)
    naive = naive_loop(paths[:args.naive_images], emb.model)
    print(f"naive torchxrayvision loop (fp32, batch 1, {args.naive_images} images): "
          f"{naive:.1f} img/s")

    inputs = np.stack([prepare_file(p)[0] for p in paths[:args.ceiling_images]])
    ceiling, best_bs = model_ceiling(
        inputs, lambda bs: load_embedder("random", precision=args.precision, batch_size=bs))
    print(f"model-only ceiling ({args.precision}): {ceiling:.1f} img/s at batch {best_bs}")
    if args.precision == "bf16":  # how far bf16 logits drift from fp32, on the same inputs
        ref = load_embedder("random", precision="fp32", batch_size=16).embed(inputs)[1]
        low = load_embedder("random", precision="bf16", batch_size=16).embed(inputs)[1]
        scale = np.abs(ref).max(axis=1, keepdims=True)
        rel = np.abs(low - ref) / scale
        print(f"bf16 vs fp32 logits (random weights, {len(inputs)} images): max |diff| / max "
              f"|logit| per image: median {np.median(rel.max(axis=1)):.2%}, worst {rel.max():.2%};"
              f" rank correlation of outputs per image: "
              f"{np.mean([np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1] for a, b in zip(ref, low)]):.3f}")

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config(dataset=args.dataset, out=f"{tmp}/covid", weights="random",
                     precision=args.precision, batch_size=args.batch_size, workers=args.workers,
                     cache_dir=f"{tmp}/cache", progress=False)
        build_artifact(Config(**{**cfg.__dict__, "limit": 8, "out": f"{tmp}/warmup",
                                 "cache_dir": f"{tmp}/warmup-cache"}))  # numba JIT, imports
        start = time.perf_counter()
        cold = build_artifact(cfg)
        cold_s = time.perf_counter() - start
        n = cold.computed
        e2e = n / cold.timings["features"]
        print(f"end-to-end cold: {cold_s:.1f} s total; features stage {cold.timings['features']:.1f}"
              f" s for {n} images = {e2e:.1f} img/s; stages {cold.timings}")
        start = time.perf_counter()
        warm = build_artifact(cfg)
        warm_s = time.perf_counter() - start
        print(f"warm re-run (in process): {warm_s:.2f} s, model runs {warm.computed}; "
              f"stages {warm.timings}")
        cli = [sys.executable, "-m", "precompute", "--dataset", args.dataset, "--out",
               f"{tmp}/covid", "--weights", "random", "--precision", args.precision,
               "--batch-size", str(args.batch_size), "--cache-dir", f"{tmp}/cache", "--quiet"]
        start = time.perf_counter()
        subprocess.run(cli, cwd=ROOT, check=True, capture_output=True)
        cli_s = time.perf_counter() - start
        print(f"warm re-run (CLI, new process incl. imports): {cli_s:.2f} s")

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: main {peak:.0f} MiB, largest child {peak_children:.0f} MiB")
    print("---- summary ----")
    print(f"end-to-end / naive loop      : {e2e / naive:.2f}x  (target >= 2.5x)")
    print(f"end-to-end / model ceiling   : {e2e / ceiling:.0%}  (target >= 70%, {args.precision})")
    print(f"warm / cold (in process)     : {warm_s / cold_s:.1%}  (target < 5%)")
    print(f"warm CLI / cold (in process) : {cli_s / cold_s:.1%}")


if __name__ == "__main__":
    main()
