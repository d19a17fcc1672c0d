"""App speed: click -> detail, filter change, first page load, memory; optional load test.

    python benchmarks/app.py --artifact /tmp/cxrviz-30k [--artifact artifacts/covid ...]
                             [--requests 60] [--load-clients 20 --load-seconds 60]

For each artifact: starts `python app.py` on a free loopback port, sends the same requests the
browser sends and reads the server's own time from the Server-Timing header, plus the response
sizes:
- a click on the map: GET /api/map/point (the WebGL map asks what it hit), then the callbacks
  select_image (MAP_CLICK -> selected) and show_detail (selected -> the detail panel);
- a filter change, the requests between a filter control and the map's redraw: the callback
  sync_url (the filter controls -> the page query, QUERY) and GET /api/map/mask with that query
  (the filters' bitmask the map applies on the GPU). The chips and the table's callbacks, which
  run beside these, are not counted.
It loads the page in headless Chromium (navigation start -> the WebGL map's first frame with the
points, window.cxrvizMap.firstPaint) and reads the server's RSS. With --load-clients, runs a
bounded load test against `gunicorn -w 2` on loopback.
"""
from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cxrviz import ids  # noqa: E402
from cxrviz.filters import FILTERS  # noqa: E402
from cxrviz.io.artifact import read_artifact  # noqa: E402
from cxrviz.pages.map.controls import VIEW_IDS  # noqa: E402
from cxrviz.pages.map.urlstate import DEFAULT_VIEW  # noqa: E402
from cxrviz.store import Store  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, port, env=None):
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/status", timeout=5).status_code == 200:
                return proc
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"server did not start: {cmd}")


def p95(values):
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else values[0]


class Requests:
    """The callback requests the page sends, built from the server's own dependency list (so
    they follow the callbacks' signatures)."""

    def __init__(self, base, artifact):
        self.base = base
        images = artifact.images
        self.ids = images[images["source"] == "covid"]["image_id"].tolist()
        self.continents = sorted(images["continent"].unique())
        self.reported = False  # the first failed request is printed, so errors can be read
        self.default_filters = Store.from_artifact(artifact).default_filters()
        self.deps = {d["output"]: d for d in requests.get(f"{base}/_dash-dependencies",
                                                          timeout=60).json()}

    def body(self, output_ids, values: dict, changed: str) -> dict:
        """A request for the callback whose outputs include `output_ids`; inputs by id."""
        def outs(key):
            return {o.split("@")[0] for o in key.strip(".").split("...")}
        dep = next(d for out, d in self.deps.items() if set(output_ids) <= outs(out))
        inputs = [[] if isinstance(i["id"], str) and i["id"].startswith("{") else
                  {**i, "value": values.get(i["id"])} for i in dep["inputs"]]
        outputs = [{"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1]}
                   for o in dep["output"].strip(".").split("...")]
        return {"output": dep["output"], "outputs": outputs if len(outputs) > 1 else outputs[0],
                "inputs": inputs, "changedPropIds": [changed],
                "state": [{**st, "value": values.get(st["id"])} for st in dep["state"]]}

    def page(self, session, search=""):
        """What Dash Pages' router sends for a page load: the page's layout."""
        body = self.body(["_pages_content.children"],
                         {"_pages_location": None}, "_pages_location.pathname")
        for i in body["inputs"]:
            i["value"] = "/" if i["property"] == "pathname" else search
        return self.post(session, body)

    def post(self, session, body):
        r = session.post(f"{self.base}/_dash-update-component", json=body, timeout=60)
        return self._measured(r, body["output"])

    def get(self, session, path):
        return self._measured(session.get(f"{self.base}{path}", timeout=60), path.split("?")[0])

    def _measured(self, r, what):
        """(status, server ms, bytes) of a response; the first failure is printed."""
        if r.status_code not in (200, 204) and not self.reported:
            self.reported = True
            print(f"  first failed request: {r.status_code} {r.text[:300]!r} for {what}")
        timing = float(r.headers.get("Server-Timing", "app;dur=nan").split("dur=")[1])
        return r.status_code, timing, len(r.content), r

    @staticmethod
    def total(*steps):
        """(worst status, summed server ms, summed bytes) of the requests of one user step."""
        return (max(st[0] for st in steps), sum(st[1] for st in steps),
                sum(st[2] for st in steps))

    def click(self, session, image_id):
        """What a click on the map costs: /api/map/point (the facts of the point hit), then
        select_image (MAP_CLICK -> selected) and show_detail (selected -> panel)."""
        point = self.get(session, f"/api/map/point?id={image_id}")
        select = self.body([f"{ids.SELECTED}.data"],
                           {ids.MAP_CLICK: {"image_id": image_id, "n": 1}},
                           f"{ids.MAP_CLICK}.data")
        detail = self.body([f"{ids.DETAIL}.children"], {ids.SELECTED: image_id},
                           f"{ids.SELECTED}.data")
        return self.total(point, self.post(session, select), self.post(session, detail))

    def filter(self, session, continents):
        """A continent change: sync_url (the controls -> the page query), then the map's
        /api/map/mask with that query (the filters' bitmask)."""
        values = {cid: self.default_filters[key] for f in FILTERS for key, cid in f.values_of()}
        values.update({VIEW_IDS[k]: v for k, v in DEFAULT_VIEW.items()})
        values[ids.F_CONTINENT] = continents
        query = self.post(session, self.body([f"{ids.QUERY}.data"], values,
                                             f"{ids.F_CONTINENT}.value"))
        if query[0] != 200:
            return self.total(query)
        text = query[3].json()["response"][ids.QUERY]["data"]
        return self.total(query, self.get(session, "/api/map/mask" + text))


def headless_chromium():
    """Debian's chromium through its chromedriver (no browser downloads)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    for a in ("--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage "
              "--window-size=1600,1000 --disable-background-networking "
              "--disable-component-update --no-first-run --disable-sync").split():
        opts.add_argument(a)
    opts.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def first_page_load(url, runs=3) -> list:
    """Navigation start -> the WebGL map's first rendered frame with the points (seconds)."""
    driver = headless_chromium()
    check = "return window.cxrvizMap && window.cxrvizMap.firstPaint;"
    times = []
    try:
        for _ in range(runs):
            driver.get("about:blank")
            driver.get(url)
            deadline = time.time() + 60
            while time.time() < deadline:
                done = driver.execute_script(check)
                if done:
                    times.append(done / 1000)
                    break
                time.sleep(0.02)
    finally:
        driver.quit()
    return times


def wait_for_model(base, timeout=300):
    """Poll /api/status until the background model load has finished."""
    end = time.time() + timeout
    while time.time() < end:
        model = requests.get(f"{base}/api/status", timeout=30).json()["model"]
        if model["state"] not in ("idle", "loading"):
            return model["message"]
        time.sleep(0.5)
    raise RuntimeError("model never became ready")


def map_only_rss(artifact_dir) -> float:
    port = free_port()
    proc = start([sys.executable, "app.py", "--artifact", str(artifact_dir), "--port", str(port),
                  "--no-model"], port)
    try:
        Requests(f"http://127.0.0.1:{port}", read_artifact(artifact_dir)).page(requests.Session())
        return psutil.Process(proc.pid).memory_info().rss / 2**20
    finally:
        proc.terminate()
        proc.wait()


def measure(artifact_dir, n_requests, rng, browser=True):
    art = read_artifact(artifact_dir)
    print(f"== {artifact_dir}: {int((art.images['source'] == 'covid').sum())} images ==")
    rss_map_only = map_only_rss(artifact_dir)
    port = free_port()
    proc = start([sys.executable, "app.py", "--artifact", str(artifact_dir), "--port", str(port)],
                 port)
    base = f"http://127.0.0.1:{port}"
    try:
        print(f"  (measuring after the background model load: {wait_for_model(base)})")
        reqs = Requests(base, art)
        s = requests.Session()
        page_bytes = reqs.page(s)[2]
        clicks = [reqs.click(s, rng.choice(reqs.ids)) for _ in range(n_requests)]
        filters = [reqs.filter(s, rng.sample(reqs.continents, k=rng.randint(1, 2)))
                   for _ in range(n_requests)]
        errors = sum(c[0] != 200 for c in clicks + filters)
        rss = psutil.Process(proc.pid).memory_info().rss / 2**20  # before a page is drawn
        loads = first_page_load(base) if browser else []
    finally:
        proc.terminate()
        proc.wait()
    click_ms = [c[1] for c in clicks]
    filter_ms = [f[1] for f in filters]
    print(f"  click -> detail : server p50 {statistics.median(click_ms):.1f} ms, "
          f"p95 {p95(click_ms):.1f} ms (target <= 50); response p95 "
          f"{p95([c[2] for c in clicks]) / 1024:.1f} KB (target <= 100 KB)")
    print(f"  filter change   : server p50 {statistics.median(filter_ms):.1f} ms, "
          f"p95 {p95(filter_ms):.1f} ms (target <= 150); response p95 "
          f"{p95([f[2] for f in filters]) / 1024:.2f} KB")
    if loads:
        print(f"  first page load : {', '.join(f'{t:.2f}' for t in loads)} s in headless "
              f"Chromium (target <= 2 s); layout {page_bytes / 2**20:.1f} MB")
    print(f"  app memory (RSS): {rss_map_only:.0f} MiB serving the map (--no-model), {rss:.0f} MiB "
          f"with the placement model loaded; errors: {errors}")


def load_test(artifact_dir, clients, seconds, rng):
    """gunicorn -w 2 on loopback; `clients` threads mixing clicks and filters for `seconds`."""
    art = read_artifact(artifact_dir)
    port = free_port()
    proc = start([sys.executable, "-m", "gunicorn", "app:server", "-w", "2", "--threads", "4",
                  "-b", f"127.0.0.1:{port}"], port, env={"CXRVIZ_ARTIFACT": str(artifact_dir)})
    reqs = Requests(f"http://127.0.0.1:{port}", art)
    for _ in range(8):  # each worker loads its own model: ask until both have answered ready
        wait_for_model(f"http://127.0.0.1:{port}")
    latencies, errors, lock = [], [0], threading.Lock()
    stop = time.time() + seconds

    def client(seed):
        local = random.Random(seed)
        s = requests.Session()
        while time.time() < stop:
            start_t = time.perf_counter()
            try:
                if local.random() < 0.6:
                    code = reqs.click(s, local.choice(reqs.ids))[0]
                else:
                    code = reqs.filter(s, local.sample(reqs.continents, k=1))[0]
            except requests.RequestException:
                code = -1
            with lock:
                latencies.append((time.perf_counter() - start_t) * 1e3)
                errors[0] += code != 200

    threads = [threading.Thread(target=client, args=(rng.random(),)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    proc.terminate()
    proc.wait()
    print(f"== load test {artifact_dir}: {clients} clients x {seconds} s, gunicorn -w 2 ==")
    print(f"  {len(latencies)} requests ({len(latencies) / seconds:.1f}/s), errors {errors[0]}, "
          f"latency p50 {statistics.median(latencies):.0f} ms, p95 {p95(latencies):.0f} ms")
    return errors[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifact", action="append", required=True)
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--no-browser", action="store_true",
                    help="server times and memory only (no page load in chromium)")
    ap.add_argument("--load-clients", type=int, default=0)
    ap.add_argument("--load-seconds", type=int, default=60)
    args = ap.parse_args()
    rng = random.Random(0)
    for a in args.artifact:
        measure(a, args.requests, rng, browser=not args.no_browser)
    if args.load_clients:
        for a in args.artifact:
            load_test(a, args.load_clients, args.load_seconds, rng)


if __name__ == "__main__":
    main()
