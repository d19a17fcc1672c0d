"""UMAP at scale: fit time and peak memory on synthetic 18-d logits, fitting on all points and on
a seeded sample with the rest transformed (cxrviz.compute.embedding.fit_umap, the function
precompute calls).

    python benchmarks/umap_scale.py [--sizes 100000 400000] [--sample-at 400000]

Each case runs in a fresh process (so its peak RSS is its own): synthetic logits (a mixture of
30 correlated Gaussian clusters in 18-d, roughly the spread of the DenseNet's raw outputs), a
small warm-up fit (numba compiles UMAP's kernels once per process; not timed), then the timed
fit. Printed per case: wall and CPU seconds (the machine may be shared: CPU seconds are what
the fit itself costs), peak RSS of the process and its growth over the RSS just before the fit.
`--sample-at N` adds the default path beyond embedding.FIT_ALL_MAX: fit on FIT_ALL_MAX seeded
points, transform the other N - FIT_ALL_MAX.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synthetic_logits(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 2.5, size=(30, 18))
    mixing = rng.normal(0, 0.6, size=(30, 4, 18))  # each cluster: a 4-d correlated spread
    which = rng.integers(30, size=n)
    low = rng.normal(size=(n, 4))
    x = centers[which] + np.einsum("nk,nkd->nd", low, mixing[which])
    return (x + rng.normal(0, 0.3, size=(n, 18))).astype(np.float32)


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def one_case(n: int, fit_sample: int | None) -> dict:
    from cxrviz.compute.embedding import fit_umap

    logits = synthetic_logits(n)
    fit_umap(synthetic_logits(2000, seed=1))  # warm-up: numba compilation, not timed
    before = rss_mib()
    wall, cpu = time.perf_counter(), time.process_time()
    coords, params, fit = fit_umap(logits, fit_sample=fit_sample)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert np.isfinite(coords).all() and len(coords) == n
    return {"n": n, "n_fit": params["n_fit"], "n_transformed": params["n_transformed"],
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "peak_rss_mib": round(peak),
            "rss_before_fit_mib": round(before), "growth_mib": round(peak - before)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 400_000])
    ap.add_argument("--sample-at", type=int, default=400_000)
    ap.add_argument("--case", nargs=2, help=argparse.SUPPRESS)  # N FIT_SAMPLE|all (child)
    args = ap.parse_args()
    if args.case:
        n, sample = int(args.case[0]), args.case[1]
        print(json.dumps(one_case(n, None if sample == "default" else int(sample))))
        return
    from cxrviz.compute.embedding import FIT_ALL_MAX

    cases = [(n, str(n), "fit on all") for n in args.sizes]
    if args.sample_at:
        cases.append((args.sample_at, "default",
                      f"fit on a {FIT_ALL_MAX:,} sample, transform the rest"))
    for n, sample, what in cases:
        out = subprocess.run([sys.executable, __file__, "--case", str(n), sample],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{n:>9,} points, {what}: {r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} s CPU; "
              f"peak RSS {r['peak_rss_mib']:,} MiB ({r['growth_mib']:+,} MiB over the "
              f"{r['rss_before_fit_mib']:,} MiB before the fit); n_fit {r['n_fit']:,}, "
              f"transformed {r['n_transformed']:,}", flush=True)


if __name__ == "__main__":
    main()
