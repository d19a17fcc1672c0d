"""What checking an artifact's sha256 on every open costs, at a given size and scaled up.

    python benchmarks/artifact_open.py --artifact /tmp/cxrviz-30k [--scale-to 377000] [--runs 3]

- the artifact: the checked files hashed from scratch (what the first open does: cold), the
  check with the hash cache filled (what every later open does: cached), and the whole
  read_artifact (cached), so the check's share of opening is measured in the same run.
- --scale-to N: files of the sizes the checked files would have for N images (the given
  artifact's bytes per image times N; features.npy exactly N x 1024 float32), random bytes in a
  temporary folder, hashed cold and then checked through the cache. A real artifact of 377k
  images takes too long to build here; hashing costs depend only on the bytes.

"Cold" means not in cxrviz's hash cache; the files were just written or read, so they are in
the OS page cache: a first read from disk adds the disk's read time on top.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cxrviz import schema as S  # noqa: E402
from cxrviz.hashing import sha256_file, sha256_file_cached  # noqa: E402
from cxrviz.io.artifact import (CHECKED_FILES, read_artifact, read_manifest,  # noqa: E402
                                verify_files)


def timed(fn, runs: int) -> float:
    """Median seconds of `runs` calls."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def mb(nbytes: int) -> str:
    return f"{nbytes / 2**20:,.0f} MB"


def measure_artifact(path: Path, runs: int) -> None:
    sizes = {name: (path / name).stat().st_size for name in CHECKED_FILES}
    cold = timed(lambda: [sha256_file(path / name) for name in CHECKED_FILES], runs)
    manifest = read_manifest(path)
    verify_files(path, manifest)  # fills the cache
    cached = timed(lambda: verify_files(path, manifest), max(runs, 20))
    whole = timed(lambda: read_artifact(path), runs)
    n = len(read_artifact(path).images)
    print(f"{path.name}: {n:,} images, checked files {mb(sum(sizes.values()))} "
          f"(features.npy {mb(sizes[S.FEATURES_FILE])})")
    print(f"  cold hash {cold:.2f} s ({sum(sizes.values()) / cold / 2**20:,.0f} MB/s); cached "
          f"check {cached * 1e3:.1f} ms; read_artifact with the cache {whole:.2f} s (the check "
          f"is {cached / whole:.1%} of it; hashing every open would add {cold / whole:.0%})")


def measure_scaled(path: Path, n_target: int, runs: int) -> None:
    n = len(read_artifact(path).images)
    target = {name: int((path / name).stat().st_size * n_target / n) for name in CHECKED_FILES}
    target[S.FEATURES_FILE] = 128 + n_target * 1024 * 4
    with tempfile.TemporaryDirectory(prefix="cxrviz-hash-", dir="/tmp") as tmp:
        files = []
        for name, size in target.items():
            f = Path(tmp) / name
            with open(f, "wb") as fh:
                left = size
                while left:
                    block = os.urandom(min(left, 64 << 20))
                    fh.write(block)
                    left -= len(block)
            files.append(f)
        cold = timed(lambda: [sha256_file(f) for f in files], runs)
        for f in files:
            sha256_file_cached(f)  # fills the cache
        cached = timed(lambda: [sha256_file_cached(f) for f in files], max(runs, 20))
        total = sum(target.values())
        print(f"same-size files for {n_target:,} images: {mb(total)} (features.npy "
              f"{mb(target[S.FEATURES_FILE])}, images.parquet {mb(target[S.IMAGES_FILE])})")
        print(f"  cold hash {cold:.2f} s ({total / cold / 2**20:,.0f} MB/s); cached check "
              f"{cached * 1e3:.1f} ms ({cold / cached:,.0f}x less)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifact", required=True)
    ap.add_argument("--scale-to", type=int, help="also time same-size files for N images")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cxrviz-bench-cache-") as cache:
        os.environ["XDG_CACHE_HOME"] = cache  # the user's own hash cache stays untouched
        path = Path(args.artifact).expanduser().resolve()
        measure_artifact(path, args.runs)
        if args.scale_to:
            measure_scaled(path, args.scale_to, args.runs)


if __name__ == "__main__":
    main()
