"""Browser-test helpers: the page in Debian's chromium (dash[testing]), clicks, waits."""
import time

from selenium.webdriver.common.actions.action_builder import ActionBuilder

from cxrviz import figures, ids

POINTS = figures.TRACE["points"]

# The screen position of the point that stands most apart from the others (safe to click).
FIND_POINT = """
const gd = document.querySelector('#%s .js-plotly-plot');
const tr = gd._fullData[%d], xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
const px = [], py = [];
for (let i = 0; i < tr.x.length; i++) { px.push(xa._offset + xa.l2p(tr.x[i]));
                                         py.push(ya._offset + ya.l2p(tr.y[i])); }
let best = -1, bestGap = -1;
for (let i = 0; i < px.length; i++) {
  if (!Number.isFinite(px[i]) || !Number.isFinite(py[i])) continue;  // hidden
  let gap = 1e9;
  for (let j = 0; j < px.length; j++) if (j !== i && Number.isFinite(px[j])) {
    gap = Math.min(gap, Math.hypot(px[i] - px[j], py[i] - py[j])); }
  if (gap > bestGap) { bestGap = gap; best = i; }
}
const r = gd.getBoundingClientRect();
return {x: r.left + px[best], y: r.top + py[best], id: tr.customdata[best], gap: bestGap};
""" % (ids.MAP, POINTS)


def click_lonely_point(duo, attempts=4):
    """A real mouse click on a WebGL point; retried while the plot is still settling."""
    for _ in range(attempts):
        target = duo.driver.execute_script(FIND_POINT)
        actions = ActionBuilder(duo.driver)
        actions.pointer_action.move_to_location(int(round(target["x"])), int(round(target["y"])))
        actions.pointer_action.click()
        actions.perform()
        try:
            wait_until(lambda: f"image={target['id']}" in duo.driver.current_url, timeout=5)
            return target["id"]
        except AssertionError:
            continue
    raise AssertionError("clicking the point never selected it")


def wait_until(fn, timeout=20, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def wait_for_detail(duo, patient):
    def text():
        return " ".join(duo.find_element(f"#{ids.DETAIL}").text.split()) + " "

    try:
        wait_until(lambda: f"Patient {patient} " in text(), what=f"patient {patient} detail")
    except AssertionError:
        raise AssertionError(f"patient {patient} not in detail panel: {text()[:300]}") from None




def start(duo, artifact, path="/", size=(1600, 1000)):
    """The app for the session's artifact, in this process's one Dash app, at `path`, in a
    window of `size` (CSS px)."""
    from cxrviz.app import create_app, start_model

    from cxrviz.export import start_renderer

    app = create_app(artifact)
    start_model()
    # dash_duo stops its server by killing every thread started after it: start the export
    # renderer's threads (kaleido's persistent browser) before it, so they outlive each test.
    start_renderer()
    viewport(duo.driver, *size)
    duo.start_server(app)
    if path != "/":
        duo.driver.get(duo.server_url + path)
    duo.wait_for_element(f"#{ids.MAP} .js-plotly-plot", timeout=30)
    duo.wait_for_contains_text(f"#{ids.COUNT}", "of 559 images", timeout=30)
    return duo


def viewport(driver, width, height):
    """The page's own size in CSS px (not the window's: headless chromium's window keeps a share
    of its height for bars it does not draw). Resizing the window, not emulating a viewport,
    keeps CSS's vh and the page's scrolling true to what a user's browser of that size shows."""
    driver.set_window_size(width, height)
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    assert inner == [width, height], f"the window's page area is {inner}, not {width}x{height}"


def plot_area(driver, graph_id: str) -> dict:
    return driver.execute_script(
        f"const g = document.querySelector('#{graph_id} .js-plotly-plot');"
        "return g && g._fullLayout ? {w: g._fullLayout._size.w, h: g._fullLayout._size.h} "
        ": null;")


def open_tab(duo, label):
    tab = wait_until(lambda: next(
        (t for t in duo.driver.find_elements("css selector", f"#{ids.TABS} .tab")
         if t.get_attribute("textContent").strip() == label), None), what=f"tab {label}")
    duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", tab)
    tab.click()


def callback_requests(duo) -> int:
    return duo.driver.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter(e => e.name.includes('_dash-update-component')).length")


def count_text(duo) -> str:
    return duo.find_element(f"#{ids.COUNT}").text


def browser_errors(duo) -> list:
    """Console errors, without chromium's notes about software WebGL."""
    return [e for e in duo.get_logs() if "WebGL" not in e["message"]
            and "GPU stall" not in e["message"]]
