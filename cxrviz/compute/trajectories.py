"""Trajectories: one edge per consecutive pair of an episode's dated images (an episode is a
patient in the COVID collection, an admission in MIMIC). Images in no episode draw none."""
from __future__ import annotations

import pandas as pd

from cxrviz import schema as S
from cxrviz.compute.timeline import time_order


def build_trajectories(frame: pd.DataFrame) -> pd.DataFrame:
    """Edges between consecutive dated images (time order, cxrviz.compute.timeline) of each
    episode, with the survival at the episode's last dated image. Column-wise: no loop."""
    dated = frame[frame[S.OFFSET].notna() & frame[S.EPISODE].notna()
                  & (frame[S.EPISODE].astype(str) != "")]
    ordered = time_order(dated).reset_index(drop=True)
    episode = ordered[S.EPISODE]
    following = ordered.shift(-1)
    pair = (episode == following[S.EPISODE]).to_numpy()
    survival = ordered.groupby(S.EPISODE, sort=False)[S.SURVIVAL].transform("last")
    out = pd.DataFrame({
        S.PATIENTID: ordered[S.PATIENTID], S.EPISODE: episode,
        S.FROM_IMAGE_ID: ordered[S.IMAGE_ID], S.TO_IMAGE_ID: following[S.IMAGE_ID],
        S.FROM_OFFSET: ordered[S.OFFSET], S.TO_OFFSET: following[S.OFFSET],
        S.TO_STATE: following[S.STATE], S.SURVIVAL: survival})[pair].reset_index(drop=True)
    return out[list(S.TRAJECTORY_COLUMNS)].astype(
        {S.FROM_OFFSET: "float64", S.TO_OFFSET: "float64"})
