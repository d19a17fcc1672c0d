"""The map (WebGL, frontend/) in real headless chromium: the images it shows, the trajectory
steps it draws and the steps that carry an arrowhead equal what Python computes (store.mask,
store.day_mask and figures.visible_edges over the same query; the arrowheads by plain pandas on
store.trajectories) for alignment x day range x trajectory scope x a filter, read through
window.cxrvizMap; a click selects; a lasso marks exactly the points inside its polygon and hands
the polygon to the MAP_SELECTION store; density contours; load, filter, play and click leave
the console without errors. Screenshots at 1280x800 and 1024x768 go to $CXRVIZ_SHOTS if set."""
import json
import math
import os
import time
from urllib.parse import parse_qs

import numpy as np
import pytest
from selenium.webdriver.common.actions.action_builder import ActionBuilder

from cxrviz import ids
from cxrviz import schema as S
from tests.browser_helpers import (browser_errors, count_text, viewport, wait_for_detail,
                                   wait_until)

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


def decoded(store, query: str):
    """(view, time part, shown mask, timed) of a page query, as the page decodes it."""
    from cxrviz.pages.map import time as time_part
    from cxrviz.pages.map import urlstate

    q = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(query).items()}
    st, t = urlstate.decode(q, store), time_part.decode(q, store)
    shown = store.mask(st["filters"])
    days = store.day_mask(t["align"], t["lo"], t["hi"])
    if days is not None:
        shown &= days
    return st, t, shown, days is not None


def expected(store, query: str):
    """Python's view of a page query: shown image ids and (from, to) id pairs drawn."""
    from cxrviz.figures.layers import visible_edges
    from cxrviz.pages.map import time as time_part

    st, t, shown, _ = decoded(store, query)
    edges = visible_edges(store, shown, time_part.trajectory_patients(t, st["selected"], store))
    ids_ = store.image_ids
    return (sorted(ids_[shown]),
            sorted(zip(ids_[edges["from_pos"]], ids_[edges["to_pos"]])))


def selected_path(store, image_id, shown) -> list:
    """The selected image's patient's images in time order (the dated ones where more than one
    is dated), those shown: plain pandas on the images."""
    c = store.covid
    rows = c[c[S.PATIENTID] == c[S.PATIENTID].iat[store.position[image_id]]]
    rows = rows[rows[S.OFFSET].notna()] if rows[S.OFFSET].notna().sum() > 1 else rows
    rows = rows.sort_values([S.OFFSET, S.FILENAME, S.IMAGE_ID])
    return [i for i in rows[S.IMAGE_ID] if shown[store.position[i]]]


def expected_heads(store, query: str) -> tuple:
    """(sorted (from, to) id pairs that carry an arrowhead, the selected path's ids), by plain
    pandas: in a day range the latest drawn step of each episode (store.trajectories is in time
    order within each), otherwise every drawn step; the same rule along the selected path."""
    from cxrviz.pages.map import time as time_part

    st, t, shown, timed = decoded(store, query)
    traj, ids_ = store.trajectories, store.image_ids
    a, b = traj["from_pos"].to_numpy(), traj["to_pos"].to_numpy()
    patients = time_part.trajectory_patients(t, st["selected"], store)
    drawn = traj[shown[a] & shown[b] & (traj[S.PATIENTID].isin(patients) if patients is not None
                                        else True)]
    if timed:
        drawn = drawn.groupby(S.EPISODE, sort=False).tail(1)
    pairs = set(zip(ids_[drawn["from_pos"]], ids_[drawn["to_pos"]]))
    path = selected_path(store, st["selected"], shown) if st["selected"] else []
    steps = list(zip(path, path[1:]))
    pairs |= set(steps[-1:] if timed else steps)
    return sorted(pairs), (path if len(path) > 1 else [])


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


def start(duo, artifact, size=(1280, 800)):
    """The app for the session's artifact in this process's one Dash app, its map drawn."""
    from cxrviz.app import create_app

    app = create_app(artifact)
    viewport(duo.driver, *size)
    duo.start_server(app)
    wait_until(lambda: hook(duo, "ready"), timeout=40, what="the map's first view")
    duo.wait_for_contains_text(f"#{ids.COUNT}", "of 559 images", timeout=30)
    return duo


def open_map(duo, query: str):
    duo.driver.get(f"{duo.server_url}/?{query}")
    wait_until(lambda: hook(duo, "ready"), timeout=40, what="the map's first view")


# A dcc.Store's data as the page holds it (dash-renderer's redux store, window.store).
STORE_DATA = """
const st = window.store && window.store.getState(), path = st && st.paths.strs[arguments[0]];
if (!path) return "no such store";
let node = st.layout;
for (const k of path) node = node[k];
return node.props.data === undefined ? null : node.props.data;
"""


def store_data(duo, store_id):
    return duo.driver.execute_script(STORE_DATA, store_id)


def shot(duo, name):
    folder = os.environ.get("CXRVIZ_SHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        duo.driver.save_screenshot(os.path.join(folder, f"{name}.png"))


def test_what_the_browser_draws_equals_what_python_computes(dash_duo, covid_artifact, store):
    duo = start(dash_duo, covid_artifact.out)
    image_205 = store.image_ids[store.patient_positions["205"][2]]
    for query in CASES:
        query = query.replace("%s", image_205)
        open_map(duo, query)
        # drawn in the page's shell (pages/map/shell.py), then moved into Dash's page: the
        # shell's state, decoded from the URL, is the page's
        timings = hook(duo, "timings")
        assert timings["inShell"] and timings.get("adopted"), (query, timings)
        want_ids, want_edges = expected(store, query)
        wait_drawn(duo, want_ids, want_edges, f"query {query!r}")
        heads, path = expected_heads(store, query)
        got = sorted(map(tuple, hook(duo, "arrowheads()")))
        assert got == heads, (query, len(got), len(heads))
        assert hook(duo, "selectedPath()") == path, query
        assert browser_errors(duo) == [], query
        if query.startswith("traj=selected"):
            assert want_edges and path  # patient 205's path is drawn, nobody else's
        if query.startswith("day_from"):  # timed: one arrowhead per episode, not per step
            assert 0 < len(heads) < len(want_edges)
    # the element keeps the map's size
    box = duo.driver.execute_script(
        f"const r = document.getElementById('{ids.MAP}').getBoundingClientRect();"
        "return [r.width, r.height];")
    assert box[0] >= 640 and box[1] >= 400, box


def test_filter_play_click_and_legend_in_the_browser(dash_duo, covid_artifact, store):
    duo = start(dash_duo, covid_artifact.out)
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
    assert store_data(duo, ids.MAP_CLICK)["image_id"] == target
    assert browser_errors(duo) == []
    shot(duo, "webgl-1280x800-selected")
    viewport(duo.driver, 1024, 768)
    time.sleep(1)
    shot(duo, "webgl-1024x768")


def test_legend_box_select_esc_and_day_range_in_the_browser(dash_duo, covid_artifact, store):
    from selenium.webdriver.common.keys import Keys

    duo = start(dash_duo, covid_artifact.out)
    open_map(duo, "traj=all")
    # the legend's "bad" entry hides exactly the bad-state images, and the count says so
    bad = duo.driver.find_element("xpath", "//button[contains(@class, 'legend-item')]"
                                           "[contains(., 'bad')]")
    bad.click()
    ids_, edges = expected(store, "traj=all")
    state = dict(zip(store.image_ids, store.covid["state"]))
    keep = [i for i in ids_ if state[i] != "bad"]
    wait_drawn(duo, keep, sorted(e for e in edges if state[e[0]] != "bad"
                                 and state[e[1]] != "bad"), "bad hidden in the legend")
    hidden = len(ids_) - len(keep)
    wait_until(lambda: f"· {hidden} hidden in the legend" in count_text(duo), what="count")
    bad.click()
    wait_drawn(duo, ids_, edges, "bad shown again")
    # a box over the map's middle: the server counts what it holds (numpy), shown below the map
    canvas = duo.driver.find_element("css selector", f"#{ids.MAP} canvas")
    r = duo.driver.execute_script("return arguments[0].getBoundingClientRect().toJSON();", canvas)
    duo.driver.find_element("css selector", ".map-tool[data-tool='box']").click()
    x0, y0 = int(r["left"] + r["width"] * 0.3), int(r["top"] + r["height"] * 0.3)
    x1, y1 = int(r["left"] + r["width"] * 0.7), int(r["top"] + r["height"] * 0.7)
    actions = ActionBuilder(duo.driver)
    actions.pointer_action.move_to_location(x0, y0).pointer_down()
    for k in range(1, 6):
        actions.pointer_action.move_to_location(x0 + (x1 - x0) * k // 5, y0 + (y1 - y0) * k // 5)
    actions.pointer_action.pointer_up()
    actions.perform()
    corners = duo.driver.execute_script(
        "return Promise.all(arguments[0].map(p => window.cxrvizMap.unproject(p)));",
        [[x0, y0], [x1, y1]])
    (ax, ay), (bx, by) = corners
    xs, ys = store.covid["x"].to_numpy(), store.covid["y"].to_numpy()
    inside = ((xs > min(ax, bx)) & (xs < max(ax, bx)) & (ys > min(ay, by)) & (ys < max(ay, by)))
    n = int(inside.sum())
    assert n > 0
    wait_until(lambda: f"Selection: {n} image" in duo.find_element(
        f"#{ids.SELECTION_SUMMARY}").text, what=f"the summary of {n} images")
    duo.driver.find_element("css selector", ".map-tool[data-tool='pan']").click()
    # a selection, then Esc clears it: the detail panel empties, the URL forgets it
    image = store.image_ids[store.patient_positions["205"][0]]
    open_map(duo, f"image={image}")
    assert hook(duo, "view()")["selected"] == image
    duo.driver.find_element("css selector", "body").send_keys(Keys.ESCAPE)
    wait_until(lambda: "image=" not in duo.driver.current_url, what="selection cleared")
    wait_until(lambda: hook(duo, "view()")["selected"] == "", what="map undimmed")
    # day range steps from the slider: nothing is asked of the server, neither by the map nor
    # by the page (the URL's time part is written in the browser, by time.url_spec)
    map_requests = ("return performance.getEntriesByType('resource').filter(e => "
                    "(e.name.includes('/api/map/') && !e.name.includes('/api/map/ids')) || "
                    "e.name.includes('_dash-update-component')).length;")
    api = duo.driver.execute_script(map_requests)  # /api/map/ids: the test hook's own
    upper = duo.driver.find_elements("css selector", f"#{ids.DAY_RANGE} [role=slider]")[1]
    upper.click()
    for _ in range(25):
        upper.send_keys(Keys.ARROW_LEFT)
    wait_drawn(duo, *expected(store, "day_to=6"), "days up to 6 from the slider")
    assert duo.driver.execute_script(map_requests) == api
    assert "day_to=6" in duo.driver.current_url
    assert browser_errors(duo) == []


def star(cx, cy, r, k=5):
    """A non-convex lasso: a k-pointed star around (cx, cy) in screen px."""
    return [(int(cx + (r if i % 2 == 0 else r * 0.45) * math.cos(math.pi * i / k - math.pi / 2)),
             int(cy + (r if i % 2 == 0 else r * 0.45) * math.sin(math.pi * i / k - math.pi / 2)))
            for i in range(2 * k)]


def test_lasso_marks_contours_and_hover_in_the_browser(dash_duo, covid_artifact, store):
    from selenium.webdriver.common.keys import Keys
    from skimage.measure import points_in_poly

    from cxrviz.figures.layers import POINT_OPACITY

    duo = start(dash_duo, covid_artifact.out)
    # hover: the patient's path among the images shown, drawn as the mouse would show it
    open_map(duo, "day_to=20")
    _, _, shown, _ = decoded(store, "day_to=20")
    path = selected_path(store, store.image_ids[store.patient_positions["205"][0]], shown)
    assert len(path) > 1
    assert duo.driver.execute_script("return window.cxrvizMap.hover(arguments[0]);",
                                     path[-1]) == path[-1]
    assert hook(duo, "hoverPath()") == path
    assert duo.find_element(".map-tooltip").text.startswith("patient 205")
    # density as contour lines, then as the image again, from the page's control
    open_map(duo, "density=contours")
    wait_until(lambda: hook(duo, "density()") == "contours", what="contours drawn")
    shot(duo, "webgl-contours")
    duo.find_element(f"#{ids.DENSITY_STYLE} input[value='heatmap']").click()
    wait_until(lambda: hook(duo, "density()") == "heatmap", what="the heatmap again")
    # a lasso with real pointer events on the map's overlay
    open_map(duo, "")
    duo.find_element(".map-tool[data-tool='lasso']").click()
    r = duo.driver.execute_script("return arguments[0].getBoundingClientRect().toJSON();",
                                  duo.find_element(f"#{ids.MAP} canvas"))
    vertices = star(r["left"] + r["width"] * 0.5, r["top"] + r["height"] * 0.5,
                    min(r["width"], r["height"]) * 0.35)
    actions = ActionBuilder(duo.driver)
    actions.pointer_action.move_to_location(*vertices[0]).pointer_down()
    for v in vertices[1:] + vertices[:1]:
        actions.pointer_action.move_to_location(*v)
    actions.pointer_action.pointer_up()
    actions.perform()
    selection = wait_until(lambda: store_data(duo, ids.MAP_SELECTION), what="MAP_SELECTION set")
    assert selection["query"] == ""  # no filter, no day range
    poly = np.asarray(selection["polygon"], float)
    # the polygon the store holds is the one drawn: each star vertex (map coordinates) is one of
    # its vertices, to a pixel
    corners = np.asarray(duo.driver.execute_script(
        "return arguments[0].map(p => window.cxrvizMap.unproject(p));",
        [list(v) for v in vertices]))
    pixel = abs(hook(duo, f"unproject([{vertices[0][0] + 1}, {vertices[0][1]}])")[0] - corners[0][0])
    assert all(np.hypot(*(poly - c).T).min() <= 1.5 * pixel for c in corners)
    # marked on the map: exactly the points inside it (skimage's point-in-polygon test)
    xy = store.covid[[S.X, S.Y]].to_numpy(float)
    inside = points_in_poly(xy, poly)
    want = sorted(store.image_ids[inside])
    assert 0 < len(want) < len(xy)
    wait_until(lambda: sorted(hook(duo, "marked()")) == want, what=f"{len(want)} points marked")
    wait_until(lambda: f"Selection: {len(want)} image" in duo.find_element(
        f"#{ids.SELECTION_SUMMARY}").text, what="the summary, from the store, in Python")
    shot(duo, "webgl-lasso")
    # dim others: inside at the point's opacity, outside at the config's fraction of it
    config = duo.driver.execute_script(
        "return fetch('/api/map/config').then(r => r.json());")
    outside = store.image_ids[~inside][0]
    alpha = duo.driver.execute_script(
        "return Promise.all(arguments[0].map(i => window.cxrvizMap.pointAlpha(i)));",
        [want[0], outside])
    assert abs(alpha[0] - POINT_OPACITY) < 1 / 255
    assert abs(alpha[1] - POINT_OPACITY * config["opacity"]["unselected"]) < 1 / 255
    assert config["opacity"]["unselected"] < 1
    # the store handing back what the map holds asks the server nothing
    selects = ("return performance.getEntriesByType('resource')"
               ".filter(e => e.name.includes('/api/map/select')).length;")
    before = duo.driver.execute_script(selects)
    duo.driver.execute_script("window.cxrvizMap.setSelection(JSON.parse(arguments[0]));",
                              json.dumps(selection))
    time.sleep(1)
    assert duo.driver.execute_script(selects) == before
    assert sorted(hook(duo, "marked()")) == want
    # Esc clears the store, and the marks with it
    duo.find_element(".map-tool[data-tool='pan']").click()
    duo.driver.find_element("css selector", "body").send_keys(Keys.ESCAPE)
    wait_until(lambda: store_data(duo, ids.MAP_SELECTION) is None and hook(duo, "marked()") == [],
               what="selection cleared")
    assert abs(duo.driver.execute_script(
        "return window.cxrvizMap.pointAlpha(arguments[0]);", outside) - POINT_OPACITY) < 1 / 255
    assert browser_errors(duo) == []


NO_WEBGL = """HTMLCanvasElement.prototype.getContext = function () { return null; };"""


def test_the_map_draws_before_dash_starts_and_moves_into_its_page(dash_duo, covid_artifact):
    """The map page's HTML holds a shell with the map's element (pages/map/shell.py): the map
    draws there first, Dash's scripts start after its first frame (assets/start/dash-start.js),
    and the map moves into Dash's element, which has the shell's box exactly. A browser that
    cannot draw (no WebGL) still gets the page, and the map says why it is empty."""
    duo = start(dash_duo, covid_artifact.out)
    for size in [(1280, 800), (1024, 768), (1600, 1000)]:
        viewport(duo.driver, *size)
        open_map(duo, "sex=F&traj=all")
        t, moved = hook(duo, "timings"), hook(duo, "adoption")
        assert t["inShell"] and t["firstPaint"] < t["adopted"], t  # Dash started after it
        assert all(abs(a - b) < 0.5 for a, b in zip(moved["shell"], moved["page"])), moved
        assert duo.driver.execute_script(
            "return [document.querySelectorAll('.map-shell').length,"
            f" !!document.querySelector('#{ids.MAP} canvas'),"
            f" document.querySelectorAll('#{ids.MAP} .map-tool').length];") == [0, True, 3]
        wait_until(lambda: "of 559 images" in count_text(duo), what="the count, from the map")
        assert browser_errors(duo) == [], size
    # a browser without WebGL: Dash's page comes at once all the same
    script = duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                        {"source": NO_WEBGL})
    try:
        duo.driver.get(f"{duo.server_url}/")
        wait_until(lambda: duo.driver.execute_script(
            f"return !!document.querySelector('.sidebar #{ids.COLOR_BY}')"), timeout=20,
            what="Dash's page without WebGL")
        # started because the map said it could not draw, not by the 5 s fallback
        assert duo.driver.execute_script("return window.cxrvizDashStarted") == "map failed"
        note = wait_until(lambda: duo.driver.execute_script(
            f"const w = document.querySelector('#{ids.MAP} .map-warning.no-webgl');"
            "return w && w.textContent;"), what="the map's note")
        assert "WebGL" in note
        assert duo.driver.execute_script("return document.querySelectorAll('.map-shell').length") == 0
    finally:
        duo.driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument",
                                   {"identifier": script["identifier"]})
