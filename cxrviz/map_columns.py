"""The WebGL map's binary columns and its JSON config, built once per store from the Python rules.

Columns are little-endian typed arrays laid end to end, each starting on a 4-byte boundary; the
config names each one's dtype, byte offset and length, so the browser makes typed-array views
of one buffer without copying. Colours, opacities, sizes, day labels, playback speeds and
budgets come from figures/palette.py, figures/layers.py, store.day_label and pages/map/time.py:
the browser applies them, it does not hold rules of its own.
"""
from __future__ import annotations

import io

import numpy as np
from plotly import colors as plotly_colors

from cxrviz import ids
from cxrviz import schema as S
from cxrviz import words
from cxrviz.compute.timeline import ALIGNMENTS
from cxrviz.filters import all_keys
from cxrviz.store import CATEGORICAL, day_label

RAMP_STEPS = 255  # continuous colours: codes 0..254 along the scale, 255 = unknown (grey)
UNKNOWN_CODE = 255
SURVIVAL_CODES = {S.YES: 0, S.NO: 1, S.UNKNOWN: 2}  # edge palettes' order
STATE_CODES = {S.STATE_GOOD: 0, S.STATE_BAD: 1, S.STATE_UNKNOWN: 2}
REFERENCE_COLOR = "#D9D9D9"  # the reference cloud (light grey, under the cohort's points)
POINT_SIZE = 7  # px, as the figure's marker size (a diameter)
DENSITY_PATH = "/api/map/density.png"
CONTOURS_PATH = "/api/map/contours"
N_CONTOURS = 8  # levels, as figures.layers.density_trace's contours (ncontours=8)
CONTOUR_WIDTH = 1.2  # px, as density_trace's contour lines
SELECTION_DIM = 0.2  # outside a box / lasso selection: this times the point's opacity, as
#                      plotly.js dims unselected points (its DESELECTDIM)
ARROW_AT_LATEST = 1.0  # in a day range, figures.layers.trajectory_data's one arrowhead per
#                        episode sits at the end of its latest shown step

# The keys of a page query that are not filters (pages/map/urlstate.py: view and selection;
# pages/map/time.py: time and trajectories; the legend's hidden categories): the browser strips
# them before asking /mask, so that only a filter change asks for a new mask.
NON_FILTER_KEYS = tuple(k for k in (
    "image", "color", "show", "density", "opacity", "mode", "hidden",
    "align", "day_from", "day_to", "window", "traj", "traj_ids") if k not in all_keys())


def _cached(store, key, build):
    cache = store.__dict__.setdefault("_map_columns", {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


def rgb(color: str) -> list:
    """'#RRGGBB' or 'rgb(r, g, b)' -> [r, g, b] (what deck.gl takes)."""
    if color.startswith("#"):
        return list(plotly_colors.hex_to_rgb(color))
    return [int(round(v)) for v in plotly_colors.unlabel_rgb(color)]


def pack(columns: list) -> tuple:
    """[(name, array)] -> (bytes, layout): arrays end to end, each 4-byte aligned."""
    parts, layout, offset = [], [], 0
    for name, arr in columns:
        raw = np.ascontiguousarray(arr).tobytes()
        layout.append({"name": name, "dtype": np.asarray(arr).dtype.str.lstrip("<|"),
                       "offset": offset, "length": int(np.asarray(arr).size)})
        pad = (-len(raw)) % 4
        parts.append(raw + b"\0" * pad)
        offset += len(raw) + pad
    return b"".join(parts), layout


def _point_columns(store) -> list:
    c, r = store.covid, store.rsna
    return [("x", c[S.X].to_numpy("<f4")), ("y", c[S.Y].to_numpy("<f4")),
            # its episode's row in store.patients (the unit of day 0 and of a trajectory: an
            # admission in MIMIC, the patient in the collection)
            ("episode", store.episode_index.astype("<u4")),
            ("day", c[S.OFFSET].to_numpy("<f4")),
            ("density_percentile", np.clip(np.nan_to_num(store.density_percentile), 0, 100)
             .round().astype("u1")),
            ("reference_x", r[S.X].to_numpy("<f4")), ("reference_y", r[S.Y].to_numpy("<f4")),
            # per episode (not per image: 4 bytes an image fewer), its patient's number
            ("episode_patient", episode_patients(store))]


def episode_patients(store) -> np.ndarray:
    """uint32 per episode: the number of the patient it belongs to (store.patient_index)."""
    out = np.zeros(len(store.patients), "<u4")
    out[store.episode_index] = store.patient_index
    return out


def points_payload(store) -> bytes:
    return _cached(store, "points", lambda: pack(_point_columns(store)))[0]


def points_layout(store) -> list:
    return _cached(store, "points", lambda: pack(_point_columns(store)))[1]


def events_payload(store) -> bytes:
    """float32[alignment][episode], alignments in ALIGNMENTS order (timeline.event_offsets)."""
    return _cached(store, "events", lambda: np.stack(
        [store.events(a) for a in ALIGNMENTS]).astype("<f4").tobytes())


def color_columns(store) -> list:
    from cxrviz.figures.palette import color_options

    return [o["value"] for o in color_options(store)]


def _continuous(store, column) -> tuple:
    """(codes, palette) of a continuous colour: figures.palette.point_colors' values and
    range, quantised to RAMP_STEPS steps; unknown values (below its scale) -> UNKNOWN_CODE."""
    from cxrviz.figures.palette import point_colors

    colors = point_colors(store, column)
    m = colors["marker"]
    values, lo, hi = np.asarray(m["color"], float), float(m["cmin"]), float(m["cmax"])
    unknown = np.zeros(len(values), bool)
    if colors["legend"]:  # point_colors puts unknowns at cmin, a grey band below the scale
        unknown = values <= lo
        lo = lo + (hi - lo) * 0.04 / 1.04
    span = (hi - lo) or 1.0
    codes = np.clip(np.round((values - lo) / span * (RAMP_STEPS - 1)), 0, RAMP_STEPS - 1)
    codes = np.where(unknown, UNKNOWN_CODE, codes).astype("u1")
    return codes, {"kind": "continuous", "title": colors["title"], "lo": lo, "hi": hi,
                   "unknown": next(iter(colors["legend"]), None)}


def color_codes(store, column) -> np.ndarray:
    """uint8 per point: the category's index in the palette, or a step along the ramp."""
    from cxrviz.figures.palette import point_colors

    def build():
        if column in CATEGORICAL:
            return np.asarray(point_colors(store, column)["marker"]["color"]).astype("u1")
        return _continuous(store, column)[0]
    return _cached(store, ("codes", column), build)


def palettes(store) -> dict:
    from cxrviz.figures.palette import (CONTINUOUS_SCALE, GREY, category_colors, point_colors)

    def build():
        out = {}
        for column in color_columns(store):
            if column in CATEGORICAL:
                colors = category_colors(store, column)
                out[column] = {"kind": "categorical", "title": point_colors(store, column)["title"],
                               "categories": list(colors), "colors": [rgb(c) for c in
                                                                      colors.values()]}
            else:
                out[column] = _continuous(store, column)[1]
        ramp = plotly_colors.sample_colorscale(
            CONTINUOUS_SCALE, list(np.linspace(0, 1, RAMP_STEPS)))
        return {"columns": out, "ramp": [rgb(c) for c in ramp] + [rgb(GREY)]}
    return _cached(store, "palettes", build)


def edges_payload(store, rows: np.ndarray) -> bytes:
    """from, to (uint32), survival, arrival state (uint8), episode (uint32: its row in
    store.patients, what one arrowhead per episode counts by) of the trajectory rows `rows`."""
    t = store.trajectories.iloc[rows]
    return pack([("from", t["from_pos"].to_numpy("<u4")), ("to", t["to_pos"].to_numpy("<u4")),
                 ("survival", t[S.SURVIVAL].map(SURVIVAL_CODES).fillna(2).to_numpy("u1")),
                 ("to_state", t[S.TO_STATE].map(STATE_CODES).fillna(2).to_numpy("u1")),
                 ("episode", store.edge_episodes[rows].astype("<u4"))])[0]


def density_png(store) -> bytes:
    """The density grid in the figures' density colour scale (rows top first), as a PNG."""
    from PIL import Image

    from cxrviz.figures.palette import DENSITY_SCALE

    def build():
        z = np.asarray(store.artifact.density[S.DENSITY_Z], float)
        top = float(np.nanmax(z)) or 1.0
        scale = np.array([rgb(c) for c in plotly_colors.sample_colorscale(
            DENSITY_SCALE, list(np.linspace(0, 1, 256)))], np.uint8)
        img = scale[np.clip(np.nan_to_num(z / top) * 255, 0, 255).astype(int)][::-1]
        buf = io.BytesIO()
        Image.fromarray(img, "RGB").save(buf, format="PNG")
        return buf.getvalue()
    return _cached(store, "density", build)


def arrow_png() -> bytes:
    """An arrowhead pointing right (+x), white on transparent: the map tints and turns it."""
    from PIL import Image, ImageDraw

    im = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(im).polygon([(58, 32), (10, 8), (10, 56)], fill=(255, 255, 255, 255))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def density_bounds(store) -> list:
    """[left, bottom, right, top] of the grid's cells (its x / y are cell centres)."""
    d = store.artifact.density
    x, y = np.asarray(d[S.DENSITY_X], float), np.asarray(d[S.DENSITY_Y], float)
    hx, hy = (x[1] - x[0]) / 2 if len(x) > 1 else 0.5, (y[1] - y[0]) / 2 if len(y) > 1 else 0.5
    return [float(x[0] - hx), float(y[0] - hy), float(x[-1] + hx), float(y[-1] + hy)]


def density_contours(store) -> dict:
    """The density's contour lines, as figures.layers.density_trace draws them: N_CONTOURS
    levels evenly across the grid's range (its ends left out), each coloured by DENSITY_SCALE at
    the level's place in that range. The grid gets a ring of zeros one cell wide, so that lines
    near its border close (the density falls to zero there). {levels, lines: [{level, color,
    path}]}."""
    from skimage.measure import find_contours

    from cxrviz.figures.palette import DENSITY_SCALE

    def build():
        d = store.artifact.density
        x, y = np.asarray(d[S.DENSITY_X], float), np.asarray(d[S.DENSITY_Y], float)
        z = np.nan_to_num(np.asarray(d[S.DENSITY_Z], float))
        lo, hi = float(z.min()), float(z.max())
        if not hi > lo:
            return {"levels": [], "lines": []}
        sx, sy = (x[1] - x[0] if len(x) > 1 else 1.0), (y[1] - y[0] if len(y) > 1 else 1.0)
        px, py, pz = np.r_[x[0] - sx, x, x[-1] + sx], np.r_[y[0] - sy, y, y[-1] + sy], np.pad(z, 1)
        levels = np.linspace(lo, hi, N_CONTOURS + 2)[1:-1]
        colors = plotly_colors.sample_colorscale(DENSITY_SCALE, list((levels - lo) / (hi - lo)))
        lines = []
        for level, color in zip(levels, colors):
            for rc in find_contours(pz, level):  # (row, column) = (y, x) fractional indices
                path = np.c_[np.interp(rc[:, 1], np.arange(len(px)), px),
                             np.interp(rc[:, 0], np.arange(len(py)), py)]
                lines.append({"level": float(level), "color": rgb(color),
                              "path": path.round(6).tolist()})
        return {"levels": levels.tolist(), "lines": lines}
    return _cached(store, "contours", build)


def day_words() -> dict:
    """store.day_label's three shapes with {lo} / {hi} where the numbers go."""
    a, b = 1357, 2468  # numbers that ":g" writes as they are
    sub = {str(a): "{lo}", str(b): "{hi}"}

    def fill(text):
        for k, v in sub.items():
            text = text.replace(k, v)
        return text
    return {"both": fill(day_label(a, b)), "from": fill(day_label(a, None)),
            "to": fill(day_label(None, b))}


def config(store, edge_budget: int) -> dict:
    from cxrviz.figures import layers
    from cxrviz.figures.palette import STATE_COLORS, SURVIVAL_COLORS
    from cxrviz.pages.map import time as time_part
    from cxrviz.pages.map.urlstate import DEFAULT_VIEW

    def build():
        xr, yr = layers.map_ranges(store)
        return {
            "artifact": store.artifact.artifact_id, "n": len(store.covid),
            "n_reference": len(store.rsna), "n_episodes": len(store.patients),
            "n_patients": len(store.patient_ids),
            "unit_word": words.unit_word(store.episodes_are_patients),
            "n_edges": len(store.trajectories), "points": points_layout(store),
            "alignments": list(ALIGNMENTS), "align_events": time_part.ALIGN_EVENTS,
            "colors": palettes(store), "default_color": DEFAULT_VIEW["color"],
            "edge_colors": {"survival": [rgb(SURVIVAL_COLORS[k]) for k in SURVIVAL_CODES],
                            "to_state": [rgb(STATE_COLORS[k]) for k in STATE_CODES]},
            "reference_color": rgb(REFERENCE_COLOR),
            "opacity": {"point": layers.POINT_OPACITY, "dim": layers.DIM_OPACITY,
                        "patient": 1.0, "others": 0.3,
                        "path": [layers.path_opacity(None), layers.path_opacity("x")],
                        "arrow": [layers.arrow_opacity(None), layers.arrow_opacity("x")],
                        "density": DEFAULT_VIEW["opacity"], "unselected": SELECTION_DIM},
            "sizes": {"point": POINT_SIZE, "arrow": layers.ARROW_SIZE,
                      "arrow_at": layers.ARROW_AT, "arrow_at_latest": ARROW_AT_LATEST,
                      "contour": CONTOUR_WIDTH},
            # trajectory_data(latest_only=in a day range): one arrowhead per episode, on its
            # latest shown step; otherwise one on every shown step
            "arrows_latest_only_when_timed": True,
            "day": {"lo": time_part.DAY_LO, "hi": time_part.DAY_HI, "words": day_words()},
            "speeds": time_part.SPEEDS, "many_edges": time_part.MANY_EDGES,
            "default_scope": time_part.default_scope(store), "edge_budget": edge_budget,
            "ranges": {"x": xr, "y": yr}, "warning": store.warning,
            "density": {"url": DENSITY_PATH, "bounds": density_bounds(store),
                        "contours": CONTOURS_PATH},
            "uploads": {kind: {"fill": rgb(st["color"]), "line": rgb(st["line"]),
                               "size": st["size"], "hollow": st["symbol"].endswith("-open")}
                        for kind, st in (("placed", layers.UPLOAD_STYLE[False]),
                                         ("unlike", layers.UPLOAD_STYLE[True]))},
            "ids": {"map": ids.MAP, "count": ids.COUNT, "time_note": ids.TIME_NOTE,
                    "map_click": ids.MAP_CLICK, "map_selection": ids.MAP_SELECTION},
            "non_filter_keys": list(NON_FILTER_KEYS),
        }
    return _cached(store, "config", build)


SUMMARY_COLUMNS = ((S.STATE, "State"), (S.SURVIVAL, "Outcome"),
                   (S.FINDING_GROUP, "Finding group"), (S.CONTINENT, "Continent"))


def selection_counts(store, rows) -> list:
    """A box / lasso selection's summary: [[title, [[value words, count], ...]], ...] for the
    summary columns this artifact has values for (Store.has_known: no continent on a MIMIC
    map). One rule for the Plotly map's panel and the WebGL map's /api/map/select."""
    return [[title, [[words.value(col, k), int(v)] for k, v in rows[col].value_counts().items()]]
            for col, title in SUMMARY_COLUMNS if col == S.STATE or store.has_known(col)]

