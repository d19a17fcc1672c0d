"""Bad-state density: a Gaussian KDE of bad-state map coordinates, on a grid and at every image.

The artifact stores what defines the density (the bad-state points and the bandwidth) beside the
grid, so placement scores a new point against exactly the density the map shows.

Maps of up to EXACT_MAX_IMAGES images get the exact KDE (sklearn KernelDensity: every image and
grid node against every bad-state point). Larger maps get KDEpy's binned FFT KDE on a fine grid
(step bandwidth / 16: linear binning of the bad-state points, convolution with the Gaussian cut
at its practical support, ~3.9 bandwidths) and the value at each image and display-grid node by
linear interpolation: O(N + grid) instead of O(N x bad). Its error against the exact KDE is
measured by benchmarks/derive_scale.py --exact (README "UMAP and derive at scale"); an image
farther than the kernel's support from every bad-state point gets density 0 there.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from cxrviz import schema as S

BANDWIDTH = 1.0  # the authors' notebook: sklearn KernelDensity(bandwidth=1.0)
GRID_SIZE = 100  # ... on a 100 x 100 grid
MARGIN = 0.05  # grid extends 5% beyond the map on each side
EXACT_MAX_IMAGES = 10_000  # exact KDE up to here (the collection's 559; seconds at 10k)
BINNED_STEPS_PER_BANDWIDTH = 16  # the binned route's grid step: bandwidth / 16 ...
BINNED_MAX_NODES = 2048  # ... with at most this many nodes per axis (coarser on huge maps)
METHOD_EXACT, METHOD_BINNED = "exact", "binned"


@dataclass
class BadStateDensity:
    """sklearn-style: fit on bad-state points, then evaluate on a grid or at any point."""

    bandwidth: float = BANDWIDTH
    grid_size: int = GRID_SIZE
    margin: float = MARGIN

    def fit(self, bad_xy: np.ndarray):
        self.bad_xy_ = np.asarray(bad_xy, dtype=np.float64).reshape(-1, 2)
        return self

    @cached_property
    def kde_(self):
        """sklearn's exact KDE of the bad-state points (None without any), built on first use."""
        from sklearn.neighbors import KernelDensity

        return (KernelDensity(kernel="gaussian", bandwidth=self.bandwidth).fit(self.bad_xy_)
                if len(self.bad_xy_) else None)

    @classmethod
    def from_stored(cls, density: dict) -> "BadStateDensity":
        """The density an artifact holds (density.npz), ready to score new points."""
        return cls(bandwidth=float(density[S.DENSITY_BANDWIDTH]),
                   grid_size=len(density[S.DENSITY_X])).fit(density[S.DENSITY_BAD_XY])

    def score(self, xy: np.ndarray) -> np.ndarray:
        """Exact density (not log) at each point; zeros when there are no bad states. Placement
        scores a new image this way, whatever the map's size."""
        if self.kde_ is None or len(xy) == 0:
            return np.zeros(len(xy))
        return np.exp(self.kde_.score_samples(np.asarray(xy, dtype=np.float64)))

    def grid_axes(self, all_xy: np.ndarray) -> tuple:
        """The display grid's axes (x (g,), y (g,)) over the whole map's extent."""
        lo, hi = all_xy.min(axis=0), all_xy.max(axis=0)
        pad = (hi - lo) * self.margin + 1e-9
        return (np.linspace(lo[0] - pad[0], hi[0] + pad[0], self.grid_size),
                np.linspace(lo[1] - pad[1], hi[1] + pad[1], self.grid_size))

    def method_for(self, n_images: int) -> str:
        return METHOD_EXACT if n_images <= EXACT_MAX_IMAGES else METHOD_BINNED

    def at_map(self, all_xy: np.ndarray) -> tuple:
        """(density at each of all_xy, density.npz's content) for a map of these images: exact
        up to EXACT_MAX_IMAGES images, binned beyond (module docstring)."""
        gx, gy = self.grid_axes(np.asarray(all_xy))  # in the coordinates' own dtype, as before
        all_xy = np.asarray(all_xy, dtype=np.float64)
        self.method_ = self.method_for(len(all_xy))
        if not len(self.bad_xy_) or self.method_ == METHOD_EXACT:
            mx, my = np.meshgrid(gx, gy)
            values = self.score(all_xy)
            z = self.score(np.column_stack([mx.ravel(), my.ravel()])).reshape(mx.shape)
        else:
            at = self._binned(all_xy, gx, gy)
            values = at(all_xy)
            mx, my = np.meshgrid(gx, gy)
            z = at(np.column_stack([mx.ravel(), my.ravel()])).reshape(mx.shape)
        density = {S.DENSITY_X: gx, S.DENSITY_Y: gy, S.DENSITY_Z: z,
                   S.DENSITY_BAD_XY: self.bad_xy_,
                   S.DENSITY_BANDWIDTH: np.float64(self.bandwidth)}
        return values, density

    def _binned(self, all_xy: np.ndarray, gx: np.ndarray, gy: np.ndarray):
        """KDEpy's FFT KDE on a fine grid covering the map, the display grid and the bad-state
        points with a margin; -> a function interpolating it (linearly) at any points."""
        from KDEpy import FFTKDE
        from scipy.interpolate import RegularGridInterpolator

        reach = 4.0 * self.bandwidth  # beyond KDEpy's practical support of the kernel
        lo = np.minimum(np.minimum(all_xy.min(axis=0), [gx[0], gy[0]]),
                        self.bad_xy_.min(axis=0) - reach)
        hi = np.maximum(np.maximum(all_xy.max(axis=0), [gx[-1], gy[-1]]),
                        self.bad_xy_.max(axis=0) + reach)
        step = max(self.bandwidth / BINNED_STEPS_PER_BANDWIDTH,
                   float((hi - lo).max()) / (BINNED_MAX_NODES - 3))
        nx, ny = (np.ceil((hi - lo) / step).astype(int) + 3)  # strictly inside, as KDEpy needs
        fx = lo[0] - step + step * np.arange(nx)
        fy = lo[1] - step + step * np.arange(ny)
        nodes = np.column_stack([np.repeat(fx, ny), np.tile(fy, nx)])  # sorted, as KDEpy needs
        z = FFTKDE(kernel="gaussian", bw=self.bandwidth).fit(self.bad_xy_).evaluate(nodes)
        self.binned_step_ = step
        interpolate = RegularGridInterpolator((fx, fy), np.maximum(z, 0.0).reshape(nx, ny),
                                              bounds_error=False, fill_value=0.0)
        return lambda xy: interpolate(np.asarray(xy, np.float64))

    def params(self) -> dict:
        out = {"kernel": "gaussian", "bandwidth": self.bandwidth, "grid_size": self.grid_size,
               "margin": self.margin, "n_bad_points": int(len(getattr(self, "bad_xy_", ()))),
               "fitted_on": "covid images with state == bad",
               "method": getattr(self, "method_", METHOD_EXACT),
               "exact_max_images": EXACT_MAX_IMAGES}
        if hasattr(self, "binned_step_"):
            out["binned_step"] = self.binned_step_
        return out


def percentile_of(values, reference_sorted: np.ndarray) -> np.ndarray:
    """% of the reference (sorted ascending) at or below each value: the density percentile."""
    ranks = np.searchsorted(reference_sorted, np.asarray(values, dtype=np.float64), side="right")
    return 100.0 * ranks / max(len(reference_sorted), 1)
