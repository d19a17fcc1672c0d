"""The app in a real browser (Debian's chromium via chromedriver, dash[testing]'s dash_duo).

Run with `pytest --headless` (make test does). The artifact is the real collection, random weights.
"""
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
from PIL import Image

from cxrviz import ids
from cxrviz import schema as S
from cxrviz.appstate import current
from tests.browser_helpers import (browser_errors, click_lonely_point, hook, open_tab, start,
                                   wait_for_detail, wait_until)


@pytest.fixture
def started(dash_duo, covid_artifact):
    return start(dash_duo, covid_artifact.out)



def test_page_loads_without_console_errors(started, covid_artifact):
    duo = started
    assert duo.find_element(f"#{ids.BANNER}").text.startswith("⚠ Embedding from an untrained")
    images = pd.read_parquet(covid_artifact.out / S.IMAGES_FILE)
    assert len(images) == 559
    assert sorted(hook(duo.driver, "shownIds()")) == sorted(images[S.IMAGE_ID])  # all of them
    assert browser_errors(duo) == []


def test_click_shows_patient_and_outputs(started, covid_artifact):
    duo = started
    image_id = click_lonely_point(duo)
    row = current().store.row(image_id)
    wait_for_detail(duo, row["patientid"])
    n_outputs = wait_until(lambda: duo.driver.execute_script(
        f"const g = document.querySelector('#{ids.DETAIL_OUTPUTS} .js-plotly-plot');"
        "return g && g.data ? g.data[0].y.length : 0;"), what="outputs chart")
    assert n_outputs == 18
    assert parse_qs(urlsplit(duo.driver.current_url).query)["image"] == [image_id]
    assert browser_errors(duo) == []


def test_continent_filter_changes_count_and_url_restores_view(started):
    duo = started
    images = current().store.covid
    europe = int((images["continent"] == "Europe").sum())
    assert 0 < europe < 559
    duo.select_dcc_dropdown(f"#{ids.F_CONTINENT}", value="Europe")
    duo.wait_for_contains_text(f"#{ids.COUNT}", f"{europe} of 559 images", timeout=20)
    image_id = click_lonely_point(duo)
    wait_until(lambda: "image=" in duo.driver.current_url, what="URL update")
    url = duo.driver.current_url
    assert parse_qs(urlsplit(url).query)["continent"] == ["Europe"]
    duo.driver.delete_all_cookies()
    duo.driver.get("about:blank")
    duo.driver.get(url)  # a fresh page load from the copied URL
    duo.wait_for_contains_text(f"#{ids.COUNT}", f"{europe} of 559 images", timeout=30)
    assert "Europe" in duo.find_element(f"#{ids.F_CONTINENT}").text
    patient = current().store.row(image_id)["patientid"]
    wait_for_detail(duo, patient)
    assert browser_errors(duo) == []


@pytest.mark.parametrize("fmt,check", [
    ("png", lambda p: Image.open(p).size[0] == round(89 / 25.4 * 300)),
    ("svg", lambda p: p.read_bytes().lstrip().startswith(b"<svg")),
    ("pdf", lambda p: p.read_bytes()[:5] == b"%PDF-"),
    ("csv", lambda p: p.read_text().splitlines()[0].startswith("image_id,patientid")),
])
def test_export_downloads_a_valid_file(dash_duo, covid_artifact, fmt, check):
    duo = start(dash_duo, covid_artifact.out, "/?day_from=0&day_to=20&traj=ids&traj_ids=205")
    open_tab(duo, "Export")
    command = wait_until(lambda: duo.find_element(f"#{ids.EXPORT_COMMAND}").get_attribute(
        "textContent"),
                         what="the figure command")
    assert f"--artifact {covid_artifact.out}" in command
    assert "--day-from 0 --day-to 20" in command and "--patients 205" in command
    folder = Path(duo.download_path)
    before = set(folder.glob("*"))
    button = duo.driver.find_element(
        "css selector", f"button[id*='\"index\":\"{fmt}\"']")
    button.click()
    new = wait_until(lambda: [p for p in set(folder.glob(f"*.{fmt}")) - before
                              if p.stat().st_size > 0], timeout=90, what=f"{fmt} download")
    assert check(new[0])
    if fmt == "csv":  # and its provenance beside it
        side = wait_until(lambda: [p for p in folder.glob("*.provenance.json")
                                   if p.stat().st_size > 0], timeout=30, what="sidecar")
        prov = json.loads(side[0].read_text())
        assert prov["day_range"] == {"align": "offset", "from": 0, "to": 20}
        assert prov["weights"]["sha256"] == current().store.artifact.weights.sha256
    assert json.dumps(browser_errors(duo)) == "[]"


def test_upload_places_a_marker_and_shows_the_panel(started, dataset, tmp_path):
    duo = started
    assert current().service.wait(300) == "ready"
    open_tab(duo, "Place an X-ray")
    duo.wait_for_contains_text(f"#{ids.MODEL_STATUS}", "Model ready", timeout=30)
    image = sorted((dataset / "images").glob("*.jpg"))[5]
    duo.find_element(f"#{ids.UPLOAD} input[type=file]").send_keys(str(image))
    duo.wait_for_contains_text(f"#{ids.UPLOAD_MESSAGE}", "Placed image 1", timeout=60)
    (marker,) = wait_until(lambda: hook(duo.driver, "uploads()"), what="upload marker")
    assert marker["n"] == 1 and marker["screen"] is not None  # numbered, in view on the map
    card = duo.find_element("#upload-card-1").get_attribute("textContent")
    assert "nearest images" in card and "patient" in card
    bars = duo.driver.execute_script(
        "return document.querySelector('#upload-card-1 .js-plotly-plot').data[0].y.length;")
    assert bars == 18
    assert browser_errors(duo) == []
