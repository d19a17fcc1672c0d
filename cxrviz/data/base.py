"""The one reader contract: a source folder -> schema rows + an account of every input row.

Every source (the COVID collection, MIMIC-CXR + MIMIC-IV, a hospital's own export, the RSNA
reference cloud) is a `Reader` subclass, in the style of torchxrayvision's `datasets.py`: this base
documents and enforces what every adapter provides, the adapters only map their raw metadata.

What `Reader.read()` returns (`Rows`):
- `frame`: one row per candidate for embedding, in schema columns: S.METADATA_COLUMNS (a source
  that lacks one gets its neutral value: "" for text, S.UNKNOWN for codes, NaN for numbers),
  S.EPISODE and S.TIME, S.ROLE, S.FILE (the file to decode, relative to the dataset folder) and
  S.PATH (the same file as an absolute path that resolves inside the folder after symlinks;
  precompute opens it, an artifact never stores it). Sources may add prefixed columns
  (S.CHEXPERT_PREFIX, S.EXTRA_PREFIX). Image ids are unique.
- `account`: one row per input row that is not a candidate: its row number in the input file
  (S.A_ROW), S.FILE, S.A_OUTCOME (excluded by design, or skipped), S.E_REASON and S.E_RAW_VALUE.
  len(frame) + len(account) == input_rows, always (checked here).
- `role` (S.ROLE_COHORT: patients, episodes, time, states, drawn with trajectories;
  S.ROLE_REFERENCE: a background cloud) is a property of the reader, apart from `source`, its name.
- `provided`: the schema columns the source really fills, so the app can leave out filters and
  fields a source has not got. `inputs`: sha256 of every metadata file read. `notes`: what a
  person should know (values made unknown, ids made up), with counts.

An adapter implements `_draft()` (all input rows, with exclusions decided), and may override
`_after_locate()` (work that needs the checked files, such as reading DICOM headers) and
`_episodes()` (episode, day and states; by default an episode is a patient, the day as given).
Everything is column-wise pandas / numpy: a reader of 377k rows has no Python loop over rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from cxrviz import schema as S
from cxrviz.data.folder import locate

AGE_RANGE = (0.0, 120.0)  # years; outside it an age is unknown (counted in notes)
OFFSET_RANGE = (-365.0, 3650.0)  # days; likewise
ACCOUNT_COLUMNS = (S.A_ROW, S.FILE, S.A_OUTCOME, S.E_REASON, S.E_RAW_VALUE)
_TEXT_DEFAULTS = {S.FILENAME: "", S.FINDING: "", S.LOCATION: "", S.DOI: "", S.URL: "",
                  S.LICENSE: "", S.CLINICAL_NOTES: "", S.PATIENTID: ""}
_CODE_DEFAULTS = {S.VIEW: S.UNKNOWN, S.SEX: S.UNKNOWN, S.FINDING_GROUP: "unknown",
                  S.COUNTRY: S.UNKNOWN, S.SUBREGION: S.UNKNOWN, S.CONTINENT: S.UNKNOWN,
                  **{c: S.UNKNOWN for c in S.YN_COLUMNS}}
_NUMBER_DEFAULTS = (S.OFFSET, S.AGE)


class ReaderError(Exception):
    """The dataset cannot be used at all (not one bad image): precompute stops with exit 3."""


class ColumnError(ReaderError):
    """A required column is missing from a metadata file: names the file, the column and the
    columns it found, so the fix is obvious."""

    def __init__(self, path, column: str, found, expected: str = ""):
        self.path, self.column, self.found = Path(path), column, list(found)
        shown = ", ".join(repr(c) for c in self.found) or "none"
        super().__init__(f"{self.path}: required column {column!r} is missing "
                         f"(columns found: {shown}){'; ' + expected if expected else ''}")


@dataclass
class Draft:
    """An adapter's output: every input row (index 0..input_rows-1, file order) with S.FILE,
    S.A_OUTCOME (candidate / excluded / skipped), S.E_REASON, S.E_RAW_VALUE and the schema
    columns it can fill."""

    frame: pd.DataFrame
    inputs: dict = field(default_factory=dict)
    provided: tuple = ()
    notes: list = field(default_factory=list)


@dataclass
class Rows:
    source: str
    role: str
    root: Path
    frame: pd.DataFrame
    account: pd.DataFrame
    input_rows: int
    inputs: dict = field(default_factory=dict)
    provided: tuple = ()
    notes: list = field(default_factory=list)

    def counts(self) -> dict:
        outcome = self.account[S.A_OUTCOME]
        return {"rows": self.input_rows, S.OUTCOME_CANDIDATE: len(self.frame),
                S.OUTCOME_EXCLUDED: int((outcome == S.OUTCOME_EXCLUDED).sum()),
                S.OUTCOME_SKIPPED: int((outcome == S.OUTCOME_SKIPPED).sum())}

    def exclusion_groups(self, max_files: int | None = None) -> list:
        """Excluded rows grouped by (reason, raw value) in the manifest's form (S.E_* keys),
        with at most max_files file names per group."""
        excluded = self.account[self.account[S.A_OUTCOME] == S.OUTCOME_EXCLUDED]
        groups = excluded.groupby([S.E_REASON, S.E_RAW_VALUE], sort=True)[S.FILE]
        return [{S.E_REASON: reason, S.E_RAW_VALUE: raw, S.E_COUNT: int(files.size),
                 S.E_FILENAMES: files.head(max_files).tolist() if max_files else files.tolist()}
                for (reason, raw), files in groups]

    def skipped_entries(self) -> list:
        """Skipped rows as the manifest lists them today ({"source", "filename", "reason"})."""
        skipped = self.account[self.account[S.A_OUTCOME] == S.OUTCOME_SKIPPED]
        return [{"source": self.source, "filename": f, "reason": r}
                for f, r in zip(skipped[S.FILE], skipped[S.E_REASON])]


class Reader:
    """Base of every source. Subclasses set `source` and `role` and implement `_draft()`."""

    source: ClassVar[str] = ""
    role: ClassVar[str] = S.ROLE_COHORT

    def __init__(self, root, *, check_files: bool = True):
        """check_files=False checks paths lexically only (no file system walk): for benchmarks
        of metadata without images."""
        self.root = Path(root).expanduser().resolve()
        self.check_files = check_files
        if not self.root.is_dir():
            raise ReaderError(f"dataset folder not found: {self.root}")

    # ---- what adapters implement ------------------------------------------------------------
    def _draft(self) -> Draft:
        raise NotImplementedError

    def _after_locate(self, draft: Draft) -> Draft:
        return draft

    def _episodes(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Default: a cohort's episode is its patient and the day is as given; a reference
        image has no episode."""
        if self.role == S.ROLE_COHORT and S.PATIENTID in frame:
            frame[S.EPISODE] = frame[S.PATIENTID]
        return frame

    # ---- the contract, enforced once --------------------------------------------------------
    def read(self) -> Rows:
        draft = self._draft()
        f = draft.frame
        n = len(f)
        if not f.index.equals(pd.RangeIndex(n)):
            raise AssertionError(f"{type(self).__name__}._draft must index rows 0..n-1")
        todo = f[S.A_OUTCOME] == S.OUTCOME_CANDIDATE
        reasons, paths = locate(self.root, f.loc[todo, S.FILE], walk=self.check_files)
        f[S.PATH] = paths.reindex(f.index)
        bad = reasons[reasons != ""]
        f.loc[bad.index, S.A_OUTCOME] = S.OUTCOME_SKIPPED
        f.loc[bad.index, S.E_REASON] = bad
        f.loc[bad.index, S.E_RAW_VALUE] = f.loc[bad.index, S.FILE]
        draft = self._after_locate(draft)
        f, draft.frame = draft.frame, None
        chosen = (f[S.A_OUTCOME] == S.OUTCOME_CANDIDATE).to_numpy()
        account = f.loc[~chosen, [S.FILE, S.A_OUTCOME, S.E_REASON, S.E_RAW_VALUE]]
        account = _plain_dtypes(account.rename_axis(S.A_ROW).reset_index())
        account[S.E_RAW_VALUE] = account[S.E_RAW_VALUE].fillna("").astype(str)
        frame = f[chosen]
        del f  # the whole input's columns go before the candidates' are widened
        frame, notes = _complete(self._episodes(frame.copy()), self.source, self.role)
        if len(frame) + len(account) != n:
            raise AssertionError(f"{type(self).__name__}: {len(frame)} candidates + "
                                 f"{len(account)} accounted != {n} rows")
        return Rows(self.source, self.role, self.root, frame.reset_index(drop=True),
                    account[list(ACCOUNT_COLUMNS)], n, draft.inputs, tuple(draft.provided),
                    [*draft.notes, *notes])


def _plain_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Arrow-backed columns (fast while reading) -> the numpy / object dtypes the pipeline and
    the artifact use today: text as object with NaN for missing, numbers as float64."""
    for column in frame.columns:  # one column at a time: the Arrow copy goes as it is replaced
        values = frame[column]
        if isinstance(values.dtype, pd.ArrowDtype):
            kind = values.dtype.kind
            if kind in "iuf":
                frame[column] = values.astype("float64")
            elif kind == "M":
                frame[column] = values.astype("datetime64[ns]")
            else:
                frame[column] = values.to_numpy(object, na_value=np.nan)
    return frame


def _complete(frame: pd.DataFrame, source: str, role: str):
    """Neutral values for schema columns the source lacks, plausible ranges, unique ids, order."""
    notes = []
    frame = _plain_dtypes(frame)
    frame[S.SOURCE] = source
    frame[S.ROLE] = role
    for column, value in {**_TEXT_DEFAULTS, **_CODE_DEFAULTS}.items():
        if column not in frame:
            frame[column] = value
        else:
            frame[column] = frame[column].fillna(value)
    for column in _NUMBER_DEFAULTS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce") if column in frame \
            else np.nan
    if S.EPISODE not in frame:
        frame[S.EPISODE] = np.nan
    frame[S.TIME] = pd.to_datetime(frame[S.TIME]) if S.TIME in frame else pd.NaT
    for column, (low, high), unit in ((S.AGE, AGE_RANGE, "years"),
                                      (S.OFFSET, OFFSET_RANGE, "days")):
        values = frame[column]
        wrong = values.notna() & ((values < low) | (values > high))
        if wrong.any():
            raw = ", ".join(f"{v:g}" for v in values[wrong].drop_duplicates().head(10))
            notes.append(f"{int(wrong.sum())} {column} values outside {low:g}..{high:g} {unit} "
                         f"made unknown ({raw})")
            frame.loc[wrong, column] = np.nan
    ids = frame[S.IMAGE_ID].astype(str)
    twice = ids.duplicated(keep=False).to_numpy()
    if twice.any():  # a file listed twice still gets two distinct, stable ids
        dup = ids[twice]
        seen = dup.groupby(dup).cumcount()
        frame.loc[twice, S.IMAGE_ID] = dup.where(seen == 0, dup + "-" + (seen + 1).astype(str))
    first = [*S.METADATA_COLUMNS, *S.EPISODE_COLUMNS, S.ROLE, S.FILE, S.PATH]
    rest = [c for c in frame.columns if c not in first and not c.startswith("_")
            and c not in (S.A_OUTCOME, S.E_REASON, S.E_RAW_VALUE)]
    return frame[first + rest], notes
