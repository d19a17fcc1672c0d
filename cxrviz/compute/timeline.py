"""An episode's images in time order: the one definition states, trajectories, the timeline and
the store share. Pandas only (the app imports it too).

Time order within an episode is by `time` (the image's date-time, where the source has one),
else by `offset` (the day); ties by filename, then image id (two rows can share a file); undated
last. In the COVID collection an episode is a patient and no image has a time, so this is offset
order per patient."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cxrviz import schema as S

ORDER_COLUMNS = [S.EPISODE, S.TIME, S.OFFSET, S.FILENAME, S.IMAGE_ID]


def time_order(frame: pd.DataFrame, by: str = S.EPISODE) -> pd.DataFrame:
    """Rows sorted by episode (or `by`, e.g. the patient), then in time order within each:
    `frame.sort_values([by, time, offset, filename, image_id], na_position="last",
    kind="mergesort")`, computed faster. Each sort key becomes its rank (pd.factorize sorts only
    the distinct values; missing last) and one stable np.lexsort orders the rows by episode,
    time and day; filename and image id, which are almost all distinct and costly to rank,
    are ranked only among the rows that tie on those three (0.3 s instead of 3 s at 300k)."""
    if len(frame) < 2:
        return frame.copy()
    rank = [_ranks(frame[c]) for c in (by, S.TIME, S.OFFSET)]
    order = np.lexsort(rank[::-1])
    ranked = np.stack([r[order] for r in rank])
    starts = np.r_[True, (ranked[:, 1:] != ranked[:, :-1]).any(axis=0)]  # a new (by, time, day)
    block = np.cumsum(starts)
    tied = ~(starts & np.r_[starts[1:], True])  # rows in a block of two or more
    if tied.any():
        rows = order[tied]
        names = frame.iloc[rows][[S.FILENAME, S.IMAGE_ID]].assign(_block=block[tied])
        within = names.reset_index(drop=True).sort_values(
            ["_block", S.FILENAME, S.IMAGE_ID], na_position="last", kind="mergesort").index
        order[tied] = rows[within.to_numpy()]
    return frame.iloc[order]


def _ranks(values: pd.Series) -> np.ndarray:
    """Each value's rank among the distinct values in ascending order, missing values last."""
    codes, uniques = pd.factorize(values, sort=True)
    return np.where(codes < 0, len(uniques), codes)


def dated(frame: pd.DataFrame) -> pd.Series:
    """Per row: has a time or a day."""
    return frame[S.TIME].notna() | frame[S.OFFSET].notna()


def last_image_ids(frame: pd.DataFrame) -> set:
    """Each episode's last image: the latest dated one, or the only image of an episode that has
    one undated image. (Several undated images have no last one; an image in no episode is
    never last.)"""
    ordered = time_order(frame[frame[S.EPISODE].notna()])
    when = dated(ordered).to_numpy()
    last = set(ordered[when].groupby(S.EPISODE, sort=False)[S.IMAGE_ID].last())
    sizes = ordered.groupby(S.EPISODE, sort=False)[S.IMAGE_ID].transform("size").to_numpy()
    lonely = ordered[(sizes == 1) & ~when]
    return last | set(lonely[S.IMAGE_ID])


# ---- aligned day: the map's second axis ----------------------------------------------------
ALIGN_OFFSET, ALIGN_FIRST, ALIGN_FIRST_BAD, ALIGN_LAST = "offset", "first", "first_bad", "last"
ALIGNMENTS = {  # key -> what day 0 is (an episode is a patient in the COVID collection)
    ALIGN_OFFSET: "reported offset (days since symptoms or admission)",
    ALIGN_FIRST: "the episode's first image",
    ALIGN_FIRST_BAD: "the episode's first bad-state image",
    ALIGN_LAST: "the episode's last image (the outcome)",
}


def event_offsets(frame: pd.DataFrame, align: str) -> pd.Series:
    """Per episode (index: episode): the offset that is day 0 under `align`; NaN for an episode
    without that event (no dated image, or no dated bad-state image). Each episode (a MIMIC
    admission, a COVID-collection patient) has its own day 0; images in no episode have none."""
    if align not in ALIGNMENTS:
        raise ValueError(f"alignment must be one of {sorted(ALIGNMENTS)}, not {align!r}")
    frame = frame[frame[S.EPISODE].notna()]
    episodes = pd.Index(frame[S.EPISODE].unique(), name=S.EPISODE)
    dated = frame[frame[S.OFFSET].notna()]
    if align == ALIGN_OFFSET:
        events = pd.Series(0.0, index=dated[S.EPISODE].unique())
    elif align == ALIGN_FIRST:
        events = dated.groupby(S.EPISODE)[S.OFFSET].min()
    elif align == ALIGN_LAST:
        events = dated.groupby(S.EPISODE)[S.OFFSET].max()
    else:
        events = dated[dated[S.STATE] == S.STATE_BAD].groupby(S.EPISODE)[S.OFFSET].min()
    return events.reindex(episodes).astype("float64")


def aligned_days(frame: pd.DataFrame, align: str) -> pd.Series:
    """Per image (same index as frame): its day relative to its episode's event under `align`.
    NaN for undated images, images in no episode and episodes without the event. The one
    definition of the aligned day: the map, the series, the cohort chart, the table and exports
    use it."""
    events = event_offsets(frame, align)
    return frame[S.OFFSET] - frame[S.EPISODE].map(events)
