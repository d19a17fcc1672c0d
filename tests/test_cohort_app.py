"""What the app offers and shows for a MIMIC-CXR + MIMIC-IV artifact and a hospital's export,
built by the real precompute (random weights) from the folders of tests/test_mimic_reader.py and
tests/test_cohort_reader.py (tests/cohort_artifacts.py): filters follow the artifact's columns
(no country, a CheXpert filter where labels exist), the CheXpert filter's masks are counted again
with plain pandas from the CSV the test wrote, its URL and figure-command forms round-trip, the
detail and hover fields are the artifact's own, and "About this map" counts every source row and
carries MIMIC's data-use note, in a real app server in headless chromium too.
"""
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs

import pandas as pd
import pytest
from plotly.utils import PlotlyJSONEncoder

from cxrviz import fields, ids
from cxrviz import schema as S
from cxrviz.data.mimic import DATA_USE_NOTE
from cxrviz.filters import FILTERS, read_pairs
from cxrviz.store import Store
from tests.browser_helpers import viewport, wait_until
from tests.cohort_artifacts import build_export, build_mimic
from tests.test_mimic_reader import A, dicom

ROOT = Path(__file__).resolve().parents[1]
# what each map offers, worked out from the folders: MIMIC has views, sex, age, MIMIC-IV's ICU /
# ventilation / death and CheXpert labels, but no place and no finding; the export the same
# without labels
MIMIC_FILTERS = ["view", "chexpert", "sex", "survival", "icu", "intubation", "state", "age",
                 "min_images", "patient"]
EXPORT_FILTERS = ["view", "sex", "survival", "icu", "intubation", "state", "age", "min_images",
                  "patient"]


@pytest.fixture(scope="module")
def mimic_art(tmp_path_factory, dataset):
    return build_mimic(tmp_path_factory.mktemp("mimic"), dataset)


@pytest.fixture(scope="module")
def export_art(tmp_path_factory, dataset):
    return build_export(tmp_path_factory.mktemp("export"), dataset)


def labelled_images(mimic_art) -> pd.DataFrame:
    """The second route: images.parquet joined with the CheXpert CSV the test wrote, by study
    (metadata.csv.gz: dicom_id -> study_id), with pandas."""
    images = pd.read_parquet(mimic_art["out"] / S.IMAGES_FILE)
    meta = pd.read_csv(mimic_art["cxr"] / "mimic-cxr-2.0.0-metadata.csv.gz", dtype=str)
    labels = pd.read_csv(mimic_art["cxr"] / "mimic-cxr-2.0.0-chexpert.csv.gz",
                         dtype={"study_id": str})
    images["dicom_id"] = images[S.FILENAME].str.removesuffix(".jpg")
    return images.merge(meta[["dicom_id", "study_id"]], on="dicom_id", how="left") \
        .merge(labels.drop(columns="subject_id"), on="study_id", how="left")


def test_filters_follow_the_columns(mimic_art, export_art):
    """(The COVID collection offers every filter but CheXpert's: tests/test_app.py.)"""
    mimic, export = Store.open(mimic_art["out"]), Store.open(export_art["out"])
    assert [f.key for f in mimic.offered] == MIMIC_FILTERS
    assert [f.key for f in export.offered] == EXPORT_FILTERS
    assert set(MIMIC_FILTERS) < {f.key for f in FILTERS}
    # the CheXpert labels offered are those some image's study mentions, with their outcomes
    chexpert = next(f for f in mimic.offered if f.key == "chexpert")
    assert chexpert.labels(mimic) == ["Cardiomegaly", "Edema", "No Finding", "Pleural Effusion",
                                      "Pneumonia", "Support Devices"]
    edema = [(t, n) for t, n in chexpert.choices(mimic) if t.startswith("Edema:")]
    assert edema == [("Edema:positive", 3), ("Edema:negative", 2), ("Edema:uncertain", 1),
                     ("Edema:not mentioned", 5)]  # 11 images; by hand from CHEXPERT
    # a hand-made request's choice that names nothing of this map matches no image
    assert mimic.mask({"chexpert": ["Edema:maybe"]}).sum() == 0
    assert mimic.mask({"chexpert": ["Nodule:positive", "Edema:positive"]}).sum() == 0
    assert (mimic.mask({"chexpert": "Edema:positive"})
            == mimic.mask({"chexpert": ["Edema:positive"]})).all()


@pytest.mark.parametrize("value, pandas_rule", [
    (["Edema:positive"], lambda t: t["Edema"] == 1),
    (["Edema:positive", "Edema:uncertain"], lambda t: t["Edema"].isin([1, -1])),  # U-Ones
    (["Edema:not mentioned"], lambda t: t["Edema"].isna()),
    (["Edema:negative", "Pleural Effusion:positive"],
     lambda t: (t["Edema"] == 0) & (t["Pleural Effusion"] == 1)),
    (["Pleural Effusion:positive", "Pleural Effusion:uncertain", "Support Devices:positive"],
     lambda t: t["Pleural Effusion"].isin([1, -1]) & (t["Support Devices"] == 1)),
])
def test_chexpert_mask_equals_a_pandas_count(mimic_art, value, pandas_rule):
    store = Store.open(mimic_art["out"])
    table = labelled_images(mimic_art)
    expected = set(table.loc[pandas_rule(table), S.IMAGE_ID])
    mask = store.mask({**store.default_filters(), "chexpert": value})
    assert set(store.covid.loc[mask, S.IMAGE_ID]) == expected
    assert 0 < len(expected) < len(table)


def test_chexpert_filter_in_the_url_and_the_figure_command(mimic_art, tmp_path):
    from cxrviz.pages.map import urlstate

    store = Store.open(mimic_art["out"])
    filters = {**store.default_filters(), "chexpert": ["Edema:positive", "Edema:uncertain"],
               "icu": ["Y"]}
    query = urlstate.encode(filters, urlstate.DEFAULT_VIEW, None, store)
    assert parse_qs(query[1:])["chexpert"] == ["Edema:positive", "Edema:uncertain"]
    parsed = {k: v if len(v) > 1 else v[0] for k, v in parse_qs(query[1:]).items()}
    back = urlstate.decode(parsed, store)
    assert back["filters"] == filters and back["ignored"] == []
    # a link to values this map lacks keeps the rest and names what it ignored
    junk = urlstate.decode({"chexpert": ["Edema:positive", "Fracture:positive"],
                            "country": "China"}, store)
    assert junk["filters"]["chexpert"] == ["Edema:positive"]
    assert sorted(junk["ignored"]) == ["chexpert=Fracture:positive", "country=China"]
    # the command line refuses them, and takes the filter as the URL writes it
    with pytest.raises(ValueError, match="no image has 'Fracture:positive'"):
        read_pairs({"chexpert": ["Fracture:positive"]}, store, strict=True)
    with pytest.raises(ValueError, match="no country values"):
        read_pairs({"country": ["unknown"]}, store, strict=True)
    out = tmp_path / "fig.svg"
    done = subprocess.run([sys.executable, "-m", "cxrviz.figure", "--artifact",
                           str(mimic_art["out"]), "--out", str(out), "--filter",
                           "chexpert=Edema:positive", "--filter", "chexpert=Edema:uncertain"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "chexpert=Edema:positive; chexpert=Edema:uncertain" in done.stdout
    table = labelled_images(mimic_art)
    shown = int(table["Edema"].isin([1, -1]).sum())
    assert f"{shown} of 11 images" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "cxrviz.figure", "--artifact",
                          str(mimic_art["out"]), "--out", str(out), "--filter",
                          "chexpert=Edema"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "LABEL:OUTCOME" in bad.stderr


def test_detail_and_hover_fields_are_the_artifacts_own(mimic_art, export_art):
    store = Store.open(mimic_art["out"])
    row = store.row(f"mimic-{dicom(3)}")
    groups = dict(fields.detail_fields(store, row))
    facts = {label: text for label, text, _ in groups[None]}
    assert facts["Patient"] == A and facts["Episode"] == "20000001" and facts["Day"] == "1.5"
    assert facts["Time"] == "2150-03-03 02:00" and facts["View"] == "AP"
    assert not {"Country", "Location", "Finding", "Finding group"} & set(facts)
    # study 50000002: Edema and Support Devices positive, Pleural Effusion uncertain
    assert [(k, v) for k, v, _ in groups[fields.CHEXPERT_TITLE]] == [
        ("Edema", "positive"), ("Support Devices", "positive"), ("Pleural Effusion", "uncertain"),
        ("Not mentioned", "Cardiomegaly, No Finding, Pneumonia")]
    assert [(k, v) for k, v, _ in groups[fields.EXTRA_TITLE]] == [("study_id", "50000002")]
    pos = store.position[f"mimic-{dicom(3)}"]
    every = fields.hover_texts(store)
    assert every[pos] == ("patient 10000032 · day 1.5<br>AP<br>state: bad<br>"
                          "CheXpert positive: Edema, Support Devices")
    assert list(fields.hover_texts(store, [pos, 0])) == [every[pos], every[0]]
    # the map's tooltip (/api/map/point's "hover"): the same lines, as text
    assert fields.hover_lines(store, [pos]) == [["patient 10000032 · day 1.5", "AP",
                                                 "state: bad",
                                                 "CheXpert positive: Edema, Support Devices"]]
    export = Store.open(export_art["out"])
    names = dict(zip(export.covid[S.FILENAME], export.covid[S.IMAGE_ID]))
    groups = dict(fields.detail_fields(export, export.row(names["a2.jpg"])))
    assert [(k, v) for k, v, _ in groups[fields.EXTRA_TITLE]] == [("ward", "ICU 2")]
    assert fields.CHEXPERT_TITLE not in groups
    assert "Country" not in {label for label, _, _ in groups[None]}
    labels = " ".join(fields.hover_texts(export))
    assert "China" not in labels and "unknown ·" not in labels


def as_json(component) -> str:
    return json.dumps(component, cls=PlotlyJSONEncoder)


def test_about_counts_each_source_and_says_mimic_is_credentialed(mimic_art, export_art):
    from cxrviz.pages import map as page

    mimic = as_json(page.about(Store.open(mimic_art["out"])))
    meta = pd.read_csv(mimic_art["cxr"] / "mimic-cxr-2.0.0-metadata.csv.gz", dtype=str)
    assert (f"{len(meta)} rows in mimic-cxr-2.0.0-metadata.csv.gz (one per DICOM): 11 on the "
            "map, 3 left out by design, 4 skipped") in mimic
    assert DATA_USE_NOTE in mimic and "About this map (credentialed data)" in mimic
    assert "1 lateral view: LATERAL" in mimic and "metadata.csv:" not in mimic
    export = as_json(page.about(Store.open(export_art["out"])))
    assert "14 rows in images.csv: 7 on the map, 3 left out by design, 4 skipped" in export
    assert "credentialed" not in export and DATA_USE_NOTE not in export


def test_mimic_map_in_the_browser(dash_br, mimic_art):
    """The MIMIC map served by app.py: the filter column offers CheXpert and no place, a link's
    CheXpert filter narrows the count (pandas-counted) and shows as a chip whose click removes
    it, the detail panel shows the study's labels, About carries the data-use note."""
    from tests.app_helpers import ServerProcess

    table = labelled_images(mimic_art)
    positive = table[table["Edema"] == 1]
    with ServerProcess(mimic_art["out"], "--no-model") as server:
        driver = dash_br.driver
        viewport(driver, 1280, 800)
        image = f"mimic-{dicom(3)}"
        driver.get(server.url + f"/?chexpert=Edema%3Apositive&image={image}")

        def text(selector):
            found = driver.find_elements("css selector", selector)
            return found[0].text if found else ""

        count = f"{len(positive)} of 11 images, {positive[S.PATIENTID].nunique()} patients"
        wait_until(lambda: count in text(f"#{ids.COUNT}"), timeout=60,
                   what=f"count {count}, saw {text(f'#{ids.COUNT}')!r}")
        shown = driver.execute_script(
            "return [...document.querySelectorAll('.sidebar .control')]"
            ".filter(e => e.getClientRects().length)"
            ".map(e => e.querySelector('.control-label').textContent);")
        assert "CheXpert labels" in shown and "View" in shown
        assert not {"Continent", "UN subregion", "Country", "Finding group"} & set(shown)
        assert "CheXpert labels: Edema positive" in driver.find_element(
            "css selector", f"#{ids.CHIPS}").get_attribute("textContent")
        wait_until(lambda: "Pleural Effusion" in text(f"#{ids.DETAIL}"), what="detail")
        detail = text(f"#{ids.DETAIL}")
        assert "CheXpert labels (report of this study)" in detail and "Country" not in detail
        about = driver.find_element("css selector", f"#{ids.ABOUT}")
        driver.execute_script("arguments[0].open = true; arguments[0].scrollIntoView();", about)
        wait_until(lambda: DATA_USE_NOTE in about.text, what="the data-use note")
        shots = Path(os.environ.get("CXRVIZ_SHOTS", "/tmp"))
        driver.save_screenshot(str(shots / "mimic-about.png"))
        driver.execute_script("document.querySelector('.sidebar').scrollTop = 0;")
        driver.save_screenshot(str(shots / "mimic-filters.png"))
        driver.find_element("css selector", f"#{ids.CHIPS} .chip").click()
        wait_until(lambda: "11 of 11 images" in text(f"#{ids.COUNT}"), what="filter removed")
        wait_until(lambda: "chexpert" not in driver.current_url, what="URL without it")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
                  and "WebGL" not in e["message"] and "favicon" not in e["message"]]
        assert errors == []
