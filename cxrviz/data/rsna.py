"""Kaggle RSNA Pneumonia images as the reference cloud, labelled from torchxrayvision's shipped CSVs.

Layout as Kaggle ships it: `<rsna>/stage_2_train_images/<patientId>.dcm` (also .jpg / .png, as
some converted mirrors hold them). Labels (`Target`) and view come from the label and DICOM-header
files inside the torchxrayvision package, so only the images need downloading. A file (or link)
that resolves outside the RSNA folder is skipped, never decoded (cxrviz.data.paths).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cxrviz import schema as S
from cxrviz.data.covid import DatasetError
from cxrviz.data.paths import inside

IMAGE_DIR = "stage_2_train_images"
EXTENSIONS = (".dcm", ".jpg", ".jpeg", ".png")
SUBSETS = ("pneumonia", "all")
LABELS_FILE = "kaggle_stage_2_train_labels.csv.zip"
HEADERS_FILE = "kaggle_stage_2_train_images_dicom_headers.csv.gz"


@dataclass
class RsnaRows:
    frame: pd.DataFrame  # schema columns + "path"
    unlabelled: list  # file names in the folder with no label row
    labelled_absent: int  # labelled images of the subset that the folder does not hold
    outside: list = field(default_factory=list)  # file names whose path leaves the folder


def _package_file(name: str) -> Path:
    import torchxrayvision as xrv

    return Path(xrv.__file__).parent / "data" / name


def read_rsna(rsna_dir, subset: str = "pneumonia") -> RsnaRows:
    if subset not in SUBSETS:
        raise ValueError(f"--rsna-subset must be one of {SUBSETS}")
    root = Path(rsna_dir).expanduser().resolve()
    image_dir = root / IMAGE_DIR if (root / IMAGE_DIR).is_dir() else root
    if not image_dir.is_dir():
        raise DatasetError(f"RSNA folder not found: {root} (expected {IMAGE_DIR}/ inside; get it "
                           "from Kaggle's 'rsna-pneumonia-detection-challenge')")
    files, paths, outside = {}, {}, []  # patientId -> its file's name / resolved path
    for p in sorted(image_dir.iterdir()):
        if p.suffix.lower() not in EXTENSIONS or p.stem in files:
            continue
        resolved = inside(root, str(p))
        if resolved is None:
            outside.append(p.name)
        else:
            files[p.stem], paths[p.stem] = p.name, resolved
    labels = pd.read_csv(_package_file(LABELS_FILE))
    target = labels.groupby("patientId")["Target"].max()
    headers = pd.read_csv(_package_file(HEADERS_FILE),
                          usecols=["PatientID", "PatientAge", "PatientSex", "ViewPosition"])
    headers = headers.drop_duplicates("PatientID").set_index("PatientID")

    wanted = target.index if subset == "all" else target.index[target == 1]
    wanted_set = set(wanted)
    unlabelled = sorted(files[s] for s in files if s not in target.index)
    chosen = [s for s in files if s in wanted_set]
    rows = []
    for pid in chosen:
        h = headers.loc[pid] if pid in headers.index else None
        view = str(h["ViewPosition"]).strip().upper() if h is not None else ""
        sex = str(h["PatientSex"]).strip().upper() if h is not None else ""
        age = pd.to_numeric(h["PatientAge"], errors="coerce") if h is not None else float("nan")
        positive = bool(target[pid] == 1)
        rows.append({
            S.IMAGE_ID: f"rsna-{pid}", S.SOURCE: S.SOURCE_RSNA, S.FILENAME: files[pid],
            S.PATIENTID: f"rsna-{pid}", S.OFFSET: float("nan"),
            S.VIEW: view if view in S.FRONTAL_VIEWS else (view or S.UNKNOWN),
            S.SEX: sex if sex in ("M", "F") else S.UNKNOWN, S.AGE: age,
            S.FINDING: "RSNA: lung opacity (pneumonia)" if positive else "RSNA: no lung opacity",
            S.FINDING_GROUP: "unknown",
            **{c: S.UNKNOWN for c in S.YN_COLUMNS},
            S.LOCATION: "", S.COUNTRY: S.UNKNOWN, S.SUBREGION: S.UNKNOWN, S.CONTINENT: S.UNKNOWN,
            S.DOI: "", S.URL: "https://www.kaggle.com/c/rsna-pneumonia-detection-challenge",
            S.LICENSE: "Kaggle competition rules (RSNA / NIH)", S.CLINICAL_NOTES: "",
            "path": str(paths[pid]),
        })
    frame = pd.DataFrame(rows, columns=[*S.METADATA_COLUMNS, "path"])
    return RsnaRows(frame, unlabelled, len(wanted_set) - len(chosen), outside)
