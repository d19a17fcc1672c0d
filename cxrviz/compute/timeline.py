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


# ---- aligned day: the map's second axis ----------------------------------------------------
ALIGN_OFFSET, ALIGN_FIRST, ALIGN_FIRST_BAD, ALIGN_LAST = "offset", "first", "first_bad", "last"
ALIGNMENTS = {  # key -> what day 0 is
    ALIGN_OFFSET: "reported offset (days since symptoms or admission)",
    ALIGN_FIRST: "the patient's first image",
    ALIGN_FIRST_BAD: "the patient's first bad-state image",
    ALIGN_LAST: "the patient's last image (the outcome)",
}


def event_offsets(frame: pd.DataFrame, align: str) -> pd.Series:
    """Per patient (index: patientid): the offset that is day 0 under `align`; NaN for a patient
    without that event (no dated image, or no dated bad-state image)."""
    if align not in ALIGNMENTS:
        raise ValueError(f"alignment must be one of {sorted(ALIGNMENTS)}, not {align!r}")
    patients = pd.Index(frame[S.PATIENTID].unique(), name=S.PATIENTID)
    dated = frame[frame[S.OFFSET].notna()]
    if align == ALIGN_OFFSET:
        events = pd.Series(0.0, index=dated[S.PATIENTID].unique())
    elif align == ALIGN_FIRST:
        events = dated.groupby(S.PATIENTID)[S.OFFSET].min()
    elif align == ALIGN_LAST:
        events = dated.groupby(S.PATIENTID)[S.OFFSET].max()
    else:
        events = dated[dated[S.STATE] == S.STATE_BAD].groupby(S.PATIENTID)[S.OFFSET].min()
    return events.reindex(patients).astype("float64")


def aligned_days(frame: pd.DataFrame, align: str) -> pd.Series:
    """Per image (same index as frame): its day relative to its patient's event under `align`.
    NaN for undated images and for patients without the event. The one definition of the
    aligned day: the map, the series, the cohort chart, the table and exports use it."""
    events = event_offsets(frame, align)
    return frame[S.OFFSET] - frame[S.PATIENTID].map(events)
