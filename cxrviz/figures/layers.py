"""The map: pure builders of its traces and of the whole figure (shared by the app and exports).

The map's traces always come in the same order (TRACE), so callbacks patch one trace in the
browser (dash.Patch, or the clientside view in assets/cxrviz.js) instead of sending the figure.
The app's legend and colour scales are HTML beside the plot (pages/map/legend.py), so the plot
fills its panel; figures for papers carry their own (paper.py).
assets/cxrviz.js draws points and trajectories for a day range with the same rules as
`point_positions` and `trajectory_data` here; the browser tests hold the two together.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from cxrviz import fields
from cxrviz import schema as S
from cxrviz.figures.palette import (DENSITY_SCALE, STATE_COLORS, SURVIVAL_COLORS, SURVIVAL_NAMES,
                                    point_colors)
from cxrviz.store import Store

TRACE = {"density": 0, "rsna": 1, "path_Y": 2, "path_N": 3, "path_unknown": 4,
         "arrow_good": 5, "arrow_bad": 6, "arrow_unknown": 7, "points": 8, "hover": 9,
         "highlight": 10, "selected": 11, "uploads": 12}
PATH_TRACES = ("path_Y", "path_N", "path_unknown")
ARROW_TRACES = ("arrow_good", "arrow_bad", "arrow_unknown")
TRAJECTORY_TRACES = PATH_TRACES + ARROW_TRACES
DIM_OPACITY = 0.12
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


def point_positions(store: Store, keep: np.ndarray, filtered_mode: str, selected,
                    in_days: np.ndarray | None = None) -> dict:
    """x, y and opacity of the main trace: images outside the day range are hidden (no x / y),
    filtered-out ones hidden or dimmed; with a patient selected, everyone else is dimmed."""
    x, y = store.covid[S.X].to_numpy(np.float32), store.covid[S.Y].to_numpy(np.float32)
    base = np.full(len(keep), POINT_OPACITY, dtype=np.float32)
    if selected and selected in store.position:
        patient = store.patient_index[store.position[selected]]
        base = np.where(store.patient_index == patient, 1.0, 0.3).astype(np.float32)
    hidden = np.zeros(len(keep), bool) if in_days is None else ~in_days
    if filtered_mode == "hide":
        hidden |= ~keep
        opacity = base
    else:
        opacity = np.where(keep, base, DIM_OPACITY).astype(np.float32)
    return {"x": np.where(hidden, np.nan, x).astype(np.float32),
            "y": np.where(hidden, np.nan, y).astype(np.float32), "opacity": opacity}


def path_opacity(selected) -> float:
    return 0.25 if selected else 0.8


def arrow_opacity(selected) -> float:
    return 0.3 if selected else 1.0


def trajectory_traces(store: Store, edges, latest_only: bool, selected, visible: bool) -> list:
    data = trajectory_data(store, edges, latest_only)
    traces = []
    for name in PATH_TRACES:
        key = name.split("_", 1)[1]
        traces.append(go.Scattergl(
            x=data[name][0], y=data[name][1], mode="lines",
            name=f"trajectory: {SURVIVAL_NAMES[key]}", legendgroup="trajectories",
            line={"color": SURVIVAL_COLORS[key], "width": 1.3}, hoverinfo="skip",
            opacity=path_opacity(selected), visible=visible))
    for name in ARROW_TRACES:
        key = name.split("_", 1)[1]
        traces.append(go.Scattergl(
            x=data[name][0], y=data[name][1], mode="markers", name=f"arrow into {key} state",
            legendgroup="trajectories", hoverinfo="skip", opacity=arrow_opacity(selected),
            marker={"symbol": "triangle-up", "size": ARROW_SIZE, "angle": data[name][2],
                    "color": STATE_COLORS[key], "line": {"width": 0}}, visible=visible))
    return traces


def map_figure(store: Store, *, color_by: str = S.STATE, keep: np.ndarray | None = None,
               filtered_mode: str = "dim", show=("density", "trajectories", "rsna"),
               density_style: str = "heatmap", density_opacity: float = 0.55,
               selected: str | None = None, uploads=None, in_days: np.ndarray | None = None,
               trajectory_patients=None, export: bool = False) -> go.Figure:
    """in_days: per image, inside the day range (None: no range). trajectory_patients: whose
    trajectories to draw (None: every patient shown)."""
    keep = np.ones(len(store.covid), bool) if keep is None else keep
    shown = keep if in_days is None else keep & in_days
    show = set(show or ())
    fig = go.Figure()
    fig.add_trace(density_trace(store, density_style, density_opacity, "density" in show))
    fig.add_trace(go.Scattergl(
        x=store.rsna[S.X], y=store.rsna[S.Y], mode="markers", name="RSNA pneumonia (reference)",
        marker={"color": "#D9D9D9", "size": 4}, hoverinfo="skip",
        visible=bool("rsna" in show and len(store.rsna))))
    edges = visible_edges(store, shown, trajectory_patients)
    fig.add_traces(trajectory_traces(store, edges, in_days is not None, selected,
                                     "trajectories" in show))
    colors = point_colors(store, color_by)
    points = point_positions(store, keep, filtered_mode, selected, in_days)
    fig.add_trace(go.Scattergl(
        x=points["x"], y=points["y"], mode="markers", name="images",
        customdata=store.image_ids,
        text=hover_texts(store), hovertemplate="%{text}<extra></extra>", showlegend=False,
        marker={**colors["marker"], "showscale": False, "size": 7,
                "opacity": points["opacity"], "line": {"width": 0.4, "color": "white"}}))
    fig.add_trace(go.Scatter(x=[], y=[], mode="lines", name="hovered patient",
                             line={"color": "#444", "width": 2, "dash": "dot"},
                             hoverinfo="skip", showlegend=False))
    hx, hy = highlight_path(store, selected)
    fig.add_trace(go.Scatter(x=hx, y=hy, mode="lines+markers", name="selected patient",
                             line={"color": "#111", "width": 2.5},
                             marker={"size": 9, "color": "#111", "symbol": "circle-open"},
                             hoverinfo="skip", showlegend=False))
    sx, sy = selected_point(store, selected)
    fig.add_trace(go.Scatter(x=sx, y=sy, mode="markers", name="selected image",
                             marker={"size": 18, "symbol": "circle-open", "color": "#111",
                                     "line": {"width": 3}},
                             hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scattergl(**uploads_trace(uploads)))
    xr, yr = map_ranges(store)
    fig.update_layout(  # the plot fills its panel (legend and colour scales: legend.py)
        margin={"l": 4, "r": 4, "t": 4, "b": 4}, showlegend=False,
        xaxis={"showgrid": False, "zeroline": False, "showticklabels": False, "title": None,
               "constrain": "range", "range": xr},
        yaxis={"showgrid": False, "zeroline": False, "showticklabels": False, "title": None,
               "scaleanchor": "x", "scaleratio": 1, "constrain": "range", "range": yr},
        clickmode="event", dragmode="zoom", uirevision="map", hovermode="closest",
        paper_bgcolor="white", plot_bgcolor="white")
    if store.warning:  # inside the plot's top edge, on every view and screenshot of it
        fig.add_annotation(text=f"⚠ {store.warning}", xref="paper", yref="paper", x=0.0,
                           xanchor="left", y=1.0, yanchor="top", showarrow=False,
                           font={"color": "#B00020", "size": 13}, bgcolor="#FFF0F0",
                           bordercolor="#B00020", borderwidth=1)
    if export:
        fig.update_layout(uirevision=None)
    return fig


def density_trace(store: Store, style: str, opacity: float, visible: bool, pad: bool = True):
    """The bad-state density behind the map: a heatmap or contour lines, with its colour bar."""
    d = store.artifact.density
    x, y, z = ((_padded if pad else lambda *a: a)(d[S.DENSITY_X], d[S.DENSITY_Y],
                                                    d[S.DENSITY_Z]))
    if style == "contours":
        dens = go.Contour(x=x, y=y, z=z,
                          colorscale=DENSITY_SCALE, contours={"coloring": "lines"},
                          line={"width": 1.2}, ncontours=8)
    else:
        dens = go.Heatmap(x=x, y=y, z=z, colorscale=DENSITY_SCALE, zsmooth="best")
    dens.update(name="bad-state density", opacity=opacity, hoverinfo="skip", visible=visible,
                showscale=False)
    return dens


def _padded(x, y, z, reach: float = 20.0):
    """The density grid with a border of zeros far beyond it: the background then covers the
    whole plot, whatever its aspect ratio (the axes' ranges keep the view on the map)."""
    dx, dy = (x[-1] - x[0]) * reach, (y[-1] - y[0]) * reach
    sx, sy = x[1] - x[0], y[1] - y[0]  # a ring of zeros at the grid's own spacing first, so
    x = np.r_[x[0] - dx, x[0] - sx, x, x[-1] + sx, x[-1] + dx]  # smoothing fades to zero there
    y = np.r_[y[0] - dy, y[0] - sy, y, y[-1] + sy, y[-1] + dy]
    return x, y, np.pad(z, 2)


def map_ranges(store: Store, margin: float = 0.04) -> tuple:
    """x and y ranges around every image (the heatmap's far border stays out of view)."""
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


def hover_texts(store: Store) -> np.ndarray:
    """One hover label per collection image, built once per store by cxrviz.fields (which fields,
    in which order, in the screen's words, escaped: data is never markup)."""
    cached = store.__dict__.get("_hover_texts")
    if cached is None:
        cached = store.__dict__["_hover_texts"] = fields.hover_texts(store)
    return cached  # numpy: plotly validates it in bulk


UPLOAD_STYLE = {False: {"symbol": "star", "color": "#F0E442", "line": "#111111", "size": 20},
                True: {"symbol": "star-open", "color": "#111111", "line": "#111111", "size": 24}}
UPLOAD_HOVER = {False: "your image {n}",
                True: "your image {n}: unlike anything the map was built from"}


def uploads_trace(uploads) -> dict:
    """Placed new images: numbered stars, distinct from every collection marker, drawn above
    the map's points (WebGL, the last trace); one unlike anything the map was built from
    (out of distribution) is a larger hollow black star (no map colour is black)."""
    uploads = uploads or []
    ood = [bool(u.get("out_of_distribution")) for u in uploads]
    return {"x": [u["x"] for u in uploads],
            "y": [u["y"] for u in uploads],
            "text": [str(u["n"]) for u in uploads], "mode": "markers+text",
            "name": "your images", "textposition": "top center",
            "textfont": {"size": 14, "color": [UPLOAD_STYLE[o]["line"] for o in ood]},
            "marker": {"symbol": [UPLOAD_STYLE[o]["symbol"] for o in ood],
                       "size": [UPLOAD_STYLE[o]["size"] for o in ood],
                       "color": [UPLOAD_STYLE[o]["color"] for o in ood],
                       "line": {"width": 2.5,
                                "color": [UPLOAD_STYLE[o]["line"] for o in ood]}},
            "hovertext": [UPLOAD_HOVER[o].format(n=u["n"]) for o, u in zip(ood, uploads)],
            "hovertemplate": "%{hovertext}<extra></extra>",
            "showlegend": bool(uploads)}


def highlight_path(store: Store, selected: str | None):
    row = store.row(selected) if selected else None
    if row is None or row[S.SOURCE] != S.SOURCE_COVID:
        return [], []
    rows = store.patient_images(row[S.PATIENTID])
    rows = rows[rows[S.OFFSET].notna()] if rows[S.OFFSET].notna().sum() > 1 else rows
    return rows[S.X].tolist(), rows[S.Y].tolist()


def selected_point(store: Store, selected: str | None):
    row = store.row(selected) if selected else None
    return ([float(row[S.X])], [float(row[S.Y])]) if row is not None else ([], [])
