"""The WebGL map's routes (cxrviz/map_data.py) through Flask's test client on the real
collection's artifact. Expected values come from plain pandas / numpy on images.parquet and
trajectories.parquet, never from the store or the routes under test."""
import base64
import gzip
import json

import numpy as np
import pandas as pd
import pytest

from cxrviz import schema as S

TYPES = {"f4": np.float32, "u4": np.uint32, "u1": np.uint8}


@pytest.fixture(scope="module")
def client(covid_artifact):
    from cxrviz.app import create_app

    return create_app(covid_artifact.out).server.test_client()


@pytest.fixture(scope="module")
def images(covid_artifact):
    frame = pd.read_parquet(covid_artifact.out / S.IMAGES_FILE)
    return frame[frame[S.ROLE] == S.ROLE_COHORT].reset_index(drop=True)


@pytest.fixture(scope="module")
def trajectories(covid_artifact):
    return pd.read_parquet(covid_artifact.out / S.TRAJECTORIES_FILE)


@pytest.fixture(scope="module")
def config(client):
    return client.get("/api/map/config").get_json()


def columns(raw: bytes, layout) -> dict:
    return {c["name"]: np.frombuffer(raw, TYPES[c["dtype"]], c["length"], c["offset"])
            for c in layout}


def unpack(raw: bytes, n: int, start: int = 0) -> np.ndarray:
    bits = np.frombuffer(raw, np.uint8)[start:start + (n + 7) // 8]
    return np.unpackbits(bits, bitorder="little")[:n].astype(bool)


def edges_of(response):
    info = json.loads(response.headers["X-Cxrviz-Edges"])
    m, raw = info["n"], response.get_data()
    return info, np.frombuffer(raw, np.uint32, m, 0), np.frombuffer(raw, np.uint32, m, 4 * m)


def test_points_are_binary_columns_gzip_with_the_artifact_as_etag(client, config, images,
                                                                   covid_artifact):
    r = client.get("/api/map/points", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    artifact = client.get("/api/status").get_json()["artifact"]
    assert r.headers["ETag"].strip('"') == artifact
    cols = columns(gzip.decompress(r.get_data()), config["points"])
    assert config["n"] == len(images) == 559
    np.testing.assert_array_equal(cols["x"], images[S.X].to_numpy(np.float32))
    np.testing.assert_array_equal(cols["y"], images[S.Y].to_numpy(np.float32))
    np.testing.assert_array_equal(np.isnan(cols["day"]), images[S.OFFSET].isna().to_numpy())
    dated = images[S.OFFSET].notna().to_numpy()
    np.testing.assert_array_equal(cols["day"][dated], images[S.OFFSET][dated].astype(np.float32))
    np.testing.assert_array_equal(cols["density_percentile"],
                                  np.round(images[S.DENSITY_PERCENTILE]).astype(np.uint8))
    # a point's episode is its row of patients.parquet ordered by patient, then episode (an
    # image in no episode: its patient's row without one); its patient, its patient's number
    units = pd.read_parquet(covid_artifact.out / S.PATIENTS_FILE).sort_values(
        [S.PATIENTID, S.EPISODE], na_position="first", kind="mergesort").reset_index(drop=True)
    rows = {(p, e if isinstance(e, str) else ""): k for k, (p, e) in
            enumerate(zip(units[S.PATIENTID], units[S.EPISODE]))}
    assert cols["episode"].tolist() == [rows[(p, e if isinstance(e, str) else "")] for p, e in
                                        zip(images[S.PATIENTID], images[S.EPISODE])]
    # per episode its patient's number (patients in id order): each image's patient through it
    patients = sorted(images[S.PATIENTID].unique())
    assert [patients[k] for k in cols["episode_patient"]] == units[S.PATIENTID].tolist()
    assert [patients[cols["episode_patient"][e]] for e in cols["episode"]] == \
        images[S.PATIENTID].tolist()
    assert config["n_episodes"] == len(units) and config["n_patients"] == len(patients)
    # no per-point text: 4 + 4 + 4 + 4 + 1 bytes per point (+ alignment padding), 4 per episode
    assert len(gzip.decompress(r.get_data())) <= 17 * len(images) + 4 * len(units) + 12
    again = client.get("/api/map/points", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and not again.get_data()


def test_event_days_per_alignment(client, config, images):
    raw = client.get("/api/map/events").get_data()
    ev = np.frombuffer(raw, np.float32).reshape(len(config["alignments"]), config["n_episodes"])
    patients = sorted(images[S.PATIENTID].unique())  # episode k = k-th patient id in order
    dated = images[images[S.OFFSET].notna()]
    first = dated.groupby(S.PATIENTID)[S.OFFSET].min().reindex(patients).to_numpy(np.float32)
    last = dated.groupby(S.PATIENTID)[S.OFFSET].max().reindex(patients).to_numpy(np.float32)
    bad = dated[dated[S.STATE] == S.STATE_BAD].groupby(S.PATIENTID)[S.OFFSET].min() \
        .reindex(patients).to_numpy(np.float32)
    for name, expected in (("first", first), ("last", last), ("first_bad", bad)):
        np.testing.assert_array_equal(ev[config["alignments"].index(name)], expected)
    assert np.isnan(bad).sum() > 0  # patients without a bad state have no such day 0


def test_filter_bitmask_from_the_page_query(client, config, images):
    r = client.get("/api/map/mask?sex=F&age=40-70&age_unknown=drop",
                   headers={"Accept-Encoding": "gzip"})
    raw = gzip.decompress(r.get_data())
    expected = ((images[S.SEX] == "F") & (images[S.AGE] >= 40) & (images[S.AGE] <= 70)).to_numpy()
    got = unpack(raw, config["n"])
    np.testing.assert_array_equal(got, expected)
    assert len(raw) == (config["n"] + 7) // 8  # unknown ages dropped: no second bitmask
    info = json.loads(r.headers["X-Cxrviz-Mask"])
    assert info["passing"] == expected.sum() and info["unknown_label"] is None
    # keeping unknown ages: a second bitmask of the images in only for that
    r = client.get("/api/map/mask?age=40-70")
    keep = unpack(r.get_data(), config["n"])
    age = images[S.AGE]
    np.testing.assert_array_equal(keep, (((age >= 40) & (age <= 70)) | age.isna()).to_numpy())
    np.testing.assert_array_equal(unpack(r.get_data(), config["n"], (config["n"] + 7) // 8),
                                  age.isna().to_numpy())
    assert json.loads(r.headers["X-Cxrviz-Mask"])["unknown_label"] == "age"


def test_colour_codes_name_each_point_s_category(client, config, images):
    codes = np.frombuffer(client.get("/api/map/colors/state").get_data(), np.uint8)
    cats = config["colors"]["columns"]["state"]["categories"]
    assert [cats[c] for c in codes] == images[S.STATE].tolist()
    age = np.frombuffer(client.get("/api/map/colors/age").get_data(), np.uint8)
    np.testing.assert_array_equal(age == 255, images[S.AGE].isna().to_numpy())
    known = images[S.AGE].notna().to_numpy()
    order = np.argsort(images[S.AGE][known].to_numpy(), kind="stable")
    assert (np.diff(age[known][order].astype(int)) >= 0).all()  # older never darker on the ramp
    assert client.get("/api/map/colors/not-a-column").status_code == 404


def test_edges_for_the_scope_with_a_budget(client, images, trajectories, monkeypatch):
    from cxrviz import map_data

    ids = images[S.IMAGE_ID].to_numpy()
    info, a, b = edges_of(client.get("/api/map/edges?traj=all"))
    assert set(zip(ids[a], ids[b])) == set(zip(trajectories[S.FROM_IMAGE_ID],
                                               trajectories[S.TO_IMAGE_ID]))
    assert info["left_out"] == 0 and info["n"] == len(trajectories)
    # then survival and arrival state (uint8, each padded to 4 bytes), then each step's episode
    # (its row among the patients: in the collection an episode is its patient)
    m, pad = info["n"], -info["n"] % 4
    raw = client.get("/api/map/edges?traj=all").get_data()
    episode = np.frombuffer(raw, np.uint32, m, 8 * m + 2 * (m + pad))
    patients = sorted(images[S.PATIENTID].unique())
    assert [patients[e] for e in episode] == trajectories[S.PATIENTID].tolist()
    one = trajectories[trajectories[S.PATIENTID] == "205"]
    info, a, b = edges_of(client.get("/api/map/edges?traj=ids&traj_ids=205"))
    assert set(zip(ids[a], ids[b])) == set(zip(one[S.FROM_IMAGE_ID], one[S.TO_IMAGE_ID]))
    image = one[S.TO_IMAGE_ID].iloc[0]
    info, a, b = edges_of(client.get(f"/api/map/edges?traj=selected&image={image}"))
    assert len(a) == len(one)
    info, a, _ = edges_of(client.get("/api/map/edges?traj=selected"))  # nothing selected
    assert len(a) == 0
    monkeypatch.setattr(map_data, "EDGE_BUDGET", 10)
    info, a, _ = edges_of(client.get("/api/map/edges?traj=all"))
    assert len(a) == 10 and info["left_out"] == len(trajectories) - 10


def test_point_facts_by_index_and_id(client, images):
    row = images[images[S.PATIENTID] == "205"].iloc[0]
    i = int(row.name)
    facts = client.get(f"/api/map/point?i={i}").get_json()
    assert facts["image_id"] == row[S.IMAGE_ID] and facts["patient"] == "205"
    same = images[images[S.PATIENTID] == "205"]
    same = same[same[S.OFFSET].notna()].sort_values([S.OFFSET, S.FILENAME, S.IMAGE_ID])
    assert facts["path"] == same.index.tolist()
    day = f"{row[S.OFFSET]:g}" if row[S.OFFSET] == row[S.OFFSET] else "unknown"
    assert facts["hover"][0] == f"patient 205 · day {day}"  # the hover's lines, as text
    assert facts["hover"][-1] == f"{row[S.COUNTRY]} · state: {row[S.STATE]}"
    by_id = client.get(f"/api/map/point?id={row[S.IMAGE_ID]}").get_json()
    assert by_id == facts
    for bad in ("i=-1", f"i={len(images)}", "id=nope"):
        assert client.get(f"/api/map/point?{bad}").status_code == 404
    assert client.get("/api/map/point?i=x").status_code == 400


def test_polygon_selection_summary_in_numpy(client, images):
    x, y = images[S.X], images[S.Y]
    eps = 1e-4 * float(np.ptp(x))  # no image on the polygon's border
    x0, x1 = np.percentile(x, [20, 70]) + eps
    y0, y1 = np.percentile(y, [10, 80]) + eps
    poly = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    r = client.post("/api/map/select?state=bad&day_from=0&day_to=20", json={"polygon": poly})
    got = r.get_json()
    inside = (x > x0) & (x < x1) & (y > y0) & (y < y1)
    chosen = images[inside & (images[S.STATE] == "bad") & (images[S.OFFSET] >= 0)
                    & (images[S.OFFSET] <= 20)]
    assert got["images"] == len(chosen) > 0
    assert got["patients"] == chosen[S.PATIENTID].nunique()
    assert [title for title, _ in got["counts"]] == ["State", "Outcome", "Finding group",
                                                     "Continent"]
    outcome = dict(map(tuple, dict(got["counts"])["Outcome"]))
    expected = chosen[S.SURVIVAL].map({"Y": "survived", "N": "died"}).fillna(
        chosen[S.SURVIVAL]).value_counts().to_dict()
    assert outcome == expected
    patients = sorted(images[S.PATIENTID].unique())
    assert sorted(patients[e] for e in got["episodes"]) == sorted(chosen[S.PATIENTID].unique())
    assert sorted(got["patient_ids"]) == sorted(chosen[S.PATIENTID].unique())
    # the chosen points, marked on the map: a bitmask, point i at byte i // 8, bit i % 8
    marked = unpack(base64.b64decode(got["marked"]), len(images))
    assert images[S.IMAGE_ID][marked].tolist() == chosen[S.IMAGE_ID].tolist()


@pytest.mark.parametrize("body, status", [
    ({"polygon": [[0, 0], [1, 1]]}, 400), ({"polygon": [[0, 0], [1, "a"], [2, 2]]}, 400),
    ({"polygon": [[0, 0], [1, 1], [float("nan"), 2]]}, 400), ({"nothing": 1}, 400),
    ({"polygon": [[i, i % 7] for i in range(600)]}, 400), ([1, 2, 3], 400)])
def test_selection_requests_are_checked(client, body, status):
    r = client.post("/api/map/select", data=json.dumps(body), content_type="application/json")
    assert r.status_code == status


def test_other_requests_are_checked(client, config):
    assert client.get("/api/map/mask?" + "sex=F&" * 300).status_code == 400
    assert client.get("/api/map/mask?patient=" + "x" * 20000).status_code == 400
    assert client.get("/api/map/edges?traj=selection&episodes=1,x").status_code == 400
    assert client.get(f"/api/map/edges?traj=selection&episodes={config['n_episodes']}") \
        .status_code == 400
    # a value no control has is ignored as the page ignores it: every image passes
    keep = unpack(client.get("/api/map/mask?sex=<script>").get_data(), config["n"])
    assert keep.all()


def test_config_carries_the_rules(config):
    from cxrviz.pages.map.time import SPEEDS

    words = config["day"]["words"]
    assert words["both"].format(lo=3, hi=10) == "days 3 to 10"
    assert words["from"].format(lo=-2, hi=None) == "days -2 and later"
    assert words["to"].format(lo=None, hi=5) == "days up to 5"
    assert config["speeds"] == SPEEDS
    assert config["edge_budget"] == 200_000
    assert len(config["colors"]["ramp"]) == 256
    assert config["opacity"]["dim"] < config["opacity"]["point"] <= 1


def test_the_page_html_carries_no_map_data_in_dashs_validation_layout(client):
    """Dash puts every page's layout into every page's HTML to validate callbacks; the map's
    figure and the time data there made 6 MB per page at 30,000 images. Only structure stays:
    every id is still there (callbacks validate), no figure or store data is."""
    import re

    html = client.get("/").get_data(as_text=True)
    config = json.loads(re.search(r'<script id="_dash-config" type="application/json">(.*?)'
                                  r'</script>', html, re.S).group(1))
    found, heavy = set(), []

    def walk(node):
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict) and "props" in node:
            props = node["props"]
            if "id" in props:
                found.add(json.dumps(props["id"], sort_keys=True))
            heavy.extend(k for k in ("figure", "data", "rowData") if props.get(k) is not None)
            walk(props.get("children"))

    walk(config["validation_layout"])
    assert not heavy
    assert {'"map"', '"selected-image"', '"time-data"'} <= found  # ids.MAP, ids.SELECTED, ids.TIME_DATA


def test_density_contours_lie_on_their_levels(client, covid_artifact):
    """8 levels evenly across the grid's range (ends left out), as the figure's contours; every
    point of a line lies where the grid (with its ring of zeros), interpolated, equals the
    line's level; colours along OrRd, lighter for lower levels."""
    from plotly.express.colors import sequential
    from plotly.colors import hex_to_rgb
    from scipy.interpolate import RegularGridInterpolator

    r = client.get("/api/map/contours", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    got = json.loads(gzip.decompress(r.get_data()))
    npz = np.load(covid_artifact.out / S.DENSITY_FILE)
    x, y, z = npz[S.DENSITY_X], npz[S.DENSITY_Y], npz[S.DENSITY_Z]
    lo, hi = float(z.min()), float(z.max())
    levels = [lo + (hi - lo) * k / 9 for k in range(1, 9)]
    np.testing.assert_allclose(got["levels"], levels, rtol=1e-12)
    sx, sy = x[1] - x[0], y[1] - y[0]
    grid = RegularGridInterpolator((np.r_[y[0] - sy, y, y[-1] + sy],
                                    np.r_[x[0] - sx, x, x[-1] + sx]), np.pad(z, 1))
    stops = np.array([hex_to_rgb(c) if c.startswith("#") else
                      [float(v) for v in c[c.index("(") + 1:-1].split(",")]
                      for c in sequential.OrRd], float)
    at = np.linspace(0, 1, len(stops))
    assert {line["level"] for line in got["lines"]} == set(got["levels"])
    for line in got["lines"]:
        path = np.asarray(line["path"])
        assert len(path) >= 3 and (path[0] == path[-1]).all()  # closed (the ring of zeros)
        np.testing.assert_allclose(grid(path[:, ::-1]), line["level"], atol=1e-4 * (hi - lo))
        want = [np.interp((line["level"] - lo) / (hi - lo), at, stops[:, c]) for c in range(3)]
        np.testing.assert_allclose(line["color"], want, atol=1.01)
    first, last = (next(l["color"] for l in got["lines"] if l["level"] == v)
                   for v in (got["levels"][0], got["levels"][-1]))
    assert sum(first) > sum(last)


def test_the_keys_the_browser_strips_before_asking_for_a_mask(client, config):
    """Every key the page writes into its URL is a filter (filters.all_keys) or one of the
    config's non_filter_keys, never both."""
    from urllib.parse import parse_qs

    from cxrviz.appstate import current
    from cxrviz.filters import all_keys
    from cxrviz.pages.map import urlstate

    store = current().store
    non = set(config["non_filter_keys"])
    assert not non & set(all_keys())
    view = {"color": "age", "show": ["density"], "density_style": "contours", "opacity": 0.3,
            "mode": "hide"}
    t = {"align": "first", "lo": -3, "hi": 9, "window": 4, "scope": "ids", "ids": "205"}
    page = urlstate.encode(store.default_filters(), view, store.image_ids[0], store, t).lstrip("?")
    written = set(parse_qs(page))
    assert written == {"color", "show", "density", "opacity", "mode", "image", "align",
                       "day_from", "day_to", "window", "traj", "traj_ids"}
    assert written <= non
    # such keys never change the mask
    plain = client.get("/api/map/mask?sex=F").get_data()
    assert client.get(f"/api/map/mask?sex=F&{page}").get_data() == plain
