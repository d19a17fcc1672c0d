"""Requests as an attacker writes them, and files as a spreadsheet or a browser reads them.

Callback requests are built from the app's own callback map and sent over HTTP (Flask's test
client), so they pass every check the server makes; expected values come from the controls'
declared bounds in the page, from the values the test wrote into a copy of metadata.csv, and
from parsing the files with the csv module and html.unescape.
"""
import base64
import csv
import io
import json
from html import unescape
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
import pytest
import requests

from cxrviz import ids
from cxrviz import schema as S
from tests.app_helpers import ServerProcess
from tests.hostile import HOSTILE_IDS, hostile_artifact

HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
           "Referrer-Policy": "no-referrer"}
IMAGE_205 = "covid-205-covid-19-pneumonia-progression-and-regression-day11"


@pytest.fixture(scope="module")
def app(covid_artifact):
    from tests.app_helpers import app_with_model

    return app_with_model(covid_artifact.out, 600)


@pytest.fixture(scope="module")
def client(app):
    client = app.server.test_client()
    assert client.get("/").status_code == 200  # Dash registers its callbacks on a first request
    return client


def data_url(data: bytes, mime="image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def small_png(dataset, i: int) -> bytes:
    """A real collection image, made small (quick to decode), a different one per i."""
    from PIL import Image

    path = sorted((dataset / "images").glob("*.jpg"))[10 + i]
    im = Image.open(path).convert("L")
    im.thumbnail((256, 256))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def callback_body(app, output: str, values: dict, changed: list) -> dict:
    """The request the page sends for the callback writing `output` ("id.prop") when
    `changed[0]` changes, with these input / state values ("id.prop" -> value; None for the
    rest)."""
    def names(specs):
        return [f"{s['id']}.{s['property']}" for s in specs]

    key, cb = next((k, cb) for k, cb in app.callback_map.items()
                   if output in [p.split("@")[0] for p in k.strip(".").split("...")]
                   and changed[0] in names(cb["inputs"]))
    outs = [dict(zip(("id", "property"), o.split(".", 1))) for o in key.strip(".").split("...")]

    def fill(specs):
        return [{**s, "value": values.get(f"{s['id']}.{s['property']}")} for s in specs]

    return {"output": key, "outputs": outs if key.startswith("..") else outs[0],
            "inputs": fill(cb["inputs"]), "state": fill(cb["state"]), "changedPropIds": changed}


def prop(out: dict, component: str, name: str):
    """A value of the response (a duplicate output's property carries a suffix)."""
    props = out[component]
    return next(v for k, v in props.items() if k.split("@")[0] == name)


def post(client, body):
    return client.post("/_dash-update-component", data=json.dumps(body),
                       content_type="application/json")


def response_of(r) -> dict:
    assert r.status_code == 200, (r.status_code, r.data[:300])
    return r.get_json()["response"]


def declared(component_id: str, prop: str):
    """What the page's own control declares (min / max), read from the layout."""
    from cxrviz.pages import map as page

    found = [c for c in page.layout()._traverse() if getattr(c, "id", None) == component_id]
    return getattr(found[0], prop)


def place_body(app, contents, session, k=8, uploads=None, pending=0, changed="upload.contents"):
    values = {f"{ids.UPLOAD}.contents": contents, f"{ids.UPLOAD}.filename": "x.png",
              f"{ids.UPLOADS}.data": uploads or [], f"{ids.UPLOADS_PENDING}.data": pending,
              f"{ids.UPLOAD_SESSION}.data": session, f"{ids.UPLOAD_K}.value": k,
              f"{ids.UPLOAD_SPACE}.value": "logits", f"{ids.MODEL_POLL}.disabled": True}
    return callback_body(app, f"{ids.UPLOADS}.data", values, [changed])


# ---- headers, hosts, status --------------------------------------------------------------------

def test_security_headers_on_every_response(client):
    for path in ["/", "/evaluation", "/assets/style.css", f"/display/{IMAGE_205}.jpg",
                 "/api/status", "/display/nope.jpg", "/_dash-layout"]:
        r = client.get(path)
        for key, value in HEADERS.items():
            assert r.headers.get(key) == value, (path, key, r.headers.get(key))
        csp = r.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, path
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split(
            "script-src")[1].split(";")[0], path


def test_a_foreign_host_gets_400(client):
    from cxrviz.app import allow_hosts

    for host in ["evil.example", "evil.example:8050", "127.0.0.1.evil.example", "x y", ""]:
        for path in ["/", "/api/status", f"/display/{IMAGE_205}.jpg"]:
            r = client.get(path, headers={"Host": host})
            assert r.status_code == 400 and b"--allow-host" in r.data, (host, path)
    for host in ["localhost", "localhost:8050", "127.0.0.1:9", "[::1]:8050", "LOCALHOST"]:
        assert client.get("/api/status", headers={"Host": host}).status_code == 200, host
    try:
        allow_hosts(["cxrviz.lab.example"])
        assert client.get("/", headers={"Host": "cxrviz.lab.example:80"}).status_code == 200
    finally:
        allow_hosts()
    assert client.get("/", headers={"Host": "cxrviz.lab.example"}).status_code == 400


def test_allow_host_option_and_environment(covid_artifact):
    env = {"CXRVIZ_ALLOW_HOSTS": "team.example, other.example"}
    with ServerProcess(covid_artifact.out, "--no-model", "--allow-host", "lab.example",
                       env=env) as server:
        def get(host):
            return requests.get(server.url + "/api/status", headers={"Host": host}, timeout=30)

        for host in ["lab.example", "team.example", "other.example:1234", "localhost"]:
            assert get(host).status_code == 200, host
        r = get("evil.example")
        assert r.status_code == 400 and "Traceback" not in r.text


def test_status_names_the_artifact_not_paths(client, covid_artifact):
    status = client.get("/api/status").get_json()
    manifest = json.loads((covid_artifact.out / S.MANIFEST_FILE).read_text())
    sha = manifest[S.M_FILES][S.IMAGES_FILE]
    assert status["artifact"] == f"{covid_artifact.out.name}@{sha[:12]}"
    texts = []

    def walk(v):
        if isinstance(v, dict):
            [walk(x) for x in v.values()]
        elif isinstance(v, list):
            [walk(x) for x in v]
        elif isinstance(v, str):
            texts.append(v)

    walk(status)
    assert texts and not any(str(covid_artifact.out.parent) in t or t.startswith("/")
                             for t in texts), texts
    assert "path" not in status["weights"] and status["model"]["state"] == "ready"


# ---- malformed requests -------------------------------------------------------------------------

def test_bad_component_suite_paths_are_404_without_traceback(client):
    page = client.get("/").data.decode()
    good = next(s.split('"')[0] for s in page.split('src="')[1:]
                if s.startswith("/_dash-component-suites/"))
    assert client.get(good).status_code == 200
    for path in ["/_dash-component-suites/nope/x.js", "/_dash-component-suites/dash/nope.js",
                 "/_dash-component-suites/dash/../../etc/passwd",
                 "/_dash-component-suites/dash/%2e%2e/%2e%2e/app.py",
                 "/_dash-component-suites/os/path.py"]:
        r = client.get(path)
        assert 400 <= r.status_code < 500, (path, r.status_code)
        text = r.data.decode(errors="replace")
        assert "Traceback" not in text and "registered" not in text and "File \"" not in text


@pytest.mark.parametrize("body", [
    "[" * 100_000 + "]" * 100_000,
    '{"output": "x", "outputs": {}, "inputs": [], "changedPropIds": [], "state": '
    + "[" * 5000 + "]" * 5000 + "}",
    '{"output": "map.figure", "outputs": {}, "changedPropIds": [], "inputs": '
    '[{"id": "density-opacity", "property": "value", "value": Infinity}]}',
    '{"output": "map.figure", "outputs": {}, "changedPropIds": [], "inputs": [1, 2]}',
    b"\xff\xfe not utf-8",
])
def test_malformed_bodies_are_4xx_without_traceback(client, body):
    r = client.post("/_dash-update-component", data=body, content_type="application/json")
    assert 400 <= r.status_code < 500, r.status_code
    assert "Traceback" not in r.data.decode(errors="replace")
    assert client.get("/api/status").status_code == 200  # still up


# ---- numeric callback inputs --------------------------------------------------------------------

def test_k_of_10_to_the_12_is_clamped_to_the_controls_maximum(app, client, dataset):
    from cxrviz.upload_queue import new_id

    top = declared(ids.UPLOAD_K, "max")
    r = post(client, place_body(app, data_url(small_png(dataset, 0)), new_id(), k=10**12))
    (u,) = response_of(r)[ids.UPLOADS]["data"]
    assert len(u["neighbours"]) == top == 50
    values = {f"{ids.UPLOAD_K}.value": 10**12, f"{ids.UPLOAD_SPACE}.value": "features",
              f"{ids.UPLOADS}.data": [u]}
    body = callback_body(app, f"{ids.UPLOADS}.data", values, [f"{ids.UPLOAD_K}.value"])
    (renewed,) = prop(response_of(post(client, body)), ids.UPLOADS, "data")
    assert len(renewed["neighbours"]) == top and renewed["space"] == "features"
    body["inputs"][0]["value"] = -(10**12)
    (one,) = prop(response_of(post(client, body)), ids.UPLOADS, "data")
    assert len(one["neighbours"]) == declared(ids.UPLOAD_K, "min") == 1


def test_other_numeric_inputs_are_clamped_or_refused(app, client, store_images):
    from cxrviz.appstate import current
    from cxrviz.pages.map.controls import VIEW_IDS, filter_inputs
    from cxrviz.pages.map.urlstate import DEFAULT_VIEW

    # the page's query (sync_url) from every filter and view control at its default ...
    defaults = current().store.default_filters()
    values = {f"{i.component_id}.value": defaults[k] for k, i in filter_inputs().items()}
    values.update({f"{VIEW_IDS[k]}.value": v for k, v in DEFAULT_VIEW.items()})
    # ... but a density opacity of 5: clamped to the slider's maximum
    opacity = f"{ids.DENSITY_OPACITY}.value"
    body = callback_body(app, f"{ids.QUERY}.data", {**values, opacity: 5}, [opacity])
    query = parse_qs(response_of(post(client, body))[ids.QUERY]["data"].lstrip("?"))
    assert float(query["opacity"][0]) == declared(ids.DENSITY_OPACITY, "max")
    # filters: an age range beyond any number, at least 10^12 images per patient; the query
    # the server writes, then the map's filter step (/api/map/mask) on it
    age, least = f"{ids.F_AGE}.value", f"{ids.F_MIN_IMAGES}.value"
    n = len(store_images)

    def mask_of(changed):
        body = callback_body(app, f"{ids.QUERY}.data", {**values, **changed}, [age])
        r = client.get("/api/map/mask" + response_of(post(client, body))[ids.QUERY]["data"])
        assert r.status_code == 200
        return np.unpackbits(np.frombuffer(r.get_data(), np.uint8), bitorder="little")[
            :n].astype(bool), len(r.get_data())

    keep, size = mask_of({age: [-1e308, 1e308], least: 10**12})
    assert keep.sum() == 0 and size == (n + 7) // 8  # nobody has 10^12 images
    keep, _ = mask_of({age: [-1e308, 1e308], least: 2})
    per_patient = store_images.groupby(S.PATIENTID)[S.IMAGE_ID].transform("size")
    assert (keep == (per_patient >= 2).to_numpy()).all()  # the whole age range, clamped
    # ... and the same values written straight into the route's query (a link, not the page)
    r = client.get("/api/map/mask?age=-1" + "0" * 300 + "-1" + "0" * 300 +
                   "&min_images=1000000000000")
    assert r.status_code == 200 and not np.frombuffer(r.get_data(), np.uint8).any()
    # a value no control can hold is refused: not a number, not one of the outputs
    body = callback_body(app, f"{ids.QUERY}.data", {**values, age: "old"}, [age])
    assert post(client, body).status_code == 400
    saliency = callback_body(app, f"{ids.SALIENCY_VIEW}.children",
                             {f"{ids.SALIENCY_BUTTON}.n_clicks": 1,
                              f"{ids.SELECTED}.data": IMAGE_205,
                              f"{ids.SALIENCY_OUTPUT}.value": 10**12},
                             [f"{ids.SALIENCY_BUTTON}.n_clicks"])
    r = post(client, saliency)
    assert r.status_code == 400 and b"options" in r.data


@pytest.fixture(scope="module")
def store_images(covid_artifact):
    return pd.read_parquet(covid_artifact.out / S.IMAGES_FILE).query(
        f"{S.SOURCE} == '{S.SOURCE_COVID}'").reset_index(drop=True)


# ---- pending uploads ----------------------------------------------------------------------------

def test_one_request_brings_one_upload(app, client, dataset):
    from cxrviz.upload_queue import new_id

    forty = [data_url(small_png(dataset, 0))] * 40
    r = post(client, place_body(app, forty, new_id()))
    out = response_of(r)
    assert out[ids.UPLOAD_MESSAGE]["children"] == "Not placed: one file at a time."
    assert ids.UPLOADS not in out  # nothing placed
    # the queue the page used to send back: ignored, nothing to place
    old = [{"contents": forty[0], "name": f"{i}.png"} for i in range(40)]
    r = post(client, place_body(app, None, new_id(), pending=old,
                                changed=f"{ids.MODEL_POLL}.disabled"))
    assert r.status_code == 204  # PreventUpdate: no work done


def test_waiting_uploads_are_bounded_per_page_and_placed_once(app, client, dataset):
    """While a page places an image, its next uploads wait on the server, at most 8; the
    poll's next request places them all, once."""
    from cxrviz.pages.map.uploads import PENDING
    from cxrviz.upload_queue import MAX_PENDING, new_id

    session = new_id()
    messages = []
    with PENDING.placing(session):  # as while another request of this page places one
        for i in range(MAX_PENDING + 2):
            out = response_of(post(client, place_body(app, data_url(small_png(dataset, i)),
                                                      session)))
            messages.append(out[ids.UPLOAD_MESSAGE]["children"])
            if i < MAX_PENDING:
                assert prop(out, ids.MODEL_POLL, "disabled") is False  # poll to come back
    assert messages[:MAX_PENDING] == [f"Kept {n} upload{'s' * (n > 1)}: placed after the one "
                                      "being placed now." for n in range(1, MAX_PENDING + 1)]
    assert all(m.startswith(f"Not placed: {MAX_PENDING} uploads already wait")
               for m in messages[MAX_PENDING:]), messages
    assert PENDING.count(session) == MAX_PENDING
    out = response_of(post(client, place_body(app, None, session, pending=MAX_PENDING,
                                              changed=f"{ids.MODEL_POLL}.disabled")))
    assert [u["n"] for u in out[ids.UPLOADS]["data"]] == list(range(1, MAX_PENDING + 1))
    assert out[ids.UPLOADS_PENDING]["data"] == 0 and PENDING.count(session) == 0
    again = post(client, place_body(app, None, session, changed=f"{ids.MODEL_POLL}.disabled"))
    assert again.status_code == 204  # placed once


def test_lost_waiting_uploads_are_named(app, client):
    """The page was told 2 wait, the server holds none (another process, or dropped)."""
    from cxrviz.upload_queue import new_id

    out = response_of(post(client, place_body(app, None, new_id(), pending=2,
                                              changed=f"{ids.MODEL_POLL}.disabled")))
    assert "2 uploads kept while the model was loading are no longer held" in \
        out[ids.UPLOAD_MESSAGE]["children"]


def test_the_queue_holds_sessions_in_memory_with_bounds():
    from cxrviz.upload_queue import Busy, NotKept, PendingUploads, new_id

    now = [0.0]
    q = PendingUploads(max_pending=2, max_sessions=3, max_bytes=10, idle_seconds=60,
                       clock=lambda: now[0])
    a, b = new_id(), new_id()
    assert q.add(a, b"1234", "a1") == 1 and q.add(a, b"12", "a2") == 2
    with pytest.raises(NotKept, match="2 uploads already wait"):
        q.add(a, b"1", "a3")
    with pytest.raises(NotKept, match="as many waiting uploads as it can"):
        q.add(b, b"12345", "b1")  # 6 + 5 bytes > 10 for the whole server
    with pytest.raises(NotKept, match="reload the page"):
        q.add("../etc", b"1", "c")
    with q.placing(a) as batch:
        assert [n for _, n in batch] == ["a1", "a2"]
        with pytest.raises(Busy), q.placing(a):
            pass
    assert q.count(a) == 0
    q.add(b, b"1", "b1")
    now[0] = 61.0  # b idle for longer than a minute: dropped
    q.add(new_id(), b"1", "c1")
    assert q.count(b) == 0
    for _ in range(4):  # beyond 3 sessions the least recently used goes
        q.add(new_id(), b"1", "d")
    assert len(q._sessions) == 3


# ---- what files and the map say ----------------------------------------------------------------

@pytest.fixture(scope="module")
def hostile(dataset, tmp_path_factory, session_cache):
    from cxrviz.store import Store

    out = hostile_artifact(dataset, tmp_path_factory, session_cache)
    return {"store": Store.open(out).warm(), "out": out}


def is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def read_csv_cells(data: bytes) -> list:
    """The second route: Python's csv module, as a spreadsheet splits cells."""
    return list(csv.DictReader(io.StringIO(data.decode())))


def test_csv_cells_that_start_a_formula_are_escaped(hostile):
    from cxrviz.export import export_csv, patients_csv, provenance

    store = hostile["store"]
    keep = np.ones(len(store.covid), bool)
    prov = provenance(store, keep)
    images_csv = read_csv_cells(export_csv(store, keep, prov)[0])
    patients = read_csv_cells(patients_csv(store, keep, prov)[0])
    for table in (images_csv, patients):
        ids_written = {r[S.PATIENTID] for r in table}
        for raw in HOSTILE_IDS[:4]:
            assert "'" + raw in ids_written and raw not in ids_written, (raw, ids_written)
        assert "<b>x</b>" in ids_written  # not a formula: as it is
        assert all(r["weights_pretrained"] == "False" and r["weights"] for r in table)
        text = [v for r in table for v in r.values() if not is_number(v)]
        assert text and not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in text)
    # numeric columns stay numbers: the -1 patient's day -5, negative map coordinates
    minus = next(r for r in images_csv if r[S.PATIENTID] == "'-1")
    assert float(minus[S.OFFSET]) == -5.0
    assert float(next(r for r in patients if r[S.PATIENTID] == "'-1")["first_day"]) == -5.0
    xs = [float(r[S.X]) for r in images_csv]
    assert xs == pytest.approx(store.covid[S.X].tolist(), rel=1e-6)


def test_tab_and_carriage_return_cells_are_escaped_numbers_are_not():
    from cxrviz.export import csv_bytes

    frame = pd.DataFrame({"text": ["\tx", "\rx", "a=b", "", None], "n": [-1.5, -2, 0, 1, None]})
    rows = list(csv.reader(io.StringIO(csv_bytes(frame).decode(), newline="")))
    assert [r[0] for r in rows[1:]] == ["'\tx", "'\rx", "a=b", "", ""]
    assert [r[1] for r in rows[1:]] == ["-1.5", "-2.0", "0.0", "1.0", ""]


def test_map_hover_shows_data_literally_and_in_words(hostile, covid_artifact):
    """What the map's hover shows comes from /api/map/point as JSON data (the map sets it as
    text, never as markup), with the screen's words; the hover labels' rule (fields.hover_texts)
    escapes every data value."""
    from cxrviz.fields import hover_texts
    from cxrviz.store import Store

    store = hostile["store"]
    with ServerProcess(hostile["out"], "--no-model") as server:
        image = store.covid[store.covid[S.PATIENTID] == "<b>x</b>"][S.IMAGE_ID].iloc[0]
        r = requests.get(f"{server.url}/api/map/point", params={"id": image}, timeout=30)
        assert r.headers["Content-Type"].startswith("application/json")
        facts = r.json()
        assert facts["patient"] == "<b>x</b>" and facts["day"] == 3.0  # as typed in the CSV
        assert facts["hover"][0] == "patient <b>x</b> · day 3"  # text: the map sets it as text
        assert "not yet labelled in the dataset" in facts["hover"][1]
    labels = dict(zip(store.covid[S.PATIENTID], hover_texts(store)))
    bold = labels["<b>x</b>"]
    assert "<b>x</b>" not in bold and unescape(bold).startswith("patient <b>x</b> · day 3<br>")
    assert "not yet labelled in the dataset" in bold and "todo" not in bold
    # the collection: every 'todo' finding reads as words, no data value is markup
    big = Store.open(covid_artifact.out)
    labels = hover_texts(big)
    todo = (big.covid[S.FINDING] == "todo").to_numpy()
    assert todo.any() and all("not yet labelled in the dataset" in t for t in labels[todo])
    assert not any("todo" in t for t in labels)
    for text in labels:
        assert set(text.replace("<br>", "\n")) & set("<>") == set(), text


def test_patients_csv_download_follows_the_filter_with_the_weights_flag(app, store_images):
    from cxrviz.appstate import current
    from cxrviz.pages import map as page
    from tests.app_helpers import run_callback

    filters = {**current().store.default_filters(), "continent": ["Europe"]}
    csv_file, sidecar = run_callback(page.table.table_csv, {f"{ids.TABLE_CSV}.n_clicks": 1},
                                     clicks=1, filters=filters)
    rows = read_csv_cells(base64.b64decode(csv_file["content"]))
    europe = store_images[store_images[S.CONTINENT] == "Europe"]
    expected = {("'" + p if p.startswith(("=", "+", "-", "@")) else p)
                for p in europe[S.PATIENTID].unique()}
    assert {r[S.PATIENTID] for r in rows} == expected and len(rows) == len(expected)
    assert all(r["weights_pretrained"] == "False" and r["weights"] for r in rows)
    assert json.loads(base64.b64decode(sidecar["content"]))["filters"] == {
        "continent": ["Europe"]}


def test_patient_ids_in_titles_and_legend_names_are_not_markup(hostile):
    """Plotly renders a subset of HTML in titles and trace names too: the one-patient chart's
    title and the print figure's patient legend show '<b>x</b>' as typed (escaped), never bold."""
    from cxrviz.figures.paper import paper_figure
    from cxrviz.figures.time import patient_series_figure

    store = hostile["store"]
    title = patient_series_figure(store, "<b>x</b>").layout.title.text
    assert "<b>" not in title and unescape(title) == "Patient <b>x</b> over time"
    fig, _ = paper_figure(store, "figure3", patients=["<b>x</b>", "+1"])
    names = {t.name for t in fig.data if t.name and t.name.startswith("patient ")}
    assert names and not any("<b>" in n for n in names)
    assert {unescape(n) for n in names} >= {"patient <b>x</b>", "patient +1"}
