"""Good / bad / unknown state of each image, as DESIGN.md defines it, with the reason kept.

bad  = in_icu Y, or intubation_present Y, or the patient's last image when survival is N
good = in_icu N, or intubation_present N, or the patient's last image when survival is Y
Where both apply, bad wins (the authors' notebook let good win, which hid ICU patients).
"""
from __future__ import annotations

import pandas as pd

from cxrviz import schema as S
from cxrviz.compute.timeline import last_image_ids

STATE_RULES = {
    "bad": ["in_icu == Y", "intubation_present == Y", "last image of patient and survival == N"],
    "good": ["in_icu == N", "intubation_present == N", "last image of patient and survival == Y"],
    "precedence": "bad wins over good",
    "last_image": "greatest offset among the patient's dated images (ties: last by filename); "
                  "a patient with a single image: that image",
}


def assign_states(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a frame (same index) with columns `state` and `state_reason`."""
    last = last_image_ids(frame)
    states, reasons = [], []
    for row in frame[[S.IMAGE_ID, S.IN_ICU, S.INTUBATION_PRESENT, S.SURVIVAL]].itertuples(
            index=False):
        image_id, in_icu, intubation, survival = row
        is_last = image_id in last
        bad, good = [], []
        for name, value in ((S.IN_ICU, in_icu), (S.INTUBATION_PRESENT, intubation)):
            if value == S.YES:
                bad.append(f"{name}=Y")
            elif value == S.NO:
                good.append(f"{name}=N")
        if is_last and survival == S.NO:
            bad.append("last image, survival=N")
        elif is_last and survival == S.YES:
            good.append("last image, survival=Y")
        if bad:
            states.append(S.STATE_BAD)
            reasons.append("; ".join(bad) + (" (bad wins over " + "; ".join(good) + ")"
                                             if good else ""))
        elif good:
            states.append(S.STATE_GOOD)
            reasons.append("; ".join(good))
        else:
            states.append(S.STATE_UNKNOWN)
            reasons.append("no ICU, intubation or final-outcome information")
    return pd.DataFrame({S.STATE: states, S.STATE_REASON: reasons}, index=frame.index)
