"""MIMIC-CXR-JPG + MIMIC-IV read from a folder in the real layout, with hand-worked expectations.

The tables below use the real file names, column names and formats (StudyTime as a number whose
leading zeros are gone, MIMIC-IV times 'YYYY-MM-DD HH:MM:SS'); the images are the real
collection's JPEGs copied under MIMIC paths. Every expected value in EXPECTED was worked out by
hand from the events written here (the arithmetic is spelled out), not by the reader.
"""
import gzip
import math
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest

from cxrviz import schema as S
from cxrviz.data.base import ColumnError
from cxrviz.data.mimic import MimicReader

A, B, C, D = "10000032", "10000764", "11000011", "12000012"
TAIL = "-5b0e2c1f-8a7d6e3c-2f1b0a9d-c3e4f5a6"


def dicom(k: int) -> str:
    return f"{k:08x}{TAIL}"


# (dicom, subject, study, ViewPosition, StudyDate, StudyTime as MIMIC writes it)
METADATA = [
    (dicom(1), A, "50000001", "AP", "21500301", "100000.0"),   # ED film, before admittime
    (dicom(2), A, "50000001", "LATERAL", "21500301", "100000.0"),
    (dicom(3), A, "50000002", "AP", "21500303", "20000.0"),    # 02:00:00, in ICU + 225792
    (dicom(4), A, "50000003", "PA", "21500306", "120000.0"),   # inside 225794 only
    (dicom(5), A, "50000004", "AP", "21500308", "93015.5"),    # 09:30:15.5
    (dicom(6), A, "50000005", "PA", "21500401", "120000.0"),   # between two admissions
    (dicom(7), A, "50000006", "AP", "21500515", "60000.0"),    # 06:00, ICU, died admission
    (dicom(8), A, "50000007", "SWIMMERS", "21500502", "0.0"),
    (dicom(9), A, "50000007", "", "21500502", "0.0"),
    (dicom(10), B, "50000008", "AP", "21630104", "120000.0"),  # two admissions overlap
    (dicom(11), B, "50000009", "PA", "21630102", "0.0"),
    (dicom(12), B, "50000010", "AP", "21630210", "0.0"),       # long admission, after nested
    (dicom(13), B, "50000011", "AP", "21630205", "120000.0"),  # inside the nested admission
    (dicom(14), C, "50000012", "AP", "21800602", "0.0"),       # its folder links outside
    (dicom(15), A, "50000013", "AP", "21500309", "0.0"),       # listed, no file
    (dicom(16), D, "50000014", "PA", "21700101", "80000.0"),   # not in MIMIC-IV
    ("../../../../../elsewhere/x", A, "50000015", "AP", "21500309", "0.0"),
    (dicom(18), "abc", "50000016", "AP", "21500309", "0.0"),
]
PATIENTS = [(A, "F", 60, 2150, "2011 - 2013", ""), (B, "M", 45, 2160, "2014 - 2016", ""),
            (C, "F", 70, 2180, "2017 - 2019", "")]
ADMISSIONS = [  # hadm, subject, admittime, dischtime, deathtime, edregtime
    ("20000001", A, "2150-03-01 14:00:00", "2150-03-10 12:00:00", "", "2150-03-01 08:00:00"),
    ("20000002", A, "2150-05-01 00:00:00", "2150-05-20 00:00:00", "2150-05-20 00:00:00", ""),
    ("20000003", B, "2163-01-01 00:00:00", "2163-01-05 00:00:00", "", ""),
    ("20000004", B, "2163-01-04 06:00:00", "2163-01-08 00:00:00", "", "2163-01-04 00:00:00"),
    ("20000005", B, "2163-02-01 00:00:00", "2163-02-28 00:00:00", "", ""),
    ("20000006", B, "2163-02-05 00:00:00", "2163-02-06 00:00:00", "", ""),
    ("20000007", C, "2180-06-01 00:00:00", "2180-06-03 00:00:00", "", ""),
]
ICUSTAYS = [  # subject, hadm, stay, intime, outtime
    (A, "20000001", "30000001", "2150-03-02 00:00:00", "2150-03-05 00:00:00"),
    (A, "20000002", "30000002", "2150-05-10 00:00:00", "2150-05-20 00:00:00"),
    (B, "20000003", "30000003", "2163-01-03 00:00:00", "2163-01-04 18:00:00"),
]
PROCEDURES = [  # subject, hadm, stay, starttime, endtime, itemid
    (A, "20000001", "30000001", "2150-03-02 06:00:00", "2150-03-04 06:00:00", "225792"),
    (A, "20000001", "30000001", "2150-03-06 00:00:00", "2150-03-07 00:00:00", "225794"),
    (B, "20000004", "", "2163-01-04 10:00:00", "2163-01-04 14:00:00", "225794"),
    (A, "20000002", "30000002", "2150-05-14 00:00:00", "2150-05-16 00:00:00", "224275"),
]
H = 1 / 24  # an hour in days
# dicom -> (episode, day, in_icu, intubation_present, survival, sex, age), worked by hand:
EXPECTED = {
    dicom(1): ("20000001", -4 * H, "N", "N", "Y", "F", 60),      # 10:00 - 14:00 on 03-01
    dicom(3): ("20000001", 1 + 12 * H, "Y", "Y", "Y", "F", 60),  # 03-03 02:00 - 03-01 14:00
    dicom(4): ("20000001", 4 + 22 * H, "N", "N", "Y", "F", 60),  # 225794 is not intubation
    dicom(5): ("20000001", 6 + (19 * 3600 + 30 * 60 + 15.5) / 86400, "N", "N", "Y", "F", 60),
    dicom(6): (None, None, "N", "N", "unknown", "F", 60),           # in no admission
    dicom(7): ("20000002", 14 + 6 * H, "Y", "N", "N", "F", 60),  # 224275 is not ventilation
    dicom(10): ("20000004", 6 * H, "N", "N", "Y", "M", 48),      # later admission wins; ICU is
    dicom(11): ("20000003", 1.0, "N", "N", "Y", "M", 48),        # 20000003's; age 45 + 3
    dicom(12): ("20000005", 9.0, "N", "N", "Y", "M", 48),
    dicom(13): ("20000006", 12 * H, "N", "N", "Y", "M", 48),
    dicom(16): (None, None, "N", "N", "unknown", "unknown", None),
}
ACCOUNT = {  # file -> (outcome, reason, raw value)
    f"files/p10/p{A}/s50000001/{dicom(2)}.jpg": ("excluded", "lateral view", "LATERAL"),
    f"files/p10/p{A}/s50000007/{dicom(8)}.jpg": ("excluded", "not a frontal view", "SWIMMERS"),
    f"files/p10/p{A}/s50000007/{dicom(9)}.jpg": ("excluded", "view missing or unreadable", ""),
    f"files/p11/p{C}/s50000012/{dicom(14)}.jpg": ("skipped", "outside the dataset folder", None),
    f"files/p10/p{A}/s50000013/{dicom(15)}.jpg": ("skipped", S.SKIPPED_NOT_FOUND, None),
    f"files/p10/p{A}/s50000015/../../../../../elsewhere/x.jpg":
        ("skipped", "outside the dataset folder", None),
    "files/pab/pabc/s50000016/" + dicom(18) + ".jpg":
        ("skipped", S.SKIPPED_BAD_IDS, f"abc / 50000016 / {dicom(18)}"),
}


def write_gz(path: Path, header: str, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", newline="") as fh:
        fh.write(header + "\n")
        for row in rows:
            fh.write(",".join(str(v) for v in row) + "\n")


@pytest.fixture
def mimic(tmp_path, dataset):
    return write_mimic(tmp_path, dataset)


def write_mimic(tmp_path: Path, dataset: Path) -> tuple:
    """The MIMIC-CXR-JPG and MIMIC-IV folders above under tmp_path -> (cxr root, iv root)
    (also for tests that build an artifact from them once per module)."""
    cxr, iv, elsewhere = tmp_path / "mimic-cxr-jpg", tmp_path / "mimic-iv", tmp_path / "elsewhere"
    write_gz(cxr / "mimic-cxr-2.0.0-metadata.csv.gz",
             "dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,"
             "Columns,StudyDate,StudyTime,ProcedureCodeSequence_CodeMeaning,"
             "ViewCodeSequence_CodeMeaning,PatientOrientationCodeSequence_CodeMeaning",
             [(d, s, st, "CHEST (PA AND LAT)", v, 2544, 3056, day, t, "CHEST (PA AND LAT)",
               "antero-posterior", "Erect") for d, s, st, v, day, t in METADATA])
    labels = ("Atelectasis,Cardiomegaly,Consolidation,Edema,Enlarged Cardiomediastinum,Fracture,"
              "Lung Lesion,Lung Opacity,No Finding,Pleural Effusion,Pleural Other,Pneumonia,"
              "Pneumothorax,Support Devices")
    write_gz(cxr / "mimic-cxr-2.0.0-chexpert.csv.gz", "subject_id,study_id," + labels,
             [(A, "50000001", *[""] * 8, "1.0", *[""] * 5),
              (A, "50000002", "", "", "", "1.0", *[""] * 5, "-1.0", *[""] * 4)])
    write_gz(iv / "hosp/patients.csv.gz",
             "subject_id,gender,anchor_age,anchor_year,anchor_year_group,dod", PATIENTS)
    write_gz(iv / "hosp/admissions.csv.gz",
             "subject_id,hadm_id,admittime,dischtime,deathtime,admission_type,admit_provider_id,"
             "admission_location,discharge_location,insurance,language,marital_status,race,"
             "edregtime,edouttime,hospital_expire_flag",
             [(s, h, a, dis, dth, "EW EMER.", "P12345", "EMERGENCY ROOM", "HOME", "Other",
               "English", "SINGLE", "WHITE", ed, "", int(bool(dth)))
              for h, s, a, dis, dth, ed in ADMISSIONS])
    write_gz(iv / "icu/icustays.csv.gz",
             "subject_id,hadm_id,stay_id,first_careunit,last_careunit,intime,outtime,los",
             [(s, h, st, "MICU", "MICU", i, o, "1.0") for s, h, st, i, o in ICUSTAYS])
    write_gz(iv / "icu/procedureevents.csv.gz",
             "subject_id,hadm_id,stay_id,caregiver_id,starttime,endtime,storetime,itemid,value,"
             "valueuom,location,locationcategory,orderid,linkorderid,ordercategoryname,"
             "ordercategorydescription,patientweight,isopenbag,continueinnextdept,"
             "statusdescription,originalamount,originalrate",
             [(s, h, st, "1", a, b, b, item, "1", "None", "", "", "1", "1", "Ventilation",
               "Task", "80", "0", "0", "FinishedRunning", "1", "1")
              for s, h, st, a, b, item in PROCEDURES])
    sources = sorted((dataset / "images").glob("*.jpg"))[:len(METADATA)]
    for (d, s, st, *_), src in zip(METADATA, sources):
        if d == dicom(15) or not s.isdigit():
            continue  # listed without a file / with unreadable ids
        if d.startswith(".."):
            target = elsewhere / "x.jpg"  # exists, but outside the dataset folder
        else:
            folder = (elsewhere if s == C else cxr / "files" / f"p{s[:2]}") / f"p{s}" / f"s{st}"
            target = folder / f"{d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    (cxr / "files" / "p11").mkdir(parents=True)
    (cxr / "files" / "p11" / f"p{C}").symlink_to(elsewhere / f"p{C}")
    return cxr, iv


def test_mimic_rows_per_image(mimic):
    cxr, iv = mimic
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = MimicReader(cxr, iv).read()
    assert rows.role == "cohort" and rows.source == "mimic"
    assert {S.EPISODE, S.TIME, S.IN_ICU, S.INTUBATION_PRESENT, S.SURVIVAL, S.SEX, S.AGE} <= \
        set(rows.provided) and S.COUNTRY not in rows.provided
    f = rows.frame.set_index(S.FILENAME)
    assert sorted(f.index) == sorted(f"{d}.jpg" for d in EXPECTED)
    for d, (episode, day, icu, intubation, survival, sex, age) in EXPECTED.items():
        row = f.loc[f"{d}.jpg"]
        assert (row[S.EPISODE] if isinstance(row[S.EPISODE], str) else None) == episode, d
        assert (day is None and math.isnan(row[S.OFFSET])) or row[S.OFFSET] == pytest.approx(
            day, abs=1e-9), (d, row[S.OFFSET], day)
        assert (row[S.IN_ICU], row[S.INTUBATION_PRESENT], row[S.SURVIVAL]) == \
            (icu, intubation, survival), d
        assert row[S.SEX] == sex, d
        assert (age is None and math.isnan(row[S.AGE])) or row[S.AGE] == age, d
        assert Path(row[S.PATH]).is_file() and row[S.PATH].startswith(str(cxr.resolve()))
    assert f.loc[f"{dicom(5)}.jpg", S.TIME] == pd.Timestamp("2150-03-08 09:30:15.5")
    assert f.loc[f"{dicom(3)}.jpg", S.FILE] == f"files/p10/p{A}/s50000002/{dicom(3)}.jpg"
    assert f.loc[f"{dicom(3)}.jpg", S.PATIENTID] == A
    assert f.loc[f"{dicom(3)}.jpg", S.VIEW] == "AP"
    # episode-level: 20000001 had an ICU stay and invasive ventilation; 20000002 an ICU stay
    assert f.loc[f"{dicom(4)}.jpg", [S.WENT_ICU, S.INTUBATED]].tolist() == ["Y", "Y"]
    assert f.loc[f"{dicom(7)}.jpg", [S.WENT_ICU, S.INTUBATED]].tolist() == ["Y", "N"]
    # CheXpert labels by study: 1 positive, -1 uncertain, NaN not mentioned
    assert f.loc[f"{dicom(3)}.jpg", "chexpert:Edema"] == 1.0
    assert f.loc[f"{dicom(3)}.jpg", "chexpert:Pleural Effusion"] == -1.0
    assert math.isnan(f.loc[f"{dicom(1)}.jpg", "chexpert:Edema"])
    assert f.loc[f"{dicom(1)}.jpg", "chexpert:No Finding"] == 1.0
    assert math.isnan(f.loc[f"{dicom(16)}.jpg", "chexpert:No Finding"])


def test_mimic_accounts_for_every_row(mimic):
    rows = MimicReader(*mimic).read()
    counts = rows.counts()
    assert counts == {"rows": 18, "candidate": 11, "excluded": 3, "skipped": 4}
    assert counts["candidate"] + counts["excluded"] + counts["skipped"] == len(METADATA)
    account = rows.account.set_index(S.FILE)
    assert sorted(account.index) == sorted(ACCOUNT)
    for file, (outcome, reason, raw) in ACCOUNT.items():
        got = account.loc[file]
        assert (got[S.A_OUTCOME], got[S.E_REASON]) == (outcome, reason), file
        if raw is not None:
            assert got[S.E_RAW_VALUE] == raw, file
    assert account.loc[f"files/p10/p{A}/s50000001/{dicom(2)}.jpg", S.A_ROW] == 1
    groups = {(g[S.E_REASON], g[S.E_RAW_VALUE]): g[S.E_COUNT] for g in rows.exclusion_groups()}
    assert groups == {("lateral view", "LATERAL"): 1, ("not a frontal view", "SWIMMERS"): 1,
                      ("view missing or unreadable", ""): 1}
    assert any("credentialed" in n for n in rows.notes)


def test_mimic_without_mimic_iv(mimic):
    """No events: the episode is the patient, day 0 their first frontal study, states unknown."""
    rows = MimicReader(mimic[0]).read()
    f = rows.frame.set_index(S.FILENAME)
    a3 = f.loc[f"{dicom(3)}.jpg"]
    assert a3[S.EPISODE] == A
    assert a3[S.OFFSET] == pytest.approx(1 + 16 * H)  # 03-03 02:00 - 03-01 10:00
    assert (a3[S.IN_ICU], a3[S.SURVIVAL], a3[S.SEX]) == ("unknown", "unknown", "unknown")
    assert f.loc[f"{dicom(11)}.jpg", S.OFFSET] == 0.0  # B's first frontal study (01-02)
    assert f.loc[f"{dicom(10)}.jpg", S.OFFSET] == pytest.approx(2.5)  # 01-04 12:00
    assert math.isnan(a3[S.AGE])


def test_mimic_missing_column_names_file_column_and_columns_found(tmp_path):
    cxr = tmp_path / "cxr"
    write_gz(cxr / "mimic-cxr-2.0.0-metadata.csv.gz", "dicom_id,subject_id,study_id,ViewPosition,"
             "StudyDate", [(dicom(1), A, "50000001", "AP", "21500301")])
    with pytest.raises(ColumnError) as err:
        MimicReader(cxr).read()
    text = str(err.value)
    assert "mimic-cxr-2.0.0-metadata.csv.gz" in text and "'StudyTime'" in text
    assert "'dicom_id', 'subject_id', 'study_id', 'ViewPosition', 'StudyDate'" in text
