"""The COVID-19 image data collection (ieee8023/covid-chestxray-dataset): metadata.csv -> schema rows.

Accepts both metadata schemas seen in the wild: the early-2020 flat `finding` ("COVID-19",
"COVID-19, ARDS", "todo", ...) and the later path form ("Pneumonia/Viral/COVID-19") with
`RT_PCR_positive`. Every metadata row is its own point, even where rows share an image file.

metadata.csv is community-edited data, so nothing in it is taken on trust: an image path that
leaves the dataset folder is skipped (cxrviz.data.paths), a row without a patient id is a patient
of its own (never one patient "" that merges strangers' outcomes), implausible offsets and ages
become unknown, and a row with more fields than the header stops the run with its line number.
Every such change is returned with its raw value, for the manifest.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cxrviz import schema as S
from cxrviz.data.paths import OUTSIDE_REASON, inside
from cxrviz.data.regions import country_regions
from cxrviz.hashing import sha256_bytes

METADATA_FILE = "metadata.csv"
DATASET_URL = "https://github.com/ieee8023/covid-chestxray-dataset"

_VIEW_SPELLINGS = {  # lower case, "-" / "_" as spaces, spaces collapsed
    "pa": S.VIEW_PA,
    "ap": S.VIEW_AP,
    "ap supine": S.VIEW_AP_SUPINE,
    "aps": S.VIEW_AP_SUPINE,
    "supine": S.VIEW_AP_SUPINE,
    "bettaufnahme": S.VIEW_AP_SUPINE,  # SCHEMA.md: Bettaufnahme -> Supine
    "liegend": S.VIEW_AP_SUPINE,  # SCHEMA.md: Liegend -> Supine
    "ap semi erect": S.VIEW_AP_SEMI_ERECT,
    "ap semierect": S.VIEW_AP_SEMI_ERECT,
    "ap erect": S.VIEW_AP_ERECT,
    "l": S.VIEW_LATERAL,
    "lateral": S.VIEW_LATERAL,
}
_XRAY_MODALITIES = {"x-ray", "xray", "x ray", "cr", "dx"}

_VIRAL = {"sars", "mers", "mers-cov", "varicella", "influenza", "herpes", "rsv", "viral"}
_BACTERIAL = {"streptococcus", "klebsiella", "mycoplasma bacterial pneumonia", "mycoplasma",
              "legionella", "e.coli", "e. coli", "bacterial", "chlamydophila", "staphylococcus",
              "staphylococcus aureus", "nocardia", "mycobacterium", "tuberculosis",
              "pseudomonas", "haemophilus influenzae", "moraxella"}
_FUNGAL = {"pneumocystis", "aspergillosis", "candida", "histoplasmosis", "fungal"}

# Plausible values; anything else (1e9, inf, 200, -5, "?") becomes unknown and is counted.
# Offsets: a year before symptoms or admission (the collection's earliest is -360) to ten years
# after; ages: 0 to 120 years.
OFFSET_RANGE = (-365.0, 3650.0)
AGE_RANGE = (0.0, 120.0)
UNKNOWN_PATIENT_PREFIX = "unknown-"


class DatasetError(Exception):
    """The dataset folder cannot be used at all (as opposed to one bad image)."""


@dataclass
class CovidRows:
    """Frontal X-ray rows in schema columns, plus what the rest of the metadata held."""

    frame: pd.DataFrame  # schema columns + "path" (resolved image path, inside the folder)
    metadata_rows: int
    metadata_sha256: str
    shared_files: list = field(default_factory=list)  # [(filename, [image_id, ...])]
    excluded: list = field(default_factory=list)  # manifest "excluded" groups, see exclusions()
    outside: list = field(default_factory=list)  # manifest "skipped" entries: path leaves folder
    made_unknown: list = field(default_factory=list)  # manifest "made_unknown" groups

    @property
    def frontal_rows(self) -> int:
        """Frontal X-ray rows of the metadata, whether their path could be used or not."""
        return len(self.frame) + len(self.outside)


def normalise_view(value) -> str:
    """A view as written in metadata.csv -> its canonical name (S.FRONTAL_VIEWS or "L"); the
    stripped raw text when it is none of them."""
    raw = str(value).strip() if isinstance(value, str) else ""
    text = re.sub(r"\s+", " ", re.sub(r"[-_]", " ", raw)).strip().lower()
    return _VIEW_SPELLINGS.get(text, raw)


def normalise_yn(value) -> str:
    text = str(value).strip().lower() if isinstance(value, str) else ""
    if text in ("y", "yes", "true", "1"):
        return S.YES
    if text in ("n", "no", "false", "0"):
        return S.NO
    return S.UNKNOWN


def finding_group(finding) -> str:
    """Map a flat ("COVID-19, ARDS") or path ("Pneumonia/Viral/COVID-19") finding to a group."""
    if not isinstance(finding, str) or not finding.strip():
        return "unknown"
    text = finding.strip().lower()
    if "covid" in text or "sars-cov-2" in text:
        return "COVID-19"
    parts = [p.strip() for p in re.split(r"[/,]", text) if p.strip()]
    if "no finding" in parts or text == "normal":
        return "no finding"
    if "viral" in parts or any(p in _VIRAL for p in parts):
        return "other viral"
    if "bacterial" in parts or any(p in _BACTERIAL for p in parts):
        return "bacterial"
    if "fungal" in parts or any(p in _FUNGAL for p in parts):
        return "fungal"
    if "lipoid" in parts:
        return "lipoid"
    if "aspiration" in parts:
        return "aspiration"
    return "unknown"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")


def read_covid(dataset_dir) -> CovidRows:
    """All frontal X-ray rows of metadata.csv (present or not on disk), in metadata order."""
    dataset_dir = Path(dataset_dir).expanduser().resolve()
    meta_path = dataset_dir / METADATA_FILE
    if not dataset_dir.is_dir():
        raise DatasetError(
            f"dataset folder not found: {dataset_dir}\n"
            f"Get the COVID-19 image data collection with:\n"
            f"    git clone {DATASET_URL}\n"
            f"and pass its folder with --dataset (or DATASET=... for make run).")
    if not meta_path.is_file():
        raise DatasetError(f"{meta_path} is missing: is {dataset_dir} a clone of {DATASET_URL}?")
    if inside(dataset_dir, METADATA_FILE) is None:
        raise DatasetError(f"{meta_path} is a link to a file outside {dataset_dir}; copy the "
                           "metadata.csv into the dataset folder.")
    raw_bytes = meta_path.read_bytes()
    meta = read_metadata(meta_path, raw_bytes)
    missing = [c for c in ("patientid", "finding", "view", "modality", "filename") if c not in meta]
    if missing:
        raise DatasetError(f"{meta_path} lacks required columns {missing}; is it the collection's "
                           "metadata.csv?")
    metadata_rows = len(meta)

    modality = meta["modality"].str.strip().str.lower()
    view = meta["view"].map(normalise_view)
    is_xray = modality.isin(_XRAY_MODALITIES)
    is_frontal = is_xray & view.isin(S.FRONTAL_VIEWS)
    reasons = pd.Series(S.EXCLUDED_NO_VIEW, index=meta.index)
    reasons[view == S.VIEW_LATERAL] = S.EXCLUDED_LATERAL
    reasons[~is_xray] = S.EXCLUDED_NOT_XRAY
    raw = meta["view"].str.strip().where(is_xray, meta["modality"].str.strip())
    left_out = ~is_frontal
    excluded = exclusions(reasons[left_out], raw[left_out], meta.loc[left_out, "filename"])
    frontal = meta[is_frontal].copy()
    frontal[S.VIEW] = view[frontal.index]

    def col(name):
        return frontal[name].str.strip() if name in frontal else pd.Series("", index=frontal.index)

    out = pd.DataFrame(index=frontal.index)
    out[S.SOURCE] = S.SOURCE_COVID
    out[S.FILENAME] = col("filename")
    out[S.PATIENTID], blank_ids = own_patient_ids(col("patientid"), out[S.FILENAME])
    out[S.OFFSET], bad_offsets = plausible(col("offset"), *OFFSET_RANGE, "days")
    out[S.VIEW] = frontal[S.VIEW]
    out[S.SEX] = col("sex").str.upper().where(col("sex").str.upper().isin(["M", "F"]), S.UNKNOWN)
    out[S.AGE], bad_ages = plausible(col("age"), *AGE_RANGE, "years")
    out[S.FINDING] = col("finding")
    out[S.FINDING_GROUP] = out[S.FINDING].map(finding_group)
    for c in S.YN_COLUMNS:
        out[c] = col(c).map(normalise_yn)
    out[S.LOCATION] = col("location")
    regions = country_regions(out[S.LOCATION].tolist())
    out[S.COUNTRY] = [r[0] for r in regions]
    out[S.SUBREGION] = [r[1] for r in regions]
    out[S.CONTINENT] = [r[2] for r in regions]
    out[S.DOI] = col("doi")
    out[S.URL] = col("url")
    out[S.LICENSE] = col("license")
    notes = "clinical_notes" if "clinical_notes" in frontal else "clinical notes"
    out[S.CLINICAL_NOTES] = col(notes)
    folder = col("folder").replace("", "images")
    paths = [inside(dataset_dir, f, n) for f, n in zip(folder, out[S.FILENAME])]
    out["path"] = [str(p) if p is not None else "" for p in paths]
    made_unknown = [
        *_value_groups(S.PATIENTID, blank_ids, out[S.FILENAME]),
        *_value_groups(S.OFFSET, bad_offsets, out[S.FILENAME]),
        *_value_groups(S.AGE, bad_ages, out[S.FILENAME])]

    ids = [f"covid-{_slug(p) or 'x'}-{_slug(Path(f).stem) or 'x'}"
           for p, f in zip(out[S.PATIENTID], out[S.FILENAME])]
    seen: dict = {}
    unique = []
    for i in ids:  # a patient listing one file twice still gets two distinct, stable ids
        seen[i] = seen.get(i, 0) + 1
        unique.append(i if seen[i] == 1 else f"{i}-{seen[i]}")
    out.insert(0, S.IMAGE_ID, unique)
    out = out.reset_index(drop=True)

    shared = [(name, grp[S.IMAGE_ID].tolist())
              for name, grp in out.groupby(S.FILENAME, sort=True) if len(grp) > 1]
    away = out["path"] == ""
    outside = [{"source": S.SOURCE_COVID, "filename": name, "reason": OUTSIDE_REASON}
               for name in out.loc[away, S.FILENAME]]
    return CovidRows(out[~away].reset_index(drop=True), metadata_rows, sha256_bytes(raw_bytes),
                     shared, excluded, outside, made_unknown)


def read_metadata(meta_path: Path, raw_bytes: bytes) -> pd.DataFrame:
    """metadata.csv as text columns ("" for empty), or DatasetError naming the line to fix.

    A row with more fields than the header (an unquoted comma in a value) would either stop
    pandas with a message that names no file, or, in the first data row, silently shift every
    column by one (pandas takes the extra field for an index). Checked here first, with the csv
    module, so the message can say which line and what to do."""
    text = raw_bytes.decode("utf-8-sig", errors="replace")
    records = csv.reader(io.StringIO(text, newline=""))
    header = next(records, [])
    line = 1  # csv's line_num counts physical lines, so a quoted value's newlines count too
    for record in records:
        start, line = line + 1, records.line_num
        if len(record) > len(header):
            raise DatasetError(
                f"{meta_path}, line {start}: {len(record)} fields where the header has "
                f"{len(header)}. A value with a comma in it must be in double quotes "
                f"(\"Hanoi, Vietnam\"); quote that value or remove the extra comma, then run "
                "again.")
    try:
        meta = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, index_col=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise DatasetError(f"{meta_path} cannot be read as CSV: {exc}") from None
    return meta.fillna("")  # short rows: their missing fields are empty, as blank ones


def own_patient_ids(patient_ids: pd.Series, filenames: pd.Series):
    """(ids, what was made up): an empty patient id becomes `unknown-<filename>`, unique.

    Rows without a patient id are strangers to each other; as one patient "" they would be one
    trajectory, and one patient's death would be another's "last image"."""
    taken = set(patient_ids)
    ids = patient_ids.copy()
    made = pd.Series("", index=patient_ids.index)
    for i in patient_ids.index[patient_ids == ""]:
        base = f"{UNKNOWN_PATIENT_PREFIX}{filenames[i] or 'row-' + str(i)}"
        new, n = base, 1
        while new in taken:
            n += 1
            new = f"{base}-{n}"
        taken.add(new)
        ids[i] = new
        made[i] = "empty: a patient of its own"
    return ids, pd.DataFrame({"raw": patient_ids, "reason": made})


def plausible(raw: pd.Series, lo: float, hi: float, unit: str):
    """(numbers, reasons): raw text -> float, NaN where empty, not a number, not finite or
    outside lo..hi. reasons holds why for each non-empty value made unknown ("" otherwise)."""
    values = pd.to_numeric(raw, errors="coerce").astype("float64")
    reasons = pd.Series("", index=raw.index)
    finite = pd.Series(np.isfinite(values.to_numpy()), index=raw.index)
    reasons[(raw != "") & values.isna()] = "not a number"
    reasons[values.notna() & ~finite] = "not a finite number"
    reasons[finite & ((values < lo) | (values > hi))] = f"outside {lo:g}…{hi:g} {unit}"
    return values.where(reasons == ""), pd.DataFrame({"raw": raw, "reason": reasons})


def _value_groups(column: str, made: pd.DataFrame, filenames: pd.Series) -> list:
    """manifest "made_unknown" groups: values replaced while reading, by (reason, raw value)."""
    hit = made["reason"] != ""
    return [{S.E_COLUMN: column, **group}
            for group in exclusions(made.loc[hit, "reason"], made.loc[hit, "raw"],
                                    filenames[hit])]


def exclusions(reasons: pd.Series, raw_values: pd.Series, filenames: pd.Series) -> list:
    """Rows left off the map by design, grouped by (reason, raw value), with counts and files."""
    frame = pd.DataFrame({"reason": reasons.to_numpy(), "raw": raw_values.to_numpy(),
                          "file": filenames.str.strip().to_numpy()})
    return [{S.E_REASON: reason, S.E_RAW_VALUE: value, S.E_COUNT: int(len(grp)),
             S.E_FILENAMES: grp["file"].tolist()}
            for (reason, value), grp in frame.groupby(["reason", "raw"], sort=True)]
