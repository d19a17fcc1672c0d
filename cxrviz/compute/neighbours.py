"""The one exact nearest-neighbour search: an upload's neighbours, the OOD distance, and the k
nearest training points UMAP's transform starts from."""
from __future__ import annotations

import numpy as np


def nearest(matrix: np.ndarray, query: np.ndarray, k: int,
            sq_norms: np.ndarray | None = None) -> tuple:
    """Indices and Euclidean distances (float64) of the k rows of `matrix` closest to `query`,
    by distance, ties by row.

    With the rows' squared norms given, candidates come from one matrix-vector product
    (|a|^2 - 2 a.q + |q|^2: milliseconds for 30,000 x 1024) and their distances are then
    computed exactly (that identity loses the small ones to rounding). Without them every
    distance is computed exactly (differences, not the identity: an image of the matrix itself
    is at distance exactly 0).
    """
    k = min(k, len(matrix))
    if sq_norms is not None and len(matrix) > k + 16:
        q = query.astype(np.float64)
        d2 = sq_norms - 2.0 * (matrix @ query.astype(matrix.dtype)) + q @ q
        rows = np.argpartition(d2, k + 15)[:k + 16]
    else:
        rows = np.arange(len(matrix))
    d = np.sqrt(((np.asarray(matrix[rows], np.float64) - query[None, :].astype(np.float64))
                 ** 2).sum(axis=1))
    if len(d) > k > 0:  # only the rows at or below the k-th distance need sorting
        keep = d <= np.partition(d, k - 1)[k - 1]
        rows, d = rows[keep], d[keep]
    best = np.lexsort((rows, d))[:k]
    return rows[best], d[best]
