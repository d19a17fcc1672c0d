"""A MIMIC-layout artifact and a hospital-export artifact built by the real precompute (random
weights), for the tests of what the app shows for each cohort.

The folders are tests/test_mimic_reader.py's and tests/test_cohort_reader.py's (their writers);
the MIMIC folder's CheXpert table is rewritten here with more labelled studies (CHEXPERT), so
that a filter has something to count: the tests count it again with plain pandas from that file.
"""
from __future__ import annotations

from pathlib import Path

from tests.test_cohort_reader import write_export
from tests.test_mimic_reader import A, B, D, write_gz, write_mimic

LABELS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum",
          "Fracture", "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion",
          "Pleural Other", "Pneumonia", "Pneumothorax", "Support Devices")
# study -> (subject, {label: code}); codes as mimic-cxr-2.0.0-chexpert.csv.gz writes them, every
# other label blank (not mentioned). Studies 50000011 and 50000014 have no row at all.
CHEXPERT = {
    "50000001": (A, {"No Finding": "1.0"}),
    "50000002": (A, {"Edema": "1.0", "Pleural Effusion": "-1.0", "Support Devices": "1.0"}),
    "50000003": (A, {"Edema": "0.0", "Pleural Effusion": "1.0"}),
    "50000004": (A, {"Edema": "-1.0", "Pleural Effusion": "1.0", "Cardiomegaly": "1.0"}),
    "50000005": (A, {"No Finding": "1.0"}),
    "50000006": (A, {"Edema": "1.0", "Pneumonia": "-1.0", "Support Devices": "1.0"}),
    "50000008": (B, {"Edema": "1.0"}),
    "50000009": (B, {"Pleural Effusion": "0.0"}),
    "50000010": (B, {"Pneumonia": "1.0", "Edema": "0.0"}),
    "50000099": (D, {"Edema": "1.0"}),  # a study with no image: labels nobody looks at
}


def write_chexpert(cxr: Path) -> Path:
    path = cxr / "mimic-cxr-2.0.0-chexpert.csv.gz"
    write_gz(path, "subject_id,study_id," + ",".join(LABELS),
             [(subject, study, *(codes.get(label, "") for label in LABELS))
              for study, (subject, codes) in CHEXPERT.items()])
    return path


def build(cache: Path, **config) -> Path:
    """precompute's build in this process (the CLI's own path: `python -m precompute` calls
    build_artifact; the CLI is tested in test_cohort_pipeline.py). In process, UMAP's numba
    code compiled once for the session serves every build (a new process compiles ~20 s)."""
    from precompute.pipeline import Config, build_artifact

    return build_artifact(Config(weights="random", cache_dir=str(cache), workers=0,
                                 progress=False, **config)).out


def build_mimic(tmp: Path, dataset: Path) -> dict:
    """{'out': artifact, 'cxr': MIMIC-CXR-JPG root, 'iv': MIMIC-IV root}."""
    cxr, iv = write_mimic(tmp, dataset)
    write_chexpert(cxr)
    out = build(tmp / "cache", dataset=f"mimic:{cxr}", mimic_iv=str(iv),
                out=str(tmp / "mimic-artifact"), limit=50)
    return {"out": out, "cxr": cxr, "iv": iv}


def build_export(tmp: Path, dataset: Path) -> dict:
    """{'out': artifact, 'root': the hospital folder}."""
    root, _ = write_export(tmp, dataset)
    out = build(tmp / "cache", dataset=f"cohort:{root}", out=str(tmp / "cohort-artifact"))
    return {"out": out, "root": root}
