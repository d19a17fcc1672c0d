"""The app over the real artifact: store, figure builders, callbacks as plain functions, routes."""
import io
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import pandas as pd
import pytest
from dash import Patch
from werkzeug.datastructures import MultiDict

from cxrviz import figures, ids
from cxrviz import schema as S
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
    from cxrviz.appstate import get_store

    return get_store()


@pytest.fixture(scope="module")
def page(app):
    from cxrviz.pages import map as page

    return page


def test_store_filters_and_count(store):
    everything = store.mask({})
    assert everything.all() and store.count_text(everything).startswith("559 of 559 images")
    europe = store.mask({"continent": ["Europe"]})
    assert europe.sum() == (store.covid[S.CONTINENT] == "Europe").sum() < 559
    narrow = store.mask({"continent": ["Europe"], "state": ["bad"], "age": [40, 60]})
    rows = store.covid[narrow]
    assert (rows[S.STATE] == "bad").all() and rows[S.AGE].between(40, 60).all()
    assert store.mask({"patient": "205"}).sum() == 7
    multi = store.mask({"min_images": 5})
    assert (store.covid[multi].groupby(S.PATIENTID).size() >= 5).all()


def test_map_figure_is_pure_and_ordered(store):
    fig = figures.map_figure(store)
    again = figures.map_figure(store)
    assert fig.to_json() == again.to_json()  # no hidden state
    t = figures.TRACE
    assert fig.data[t["points"]].type == "scattergl"
    assert list(fig.data[t["points"]].customdata) == store.covid[S.IMAGE_ID].tolist()
    assert fig.data[t["density"]].type == "heatmap"
    n_edges = len(store.trajectories)
    paths = sum(np.isnan(fig.data[t[k]].x).sum() for k in ("path_Y", "path_N", "path_unknown"))
    arrows = sum(np.isnan(fig.data[t[k]].x).sum()
                 for k in ("arrow_good", "arrow_bad", "arrow_unknown"))
    assert paths == arrows == n_edges  # one gap-terminated polyline per edge
    legend = [tr.name for tr in fig.data[figures.LEGEND_START:] if tr.visible]
    assert legend == ["good", "bad", "unknown"]
    assert any(UNTRAINED_WARNING in a.text for a in fig.layout.annotations)


def test_arrows_point_from_earlier_to_later(store):
    edge = store.trajectories[store.trajectories[S.PATIENTID] == "205"].iloc[0]
    lines = figures.trajectory_lines(store, store.trajectories.loc[[edge.name]])
    name = f"arrow_{edge[S.TO_STATE]}"
    xs, ys = lines[name]
    assert all(len(lines[k][0]) == 0 for k in lines if k not in (name, "path_Y"))
    a, b = store.covid.iloc[edge["from_pos"]], store.covid.iloc[edge["to_pos"]]
    direction = np.array([b[S.X] - a[S.X], b[S.Y] - a[S.Y]])
    tip = np.array([xs[1], ys[1]])
    np.testing.assert_allclose(tip, [a[S.X], a[S.Y]] + figures.ARROW_AT * direction, rtol=1e-5)
    for wing in (0, 2):  # both wings trail behind the tip, along the edge's direction
        assert np.dot(np.array([xs[wing], ys[wing]]) - tip, direction) < 0


def test_colour_by_continuous_output(store):
    fig = figures.map_figure(store, color_by="logit:Lung Opacity")
    marker = fig.data[figures.TRACE["points"]].marker
    assert marker.showscale and 0 <= marker.cmin <= marker.cmax <= 1
    assert "P(Lung Opacity)" in marker.colorbar.title.text


def test_outputs_figure_sorted_probabilities():
    logits = np.array([2.0, -1.0, 0.5])
    fig = figures.outputs_figure(["a", "b", "c"], logits)
    bar = fig.data[0]
    assert list(bar.y) == ["b", "c", "a"]
    np.testing.assert_allclose(bar.x, 1 / (1 + np.exp(-np.array([-1.0, 0.5, 2.0]))))
    np.testing.assert_allclose(bar.customdata, [-1.0, 0.5, 2.0])


def test_click_selects_by_customdata_and_shows_detail(page, store):
    click = {"points": [{"customdata": IMAGE_205, "x": 0.1, "y": 0.2}]}
    selected = run_callback(page.select_image, {f"{ids.MAP}.clickData": click}, click, [])
    assert selected == IMAGE_205
    detail = run_callback(page.show_detail, {f"{ids.SELECTED}.data": selected}, selected)
    text = json.dumps([c.to_plotly_json() for c in detail], default=str)
    assert "205" in text and "covid-19-pneumonia-progression-and-regression-day11" in text
    outputs = next(c for c in detail if getattr(c, "id", None) == ids.DETAIL_OUTPUTS)
    assert len(outputs.figure.data[0].y) == 18
    timeline = next(c for c in detail if getattr(c, "id", None) == ids.TIMELINE)
    assert "Patient 205: 7 images" in json.dumps(timeline.to_plotly_json(), default=str)


def test_filter_change_sends_a_patch_not_the_figure(page, store):
    args = ["state", ["density", "trajectories", "rsna"], "heatmap", 0.55, "dim",
            ["Europe"], *([None] * 9), list(store.age_range), 1, "", None]
    patch, count = run_callback(page.update_map, {f"{ids.F_CONTINENT}.value": ["Europe"]},
                                *args)
    assert isinstance(patch, Patch)
    assert count == store.count_text(store.mask({"continent": ["Europe"]}))
    ops = patch.to_plotly_json()["operations"]
    touched = {tuple(op["location"][:2]) for op in ops}
    assert ("data", figures.TRACE["points"]) in touched
    assert ("data", figures.TRACE["density"]) not in touched  # density did not change


def test_url_state_round_trip(page, store):
    filters = {"continent": ["Europe", "Asia"], "state": ["bad"], "age": [30, 70],
               "min_images": 2, "patient": ""}
    view = {"color": "logit:Effusion", "show": ["density"], "density_style": "contours",
            "opacity": 0.3, "mode": "hide"}
    query = page.query_from(filters, view, IMAGE_205, store)
    back = page.state_from_query(MultiDict(parse_qsl(query[1:])), store)
    assert back["filters"]["continent"] == ["Europe", "Asia"]
    assert back["filters"]["state"] == ["bad"] and back["filters"]["age"] == [30, 70]
    assert back["filters"]["min_images"] == 2
    assert (back["color"], back["show"], back["density_style"], back["opacity"], back["mode"]) \
        == ("logit:Effusion", ["density"], "contours", 0.3, "hide")
    assert back["selected"] == IMAGE_205
    junk = page.state_from_query(MultiDict([("continent", "Atlantis"), ("image", "../x"),
                                            ("color", "evil"), ("age", "x-y")]), store)
    assert junk["filters"]["continent"] == [] and junk["selected"] is None
    assert junk["color"] == "state"


def test_selection_summary_counts(page, store):
    points = [{"customdata": i} for i in store.covid[S.IMAGE_ID][:40]]
    out = page.selection_summary({"points": points})
    text = json.dumps([c.to_plotly_json() for c in out], default=str)
    assert "Selection: 40 images" in text


def test_display_route_serves_ids_only(app, store):
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
             ("A" * 29_000_000, "application/json")]  # over the 28 MB limit: 413
    for body, ctype in cases:
        r = client.post(url, data=body, content_type=ctype)
        assert 400 <= r.status_code < 500, (body[:40], r.status_code)
    assert client.get("/").status_code == 200  # still up


def test_exports_are_valid_files(store):
    from cxrviz.export import export_csv, export_image

    keep = store.mask({"continent": ["Europe"]})
    png, _ = export_image(store, "png", "single", keep=keep, color_by="state")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    width = Image.open(io.BytesIO(png)).size[0]
    assert width == pytest.approx(89 / 25.4 * 300, abs=3)  # 89 mm at 300 dpi
    svg, _ = export_image(store, "svg", "double", keep=keep, color_by="state")
    assert svg.lstrip().startswith(b"<svg") and UNTRAINED_WARNING.encode() in svg
    pdf, _ = export_image(store, "pdf", "single", keep=keep, color_by="state")
    assert pdf[:5] == b"%PDF-"
    data, _ = export_csv(store, keep)
    frame = pd.read_csv(io.BytesIO(data))
    assert len(frame) == keep.sum() and (frame["weights_pretrained"] == False).all()  # noqa: E712
    assert {"x", "y", "state", "logit:Lung Opacity"} <= set(frame.columns)


def test_app_start_does_not_import_torch_or_umap(covid_artifact):
    code = ("import sys; sys.path.insert(0, '.'); import app; app.build(sys.argv[1]); "
            "assert 'torch' not in sys.modules and 'umap' not in sys.modules; print('ok')")
    done = subprocess.run([sys.executable, "-c", code, str(covid_artifact.out)],
                          capture_output=True, text=True,
                          cwd=ROOT)
    assert done.stdout.strip() == "ok", done.stderr


def test_bad_artifact_is_refused_with_a_message(tmp_path):
    (tmp_path / "half").mkdir()
    done = subprocess.run([sys.executable, "app.py", "--artifact", str(tmp_path / "half")],
                          capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 2
    assert "manifest.json is missing" in done.stderr and "python -m precompute" in done.stderr
