"""Good / bad / unknown state of each image, as DESIGN.md defines it, with the reason kept.

bad  = in_icu Y, or intubation_present Y, or the episode's last image when survival is N
good = in_icu N, or intubation_present N, or the episode's last image when survival is Y
(an episode is a patient in the COVID collection, an admission in MIMIC; an image in no episode
is never the last one)
Where both apply, bad wins (the authors' notebook let good win, which hid ICU patients).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cxrviz import schema as S
from cxrviz.compute.timeline import last_image_ids

STATE_RULES = {
    "bad": ["in_icu == Y", "intubation_present == Y", "last image of episode and survival == N"],
    "good": ["in_icu == N", "intubation_present == N", "last image of episode and survival == Y"],
    "precedence": "bad wins over good",
    "last_image": "latest time, else greatest offset, among the episode's dated images (ties: "
                  "last by filename); an episode with a single image: that image; an image in "
                  "no episode: never",
}


def _texts(flags, names) -> np.ndarray:
    """Per row: the names whose flag is set, joined with '; ' ('' for none), without a loop over
    rows: each of the 2**k combinations is written once and looked up by its code."""
    code = sum(np.asarray(f, bool).astype(np.int64) << k for k, f in enumerate(flags))
    table = np.array(["; ".join(n for k, n in enumerate(names) if c >> k & 1)
                      for c in range(2 ** len(names))], dtype=object)
    return table[code]


def assign_states(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a frame (same index) with columns `state` and `state_reason`."""
    is_last = frame[S.IMAGE_ID].isin(last_image_ids(frame)).to_numpy()
    icu, tube, survival = (frame[c].to_numpy(object)
                           for c in (S.IN_ICU, S.INTUBATION_PRESENT, S.SURVIVAL))
    bad = _texts([icu == S.YES, tube == S.YES, is_last & (survival == S.NO)],
                 [f"{S.IN_ICU}=Y", f"{S.INTUBATION_PRESENT}=Y", "last image, survival=N"])
    good = _texts([icu == S.NO, tube == S.NO, is_last & (survival == S.YES)],
                  [f"{S.IN_ICU}=N", f"{S.INTUBATION_PRESENT}=N", "last image, survival=Y"])
    has_bad, has_good = bad != "", good != ""
    state = np.where(has_bad, S.STATE_BAD, np.where(has_good, S.STATE_GOOD, S.STATE_UNKNOWN))
    wins = np.where(has_good, " (bad wins over " + good + ")", "")
    reason = np.where(has_bad, bad + wins, np.where(
        has_good, good, "no ICU, intubation or final-outcome information"))
    return pd.DataFrame({S.STATE: state.astype(object), S.STATE_REASON: reason.astype(object)},
                        index=frame.index)
