"""Uploads and what the page shows of data, in a real browser (Debian's chromium, dash[testing]):
files the browser refuses and files the server refuses say why; an image unlike the collection
is drawn as unlike it on the map, numbered (read through window.cxrvizMap.uploads()), its
neighbour list labelled; the page runs under its Content-Security-Policy without a console
error; a patient id '<b>x</b>' shows in the map's hover as typed (a server of its own over an
artifact with that id)."""
import os

import pytest
from selenium.webdriver.common.actions.action_builder import ActionBuilder

from cxrviz import ids
from cxrviz import schema as S
from cxrviz.appstate import current
from tests.browser_helpers import (browser_errors, hook, map_ready, open_tab, start, viewport,
                                   wait_until)
from tests.hostile import hostile_artifact
from tests.test_place import synthetic_non_xrays


@pytest.fixture
def upload_tab(dash_duo, covid_artifact):
    duo = start(dash_duo, covid_artifact.out, size=(1280, 800))
    assert current().service.wait(600) == "ready", current().service.message
    open_tab(duo, "Place an X-ray")
    duo.wait_for_contains_text(f"#{ids.MODEL_STATUS}", "Model ready", timeout=60)
    return duo


def message(duo) -> str:
    return duo.find_element(f"#{ids.UPLOAD_MESSAGE}").get_attribute("textContent")


def send(duo, path):
    duo.find_element(f"#{ids.UPLOAD} input[type=file]").send_keys(str(path))


def test_refused_files_say_why_under_the_pages_csp(upload_tab, tmp_path):
    duo = upload_tab
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    send(duo, notes)  # refused by the browser: never sent
    wait_until(lambda: message(duo) == "Not placed: notes.txt is not a PNG, JPEG or DICOM file.",
               what=f"the type refusal (saw {message(duo)!r})")
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(22 * 2**20))
    send(duo, big)
    wait_until(lambda: message(duo) == "Not placed: big.png is 22.0 MB; the limit is 20 MB.",
               what=f"the size refusal (saw {message(duo)!r})")
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"<html>not an x-ray</html>" * 20)
    send(duo, fake)  # passes the browser's checks: refused by the server
    wait_until(lambda: message(duo).startswith("Not placed: fake.png: not a readable X-ray"),
               timeout=60, what=f"the server's refusal (saw {message(duo)!r})")
    assert hook(duo.driver, "uploads()") == []  # nothing placed on the map
    csp = duo.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(location.href).then(r => done(r.headers.get('content-security-policy')));")
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert browser_errors(duo) == []  # a blocked script or style would be a console error


def test_an_upload_unlike_the_collection_is_a_hollow_star(upload_tab, tmp_path, dataset):
    duo = upload_tab
    drawing = tmp_path / "gradient.png"
    drawing.write_bytes(synthetic_non_xrays()["photo-like gradient"])
    send(duo, drawing)
    wait_until(lambda: "Placed image 1" in message(duo), timeout=120,
               what=f"placed (saw {message(duo)!r})")
    assert "though it is unlike anything the map was built from" in message(duo)
    card = duo.find_element("#upload-card-1").get_attribute("textContent")
    assert "nearest images, though unlike any of them" in card
    assert "e+" not in card  # distances in plain numbers
    send(duo, sorted((dataset / "images").glob("*.jpg"))[5])  # a collection image
    wait_until(lambda: "Placed image 2" in message(duo), timeout=120,
               what=f"placed (saw {message(duo)!r})")
    marks = wait_until(lambda: (lambda u: u if u and len(u) == 2 else None)(
        hook(duo.driver, "uploads()")), what="two upload markers")
    assert [u["n"] for u in marks] == [1, 2]  # numbered as the messages say
    assert [u["unlike"] for u in marks] == [True, False]  # the first drawn as unlike the map
    assert all(u["screen"] is not None for u in marks), marks  # both in view on the map
    order = hook(duo.driver, "layerOrder()")  # drawn above everything, their numbers on top
    assert order[-2:] == ["uploads", "upload-numbers"] and "points" in order, order
    card2 = duo.find_element("#upload-card-2").get_attribute("textContent")
    assert "though unlike" not in card2
    duo.driver.save_screenshot(str(tmp_path / "uploads.png"))
    assert browser_errors(duo) == []


def test_a_patient_id_with_markup_shows_as_typed_in_the_hover(dash_br, dataset,
                                                            tmp_path_factory, session_cache):
    import pandas as pd

    from tests.app_helpers import ServerProcess

    art = hostile_artifact(dataset, tmp_path_factory, session_cache)
    images = pd.read_parquet(art / S.IMAGES_FILE)
    image = images.loc[images[S.PATIENTID] == "<b>x</b>", S.IMAGE_ID].iloc[0]
    with ServerProcess(art, "--no-model") as server:
        driver = dash_br.driver
        viewport(driver, 1280, 800)
        driver.get(server.url + "/")
        wait_until(lambda: map_ready(driver), timeout=60, what="the map")

        def hover_label():
            at = hook(driver, "screenPosition(arguments[0])", image)
            if not at:
                return None
            actions = ActionBuilder(driver)  # the mouse itself, over the point
            actions.pointer_action.move_to_location(int(at["x"]) + 1, int(at["y"]))
            actions.pointer_action.move_to_location(int(round(at["x"])), int(round(at["y"])))
            actions.perform()
            return driver.execute_script(
                f"const h = document.querySelector('#{ids.MAP} .map-tooltip');"
                "return h && !h.hidden ? {text: h.textContent, bold: h.querySelectorAll("
                "'b, strong').length} : null;")

        label = wait_until(lambda: (lambda h: h if h and "x</b>" in h["text"] else None)(
            hover_label()), what="the hover label of patient <b>x</b>")
        assert "patient <b>x</b> · day 3" in label["text"] and label["bold"] == 0
        assert "not yet labelled in the dataset" in label["text"]
