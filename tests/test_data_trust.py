"""metadata.csv that lies: paths leaving the dataset folder, rows without a patient id, offsets of
1e9 days and ages of 200, a ragged row. Real rows and real images of the collection, copied into a
dataset folder under tmp (never into the repo), through precompute as a user runs it.

Expected values are written by hand from metadata.csv (patients 2, 3, 4, 6, 178, 284, 205).
"""
import base64
import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cxrviz import schema as S
from cxrviz.io.artifact import read_artifact

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = "outside the dataset folder"


def real_rows(dataset):
    with open(dataset / "metadata.csv", newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


def write_metadata(folder: Path, header, rows) -> None:
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(rows)


@pytest.fixture(scope="module")
def lying(dataset, tmp_path_factory):
    """A dataset folder whose metadata.csv holds every lie at once, built by precompute."""
    from precompute.pipeline import Config, build_artifact

    root = tmp_path_factory.mktemp("lying")
    ds = root / "ds"
    (ds / "images").mkdir(parents=True)
    header, rows = real_rows(dataset)
    of = lambda pid: [dict(r) for r in rows if r["patientid"] == pid]  # noqa: E731
    real = dataset / "images"

    def copy_in(row):
        shutil.copy(real / row["filename"], ds / "images" / row["filename"])
        return row

    blank = [copy_in(r) for r in of("178") + of("284")]  # two patients, ids removed
    for r in blank:
        r["patientid"] = ""
    p2, p4 = [copy_in(r) for r in of("2")], [copy_in(r) for r in of("4")]
    p2[0]["offset"], p2[1]["offset"], p2[2]["age"], p2[3]["age"] = "1e9", "inf", "200", "-5"
    p4[0]["age"] = "nan"
    p3, p6 = of("3"), of("6")
    shutil.copy(real / p3[0]["filename"], root / "outside.jpeg")  # a real X-ray beside the folder
    (ds / "images" / "escape.jpeg").symlink_to(real / p6[0]["filename"])
    (ds / "images" / "inner.jpeg").symlink_to(ds / "images" / p2[3]["filename"])  # stays inside
    lies = [
        {**p3[0], "filename": "../../outside.jpeg"},
        {**p3[1], "filename": str(real / p3[1]["filename"])},  # an absolute filename
        {**p3[2], "folder": str(real)},  # an absolute folder
        {**p6[0], "filename": "escape.jpeg"},  # a link inside that points out
        {**p6[1], "filename": "/etc/passwd"},
        {**p6[1], "patientid": "6b", "filename": "inner.jpeg"},
    ]
    write_metadata(ds, header, blank + p2 + p4 + lies)
    summary = build_artifact(Config(dataset=str(ds), out=str(root / "art"), weights="random",
                                    cache_dir=str(root / "cache"), progress=False))
    art = read_artifact(summary.out)  # sha256 of every file checked
    return {"art": art, "summary": summary, "cache": root / "cache", "blank": blank,
            "p2": p2, "p4": p4, "lies": lies}


def test_paths_outside_the_dataset_folder_are_skipped_never_read(lying):
    art, lies = lying["art"], lying["lies"]
    skipped = {s["filename"]: s["reason"] for s in art.manifest[S.M_SKIPPED]}
    escaping = ["../../outside.jpeg", lies[1]["filename"], lies[2]["filename"], "escape.jpeg",
                "/etc/passwd"]
    assert skipped == {name: OUTSIDE for name in escaping}
    counts = art.manifest[S.M_COUNTS]
    # 10 + 4 + 2 rows with their own images, and inner.jpeg (a link that stays inside)
    assert (counts["embedded_covid"], counts["skipped_covid"], counts["excluded"]) == (17, 5, 0)
    assert counts["metadata_rows"] == counts["frontal_xray"] == 22
    assert counts["embedded_covid"] + counts["excluded"] + counts["skipped_covid"] == 22
    assert "inner.jpeg" in set(art.images[S.FILENAME])
    shown = sorted(p.stem for p in (art.path / S.DISPLAY_DIR).iterdir())
    assert shown == sorted(art.images[S.IMAGE_ID])
    # never decoded: the run's fresh cache holds the 16 distinct images it embedded, no more
    # (inner.jpeg is the same bytes as patient 2's last image)
    cache = lying["cache"]
    assert len(list((cache / "display").rglob("*.jpg"))) == 16
    assert len(list((cache / "features").rglob("*.npz"))) == 16
    assert not (cache / "skip").exists()
    assert f"  - [covid] ../../outside.jpeg: {OUTSIDE}" in lying["summary"].text()


def test_rows_without_patient_id_are_patients_of_their_own(lying):
    """Patients 178 (died; in ICU) and 284 (survived) with their ids removed: ten patients, and
    178's death stays at each of its images (one patient "" had 284's day 98 as last image)."""
    art, blank = lying["art"], lying["blank"]
    im = art.images.set_index(S.FILENAME)
    names = [r["filename"] for r in blank]
    ids = im.loc[names, S.PATIENTID]
    assert ids.is_unique and all(i == f"unknown-{n}" for i, n in zip(ids, names))
    p = art.patients.set_index(S.PATIENTID)
    assert (p.loc[ids, S.P_N_IMAGES] == 1).all()
    died = {f"unknown-16660_{k}_1.jpg" for k in range(1, 6)}  # patient 178's five images
    assert set(p.index[p[S.SURVIVAL] == "N"]) == died
    # 16660_1_1.jpg: not intubated, no ICU value, 178 died: bad as its own last image
    assert im.loc["16660_1_1.jpg", S.STATE] == "bad"
    assert "last image, survival=N" in im.loc["16660_1_1.jpg", S.STATE_REASON]
    assert (im.loc[[r["filename"] for r in blank[5:]], S.STATE] == "good").all()  # 284
    assert art.trajectories[S.PATIENTID].str.startswith("unknown-").sum() == 0
    group = [g for g in art.manifest[S.M_MADE_UNKNOWN] if g[S.E_COLUMN] == S.PATIENTID]
    assert len(group) == 1 and group[0][S.E_COUNT] == 10
    assert sorted(group[0][S.E_FILENAMES]) == sorted(names)
    assert any(n.startswith("10 metadata rows have no patient id") for n in
               art.manifest[S.M_NOTES])


def test_implausible_offsets_and_ages_become_unknown_and_are_counted(lying):
    from cxrviz.store import Store

    art, p2, p4 = lying["art"], lying["p2"], lying["p4"]
    im = art.images.set_index(S.FILENAME)
    assert im.loc[[p2[0]["filename"], p2[1]["filename"]], S.OFFSET].isna().all()
    assert im.loc[[p2[2]["filename"], p2[3]["filename"]], S.OFFSET].tolist() == [5, 6]
    assert im.loc[[p2[2]["filename"], p2[3]["filename"], p4[0]["filename"]], S.AGE] \
        .isna().all()
    assert im.loc[p4[1]["filename"], S.AGE] == 52
    groups = {(g[S.E_COLUMN], g[S.E_REASON], g[S.E_RAW_VALUE]): g[S.E_FILENAMES]
              for g in art.manifest[S.M_MADE_UNKNOWN] if g[S.E_COLUMN] != S.PATIENTID}
    assert groups == {
        ("offset", "outside -365…3650 days", "1e9"): [p2[0]["filename"]],
        ("offset", "not a finite number", "inf"): [p2[1]["filename"]],
        ("age", "outside 0…120 years", "200"): [p2[2]["filename"]],
        ("age", "outside 0…120 years", "-5"): [p2[3]["filename"]],
        ("age", "not a number", "nan"): [p4[0]["filename"]],
    }
    lo, hi = Store.from_artifact(art).ranges["age"]  # the age slider's range
    assert lo >= 0 and hi <= 120
    assert "read as unknown: 1 offset values, outside -365…3650 days (1e9)" in \
        lying["summary"].text()


def ragged_copy(dataset, folder: Path, row_index: int) -> int:
    """metadata.csv with one unquoted comma added to data row `row_index`; returns the file line
    that row is on, counted in the written text (header = line 1)."""
    header, rows = real_rows(dataset)
    folder.mkdir()
    write_metadata(folder, header, rows)
    lines = (folder / "metadata.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    target = rows[row_index]["filename"]
    line = next(i for i, text in enumerate(lines) if target in text)
    lines[line] = lines[line].replace(target, f"{target},extra", 1)
    (folder / "metadata.csv").write_text("".join(lines), encoding="utf-8")
    return line + 1


@pytest.mark.parametrize("row_index", [3, 0])  # 0: pandas would shift every column silently
def test_a_ragged_row_stops_with_file_line_and_fix(dataset, tmp_path, row_index):
    line = ragged_copy(dataset, tmp_path / "ds", row_index)
    done = subprocess.run([sys.executable, "-m", "precompute", "--dataset", str(tmp_path / "ds"),
                           "--out", str(tmp_path / "art"), "--weights", "random", "--quiet"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    meta = tmp_path / "ds" / "metadata.csv"
    assert f"{meta.resolve()}, line {line}: 30 fields where the header has 29" in done.stderr
    assert "double quotes" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "art").exists()


def test_icu_and_intubation_at_any_time_agree_in_panel_table_and_csv(covid_artifact):
    """Patient 205 (metadata.csv): `intubated` blank, `intubation_present` Y on days 11, 13 and
    20, `went_icu` Y. The detail panel (of day 1's image, which itself says not intubated), the
    patients table, its CSV and the chart's shading all say intubated, and the panel says where
    that comes from."""
    from cxrviz import ids
    from cxrviz.app import create_app
    from cxrviz.appstate import current
    from cxrviz.figures.time import INTUBATION_LABEL, patient_series_figure
    from cxrviz.pages import map as page
    from tests.app_helpers import run_callback

    create_app(covid_artifact.out)
    store = current().store
    day1 = "covid-205-covid-19-pneumonia-progression-and-regression-day1"
    detail = run_callback(page.detail.show_detail, {f"{ids.SELECTED}.data": day1},
                          image_id=day1)
    facts = next(c for c in detail if getattr(c, "className", None) == "facts")
    shown = {tr.children[0].children: tr.children[1].children for tr in facts.children}
    assert shown["Intubated at this image"] == "no"
    assert shown["Intubated at any time"] == \
        "yes (from image 3, day 11: 'intubated at this image')"
    assert shown["In ICU at any time"] == "yes"

    keep = store.mask({})
    table = {r[S.PATIENTID]: r for r in page.table.rows_for(store, keep)}
    assert (table["205"][S.P_INTUBATED], table["205"][S.P_ICU]) == ("Y", "Y")
    sent, _ = run_callback(page.table.table_csv, {f"{ids.TABLE_CSV}.n_clicks": 1}, clicks=1,
                           filters={})
    csv_rows = pd.read_csv(io.BytesIO(base64.b64decode(sent["content"])), dtype=str)
    row = csv_rows.set_index(S.PATIENTID).loc["205"]
    assert (row[S.P_INTUBATED], row[S.P_ICU]) == ("Y", "Y")

    fig = patient_series_figure(store, "205")
    (hatch,) = [t for t in fig.data if t.name == INTUBATION_LABEL]  # hatched spans, x0 x1 x1 x0
    xs = [v for v in hatch.x if v is not None]
    shaded = [(xs[i], xs[i + 1]) for i in range(0, len(xs), 5)]
    assert shaded == [(11, 20)]
    # every patient: the panel's two "at any time" rows say what the table says
    words = {"Y": "yes", "N": "no", "unknown": "unknown"}
    for patient in table.values():
        first = page.table.first_image_of(store, patient[S.PATIENTID])
        facts = next(c for c in page.detail.detail_children(store, first)
                     if getattr(c, "className", None) == "facts")
        shown = {tr.children[0].children: tr.children[1].children for tr in facts.children}
        assert shown["In ICU at any time"].split(" (")[0] == words[patient[S.P_ICU]]
        assert shown["Intubated at any time"].split(" (")[0] == words[patient[S.P_INTUBATED]]

