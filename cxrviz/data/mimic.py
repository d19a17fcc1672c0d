"""MIMIC-CXR-JPG (2.0 / 2.1) images with MIMIC-IV (2.x / 3.x) events -> schema rows.

Images: `mimic-cxr-2.0.0-metadata.csv.gz` (one row per DICOM: dicom_id, subject_id, study_id,
ViewPosition, StudyDate YYYYMMDD, StudyTime HHMMSS.f; 2.1 keeps the 2.0.0 file names), the JPEG at
files/p{first 2 digits of subject_id}/p{subject_id}/s{study_id}/{dicom_id}.jpg, CheXpert labels
per study from `mimic-cxr-2.0.0-chexpert.csv.gz` as S.chexpert_column(label) columns.
Views: PA and AP are frontal (candidates); LATERAL and LL are excluded as lateral, a blank one as
missing, any other (AP AXIAL, SWIMMERS, ...) as not frontal, each with its raw value.

Events (with `mimic_iv`): hosp/patients (gender, anchor_age, anchor_year), hosp/admissions
(admittime, dischtime, deathtime, edregtime), icu/icustays (intime, outtime) and
icu/procedureevents rows with itemid 225792 (invasive ventilation; 225794, non-invasive, is not
intubation). Both datasets share each patient's date shift, so times compare directly; the rules
are cxrviz.data.events'. Age = anchor_age + (study year - anchor_year). Without MIMIC-IV an
episode is the patient, day 0 their first study, and ICU / intubation / survival are unknown.

StudyTime is stored as a number, so 08:45:30 reads 84530.0: it is split arithmetically, never by
string position.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cxrviz import schema as S
from cxrviz.data import events as E
from cxrviz.data.base import Draft, Reader, ReaderError
from cxrviz.data.tables import columns, read_csv
from cxrviz.hashing import sha256_file

METADATA = "mimic-cxr-2.0.0-metadata"
CHEXPERT = "mimic-cxr-2.0.0-chexpert"
PATIENTS, ADMISSIONS = "hosp/patients", "hosp/admissions"
ICUSTAYS, PROCEDURES = "icu/icustays", "icu/procedureevents"
INVASIVE_VENTILATION = 225792
_TEXT = pd.ArrowDtype(pa.string())
FRONTAL, LATERAL = ("PA", "AP"), ("LATERAL", "LL")
URL = "https://physionet.org/content/mimic-cxr-jpg/"
LICENSE = "PhysioNet Credentialed Health Data License 1.5.0"
DATA_USE_NOTE = ("MIMIC-CXR and MIMIC-IV are credentialed data (PhysioNet): this artifact holds "
                 "data derived from them and must not be shared beyond their data use agreement.")
_ID_COLUMNS = ("subject_id", "study_id")
_META_COLUMNS = ("dicom_id", *_ID_COLUMNS, "ViewPosition", "StudyDate", "StudyTime")


def table_path(folder: Path, name: str) -> Path:
    """name.csv.gz as PhysioNet ships it, or name.csv where someone unpacked it."""
    for suffix in (".csv.gz", ".csv"):
        if (folder / f"{name}{suffix}").is_file():
            return folder / f"{name}{suffix}"
    return folder / f"{name}.csv.gz"


def study_times(dates: pd.Series, times: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(study date-times, dates) from StudyDate (YYYYMMDD) and StudyTime (HHMMSS.f as a number);
    NaT where a part is unreadable (the date alone is kept where only the time is)."""
    day = pd.to_datetime(dates.str.strip().str.slice(0, 8), format="%Y%m%d", errors="coerce")
    day = day.astype("datetime64[ns]")
    t = pd.to_numeric(times, errors="coerce").astype("float64").to_numpy()
    hours, minutes = np.floor(t / 10_000), np.floor(t / 100) % 100
    seconds = t - hours * 10_000 - minutes * 100
    valid = (hours < 24) & (minutes < 60) & (seconds >= 0) & (seconds < 60)
    since_midnight = pd.to_timedelta(np.round(hours * 3600 + minutes * 60 + seconds, 6), unit="s")
    return (day + since_midnight).where(valid), day


def _join(*parts) -> pd.Series:
    """Text columns and constants joined row-wise in one Arrow kernel."""
    index = next(p.index for p in parts if isinstance(p, pd.Series))
    arrays = [pa.array(p.astype(_TEXT)) if isinstance(p, pd.Series) else p for p in parts]
    return pd.Series(pc.binary_join_element_wise(*arrays, ""), index=index, dtype=_TEXT)


def _as_int(digits: pd.Series) -> np.ndarray:
    """Ids already checked to be digits -> int64."""
    return pd.to_numeric(digits).to_numpy("int64")


def _digits(text: pd.Series) -> np.ndarray:
    return text.str.fullmatch(r"[0-9]+").to_numpy(dtype=bool, na_value=False)


class MimicReader(Reader):
    source = S.SOURCE_MIMIC
    role = S.ROLE_COHORT

    def __init__(self, root, mimic_iv=None, *, check_files: bool = True):
        super().__init__(root, check_files=check_files)
        self.mimic_iv = Path(mimic_iv).expanduser().resolve() if mimic_iv else None
        if self.mimic_iv is not None and not self.mimic_iv.is_dir():
            raise ReaderError(f"MIMIC-IV folder not found: {self.mimic_iv} (it holds hosp/ "
                              "and icu/)")

    def _draft(self) -> Draft:
        path = table_path(self.root, METADATA)
        meta = read_csv(path, _META_COLUMNS,
                        what="is this a MIMIC-CXR-JPG folder (mimic-cxr-jpg/2.x.0)?")
        sid = meta["subject_id"].fillna("").str.strip()
        stid = meta["study_id"].fillna("").str.strip()
        dicom = meta["dicom_id"].fillna("").str.strip()
        ids_ok = _digits(sid) & _digits(stid) & (dicom != "").to_numpy(bool)
        f = pd.DataFrame(index=meta.index)
        f[S.FILE] = _join("files/p", sid.str.slice(0, 2), "/p", sid, "/s", stid, "/", dicom,
                          ".jpg")
        f[S.IMAGE_ID] = _join("mimic-", dicom)
        f[S.FILENAME] = _join(dicom, ".jpg")
        f[S.PATIENTID] = sid
        f[S.EXTRA_PREFIX + "study_id"] = stid
        f[S.TIME], dates = study_times(meta["StudyDate"], meta["StudyTime"])
        f["_year"] = dates.dt.year

        raw = meta["ViewPosition"].fillna("").str.strip()
        view = raw.str.upper()
        f[S.VIEW] = view
        frontal = view.isin(FRONTAL).to_numpy(bool)
        reason = np.where(view.isin(LATERAL).to_numpy(bool), S.EXCLUDED_LATERAL,
                          np.where((view == "").to_numpy(bool), S.EXCLUDED_NO_VIEW,
                                   S.EXCLUDED_NOT_FRONTAL)).astype(object)
        f[S.A_OUTCOME] = np.where(frontal, S.OUTCOME_CANDIDATE, S.OUTCOME_EXCLUDED).astype(object)
        f[S.E_REASON] = np.where(frontal, "", reason).astype(object)
        f[S.E_RAW_VALUE] = raw.where(~frontal, "")
        bad = ~ids_ok
        f.loc[bad, S.A_OUTCOME] = S.OUTCOME_SKIPPED
        f.loc[bad, S.E_REASON] = S.SKIPPED_BAD_IDS
        f.loc[bad, S.E_RAW_VALUE] = _join(sid, " / ", stid, " / ", dicom)[bad]
        f[S.URL], f[S.LICENSE] = URL, LICENSE

        notes = [DATA_USE_NOTE]
        untimed = int((frontal & ids_ok & f[S.TIME].isna().to_numpy()).sum())
        if untimed:
            notes.append(f"{untimed} frontal images have no readable StudyDate / StudyTime: "
                         "no episode, no day")
        provided = [S.PATIENTID, S.EPISODE, S.TIME, S.OFFSET, S.VIEW]
        if self.mimic_iv is not None:
            provided += [S.SEX, S.AGE, S.IN_ICU, S.INTUBATION_PRESENT, S.SURVIVAL, S.WENT_ICU,
                         S.INTUBATED]
        # the later steps add to these (CheXpert, MIMIC-IV tables, counts)
        self._notes, self._inputs = notes, {path.name: sha256_file(path)}
        return Draft(f, self._inputs, tuple(provided), notes)

    def _episodes(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = self._with_chexpert(frame)
        year = frame.pop("_year")
        if self.mimic_iv is None:
            frame[S.EPISODE] = frame[S.PATIENTID]
            frame[S.OFFSET] = E.days_since_first(frame[S.PATIENTID], frame[S.TIME])
            return frame
        subject = _as_int(frame[S.PATIENTID])  # digits, checked: integers join fast
        subjects = pd.unique(subject)
        patients = self._patients(subjects)
        at = pd.Index(patients["subject_id"].to_numpy("int64")).get_indexer(subject)
        known = at >= 0
        gender = np.where(known, patients["gender"].fillna("").str.strip().str.upper()
                          .to_numpy(object, na_value="")[at], "")
        frame[S.SEX] = np.where(np.isin(gender, ["M", "F"]), gender, S.UNKNOWN).astype(object)
        anchor_age = patients["anchor_age"].to_numpy("float64", na_value=np.nan)
        anchor_year = patients["anchor_year"].to_numpy("float64", na_value=np.nan)
        frame[S.AGE] = np.where(known, anchor_age[at] + year.to_numpy("float64")
                                - anchor_year[at], np.nan)
        states = E.episodes_at(pd.Series(subject, index=frame.index), frame[S.TIME],
                               self._events(subjects))
        for column in states:
            frame[column] = states[column]
        without = int(frame[S.EPISODE].isna().sum())
        self._notes.append(f"{without} of {len(frame)} frontal images lie in no admission of "
                           "MIMIC-IV (no episode, no day; ICU and intubation N)")
        return frame

    def _with_chexpert(self, frame: pd.DataFrame) -> pd.DataFrame:
        path = table_path(self.root, CHEXPERT)
        if not path.is_file():
            self._notes.append(f"no {path.name}: no CheXpert labels")
            return frame
        labels = [c for c in columns(path) if c not in _ID_COLUMNS]
        table = read_csv(path, _ID_COLUMNS, labels,
                         types={"study_id": "int64", **dict.fromkeys(labels, "float64")})
        self._inputs[path.name] = sha256_file(path)
        table = table.drop_duplicates("study_id")
        at = pd.Index(table["study_id"].to_numpy("int64")).get_indexer(
            _as_int(frame[S.EXTRA_PREFIX + "study_id"]))
        for label in labels:
            codes = table[label].to_numpy("float32", na_value=np.nan)
            frame[S.chexpert_column(label)] = np.where(at >= 0, codes[at], np.nan).astype(
                "float32")
        return frame

    def _table(self, name: str, required, **kw) -> pd.DataFrame:
        path = table_path(self.mimic_iv, name)
        frame = read_csv(path, required, what="is this a MIMIC-IV 2.x / 3.x folder?", **kw)
        self._inputs[f"mimic-iv/{name}"] = sha256_file(path)
        return frame

    def _patients(self, subjects) -> pd.DataFrame:
        return self._table(PATIENTS, ("subject_id", "gender", "anchor_age", "anchor_year"),
                           types={"subject_id": "int64", "anchor_age": "float64",
                                  "anchor_year": "float64"},
                           keep_rows=lambda c: c["subject_id"].isin(subjects)) \
            .drop_duplicates("subject_id")

    def _events(self, subjects) -> E.Events:
        ids = {"subject_id": "int64", "hadm_id": "int64"}
        ours = {"types": ids, "keep_rows": lambda c: c["subject_id"].isin(subjects)}
        moments = ("admittime", "dischtime", "deathtime", "edregtime")
        adm = self._table(ADMISSIONS, ("subject_id", "hadm_id", *moments), **ours)
        when = {c: self._times(adm[c], f"admissions.{c}") for c in moments}
        admissions = pd.DataFrame({
            E.PATIENT: adm["subject_id"], E.EPISODE: adm["hadm_id"],
            E.START: when["admittime"], E.END: when["dischtime"],
            E.WINDOW_START: when["edregtime"], E.DEATH: when["deathtime"]})
        icu = self._table(ICUSTAYS, ("subject_id", "hadm_id", "intime", "outtime"), **ours)
        # procedureevents is large: five columns read, invasive ventilation of our subjects kept
        vent = self._table(PROCEDURES, ("subject_id", "hadm_id", "starttime", "endtime", "itemid"),
                           types={**ids, "itemid": "int64"},
                           keep_rows=lambda c: (c["itemid"] == INVASIVE_VENTILATION)
                           & c["subject_id"].isin(subjects))
        intervals = pd.concat([self._intervals(icu, S.EVENT_ICU, "intime", "outtime"),
                               self._intervals(vent, S.EVENT_VENTILATION, "starttime", "endtime")],
                              ignore_index=True)
        return E.Events(admissions, intervals)

    def _intervals(self, frame: pd.DataFrame, kind: str, start: str, end: str) -> pd.DataFrame:
        return pd.DataFrame({
            E.PATIENT: frame["subject_id"], E.EPISODE: frame["hadm_id"], E.KIND: kind,
            E.START: self._times(frame[start], f"{kind} {start}"),
            E.END: self._times(frame[end], f"{kind} {end}")})

    def _times(self, text: pd.Series, what: str) -> pd.Series:
        """MIMIC-IV times ('YYYY-MM-DD HH:MM:SS'); unreadable ones become NaT, counted."""
        when = pd.to_datetime(text, format="ISO8601", errors="coerce").astype("datetime64[ns]")
        wrong = (when.isna() & text.notna()).to_numpy(bool)
        if wrong.any():
            self._notes.append(f"{int(wrong.sum())} unreadable {what} values made unknown "
                               f"(e.g. {text[wrong].iloc[0]!r})")
        return when
