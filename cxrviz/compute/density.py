"""Bad-state density: a Gaussian KDE of bad-state map coordinates, on a grid and at every image.

The artifact stores what defines the density (the bad-state points and the bandwidth) beside the
grid, so placement scores a new point against exactly the density the map shows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cxrviz import schema as S

BANDWIDTH = 1.0  # the authors' notebook: sklearn KernelDensity(bandwidth=1.0)
GRID_SIZE = 100  # ... on a 100 x 100 grid
MARGIN = 0.05  # grid extends 5% beyond the map on each side


@dataclass
class BadStateDensity:
    """sklearn-style: fit on bad-state points, then evaluate on a grid or at any point."""

    bandwidth: float = BANDWIDTH
    grid_size: int = GRID_SIZE
    margin: float = MARGIN

    def fit(self, bad_xy: np.ndarray):
        from sklearn.neighbors import KernelDensity

        self.bad_xy_ = np.asarray(bad_xy, dtype=np.float64).reshape(-1, 2)
        self.kde_ = (KernelDensity(kernel="gaussian", bandwidth=self.bandwidth).fit(self.bad_xy_)
                     if len(self.bad_xy_) else None)
        return self

    @classmethod
    def from_stored(cls, density: dict) -> "BadStateDensity":
        """The density an artifact holds (density.npz), ready to score new points."""
        return cls(bandwidth=float(density[S.DENSITY_BANDWIDTH]),
                   grid_size=len(density[S.DENSITY_X])).fit(density[S.DENSITY_BAD_XY])

    def score(self, xy: np.ndarray) -> np.ndarray:
        """Density (not log) at each point; zeros when there are no bad states."""
        if self.kde_ is None or len(xy) == 0:
            return np.zeros(len(xy))
        return np.exp(self.kde_.score_samples(np.asarray(xy, dtype=np.float64)))

    def grid(self, all_xy: np.ndarray):
        """(x (g,), y (g,), z (g, g) indexed [y, x]) over the whole map's extent."""
        lo, hi = all_xy.min(axis=0), all_xy.max(axis=0)
        pad = (hi - lo) * self.margin + 1e-9
        gx = np.linspace(lo[0] - pad[0], hi[0] + pad[0], self.grid_size)
        gy = np.linspace(lo[1] - pad[1], hi[1] + pad[1], self.grid_size)
        mx, my = np.meshgrid(gx, gy)
        z = self.score(np.column_stack([mx.ravel(), my.ravel()])).reshape(mx.shape)
        return gx, gy, z

    def stored(self, all_xy: np.ndarray) -> dict:
        """density.npz's content: the grid and what defines the density."""
        gx, gy, gz = self.grid(all_xy)
        return {S.DENSITY_X: gx, S.DENSITY_Y: gy, S.DENSITY_Z: gz,
                S.DENSITY_BAD_XY: self.bad_xy_, S.DENSITY_BANDWIDTH: np.float64(self.bandwidth)}

    def params(self) -> dict:
        return {"kernel": "gaussian", "bandwidth": self.bandwidth, "grid_size": self.grid_size,
                "margin": self.margin, "n_bad_points": int(len(getattr(self, "bad_xy_", ()))),
                "fitted_on": "covid images with state == bad"}


def percentile_of(values, reference_sorted: np.ndarray) -> np.ndarray:
    """% of the reference (sorted ascending) at or below each value: the density percentile."""
    ranks = np.searchsorted(reference_sorted, np.asarray(values, dtype=np.float64), side="right")
    return 100.0 * ranks / max(len(reference_sorted), 1)
