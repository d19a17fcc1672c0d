"""The page in headless Chromium: the map's first paint, filter change and day-range frame
against a bare deck.gl page (benchmarks/browser_webgl.py), then day-range steps through the
slider and playback (server requests per frame), and opening the patient table.

    python benchmarks/browser.py --artifact /tmp/cxrviz-30k [--runs 7]

Both pages are loaded alternately in one browser, so they share its state and the machine's
noise; the ratio of medians is reported. Headless chromium here renders WebGL in software, so
absolute times say little; the ratios are the measurement.

The old map (Plotly, before the WebGL map replaced it) is measured by the same script at commit
3e26dab (`--engine plotly`), against a bare plotly.js page; README gives both.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.app import free_port, headless_chromium, start  # noqa: E402
from cxrviz import ids  # noqa: E402
from cxrviz import schema as S  # noqa: E402
from cxrviz.io.artifact import read_artifact  # noqa: E402


def serve(folder: Path) -> str:
    port = free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}/index.html"


def requests_so_far(driver) -> tuple:
    """Requests to the app's server so far (Dash callbacks and the map's routes), bytes."""
    entries = driver.execute_script(
        "return performance.getEntriesByType('resource').filter(e => "
        "e.name.includes('_dash-update-component') || e.name.includes('/api/map/'))"
        ".map(e => e.transferSize);")
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
    """Play at the fastest speed over the whole slider; count the day frames the map drew
    (cxrvizMap.frames: one per view it was handed) and the server requests meanwhile."""
    driver.find_element("css selector", "label input[value='fast']").click()
    before = requests_so_far(driver)
    start_frames = driver.execute_script("return window.cxrvizMap.frames;")
    button = driver.find_element("css selector", f"#{ids.PLAY}")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    time.sleep(seconds)
    frames = driver.execute_script("return window.cxrvizMap.frames;") - start_frames
    if "Pause" in button.text:
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
    ap.add_argument("--map-only", action="store_true",
                    help="only the map against the bare page (no slider, playback, table)")
    ap.add_argument("--redraws", type=int, default=None,
                    help="day-range frames per page (filter changes: a quarter as many, each "
                         "way); 0: first paint and bytes only; default 24, or 8 above 100k")
    args = ap.parse_args()
    art = read_artifact(args.artifact)
    n = int((art.images[S.SOURCE] == S.SOURCE_COVID).sum())
    port = free_port()
    proc = start([sys.executable, "app.py", "--artifact", args.artifact, "--port", str(port),
                  "--no-model"], port)
    base = f"http://127.0.0.1:{port}"
    driver = headless_chromium()
    try:
        from benchmarks import browser_webgl

        print(f"== {args.artifact}: {n} images, {len(art.patients)} patients ==")
        with tempfile.TemporaryDirectory() as tmp:
            browser_webgl.bare_folder(base, Path(tmp))
            browser_webgl.run(driver, base, serve(Path(tmp)), n, args.runs, args.redraws)
        if args.map_only:
            return
        frames = day_range_frames(driver, base)
        print(f"  day-range step  : {len(frames['ms'])} slider steps (keyboard), until the count "
              f"changes: p50 {statistics.median(frames['ms']):.0f} ms, max "
              f"{max(frames['ms']):.0f} ms; server requests {frames['requests']} "
              f"({frames['bytes']} bytes: the URL's time part, once per step)")
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
