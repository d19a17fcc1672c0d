"""What the WebGL map (frontend/, built into assets/map/) reads from the server, Dash-free.

The browser loads the points once as binary columns (little-endian typed arrays, zstd or gzip,
ETag = the artifact's id) and draws, filters and plays them on the GPU; everything it must know to draw
(colours, opacities, day labels, speeds, budgets) arrives in one JSON config built from the
Python rule modules (figures/palette.py, figures/layers.py, store.day_label, pages/map/time.py).
What needs the data's text (hover, click, the selection summary) is fetched by index, so the
payload holds no per-point text. Filters are computed here, by `Store.mask`, from the same query
string as the page's URL (pages/map/urlstate.decode), and sent as 1 bit per point.

Every request is validated: bounded query strings and bodies, indices in range, ids known.
The routes are registered by cxrviz/app.py (`register`); the column layouts by map_columns.py.
"""
from __future__ import annotations

import base64
import json

import numpy as np
from flask import Blueprint, Response, abort, jsonify, request

from cxrviz import map_columns as C
from cxrviz.map_columns import selection_counts
from cxrviz import schema as S
from cxrviz.encoding import ENCODINGS, compress
from cxrviz.polygons import MAX_POLYGON, inside_polygon, polygon_array  # noqa: F401
from cxrviz.appstate import current

MAX_QUERY_BYTES = 16 * 1024  # a page URL's query is far below this
MAX_VALUES_PER_KEY = 256
MAX_BODY_BYTES = 64 * 1024
MAX_EPISODES = 100_000  # episodes named in one trajectory request ("the selection")
EDGE_BUDGET = 200_000  # trajectory segments sent at most; beyond, the map says how many it left

blueprint = Blueprint("map_data", __name__, url_prefix="/api/map")


# ---- helpers ----------------------------------------------------------------------------------
def _store():
    return current().store


def _etag() -> str:
    return _store().artifact.artifact_id


def _encoded(payload: bytes, encoding: str, key) -> bytes:
    """A payload compressed; one that never changes while the app runs (`key`: the columns,
    per store) is compressed once, not per visit (10^6 points: most of a second in gzip)."""
    if key is None:
        return compress(payload, encoding, False)
    kept = _store().__dict__.setdefault("_map_encoded", {})
    if (key, encoding) not in kept:
        kept[(key, encoding)] = compress(payload, encoding, True)
    return kept[(key, encoding)]


def binary(payload: bytes, *, etag: str | None = None, headers: dict | None = None,
           mimetype: str = "application/octet-stream", compress: bool = True,
           fixed: str | None = None) -> Response:
    """Octet stream, zstd or gzip when the client takes one; 304 for a matching ETag. `fixed`
    names a payload that is the same for every request (its compressed body is kept)."""
    if etag and request.if_none_match.contains(etag):
        resp = Response(status=304)
        resp.set_etag(etag)
        return resp
    body, extra = payload, {}
    encoding = next((e for e in ENCODINGS if request.accept_encodings[e]), None)
    if compress and encoding:
        body, extra = _encoded(payload, encoding, fixed), {"Content-Encoding": encoding}
    resp = Response(body, mimetype=mimetype,
                    headers={**extra, **(headers or {}), "Vary": "Accept-Encoding"})
    if etag:
        resp.set_etag(etag)
        resp.headers["Cache-Control"] = "no-cache"  # revalidate: a new artifact, a new id
    return resp


def query_dict() -> dict:
    """The request's query string as Dash Pages hands it to `layout(**query)` (a value or a
    list of values per key), refused when larger than any page URL."""
    if len(request.query_string) > MAX_QUERY_BYTES:
        abort(400, f"query string longer than {MAX_QUERY_BYTES} bytes")
    out = {}
    for key, values in request.args.to_dict(flat=False).items():
        if len(values) > MAX_VALUES_PER_KEY:
            abort(400, f"{key}: more than {MAX_VALUES_PER_KEY} values")
        out[key] = values[0] if len(values) == 1 else values
    return out


def view_of(query: dict, store=None):
    """(filters, time part, selected image id) of a page query, as the page decodes it."""
    from cxrviz.pages.map import time as time_part
    from cxrviz.pages.map import urlstate

    store = _store() if store is None else store
    st = urlstate.decode(query, store)
    return st["filters"], time_part.decode(query, store), st["selected"]


def bits(mask: np.ndarray) -> bytes:
    """1 bit per point, point i in byte i // 8 at bit i % 8 (little bit order)."""
    return np.packbits(np.asarray(mask, bool), bitorder="little").tobytes()


def _index(value, n: int) -> int:
    try:
        i = int(value)
    except (TypeError, ValueError):
        abort(400, "index must be a whole number")
    if not 0 <= i < n:
        abort(404)
    return i


# ---- the points, once ------------------------------------------------------------------------
@blueprint.route("/config")
def config():
    """Every rule the browser applies, and the layout of the binary columns."""
    return jsonify(C.config(_store(), EDGE_BUDGET))


@blueprint.route("/points")
def points():
    return binary(C.points_payload(_store()), etag=_etag(), fixed="points")


@blueprint.route("/events")
def events():
    """Per alignment (config's alignments order), per episode: day 0's offset (NaN: none)."""
    return binary(C.events_payload(_store()), etag=_etag(), fixed="events")


@blueprint.route("/colors/<column>")
def colors(column):
    """The colour codes of one colour-by choice (uint8 per point; palette in the config)."""
    store = _store()
    if column not in C.color_columns(store):
        abort(404)
    return binary(C.color_codes(store, column).tobytes(), etag=f"{_etag()}-{column}",
                  fixed=f"colors/{column}")


@blueprint.route("/density.png")
def density():
    """The bad-state density as an image (figures' colour scale; bounds in the config)."""
    return binary(C.density_png(_store()), etag=_etag(), mimetype="image/png", compress=False)


@blueprint.route("/contours")
def contours():
    """The density's contour lines in map coordinates (map_columns.density_contours)."""
    body = json.dumps(C.density_contours(_store()), separators=(",", ":")).encode()
    return binary(body, etag=f"{_etag()}-contours", mimetype="application/json", fixed="contours")


@blueprint.route("/arrow.png")
def arrow():
    return binary(C.arrow_png(), etag="arrow-1", mimetype="image/png", compress=False)


@blueprint.route("/ids")
def image_ids():
    """Every point's image id in point order: for the test hook and reviewers (never drawn)."""
    return jsonify(_store().image_ids.tolist())


# ---- per view -------------------------------------------------------------------------------
@blueprint.route("/mask")
def mask():
    """The filters of a page query as a bitmask (then, where a range filter keeps unknown
    values, the bitmask of the points in only for that); what the count text needs in a
    header."""
    store = _store()
    filters, _, _ = view_of(query_dict())
    keep = store.mask(filters)
    unknown, names = store.unknown_kept(filters)
    body = bits(keep) + (bits(unknown & keep) if names else b"")
    info = {"n": len(keep), "passing": int(keep.sum()), "unknown_label": names or None,
            "emptied_by": None if keep.any() else store.emptied_by(filters)}
    return binary(body, headers={"X-Cxrviz-Mask": json.dumps(info, ensure_ascii=True)})


def scope_positions(store, t: dict, selected, episodes) -> np.ndarray | None:
    """Row positions into store.trajectories of the episodes whose paths are drawn (None: all,
    the GPU then keeps those whose two images are shown). One rule with the figure's
    (pages/map/time.trajectory_patients); 'the selection' names its episodes."""
    from cxrviz.pages.map.time import trajectory_patients

    traj = store.trajectories
    if t["scope"] == "all":
        return None
    if t["scope"] == "selection":  # episodes: rows of store.patients
        return np.flatnonzero(np.isin(store.edge_episodes, np.asarray(episodes, dtype=int)))
    wanted = trajectory_patients(t, selected, store)  # patient ids: all their episodes
    return np.flatnonzero(traj[S.PATIENTID].isin(list(wanted)).to_numpy())


def _episodes(query: dict) -> list:
    raw = query.get("episodes") or ""
    raw = ",".join(raw) if isinstance(raw, list) else raw
    try:
        out = {int(v) for v in raw.split(",") if v.strip()}
    except ValueError:
        abort(400, "episodes: whole numbers, comma-separated")
    if len(out) > MAX_EPISODES or any(not 0 <= e < len(_store().patients) for e in out):
        abort(400, "episodes: out of range or too many")
    return sorted(out)


@blueprint.route("/edges")
def edges():
    """Trajectory segments of the episodes in scope: from, to (uint32 point indices), then
    survival and arrival-state codes (uint8; config's edge palettes), at most EDGE_BUDGET."""
    store = _store()
    query = query_dict()
    _, t, selected = view_of(query)
    rows = scope_positions(store, t, selected, _episodes(query))
    traj = store.trajectories
    rows = np.arange(len(traj)) if rows is None else rows
    sent = rows[:EDGE_BUDGET]
    body = C.edges_payload(store, sent)
    info = {"n": len(sent), "left_out": int(len(rows) - len(sent)), "scope": t["scope"]}
    return binary(body, headers={"X-Cxrviz-Edges": json.dumps(info, ensure_ascii=True)})


def patient_path(store, pos: int) -> list:
    """The point's patient's images in time order, as the selected path draws them
    (figures.layers.highlight_path's rule: the dated ones where more than one is dated)."""
    order = store.patient_positions[store.covid[S.PATIENTID].iat[pos]]
    dated = order[np.isfinite(store.covid[S.OFFSET].to_numpy(float)[order])]
    return (dated if len(dated) > 1 else order).tolist()


@blueprint.route("/point")
def point():
    """What hover and click show for one point, by index (i=) or image id (id=): JSON, text
    as data (the browser sets it as text, never as HTML). `hover`: the tooltip's lines, by the
    artifact's own fields (cxrviz/fields.py: no country line on a MIMIC map; CheXpert labels
    where it has them)."""
    from cxrviz.fields import hover_lines

    store = _store()
    args = query_dict()
    if "id" in args:
        pos = store.position.get(str(args["id"]))
        if pos is None:
            abort(404)
    else:
        pos = _index(args.get("i"), len(store.covid))
    row = store.covid.iloc[pos]
    day = row[S.OFFSET]
    return jsonify({
        "index": pos, "image_id": row[S.IMAGE_ID], "patient": str(row[S.PATIENTID]),
        "patient_index": int(store.patient_index[pos]), "episode": int(store.episode_index[pos]),
        "day": None if day != day else float(day),
        "hover": hover_lines(store, [pos])[0], "path": patient_path(store, pos)})


def query_of(text: str) -> dict:
    """A page query string -> the dict `layout(**query)` gets (bounded as query_dict)."""
    from urllib.parse import parse_qs

    text = str(text or "").lstrip("?")
    if len(text) > MAX_QUERY_BYTES:
        raise ValueError(f"query string longer than {MAX_QUERY_BYTES} bytes")
    out = {}
    for key, values in parse_qs(text, keep_blank_values=True).items():
        if len(values) > MAX_VALUES_PER_KEY:
            raise ValueError(f"{key}: more than {MAX_VALUES_PER_KEY} values")
        out[key] = values[0] if len(values) == 1 else values
    return out


def shown_in_polygon(store, poly: np.ndarray, query: dict) -> np.ndarray:
    """The points inside the polygon among those the query shows (filters and day range): the
    one rule of a box / lasso, for /select here and the page's summary and export."""
    filters, t, _ = view_of(query, store)
    shown = store.mask(filters)
    in_days = store.day_mask(t["align"], t["lo"], t["hi"])
    if in_days is not None:
        shown &= in_days
    x, y = store.covid[S.X].to_numpy(float), store.covid[S.Y].to_numpy(float)
    return shown & inside_polygon(x, y, poly)


def selected_mask(store, polygon, query: str) -> np.ndarray:
    """MAP_SELECTION's {polygon, query} -> the selected points; none for a malformed one (the
    store reaches the server from the browser: checked like a request)."""
    try:
        return shown_in_polygon(store, polygon_array(polygon), query_of(query))
    except ValueError:
        return np.zeros(len(store.covid), bool)


def _polygon() -> np.ndarray:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        abort(413)
    body = request.get_json(silent=True)
    try:
        return polygon_array(body.get("polygon") if isinstance(body, dict) else None)
    except ValueError as exc:
        abort(400, str(exc))


@blueprint.route("/select", methods=["POST"])
def select():
    """A box or lasso (the polygon, in map coordinates) over the points shown by the page's
    query (filters and day range): how many images and patients, counted by state, outcome,
    finding group and continent ([title, [[value in words, count], ...]] in that order); the
    episodes, for 'trajectories of the selection'; the chosen points as a bitmask (base64 of
    `bits`), which the map marks."""
    store = _store()
    chosen = shown_in_polygon(store, _polygon(), query_dict())
    rows = store.covid[chosen]
    episodes = np.unique(store.episode_index[chosen])
    counts = selection_counts(store, rows)  # a list: in this order (an object's keys get sorted)
    return jsonify({"images": int(chosen.sum()), "patients": int(rows[S.PATIENTID].nunique()),
                    "counts": counts, "episodes": episodes[:MAX_EPISODES].tolist(),
                    "patient_ids": sorted(set(store.patients[S.PATIENTID].to_numpy(object)[
                        episodes[:MAX_EPISODES]])),
                    "marked": base64.b64encode(bits(chosen)).decode("ascii")})


def register(server) -> None:
    """Add the routes to the app's Flask server (cxrviz/app.py)."""
    server.register_blueprint(blueprint)
