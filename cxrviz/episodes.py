"""The store's patients and episodes: who the filters, the count and "go to" speak of (a patient:
patient_ids, patient_index, patient_positions), and what a trajectory, day 0, the time views and
the patients table's rows are per (an episode: a MIMIC admission; in the COVID collection the
patient: episode_index, events, aligned, episode_positions). A patient's images in no episode
make one unit of their own: a row of the table, with no day 0.

A mixin of cxrviz.store.Store (it uses the store's covid rows, position, trajectories and
artifact); built lazily and once (cached), so callbacks only index numpy arrays.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from cxrviz import schema as S
from cxrviz import words
from cxrviz.compute.timeline import ALIGN_OFFSET, aligned_days, event_offsets, time_order


class Episodes:
    """Patients and episodes of the store's cohort rows (see the module's docstring)."""

    @cached_property
    def patient_ids(self) -> np.ndarray:
        return np.array(sorted(self.covid[S.PATIENTID].unique()), dtype=object)

    @cached_property
    def patient_index(self) -> np.ndarray:
        """Per covid row: its patient's position in patient_ids."""
        return np.searchsorted(self.patient_ids, self.covid[S.PATIENTID].to_numpy(dtype=object))

    @cached_property
    def patients(self) -> pd.DataFrame:
        """patients.parquet: one row per episode (with its patient id), by patient then episode;
        episode_index points into it."""
        table = self.artifact.patients
        return table.sort_values([S.PATIENTID, S.EPISODE], na_position="first",
                                 kind="mergesort").reset_index(drop=True)

    @cached_property
    def table_columns(self) -> list:
        """The patients table's (and its CSV's) columns: patients.parquet's, without the episode
        where every episode is its patient (the COVID collection: it would repeat the id)."""
        return [c for c in S.PATIENT_COLUMNS if c != S.EPISODE or not self.episodes_are_patients]

    @staticmethod
    def _units(patientid, episode) -> pd.MultiIndex:
        return pd.MultiIndex.from_arrays([pd.Series(patientid, dtype=object).to_numpy(),
                                          pd.Series(episode, dtype=object).fillna("").to_numpy()])

    @cached_property
    def episode_index(self) -> np.ndarray:
        """Per covid row: its episode's row in `patients` (its unit of time)."""
        table = self._units(self.patients[S.PATIENTID], self.patients[S.EPISODE])
        index = table.get_indexer(self._units(self.covid[S.PATIENTID], self.covid[S.EPISODE]))
        if (index < 0).any():
            raise ValueError("patients.parquet lacks the episode of some images")
        return index.astype(np.int64)

    @cached_property
    def episode_ids(self) -> np.ndarray:
        """Per row of `patients`: its episode (None: a patient's images in no episode)."""
        return np.array([e if isinstance(e, str) else None for e in self.patients[S.EPISODE]],
                        dtype=object)

    @cached_property
    def episodes_are_patients(self) -> bool:
        """Every episode is its patient (the COVID collection, a cohort without events): the app
        then speaks of patients only."""
        p = self.patients
        return bool((p[S.EPISODE].astype(object) == p[S.PATIENTID].astype(object)).all())

    def episodes_of(self, patientid) -> np.ndarray:
        """The patient's rows in `patients` (their episodes, then images in no episode)."""
        hit = np.flatnonzero(self.patients[S.PATIENTID].to_numpy(dtype=object) == patientid)
        return hit

    def episode_of(self, image_id: str) -> int | None:
        pos = self.position.get(image_id)
        return None if pos is None else int(self.episode_index[pos])

    def episode_label(self, unit: int) -> str:
        """'205' (an episode that is its patient), '10000032, admission 20000001', or
        '10000032, no admission' (images outside every episode)."""
        row = self.patients.iloc[unit]
        pid, episode = str(row[S.PATIENTID]), row[S.EPISODE]
        if self.episodes_are_patients:
            return pid
        return f"{pid}, {words.EPISODE} {episode}" if isinstance(episode, str) \
            else f"{pid}, {words.NO_EPISODE}"

    def events(self, align: str) -> np.ndarray:
        """Per episode (rows of `patients`): day 0's offset under `align` (NaN: no such event;
        always NaN for images in no episode)."""
        cache = self.__dict__.setdefault("_events", {})
        if align not in cache:
            cache[align] = event_offsets(self.covid, align).reindex(
                self.episode_ids).to_numpy(np.float64)
        return cache[align]

    def aligned(self, align: str) -> np.ndarray:
        """Per covid row: its aligned day (timeline.aligned_days, the one definition; NaN:
        undated, in no episode, or no event), computed once per alignment."""
        cache = self.__dict__.setdefault("_aligned", {})
        if align not in cache:
            day = aligned_days(self.covid, align).to_numpy(np.float64)
            day.setflags(write=False)  # shared by every caller
            cache[align] = day
        return cache[align]

    def day_mask(self, align: str, lo=None, hi=None) -> np.ndarray | None:
        """Per covid row: inside the day range (None: no range, every image counts). lo / hi
        None are open ends. Any alignment but the reported offset is a range by itself: it
        leaves out undated images and episodes without the event."""
        if align == ALIGN_OFFSET and lo is None and hi is None:
            return None
        day = self.aligned(align)
        inside = np.isfinite(day)
        if lo is not None:
            inside &= day >= lo
        if hi is not None:
            inside &= day <= hi
        return inside

    def left_out(self, keep: np.ndarray, align: str) -> int:
        """Episodes with an image passing the filters that lack the alignment's event."""
        units = np.unique(self.episode_index[keep])
        return int(np.isnan(self.events(align)[units]).sum()) if align != ALIGN_OFFSET else 0

    @cached_property
    def edge_episodes(self) -> np.ndarray:
        """Per trajectory edge: its episode's row in `patients`."""
        t = self.trajectories
        return self._units(self.patients[S.PATIENTID], self.patients[S.EPISODE]).get_indexer(
            self._units(t[S.PATIENTID], t[S.EPISODE])).astype(np.int64)

    @cached_property
    def episode_positions(self) -> list:
        """Per row of `patients`: its images' covid rows in time order (undated last)."""
        order = time_order(self.covid).index.to_numpy()
        unit = self.episode_index[order]
        by_unit = order[np.argsort(unit, kind="stable")]
        return np.split(by_unit, np.cumsum(np.bincount(unit, minlength=len(self.patients)))[:-1])

    @cached_property
    def patient_positions(self) -> dict:
        """patientid -> row positions in time order across the patient's episodes (by time, else
        offset; undated last)."""
        order = time_order(self.covid.assign(_p=self.covid[S.PATIENTID]), by="_p")
        return {p: grp.index.to_numpy() for p, grp in order.groupby(S.PATIENTID, sort=False)}

    def patient_images(self, patientid: str) -> pd.DataFrame:
        pos = self.patient_positions.get(patientid)
        return self.covid.iloc[pos] if pos is not None else self.covid.iloc[:0]
