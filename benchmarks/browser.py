"""The page in headless Chromium: first load against a bare plotly.js page, day-range frames and
playback (server requests per frame), and opening the patient table.

    python benchmarks/browser.py --artifact /tmp/cxrviz-30k [--runs 7] [--engine plotly|webgl|both]

--engine webgl measures the WebGL map (?map=webgl) against a bare deck.gl page instead
(benchmarks/browser_webgl.py).

Both pages are loaded alternately in one browser, so they share its state and the machine's
noise; the ratio of medians is reported. The bare page draws the same points (scattergl, typed
arrays, coloured by state) with plotly.js from the same package the app serves.
"""
from __future__ import annotations

import argparse
import base64
import functools
import http.server
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.app import free_port, headless_chromium, start  # noqa: E402
from cxrviz import ids  # noqa: E402
from cxrviz import schema as S  # noqa: E402
from cxrviz.io.artifact import read_artifact  # noqa: E402

BARE = """<!doctype html><html><body style="margin:0">
<div id="map" style="width:1100px;height:760px"></div>
<script src="plotly.min.js"></script>
<script>fetch("fig.json").then(r => r.json()).then(f => Plotly.newPlot("map", f.data, f.layout));
</script></body></html>"""


def bare_page(artifact, folder: Path) -> None:
    import plotly

    images = artifact.images[artifact.images[S.SOURCE] == S.SOURCE_COVID]
    spec = lambda a, t: {"dtype": t, "bdata": base64.b64encode(  # noqa: E731
        np.ascontiguousarray(a, dtype=t).tobytes()).decode()}
    codes = images[S.STATE].map({"good": 0, "bad": 1, "unknown": 2}).to_numpy()
    fig = {"data": [{"type": "scattergl", "mode": "markers", "name": "images",
                     "x": spec(images[S.X], "f4"), "y": spec(images[S.Y], "f4"),
                     "marker": {"color": spec(codes, "u1"), "cmin": 0, "cmax": 2, "size": 7,
                                "colorscale": [[0, "#0072B2"], [0.5, "#D55E00"],
                                               [1, "#B8B8B8"]]}}],
           "layout": {"margin": {"l": 10, "r": 10, "t": 10, "b": 10}}}
    (folder / "fig.json").write_text(json.dumps(fig))
    (folder / "index.html").write_text(BARE)
    (folder / "plotly.min.js").write_bytes(
        (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes())


def serve(folder: Path) -> str:
    port = free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}/index.html"


def drawn_at(driver, url, selector, n, timeout=90) -> float:
    """Seconds from navigation start until the 'images' trace holds all n points."""
    check = ("const g = document.querySelector('%s');"
             "const t = g && g._fullData && g._fullData.find(d => d.name === 'images');"
             "return t && t.x.length === %d ? performance.now() : null;") % (selector, n)
    driver.get("about:blank")
    driver.get(url)
    end = time.time() + timeout
    while time.time() < end:
        done = driver.execute_script(check)
        if done:
            return done / 1000
        time.sleep(0.02)
    raise RuntimeError(f"{url} never drew {n} points")


def requests_so_far(driver) -> tuple:
    entries = driver.execute_script(
        "return performance.getEntriesByType('resource').filter(e => "
        "e.name.includes('_dash-update-component')).map(e => e.transferSize);")
    return len(entries), sum(entries)


def day_range_frames(driver, base, steps=20) -> dict:
    """Move the day range's upper end one day at a time; time each step until the count
    changes, and count the server requests it caused."""
    from selenium.webdriver.common.keys import Keys

    driver.get(base + "/")
    end = time.time() + 90
    while time.time() < end and not driver.find_elements(
            "css selector", f"#{ids.DAY_RANGE} [role=slider]"):
        time.sleep(0.1)
    time.sleep(2)
    handle = driver.find_elements("css selector", f"#{ids.DAY_RANGE} [role=slider]")[1]
    handle.click()
    before = requests_so_far(driver)
    times = []
    for _ in range(steps):
        text = driver.find_element("css selector", f"#{ids.COUNT}").text
        t0 = time.perf_counter()
        handle.send_keys(Keys.ARROW_LEFT)
        while driver.find_element("css selector", f"#{ids.COUNT}").text == text:
            time.sleep(0.005)
        times.append((time.perf_counter() - t0) * 1e3)
    after = requests_so_far(driver)
    return {"ms": times, "requests": after[0] - before[0], "bytes": after[1] - before[1]}


def playback(driver, seconds=8.0) -> dict:
    """Play at the fastest speed; count the frames the map drew (plotly_afterplot) and the
    server requests meanwhile."""
    driver.find_element("css selector", "label input[value='fast']").click()
    driver.execute_script(
        "window.__frames = 0; document.querySelector('#%s .js-plotly-plot')"
        ".on('plotly_afterplot', () => window.__frames++);" % ids.MAP)
    before = requests_so_far(driver)
    button = driver.find_element("css selector", f"#{ids.PLAY}")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    time.sleep(seconds)
    frames = driver.execute_script("return window.__frames;")
    button.click()
    after = requests_so_far(driver)
    return {"frames": frames, "seconds": seconds, "requests": after[0] - before[0]}


def open_table(driver, n_patients) -> dict:
    """Click the Patients tab; time until every patient is a row of the grid, and the longest
    main-thread block meanwhile (long tasks)."""
    driver.execute_script(
        "window.__long = []; new PerformanceObserver(l => l.getEntries().forEach("
        "e => window.__long.push(e.duration))).observe({entryTypes: ['longtask']});")
    before = requests_so_far(driver)
    tab = next(t for t in driver.find_elements("css selector", f"#{ids.TABS} .tab")
               if t.get_attribute("textContent").strip() == "Patients")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", tab)
    t0 = time.perf_counter()
    tab.click()
    count = ("try { return dash_ag_grid.getApi('%s').getDisplayedRowCount(); } "
             "catch (e) { return 0; }") % ids.TABLE
    while driver.execute_script(count) != n_patients:
        if time.perf_counter() - t0 > 120:
            raise RuntimeError("the table never showed every patient")
        time.sleep(0.02)
    seconds = time.perf_counter() - t0
    after = requests_so_far(driver)
    longest = max(driver.execute_script("return window.__long;") or [0])
    return {"seconds": seconds, "longest_block_ms": longest, "bytes": after[1] - before[1]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifact", required=True)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--engine", choices=["plotly", "webgl", "both"], default="plotly")
    args = ap.parse_args()
    art = read_artifact(args.artifact)
    n = int((art.images[S.SOURCE] == S.SOURCE_COVID).sum())
    port = free_port()
    proc = start([sys.executable, "app.py", "--artifact", args.artifact, "--port", str(port),
                  "--no-model"], port)
    base = f"http://127.0.0.1:{port}"
    driver = headless_chromium()
    try:
        if args.engine in ("webgl", "both"):
            from benchmarks import browser_webgl

            with tempfile.TemporaryDirectory() as tmp:
                browser_webgl.bare_folder(base, Path(tmp))
                browser_webgl.run(driver, base, serve(Path(tmp)), n, args.runs)
            if args.engine == "webgl":
                return
        with tempfile.TemporaryDirectory() as tmp:
            bare_page(art, Path(tmp))
            bare_url = serve(Path(tmp))
            for _ in range(3):  # warm both: HTTP cache and V8's code cache (after 2 loads)
                drawn_at(driver, base + "/", f"#{ids.MAP} .js-plotly-plot", n)
                drawn_at(driver, bare_url, "#map", n)
            app_t, bare_t = [], []
            for _ in range(args.runs):
                bare_t.append(drawn_at(driver, bare_url, "#map", n))
                app_t.append(drawn_at(driver, base + "/", f"#{ids.MAP} .js-plotly-plot", n))
        a, b = statistics.median(app_t), statistics.median(bare_t)
        print(f"== {args.artifact}: {n} images, {len(art.patients)} patients ==")
        print(f"  first page load : app {a:.2f} s, bare plotly.js page {b:.2f} s (medians of "
              f"{args.runs}, alternating); ratio {a / b:.2f}x (goal <= 1.5x)")
        print(f"                    app runs {', '.join(f'{t:.2f}' for t in app_t)}; bare runs "
              f"{', '.join(f'{t:.2f}' for t in bare_t)}")
        frames = day_range_frames(driver, base)
        print(f"  day-range step  : {len(frames['ms'])} steps, browser time p50 "
              f"{statistics.median(frames['ms']):.0f} ms, max {max(frames['ms']):.0f} ms; server "
              f"requests {frames['requests']} ({frames['bytes']} bytes)")
        play = playback(driver)
        print(f"  playback        : {play['frames']} frames drawn in {play['seconds']:.0f} s "
              f"({play['frames'] / play['seconds']:.1f} per second; one day per frame, none "
              f"skipped); server requests {play['requests']}")
        table = open_table(driver, len(art.patients))
        print(f"  patient table   : {len(art.patients)} rows shown {table['seconds']:.2f} s after "
              f"the click; longest main-thread block {table['longest_block_ms']:.0f} ms; "
              f"{table['bytes'] / 1024:.0f} KB from the server")
    finally:
        driver.quit()
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
