"""States from events in time: an image's episode, its day, ICU and ventilation at its time, and
its episode's outcome, for any cohort whose source records admissions, ICU stays, ventilation and
death as intervals (MIMIC-IV, a hospital's events.csv).

The rules (issue 15), in one place:
- An episode is an admission. An image belongs to it when its time lies in the admission's window
  [window_start, end], both ends included; window_start is min(ED registration, admission) where
  the source has an ED time, else the admission's start. An admission without an end is ongoing.
- Where windows overlap, the admission that began last (latest window_start; ties: the later
  row of the source's table) among those containing the time wins: a readmission or an ED visit
  registered before the previous discharge is the care the image belongs to. An admission nested
  inside a longer one wins inside its own window; after it ends, the longer one holds again.
- day (S.OFFSET) = (image time - admission start) in days, fractional: ED films are negative.
- in_icu / intubation_present = Y when the time lies in an ICU stay / a ventilation interval of
  that admission (ends included), else N. An interval belongs to the admission its source names
  (MIMIC's hadm_id), or else to the admission whose window holds the interval's start.
- survival of an episode = N when the admission has a death (MIMIC: a deathtime; a hospital's
  export: a death event inside the window, its end included), Y when it ended without one, unknown
  while it has no end. went_icu / intubated = Y when the admission has any ICU stay / ventilation.
- An image with a time in no admission has no episode and no day, N / N, and survival, went_icu and
  intubated unknown. An image without a time (or patient) is unknown throughout.

Vectorised: sorted interval look-ups with pandas.merge_asof per patient (or per admission), so the
cost grows with n log n and never with a Python loop over images.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cxrviz import schema as S

# Columns of the two tables below (reader-internal: not artifact columns).
PATIENT, EPISODE, KIND, START, END = "patient", "episode", "kind", "start", "end"
WINDOW_START, DEATH = "window_start", "death"
ADMISSION_COLUMNS = (PATIENT, EPISODE, START, END, WINDOW_START, DEATH)
INTERVAL_COLUMNS = (PATIENT, EPISODE, KIND, START, END)
INTERVAL_KINDS = (S.EVENT_ICU, S.EVENT_VENTILATION)
OUTPUT_COLUMNS = (S.EPISODE, S.OFFSET, S.IN_ICU, S.INTUBATION_PRESENT, S.SURVIVAL, S.WENT_ICU,
                  S.INTUBATED)

_NS_PER_DAY = 86_400 * 10**9
_OPEN_END = np.iinfo(np.int64).max  # an admission or interval with no end yet
_NAT = np.iinfo(np.int64).min


@dataclass
class Events:
    """admissions: PATIENT, EPISODE (unique id), START, END (NaT: ongoing), WINDOW_START (NaT:
    START), DEATH (NaT: none). intervals: PATIENT, EPISODE (the admission it belongs to; NaN:
    the one holding its start), KIND (icu | ventilation), START, END (NaT: ongoing)."""

    admissions: pd.DataFrame
    intervals: pd.DataFrame


def _ns(values) -> np.ndarray:
    """datetime-like -> int64 nanoseconds (NaT -> int64 min)."""
    return pd.to_datetime(pd.Series(values)).astype("datetime64[ns]").to_numpy().view(np.int64)


def _yn(flag: np.ndarray) -> np.ndarray:
    return np.where(flag, S.YES, S.NO).astype(object)


def _keys(values) -> pd.Index:
    """Patient or admission ids as an index both sides of a look-up share: integers stay
    integers (MIMIC's ids: fast to hash), anything else is text."""
    index = pd.Index(values)
    if pd.api.types.is_integer_dtype(index.dtype):
        return pd.Index(index.to_numpy("int64"))
    return pd.Index(index.astype(str).to_numpy(object))


class _Admissions:
    """Admissions sorted by (patient, window start), with the arrays look-ups need. Ties in
    window start keep the source's order (the later row wins)."""

    def __init__(self, admissions: pd.DataFrame):
        adm = admissions.loc[:, list(ADMISSION_COLUMNS)].reset_index(drop=True)
        start = _ns(adm[START])
        wstart = _ns(adm[WINDOW_START])
        wstart = np.where(wstart == _NAT, start, np.minimum(wstart, start))
        keep = start != _NAT  # an admission without a start cannot hold an image
        adm, start, wstart = adm[keep], start[keep], wstart[keep]
        keys = _keys(adm[PATIENT])
        self.patients = pd.Index(pd.unique(keys))
        pcode = self.patients.get_indexer(keys)
        order = np.lexsort((wstart, pcode))  # stable
        self.frame = adm.iloc[order].reset_index(drop=True)
        self.pcode, self.wstart, self.start = pcode[order], wstart[order], start[order]
        end = _ns(self.frame[END])
        self.end = np.where(end == _NAT, _OPEN_END, end)
        # the latest end among this and every earlier admission of the same patient
        self.reach = pd.Series(self.end).groupby(self.pcode).cummax().to_numpy()
        self.death = _ns(self.frame[DEATH])
        self.episodes = _keys(self.frame[EPISODE])

    def pick(self, patients, times_ns: np.ndarray) -> np.ndarray:
        """Per (patient, time): position of the admission holding it (the latest-starting one
        among those whose window contains the time), or -1."""
        n = len(times_ns)
        keys = _keys(patients)
        if keys.dtype != self.patients.dtype and len(keys) and len(self.patients):
            raise TypeError(f"patient ids are {keys.dtype} for images but "
                            f"{self.patients.dtype} for admissions")
        pcode = self.patients.get_indexer(keys)
        valid = (pcode >= 0) & (times_ns != _NAT)
        result = np.full(n, -1, dtype=np.int64)
        j = np.full(n, -1, dtype=np.int64)
        if valid.any() and len(self.frame):
            j[valid] = _asof(pcode[valid], times_ns[valid], self.pcode, self.wstart)
        active = np.flatnonzero(j >= 0)
        t = times_ns
        while active.size:  # rounds only for overlapping admissions; most resolve in the first
            jj = j[active]
            inside = t[active] <= self.end[jj]
            result[active[inside]] = jj[inside]
            rest = active[~inside]
            rest = rest[t[rest] <= self.reach[j[rest]]]  # an earlier admission still holds it
            rest = rest[j[rest] > 0]
            rest = rest[self.pcode[j[rest] - 1] == self.pcode[j[rest]]]  # never another patient
            j[rest] -= 1
            active = rest
        return result


def _asof(keys: np.ndarray, t: np.ndarray, right_keys: np.ndarray, right_t: np.ndarray):
    """For each (key, t): position in the right arrays of the last row with the same key and
    right_t <= t (the right arrays sorted by (key, right_t)), or -1."""
    left = pd.DataFrame({"k": keys, "t": t, "i": np.arange(len(t))}).sort_values("t", kind="stable")
    right = pd.DataFrame({"k": right_keys, "t": right_t, "j": np.arange(len(right_t))})
    right = right.sort_values("t", kind="stable")
    matched = pd.merge_asof(left, right, on="t", by="k", direction="backward",
                            allow_exact_matches=True)
    out = np.full(len(t), -1, dtype=np.int64)
    out[matched["i"].to_numpy()] = matched["j"].fillna(-1).to_numpy(np.int64)
    return out


def _inside_any(key: np.ndarray, t: np.ndarray, iv_key: np.ndarray, iv_start: np.ndarray,
                iv_end: np.ndarray) -> np.ndarray:
    """Per (key, t): does any interval with that key contain t (ends included)?"""
    out = np.zeros(len(t), dtype=bool)
    ok = key >= 0
    if not ok.any() or not len(iv_key):
        return out
    order = np.lexsort((iv_start, iv_key))
    k, s, e = iv_key[order], iv_start[order], iv_end[order]
    reach = pd.Series(e).groupby(k).cummax().to_numpy()
    j = _asof(key[ok], t[ok], k, s)
    hit = j >= 0
    inside = np.zeros(j.size, dtype=bool)
    inside[hit] = t[ok][hit] <= reach[j[hit]]
    out[ok] = inside
    return out


def episodes_at(patients: pd.Series, times: pd.Series, events: Events) -> pd.DataFrame:
    """Per image (patient, time): S.EPISODE (the admission's id as text; NaN for none), S.OFFSET
    and the state columns by the rules above, on the images' index. Patient ids are integers or
    text, the same kind in the images and the events."""
    index = patients.index
    adm = _Admissions(events.admissions)
    t = _ns(times.to_numpy())
    pos = adm.pick(patients.to_numpy(), t)
    has = pos >= 0
    timed = t != _NAT

    episode = np.full(len(t), np.nan, dtype=object)
    episode[has] = adm.episodes[pos[has]].astype(str).to_numpy(object)
    offset = np.full(len(t), np.nan)
    offset[has] = (t[has] - adm.start[pos[has]]) / _NS_PER_DAY

    iv = _interval_arrays(events.intervals, adm)
    unknown = np.full(len(t), S.UNKNOWN, dtype=object)
    out = pd.DataFrame({S.EPISODE: episode, S.OFFSET: offset}, index=index)
    for column, kind in ((S.IN_ICU, S.EVENT_ICU), (S.INTUBATION_PRESENT, S.EVENT_VENTILATION)):
        k_pos, k_start, k_end = iv[kind]
        inside = _inside_any(np.where(has, pos, -1), t, k_pos, k_start, k_end)
        out[column] = np.where(timed, _yn(inside), unknown)

    n_adm = len(adm.frame)
    died = adm.death != _NAT
    ended = adm.end != _OPEN_END
    survival = np.where(died, S.NO, np.where(ended, S.YES, S.UNKNOWN)).astype(object)
    went_icu = np.zeros(n_adm, dtype=bool)
    went_icu[iv[S.EVENT_ICU][0]] = True
    intubated = np.zeros(n_adm, dtype=bool)
    intubated[iv[S.EVENT_VENTILATION][0]] = True
    for column, per_admission in ((S.SURVIVAL, survival), (S.WENT_ICU, _yn(went_icu)),
                                  (S.INTUBATED, _yn(intubated))):
        values = unknown.copy()
        values[has] = per_admission[pos[has]]
        out[column] = values
    return out[list(OUTPUT_COLUMNS)]


def _interval_arrays(intervals: pd.DataFrame, adm: _Admissions) -> dict:
    """kind -> (admission position, start ns, end ns) of the intervals that belong to one."""
    out = {}
    iv = intervals.loc[:, list(INTERVAL_COLUMNS)]
    start_all, end_all = _ns(iv[START]), _ns(iv[END])
    named = iv[EPISODE].notna().to_numpy()
    pos = np.full(len(iv), -1, dtype=np.int64)
    if named.any():
        pos[named] = adm.episodes.get_indexer(_keys(iv.loc[named, EPISODE]))
    if (~named).any():
        pos[~named] = adm.pick(iv.loc[~named, PATIENT].to_numpy(), start_all[~named])
    end_all = np.where(end_all == _NAT, _OPEN_END, end_all)
    kinds = iv[KIND].to_numpy()
    usable = (pos >= 0) & (start_all != _NAT)
    for kind in INTERVAL_KINDS:
        sel = usable & (kinds == kind)
        out[kind] = (pos[sel], start_all[sel], end_all[sel])
    return out


def days_since_first(patients: pd.Series, times: pd.Series) -> pd.Series:
    """Without events, an episode is the patient and day 0 their first dated image: days since
    it, fractional; NaN for an image without a time."""
    t = pd.to_datetime(times)
    first = t.groupby(patients.to_numpy()).transform("min")
    return (t - first.to_numpy()) / pd.Timedelta(days=1)


def from_event_table(patient, kind, start, end) -> Events:
    """A long table of events (one row each: patient, kind in S.EVENT_KINDS, start, end) ->
    Events. Admissions get the id "<patient>/admission-<k>" (k: 1, 2, ... in start order per
    patient); a death belongs to the admission whose window holds its time (start; end ignored)."""
    frame = pd.DataFrame({PATIENT: pd.Series(patient).astype(str).to_numpy(),
                          KIND: pd.Series(kind).to_numpy(),
                          START: pd.to_datetime(pd.Series(start)).to_numpy(),
                          END: pd.to_datetime(pd.Series(end)).to_numpy()})
    adm = frame[frame[KIND] == S.EVENT_ADMISSION].sort_values([PATIENT, START], kind="stable")
    number = adm.groupby(PATIENT).cumcount() + 1
    admissions = pd.DataFrame({
        PATIENT: adm[PATIENT].to_numpy(),
        EPISODE: (adm[PATIENT] + "/admission-" + number.astype(str)).to_numpy(),
        START: adm[START].to_numpy(), END: adm[END].to_numpy(),
        WINDOW_START: adm[START].to_numpy(), DEATH: pd.NaT})
    admissions[DEATH] = pd.to_datetime(admissions[DEATH])
    deaths = frame[frame[KIND] == S.EVENT_DEATH]
    if len(deaths) and len(admissions):
        lookup = _Admissions(admissions)
        pos = lookup.pick(deaths[PATIENT].to_numpy(), _ns(deaths[START].to_numpy()))
        hit = pos >= 0
        died = pd.Series(deaths[START].to_numpy()[hit],
                         index=lookup.frame[EPISODE].to_numpy()[pos[hit]])
        died = died.groupby(level=0).min()
        admissions[DEATH] = admissions[EPISODE].map(died)
        admissions[DEATH] = pd.to_datetime(admissions[DEATH])
    ivs = frame[frame[KIND].isin(INTERVAL_KINDS)]
    intervals = pd.DataFrame({PATIENT: ivs[PATIENT].to_numpy(), EPISODE: np.nan,
                              KIND: ivs[KIND].to_numpy(), START: ivs[START].to_numpy(),
                              END: ivs[END].to_numpy()})
    return Events(admissions.reset_index(drop=True), intervals)
