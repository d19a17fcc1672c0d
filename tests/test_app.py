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
from dash import Patch
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


def test_map_figure_traces(store, images, covid_artifact):
    fig = figures.map_figure(store)
    t = figures.TRACE
    assert fig.data[t["points"]].type == "scattergl"
    assert list(fig.data[t["points"]].customdata) == images[S.IMAGE_ID].tolist()
    assert fig.data[t["density"]].type == "heatmap"
    dated = images[images[S.OFFSET].notna()].groupby(S.PATIENTID).size()
    n_edges = int((dated - 1).sum())  # consecutive dated pairs, counted with pandas
    paths = sum(np.isnan(fig.data[t[k]].x).sum() for k in figures.PATH_TRACES)
    arrows = sum(len(fig.data[t[k]].x) for k in figures.ARROW_TRACES)
    assert paths == arrows == n_edges  # one gap-terminated segment and one arrowhead per edge
    assert not fig.layout.showlegend  # the legend is HTML below the plot (legend.py)
    assert any(UNTRAINED_WARNING in a.text for a in fig.layout.annotations)


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


def test_colour_by_continuous_output(store, images):
    fig = figures.map_figure(store, color_by="logit:Lung Opacity")
    marker = fig.data[figures.TRACE["points"]].marker
    probs = 1 / (1 + np.exp(-images["logit:Lung Opacity"].to_numpy(float)))
    np.testing.assert_allclose(np.asarray(marker.color, float), probs, rtol=1e-6)
    assert (marker.cmin, marker.cmax) == (0.0, 1.0)


def test_outputs_figure_sorted_probabilities():
    logits = np.array([2.0, -1.0, 0.5])
    fig = figures.outputs_figure(["a", "b", "c"], logits)
    bar = fig.data[0]
    assert list(bar.y) == ["b", "c", "a"]
    np.testing.assert_allclose(bar.x, 1 / (1 + np.exp(-np.array([-1.0, 0.5, 2.0]))))
    np.testing.assert_allclose(bar.customdata, [-1.0, 0.5, 2.0])


def test_click_selects_by_customdata_and_shows_detail(page, images):
    click = {"points": [{"customdata": IMAGE_205, "x": 0.1, "y": 0.2}]}
    selected, _ = run_callback(page.selection.select_image, {f"{ids.MAP}.clickData": click},
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


def test_filter_change_sends_the_mask_not_the_figure(page, store, images):
    """A filter change costs one byte per image; the browser draws the rest."""
    import base64

    filters = {**store.default_filters(), "continent": ["Europe"]}
    payload = run_callback(page.time.update_mask, {f"{ids.F_CONTINENT}.value": ["Europe"]},
                           filters=filters)
    mask = np.frombuffer(base64.b64decode(payload["keep"]), np.uint8).astype(bool)
    assert (mask == (images[S.CONTINENT] == "Europe").to_numpy()).all()
    assert len(payload["keep"]) < 2 * len(images) and payload["unknown"] is None
    # a narrowed age range: which images are in only because their age is unknown
    filters["age"] = [40, 60]
    payload = run_callback(page.time.update_mask, {f"{ids.F_AGE}.value": [40, 60]},
                           filters=filters)
    unknown = np.frombuffer(base64.b64decode(payload["unknown"]), np.uint8).astype(bool)
    europe = (images[S.CONTINENT] == "Europe").to_numpy()
    assert (unknown == (europe & images[S.AGE].isna().to_numpy())).all()
    assert payload["unknown_label"] == "age"
    # an empty result says which filter emptied it
    empty = {**store.default_filters(), "continent": ["Oceania"], "patient": "205"}
    payload = run_callback(page.time.update_mask, {f"{ids.F_PATIENT}.value": "205"},
                           filters=empty)
    assert payload["emptied_by"] == "Patient id"


def plain(value):
    """A figure value as the browser reads it: typed-array specs ({dtype, bdata}) decoded."""
    if isinstance(value, dict) and set(value) >= {"dtype", "bdata"}:
        return np.frombuffer(base64.b64decode(value["bdata"]), np.dtype(value["dtype"]))
    return value


def apply_patch(figure: dict, patch: Patch) -> dict:
    """What the browser does with a Patch (dash-renderer's Assign), written out here."""
    for op in json.loads(json.dumps(patch.to_plotly_json(), cls=PlotlyJSONEncoder))[
            "operations"]:
        assert op["operation"] == "Assign", op
        *path, last = op["location"]
        target = figure
        for key in path:
            target = target[key]
        target[last] = op["params"]["value"]
    return figure


def colour_at(marker: dict, code: float) -> str:
    """The colour a discrete colourscale gives a marker code (plotly's rule: cmin..cmax)."""
    t = (code - marker["cmin"]) / (marker["cmax"] - marker["cmin"])
    return next(c for (a, c), (b, _) in zip(marker["colorscale"], marker["colorscale"][1:])
                if a <= t <= b and a != b)


def test_view_changes_patch_the_figure_to_what_the_controls_say(page, store, images):
    """The patch, applied to the page's figure as the browser applies it, gives the view the
    controls ask for; expected values from images.parquet with pandas."""
    from cxrviz.figures.palette import SURVIVAL_COLORS

    fig = json.loads(json.dumps(figures.map_figure(store), cls=PlotlyJSONEncoder))
    view = {k: v for k, v in page.urlstate.DEFAULT_VIEW.items() if k != "mode"}
    t = figures.TRACE

    def change(cid, **changed):
        patch = run_callback(page.callbacks.update_map, {f"{cid}.value": 1},
                             view={**view, **changed}, selected="")
        return apply_patch(fig, patch)

    change(ids.COLOR_BY, color=S.SURVIVAL)
    marker = fig["data"][t["points"]]["marker"]
    shown = [colour_at(marker, c) for c in plain(marker["color"])]
    assert shown == [SURVIVAL_COLORS[v] for v in images[S.SURVIVAL]]
    change(ids.DENSITY_OPACITY, opacity=0.3)
    assert fig["data"][t["density"]]["opacity"] == 0.3
    change(ids.SHOW, show=["rsna"])
    assert fig["data"][t["density"]]["visible"] is False
    assert all(fig["data"][t[n]]["visible"] is False for n in figures.TRAJECTORY_TRACES)
    np.testing.assert_allclose(np.asarray(plain(fig["data"][t["points"]]["x"]), float),
                               images[S.X], rtol=1e-6)  # points untouched
    patch = run_callback(page.callbacks.update_map, {f"{ids.SELECTED}.data": IMAGE_205},
                         view=view, selected=IMAGE_205)
    apply_patch(fig, patch)
    p205 = images[images[S.PATIENTID] == "205"].sort_values([S.OFFSET, S.FILENAME])
    np.testing.assert_allclose(fig["data"][t["highlight"]]["x"], p205[S.X], rtol=1e-6)
    np.testing.assert_allclose(fig["data"][t["highlight"]]["y"], p205[S.Y], rtol=1e-6)
    row = images[images[S.IMAGE_ID] == IMAGE_205].iloc[0]
    np.testing.assert_allclose([fig["data"][t["selected"]]["x"][0],
                                fig["data"][t["selected"]]["y"][0]], [row[S.X], row[S.Y]],
                               rtol=1e-6)


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
    chosen = images.iloc[:40]
    out = page.callbacks.selection_summary(
        selected_data={"points": [{"customdata": i} for i in chosen[S.IMAGE_ID]]})
    text = as_json(out)
    assert f"Selection: 40 images, {chosen[S.PATIENTID].nunique()} patients" in text


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
