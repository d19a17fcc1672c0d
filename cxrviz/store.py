"""Read-only access to one artifact for the app: loaded once, filtered in memory, never re-read.

Everything a callback needs is derived here at start-up (category codes, per-patient counts,
density percentiles, id -> row lookups), so callbacks only index numpy arrays.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from cxrviz import schema as S
from cxrviz import words
from cxrviz.filters import FILTERS, RANGE
from cxrviz.episodes import Episodes
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
class Store(Episodes):
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
        cohort = (images[S.ROLE] == S.ROLE_COHORT).to_numpy()
        if cohort.all() and images.index.equals(pd.RangeIndex(len(images))):
            covid = images  # the artifact's own table, not a copy (~400 MB at 10^6 images)
        else:
            covid = images[cohort].reset_index(drop=True)
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
        self.image_ids, self.patient_positions, self.episode_positions  # noqa: B018
        self.patient_index, self.patients, self.episode_index, self.evaluation  # noqa: B018
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
    def has_known(self, column: str) -> bool:
        """Does images.parquet have `column` with at least one known value (not blank, not
        'unknown') among the cohort's images? The one rule for which filters and which detail
        and hover fields an artifact offers (no country on a MIMIC map)."""
        cache = self.__dict__.setdefault("_has_known", {})
        if column not in cache:
            values = self.covid[column] if column in self.covid else None
            cache[column] = values is not None and bool(
                (values.notna() & ~values.isin(["", S.UNKNOWN])).any())
        return cache[column]

    @cached_property
    def offered(self) -> tuple:
        """The filters this artifact offers (cxrviz.filters: their column has a known value)."""
        return tuple(f for f in FILTERS if f.offered(self))

    def default_filters(self) -> dict:
        """Every filter at its "everything" value."""
        out = {}
        for f in FILTERS:
            out.update(f.defaults(self))
        return out

    def mask(self, filters: dict | None) -> np.ndarray:
        """Boolean per covid row: does it pass every active filter (keys of cxrviz.filters)?"""
        keep = np.ones(len(self.covid), dtype=bool)
        for flt in FILTERS:
            only = flt.mask(self, filters or {})
            if only is not None:
                keep &= only
        return keep

    def unknown_kept(self, filters: dict) -> tuple:
        """(per row: unknown in an active range filter that keeps unknowns, words) -> the count
        says how many such images it includes."""
        rows = np.zeros(len(self.covid), bool)
        names = []
        for flt in FILTERS:
            kept = flt.unknown_kept(self, filters or {})
            if kept is not None:
                rows |= kept
                names.append(flt.label.lower())
        return rows, " or ".join(names)

    def emptied_by(self, filters: dict) -> str | None:
        """The filter (in the table's order) after which no image is left, if any."""
        keep = np.ones(len(self.covid), bool)
        for flt in FILTERS:
            only = {k: v for k, v in (filters or {}).items() if k in flt.keys()}
            keep &= self.mask(only)
            if not keep.any():
                return flt.label
        return None

    def count_text(self, keep: np.ndarray, days: tuple | None = None,
                   filters: dict | None = None) -> str:
        """'n of N images, k patients' (+ ' · days a to b' with a day range, how many are in
        with an unknown value, what emptied an empty result); the WebGL map
        (frontend/src/view.js, texts) writes the same words."""
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

    def display_file(self, image_id: str) -> Path | None:
        """The image file shown for a known id: its display JPEG, or (an artifact built with
        --display none) its source file when the dataset folder is reachable from here; None
        for anything else (an unknown id never builds a path)."""
        if image_id not in self.position and image_id not in self.rsna_ids:
            return None
        if self.artifact.display_size is None:
            return self.artifact.source_file(image_id)[0]
        return self.artifact.display_path(image_id)

    def display_jpeg(self, image_id: str) -> tuple:
        """(JPEG bytes, None) or (a JPEG saying why, the reason) for a known id of an artifact
        built with --display none: the source image rendered as precompute renders display
        JPEGs (the last few kept), or a card naming why it cannot be read here."""
        from cxrviz.data.images import notice_jpeg

        path, why = self.artifact.source_file(image_id)
        if path is None:
            return notice_jpeg(f"Image not available: {why}."), why
        try:
            return _rendered(str(path), path.stat().st_mtime_ns), None
        except Exception as exc:  # ImageSkip, OSError: a file changed since the map was built
            why = f"the source image cannot be read ({exc})"
            return notice_jpeg(f"Image not available: {why}."), why

    def display_size(self, image_id: str) -> tuple:
        """(width, height) of what /display/<id>.jpg serves, from the JPEG's header."""
        from PIL import Image

        if self.artifact.display_size is None:
            with Image.open(io.BytesIO(self.display_jpeg(image_id)[0])) as im:
                return im.size
        path = self.display_file(image_id)
        with Image.open(path) as im:
            return im.size


@lru_cache(maxsize=16)
def _rendered(path: str, mtime_ns: int) -> bytes:
    """A source image as a display JPEG (the click's detail panel asks for its size, then the
    page for its bytes: one decode for both). Keyed by the file's mtime too."""
    from cxrviz.data.images import decode_xray, display_jpeg

    return display_jpeg(decode_xray(Path(path).read_bytes()))
