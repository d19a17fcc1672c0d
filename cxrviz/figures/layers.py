"""The map's rules shared by the interactive map and the print builders: trajectory edges and
arrowheads, opacities, sizes, the density layer, the view's ranges, the upload markers.

The interactive map is the WebGL view (frontend/, fed by cxrviz/map_data.py): it draws with
these rules as map_columns.config hands them to it (opacity, sizes, ARROW_AT, UPLOAD_STYLE,
map_ranges); the print builders (paper.py) draw Plotly traces from `visible_edges`,
`trajectory_data` and `density_trace`. The app's legend and colour scales are HTML beside the
map (pages/map/legend.py); figures for papers carry their own (paper.py).
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from cxrviz import schema as S
from cxrviz.figures.palette import DENSITY_SCALE
from cxrviz.store import Store

PATH_TRACES = ("path_Y", "path_N", "path_unknown")  # trajectory_data's keys (paper.py's traces)
ARROW_TRACES = ("arrow_good", "arrow_bad", "arrow_unknown")
DIM_OPACITY = 0.12  # a filtered-out image, where filtered images are dimmed
POINT_OPACITY = 0.85
ARROW_AT = 0.8  # arrowheads sit 80% along each edge (at the image reached, in a day range)
ARROW_STEP = 15  # arrowhead angles in whole steps of 15 degrees: WebGL draws few distinct glyphs
ARROW_SIZE = 9  # px: screen-sized, so arrowheads stay visible at every zoom


def _gapped(columns) -> np.ndarray:
    """Polylines as one float array: each row of `columns` then a NaN (a gap in the line)."""
    if not len(columns[0]):
        return np.zeros(0, np.float32)
    stacked = np.column_stack([*columns, np.full(len(columns[0]), np.nan)])
    return stacked.ravel().astype(np.float32)


def arrow_angles(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Marker angle (degrees clockwise from up) pointing along (dx, dy) on equal axes."""
    angle = np.degrees(np.arctan2(dx, dy))
    return (np.round(angle / ARROW_STEP) * ARROW_STEP) % 360


def visible_edges(store: Store, shown: np.ndarray, patients=None):
    """Edges whose two images are shown, of the chosen patients (None: all)."""
    t = store.trajectories
    if not len(t):
        return t
    keep = shown[t["from_pos"].to_numpy()] & shown[t["to_pos"].to_numpy()]
    if patients is not None:
        keep &= t[S.PATIENTID].isin(list(patients)).to_numpy()
    return t[keep]


def trajectory_data(store: Store, edges, latest_only: bool = False) -> dict:
    """x / y (and angles) of the six trajectory traces: paths coloured by the patient's survival,
    arrowheads (screen-sized triangles pointing from the earlier to the later image) by the
    state arrived at. `latest_only`: one arrowhead per patient, on the latest image reached."""
    x, y = store.covid[S.X].to_numpy(np.float64), store.covid[S.Y].to_numpy(np.float64)
    a, b = edges["from_pos"].to_numpy(int), edges["to_pos"].to_numpy(int)
    out = {}
    for name, survival in zip(PATH_TRACES, (S.YES, S.NO, S.UNKNOWN)):
        m = (edges[S.SURVIVAL] == survival).to_numpy()
        out[name] = (_gapped([x[a[m]], x[b[m]]]), _gapped([y[a[m]], y[b[m]]]))
    heads = np.ones(len(edges), bool)
    at = ARROW_AT
    if latest_only and len(edges):  # edges are in time order within each episode
        heads = ~edges[S.EPISODE].duplicated(keep="last").to_numpy()
        at = 1.0
    dx, dy = x[b] - x[a], y[b] - y[a]
    for name, state in zip(ARROW_TRACES, (S.STATE_GOOD, S.STATE_BAD, S.STATE_UNKNOWN)):
        m = heads & (edges[S.TO_STATE] == state).to_numpy()
        out[name] = ((x[a[m]] + at * dx[m]).astype(np.float32),
                     (y[a[m]] + at * dy[m]).astype(np.float32), arrow_angles(dx[m], dy[m]))
    return out


def path_opacity(selected) -> float:
    """Trajectory lines: fainter while a patient is selected (that patient's path is drawn on
    top in full)."""
    return 0.25 if selected else 0.8


def arrow_opacity(selected) -> float:
    """Arrowheads: as path_opacity, fainter while a patient is selected."""
    return 0.3 if selected else 1.0


def density_trace(store: Store, style: str, opacity: float, visible: bool):
    """The bad-state density behind a printed map: a heatmap or contour lines (its colour bar:
    paper.py)."""
    d = store.artifact.density
    x, y, z = d[S.DENSITY_X], d[S.DENSITY_Y], d[S.DENSITY_Z]
    if style == "contours":
        dens = go.Contour(x=x, y=y, z=z,
                          colorscale=DENSITY_SCALE, contours={"coloring": "lines"},
                          line={"width": 1.2}, ncontours=8)
    else:
        dens = go.Heatmap(x=x, y=y, z=z, colorscale=DENSITY_SCALE, zsmooth="best")
    dens.update(name="bad-state density", opacity=opacity, hoverinfo="skip", visible=visible,
                showscale=False)
    return dens


def map_ranges(store: Store, margin: float = 0.04) -> tuple:
    """x and y ranges around every image, collection and reference, with a margin: the map's
    first view."""
    xs = np.r_[store.covid[S.X].to_numpy(float), store.rsna[S.X].to_numpy(float)]
    ys = np.r_[store.covid[S.Y].to_numpy(float), store.rsna[S.Y].to_numpy(float)]
    px, py = np.ptp(xs) * margin or 1.0, np.ptp(ys) * margin or 1.0
    return [float(xs.min() - px), float(xs.max() + px)], [float(ys.min() - py),
                                                          float(ys.max() + py)]


def percentile_ticks(store: Store) -> dict:
    """Density colour-bar ticks labelled as percentiles of the collection's images, spaced so
    that their labels never touch (the density is skewed: the 50th sits near zero)."""
    dens = store.covid[S.BAD_DENSITY].to_numpy()
    top = float(store.artifact.density[S.DENSITY_Z].max()) or 1.0
    vals, text = [], []
    for q in (99, 90, 75, 50):
        v = float(np.percentile(dens, q))
        if all(abs(v - u) >= 0.14 * top for u in vals):
            vals.append(v)
            text.append(f"{q}th")
    return {"tickvals": vals[::-1], "ticktext": text[::-1]}


# placed new images: numbered stars, distinct from every collection marker; one unlike anything
# the map was built from (out of distribution) is a larger hollow black star (no map colour is
# black). Keyed by "out of distribution".
UPLOAD_STYLE = {False: {"symbol": "star", "color": "#F0E442", "line": "#111111", "size": 20},
                True: {"symbol": "star-open", "color": "#111111", "line": "#111111", "size": 24}}
