"""A patient's images in time order: the one definition states, trajectories, the timeline and
the store share. Pandas only (the app imports it too)."""
from __future__ import annotations

import pandas as pd

from cxrviz import schema as S

# offset first; ties by filename, then image id (two rows can share a file); undated last
ORDER_COLUMNS = [S.PATIENTID, S.OFFSET, S.FILENAME, S.IMAGE_ID]


def time_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by patient, then in time order within each patient."""
    return frame.sort_values(ORDER_COLUMNS, na_position="last", kind="mergesort")


def last_image_ids(frame: pd.DataFrame) -> set:
    """Each patient's last image: the latest dated one, or the only image of a patient who has
    one undated image. (Several undated images have no last one.)"""
    ordered = time_order(frame)
    dated = ordered[ordered[S.OFFSET].notna()]
    last = set(dated.groupby(S.PATIENTID, sort=False)[S.IMAGE_ID].last())
    sizes = ordered.groupby(S.PATIENTID, sort=False)[S.IMAGE_ID].transform("size")
    lonely = ordered[(sizes == 1) & ordered[S.OFFSET].isna()]
    return last | set(lonely[S.IMAGE_ID])
