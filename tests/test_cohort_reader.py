"""A hospital's own export (images.csv + events.csv, JPEG / PNG / DICOM) read with hand-worked
expectations: the real collection's images, DICOMs written with pydicom (valid DA / TM / DT
values), and every expected value in the tables below worked out by hand from events.csv."""
import math
import shutil
import warnings

import numpy as np
import pandas as pd
import pydicom
import pytest

from cxrviz import schema as S
from cxrviz.data.base import ColumnError, ReaderError
from cxrviz.data.cohort import CohortReader
from tests.dicoms import write_dicom

IMAGES_CSV = """patient_id,file,time,view,sex,age,ward
P-C,images/c1.png,2024-05-01T12:00:00+02:00,PA,M,40,
P-A,images/a1.png,2024-03-01T10:00:00,PA,F,70,ward 5
P-A,images/a2.jpg,2024-03-03T12:00:00,AP,female,70,ICU 2
P-A,images/a3.png,2024-04-01T09:00:00,AP,F,70,ward 5
,dicom/b1.dcm,,,M,55,
P-B,dicom/b2.dcm,,,M,55,
P-B,dicom/b3.dcm,,,M,55,
P-A,../outside.png,2024-03-02T10:00:00,PA,F,70,
P-A,{outside},2024-03-02T10:00:00,PA,F,70,
P-A,images/link.png,2024-03-02T10:00:00,PA,F,70,
P-A,images/missing.png,2024-03-02T10:00:00,PA,F,70,
P-A,images/a4.png,2024-03-02T10:00:00,SWIMMERS,F,70,
P-A,images/a5.png,2024-03-02T10:00:00,LATERAL,F,70,
P-D,images/d1.png,not a date,PA,M,33,
"""
EVENTS_CSV = """patient_id,event,start,end
P-A,admission,2024-03-01T08:00:00,2024-03-05T08:00:00
P-A,icu,2024-03-02T00:00:00,2024-03-04T00:00:00
P-A,ventilation,2024-03-03T06:00:00,2024-03-03T18:00:00
P-A,admission,2024-03-30T09:00:00,
P-B,admission,2024-03-09T20:15:00,2024-03-12T20:15:00
P-B,icu,2024-03-10T08:15:00,2024-03-11T00:00:00
P-B,death,2024-03-12T20:15:00,
"""
H = 1 / 24
# file -> (patient, episode, day, in_icu, intubation_present, survival, view, time), by hand
EXPECTED = {
    "images/a1.png": ("P-A", "P-A/admission-1", 2 * H, "N", "N", "Y", "PA",
                      "2024-03-01 10:00:00"),                      # 10:00 - 08:00
    "images/a2.jpg": ("P-A", "P-A/admission-1", 2 + 4 * H, "Y", "Y", "Y", "AP",
                      "2024-03-03 12:00:00"),                      # in ICU and ventilated
    "images/a3.png": ("P-A", "P-A/admission-2", 2.0, "N", "N", "unknown", "AP",
                      "2024-04-01 09:00:00"),                      # admission with no end yet
    "dicom/b1.dcm": ("P-B", "P-B/admission-1", 12 * H, "Y", "N", "N", "AP",
                     "2024-03-10 08:15:00"),  # header: StudyDate + StudyTime; ICU starts then
    "dicom/b2.dcm": ("P-B", "P-B/admission-1", 2 + (18 * 60 + 15) / 1440, "N", "N", "N", "PA",
                     "2024-03-12 14:30:00"),  # header: AcquisitionDateTime beats StudyDate
    "images/c1.png": ("P-C", None, None, "N", "N", "unknown", "PA",
                      "2024-05-01 10:00:00"),  # +02:00 -> UTC (the times after it: as written)
    "images/d1.png": ("P-D", None, None, "unknown", "unknown", "unknown", "PA", None),
}


@pytest.fixture
def export(tmp_path, dataset):
    return write_export(tmp_path, dataset)


def write_export(tmp_path, dataset):
    """The hospital export under tmp_path -> (its folder, an image outside it)."""
    root, outside = tmp_path / "hospital", tmp_path / "outside.png"
    (root / "images").mkdir(parents=True)
    (root / "dicom").mkdir()
    pngs = sorted((dataset / "images").glob("*.png"))
    for name, src in zip(("a1.png", "a3.png", "a4.png", "a5.png", "c1.png", "d1.png"), pngs):
        shutil.copyfile(src, root / "images" / name)
    shutil.copyfile(sorted((dataset / "images").glob("*.jpg"))[0], root / "images" / "a2.jpg")
    shutil.copyfile(pngs[0], outside)
    (root / "images" / "link.png").symlink_to(outside)
    pixels = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    tags = {"b1.dcm": ("P-B", "AP", {"StudyDate": "20240310", "StudyTime": "081500"}),
            "b2.dcm": ("P-B", "PA", {"AcquisitionDateTime": "20240312143000",
                                     "StudyDate": "20240101", "StudyTime": "000000"}),
            "b3.dcm": ("P-B", "LL", {"StudyDate": "20240311", "StudyTime": "120000.25"})}
    for name, (patient, view, extra) in tags.items():
        path = write_dicom(root / "dicom" / name, pixels, patient_id=patient, view=view)
        ds = pydicom.dcmread(path)
        for keyword, value in extra.items():
            setattr(ds, keyword, value)
        ds.save_as(path, enforce_file_format=True)
    (root / "images.csv").write_text(IMAGES_CSV.format(outside=outside))
    (root / "events.csv").write_text(EVENTS_CSV)
    return root, outside


def test_cohort_rows_per_image(export):
    root, _ = export
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = CohortReader(root).read()
    assert (rows.source, rows.role) == ("cohort", "cohort")
    f = rows.frame.set_index(S.FILE)
    assert sorted(f.index) == sorted(EXPECTED)
    for file, (patient, episode, day, icu, intubation, survival, view, time) in EXPECTED.items():
        row = f.loc[file]
        assert row[S.PATIENTID] == patient, file
        assert (row[S.EPISODE] if isinstance(row[S.EPISODE], str) else None) == episode, file
        assert (day is None and math.isnan(row[S.OFFSET])) or row[S.OFFSET] == pytest.approx(
            day, abs=1e-9), (file, row[S.OFFSET], day)
        assert (row[S.IN_ICU], row[S.INTUBATION_PRESENT], row[S.SURVIVAL]) == \
            (icu, intubation, survival), file
        assert row[S.VIEW] == view, file
        assert (time is None and pd.isna(row[S.TIME])) or row[S.TIME] == pd.Timestamp(time), file
    assert f.loc["images/a2.jpg", S.SEX] == "F" and f.loc["images/a2.jpg", S.AGE] == 70
    assert f.loc["images/a1.png", "extra:ward"] == "ward 5"
    assert f.loc["images/a1.png", S.FILENAME] == "a1.png"
    assert f.loc["images/a1.png", [S.WENT_ICU, S.INTUBATED]].tolist() == ["Y", "Y"]
    assert f.loc["dicom/b1.dcm", [S.WENT_ICU, S.INTUBATED]].tolist() == ["Y", "N"]
    assert f[S.IMAGE_ID].is_unique
    assert {S.EPISODE, S.OFFSET, S.TIME, S.IN_ICU, S.SURVIVAL, S.VIEW, S.AGE} <= set(rows.provided)
    assert S.COUNTRY not in rows.provided and S.FINDING not in rows.provided
    assert any("unreadable" in n and "'not a date'" in n for n in rows.notes)


def test_cohort_accounts_for_every_row(export):
    root, outside = export
    rows = CohortReader(root).read()
    assert rows.counts() == {"rows": 14, "candidate": 7, "excluded": 3, "skipped": 4}
    account = rows.account.set_index(S.FILE)
    expected = {
        "dicom/b3.dcm": ("excluded", "lateral view", "LL"),  # view from the header
        "images/a4.png": ("excluded", "not a frontal view", "SWIMMERS"),
        "images/a5.png": ("excluded", "lateral view", "LATERAL"),
        "../outside.png": ("skipped", "outside the dataset folder", "../outside.png"),
        str(outside): ("skipped", "outside the dataset folder", str(outside)),
        "images/link.png": ("skipped", "outside the dataset folder", "images/link.png"),
        "images/missing.png": ("skipped", S.SKIPPED_NOT_FOUND, "images/missing.png"),
    }
    assert sorted(account.index) == sorted(expected)
    for file, (outcome, reason, raw) in expected.items():
        assert tuple(account.loc[file, [S.A_OUTCOME, S.E_REASON, S.E_RAW_VALUE]]) == \
            (outcome, reason, raw), file
    assert account.loc["images/a4.png", S.A_ROW] == 11


def test_cohort_without_events(export):
    """No events.csv: the episode is the patient, day 0 their first dated image or `day` as
    written, ICU / intubation / survival from per-image columns or unknown."""
    root, _ = export
    (root / "events.csv").unlink()
    (root / "images.csv").write_text(
        "patient_id,file,time,day,in_icu\n"
        "P-A,images/a1.png,2024-03-01T10:00:00,,N\n"
        "P-A,images/a2.jpg,2024-03-03T12:00:00,,Y\n"
        "P-E,images/a3.png,,5,\n")
    rows = CohortReader(root).read()
    f = rows.frame.set_index(S.FILE)
    assert f.loc["images/a1.png", [S.EPISODE, S.OFFSET, S.IN_ICU]].tolist() == ["P-A", 0.0, "N"]
    assert f.loc["images/a2.jpg", S.OFFSET] == pytest.approx(2 + 2 * H)  # 03-03 12:00 - 03-01 10:00
    assert f.loc["images/a2.jpg", S.IN_ICU] == "Y"
    assert f.loc["images/a3.png", [S.EPISODE, S.OFFSET, S.IN_ICU]].tolist() == \
        ["P-E", 5.0, "unknown"]
    assert set(f[S.SURVIVAL]) == {"unknown"} and set(f[S.INTUBATION_PRESENT]) == {"unknown"}
    assert set(f[S.VIEW]) == {"unknown"}  # no view column: kept, view unknown


def test_missing_column_names_file_column_and_columns_found(tmp_path):
    (tmp_path / "images.csv").write_text("patient_id,path,time\nP-A,images/a1.png,\n")
    with pytest.raises(ColumnError) as err:
        CohortReader(tmp_path).read()
    text = str(err.value)
    assert str(tmp_path / "images.csv") in text and "'file'" in text
    assert "columns found: 'patient_id', 'path', 'time'" in text


def test_wrong_event_names_file_line_and_value(export):
    root, _ = export
    (root / "events.csv").write_text(EVENTS_CSV.replace("P-A,icu,", "P-A,ICU stay,"))
    with pytest.raises(ReaderError) as err:
        CohortReader(root).read()
    text = str(err.value)
    assert "events.csv, line 3" in text and "'ICU stay'" in text and "ventilation" in text
    (root / "events.csv").write_text(EVENTS_CSV.replace("2024-03-30T09:00:00", "soon"))
    with pytest.raises(ReaderError, match=r"events.csv, line 5: start is blank or not an ISO"):
        CohortReader(root).read()


def test_a_file_listed_twice_is_two_points_with_distinct_ids(export):
    root, _ = export
    (root / "events.csv").unlink()
    (root / "images.csv").write_text("patient_id,file\nP-A,images/a1.png\nP-A,images/a1.png\n"
                                     "P-A,./images//a3.png\n")
    rows = CohortReader(root).read()
    assert rows.frame[S.IMAGE_ID].tolist() == ["cohort-p-a-images-a1", "cohort-p-a-images-a1-2",
                                               "cohort-p-a-images-a3"]
    assert rows.frame[S.PATH].tolist()[2] == str((root / "images" / "a3.png").resolve())
