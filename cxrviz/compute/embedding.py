"""UMAP of the 18 logits, with the paper's parameters, seeded; the reducer is kept for new images."""
from __future__ import annotations

import io

import numpy as np

N_NEIGHBORS = 30
MIN_DIST = 0.5
SEED = 0


def fit_umap(logits: np.ndarray, *, n_neighbors: int = N_NEIGHBORS, min_dist: float = MIN_DIST,
             seed: int = SEED):
    """-> (coords (n, 2) float32, fitted reducer, params actually used)."""
    import umap

    n = len(logits)
    if n < 4:
        raise ValueError(f"UMAP needs at least 4 embedded images; got {n}")
    used_neighbors = min(n_neighbors, n - 1)  # small runs (--limit) cannot have 30 neighbours
    reducer = umap.UMAP(n_components=2, n_neighbors=used_neighbors, min_dist=min_dist,
                        random_state=seed, transform_seed=seed, n_jobs=1)
    coords = reducer.fit_transform(np.asarray(logits, dtype=np.float32)).astype(np.float32)
    params = {"input": "logits", "n_components": 2, "n_neighbors": used_neighbors,
              "n_neighbors_requested": n_neighbors, "min_dist": min_dist, "random_state": seed,
              "metric": "euclidean", "umap_version": umap.__version__}
    return coords, reducer, params


def reducer_bytes(reducer) -> bytes:
    import joblib

    buf = io.BytesIO()
    joblib.dump(reducer, buf)
    return buf.getvalue()
