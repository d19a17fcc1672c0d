"""The app over the real artifact: store, figure builders, callbacks as plain functions, routes.

Expected values come from plain pandas on the artifact's files (or metadata.csv), not from the
store or the figure builders under test.
"""
import base64
import io
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
import pytest
from dash.exceptions import PreventUpdate
from plotly.utils import PlotlyJSONEncoder

from cxrviz import figures, ids
from cxrviz import schema as S
from cxrviz.filters import FILTERS, IDS, LIST, MIN_IMAGES, RANGE
from cxrviz.store import UNTRAINED_WARNING
from tests.app_helpers import run_callback

ROOT = Path(__file__).resolve().parents[1]
IMAGE_205 = "covid-205-covid-19-pneumonia-progression-and-regression-day11"


@pytest.fixture(scope="module")
def app(covid_artifact):
    from cxrviz.app import create_app

    return create_app(covid_artifact.out)


@pytest.fixture(scope="module")
def store(app):
    from cxrviz.appstate import current

    return current().store


@pytest.fixture(scope="module")
def page(app):
    from cxrviz.pages import map as page

    return page


@pytest.fixture(scope="module")
def images(covid_artifact):
    """The second route: images.parquet read with pandas."""
    return pd.read_parquet(covid_artifact.out / S.IMAGES_FILE)


def as_json(component) -> str:
    """A component tree as the browser receives it (nested components included)."""
    return json.dumps(component, cls=PlotlyJSONEncoder)


def counts_by_pandas(rows: pd.DataFrame, total: int) -> str:
    return f"{len(rows)} of {total} images, {rows[S.PATIENTID].nunique()} patients"


def test_store_filters_and_count(store, images):
    assert store.count_text(store.mask({})) == counts_by_pandas(images, 559)
    europe = images[images[S.CONTINENT] == "Europe"]
    assert 0 < len(europe) < 559
    assert store.count_text(store.mask({"continent": ["Europe"]})) == counts_by_pandas(europe, 559)
    europe_bad = (images[S.CONTINENT] == "Europe") & (images[S.STATE] == "bad")
    narrow = images[europe_bad & (images[S.AGE].between(40, 60) | images[S.AGE].isna())]
    mask = store.mask({"continent": ["Europe"], "state": ["bad"], "age": [40, 60]})
    assert set(images[mask][S.IMAGE_ID]) == set(narrow[S.IMAGE_ID])  # unknown ages kept
    known = images[europe_bad & images[S.AGE].between(40, 60)]
    mask = store.mask({"continent": ["Europe"], "state": ["bad"], "age": [40, 60],
                       "age_unknown": []})
    assert set(images[mask][S.IMAGE_ID]) == set(known[S.IMAGE_ID]) != set(narrow[S.IMAGE_ID])
    # moving the age slider's end by one year keeps every image whose age is unknown
    top = store.ranges["age"][1]
    ages = images[S.AGE]
    assert store.mask({"age": [store.ranges["age"][0], top - 1]}).sum() == \
        (ages.isna() | (ages <= top - 1)).sum() > 400
    assert store.mask({"patient": "205"}).sum() == 7  # hand-counted in metadata.csv
    assert store.mask({"patient": "205, 178"}).sum() == 7 + (images[S.PATIENTID] == "178").sum()
    per_patient = images.groupby(S.PATIENTID)[S.IMAGE_ID].transform("size")
    assert store.mask({"min_images": 5}).sum() == (per_patient >= 5).sum()


def test_every_filter_of_the_table_drives_layout_mask_and_url(page, store, images):
    """One table: each filter has a control in the page, narrows the mask, survives the URL."""
    layout = as_json(page.layout())
    for f in FILTERS:  # every control is in the page (hidden where the map has no such values)
        assert f'"id": "{f.cid}"' in layout, f.key
    # the collection has no CheXpert labels: every other filter is offered
    assert [f.key for f in FILTERS if f not in store.offered] == ["chexpert"]
    for f in store.offered:
        if f.kind == LIST:
            value = [images[f.column].value_counts().index[-1]]
            expected = images[f.column].isin(value)
        elif f.kind == RANGE:
            value = [50, 60]
            expected = images[f.column].between(50, 60) | images[f.column].isna()
        elif f.kind == MIN_IMAGES:
            value = 3
            expected = images.groupby(S.PATIENTID)[S.IMAGE_ID].transform("size") >= 3
        elif f.kind == IDS:
            value = "205"
            expected = images[S.PATIENTID] == "205"
        filters = {**store.default_filters(), f.key: value}
        mask = store.mask(filters)
        assert 0 < mask.sum() < len(images) and (mask == expected.to_numpy()).all(), f.key
        query = page.urlstate.encode(filters, page.urlstate.DEFAULT_VIEW, None, store)
        back = page.urlstate.decode({k: v if len(v) > 1 else v[0]
                                     for k, v in parse_qs(query[1:]).items()}, store)
        assert back["filters"][f.key] == value and back["ignored"] == [], f.key


def test_the_map_gets_every_image_one_segment_per_dated_step_and_the_warning(
        app, page, images, covid_artifact):
    """What the WebGL map draws from: every image in images.parquet's order, one trajectory
    segment per consecutive pair of dated images (counted with pandas), the density grid as an
    image of the grid's size, the untrained-weights warning; the legend is HTML beside the map."""
    from PIL import Image

    client = app.server.test_client()
    assert client.get("/api/map/ids").get_json() == images[S.IMAGE_ID].tolist()
    dated = images[images[S.OFFSET].notna()].groupby(S.PATIENTID).size()
    r = client.get("/api/map/edges?traj=all")
    assert json.loads(r.headers["X-Cxrviz-Edges"])["n"] == int((dated - 1).sum())
    z = np.load(covid_artifact.out / S.DENSITY_FILE)[S.DENSITY_Z]
    png = Image.open(io.BytesIO(client.get("/api/map/density.png").get_data()))
    assert png.size == (z.shape[1], z.shape[0])
    assert client.get("/api/map/config").get_json()["warning"] == UNTRAINED_WARNING
    layout = json.loads(as_json(page.layout()))
    found = {c["props"]["id"]: c for c in components(layout)
             if c["props"].get("id") in (ids.MAP, ids.LEGEND)}
    assert found[ids.MAP]["type"] == "Div" and ids.LEGEND in found  # no plot of its own


def components(tree):
    """Every component of a layout as the browser receives it (JSON), depth first."""
    if isinstance(tree, dict) and "props" in tree:
        yield tree
        tree = tree["props"].get("children")
    for child in tree if isinstance(tree, list) else [tree] if isinstance(tree, dict) else []:
        yield from components(child)


def test_legend_names_colours_in_words_with_unknowns(page, store, images):
    out = as_json(page.legend.colour_block(store, S.SURVIVAL))
    for label in ("survived", "died"):
        assert f'"{label}"' in out
    assert '"Y"' not in out and '"N"' not in out
    out = as_json(page.legend.colour_block(store, S.AGE))
    assert "age unknown" in out and images[S.AGE].isna().any()
    out = as_json(page.legend.colour_block(store, "logit:Lung Opacity"))
    assert '"0"' in out and '"1"' in out  # probabilities on their whole scale
    out = as_json(page.legend.legend(store, {"color": "state", "show": ["density"]}))
    assert "collection percentile" in out and "trajectories" not in out


def test_arrows_point_from_earlier_to_later(store, images):
    p205 = images[images[S.PATIENTID] == "205"].sort_values(S.OFFSET)
    a, b = p205.iloc[0], p205.iloc[1]  # days 1 and 6
    edge = store.trajectories[(store.trajectories[S.FROM_IMAGE_ID] == a[S.IMAGE_ID])]
    assert edge[S.TO_IMAGE_ID].tolist() == [b[S.IMAGE_ID]]
    data = figures.trajectory_data(store, edge)
    name = f"arrow_{b[S.STATE]}"
    assert all(len(data[k][0]) == 0 for k in data if k not in (name, "path_Y"))
    (x,), (y,), (angle,) = data[name]
    dx, dy = float(b[S.X] - a[S.X]), float(b[S.Y] - a[S.Y])
    np.testing.assert_allclose([x, y], [a[S.X] + figures.ARROW_AT * dx,
                                        a[S.Y] + figures.ARROW_AT * dy], rtol=1e-5)
    # a triangle turned clockwise by `angle` from "up" points along (dx, dy) on equal axes
    pointing = np.array([np.sin(np.radians(angle)), np.cos(np.radians(angle))])
    cos = pointing @ np.array([dx, dy]) / np.hypot(dx, dy)
    assert cos > np.cos(np.radians(7.5 + 1e-6)) and angle % 15 == 0


def test_colour_by_continuous_output(app, images):
    """A model output colours by its probability on the whole 0..1 scale: the map's colour
    codes are steps along the ramp from 0 to 1."""
    client = app.server.test_client()
    column = "logit:Lung Opacity"
    palette = client.get("/api/map/config").get_json()["colors"]["columns"][column]
    assert (palette["kind"], palette["lo"], palette["hi"]) == ("continuous", 0.0, 1.0)
    codes = np.frombuffer(client.get(f"/api/map/colors/{column}").get_data(), np.uint8)
    probs = 1 / (1 + np.exp(-images[column].to_numpy(float)))
    steps = len(client.get("/api/map/config").get_json()["colors"]["ramp"]) - 1  # last: unknown
    assert np.abs(codes.astype(float) - probs * (steps - 1)).max() <= 0.5 + 1e-6


def test_outputs_figure_sorted_probabilities():
    logits = np.array([2.0, -1.0, 0.5])
    fig = figures.outputs_figure(["a", "b", "c"], logits)
    bar = fig.data[0]
    assert list(bar.y) == ["b", "c", "a"]
    np.testing.assert_allclose(bar.x, 1 / (1 + np.exp(-np.array([-1.0, 0.5, 2.0]))))
    np.testing.assert_allclose(bar.customdata, [-1.0, 0.5, 2.0])


def test_click_selects_by_customdata_and_shows_detail(page, images):
    click = {"image_id": IMAGE_205, "n": 1}  # what the map sets on a click
    selected, _ = run_callback(page.selection.select_image, {f"{ids.MAP_CLICK}.data": click},
                               click=click, thumbs=[], neighbours=[])
    assert selected == IMAGE_205
    detail = run_callback(page.detail.show_detail, {f"{ids.SELECTED}.data": selected},
                          image_id=selected)
    text = as_json(detail)
    assert "205" in text and "covid-19-pneumonia-progression-and-regression-day11" in text
    outputs = next(c for c in detail if getattr(c, "id", None) == ids.DETAIL_OUTPUTS)
    assert len(outputs.figure.data[0].y) == 18
    timeline = next(c for c in detail if getattr(c, "id", None) == ids.TIMELINE)
    days = [as_json(b) for b in timeline.children[2].children]
    assert [d.split('day ')[1].split('"')[0] for d in days] == ["1", "6", "11", "13", "20", "24",
                                                                "28"]  # metadata.csv, by hand
    # the detail panel speaks words: a state in plain language, one vocabulary for outcomes
    assert "bad: in ICU at this image and intubated at this image" in text
    assert "Intubated at any time" in text and "survived" in text


def test_selection_steps_search_and_clear(page, images):
    """Previous / next along the patient's timeline, the search box, and clear."""
    p205 = images[images[S.PATIENTID] == "205"].sort_values(S.OFFSET)[S.IMAGE_ID].tolist()
    step = f'{{"index":1,"type":"{ids.STEP}"}}.n_clicks'
    nxt, _ = run_callback(page.selection.select_image, {step: 1}, click=None, thumbs=[],
                          neighbours=[], steps=[None, 1], selected=p205[2])
    assert nxt == p205[3]
    back = f'{{"index":-1,"type":"{ids.STEP}"}}.n_clicks'
    prev, _ = run_callback(page.selection.select_image, {back: 1}, click=None, thumbs=[],
                           neighbours=[], steps=[1, None], selected=p205[3])
    assert prev == p205[2]
    with pytest.raises(PreventUpdate):  # nothing before the first image
        run_callback(page.selection.select_image, {back: 1}, click=None, thumbs=[],
                     neighbours=[], steps=[1, None], selected=p205[0])
    found, message = run_callback(page.selection.select_image, {f"{ids.GOTO}.value": "205"},
                                  click=None, thumbs=[], neighbours=[], goto="205")
    assert found == p205[0] and "patient 205" in message
    missing, message = run_callback(page.selection.select_image, {f"{ids.GOTO}.value": "zz"},
                                    click=None, thumbs=[], neighbours=[], goto="zz")
    assert "no image or patient 'zz'" in message
    cleared, _ = run_callback(page.selection.select_image, {f"{ids.CLEAR}.n_clicks": 1},
                              click=None, thumbs=[], neighbours=[], clear=1, selected=p205[0])
    assert cleared == ""


def test_filter_change_sends_a_bitmask_not_the_figure(app, page, store, images):
    """A filter change costs the map one request for one bit per image: the page's query (as
    sync_url encodes it) to /api/map/mask, whose bitmask the GPU applies."""
    client = app.server.test_client()
    n = len(images)

    def mask_for(filters):
        query = page.urlstate.encode(filters, page.urlstate.DEFAULT_VIEW, None, store)
        r = client.get("/api/map/mask" + query)
        bits = np.unpackbits(np.frombuffer(r.get_data(), np.uint8), bitorder="little")
        size = (n + 7) // 8 * 8
        return bits[:n].astype(bool), bits[size:size + n].astype(bool), \
            json.loads(r.headers["X-Cxrviz-Mask"]), len(r.get_data())

    filters = {**store.default_filters(), "continent": ["Europe"]}
    keep, _, info, size = mask_for(filters)
    europe = (images[S.CONTINENT] == "Europe").to_numpy()
    assert (keep == europe).all() and info["passing"] == europe.sum()
    assert size == (n + 7) // 8 and info["unknown_label"] is None
    # a narrowed age range: which images are in only because their age is unknown
    filters["age"] = [40, 60]
    keep, unknown, info, _ = mask_for(filters)
    ages = images[S.AGE]
    assert (keep == (europe & (ages.between(40, 60) | ages.isna()).to_numpy())).all()
    assert (unknown == (europe & ages.isna().to_numpy())).all()
    assert info["unknown_label"] == "age"
    # an empty result says which filter emptied it
    empty = {**store.default_filters(), "continent": ["Oceania"], "patient": "205"}
    keep, _, info, _ = mask_for(empty)
    assert not keep.any() and info["emptied_by"] == "Patient id"


def test_view_changes_reach_the_url_and_the_map_s_colours(page, store, images, app):
    """A view control's change goes to the map in the browser (mapView) and to the URL
    (sync_url): the query holds what the controls say, and the colours the map is handed for
    it are each image's, from images.parquet with pandas."""
    from cxrviz.figures.palette import SURVIVAL_COLORS
    from cxrviz.map_columns import rgb

    view = {**page.urlstate.DEFAULT_VIEW, "color": S.SURVIVAL, "opacity": 0.3,
            "show": ["rsna"]}
    query = run_callback(page.urlstate.sync_url, {f"{ids.COLOR_BY}.value": S.SURVIVAL},
                         filters=store.default_filters(), view=view, selected=IMAGE_205)
    asked = parse_qs(query[1:])
    assert asked["color"] == [S.SURVIVAL] and asked["opacity"] == ["0.3"]
    assert asked["show"] == ["rsna"] and asked["image"] == [IMAGE_205]
    client = app.server.test_client()
    palette = client.get("/api/map/config").get_json()["colors"]["columns"][S.SURVIVAL]
    codes = np.frombuffer(client.get(f"/api/map/colors/{S.SURVIVAL}").get_data(), np.uint8)
    shown = [palette["colors"][c] for c in codes]
    assert shown == [rgb(SURVIVAL_COLORS[v]) for v in images[S.SURVIVAL]]


def test_url_state_round_trip(page, store):
    filters = {**store.default_filters(), "continent": ["Europe", "Asia"], "state": ["bad"],
               "age": [30, 70], "min_images": 2}
    view = {"color": "logit:Effusion", "show": ["density"], "density_style": "contours",
            "opacity": 0.3, "mode": "hide"}
    query = page.urlstate.encode(filters, view, IMAGE_205, store)
    assert parse_qs(query[1:])["continent"] == ["Europe", "Asia"]
    parsed = {k: v if len(v) > 1 else v[0] for k, v in parse_qs(query[1:]).items()}
    back = page.urlstate.decode(parsed, store)
    assert back["filters"] == filters and back["view"] == view
    assert back["selected"] == IMAGE_205
    junk = page.urlstate.decode({"continent": "Atlantis", "image": "../x", "color": "evil",
                                 "age": "x-y"}, store)
    assert junk["filters"]["continent"] == [] and junk["selected"] is None
    assert junk["view"]["color"] == "state"
    assert sorted(junk["ignored"]) == ["age=x-y", "color=evil", "continent=Atlantis",
                                       "image=../x"]


def test_layout_from_a_query_renders_that_view(page, images):
    """Dash Pages calls layout(**query): the count and the notice follow the URL."""
    out = as_json(page.layout(continent=["Europe", "Asia"], color="nope"))
    rows = images[images[S.CONTINENT].isin(["Europe", "Asia"])]
    assert counts_by_pandas(rows, 559) in out
    assert "ignored: color=nope" in out


def test_about_accounts_for_every_metadata_row(page, store, dataset):
    meta = pd.read_csv(dataset / "metadata.csv", dtype=str, keep_default_na=False)
    out = as_json(page.about(store))
    assert f"{len(meta)} rows in metadata.csv: 559 on the map, 181 left out by design, " \
           "11 skipped" in out
    assert f"{(meta['modality'] == 'CT').sum()} not an X-ray: CT" in out
    assert f"{((meta['modality'] == 'X-ray') & (meta['view'] == 'L')).sum()} lateral view: L" in out


def test_selection_summary_counts(page, images):
    """A box over the map's left half (MAP_SELECTION, as the map sets it) among the images the
    page's query shows: counted with pandas from x and the continent."""
    x, y = images[S.X], images[S.Y]
    mid = float(x.median())
    box = [[float(x.min()) - 1, float(y.min()) - 1], [mid, float(y.min()) - 1],
           [mid, float(y.max()) + 1], [float(x.min()) - 1, float(y.max()) + 1]]
    chosen = images[(x < mid) & (images[S.CONTINENT] == "Europe")]
    assert 0 < len(chosen) < (images[S.CONTINENT] == "Europe").sum()
    out = page.callbacks.selection_summary(
        selection={"polygon": box, "query": "?continent=Europe"})
    assert f"Selection: {len(chosen)} images, {chosen[S.PATIENTID].nunique()} patients" in \
        as_json(out)
    assert "Use box or lasso" in as_json(page.callbacks.selection_summary(selection=None))


def test_a_second_artifact_in_the_same_process_is_refused(app, tmp_path):
    from cxrviz.app import create_app
    from cxrviz.appstate import AlreadyServing

    with pytest.raises(AlreadyServing, match="one artifact per process|One artifact per process"):
        create_app(tmp_path / "another")


def test_display_route_serves_ids_only(app):
    client = app.server.test_client()
    ok = client.get(f"/display/{IMAGE_205}.jpg")
    assert ok.status_code == 200 and ok.data[:3] == b"\xff\xd8\xff"
    for bad in ["/display/../manifest.json", "/display/..%2Fmanifest.json.jpg",
                "/display/%2e%2e%2fmanifest.json.jpg", "/display/%2Fetc%2Fpasswd.jpg",
                "/display//etc/passwd", "/display/..%252F..%252Fmanifest.json.jpg",
                "/display/nope.jpg", f"/display/{IMAGE_205}.jpg/../../manifest.json"]:
        assert client.get(bad).status_code == 404, bad


def test_malformed_callback_requests_get_4xx(app):
    client = app.server.test_client()
    url = "/_dash-update-component"
    cases = [("not json", "text/plain"), ("{", "application/json"), ("[]", "application/json"),
             (json.dumps({"output": "nope.children", "outputs": {}, "inputs": [],
                          "changedPropIds": []}), "application/json"),
             (json.dumps({"output": "x"}), "application/json"),
             ("A" * 29_000_000, "application/json")]  # over the upload limit: 413
    for body, ctype in cases:
        r = client.post(url, data=body, content_type=ctype)
        assert 400 <= r.status_code < 500, (body[:40], r.status_code)
    assert client.get("/").status_code == 200  # still up


def test_export_callback_writes_the_figure_and_csv_with_provenance(page, store, images):
    """The export panel's callback, as the browser calls it: PNG at the preset's size, CSV with
    its sidecar."""
    from PIL import Image

    filters = {**store.default_filters(), "continent": ["Europe"]}
    state = {"align": "offset", "day_range": [-31, 31], "scope": "all", "traj_ids": "",
             "selected": "", "selected_data": None, "hidden": []}
    args = dict(preset="single", scope="filtered", caption_on=[], filters=filters,
                view=page.urlstate.DEFAULT_VIEW, page=state)
    trig = {f'{{"index":"png","type":"{ids.EXPORT_BUTTON}"}}.n_clicks': 1}
    png, _, status = run_callback(page.export.export, trig, clicks=[1, None, None, None], **args)
    im = Image.open(io.BytesIO(base64.b64decode(png["content"])))
    assert im.size[0] == round(89 / 25.4 * 300) and "PNG ready" in status
    trig = {f'{{"index":"csv","type":"{ids.EXPORT_BUTTON}"}}.n_clicks': 1}
    csv, sidecar, _ = run_callback(page.export.export, trig, clicks=[1, None, None, 1], **args)
    frame = pd.read_csv(io.BytesIO(base64.b64decode(csv["content"])))
    europe = images[images[S.CONTINENT] == "Europe"]
    assert sorted(frame[S.IMAGE_ID]) == sorted(europe[S.IMAGE_ID])
    assert (frame["weights_pretrained"] == False).all()  # noqa: E712
    prov = json.loads(base64.b64decode(sidecar["content"]))
    assert prov["filters"] == {"continent": ["Europe"]} and prov["counts"]["images"] == \
        len(europe)


def test_app_start_does_not_import_torch_or_umap(covid_artifact):
    code = ("import sys; sys.path.insert(0, '.'); import app; app.build(sys.argv[1], model=False);"
            " a = __import__('cxrviz.app').app.create_app(sys.argv[1], model=False);"
            " a.server.test_client().get('/');"
            " assert 'torch' not in sys.modules and 'umap' not in sys.modules; print('ok')")
    done = subprocess.run([sys.executable, "-c", code, str(covid_artifact.out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.strip() == "ok", done.stderr


def test_model_service_starts_only_when_asked(covid_artifact):
    """Building the app does not load the model; app.py's start-up does."""
    code = ("import sys; sys.path.insert(0, '.'); from cxrviz.app import create_app, start_model;"
            " from cxrviz.appstate import current; create_app(sys.argv[1]);"
            " print(current().service.state); start_model(); print(current().service.state)")
    done = subprocess.run([sys.executable, "-c", code, str(covid_artifact.out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.split() == ["idle", "loading"], done.stderr


def test_bad_artifact_is_refused_with_a_message(tmp_path):
    (tmp_path / "half").mkdir()
    done = subprocess.run([sys.executable, "app.py", "--artifact", str(tmp_path / "half")],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2
    assert "manifest.json is missing" in done.stderr and "python -m precompute" in done.stderr


def test_what_a_first_visit_loads_is_compressed_and_plotly_waits_for_the_map(app):
    """Dash's bundles and the page come compressed (decompressing to the same bytes); the map's
    binary routes keep their own gzip, not compressed twice; plotly.js is not among the page's
    scripts but named for after the map's first paint."""
    import gzip
    import re

    import zstandard

    client = app.server.test_client()
    plain = client.get("/").get_data(as_text=True)
    srcs = re.findall(r'<script[^>]*src="([^"]+)"', plain)
    assert srcs and not any("plotly.min.js" in s for s in srcs)
    (later,) = re.findall(r'<meta name="cxrviz-after-paint" content="([^"]+)"', plain)
    assert any(s.endswith("/plotly/package_data/plotly.min.js") for s in later.split())
    bundle = next(s for s in srcs if "dash_renderer" in s)
    raw = client.get(bundle).get_data()
    for encoding, decode in (("gzip", gzip.decompress),
                             ("zstd", lambda b: zstandard.ZstdDecompressor().decompress(
                                 b, max_output_size=len(raw) * 2))):
        for _ in range(2):  # the second from Flask-Compress's cache of static files
            r = client.get(bundle, headers={"Accept-Encoding": encoding})
            assert r.headers["Content-Encoding"] == encoding
            assert decode(r.get_data()) == raw and len(r.get_data()) < len(raw) / 2
    page = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert page.headers["Content-Encoding"] == "gzip"
    unpacked = gzip.decompress(page.get_data()).decode()  # the same page (its ids differ)
    assert unpacked.startswith("<!DOCTYPE html>") and 'name="cxrviz-after-paint"' in unpacked
    assert abs(len(unpacked) - len(plain)) < 200
    points = client.get("/api/map/points", headers={"Accept-Encoding": "gzip, zstd"})
    assert points.headers["Content-Encoding"] == "zstd"  # its own (map_data), once
    plain_points = client.get("/api/map/points").get_data()
    assert zstandard.ZstdDecompressor().decompress(points.get_data()) == plain_points
