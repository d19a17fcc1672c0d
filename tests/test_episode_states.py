"""States, last images and trajectories per episode (cxrviz.compute.states / trajectories).

Expected values come from second routes: the state strings main's per-row loop stored for the
real collection (tests/data/covid_states_main.csv, written by cxrviz.compute.states before it was
vectorised, on the same reader rows), a plain-pandas row-by-row rule, and small cohorts whose
answers are written by hand.
"""
from pathlib import Path

import numpy as np
import pandas as pd

from cxrviz import schema as S
from cxrviz.compute.states import assign_states
from cxrviz.compute.timeline import last_image_ids
from cxrviz.compute.trajectories import build_trajectories
from precompute import sources

MAIN_STATES = Path(__file__).parent / "data" / "covid_states_main.csv"


def _plain_states(frame: pd.DataFrame) -> pd.DataFrame:
    """The rule written out row by row in plain pandas: last = greatest offset per patient (ties:
    last by filename, then image id), or a patient's single undated image."""
    dated = frame[frame[S.OFFSET].notna()].sort_values([S.OFFSET, S.FILENAME, S.IMAGE_ID])
    last = set(dated.groupby(S.PATIENTID)[S.IMAGE_ID].agg(lambda ids: ids.iloc[-1]))
    for pid, grp in frame.groupby(S.PATIENTID):
        if len(grp) == 1 and grp[S.OFFSET].isna().all():
            last.add(grp[S.IMAGE_ID].iloc[0])
    out = []
    for _, row in frame.iterrows():
        bad = [f"{c}=Y" for c in (S.IN_ICU, S.INTUBATION_PRESENT) if row[c] == "Y"]
        good = [f"{c}=N" for c in (S.IN_ICU, S.INTUBATION_PRESENT) if row[c] == "N"]
        if row[S.IMAGE_ID] in last:
            (bad if row[S.SURVIVAL] == "N" else good if row[S.SURVIVAL] == "Y" else []).append(
                f"last image, survival={row[S.SURVIVAL]}")
        if bad:
            out.append(("bad", "; ".join(bad) + (f" (bad wins over {'; '.join(good)})"
                                                  if good else "")))
        elif good:
            out.append(("good", "; ".join(good)))
        else:
            out.append(("unknown", "no ICU, intubation or final-outcome information"))
    return pd.DataFrame(out, columns=[S.STATE, S.STATE_REASON], index=frame.index)


def test_collection_states_unchanged(dataset):
    rows = sources.read(S.SOURCE_COVID, str(dataset), {}).frame
    assert (rows[S.EPISODE] == rows[S.PATIENTID]).all() and rows[S.TIME].isna().all()
    states = assign_states(rows)
    main = pd.read_csv(MAIN_STATES, keep_default_na=False)
    assert main[S.IMAGE_ID].tolist() == rows[S.IMAGE_ID].tolist()
    assert states[S.STATE].tolist() == main[S.STATE].tolist()
    assert states[S.STATE_REASON].tolist() == main[S.STATE_REASON].tolist()
    plain = _plain_states(rows)
    assert states[S.STATE].tolist() == plain[S.STATE].tolist()
    assert states[S.STATE_REASON].tolist() == plain[S.STATE_REASON].tolist()
    assert set(states[S.STATE]) == {"good", "bad", "unknown"}


def _cohort() -> pd.DataFrame:
    """Patient p1: two admissions (a1: three films, the last two the same day, ordered by time;
    a2: one film, died); one film in no admission. Patient p2: one undated film, survived."""
    t = pd.Timestamp
    rows = [  # image, patient, episode, time, day, in_icu, intubation, survival
        ("i3", "p1", "a1", t("2150-01-02 18:00"), 1.75, "N", "N", "Y"),
        ("i1", "p1", "a1", t("2150-01-01 06:00"), 0.0, "Y", "N", "Y"),
        ("i2", "p1", "a1", t("2150-01-02 08:00"), 1.33, "N", "N", "Y"),
        ("i4", "p1", "a2", t("2150-06-01 10:00"), 0.5, "N", "N", "N"),
        ("i5", "p1", np.nan, t("2150-03-01 10:00"), np.nan, "N", "N", "unknown"),
        ("i6", "p2", "p2", pd.NaT, np.nan, "unknown", "unknown", "Y"),
    ]
    frame = pd.DataFrame(rows, columns=[S.IMAGE_ID, S.PATIENTID, S.EPISODE, S.TIME, S.OFFSET,
                                        S.IN_ICU, S.INTUBATION_PRESENT, S.SURVIVAL])
    frame[S.FILENAME] = frame[S.IMAGE_ID] + ".jpg"
    return frame


def test_last_image_and_states_per_episode():
    frame = _cohort()
    assert last_image_ids(frame) == {"i3", "i4", "i6"}  # i5: no episode, never last
    states = assign_states(frame).set_index(frame[S.IMAGE_ID])
    assert states[S.STATE].to_dict() == {"i1": "bad", "i2": "good", "i3": "good", "i4": "bad",
                                         "i5": "good", "i6": "good"}
    assert states.loc["i4", S.STATE_REASON] == ("last image, survival=N (bad wins over "
                                                "in_icu=N; intubation_present=N)")
    assert states.loc["i6", S.STATE_REASON] == "last image, survival=Y"


def test_trajectories_per_episode():
    frame = _cohort()
    frame[S.STATE] = assign_states(frame)[S.STATE]
    edges = build_trajectories(frame)
    assert list(edges.columns) == list(S.TRAJECTORY_COLUMNS)
    assert edges[[S.EPISODE, S.FROM_IMAGE_ID, S.TO_IMAGE_ID]].values.tolist() == [
        ["a1", "i1", "i2"], ["a1", "i2", "i3"]]  # none across a1 -> a2, none from i5
    assert edges[S.SURVIVAL].tolist() == ["Y", "Y"]
    assert edges[S.TO_STATE].tolist() == ["good", "good"]
