"""Browser-test helpers: the page in Debian's chromium (dash[testing]), the WebGL map read
through its test hook (window.cxrvizMap), clicks, waits."""
import time

from selenium.webdriver.common.actions.action_builder import ActionBuilder

from cxrviz import ids


def hook(driver, call: str, *args):
    """`window.cxrvizMap.<call>` in the page (a Promise is awaited); None before the map loads."""
    return driver.execute_script(
        f"const m = window.cxrvizMap; return m ? (async () => await m.{call})() : null;", *args)


def map_ready(driver) -> bool:
    return bool(driver.execute_script("return !!(window.cxrvizMap && window.cxrvizMap.ready);"))


def click_at(driver, at):
    """A real mouse click at a viewport position (CSS px)."""
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(round(at["x"])), int(round(at["y"])))
    actions.pointer_action.click()
    actions.perform()


def click_lonely_point(duo, attempts=4):
    """A real mouse click on the WebGL map's point that stands most apart from the others;
    retried while the map is still settling. Returns the clicked image's id."""
    for _ in range(attempts):
        target = hook(duo.driver, "lonelyPoint()")
        at = target and hook(duo.driver, "screenPosition(arguments[0])", target)
        if not at:
            time.sleep(0.5)
            continue
        click_at(duo.driver, at)
        try:
            wait_until(lambda: f"image={target}" in duo.driver.current_url, timeout=5)
            return target
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
    wait_until(lambda: map_ready(duo.driver), timeout=60, what="the map's first view")
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


def map_area(driver) -> dict | None:
    """The map's drawing area: the canvas box inside #map (CSS px)."""
    return driver.execute_script(
        f"const c = document.querySelector('#{ids.MAP} canvas');"
        "if (!c) return null; const r = c.getBoundingClientRect();"
        "return {w: r.width, h: r.height};")


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
