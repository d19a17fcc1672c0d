"""The GPU check (run by benchmarks/gpu_check.sh): precompute on a GPU, at each GPU precision.

    python benchmarks/gpu_check.py [--device cuda] [--n 2000] [--dataset PATH] [--drift-images 200]

1. N distinct images: copies of the collection's frontal images (benchmarks/scale.py), or, where
   the dataset is not on this machine, N synthetic 1024 px 8-bit PNGs (seeded noise and gradients:
   the decoding cost of a real PNG of that size, not its look).
2. Per precision (bf16 and fp16 on a GPU; fp32 and bf16 with --device cpu): a whole precompute
   build of the N images from an empty cache (images/s of its features stage, i.e. hash, decode,
   model, cache writes) against the model-only ceiling on that device (preloaded inputs, the
   device's default batch size), measured in the same run.
3. Logit drift against fp32 on the CPU, on the same preprocessed inputs: per image
   max |logit - reference| / max |reference logit| (random weights' logits are ~1000 in size,
   so this is relative to the logit scale), median and worst, and the rank correlation of the 18
   outputs; for fp32 on the GPU too (the drift between device classes at the same precision).
Random weights: speed does not depend on their values.
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

DATASETS = (ROOT.parent / "shared" / "data" / "covid-chestxray-dataset",
            ROOT / "shared" / "data" / "covid-chestxray-dataset",
            ROOT / "data" / "covid-chestxray-dataset")


def synthetic_dataset(n: int, out: Path) -> Path:
    """n distinct 1024 x 1024 8-bit PNGs in a covid-chestxray-dataset layout (PA, one patient
    each), for machines without the collection."""
    import pandas as pd
    from PIL import Image

    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:1024, 0:1024]
    base = (96 + 64 * np.sin(xx / 90.0) * np.cos(yy / 120.0)).astype(np.float32)
    rows = []
    for i in range(n):
        pixels = np.clip(base + rng.normal(0, 24, base.shape), 0, 255).astype(np.uint8)
        name = f"synthetic-{i:05d}.png"
        Image.fromarray(pixels).save(out / "images" / name, compress_level=6)
        rows.append({"patientid": f"s{i}", "offset": "", "sex": "", "age": "", "finding": "",
                     "RT_PCR_positive": "", "survival": "", "intubated": "",
                     "intubation_present": "", "went_icu": "", "in_icu": "", "needed_supplemental_O2": "",
                     "extubated": "", "temperature": "", "pO2_saturation": "", "leukocyte_count": "",
                     "neutrophil_count": "", "lymphocyte_count": "", "view": "PA",
                     "modality": "X-ray", "date": "", "location": "", "folder": "images",
                     "filename": name, "doi": "", "url": "", "license": "",
                     "clinical_notes": "", "other_notes": ""})
    pd.DataFrame(rows).to_csv(out / "metadata.csv", index=False)
    return out


def images(args, tmp: Path) -> Path:
    from benchmarks.scale import distinct_dataset

    found = next((d for d in ([Path(args.dataset)] if args.dataset else DATASETS)
                  if (d / "metadata.csv").is_file()), None)
    if found is None:
        print(f"dataset: not on this machine; {args.n} synthetic 1024 px PNGs", flush=True)
        return synthetic_dataset(args.n, tmp / "synthetic")
    print(f"dataset: {found}: {args.n} distinct copies of its frontal images", flush=True)
    return distinct_dataset(found, args.n, tmp / "distinct")


def ceiling(inputs, precision: str, device: str, batch: int, seconds: float = 5.0) -> float:
    """Model only: preloaded host inputs (copied to the device per batch, as in a run)."""
    import torch

    from cxrviz.compute.model import load_embedder

    emb = load_embedder("random", precision=precision, batch_size=batch, device=device)
    emb.embed(inputs[:batch])  # warm-up: allocations, kernel choice
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        emb.embed(inputs)
        done += len(inputs)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return done / (time.perf_counter() - start)


def drift(inputs, precision: str, device: str, reference) -> str:
    from cxrviz.compute.model import load_embedder

    logits = load_embedder("random", precision=precision, batch_size=16,
                           device=device).embed(inputs)[1]
    rel = np.abs(logits - reference).max(axis=1) / np.abs(reference).max(axis=1)
    ranks = [np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1]
             for a, b in zip(reference, logits)]
    return (f"median {np.median(rel):.3%}, worst {rel.max():.3%} of the largest logit "
            f"(|logit| median {np.median(np.abs(reference).max(axis=1)):.0f}); rank correlation "
            f"{np.mean(ranks):.4f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--dataset")
    ap.add_argument("--drift-images", type=int, default=200)
    ap.add_argument("--tmp", default=None)
    args = ap.parse_args()

    import torch

    from cxrviz.compute.device import (default_batch_size, device_class, device_name,
                                       resolve_device)
    from cxrviz.compute.features import prepare_file
    from cxrviz.compute.model import load_embedder
    from precompute.pipeline import Config, build_artifact

    started = time.perf_counter()
    device = resolve_device(args.device)
    gpu = device_class(device) != "cpu"
    precisions = ("bf16", "fp16") if gpu else ("fp32", "bf16")
    print(f"device {device} ({device_name(device)}), torch {torch.__version__}, default batch "
          f"{default_batch_size(device)}", flush=True)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        data = images(args, tmp)
        paths = sorted(str(p) for p in (data / "images").iterdir())
        inputs = np.stack([prepare_file(p, None)[0] for p in paths[:args.drift_images]])
        reference = load_embedder("random", batch_size=16).embed(inputs)[1]  # fp32, CPU
        batch = default_batch_size(device)
        tiled = np.concatenate([inputs] * max(1, -(-2 * batch // len(inputs))))
        rows = []
        for precision in precisions:
            top = ceiling(tiled, precision, device, batch)
            run = build_artifact(Config(dataset=str(data), out=str(tmp / f"out-{precision}"),
                                        weights="random", precision=precision, device=device,
                                        cache_dir=str(tmp / f"cache-{precision}"),
                                        progress=False))
            rate = run.computed / run.timings["features"]
            rows.append((precision, rate, top))
            print(f"{precision}: end to end {rate:.1f} img/s ({run.computed} images, features "
                  f"stage {run.timings['features']:.1f} s; stages {run.timings}) vs model-only "
                  f"ceiling {top:.1f} img/s = {rate / top:.0%}", flush=True)
            print(f"{precision}: drift vs fp32 on the CPU ({len(inputs)} images): "
                  f"{drift(inputs, precision, device, reference)}", flush=True)
        if gpu:
            print(f"fp32 on {device}: drift vs fp32 on the CPU: "
                  f"{drift(inputs, 'fp32', device, reference)}", flush=True)
    print(f"---- done in {time.perf_counter() - started:.0f} s ----")
    for precision, rate, top in rows:
        print(f"{precision}: {rate:.0f} img/s end to end, ceiling {top:.0f} img/s "
              f"({rate / top:.0%})")


if __name__ == "__main__":
    main()
