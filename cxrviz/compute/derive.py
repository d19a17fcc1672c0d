"""Everything that follows from map positions and metadata, in one step.

States, trajectories, the bad-state density (grid, value at each image, percentile of each image)
and the logit columns come from `derive`, which precompute and benchmarks/make_artifact.py both
call, so a synthetic artifact is derived exactly as a real one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cxrviz import schema as S
from cxrviz.compute.density import BANDWIDTH, GRID_SIZE, BadStateDensity, percentile_of
from cxrviz.compute.states import assign_states
from cxrviz.compute.trajectories import build_trajectories

REFERENCE_REASON = "reference image (no outcome data)"


@dataclass
class Derived:
    images: pd.DataFrame  # exactly S.image_columns(pathologies), typed
    trajectories: pd.DataFrame
    density: dict  # density.npz content
    kde_params: dict


def derive(images: pd.DataFrame, coords: np.ndarray, logits: np.ndarray, pathologies,
           *, bandwidth: float = BANDWIDTH, grid_size: int = GRID_SIZE) -> Derived:
    """images: one row per embedded image (metadata columns); coords (n, 2); logits (n, k)."""
    images = images.reset_index(drop=True).copy()
    coords = np.asarray(coords, dtype=np.float32)
    images[S.X], images[S.Y] = coords[:, 0], coords[:, 1]
    is_covid = (images[S.SOURCE] == S.SOURCE_COVID).to_numpy()

    states = pd.DataFrame({S.STATE: S.STATE_UNKNOWN, S.STATE_REASON: REFERENCE_REASON},
                          index=images.index)
    states.loc[is_covid] = assign_states(images[is_covid])
    images[S.STATE], images[S.STATE_REASON] = states[S.STATE], states[S.STATE_REASON]
    trajectories = build_trajectories(images[is_covid])

    bad = (images[S.STATE] == S.STATE_BAD).to_numpy()
    kde = BadStateDensity(bandwidth=bandwidth, grid_size=grid_size).fit(coords[bad])
    density = kde.stored(coords)
    images[S.BAD_DENSITY] = kde.score(coords)
    reference = np.sort(images.loc[is_covid, S.BAD_DENSITY].to_numpy())
    images[S.DENSITY_PERCENTILE] = percentile_of(images[S.BAD_DENSITY], reference)

    logits = np.asarray(logits, dtype=np.float32)
    for j, name in enumerate(pathologies):
        images[S.logit_column(name)] = logits[:, j]
    images = images[S.image_columns(pathologies)].astype(
        {S.OFFSET: "float64", S.AGE: "float64", S.X: "float32", S.Y: "float32",
         S.BAD_DENSITY: "float64", S.DENSITY_PERCENTILE: "float64"})
    return Derived(images, trajectories, density, kde.params())
