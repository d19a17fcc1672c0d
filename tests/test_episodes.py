"""Per episode everywhere: on a MIMIC-layout artifact a patient with two admissions has two rows
in the patients table, each admission its own day 0 in the time views, the cohort chart, the
patient series, figure 3, the browser's time data and the table in a real browser.

The folders are tests/test_mimic_reader.py's (its builder), plus one more study of patient A in
their second admission, so that both admissions have two or more images. Every expected number
below is worked by hand from the event times written there (the arithmetic is spelled out), not
read from the code under test.

Patient A (10000032): admission 20000001 starts 2150-03-01 14:00 (ED from 08:00; ICU 03-02 to
03-05; invasive ventilation 03-02 06:00 to 03-04 06:00; survived); admission 20000002 starts
2150-05-01 00:00 (ICU 05-10 to 05-20; died 05-20). Images: dicom 1 at 03-01 10:00 (day -4 h),
3 at 03-03 02:00 (1 d 12 h, ICU + ventilated: bad), 4 at 03-06 12:00 (4 d 22 h), 5 at
03-08 09:30:15.5 (6 d 19:30:15.5); 7 at 05-15 06:00 (14 d 6 h, ICU: bad), 20 (added here) at
05-18 12:00 (17 d 12 h, ICU and the last image of a death: bad); 6 at 04-01, in no admission.
"""
import gzip
import io
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cxrviz import ids
from cxrviz import schema as S
from tests.test_mimic_reader import A, B, write_mimic, dicom

H = 1 / 24
EXTRA = (dicom(20), A, "50000020", "AP", "21500518", "120000.0")  # 2150-05-18 12:00
DAY = {  # dicom -> day since its admission's start (hand-worked, see the docstring)
    1: -4 * H, 3: 1 + 12 * H, 4: 4 + 22 * H, 5: 6 + (19 * 3600 + 30 * 60 + 15.5) / 86400,
    7: 14 + 6 * H, 20: 17 + 12 * H,
}
EPISODE_1, EPISODE_2 = "20000001", "20000002"
ROOT = Path(__file__).resolve().parents[1]


def add_study(cxr, dataset):
    """One more row in the metadata (written as MIMIC writes it) and its image."""
    path = cxr / "mimic-cxr-2.0.0-metadata.csv.gz"
    meta = pd.read_csv(path, dtype=str, keep_default_na=False)
    row = dict(zip(["dicom_id", "subject_id", "study_id", "ViewPosition", "StudyDate",
                    "StudyTime"], EXTRA))
    meta = pd.concat([meta, pd.DataFrame([{**meta.iloc[0].to_dict(), **row}])])
    with gzip.open(path, "wt", newline="") as fh:
        meta.to_csv(fh, index=False)
    target = cxr / "files" / "p10" / f"p{A}" / "s50000020" / f"{dicom(20)}.jpg"
    target.parent.mkdir(parents=True)
    shutil.copyfile(sorted((dataset / "images").glob("*.jpg"))[30], target)


@pytest.fixture(scope="module")
def art(tmp_path_factory, dataset, session_cache):
    from cxrviz.io.artifact import read_artifact
    from precompute.pipeline import Config, build_artifact

    root = tmp_path_factory.mktemp("mimic-episodes")
    cxr, iv = write_mimic(root, dataset)
    add_study(cxr, dataset)
    summary = build_artifact(Config(dataset=f"mimic:{cxr}", mimic_iv=str(iv), out=str(root / "art"),
                                    weights="random", workers=0, cache_dir=str(session_cache),
                                    progress=False))
    return read_artifact(summary.out)


@pytest.fixture(scope="module")
def store(art):
    from cxrviz.store import Store

    return Store.from_artifact(art)


def image_of(art, k: int) -> str:
    images = art.images
    return images.loc[images[S.FILENAME] == f"{dicom(k)}.jpg", S.IMAGE_ID].item()


def pos_of(store, art, k: int) -> int:
    return store.position[image_of(art, k)]


def test_the_patients_table_has_a_row_per_admission(art):
    p = art.patients
    a = p[p[S.PATIENTID] == A].set_index(S.EPISODE, drop=False)
    assert len(a) == 3  # two admissions and the film outside both
    first, second = a.loc[EPISODE_1], a.loc[EPISODE_2]
    assert (first[S.P_N_IMAGES], first[S.P_N_DATED]) == (4, 4)
    assert first[S.P_FIRST_DAY] == pytest.approx(-4 * H)
    assert first[S.P_LAST_DAY] == pytest.approx(6 + (19 * 3600 + 30 * 60 + 15.5) / 86400)
    assert first[S.P_DAYS_TO_BAD] == pytest.approx(1 + 12 * H + 4 * H)  # dicom 3 - dicom 1
    assert (first[S.SURVIVAL], first[S.P_ICU], first[S.P_INTUBATED]) == ("Y", "Y", "Y")
    assert (second[S.P_N_IMAGES], second[S.P_N_DATED]) == (2, 2)
    assert second[S.P_FIRST_DAY] == pytest.approx(14 + 6 * H)  # its own day 0: May 1st
    assert second[S.P_LAST_DAY] == pytest.approx(17 + 12 * H)
    assert second[S.P_DAYS_TO_BAD] == pytest.approx(0)  # dicom 7, in ICU, is its first image
    # ICU stay in this admission; 224275 is not ventilation; a deathtime
    assert (second[S.SURVIVAL], second[S.P_ICU], second[S.P_INTUBATED]) == ("N", "Y", "N")
    outside = a[a[S.EPISODE].isna()].iloc[0]  # dicom 6, 2150-04-01, between the admissions
    assert (outside[S.P_N_IMAGES], outside[S.P_N_DATED]) == (1, 0)
    assert math.isnan(outside[S.P_FIRST_DAY]) and outside[S.SURVIVAL] == "unknown"
    # every image in one row: B's four admissions (one image each), D's film in no admission
    assert p[S.P_N_IMAGES].sum() == len(art.images) == 12  # 11 + the study added here
    assert sorted(p.loc[p[S.PATIENTID] == B, S.EPISODE]) == [
        "20000003", "20000004", "20000005", "20000006"]
    assert len(p) == 3 + 4 + 1


def test_each_admission_is_aligned_on_its_own_day_0(art, store):
    from cxrviz.compute.timeline import aligned_days

    first = store.aligned("first")
    expected_first = {1: 0.0, 3: DAY[3] - DAY[1], 4: DAY[4] - DAY[1], 5: DAY[5] - DAY[1],
                      7: 0.0, 20: DAY[20] - DAY[7]}
    last = store.aligned("last")
    expected_last = {1: DAY[1] - DAY[5], 5: 0.0, 7: DAY[7] - DAY[20], 20: 0.0}
    first_bad = store.aligned("first_bad")  # dicom 3 and dicom 7 are each admission's first bad
    expected_bad = {1: DAY[1] - DAY[3], 3: 0.0, 7: 0.0, 20: DAY[20] - DAY[7]}
    by_pandas = aligned_days(art.images, "first")
    for k, day in expected_first.items():
        assert first[pos_of(store, art, k)] == pytest.approx(day), k
        assert by_pandas[art.images[S.IMAGE_ID] == image_of(art, k)].item() == pytest.approx(day)
    for k, day in expected_last.items():
        assert last[pos_of(store, art, k)] == pytest.approx(day), k
    for k, day in expected_bad.items():
        assert first_bad[pos_of(store, art, k)] == pytest.approx(day), k
    assert np.isnan(first[pos_of(store, art, 6)])  # in no admission: no day 0
    shown = store.day_mask("first", 0, 3)  # days 0-3 since each admission's first image
    inside = {k for k in (1, 3, 4, 5, 7, 20) if shown[pos_of(store, art, k)]}
    assert inside == {1, 3, 7}
    # left out under first_bad: B's four admissions (all good) and the two films in no admission
    assert store.left_out(np.ones(len(store.covid), bool), "first_bad") == 6


def test_the_cohort_chart_draws_each_admission_from_its_own_day_0(store):
    from cxrviz.figures.time import cohort_figure, cohort_summary

    keep = np.ones(len(store.covid), bool)
    summary = cohort_summary(store, keep, "first")
    assert (summary["episodes"], summary["patients"]) == (2, 1)  # A's two admissions
    fig = cohort_figure(store, keep, "first")
    lines = {t.name: [None if v is None else round(v, 6) for v in t.x] for t in fig.data
             if t.name and t.name.endswith(": admissions")}
    survived = [0.0, DAY[3] - DAY[1], DAY[4] - DAY[1], DAY[5] - DAY[1], None]
    died = [0.0, DAY[20] - DAY[7], None]
    assert lines["survived: admissions"] == [None if v is None else round(v, 6)
                                             for v in survived]
    assert lines["died: admissions"] == [None if v is None else round(v, 6) for v in died]
    assert "2 admissions with ≥ 2 dated images (of 1 patient)" in fig.layout.title.text


def test_the_series_shows_the_selected_images_admission(art, store):
    from cxrviz.figures.time import patient_series_figure

    def series(selected=None):
        fig = patient_series_figure(store, A, "offset", selected=selected)
        trace = next(t for t in fig.data if t.name == "bad-state density (percentile)")
        return fig.layout.title.text, [round(v, 6) for v in trace.x]

    title, days = series(image_of(art, 7))
    assert title == f"Patient {A}, admission {EPISODE_2} over time"
    assert days == [round(DAY[7], 6), round(DAY[20], 6)]
    title, days = series(image_of(art, 3))
    assert title == f"Patient {A}, admission {EPISODE_1} over time"
    assert days == [round(DAY[k], 6) for k in (1, 3, 4, 5)]
    assert series()[1] == [round(DAY[7], 6), round(DAY[20], 6)]  # no selection: the latest


def test_figure3_draws_one_line_per_admission(art, store):
    from cxrviz.figures.paper import paper_figure

    fig, _ = paper_figure(store, "figure3", patients=[A])
    panel_b = {t.name: [round(v, 6) for v in t.x] for t in fig.data
               if t.xaxis == "x2" and t.name}
    assert panel_b == {f"patient {A}, admission {EPISODE_1}": [round(DAY[k], 6)
                                                               for k in (1, 3, 4, 5)],
                       f"patient {A}, admission {EPISODE_2}": [round(DAY[7], 6),
                                                               round(DAY[20], 6)]}


def served(artifact, paths, tmp_path):
    """GET each path from the app serving `artifact`, in a process of its own (one artifact per
    app process; this test session's app serves the collection). Returns per path (headers,
    body bytes)."""
    out = tmp_path / "served"
    out.mkdir()
    code = "\n".join([
        "import sys, json, pathlib",
        "from cxrviz.app import create_app",
        "client = create_app(sys.argv[1], model=False).server.test_client()",
        "out = pathlib.Path(sys.argv[2])",
        "for k, path in enumerate(sys.argv[3:]):",
        "    r = client.get(path)",
        "    (out / f'{k}.body').write_bytes(r.get_data())",
        "    (out / f'{k}.json').write_text(json.dumps(dict(r.headers)))",
    ])
    done = subprocess.run([sys.executable, "-c", code, str(artifact), str(out), *paths],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return {p: (json.loads((out / f"{k}.json").read_text()), (out / f"{k}.body").read_bytes())
            for k, p in enumerate(paths)}


def test_the_maps_columns_are_per_admission(art, store, tmp_path):
    """What the browser's map draws day ranges and trajectories from (/api/map/points, events,
    edges, point): per image its admission's number, per admission its own day 0."""
    point = {k: f"/api/map/point?id={image_of(art, k)}" for k in (7, 3)}
    got = served(art.path, ["/api/map/config", "/api/map/points", "/api/map/events",
                            "/api/map/edges?traj=all", *point.values()], tmp_path)
    config = json.loads(got["/api/map/config"][1])
    raw = got["/api/map/points"][1]
    layout = {c["name"]: c for c in config["points"]}
    e = layout["episode"]
    unit = np.frombuffer(raw, np.uint32, e["length"], e["offset"])
    u7, u20, u3 = (int(unit[pos_of(store, art, k)]) for k in (7, 20, 3))
    assert u7 == u20 != u3
    facts = {k: json.loads(got[path][1]) for k, path in point.items()}
    assert facts[7]["patient"] == facts[3]["patient"] == A  # one patient, two admissions
    assert (facts[7]["episode"], facts[3]["episode"]) == (u7, u3)
    events = np.frombuffer(got["/api/map/events"][1], "<f4").reshape(
        len(config["alignments"]), config["n_episodes"])
    first = events[config["alignments"].index("first")]
    assert first[u7] == pytest.approx(DAY[7], abs=1e-5)
    assert first[u3] == pytest.approx(DAY[1], abs=1e-5)
    headers, body = got["/api/map/edges?traj=all"]
    m = json.loads(headers["X-Cxrviz-Edges"])["n"]
    frm = np.frombuffer(body, np.uint32, m, 0)
    to = np.frombuffer(body, np.uint32, m, 4 * m)
    # the admission's two images are joined, the first admission's image is not joined to them
    j = list(to).index(pos_of(store, art, 20))
    assert frm[j] == pos_of(store, art, 7)
    assert pos_of(store, art, 3) not in set(frm[to == pos_of(store, art, 7)])


def test_the_patients_csv_has_a_row_per_admission(art, store):
    from cxrviz.export import patients_csv, provenance

    keep = np.ones(len(store.covid), bool)
    data, _, name, _ = patients_csv(store, keep, provenance(store, keep))
    frame = pd.read_csv(io.BytesIO(data), dtype={S.PATIENTID: str, S.EPISODE: str})
    a = frame[frame[S.PATIENTID] == A]
    assert sorted(a[S.EPISODE].dropna()) == [EPISODE_1, EPISODE_2] and len(a) == 3
    second = a[a[S.EPISODE] == EPISODE_2].iloc[0]
    assert second[S.P_FIRST_DAY] == pytest.approx(DAY[7])


def test_a_neighbour_names_its_admission(art, store):
    from cxrviz.compute.placement import Placer

    row = store.covid.iloc[pos_of(store, art, 20)]
    logits = row[[S.logit_column(p) for p in art.pathologies]].to_numpy(np.float32)
    (nearest,) = Placer(art).neighbours(logits, None, k=1)
    assert (nearest["image_id"], nearest["patientid"], nearest["episode"]) == (
        image_of(art, 20), A, EPISODE_2)
    d16 = store.covid.iloc[pos_of(store, art, 16)]
    logits = d16[[S.logit_column(p) for p in art.pathologies]].to_numpy(np.float32)
    (nearest,) = Placer(art).neighbours(logits, None, k=1)
    assert nearest["episode"] is None  # a film in no admission


def test_the_table_in_a_browser_has_a_row_per_admission(dash_br, art, store):
    from tests.app_helpers import ServerProcess
    from tests.browser_helpers import open_tab, viewport, wait_until

    with ServerProcess(art.path, "--no-model") as server:
        driver = dash_br.driver
        viewport(driver, 1280, 800)
        driver.get(server.url + "/")
        wait_until(lambda: driver.find_elements("css selector", f"#{ids.TABS} .tab"),
                   timeout=60, what="the page")

        open_tab(SimpleNamespace(driver=driver), "Patients")
        wait_until(lambda: driver.execute_script(
            f"return document.querySelector('#{ids.TABLE} .ag-root-wrapper') && "
            f"dash_ag_grid.getApi('{ids.TABLE}').getDisplayedRowCount();") == 8,
            timeout=30, what="8 rows: one per admission, and per patient the films in none")
        pinned = wait_until(lambda: [r.text.split("\n") for r in driver.find_elements(
            "css selector", f"#{ids.TABLE} .ag-pinned-left-cols-container .ag-row")],
            what="pinned cells")
        assert [A, EPISODE_2] in [[c.strip() for c in r] for r in pinned], pinned
        header = driver.find_element("css selector",
                                     f"#{ids.TABLE} .ag-header-cell[col-id='{S.EPISODE}']")
        assert header.text.strip() == "admission"
        row = next(r for r in driver.find_elements(
            "css selector", f"#{ids.TABLE} .ag-pinned-left-cols-container .ag-row")
            if EPISODE_2 in r.text)
        row.find_elements("css selector", ".ag-cell")[0].click()
        # the admission's first image (dicom 7), not the patient's first (dicom 1)
        wait_until(lambda: f"image={image_of(art, 7)}" in driver.current_url,
                   what="the admission's first image selected")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
                  and "WebGL" not in e["message"] and "GPU stall" not in e["message"]]
        assert errors == []
