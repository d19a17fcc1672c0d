"""metadata.csv of the real collection, in its June 2020 schema and rewritten in the later one."""
import csv
import os

import pytest

from cxrviz import schema as S
from cxrviz.data.covid import (DatasetError, finding_group, normalise_view, normalise_yn,
                               read_covid)

MISSING_FRONTAL = {  # absent from this snapshot on purpose (../shared/data/README.md)
    "covid-19-pneumonia-14-PA.png", "2C10A413-AABE-4807-8CCE-6A2025594067.jpeg",
    "E1724330-1866-4581-8CD8-CEC9B8AFEDDE.jpeg", "7E335538-2F86-424E-A0AB-6397783A38D0.jpeg",
    "parapneumonic-effusion-1-PA.png", "chlamydia-pneumonia-PA.png",
    "cavitating-pneumonia-4-day28-PA.png", "pneumocystis-jiroveci-pneumonia-4-PA.png",
    "covid-19-pneumonia-24-day6.jpg", "case_71_figura1.png", "covid-19-caso-86-RX-Torace-2.jpg",
}


def test_counts_and_views(dataset):
    rows = read_covid(dataset)
    assert rows.metadata_rows == 751
    f = rows.frame
    assert len(f) == 570
    assert set(f[S.VIEW]) == {"PA", "AP", "AP Supine"}
    assert f[S.IMAGE_ID].is_unique
    absent = {r[S.FILENAME] for _, r in f.iterrows() if not os.path.exists(r["path"])}
    assert absent == MISSING_FRONTAL


def test_rows_sharing_a_file_stay_separate_points(dataset):
    rows = read_covid(dataset)
    shared = dict(rows.shared_files)
    assert set(shared) == {"000001-24.jpg", "000001-27.jpg", "000006-17.jpg", "000007-15.jpg"}
    patients = rows.frame.set_index(S.IMAGE_ID).loc[shared["000001-24.jpg"], S.PATIENTID]
    assert sorted(patients) == ["285", "339"]


def test_normalisation_rules():
    assert normalise_yn("Y") == "Y" and normalise_yn(" n ") == "N"
    assert normalise_yn("Not visible") == "unknown" and normalise_yn("") == "unknown"
    assert normalise_yn("Would have been stated") == "unknown"
    assert normalise_view("APS") == "AP Supine" and normalise_view("ap supine") == "AP Supine"
    assert normalise_view("Bettaufnahme") == "AP Supine" and normalise_view("L") == "L"
    for spelling in ("AP semi erect", "AP Semi Erect", "ap  semi-erect", " AP_semi erect "):
        assert normalise_view(spelling) == "AP semi erect", spelling
    assert normalise_view("AP erect") == normalise_view("ap Erect") == "AP erect"
    assert normalise_view("?") == "?" and normalise_view("") == ""
    flat = {"COVID-19": "COVID-19", "COVID-19, ARDS": "COVID-19", "SARS": "other viral",
            "Streptococcus": "bacterial", "Pneumocystis": "fungal", "Lipoid": "lipoid",
            "No Finding": "no finding", "todo": "unknown", "Pneumonia": "unknown",
            "Aspiration": "aspiration", "ARDS": "unknown"}
    path = {"Pneumonia/Viral/COVID-19": "COVID-19", "Pneumonia/Viral/SARS": "other viral",
            "Pneumonia/Bacterial/Streptococcus": "bacterial",
            "Pneumonia/Fungal/Pneumocystis": "fungal", "Pneumonia/Lipoid": "lipoid",
            "Pneumonia/Aspiration": "aspiration", "Pneumonia": "unknown"}
    for text, group in {**flat, **path}.items():
        assert finding_group(text) == group, text


def test_regions_from_free_text_location(dataset):
    f = read_covid(dataset).frame
    first = f.iloc[0]  # "Cho Ray Hospital, Ho Chi Minh City, Vietnam"
    assert (first[S.COUNTRY], first[S.SUBREGION], first[S.CONTINENT]) == (
        "Vietnam", "South-eastern Asia", "Asia")
    assert (f[S.LOCATION] == "").sum() == (f[S.COUNTRY] == "unknown").sum()
    assert set(f[S.CONTINENT]) <= {"Europe", "Asia", "America", "Oceania", "Africa", "unknown"}


NEW_SCHEMA_FINDING = {
    "COVID-19": "Pneumonia/Viral/COVID-19", "COVID-19, ARDS": "Pneumonia/Viral/COVID-19",
    "SARS": "Pneumonia/Viral/SARS", "Streptococcus": "Pneumonia/Bacterial/Streptococcus",
    "Pneumocystis": "Pneumonia/Fungal/Pneumocystis", "Lipoid": "Pneumonia/Lipoid",
    "Klebsiella": "Pneumonia/Bacterial/Klebsiella", "Varicella": "Pneumonia/Viral/Varicella",
}


def test_later_schema_reads_the_same(dataset, tmp_path):
    """The newer upstream schema: path-form `finding` and `RT_PCR_positive` after it."""
    with open(dataset / "metadata.csv", newline="", encoding="utf-8", errors="replace") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0].keys())
    header.insert(header.index("finding") + 1, "RT_PCR_positive")
    for r in rows:
        r["RT_PCR_positive"] = "Y" if r["finding"].startswith("COVID") else ""
        r["finding"] = NEW_SCHEMA_FINDING.get(r["finding"], r["finding"])
    with open(tmp_path / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    old, new = read_covid(dataset).frame, read_covid(tmp_path).frame
    assert len(new) == len(old) == 570
    assert (new[S.FINDING_GROUP] == old[S.FINDING_GROUP]).all()
    assert new[S.FINDING].str.startswith("Pneumonia/Viral/COVID-19").sum() == (
        old[S.FINDING_GROUP] == "COVID-19").sum()


def test_every_frontal_view_torchxrayvision_counts_is_read(dataset, tmp_path):
    """Views present in the live dataset (AP semi erect, AP erect) are frontal rows, and no row
    disappears: frontal + excluded = metadata rows."""
    with open(dataset / "metadata.csv", newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.DictReader(fh)
        header, rows = reader.fieldnames, list(reader)
    lateral = [i for i, r in enumerate(rows) if r["view"] == "L"][:3]
    rows[lateral[0]]["view"] = "AP semi erect"
    rows[lateral[1]]["view"] = "AP Semi-Erect"
    rows[lateral[2]]["view"] = "AP erect"
    with open(tmp_path / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    read = read_covid(tmp_path)
    views = read.frame[S.VIEW].value_counts()
    assert (views["AP semi erect"], views["AP erect"]) == (2, 1)
    assert len(read.frame) == 573
    excluded = sum(g[S.E_COUNT] for g in read.excluded)
    assert len(read.frame) + excluded == read.metadata_rows == 751
    assert {g[S.E_RAW_VALUE]: g[S.E_COUNT] for g in read.excluded
            if g[S.E_REASON] == "lateral view"} == {"L": 55}


def test_missing_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError, match="git clone https://github.com/ieee8023/covid-chestxray"):
        read_covid(tmp_path / "nowhere")


def test_paths_leaving_the_folder_are_listed_not_read(dataset, tmp_path):
    """`../`, absolute names and folders, links out (and a link loop) are returned as skips with
    reason "outside the dataset folder"; a link between two files of the folder is kept."""
    with open(dataset / "metadata.csv", newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.DictReader(fh)
        header, rows = reader.fieldnames, [r for r in reader if r["patientid"] == "2"]
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "out.jpg").symlink_to(dataset / "images" / rows[0]["filename"])
    (tmp_path / "images" / "loop.jpg").symlink_to(tmp_path / "images" / "loop.jpg")
    (tmp_path / "images" / "a.jpg").write_bytes(b"x")
    (tmp_path / "images" / "in.jpg").symlink_to(tmp_path / "images" / "a.jpg")
    lies = {"../../metadata.csv": {}, "/etc/passwd": {}, "out.jpg": {}, "loop.jpg": {},
            rows[1]["filename"]: {"folder": str(dataset / "images")},
            "x.jpg": {"folder": "/tmp"}, "in.jpg": {}, "sub/../a.jpg": {}}
    written = [{**rows[0], "filename": name, **extra} for name, extra in lies.items()]
    with open(tmp_path / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(written)
    read = read_covid(tmp_path)
    assert {s["filename"]: s["reason"] for s in read.outside} == {
        name: "outside the dataset folder" for name in
        ["../../metadata.csv", "/etc/passwd", "out.jpg", "loop.jpg", rows[1]["filename"], "x.jpg"]}
    assert read.frame[S.FILENAME].tolist() == ["in.jpg", "sub/../a.jpg"]
    assert read.frame["path"].tolist() == [str(tmp_path.resolve() / "images" / "a.jpg")] * 2
    assert read.frontal_rows == read.metadata_rows == 8


def test_metadata_csv_linked_from_elsewhere_is_refused(dataset, tmp_path):
    (tmp_path / "metadata.csv").symlink_to(dataset / "metadata.csv")
    with pytest.raises(DatasetError, match="outside"):
        read_covid(tmp_path)
