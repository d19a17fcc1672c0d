"""UMAP of the 18 logits, with the paper's parameters, seeded: fit in precompute, transform from
stored arrays.

The artifact keeps no reducer object (a pickle would run code when loaded). Placing a new image
needs what umap-learn's `UMAP.transform` needs: the fit set's logits and embedding (images.parquet;
beyond FIT_ALL_MAX images the fit set is a seeded sample, marked by the `umap_fit` column, and the
other images were placed by umap-learn's transform) and the parameters (the manifest's `umap`
entry, read from the fitted reducer). `StoredUmap`
runs umap-learn's own steps of `transform` (0.5.x) on those: exact k nearest fit-set points,
smooth_knn_dist, compute_membership_strengths, init_graph_transform, make_epochs_per_sample,
optimize_layout_euclidean.
"""
from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass

import numpy as np

from cxrviz import schema as S

N_NEIGHBORS = 30
MIN_DIST = 0.5
SEED = 0
# What transform reads, named as umap.UMAP's own attributes. Artifacts written before these were
# recorded (schema 2 with umap.joblib) were fitted with umap-learn's defaults and
# transform_seed = random_state: fill those in, and a, b as umap-learn derives them.
UMAP_DEFAULTS = {"spread": 1.0, "local_connectivity": 1.0, "repulsion_strength": 1.0,
                 "learning_rate": 1.0, "negative_sample_rate": 5, "n_epochs": None}


# Fit on every point up to this many; beyond it on a seeded sample of this many, and transform
# the rest (README "UMAP and derive at scale": measured fit time and memory at 100k and 400k).
FIT_ALL_MAX = 100_000


_UMAP_MODULES = ("umap.umap_", "umap.layouts", "umap.utils", "umap.distances", "umap.spectral",
                 "umap.sparse", "pynndescent.pynndescent_", "pynndescent.utils",
                 "pynndescent.distances", "pynndescent.rp_trees", "pynndescent.sparse")


def umap_with_cached_compiles():
    """umap-learn, with numba's on-disk cache turned on for its compiled functions that do not
    ask for it (-> the `umap` module).

    umap-learn compiles its nearest-neighbour and graph functions (`fast_knn_indices`,
    `smooth_knn_dist`, `compute_membership_strengths`, parallel loops) on their first call in
    every process and caches few of them: about 17 s of compiling before the first fit of even
    24 points on this project's CPUs, in every precompute and placement process. With the cache
    on, the second process reads the machine code numba wrote the first time (0.1 s). The code
    compiled is the same; only where it comes from changes. If numba's dispatcher API ever
    differs, the functions stay as umap-learn made them (compiled per process)."""
    import umap

    _enable_umap_caches()
    return umap


@functools.cache  # once per process
def _enable_umap_caches() -> None:
    try:
        from numba.core.caching import NullCache
        from numba.core.registry import CPUDispatcher
    except ImportError:
        return
    for name in _UMAP_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for value in vars(module).values():
            if (isinstance(value, CPUDispatcher) and value.__module__ == name
                    and isinstance(getattr(value, "_cache", None), NullCache)):
                try:
                    value.enable_caching()
                except Exception:  # noqa: BLE001 - an uncacheable function stays as it was
                    pass


def fit_mask(n: int, fit_sample: int | None = None, seed: int = SEED) -> np.ndarray:
    """Which of n rows UMAP is fitted on (bool mask): all of them when n <= FIT_ALL_MAX and no
    sample size is asked for, else a seeded uniform sample of `fit_sample` (default
    FIT_ALL_MAX) rows. The mask itself is stored (images.parquet's `umap_fit`), so a reader never
    depends on numpy drawing the same sample again."""
    size = n if fit_sample is None and n <= FIT_ALL_MAX else min(fit_sample or FIT_ALL_MAX, n)
    if size < 4:
        raise ValueError(f"UMAP needs at least 4 points to fit on; asked for {size}")
    mask = np.zeros(n, bool)
    if size >= n:
        mask[:] = True
    else:
        mask[np.random.default_rng(seed).choice(n, size, replace=False)] = True
    return mask


def fit_umap(logits: np.ndarray, *, n_neighbors: int = N_NEIGHBORS, min_dist: float = MIN_DIST,
             seed: int = SEED, fit_sample: int | None = None):
    """-> (coords (n, 2) float32, params, fit (n,) bool): UMAP fitted on the rows of
    `fit_mask(n, fit_sample, seed)` and, when that is a sample, umap-learn's `transform` of the
    others (all at once: its epoch budget depends on how many rows are transformed together).
    params: what placement needs, read from the reducer, and the fit set (`fit_rows`: `all`, or
    the images.parquet column that marks it; `n_fit`, `fit_sample_seed`, `n_transformed`)."""
    umap = umap_with_cached_compiles()

    n = len(logits)
    if n < 4:
        raise ValueError(f"UMAP needs at least 4 embedded images; got {n}")
    fit = fit_mask(n, fit_sample, seed)
    n_fit = int(fit.sum())
    used_neighbors = min(n_neighbors, n_fit - 1)  # small runs (--limit) cannot have 30 neighbours
    reducer = umap.UMAP(n_components=2, n_neighbors=used_neighbors, min_dist=min_dist,
                        random_state=seed, transform_seed=seed, n_jobs=1)
    logits = np.asarray(logits, dtype=np.float32)
    coords = np.empty((n, 2), np.float32)
    coords[fit] = reducer.fit_transform(logits[fit])
    if n_fit < n:
        coords[~fit] = reducer.transform(logits[~fit])
    params = {"input": "logits", "n_components": 2, "n_neighbors": int(reducer._n_neighbors),
              "n_neighbors_requested": n_neighbors, "min_dist": float(reducer.min_dist),
              "random_state": reducer.random_state, "metric": reducer.metric,
              "umap_version": umap.__version__, "a": float(reducer._a), "b": float(reducer._b),
              "transform_seed": reducer.transform_seed,
              **{k: getattr(reducer, k) for k in UMAP_DEFAULTS},
              S.U_FIT_ROWS: S.U_FIT_ALL if n_fit == n else S.UMAP_FIT, S.U_N_FIT: n_fit,
              S.U_FIT_ALL_MAX: FIT_ALL_MAX, S.U_FIT_SAMPLE: fit_sample,
              S.U_SAMPLE_SEED: seed if n_fit < n else None, S.U_N_TRANSFORMED: n - n_fit}
    return coords, params, fit


def fit_set(images, params: dict) -> np.ndarray:
    """The rows of images.parquet the stored UMAP was fitted on (bool mask), as its manifest
    entry names them. Raises ValueError when the artifact does not hold that set."""
    rows = params.get(S.U_FIT_ROWS, S.U_FIT_ALL)
    if rows == S.U_FIT_ALL:
        mask = np.ones(len(images), bool)
    elif rows == S.UMAP_FIT and S.UMAP_FIT in images.columns:
        mask = images[S.UMAP_FIT].to_numpy(bool)
    else:
        raise ValueError(f"its UMAP was fitted on {rows!r}, which this artifact's images table "
                         "does not mark")
    expected = params.get(S.U_N_FIT, int(mask.sum()))
    if int(mask.sum()) != expected:
        raise ValueError(f"its UMAP was fitted on {expected} images; images.parquet marks "
                         f"{int(mask.sum())}")
    return mask


def placement_params(entry: dict) -> dict:
    """The manifest's umap entry with what older artifacts left implicit filled in.

    Raises ValueError naming what is missing or unsupported.
    """
    missing = [k for k in ("n_neighbors", "min_dist", "random_state") if k not in entry]
    if missing:
        raise ValueError(f"the manifest's umap entry lacks {missing}")
    if entry.get("metric", "euclidean") != "euclidean" or entry.get("n_components", 2) != 2:
        raise ValueError("only a 2-d Euclidean UMAP can place new images")
    params = {**UMAP_DEFAULTS, "transform_seed": entry["random_state"],
              S.U_FIT_ROWS: S.U_FIT_ALL, **entry}
    epochs = params["n_epochs"]
    if not (isinstance(params["n_neighbors"], int) and params["n_neighbors"] >= 2) or not (
            epochs is None or (isinstance(epochs, int) and 3 <= epochs <= 10000)):
        raise ValueError(f"the manifest's umap entry has n_neighbors {params['n_neighbors']!r} "
                         f"and n_epochs {epochs!r}: not what a fit writes")
    if "a" not in entry or "b" not in entry:
        from umap.umap_ import find_ab_params

        params["a"], params["b"] = (float(v) for v in
                                    find_ab_params(params["spread"], params["min_dist"]))
    return params


@dataclass(frozen=True)
class StoredUmap:
    """A fitted UMAP, as data: fit-set inputs (n, d), their embedding (n, 2), the parameters."""

    train: np.ndarray
    embedding: np.ndarray
    params: dict

    def __post_init__(self):
        if len(self.train) != len(self.embedding) or len(self.train) < 2:
            raise ValueError(f"UMAP fit set: {len(self.train)} inputs, {len(self.embedding)} "
                             "positions")
        object.__setattr__(self, "train", np.ascontiguousarray(self.train, np.float32))
        object.__setattr__(self, "embedding", np.ascontiguousarray(self.embedding, np.float32))

    def transform(self, X: np.ndarray) -> np.ndarray:
        """umap-learn 0.5's UMAP.transform for new rows X (m, d) -> (m, 2) float32.

        Its steps in its order, with one difference: the k nearest fit-set points are exact
        (umap-learn searches exactly below 4,096 fit points and approximately above).
        Rows transformed together share their epoch budget, as in umap-learn.
        """
        import scipy.sparse
        from sklearn.utils import check_random_state

        umap_with_cached_compiles()
        from umap.layouts import optimize_layout_euclidean
        from umap.umap_ import (INT32_MAX, INT32_MIN, compute_membership_strengths,
                                init_graph_transform, make_epochs_per_sample, smooth_knn_dist)

        from cxrviz.compute.neighbours import nearest

        p = self.params
        X = np.ascontiguousarray(X, np.float32)
        k = int(p["n_neighbors"])
        found = [nearest(self.train, row, k) for row in X]
        indices = np.array([i for i, _ in found], dtype=np.int32)
        dists = np.array([d for _, d in found], dtype=np.float32)
        sigmas, rhos = smooth_knn_dist(dists, float(k), local_connectivity=float(
            max(0.0, p["local_connectivity"] - 1.0)))
        rows, cols, vals, _ = compute_membership_strengths(indices, dists, sigmas, rhos,
                                                           bipartite=True)
        graph = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(len(X), len(self.train)))
        csr = graph.tocsr()
        csr.eliminate_zeros()
        embedding = init_graph_transform(csr, self.embedding)
        if p["n_epochs"] is None:
            n_epochs = 100 if len(X) <= 10000 else 30
        else:
            n_epochs = int(p["n_epochs"] // 3.0)
        graph.data[graph.data < (graph.data.max() / float(n_epochs))] = 0.0
        graph.eliminate_zeros()
        rng_state = check_random_state(p["transform_seed"]).randint(
            INT32_MIN, INT32_MAX, 3).astype(np.int64)
        return optimize_layout_euclidean(
            embedding, self.embedding.copy(), graph.row, graph.col, n_epochs, len(self.train),
            make_epochs_per_sample(graph.data, n_epochs), p["a"], p["b"], rng_state,
            p["repulsion_strength"], p["learning_rate"] / 4.0, p["negative_sample_rate"],
            p["random_state"] is None, verbose=False)
