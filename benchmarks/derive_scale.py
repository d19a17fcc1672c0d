"""derive() at scale: where its time goes, and the binned density's error against the exact KDE.

    python benchmarks/derive_scale.py --n 50000 --from artifacts/covid [--profile] [--exact]

Synthetic images exactly as benchmarks/make_artifact.py draws them (metadata from a real
artifact, a map of 12 clusters). Prints derive's wall and CPU time and, with --profile, the CPU
time of each of its stages (cProfile on process time, cumulative, cxrviz functions only).

--exact: the density at every image and on the grid by the exact route too (sklearn
KernelDensity on all bad-state points, what derive used at every size before #16 and still uses
at or below density.EXACT_MAX_IMAGES), timed in the same run, and the binned route's error:
density percentile points (median / p95 / max over images), and the relative error of the
density itself. O(N x bad): minutes at 300k on one core.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.make_artifact import synthetic_inputs  # noqa: E402
from cxrviz import schema as S  # noqa: E402
from cxrviz.compute.density import BadStateDensity, percentile_of  # noqa: E402
from cxrviz.compute.derive import derive  # noqa: E402


def stage_times(profile: cProfile.Profile, top: int = 14) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out).sort_stats("cumulative")
    stats.print_stats(r"cxrviz", top)
    return out.getvalue()


def exact_error(derived, coords: np.ndarray) -> None:
    images = derived.images
    bad = (images[S.STATE] == S.STATE_BAD).to_numpy()
    cohort = (images[S.ROLE] == S.ROLE_COHORT).to_numpy()
    start = time.process_time()
    exact_kde = BadStateDensity().fit(coords[bad])
    exact = exact_kde.score(coords)
    exact_s = time.process_time() - start
    binned = images[S.BAD_DENSITY].to_numpy()
    pct_exact = percentile_of(exact, np.sort(exact[cohort]))
    pct_binned = images[S.DENSITY_PERCENTILE].to_numpy()
    points = np.abs(pct_binned - pct_exact)
    rel = np.abs(binned - exact) / exact.max()
    print(f"exact KDE at every image: {exact_s:.1f} s CPU ({bad.sum():,} bad-state points)")
    print(f"binned vs exact, density percentile points: median {np.median(points):.3f}, "
          f"p95 {np.percentile(points, 95):.3f}, max {points.max():.3f}")
    print(f"binned vs exact, density / the map's largest density: median {np.median(rel):.2e}, "
          f"p95 {np.percentile(rel, 95):.2e}, max {rel.max():.2e}")
    gx, gy = derived.density[S.DENSITY_X], derived.density[S.DENSITY_Y]
    mx, my = np.meshgrid(gx, gy)
    grid = exact_kde.score(np.column_stack([mx.ravel(), my.ravel()])).reshape(mx.shape)
    z = derived.density[S.DENSITY_Z]
    print(f"grid ({len(gy)}x{len(gx)}) binned vs exact / largest: max "
          f"{np.abs(z - grid).max() / grid.max():.2e}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--from", dest="source", help="a real artifact to draw metadata from")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--exact", action="store_true")
    args = ap.parse_args()
    images, xy, logits, pathologies = synthetic_inputs(args.n, args.source, args.seed)
    import KDEpy  # noqa: F401  imported before timing, as in precompute (umap imports sklearn)
    import sklearn.neighbors  # noqa: F401
    # CPU seconds as well as wall seconds: on a shared machine the wall clock measures the load
    profile = cProfile.Profile(time.process_time) if args.profile else None
    start, cpu = time.perf_counter(), time.process_time()
    if profile:
        profile.enable()
    derived = derive(images, xy, logits, pathologies)
    if profile:
        profile.disable()
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    bad = int((derived.images[S.STATE] == S.STATE_BAD).sum())
    print(f"derive, {len(images):,} images ({bad:,} bad, {len(derived.trajectories):,} edges, "
          f"{len(derived.patients):,} patients; density {derived.kde_params.get('method')}): "
          f"{took:.2f} s wall, {cpu:.2f} s CPU")
    if profile:
        print(stage_times(profile))
    if args.exact:
        exact_error(derived, xy)


if __name__ == "__main__":
    main()
