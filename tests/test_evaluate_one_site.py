"""Evaluation on a one-site cohort: a MIMIC-layout artifact (one hospital, no continent known)
cannot leave a continent out, so `python -m precompute.evaluate` runs the same tasks with
patient-grouped folds, and the CSVs, evaluation.json and the page say so.

The folder is built here in MIMIC's real layout (gzipped CSVs with the real file names and the
real names of the columns the reader reads, tests/test_mimic_reader.py's writer; the
collection's own X-rays, made smaller, under MIMIC paths): 24 patients, one admission each
(2150-01-01 00:00 to 01-11 00:00), AP studies at 12:00 on January 2, 4 and 7 (days 1.5, 3.5 and
6.5, all inside the tasks' 0 < day < 8). Patient i: an ICU stay 01-03 to 01-06 (day 2 to 5) when
i % 3 == 0, invasive ventilation (225792) 01-03 12:00 to 01-05 (day 2.5 to 4) when i % 6 == 0, a
deathtime when i % 4 == 1. The tasks' labels come from these episode states. Whether a patient
crosses folds is checked with plain pandas on folds.parquet and images.parquet.
"""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from cxrviz import schema as S
from tests.test_mimic_reader import write_gz

ROOT = Path(__file__).resolve().parents[1]
N = 24
SUBJECT = [str(13000000 + i) for i in range(N)]
STUDY_DAYS = (1, 3, 6)


def one_site(root: Path, dataset: Path) -> tuple:
    cxr, iv = root / "mimic-cxr-jpg", root / "mimic-iv"
    sources = sorted((dataset / "images").glob("*.jpg"))
    meta, k = [], 0
    for i, s in enumerate(SUBJECT):
        for j, day in enumerate(STUDY_DAYS):
            d = f"{i:04x}{j:04x}-0000-0000-0000-000000000000"
            study = str(50000000 + 10 * i + j)
            meta.append((d, s, study, "AP", f"215001{1 + day:02d}", "120000.0"))
            target = cxr / "files" / f"p{s[:2]}" / f"p{s}" / f"s{study}" / f"{d}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(sources[k % len(sources)]) as im:
                im.convert("L").resize((256, 256)).save(target, quality=90)
            k += 1
    write_gz(cxr / "mimic-cxr-2.0.0-metadata.csv.gz",
             "dicom_id,subject_id,study_id,ViewPosition,StudyDate,StudyTime", meta)
    write_gz(iv / "hosp/patients.csv.gz",
             "subject_id,gender,anchor_age,anchor_year,anchor_year_group,dod",
             [(s, "F" if i % 2 else "M", 50 + i, 2150, "2011 - 2013", "") for i, s in
              enumerate(SUBJECT)])
    write_gz(iv / "hosp/admissions.csv.gz",
             "subject_id,hadm_id,admittime,dischtime,deathtime,edregtime",
             [(s, str(30000000 + i), "2150-01-01 00:00:00", "2150-01-11 00:00:00",
               "2150-01-11 00:00:00" if i % 4 == 1 else "", "") for i, s in enumerate(SUBJECT)])
    write_gz(iv / "icu/icustays.csv.gz", "subject_id,hadm_id,stay_id,intime,outtime",
             [(s, str(30000000 + i), str(40000000 + i), "2150-01-03 00:00:00",
               "2150-01-06 00:00:00") for i, s in enumerate(SUBJECT) if i % 3 == 0])
    write_gz(iv / "icu/procedureevents.csv.gz",
             "subject_id,hadm_id,stay_id,starttime,endtime,itemid",
             [(s, str(30000000 + i), str(40000000 + i), "2150-01-03 12:00:00",
               "2150-01-05 00:00:00", "225792") for i, s in enumerate(SUBJECT) if i % 6 == 0])
    return cxr, iv


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, dataset, session_cache):
    from precompute import evaluate
    from precompute.pipeline import Config, build_artifact

    root = tmp_path_factory.mktemp("one-site")
    cxr, iv = one_site(root, dataset)
    out = build_artifact(Config(dataset=f"mimic:{cxr}", mimic_iv=str(iv), out=str(root / "art"),
                                weights="random", workers=0, cache_dir=str(session_cache),
                                progress=False)).out
    code = evaluate.main(["--artifact", str(out), "--features", "outputs18", "map", "density",
                          "--quiet"])
    assert code == 0
    return out


def test_the_episode_states_give_the_labels(evaluated):
    images = pd.read_parquet(evaluated / S.IMAGES_FILE)
    per_patient = images.groupby(S.PATIENTID)[[S.SURVIVAL, S.WENT_ICU, S.INTUBATED]].first()
    assert (per_patient[S.SURVIVAL] == "N").sum() == 6  # i % 4 == 1
    assert (per_patient[S.WENT_ICU] == "Y").sum() == 8  # i % 3 == 0
    assert (per_patient[S.INTUBATED] == "Y").sum() == 4  # i % 6 == 0
    info = json.loads((evaluated / S.EVAL_DIR / S.EVAL_INFO).read_text())
    # survival: 18 survivors x 3 images, less the day-3.5 image of the 4 ventilated ones (0, 6,
    # 12, 18: intubation present, left out) = 50; 6 deaths (1, 5, ..., 21, never ventilated) x 3
    assert info["label_counts"]["survival"] == {"n_true": 50, "n_false": 18}
    # ICU stay: 8 ICU patients x 3 less their day-3.5 image (in ICU, left out); 16 others x 3
    assert info["label_counts"]["icu"] == {"n_true": 16, "n_false": 48}
    # intubated: the 4 ventilated patients' images less the one with intubation present each
    assert info["label_counts"]["intubated"] == {"n_true": 8, "n_false": 60}


def test_no_patient_is_on_both_sides_of_a_split(evaluated):
    images = pd.read_parquet(evaluated / S.IMAGES_FILE)
    patient = images.set_index(S.IMAGE_ID)[S.PATIENTID]
    folds = pd.read_parquet(evaluated / S.EVAL_DIR / S.EVAL_FOLDS)
    folds["patient"] = folds[S.IMAGE_ID].map(patient)
    assert folds["patient"].notna().all()
    assert set(folds["task"]) >= {"survival", "icu"}
    for (task, feat, fold), grp in folds.groupby(["task", "features", "test_region"]):
        train = set(grp.loc[grp["role"] == "train", "patient"])
        test = set(grp.loc[grp["role"] == "test", "patient"])
        assert train and test and not (train & test), (task, feat, fold)
    tests = folds[folds["role"] == "test"]
    for (task, feat), grp in tests.groupby(["task", "features"]):
        # a patient is tested in one fold only
        assert grp.groupby("patient")["test_region"].nunique().max() == 1, (task, feat)
        assert grp["test_region"].nunique() >= 2
    assert set(folds["split_scheme"]) == {"patient-grouped 5-fold"}


def test_the_csvs_and_the_page_name_the_scheme(evaluated):
    summary = pd.read_csv(evaluated / S.EVAL_DIR / S.EVAL_SUMMARY)
    splits = pd.read_csv(evaluated / S.EVAL_DIR / S.EVAL_SPLITS)
    assert set(summary["split_scheme"]) == set(splits["split_scheme"]) == {
        "patient-grouped 5-fold"}
    assert set(splits["test_region"]) <= {f"fold {k}" for k in range(1, 6)}
    survival = summary[(summary["task"] == "survival") & (summary["features"] == "outputs18")]
    assert survival["n_splits"].item() >= 2
    info = json.loads((evaluated / S.EVAL_DIR / S.EVAL_INFO).read_text())
    assert info["protocol"]["split_scheme"] == "patient-grouped 5-fold"
    assert "grouped by patient" in info["protocol"]["folds"]
    code = ("import sys, json; from cxrviz.app import create_app; create_app(sys.argv[1], "
            "model=False); from cxrviz.pages import evaluation as page; "
            "from plotly.utils import PlotlyJSONEncoder; "
            "print(json.dumps(page.layout(), cls=PlotlyJSONEncoder)); "
            "print(page.roc('survival', 'outputs18').layout.title.text)")
    done = subprocess.run([sys.executable, "-c", code, str(evaluated)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    page, roc_title = done.stdout.strip().splitlines()[-2:]
    assert "Splits: patient-grouped 5-fold." in page
    assert "Patient-grouped 5-fold cross-validation, not leave one continent out" in page
    assert "test folds (ours)" in page and "held-out continent" not in page
    assert roc_title == "ROC per test fold"
