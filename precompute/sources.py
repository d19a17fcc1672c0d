"""The sources precompute reads: one table of readers, and one form for what each gives back.

`READERS` maps a KIND (the `KIND:PATH` of `--dataset` / `--reference`) to its role and the
function that reads it. Adding a source touches its reader (cxrviz/data/) and this table only.
The COVID collection keeps its own reader (cxrviz.data.covid) and is wrapped here into the same
`Source` form as the `cxrviz.data.base.Reader` subclasses (MIMIC, a hospital's export), so its
artifact is what it was.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from cxrviz import schema as S
from cxrviz.data.paths import OUTSIDE_REASON

# Names listed per exclusion group in the manifest (the count stays exact): MIMIC excludes
# ~133k lateral films, which the manifest names by count, not one by one.
MAX_LISTED_FILES = 1000
DEFAULT_KIND = S.SOURCE_COVID


@dataclass
class Source:
    """One source's candidates and its account, in the pipeline's one form."""

    name: str
    role: str
    frame: pd.DataFrame  # candidates: S.image_columns' metadata part + S.PATH
    input_rows: int  # every input row: len(frame) + excluded + skipped (before embedding)
    excluded: list  # manifest "excluded" groups (S.E_* keys, plus "source")
    skipped: list  # manifest "skipped" entries ({"source", "filename", "reason"})
    inputs: dict = field(default_factory=dict)  # what was read (paths, sha256)
    provided: tuple = ()  # schema columns the source really fills
    notes: list = field(default_factory=list)
    made_unknown: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # reader-specific facts (covid's shared files)

    def limited(self, limit: int | None) -> "Source":
        """The first `limit` candidates; the rest are excluded 'beyond --limit', counted."""
        if limit is None or len(self.frame) <= limit:
            return self
        beyond = self.frame.iloc[limit:]
        self.excluded = self.excluded + groups(
            pd.Series(S.EXCLUDED_LIMIT, index=beyond.index),
            pd.Series(str(limit), index=beyond.index), beyond[S.FILENAME], self.name)
        self.frame = self.frame.head(limit)
        return self


def groups(reasons: pd.Series, raw_values: pd.Series, filenames: pd.Series, source: str) -> list:
    """Rows left off the map by design, grouped by (reason, raw value): exact counts, at most
    MAX_LISTED_FILES names each."""
    frame = pd.DataFrame({"reason": reasons.to_numpy(), "raw": raw_values.to_numpy(),
                          "file": filenames.astype(str).str.strip().to_numpy()})
    return [{S.E_REASON: reason, S.E_RAW_VALUE: value, S.E_COUNT: int(len(grp)),
             S.E_FILENAMES: grp["file"].head(MAX_LISTED_FILES).tolist(), S.SOURCE: source}
            for (reason, value), grp in frame.groupby(["reason", "raw"], sort=True)]


def _cap(group: dict, source: str) -> dict:
    return {**group, S.E_FILENAMES: group[S.E_FILENAMES][:MAX_LISTED_FILES], S.SOURCE: source}


def _covid(path: str, options: dict) -> Source:
    from cxrviz.data.covid import read_covid

    covid = read_covid(path)
    frame = covid.frame.copy()
    frame[S.EPISODE] = frame[S.PATIENTID]  # the collection's episode is its patient
    frame[S.TIME] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    frame[S.ROLE] = S.ROLE_COHORT
    return Source(S.SOURCE_COVID, S.ROLE_COHORT, frame, covid.metadata_rows,
                  [_cap(g, S.SOURCE_COVID) for g in covid.excluded], list(covid.outside),
                  {"metadata_sha256": covid.metadata_sha256}, tuple(S.METADATA_COLUMNS),
                  made_unknown=covid.made_unknown,
                  extra={"shared_files": covid.shared_files})


def _rsna(path: str, options: dict) -> Source:
    from cxrviz.data.rsna import read_rsna

    subset = options.get("rsna_subset", "pneumonia")
    rsna = read_rsna(path, subset)
    frame = rsna.frame.copy()
    frame[S.EPISODE] = np.nan  # a reference image belongs to no episode
    frame[S.TIME] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    frame[S.ROLE] = S.ROLE_REFERENCE
    skipped = [{"source": S.SOURCE_RSNA, "filename": f, "reason": OUTSIDE_REASON}
               for f in rsna.outside]
    skipped += [{"source": S.SOURCE_RSNA, "filename": f,
                 "reason": "no label for this patientId in torchxrayvision's RSNA labels"}
                for f in rsna.unlabelled]
    notes = [f"RSNA: {rsna.labelled_absent} labelled images of subset '{subset}' are not in "
             f"{path}"] if rsna.labelled_absent else []
    return Source(S.SOURCE_RSNA, S.ROLE_REFERENCE, frame, len(frame) + len(skipped), [],
                  skipped, {"rsna_subset": subset}, (S.SEX, S.AGE, S.VIEW, S.FINDING), notes)


def _from_rows(rows) -> Source:
    """A cxrviz.data.base.Reader's Rows -> Source."""
    frame = rows.frame
    for column in S.METADATA_COLUMNS:  # the reader already filled neutral values
        if column not in frame:
            raise AssertionError(f"reader {rows.source} left out {column}")
    return Source(rows.source, rows.role, frame, rows.input_rows,
                  [{**g, S.SOURCE: rows.source} for g in rows.exclusion_groups(MAX_LISTED_FILES)],
                  rows.skipped_entries(), dict(rows.inputs), tuple(rows.provided),
                  list(rows.notes))


def _mimic(path: str, options: dict) -> Source:
    from cxrviz.data.mimic import MimicReader

    return _from_rows(MimicReader(path, options.get("mimic_iv")).read())


def _cohort(path: str, options: dict) -> Source:
    from cxrviz.data.cohort import CohortReader

    return _from_rows(CohortReader(path).read())


@dataclass(frozen=True)
class Kind:
    role: str
    read: Callable[[str, dict], Source]
    what: str  # for --help


READERS = {
    S.SOURCE_COVID: Kind(S.ROLE_COHORT, _covid, "a covid-chestxray-dataset clone"),
    S.SOURCE_MIMIC: Kind(S.ROLE_COHORT, _mimic, "a MIMIC-CXR-JPG 2.x root (with --mimic-iv)"),
    S.SOURCE_COHORT: Kind(S.ROLE_COHORT, _cohort, "a folder with images.csv (and events.csv)"),
    S.SOURCE_RSNA: Kind(S.ROLE_REFERENCE, _rsna, "the Kaggle RSNA Pneumonia folder"),
}


def parse(spec: str, role: str, default: str | None = None) -> tuple[str, str]:
    """'KIND:PATH' -> (KIND, PATH); a bare PATH is of kind `default`. The KIND must read a
    source of `role`. Raises ValueError with the kinds there are."""
    kinds = sorted(k for k, kind in READERS.items() if kind.role == role)
    head, sep, tail = spec.partition(":")
    if sep and head in READERS:
        kind, path = head, tail
    elif sep and head.isidentifier() and len(head) > 1 and not Path(spec).exists():
        raise ValueError(f"unknown source kind {head!r} in {spec!r}; one of {', '.join(kinds)}")
    elif default is None:
        raise ValueError(f"{spec!r} names no source kind; write KIND:PATH with KIND one of "
                         f"{', '.join(kinds)}")
    else:
        kind, path = default, spec
    if READERS[kind].role != role:
        raise ValueError(f"{kind!r} is a {READERS[kind].role} source, not a {role} one; "
                         f"here KIND is one of {', '.join(kinds)}")
    if not path:
        raise ValueError(f"{spec!r}: no path after {kind}:")
    return kind, path


def read(kind: str, path: str, options: dict) -> Source:
    return READERS[kind].read(path, options)
