"""The WebGL map (opt-in: ?map=webgl) in real headless chromium: the images it shows and the
trajectory steps it draws equal what Python computes (store.mask, store.day_mask and
figures.visible_edges over the same query) for alignment x day range x trajectory scope x a
filter, read through window.cxrvizMap; a click selects; load, filter, play and click leave the
console without errors. Screenshots at 1280x800 and 1024x768 go to $CXRVIZ_SHOTS if set."""
import os
import time
from urllib.parse import parse_qs

import pytest
from selenium.webdriver.common.actions.action_builder import ActionBuilder

from cxrviz import ids
from tests.browser_helpers import (browser_errors, count_text, start, viewport,
                                   wait_for_detail, wait_until)

CASES = [  # (query, what it varies)
    "", "align=first_bad&traj=all", "day_from=0&day_to=14&traj=all",
    "align=first&day_from=-3&day_to=20&traj=ids&traj_ids=205,178&sex=F",
    "align=last&day_to=0&traj=all&survival=N", "traj=selected&image=%s&state=bad",
    "mode=hide&age=30-60&traj=all",
]


@pytest.fixture(scope="module")
def store(covid_artifact):
    from cxrviz.app import create_app
    from cxrviz.appstate import current

    create_app(covid_artifact.out)
    return current().store


def expected(store, query: str):
    """Python's view of a page query: shown image ids and (from, to) id pairs drawn."""
    from cxrviz.figures.layers import visible_edges
    from cxrviz.pages.map import time as time_part
    from cxrviz.pages.map import urlstate

    q = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(query).items()}
    st, t = urlstate.decode(q, store), time_part.decode(q, store)
    shown = store.mask(st["filters"])
    days = store.day_mask(t["align"], t["lo"], t["hi"])
    if days is not None:
        shown &= days
    edges = visible_edges(store, shown, time_part.trajectory_patients(t, st["selected"], store))
    ids_ = store.image_ids
    return (sorted(ids_[shown]),
            sorted(zip(ids_[edges["from_pos"]], ids_[edges["to_pos"]])))


def hook(duo, call: str):
    return duo.driver.execute_script(f"return window.cxrvizMap && window.cxrvizMap.{call};")


def wait_drawn(duo, want_ids, want_edges, what):
    def same():
        got = hook(duo, "shownIds()")
        edges = hook(duo, "shownEdges()")
        return got is not None and sorted(got) == want_ids and \
            sorted(map(tuple, edges)) == want_edges
    try:
        wait_until(same, timeout=30, what=what)
    except AssertionError:
        got, edges = sorted(hook(duo, "shownIds()") or []), hook(duo, "shownEdges()") or []
        raise AssertionError(f"{what}: {len(got)} ids shown (Python {len(want_ids)}), "
                             f"{len(edges)} edges (Python {len(want_edges)})") from None


def open_map(duo, query: str):
    duo.driver.get(f"{duo.server_url}/?map=webgl&{query}")
    wait_until(lambda: hook(duo, "frames") and hook(duo, "frames") > 0, timeout=40,
               what="the WebGL map's first frame")


def shot(duo, name):
    folder = os.environ.get("CXRVIZ_SHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        duo.driver.save_screenshot(os.path.join(folder, f"{name}.png"))


def test_what_the_browser_draws_equals_what_python_computes(dash_duo, covid_artifact, store):
    duo = start(dash_duo, covid_artifact.out, size=(1280, 800))
    image_205 = store.image_ids[store.patient_positions["205"][2]]
    for query in CASES:
        query = query.replace("%s", image_205)
        open_map(duo, query)
        want_ids, want_edges = expected(store, query)
        wait_drawn(duo, want_ids, want_edges, f"query {query!r}")
        assert browser_errors(duo) == [], query
        if query.startswith("traj=selected"):
            assert want_edges  # patient 205's path is drawn, nobody else's
    # the element keeps the map's size
    box = duo.driver.execute_script(
        f"const r = document.getElementById('{ids.MAP_GL}').getBoundingClientRect();"
        "return [r.width, r.height];")
    assert box[0] >= 640 and box[1] >= 400, box


def test_filter_play_click_and_legend_in_the_browser(dash_duo, covid_artifact, store):
    duo = start(dash_duo, covid_artifact.out, size=(1280, 800))
    open_map(duo, "traj=all")
    shot(duo, "webgl-1280x800")
    assert count_text(duo).startswith("559 of 559 images")
    # a filter through the page's own control: the mask comes from the server
    duo.select_dcc_dropdown(f"#{ids.F_SEX}", value="F")
    want = expected(store, "sex=F&traj=all")
    wait_drawn(duo, *want, "sex=F from the dropdown")
    wait_until(lambda: count_text(duo).startswith(f"{len(want[0])} of 559"), what="count")
    assert browser_errors(duo) == []
    # play: frames drawn on the GPU; what is shown follows the day range
    duo.find_element(f"#{ids.PLAY}").click()
    time.sleep(3)
    duo.find_element(f"#{ids.PLAY}").click()  # pause
    view = hook(duo, "view()")
    q = "sex=F&traj=all" + (f"&day_from={view['lo']}" if view["lo"] is not None else "") + \
        (f"&day_to={view['hi']}" if view["hi"] is not None else "")
    wait_drawn(duo, *expected(store, q), f"after play, {view}")
    assert " · days" in count_text(duo)
    assert browser_errors(duo) == []
    # a click on a point selects its image: the detail panel shows it
    open_map(duo, "")
    target = hook(duo, "lonelyPoint()")
    pos = duo.driver.execute_script(
        "return window.cxrvizMap.screenPosition(arguments[0]);", target)
    actions = ActionBuilder(duo.driver)
    actions.pointer_action.move_to_location(int(round(pos["x"])), int(round(pos["y"])))
    actions.pointer_action.click()
    actions.perform()
    wait_until(lambda: f"image={target}" in duo.driver.current_url, what="selection in the URL")
    patient = store.covid.iloc[store.position[target]]["patientid"]
    wait_for_detail(duo, patient)
    assert "map=webgl" in duo.driver.current_url
    assert browser_errors(duo) == []
    shot(duo, "webgl-1280x800-selected")
    viewport(duo.driver, 1024, 768)
    time.sleep(1)
    shot(duo, "webgl-1024x768")
