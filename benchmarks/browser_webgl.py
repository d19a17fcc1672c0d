"""The map (WebGL) against a bare deck.gl page with the same renderer (the app's own
bundle, assets/map/cxrviz-map.js, whose `cxrvizMap.lib` hands out deck.gl's classes) and the
same binary columns (the app's /api/map/points), in one browser, alternating. Called by
benchmarks/browser.py --engine webgl.

Measured: first paint (navigation start to the first rendered frame with the points), bytes
before it, a filter change (one request: its size; mask to rendered frame) and a day-range frame
(range to rendered frame, no request), each against the bare page's own redraw."""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]

BARE_HTML = """<!doctype html><html><body style="margin:0">
<div id="map" style="position:relative"></div>
<script src="cxrviz-map.js"></script><script src="bare.js"></script></body></html>"""

BARE_JS = """(async function () {
  const L = window.cxrvizMap.lib;
  const cfg = await (await fetch("config.json")).json();
  const buf = await (await fetch("points.bin")).arrayBuffer();
  const codes = new Uint8Array(await (await fetch("state.bin")).arrayBuffer());
  const T = {f4: Float32Array, u4: Uint32Array, u1: Uint8Array};
  const col = (name) => { const c = cfg.points.find((c) => c.name === name);
                          return new T[c.dtype](buf, c.offset, c.length); };
  const x = col("x"), y = col("y"), n = cfg.n, pal = cfg.colors.columns.state.colors;
  const xy = new Float32Array(2 * n);
  let color = new Uint8Array(4 * n);
  let filter = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    xy[2 * i] = x[i]; xy[2 * i + 1] = y[i];
    const c = pal[codes[i]]; color.set([c[0], c[1], c[2], 217], 4 * i);
    filter[2 * i + 1] = 1;
  }
  let range = [-3e9, 3e9], data = null;
  const layer = () => new L.ScatterplotLayer({id: "points", data, radiusUnits: "pixels",
    getRadius: 3.5, extensions: [new L.DataFilterExtension({filterSize: 2})],
    filterRange: [range, [0.5, 1.5]]});
  const make = () => { data = {length: n, attributes: {getPosition: {value: xy, size: 2},
    getFillColor: {value: color, size: 4, normalized: true},
    getFilterValue: {value: filter, size: 2}}}; };
  make();
  // the app's map element's size (run() passes it as #WxH): the same pixels to fill
  const [w, h] = (location.hash.slice(1) || "1000x700").split("x").map(Number);
  const el = document.getElementById("map");
  el.style.width = `${w}px`; el.style.height = `${h}px`;
  const r = cfg.ranges, zoom = Math.log2(Math.min(w / (r.x[1] - r.x[0]), h / (r.y[1] - r.y[0])));
  window.bare = {rendered: 0, firstPaint: null};
  const deck = new L.Deck({parent: document.getElementById("map"),
    views: new L.OrthographicView({flipY: false}), controller: true,
    initialViewState: {target: [(r.x[0] + r.x[1]) / 2, (r.y[0] + r.y[1]) / 2, 0], zoom},
    onAfterRender: () => { window.bare.rendered++;
                           if (!window.bare.firstPaint) window.bare.firstPaint = performance.now(); },
    layers: [layer()]});
  window.bare.setRange = (lo, hi) => { range = [lo, hi]; deck.setProps({layers: [layer()]}); };
  window.bare.setMask = (seed) => {  // a new filter column, as a filter change brings
    filter = new Float32Array(2 * n);
    for (let i = 0; i < n; i++) filter[2 * i + 1] = ((i * 2654435761 + seed) >>> 0) % 3 ? 1 : 0;
    make(); deck.setProps({layers: [layer()]});
  };
  // the app's default mode ("dim"): every point stays drawn, those filtered out fainter (a new
  // colour column, with the app's two opacities, and a new filter column)
  const o = cfg.opacity, keepA = Math.round(255 * o.point), dimA = Math.round(255 * o.dim);
  window.bare.setDim = (seed) => {
    filter = new Float32Array(2 * n); const dimmed = new Uint8Array(color);
    for (let i = 0; i < n; i++) {
      filter[2 * i + 1] = 1;
      dimmed[4 * i + 3] = ((i * 2654435761 + seed) >>> 0) % 3 ? keepA : dimA;
    }
    color = dimmed; make(); deck.setProps({layers: [layer()]});
  };
})();"""

RENDER_AFTER = """const [obj, key, before, call] = arguments;
const o = window[obj]; const done = arguments[arguments.length - 1];
const t0 = performance.now(); (new Function(call))();
(function wait() { if (o[key] > before) done(performance.now() - t0); else setTimeout(wait, 2); })();"""


def bare_folder(base: str, folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cxrviz-map.js").write_bytes((ROOT / "assets" / "map" / "cxrviz-map.js").read_bytes())
    (folder / "config.json").write_text(json.dumps(requests.get(base + "/api/map/config").json()))
    (folder / "points.bin").write_bytes(requests.get(base + "/api/map/points").content)
    (folder / "state.bin").write_bytes(requests.get(base + "/api/map/colors/state").content)
    (folder / "bare.js").write_text(BARE_JS)
    (folder / "index.html").write_text(BARE_HTML)


def _wait(driver, script, timeout=600):
    """Poll `script`; a page whose main thread is busy for long (10^6 points drawn in software)
    answers late, so a script timeout is a wait, not an error."""
    from selenium.common.exceptions import TimeoutException

    driver.set_script_timeout(300)
    end = time.time() + timeout
    while time.time() < end:
        try:
            value = driver.execute_script(script)
        except TimeoutException:
            continue
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"timed out: {script}")


def app_first_paint(driver, url) -> tuple:
    """(seconds to the first frame with the points, bytes transferred until then)."""
    driver.get("about:blank")
    driver.get(url)
    t = _wait(driver, "return window.cxrvizMap && window.cxrvizMap.firstPaint;")
    size = driver.execute_script(
        "const t = arguments[0]; return performance.getEntries().filter(e => "
        "(e.entryType === 'resource' && e.responseEnd <= t) || e.entryType === 'navigation')"
        ".reduce((a, e) => a + (e.transferSize || 0), 0);", t)
    return t / 1000, size


MILESTONES = """const t = window.cxrvizMap.timings, end = (part) => Math.max(0, ...performance
  .getEntriesByType('resource').filter(e => e.name.includes(part)).map(e => e.responseEnd));
const nav = performance.getEntriesByType('navigation')[0];
return {'page HTML': nav.responseEnd, 'scripts run (DOMContentLoaded)': nav.domContentLoadedEventEnd,
        'layout answered': end('_dash-layout'), 'columns answered': end('/api/map/points'),
        'map element mounted': t.mount, 'columns read': t.columns, 'deck made': t.deck,
        'mask, colours, edges in': t.answers, 'attributes computed': t.attributes,
        'layers given to deck': t.drawn, 'first frame': t.firstPaint,
        "moved into Dash's page": t.adopted};"""


def milestones(driver) -> dict:
    """Where the app's first paint goes: ms from navigation start (the last load's)."""
    return driver.execute_script(MILESTONES)


def bare_first_paint(driver, url) -> float:
    driver.get("about:blank")
    driver.get(url)
    return _wait(driver, "return window.bare && window.bare.firstPaint;") / 1000


def redraw(driver, obj, call) -> float:
    before = driver.execute_script(f"return window.{obj}.rendered;")
    driver.set_script_timeout(900)
    return driver.execute_async_script(RENDER_AFTER, obj, "rendered", before, call)


def mask_bytes(driver) -> list:
    return driver.execute_script(
        "return performance.getEntriesByType('resource').filter(e => "
        "e.name.includes('/api/map/mask')).map(e => e.transferSize);")


def all_requests(driver) -> int:
    return driver.execute_script("return performance.getEntriesByType('resource').length;")


def run(driver, base: str, bare_url: str, n: int, runs: int, redraws: int | None = None) -> None:
    """`redraws`: day-range frames per page (filter changes: half as many, each way); 0 skips
    the redraws (10^6 points drawn in software take tens of seconds a frame); None: 24 below
    100k points, else 8."""
    app_url = base + "/"
    _, cold = app_first_paint(driver, app_url)  # cold: what a first visit transfers
    w, h = driver.execute_script("const el = document.querySelector('.map-gl'); "
                                 "return [el.clientWidth, el.clientHeight];")
    bare_url = f"{bare_url}#{w}x{h}"  # the bare page fills as many pixels
    print(f"  map element {w}x{h} CSS px in both pages")
    bare_first_paint(driver, bare_url)
    app_first_paint(driver, app_url)  # then warm HTTP and code caches
    bare_first_paint(driver, bare_url)
    app_t, bare_t, sizes = [], [], []
    for _ in range(runs):
        bare_t.append(bare_first_paint(driver, bare_url))
        t, size = app_first_paint(driver, app_url)
        app_t.append(t)
        sizes.append(size)
    a, b = statistics.median(app_t), statistics.median(bare_t)
    print(f"== WebGL map, {n} images ==")
    print(f"  first paint     : app {a:.2f} s, bare deck.gl page {b:.2f} s (medians of {runs}, "
          f"alternating); ratio {a / b:.2f}x (goal <= 1.5x)")
    print(f"                    app runs {', '.join(f'{t:.2f}' for t in app_t)}; bare runs "
          f"{', '.join(f'{t:.2f}' for t in bare_t)}")
    print("                    the app's last load, ms from navigation start: " + "; ".join(
        f"{k} {v:.0f}" for k, v in milestones(driver).items() if v)
        + (" (drawn in the page's shell, pages/map/shell.py)"
           if driver.execute_script("return window.cxrvizMap.timings.inShell") else ""))
    size = statistics.median(sizes)
    print(f"  bytes before it : first visit {cold / 1e6:.2f} MB ({cold / n:.1f} B per image; the "
          f"goal is <= 16 B per image + 2 MB = {(16 * n + 2e6) / 1e6:.2f} MB); a revisit "
          f"{size / 1e6:.2f} MB (the columns revalidated by ETag)")
    if redraws == 0:
        print("  redraws         : not measured (--redraws 0)")
        return
    # filter changes, alternating two queries, and day-range frames, on the loaded app page
    app_first_paint(driver, app_url)
    time.sleep(3)  # the page's other parts settle (Dash callbacks after load)
    first = len(mask_bytes(driver))
    big = n > 100_000  # fewer samples where a software-rendered frame takes seconds
    changes, frames = (2, 8) if big else (4, 24)
    if redraws:
        changes, frames = max(1, redraws // 4), redraws
    filt = [redraw(driver, "cxrvizMap", f"window.cxrvizMap.setView({{query: '?{q}'}})")
            for q in ["sex=F", "sex=M"] * changes]
    got = mask_bytes(driver)[first:]
    before = all_requests(driver)
    days = [redraw(driver, "cxrvizMap", f"window.cxrvizMap.setState({{range: [-31, {d}]}})")
            for d in range(0, frames)]
    day_requests = all_requests(driver) - before
    bare_first_paint(driver, bare_url)
    time.sleep(3)
    bare_filt = [redraw(driver, "bare", f"window.bare.setMask({k})") for k in range(2 * changes)]
    bare_dim = [redraw(driver, "bare", f"window.bare.setDim({k})") for k in range(2 * changes)]
    bare_days = [redraw(driver, "bare", f"window.bare.setRange(-31, {d})")
                 for d in range(0, frames)]
    fa, fb = statistics.median(filt), statistics.median(bare_filt)
    da, db = statistics.median(days), statistics.median(bare_days)
    print(f"  filter change   : {len(got)} mask requests for {len(filt)} changes, "
          f"{max(got) / 1024:.1f} KB at most (goal <= 130 KB); request + redraw p50 {fa:.1f} ms vs "
          f"the bare page's redraw {fb:.1f} ms ({fa / fb:.2f}x; goal <= 1.2x)")
    fd = statistics.median(bare_dim)
    print(f"                    the same picture as the app's default mode (dim: every point drawn, "
          f"the filtered-out fainter; the bare page above hides a third): bare {fd:.1f} ms, "
          f"app {fa / fd:.2f}x")
    print(f"  day-range frame : {day_requests} requests for {len(days)} frames; p50 {da:.1f} ms vs bare {db:.1f} ms ({da / db:.2f}x; "
          f"goal <= 1.2x); max {max(days):.0f} ms")
