"""Read-only access to one artifact for the app: loaded once, filtered in memory, never re-read.

Everything a callback needs is derived here at start-up (category codes, per-patient counts,
density percentiles, id -> row lookups), so callbacks only index numpy arrays.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from cxrviz import schema as S
from cxrviz import words
from cxrviz.compute.timeline import ALIGN_OFFSET, aligned_days, event_offsets, time_order
from cxrviz.filters import (FILTERS, IDS, KEEP_UNKNOWN, LIST, MIN_IMAGES, RANGE, keeps_unknown,
                            split_ids, unknown_key)
from cxrviz.io.artifact import Artifact, read_artifact

UNTRAINED_WARNING = "Embedding from an untrained network: not meaningful"


def day_label(lo, hi) -> str:
    """'days 3 to 10', 'days 3 and later', 'days up to 10', or '' (None: an open end)."""
    if lo is not None and hi is not None:
        return f"days {lo:g} to {hi:g}"
    if lo is not None:
        return f"days {lo:g} and later"
    if hi is not None:
        return f"days up to {hi:g}"
    return ""

# Columns a user can colour by as categories (the others, and the 18 outputs, on a scale).
CATEGORICAL = {
    S.STATE: list(S.STATES),
    S.SURVIVAL: [S.YES, S.NO, S.UNKNOWN],
    S.FINDING_GROUP: list(S.FINDING_GROUPS),
    S.VIEW: list(S.FRONTAL_VIEWS),
    S.CONTINENT: None,  # categories from the data
    S.SEX: ["M", "F", S.UNKNOWN],
}

@dataclass
class Store:
    artifact: Artifact
    covid: pd.DataFrame  # covid rows, positional index 0..n-1 (the map's main trace)
    rsna: pd.DataFrame
    trajectories: pd.DataFrame  # with from_pos / to_pos into `covid`
    position: dict  # image_id -> row position in covid
    images_per_patient: np.ndarray  # per covid row: how many images its patient has
    density_percentile: np.ndarray  # per covid row, as stored by precompute
    ranges: dict  # RANGE filter key -> (lo, hi) of its column, whole numbers
    rsna_ids: frozenset

    @classmethod
    def open(cls, path) -> "Store":
        return cls.from_artifact(read_artifact(path))

    @classmethod
    def from_artifact(cls, art: Artifact) -> "Store":
        images = art.images
        covid = images[images[S.ROLE] == S.ROLE_COHORT].reset_index(drop=True)
        rsna = images[images[S.ROLE] == S.ROLE_REFERENCE].reset_index(drop=True)
        position = {iid: i for i, iid in enumerate(covid[S.IMAGE_ID])}
        traj = art.trajectories.copy()
        traj["from_pos"] = traj[S.FROM_IMAGE_ID].map(position)
        traj["to_pos"] = traj[S.TO_IMAGE_ID].map(position)
        traj = traj.dropna(subset=["from_pos", "to_pos"]).astype({"from_pos": int, "to_pos": int})
        per_patient = covid.groupby(S.PATIENTID)[S.IMAGE_ID].transform("size").to_numpy()
        ranges = {}
        for f in FILTERS:
            if f.kind == RANGE:
                known = covid[f.column].dropna()
                ranges[f.key] = ((int(np.floor(known.min())), int(np.ceil(known.max())))
                                 if len(known) else (0, 100))
        return cls(art, covid, rsna, traj, position, per_patient,
                   covid[S.DENSITY_PERCENTILE].to_numpy(), ranges, frozenset(rsna[S.IMAGE_ID]))

    @cached_property
    def evaluation(self) -> dict | None:
        """The artifact's LOCO evaluation, read once at start-up (None: not computed)."""
        return self.artifact.evaluation()

    @cached_property
    def image_ids(self) -> np.ndarray:
        return self.covid[S.IMAGE_ID].to_numpy(dtype=object)

    def warm(self) -> "Store":
        """Build the cached lookups now, so no user's first click pays for them."""
        self.image_ids, self.patient_positions  # noqa: B018
        self.patient_index, self.patients, self.evaluation  # noqa: B018
        return self

    # ---- facts --------------------------------------------------------------------------------
    @property
    def pathologies(self) -> list:
        return self.artifact.pathologies

    @property
    def pretrained(self) -> bool:
        return self.artifact.pretrained

    @property
    def warning(self) -> str | None:
        return None if self.pretrained else UNTRAINED_WARNING

    def categories(self, column: str) -> list:
        known = CATEGORICAL.get(column)
        present = self.options(column)
        if known is None:
            return present
        return [c for c in known if c in set(present)] + [c for c in present if c not in known]

    def options(self, column: str) -> list:
        cache = self.__dict__.setdefault("_options", {})
        if column not in cache:
            cache[column] = sorted(self.covid[column].dropna().unique(),
                                   key=lambda v: (v == S.UNKNOWN, v))
        return cache[column]

    # ---- filtering ----------------------------------------------------------------------------
    def default_filters(self) -> dict:
        """Every filter at its "everything" value."""
        defaults = {LIST: lambda f: [], RANGE: lambda f: list(self.ranges[f.key]),
                    MIN_IMAGES: lambda f: 1, IDS: lambda f: ""}
        out = {f.key: defaults[f.kind](f) for f in FILTERS}
        out.update({unknown_key(f): [KEEP_UNKNOWN] for f in FILTERS if f.kind == RANGE})
        return out

    def mask(self, filters: dict | None) -> np.ndarray:
        """Boolean per covid row: does it pass every active filter (keys of cxrviz.filters)?"""
        f = filters or {}
        keep = np.ones(len(self.covid), dtype=bool)
        for flt in FILTERS:
            value = f.get(flt.key)
            if not value:
                continue
            column = self.covid[flt.column]
            if flt.kind == LIST:
                keep &= column.isin(list(value)).to_numpy()
            elif flt.kind == RANGE:
                lo, hi = self.ranges[flt.key]
                if value[0] > lo or value[1] < hi:
                    a = column.to_numpy(dtype=float)
                    inside = (a >= value[0]) & (a <= value[1])
                    if keeps_unknown(f, flt):
                        inside |= np.isnan(a)  # unknown is not "outside the range"
                    keep &= inside
                elif not keeps_unknown(f, flt):
                    keep &= ~np.isnan(column.to_numpy(dtype=float))
            elif flt.kind == MIN_IMAGES:
                if int(value) > 1:
                    keep &= self.images_per_patient >= int(value)
            elif flt.kind == IDS:
                wanted = split_ids(value)
                if wanted:
                    only = np.zeros(len(keep), dtype=bool)
                    for pid in wanted:
                        only[self.patient_positions.get(pid, [])] = True
                    keep &= only
        return keep

    def unknown_kept(self, filters: dict) -> tuple:
        """(per row: unknown in an active range filter that keeps unknowns, words) -> the count
        says how many such images it includes."""
        rows = np.zeros(len(self.covid), bool)
        names = []
        for flt in FILTERS:
            value = (filters or {}).get(flt.key)
            if flt.kind != RANGE or not value:
                continue
            lo, hi = self.ranges[flt.key]
            if (value[0] > lo or value[1] < hi) and keeps_unknown(filters or {}, flt):
                rows |= self.covid[flt.column].isna().to_numpy()
                names.append(flt.label.lower())
        return rows, " or ".join(names)

    def emptied_by(self, filters: dict) -> str | None:
        """The filter (in the table's order) after which no image is left, if any."""
        keep = np.ones(len(self.covid), bool)
        for flt in FILTERS:
            only = {k: v for k, v in (filters or {}).items()
                    if k in (flt.key, unknown_key(flt))}
            keep &= self.mask(only)
            if not keep.any():
                return flt.label
        return None

    def count_text(self, keep: np.ndarray, days: tuple | None = None,
                   filters: dict | None = None) -> str:
        """'n of N images, k patients' (+ ' · days a to b' with a day range, how many are in
        with an unknown value, what emptied an empty result); the browser's view
        (assets/cxrviz.js, drawView) writes the same words."""
        n, total = int(keep.sum()), len(keep)
        k = len(np.unique(self.patient_index[keep]))
        text = f"{n} of {total} images, {words.plural(k, 'patient')}"
        label = day_label(*days) if days else ""
        if label:
            text += f" · {label}"
        if filters:
            unknown, names = self.unknown_kept(filters)
            if (unknown & keep).any():
                text += f" ({int((unknown & keep).sum())} with {names} unknown)"
            emptied = None if n else self.emptied_by(filters)
            if emptied:
                text += f' · the filter "{emptied}" left none'
        return text

    # ---- time -----------------------------------------------------------------------------------
    @cached_property
    def patient_ids(self) -> np.ndarray:
        return np.array(sorted(self.covid[S.PATIENTID].unique()), dtype=object)

    @cached_property
    def patient_index(self) -> np.ndarray:
        """Per covid row: its patient's position in patient_ids."""
        return np.searchsorted(self.patient_ids, self.covid[S.PATIENTID].to_numpy(dtype=object))

    @cached_property
    def patients(self) -> pd.DataFrame:
        """patients.parquet, in patient_ids order."""
        return self.artifact.patients.set_index(S.PATIENTID).loc[self.patient_ids].reset_index()

    def events(self, align: str) -> np.ndarray:
        """Per patient (patient_ids order): day 0's offset under `align` (NaN: no such event)."""
        cache = self.__dict__.setdefault("_events", {})
        if align not in cache:
            cache[align] = event_offsets(self.covid, align).reindex(self.patient_ids) \
                .to_numpy(np.float64)
        return cache[align]

    def aligned(self, align: str) -> np.ndarray:
        """Per covid row: its aligned day (timeline.aligned_days, the one definition; NaN:
        undated or no event), computed once per alignment."""
        cache = self.__dict__.setdefault("_aligned", {})
        if align not in cache:
            day = aligned_days(self.covid, align).to_numpy(np.float64)
            day.setflags(write=False)  # shared by every caller
            cache[align] = day
        return cache[align]

    def day_mask(self, align: str, lo=None, hi=None) -> np.ndarray | None:
        """Per covid row: inside the day range (None: no range, every image counts). lo / hi
        None are open ends. Any alignment but the reported offset is a range by itself: it
        leaves out undated images and patients without the event."""
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
        """Patients passing the filters who lack the alignment's event."""
        patients = np.unique(self.patient_index[keep])
        return int(np.isnan(self.events(align)[patients]).sum()) if align != ALIGN_OFFSET else 0

    # ---- single images ------------------------------------------------------------------------
    def row(self, image_id: str):
        pos = self.position.get(image_id)
        if pos is not None:
            return self.covid.iloc[pos]
        if image_id in self.rsna_ids:
            return self.rsna[self.rsna[S.IMAGE_ID] == image_id].iloc[0]
        return None

    def logits(self, image_id: str) -> np.ndarray:
        row = self.row(image_id)
        return row[[S.logit_column(p) for p in self.pathologies]].to_numpy(dtype=float)

    @cached_property
    def patient_positions(self) -> dict:
        """patientid -> row positions in time order (offset, then filename; undated last)."""
        order = time_order(self.covid)
        return {p: grp.index.to_numpy() for p, grp in order.groupby(S.PATIENTID, sort=False)}

    def patient_images(self, patientid: str) -> pd.DataFrame:
        pos = self.patient_positions.get(patientid)
        return self.covid.iloc[pos] if pos is not None else self.covid.iloc[:0]

    def display_file(self, image_id: str) -> Path | None:
        """Path of the display JPEG for a known id; None for anything else (no path building)."""
        if image_id in self.position or image_id in self.rsna_ids:
            return self.artifact.display_path(image_id)
        return None

    def display_size(self, image_id: str) -> tuple:
        """(width, height) of the display JPEG, from its header (a few hundred bytes)."""
        from PIL import Image

        path = self.display_file(image_id)
        with Image.open(path) as im:
            return im.size
