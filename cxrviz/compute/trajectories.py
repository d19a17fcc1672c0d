"""Patient trajectories: one edge per consecutive pair of a patient's dated images."""
from __future__ import annotations

import pandas as pd

from cxrviz import schema as S
from cxrviz.compute.timeline import time_order


def build_trajectories(frame: pd.DataFrame) -> pd.DataFrame:
    """Edges between consecutive dated images (offset order, ties by filename) of each patient."""
    dated = frame[frame[S.OFFSET].notna() & (frame[S.PATIENTID] != "")]
    rows = []
    for patient, grp in time_order(dated).groupby(S.PATIENTID, sort=False):
        ids, offsets = grp[S.IMAGE_ID].tolist(), grp[S.OFFSET].tolist()
        states, survival = grp[S.STATE].tolist(), grp[S.SURVIVAL].iloc[-1]
        for a in range(len(ids) - 1):
            rows.append((patient, ids[a], ids[a + 1], offsets[a], offsets[a + 1], states[a + 1],
                         survival))
    out = pd.DataFrame(rows, columns=list(S.TRAJECTORY_COLUMNS))
    return out.astype({S.FROM_OFFSET: "float64", S.TO_OFFSET: "float64"})
