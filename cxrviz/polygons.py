"""A box / lasso over the map (map_data's /select, the page's selection summary and export):
its vertices checked, and which points fall inside it."""
from __future__ import annotations

import numpy as np

MAX_POLYGON = 512  # vertices of a lasso


def inside_polygon(x: np.ndarray, y: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorised over the points (one pass per polygon edge), after a
    bounding-box cut."""
    out = np.zeros(len(x), bool)
    box = ((x >= poly[:, 0].min()) & (x <= poly[:, 0].max()) & (y >= poly[:, 1].min())
           & (y <= poly[:, 1].max()))
    idx = np.flatnonzero(box)
    px, py = x[idx], y[idx]
    hit = np.zeros(len(idx), bool)
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0)):
        crosses = (y0 > py) != (y1 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
        hit ^= crosses & (px < at)
    out[idx] = hit
    return out


def polygon_array(poly) -> np.ndarray:
    """A box / lasso as sent by the map ([[x, y], ...] in map coordinates, 3 to MAX_POLYGON
    finite vertices) -> float array; ValueError otherwise."""
    if not isinstance(poly, list) or not 3 <= len(poly) <= MAX_POLYGON:
        raise ValueError(f"polygon: 3 to {MAX_POLYGON} [x, y] vertices")
    try:
        arr = np.array(poly, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("polygon: numbers only") from None
    if arr.shape != (len(poly), 2) or not np.isfinite(arr).all():
        raise ValueError("polygon: finite [x, y] pairs")
    return arr
