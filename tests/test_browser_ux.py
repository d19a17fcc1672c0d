"""What a new user meets, in a real browser: the map at the centre at common screen sizes, no
toolbar button that sends data off the machine, clear selection (button and Esc), ranges that
keep unknown values, a legend that does what it shows, saliency that follows the selection,
and uploads made while the model loads. Expected counts come from plain pandas."""
import pandas as pd
import pytest
from selenium.webdriver.common.keys import Keys

from cxrviz import figures, ids
from cxrviz import schema as S
from tests.browser_helpers import (browser_errors, click_lonely_point, count_text, hook,
                                   map_area, start, viewport, wait_for_detail, wait_until)

IMAGE_205 = "covid-205-covid-19-pneumonia-progression-and-regression-day11"
LOCAL_ACTIONS = {"Download plot as a PNG", "Zoom", "Pan", "Box Select", "Lasso Select",
                 "Zoom in", "Zoom out", "Autoscale", "Reset axes"}


@pytest.fixture(scope="module")
def images(covid_artifact):
    return pd.read_parquet(covid_artifact.out / S.IMAGES_FILE)


@pytest.mark.parametrize("width,height,min_w,min_h", [(1280, 800, 640, 400),
                                                      (1024, 768, 600, 300)])
def test_the_map_is_the_page_centre(dash_duo, covid_artifact, width, height, min_w, min_h):
    duo = start(dash_duo, covid_artifact.out, f"/?image={IMAGE_205}", size=(width, height))
    area = wait_until(lambda: map_area(duo.driver), what="map size")
    assert area["w"] >= min_w and area["h"] >= min_h, area
    # the tab bar under the map (placing an X-ray, export ...) is in view, not scrolled away
    tabs = duo.driver.execute_script(
        f"const r = document.querySelector('#{ids.TABS} .tab').getBoundingClientRect();"
        "return {top: r.top, bottom: r.bottom, inner: window.innerHeight};")
    assert tabs["top"] > 0 and tabs["bottom"] <= tabs["inner"] == height, tabs
    # the count stays in view while the filters are scrolled to
    duo.driver.execute_script("document.querySelector('.sidebar').scrollTop = 5000;")
    top = duo.driver.execute_script(
        f"return document.getElementById('{ids.COUNT}').getBoundingClientRect().top;")
    assert 0 <= top < 60
    assert browser_errors(duo) == []


def test_no_toolbar_button_leaves_the_machine(dash_duo, covid_artifact):
    duo = start(dash_duo, covid_artifact.out, f"/?image={IMAGE_205}")
    wait_until(lambda: duo.driver.find_elements("css selector",
                                                f"#{ids.DETAIL_IMAGE} .modebar-btn"),
               what="the image's toolbar")
    titles = duo.driver.execute_script(
        "return [...document.querySelectorAll('.modebar-btn')].map(b => "
        "b.getAttribute('data-title'));")
    assert titles and set(titles) <= LOCAL_ACTIONS, set(titles) - LOCAL_ACTIONS
    links = duo.driver.execute_script(
        "return [...document.querySelectorAll('.modebar a[href]')].map(a => a.href);")
    assert links == []


def alphas(duo, image_ids) -> dict:
    """The opacity each image is drawn with now (None: not drawn)."""
    got = duo.driver.execute_script(
        "return Promise.all(arguments[0].map(async i => await window.cxrvizMap.pointAlpha(i)));",
        list(image_ids))
    return dict(zip(image_ids, got))


def test_clear_selection_with_the_button_and_esc(dash_duo, covid_artifact, images):
    duo = start(dash_duo, covid_artifact.out, f"/?image={IMAGE_205}")
    wait_for_detail(duo, "205")
    everyone = list(images[S.IMAGE_ID])
    of_205 = set(images.loc[images[S.PATIENTID] == "205", S.IMAGE_ID])
    dimmed = wait_until(lambda: (lambda a: a if max(a[i] for i in everyone if i not in of_205)
                                 < min(a[i] for i in of_205) else None)(alphas(duo, everyone)),
                        what="everyone but patient 205 dimmed")
    assert None not in dimmed.values()  # all 559 drawn
    duo.find_element(f"#{ids.CLEAR}").click()
    wait_until(lambda: "image=" not in duo.driver.current_url, what="URL without a selection")
    wait_until(lambda: "Click a point on the map" in duo.find_element(f"#{ids.DETAIL}").text,
               what="an empty detail panel")
    opacity = wait_until(lambda: (lambda a: a if max(a) - min(a) < 1e-6 else None)(
        list(alphas(duo, everyone).values())), what="nobody dimmed")
    assert opacity[0] == pytest.approx(figures.POINT_OPACITY, abs=1 / 255)  # 8-bit alpha
    image_id = click_lonely_point(duo)
    assert f"image={image_id}" in duo.driver.current_url
    duo.find_element("body").send_keys(Keys.ESCAPE)
    wait_until(lambda: "image=" not in duo.driver.current_url, what="Esc clears")
    assert browser_errors(duo) == []


def test_the_age_range_keeps_unknown_ages(dash_duo, covid_artifact, images):
    duo = start(dash_duo, covid_artifact.out)
    handle = duo.driver.find_elements("css selector", f"#{ids.F_AGE} [role=slider]")[1]
    top = int(handle.get_attribute("aria-valuenow"))
    handle.click()
    handle.send_keys(Keys.ARROW_LEFT)  # 94 -> 93: it used to drop every unknown age
    ages = images[S.AGE]
    kept = images[ages.isna() | (ages <= top - 1)]
    unknown = int(ages.isna().sum())
    expected = (f"{len(kept)} of 559 images, {kept[S.PATIENTID].nunique()} patients "
                f"({unknown} with age unknown)")
    wait_until(lambda: count_text(duo) == expected, what=f"count {expected!r}, saw "
                                                         f"{count_text(duo)!r}")
    chips = duo.find_element(f"#{ids.CHIPS}").text
    assert f"Age: {store_range(images)[0]}–{top - 1}" in chips
    assert browser_errors(duo) == []


def store_range(images):
    import numpy as np

    return int(np.floor(images[S.AGE].min())), int(np.ceil(images[S.AGE].max()))


def test_the_legend_hides_what_it_names(dash_duo, covid_artifact, images):
    duo = start(dash_duo, covid_artifact.out)
    bad = duo.driver.find_element("xpath", "//button[contains(@class, 'legend-item')]"
                                           "[normalize-space()='bad']")
    bad.click()
    everyone = sorted(images[S.IMAGE_ID])
    shown = wait_until(lambda: (lambda v: v if v is not None and len(v) < 559 else None)(
        hook(duo.driver, "shownIds()")), what="bad points hidden")
    assert sorted(shown) == sorted(images.loc[images[S.STATE] != "bad", S.IMAGE_ID])  # only them
    bad.click()
    wait_until(lambda: sorted(hook(duo.driver, "shownIds()")) == everyone, what="shown again")
    assert browser_errors(duo) == []


def test_saliency_never_shows_another_image(dash_duo, covid_artifact, images):
    from cxrviz.appstate import current

    duo = start(dash_duo, covid_artifact.out, f"/?image={IMAGE_205}")
    assert current().service.wait(300) == "ready"
    duo.find_element(f"#{ids.SALIENCY_BUTTON}").click()
    wait_until(lambda: IMAGE_205 in duo.find_element(f"#{ids.SALIENCY_VIEW}").text,
               timeout=60, what="saliency of the selected image")
    other = images[images[S.PATIENTID] == "205"].sort_values(S.OFFSET)[S.IMAGE_ID].iloc[0]
    duo.driver.find_element("css selector",
                            f"button[id*='\"index\":\"{other}\"']").click()  # a thumbnail
    wait_until(lambda: f"image={other}" in duo.driver.current_url, what="new selection")
    wait_until(lambda: duo.find_element(f"#{ids.SALIENCY_VIEW}").text.strip() == "",
               what="the old saliency gone")
    assert browser_errors(duo) == []


def test_place_filters_follow_the_continent_and_chips_remove_filters(dash_duo, covid_artifact,
                                                                      images):
    duo = start(dash_duo, covid_artifact.out, "/?continent=Asia")
    duo.select_dcc_dropdown(f"#{ids.F_COUNTRY}", index=0)
    wait_until(lambda: "Country:" in duo.find_element(f"#{ids.CHIPS}").text, what="chip")
    offered = duo.driver.execute_script(
        "return [...document.querySelectorAll('#f-country .dash-dropdown-value-item, "
        "#f-country [class*=value]')].map(e => e.textContent.trim()).filter(t => t);")
    asian = set(images.loc[images[S.CONTINENT] == "Asia", S.COUNTRY])
    assert offered and all(any(c in o for c in asian) for o in offered), offered
    chip = duo.driver.find_element("xpath", "//button[contains(@class,'chip')]"
                                            "[starts-with(normalize-space(),'Country')]")
    chip.click()
    asia = images[images[S.CONTINENT] == "Asia"]
    wait_until(lambda: count_text(duo).startswith(f"{len(asia)} of 559 images"),
               what="the country filter removed")
    assert browser_errors(duo) == []


def test_an_upload_made_while_the_model_loads_is_placed_when_it_is_ready(dash_br, covid_artifact,
                                                                        dataset):
    from tests.app_helpers import ServerProcess

    with ServerProcess(covid_artifact.out) as server:
        viewport(dash_br.driver, 1600, 1000)
        dash_br.driver.get(server.url + "/")
        wait_until(lambda: dash_br.driver.find_elements("css selector", f"#{ids.TABS} .tab"),
                   timeout=60, what="page")
        tab = [t for t in dash_br.driver.find_elements("css selector", f"#{ids.TABS} .tab")
               if t.get_attribute("textContent").strip() == "Place an X-ray"][0]
        dash_br.driver.execute_script("arguments[0].scrollIntoView({block:'center'});"
                                      "arguments[0].click();", tab)
        wait_until(lambda: dash_br.driver.find_elements("css selector",
                                                        "#upload input[type=file]"),
                   what="the upload panel")
        state = server.status()["model"]["state"]
        image = sorted((dataset / "images").glob("*.jpg"))[3]
        dash_br.driver.find_element("css selector", "#upload input[type=file]").send_keys(
            str(image))
        message = lambda: dash_br.driver.find_element(  # noqa: E731
            "css selector", f"#{ids.UPLOAD_MESSAGE}").get_attribute("textContent")
        if state == "loading":  # the point of the test: usually so, the model takes ~15 s
            wait_until(lambda: "Kept 1 upload" in message(), timeout=30,
                       what=f"kept (saw {message()!r}, {server.status()['model']})")
        try:
            wait_until(lambda: "Placed image 1" in message(), timeout=300, what="placed")
        except AssertionError:
            raise AssertionError(f"not placed: {message()!r}, {server.status()['model']}") \
                from None
        status = lambda: dash_br.driver.find_element(  # noqa: E731
            "css selector", f"#{ids.MODEL_STATUS}").get_attribute("textContent")
        wait_until(lambda: "Model ready" in status(), timeout=10,
                   what=f"the status to say ready (saw {status()!r})")
        assert state == "loading", "the model was ready before the upload: nothing tested"
