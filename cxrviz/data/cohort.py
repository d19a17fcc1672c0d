"""A hospital's own export -> schema rows: DIR/images.csv and, optionally, DIR/events.csv.

images.csv: `patient_id` and `file` (relative to DIR: JPEG, PNG or DICOM) are required; `time`
(ISO date-time), `day`, `view`, `sex`, `age`, `finding`, `in_icu`, `intubation_present`,
`survival` are read where present; any other column is kept as S.EXTRA_PREFIX + name for the
detail panel. Where a DICOM's row leaves patient_id, time or view blank, its header fills them
(PatientID; AcquisitionDateTime, else StudyDate + StudyTime; ViewPosition), read without pixels.
A patient id still blank becomes "unknown-<file>", its own patient (counted in the notes).
Views: frontal ones are candidates, lateral ones and any other stated view are excluded with the
raw value; a view nobody states is kept as unknown (an export lists the films someone chose).

events.csv: `patient_id`, `event` (admission | icu | ventilation | death), `start`, `end` (blank
for a death, or for an admission or stay still going on). cxrviz.data.events' rules apply, an
admission being the episode and its start day 0. Without events.csv an episode is the patient,
day 0 their first dated image (or `day` as written), and ICU / intubation / survival come from
the per-image columns where given, else unknown.

Times with a UTC offset are converted to UTC; times without one are taken as written, so
images.csv, events.csv and the DICOM headers must share one clock.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cxrviz import schema as S
from cxrviz.data import events as E
from cxrviz.data.base import Draft, Reader, ReaderError
from cxrviz.data.covid import finding_group, normalise_view, normalise_yn
from cxrviz.data.tables import read_csv
from cxrviz.hashing import sha256_file

IMAGES, EVENTS = "images.csv", "events.csv"
REQUIRED = ("patient_id", "file")
EVENT_COLUMNS = ("patient_id", "event", "start", "end")
_KNOWN = {"patient_id": S.PATIENTID, "file": S.FILE, "time": S.TIME, "day": S.OFFSET,
          "view": S.VIEW, "sex": S.SEX, "age": S.AGE, "finding": S.FINDING,
          "in_icu": S.IN_ICU, "intubation_present": S.INTUBATION_PRESENT,
          "survival": S.SURVIVAL}
_PER_IMAGE_STATES = (S.IN_ICU, S.INTUBATION_PRESENT, S.SURVIVAL)
_LATERAL = {"L", "LL", "RL", "LATERAL", "LAT", "XTABLE LATERAL"}
_DICOM_TAGS = ("PatientID", "AcquisitionDateTime", "StudyDate", "StudyTime", "ViewPosition")
_RASTER = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_SEX = {"M": "M", "MALE": "M", "F": "F", "FEMALE": "F"}


_OFFSET = r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"


def parse_times(text: pd.Series) -> pd.Series:
    """ISO 8601 date-times -> naive datetime64 (an offset converts to UTC); NaT where blank or
    unreadable. Times with and without an offset are parsed apart: pandas 2.3 given both in one
    column carries an offset on to the naive times after it."""
    text = text.astype(object).where(text.notna(), None)
    aware = text.str.contains(_OFFSET, regex=True, na=False).to_numpy(bool)
    when = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    if aware.any():
        when[aware] = pd.to_datetime(text[aware], format="ISO8601", errors="coerce",
                                     utc=True).dt.tz_localize(None)
    if (~aware).any():
        when[~aware] = pd.to_datetime(text[~aware], format="ISO8601", errors="coerce")
    return when


def _text(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as plain Python strings (NaN for blank): a hospital's tables are small."""
    return frame.astype(object).where(frame.notna(), np.nan)


def _per_value(values: pd.Series, rule) -> pd.Series:
    """A rule applied once per distinct value, not once per row."""
    distinct = pd.unique(values)
    return values.map(dict(zip(distinct, (rule(v) for v in distinct))))


def _slug(text: pd.Series) -> pd.Series:
    return text.str.lower().str.replace(r"[^a-z0-9]+", "-", regex=True).str.strip("-")


def _dicom_fields(path: str) -> dict:
    """PatientID, time and ViewPosition from a DICOM header (no pixels); {} if not a DICOM."""
    import pydicom
    from pydicom.valuerep import DA, DT, TM

    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return {}  # the decoder records why the file cannot be read
    if head[128:132] != b"DICM":
        return {}
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(_DICOM_TAGS))
    except Exception:  # pydicom raises many types; the decoder reports a broken file later
        return {}
    when = None
    try:
        if ds.get("AcquisitionDateTime"):
            when = DT(str(ds.AcquisitionDateTime))
        elif ds.get("StudyDate"):
            day = DA(str(ds.StudyDate))
            clock = TM(str(ds.StudyTime)) if ds.get("StudyTime") else None
            when = pd.Timestamp(day) + (pd.Timedelta(hours=clock.hour, minutes=clock.minute,
                                                     seconds=clock.second,
                                                     microseconds=clock.microsecond)
                                        if clock is not None else pd.Timedelta(0))
    except ValueError:
        when = None
    if when is not None:
        when = pd.Timestamp(when)
        if when.tzinfo is not None:
            when = when.tz_convert("UTC").tz_localize(None)
    return {S.PATIENTID: str(ds.get("PatientID", "") or "").strip(), S.TIME: when,
            S.VIEW: str(ds.get("ViewPosition", "") or "").strip()}


class CohortReader(Reader):
    source = S.SOURCE_COHORT
    role = S.ROLE_COHORT

    def _draft(self) -> Draft:
        path = self.root / IMAGES
        raw = _text(read_csv(path, REQUIRED, keep_all=True,
                             what="images.csv needs patient_id and file (see README, Cohorts)"))
        f = pd.DataFrame(index=raw.index)
        for name, column in _KNOWN.items():
            if name in raw:
                f[column] = raw[name].str.strip().replace("", np.nan)
        for name in raw.columns:
            if name not in _KNOWN:
                f[S.EXTRA_PREFIX + name] = raw[name]
        self._notes, self._inputs = [], {IMAGES: sha256_file(path)}
        if S.TIME in f:
            written = f[S.TIME]
            f[S.TIME] = parse_times(written)
            self._count(written.notna() & f[S.TIME].isna(), "time values unreadable (kept, "
                        "time unknown)", written)
        f[S.FILENAME] = f[S.FILE].fillna("").str.rpartition("/")[2]
        f[S.A_OUTCOME] = S.OUTCOME_CANDIDATE
        f[S.E_REASON], f[S.E_RAW_VALUE] = "", ""
        self._provided = [S.PATIENTID, S.EPISODE, *(c for c in _KNOWN.values() if c in f)]
        return Draft(f, self._inputs, (), self._notes)

    def _count(self, mask: pd.Series, what: str, raw: pd.Series | None = None) -> None:
        if mask.any():
            shown = f" (e.g. {raw[mask].iloc[0]!r})" if raw is not None else ""
            self._notes.append(f"{int(mask.sum())} {IMAGES} rows: {what}{shown}")

    def _after_locate(self, draft: Draft) -> Draft:
        f = draft.frame
        for column in (S.PATIENTID, S.TIME, S.VIEW):
            if column not in f:
                f[column] = pd.NaT if column == S.TIME else np.nan
        alive = f[S.A_OUTCOME] == S.OUTCOME_CANDIDATE
        blank = f[S.PATIENTID].isna() | f[S.TIME].isna() | f[S.VIEW].isna()
        raster = f[S.FILE].fillna("").str.lower().str.endswith(_RASTER)
        todo = f.index[alive & blank & ~raster]
        if len(todo):  # headers only where a row leaves a field blank, and the file may be DICOM
            header = pd.DataFrame([_dicom_fields(p) for p in f.loc[todo, S.PATH]], index=todo)
            if S.TIME in header:
                header[S.TIME] = pd.to_datetime(header[S.TIME])
            for column in (S.PATIENTID, S.TIME, S.VIEW):
                if column in header:
                    value = header[column].replace("", np.nan) if column != S.TIME \
                        else header[column]
                    f[column] = f[column].fillna(value.reindex(f.index))
        nameless = f[S.PATIENTID].isna()
        f.loc[nameless, S.PATIENTID] = "unknown-" + f.loc[nameless, S.FILE].fillna("")
        self._count(alive & nameless, "no patient_id: each made its own patient "
                                      "'unknown-<file>'")

        written = f[S.VIEW].fillna("")
        view = _per_value(written, normalise_view)
        frontal = view.isin(S.FRONTAL_VIEWS)
        lateral = (view == S.VIEW_LATERAL) | written.str.upper().isin(_LATERAL)
        unstated = written == ""
        f[S.VIEW] = view.where(frontal, S.UNKNOWN)
        excluded = alive & ~frontal & ~unstated
        f.loc[excluded, S.A_OUTCOME] = S.OUTCOME_EXCLUDED
        f.loc[excluded, S.E_REASON] = np.where(lateral[excluded], S.EXCLUDED_LATERAL,
                                               S.EXCLUDED_NOT_FRONTAL)
        f.loc[excluded, S.E_RAW_VALUE] = written[excluded]
        self._count(alive & unstated, "no view stated: kept as frontal, view unknown")
        if S.SEX in f:
            f[S.SEX] = f[S.SEX].fillna("").str.upper().map(_SEX).fillna(S.UNKNOWN)
        if S.FINDING in f:
            f[S.FINDING_GROUP] = _per_value(f[S.FINDING], finding_group)
        f[S.IMAGE_ID] = "cohort-" + _slug(f[S.PATIENTID]) + "-" + _slug(
            f[S.FILE].fillna("").str.replace(r"\.[A-Za-z0-9]+$", "", regex=True))
        self._provided += [c for c in (S.TIME, S.VIEW) if c not in self._provided
                           and f.loc[alive, c].notna().any()]
        draft.provided = self._provided  # the list: _episodes adds to it
        return draft

    def _episodes(self, frame: pd.DataFrame) -> pd.DataFrame:
        path = self.root / EVENTS
        if not path.is_file():
            frame[S.EPISODE] = frame[S.PATIENTID]
            if S.OFFSET in frame:
                given = pd.to_numeric(frame[S.OFFSET], errors="coerce")
            else:
                given = pd.Series(np.nan, index=frame.index)
            frame[S.OFFSET] = given.fillna(E.days_since_first(frame[S.PATIENTID],
                                                              frame[S.TIME]))
            if S.OFFSET not in self._provided and frame[S.OFFSET].notna().any():
                self._provided.append(S.OFFSET)
            for column in _PER_IMAGE_STATES:
                if column in frame:
                    frame[column] = _per_value(frame[column], normalise_yn)
            return frame
        events = _read_events(path)
        self._inputs[EVENTS] = sha256_file(path)
        ignored = [c for c in _PER_IMAGE_STATES if c in frame]
        if ignored:
            self._notes.append(f"{IMAGES} columns {', '.join(ignored)} ignored: {EVENTS} "
                               "decides ICU, intubation and survival")
        states = E.episodes_at(frame[S.PATIENTID], frame[S.TIME], events)
        for column in states:
            frame[column] = states[column]
        self._provided += [c for c in E.OUTPUT_COLUMNS if c not in self._provided]
        return frame


def _read_events(path) -> E.Events:
    """events.csv -> Events; a wrong event name or an unreadable time stops with file and line."""
    raw = _text(read_csv(path, EVENT_COLUMNS,
                         what="events.csv needs patient_id, event, start, end (see README, "
                              "Cohorts)"))
    line = raw.index + 2  # the header is line 1
    kind = raw["event"].fillna("").str.strip().str.lower()
    wrong = ~kind.isin(S.EVENT_KINDS)
    if wrong.any():
        raise ReaderError(f"{path}, line {line[wrong][0]}: event {raw['event'][wrong].iloc[0]!r}"
                          f" is not one of {', '.join(S.EVENT_KINDS)} ({int(wrong.sum())} such "
                          "rows)")
    patient = raw["patient_id"].fillna("").str.strip()
    start, end = parse_times(raw["start"]), parse_times(raw["end"])
    for problem, mask in (("no patient_id", patient == ""),
                          ("start is blank or not an ISO date-time", start.isna()),
                          ("end is not an ISO date-time", raw["end"].notna() & end.isna()),
                          ("end is before start", end < start)):
        if mask.any():
            first = int(np.flatnonzero(mask.to_numpy())[0])
            raise ReaderError(f"{path}, line {line[first]}: {problem} "
                              f"({raw.iloc[first].to_dict()}); fix the row and run again")
    return E.from_event_table(patient, kind, start, end)
