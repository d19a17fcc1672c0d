"""python -m precompute --dataset [KIND:]PATH --out artifacts/covid [...]: build a map artifact."""
from __future__ import annotations

import argparse
import sys

from cxrviz.compute.embedding import FIT_ALL_MAX, MIN_DIST, N_NEIGHBORS

EXIT_USAGE, EXIT_INPUT, EXIT_WEIGHTS, EXIT_FAILED = 2, 3, 4, 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m precompute",
        description="Embed the COVID-19 CXR collection with torchxrayvision's DenseNet, project "
                    "with UMAP, derive states, trajectories and the bad-state density, and write "
                    "a versioned artifact for the cxrviz app.")
    from cxrviz import schema as S
    from precompute.sources import READERS

    def kinds(role):
        return "; ".join(f"{k}: {r.what}" for k, r in READERS.items() if r.role == role)

    p.add_argument("--dataset", required=True, metavar="[KIND:]PATH",
                   help=f"the cohort to map, KIND:PATH with KIND one of ({kinds(S.ROLE_COHORT)})"
                        "; a bare PATH is a covid-chestxray-dataset clone")
    p.add_argument("--mimic-iv", metavar="PATH",
                   help="MIMIC-IV 2.x / 3.x root (hosp/, icu/) for --dataset mimic:PATH: "
                        "episodes, ICU, ventilation, death")
    p.add_argument("--out", default="artifacts/covid", help="artifact folder to (re)write")
    p.add_argument("--reference", metavar="KIND:PATH",
                   help=f"a background cloud ({kinds(S.ROLE_REFERENCE)})")
    p.add_argument("--rsna", metavar="PATH", help="the same as --reference rsna:PATH")
    p.add_argument("--rsna-subset", choices=("pneumonia", "all"), default="pneumonia",
                   help="RSNA images to add as the reference cloud (default: pneumonia, as the "
                        "paper's figure)")
    p.add_argument("--weights", default="densenet121-res224-all",
                   help="a torchxrayvision weight name (from its cache folder; downloaded when "
                        "online), a local .pt file (release format or state_dict), or 'random' "
                        "(untrained, for tests)")
    p.add_argument("--weights-untrained", action="store_true",
                   help="record a local weights file as NOT pretrained (e.g. a test's own file)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="bf16 is ~2x faster on CPUs with bf16 support; fp16 runs on a GPU only; "
                        "logits drift slightly (see README)")
    p.add_argument("--device", default="auto", metavar="auto|cpu|cuda|cuda:N|mps",
                   help="where the model runs (default auto: the first CUDA GPU, else the CPU); "
                        "the device class is part of the cache key and the manifest")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per forward pass (default: 8 on the CPU, what fits a quarter of "
                        "the memory on a GPU)")
    p.add_argument("--workers", type=int, default=None,
                   help="decoding processes running beside the model (0: decode in-process; "
                        "default: the cores less what the model needs)")
    p.add_argument("--display", choices=("jpeg", "none"), default="jpeg",
                   help="none: no display JPEGs in the artifact; the app renders the source image "
                        "on a click while the dataset folder is reachable")
    p.add_argument("--display-size", type=int, default=S.DISPLAY_MAX_SIDE, metavar="PX",
                   help="long side of the display JPEGs (default %(default)s; 256 for archives)")
    p.add_argument("--features-dtype", choices=S.FEATURES_DTYPES, default="float32",
                   help="features.npy as float32 (default) or float16 (half the size)")
    p.add_argument("--seed", type=int, default=0, help="seed for UMAP and random weights")
    p.add_argument("--umap-neighbors", type=int, default=N_NEIGHBORS)
    p.add_argument("--umap-min-dist", type=float, default=MIN_DIST)
    p.add_argument("--umap-fit-sample", type=int, metavar="N",
                   help=f"fit UMAP on a seeded sample of N images and transform the rest "
                        f"(default: every image up to {FIT_ALL_MAX:,}, a sample of that many "
                        "beyond)")
    p.add_argument("--limit", type=int, help="use only the first N images of each source")
    p.add_argument("--cache-dir", help="per-image result cache (default: <out>/../.cache)")
    p.add_argument("--no-download", action="store_true",
                   help="never try to download weights; fail if they are not in the cache")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="ray: decode and embed with Ray Data (pip install -r "
                        "requirements-ray.txt); --cache-dir must then be a folder every node "
                        "reaches")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="--engine ray: the cluster to use (e.g. auto, or HOST:6379); default: "
                        "a Ray instance on this machine for this run")
    return p


def usable_device(text: str, precision: str) -> str:
    """The torch device to run on, or ValueError: a device this machine lacks ("cuda requested;
    this machine has: cpu"), or a precision that device class does not run."""
    from cxrviz.compute.device import device_class, resolve_device
    from cxrviz.weights import precision_problem

    device = resolve_device(text)
    problem = precision_problem(device_class(device), precision)
    if problem:
        raise ValueError(f"{problem} (device {device})")
    return device


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    from cxrviz.compute.model import WeightsUnavailable
    from cxrviz.data.base import ReaderError
    from cxrviz.data.covid import DatasetError
    from precompute.pipeline import Config, build_artifact

    if (args.batch_size is not None and args.batch_size < 1) or (
            args.workers is not None and args.workers < 0) or (
            args.limit is not None and args.limit < 1) or args.display_size < 32:
        print("error: --batch-size and --limit must be >= 1, --workers >= 0, --display-size "
              ">= 32", file=sys.stderr)
        return EXIT_USAGE
    try:
        device = usable_device(args.device, args.precision)
    except ValueError as exc:  # DeviceUnavailable, a malformed --device, fp16 on the CPU
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.precision == "bf16" and device == "cpu":
        from cxrviz.compute.device import cpu_bf16_is_native

        if not cpu_bf16_is_native():
            print("warning: this CPU has no fast bf16 path (oneDNN needs AVX-512 or AMX): bf16 "
                  "runs far slower than fp32 on it (README: under 1 img/s against 16.5 on an "
                  "AVX2 machine); --precision fp32 is the faster choice here",
                  file=sys.stderr)
    if args.umap_fit_sample is not None and args.umap_fit_sample < 4:
        print("error: --umap-fit-sample must be >= 4 (UMAP needs 4 points to fit on)",
              file=sys.stderr)
        return EXIT_USAGE
    if args.ray_address and args.engine != "ray":
        print("error: --ray-address goes with --engine ray", file=sys.stderr)
        return EXIT_USAGE
    if args.engine == "ray":
        from cxrviz.compute.ray_engine import RayUnavailable, require_ray

        try:
            require_ray()
        except RayUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    cfg = Config(dataset=args.dataset, out=args.out, reference=args.reference, rsna=args.rsna,
                 mimic_iv=args.mimic_iv, rsna_subset=args.rsna_subset,
                 weights=args.weights,
                 weights_pretrained=False if args.weights_untrained else None,
                 precision=args.precision, device=args.device, batch_size=args.batch_size,
                 workers=args.workers, features_dtype=args.features_dtype,
                 display_size=None if args.display == "none" else args.display_size,
                 seed=args.seed, umap_neighbors=args.umap_neighbors,
                 umap_min_dist=args.umap_min_dist, umap_fit_sample=args.umap_fit_sample,
                 limit=args.limit, cache_dir=args.cache_dir,
                 progress=not args.quiet, allow_download=not args.no_download)
    cfg.engine, cfg.ray_address = args.engine, args.ray_address
    try:
        cfg.sources()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        summary = build_artifact(cfg)
    except (DatasetError, ReaderError) as exc:  # ColumnError is a ReaderError
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except WeightsUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_WEIGHTS
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(summary.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
