"""The COVID-19 image data collection (ieee8023/covid-chestxray-dataset): metadata.csv -> schema rows.

Accepts both metadata schemas seen in the wild: the early-2020 flat `finding` ("COVID-19",
"COVID-19, ARDS", "todo", ...) and the later path form ("Pneumonia/Viral/COVID-19") with
`RT_PCR_positive`. Every metadata row is its own point, even where rows share an image file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cxrviz import schema as S
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


class DatasetError(Exception):
    """The dataset folder cannot be used at all (as opposed to one bad image)."""


@dataclass
class CovidRows:
    """Frontal X-ray rows in schema columns, plus what the rest of the metadata held."""

    frame: pd.DataFrame  # schema columns + "path" (absolute image path)
    metadata_rows: int
    metadata_sha256: str
    shared_files: list = field(default_factory=list)  # [(filename, [image_id, ...])]
    excluded: list = field(default_factory=list)  # manifest "excluded" groups, see exclusions()


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
    raw_bytes = meta_path.read_bytes()
    meta = pd.read_csv(meta_path, dtype=str, keep_default_na=False, encoding_errors="replace")
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
    out[S.PATIENTID] = col("patientid")
    out[S.OFFSET] = pd.to_numeric(col("offset"), errors="coerce")
    out[S.VIEW] = frontal[S.VIEW]
    out[S.SEX] = col("sex").str.upper().where(col("sex").str.upper().isin(["M", "F"]), S.UNKNOWN)
    out[S.AGE] = pd.to_numeric(col("age"), errors="coerce")
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
    out["path"] = [str(dataset_dir / f / n) for f, n in zip(folder, out[S.FILENAME])]

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
    return CovidRows(out, metadata_rows, sha256_bytes(raw_bytes), shared, excluded)


def exclusions(reasons: pd.Series, raw_values: pd.Series, filenames: pd.Series) -> list:
    """Rows left off the map by design, grouped by (reason, raw value), with counts and files."""
    frame = pd.DataFrame({"reason": reasons.to_numpy(), "raw": raw_values.to_numpy(),
                          "file": filenames.str.strip().to_numpy()})
    return [{S.E_REASON: reason, S.E_RAW_VALUE: value, S.E_COUNT: int(len(grp)),
             S.E_FILENAMES: grp["file"].tolist()}
            for (reason, value), grp in frame.groupby(["reason", "raw"], sort=True)]
