"""Pure figure builders (go.Figure in, nothing else touched), shared by the app and the exporter.

The map's traces always come in the same order (see TRACE), so callbacks can patch one trace of
the figure in the browser (dash.Patch) instead of sending the whole figure again.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from cxrviz import schema as S
from cxrviz.store import CATEGORICAL, Store

# Okabe & Ito's colour-blind-safe palette.
OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
             "#000000"]
GREY = "#B8B8B8"
STATE_COLORS = {S.STATE_GOOD: "#0072B2", S.STATE_BAD: "#D55E00", S.STATE_UNKNOWN: GREY}
SURVIVAL_COLORS = {S.YES: "#009E73", S.NO: "#CC79A7", S.UNKNOWN: "#9A9A9A"}
SURVIVAL_NAMES = {S.YES: "survived", S.NO: "died", S.UNKNOWN: "outcome unknown"}
CONTINUOUS_SCALE = "Viridis"
DENSITY_SCALE = "OrRd"

TRACE = {"density": 0, "rsna": 1, "path_Y": 2, "path_N": 3, "path_unknown": 4,
         "arrow_good": 5, "arrow_bad": 6, "arrow_unknown": 7, "points": 8, "highlight": 9,
         "selected": 10, "uploads": 11}
TRAJECTORY_TRACES = ("path_Y", "path_N", "path_unknown", "arrow_good", "arrow_bad",
                     "arrow_unknown")
LEGEND_START = 12  # legend-only traces for the categorical colours follow, in fixed slots
LEGEND_SLOTS = 12
DIM_OPACITY = 0.12
POINT_OPACITY = 0.85

COLOR_LABELS = {
    S.STATE: "state", S.SURVIVAL: "survival", S.FINDING_GROUP: "finding group", S.VIEW: "view",
    S.CONTINENT: "continent", S.SEX: "sex", S.AGE: "age (years)", S.OFFSET: "offset (days)",
    S.BAD_DENSITY: "bad-state density",
}


def color_options(pathologies) -> list:
    opts = [{"label": label, "value": col} for col, label in COLOR_LABELS.items()]
    return opts + [{"label": f"model output: {p}", "value": S.logit_column(p)}
                   for p in pathologies]


def category_colors(store: Store, column: str) -> dict:
    cats = store.categories(column)
    if column == S.STATE:
        return {c: STATE_COLORS.get(c, GREY) for c in cats}
    if column == S.SURVIVAL:
        return {c: SURVIVAL_COLORS.get(c, GREY) for c in cats}
    named = [c for c in cats if c != S.UNKNOWN]
    colors = {c: OKABE_ITO[i % len(OKABE_ITO)] for i, c in enumerate(named)}
    if S.UNKNOWN in cats:
        colors[S.UNKNOWN] = GREY
    return colors


def point_colors(store: Store, column: str) -> dict:
    """Marker colour settings for the main trace (and legend entries for categories)."""
    if column in CATEGORICAL:
        colors = category_colors(store, column)
        cats = list(colors)
        code = {c: i for i, c in enumerate(cats)}
        values = store.covid[column].map(code).fillna(len(cats) - 1).to_numpy(dtype=int)
        k = max(len(cats), 1)
        scale = []
        for i, c in enumerate(cats):
            scale += [[i / k, colors[c]], [(i + 1) / k, colors[c]]]
        return {"marker": {"color": values, "colorscale": scale or [[0, GREY], [1, GREY]],
                           "cmin": -0.5, "cmax": k - 0.5, "showscale": False},
                "legend": colors, "title": COLOR_LABELS[column]}
    values = store.covid[column].to_numpy(dtype=float)
    if column.startswith(S.LOGIT_PREFIX):
        values = 1.0 / (1.0 + np.exp(-np.clip(values, -60, 60)))
        title = f"P({column[len(S.LOGIT_PREFIX):]})"
    else:
        title = COLOR_LABELS.get(column, column)
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    return {"marker": {"color": values,
                       "colorscale": CONTINUOUS_SCALE, "cmin": lo, "cmax": hi, "showscale": True,
                       "colorbar": {"title": {"text": title, "side": "top"}, "orientation": "h",
                                    "x": 0.75, "xanchor": "center", "y": -0.02,
                                    "yanchor": "top", "len": 0.45, "thickness": 10}},
            "legend": {}, "title": title}


def legend_slots(colors: dict) -> list:
    """LEGEND_SLOTS trace updates: one per category colour, the rest hidden."""
    items = list(colors["legend"].items())[:LEGEND_SLOTS]
    title = {"text": colors["title"]}
    slots = [{"name": str(cat), "marker": {"color": color, "size": 9}, "visible": True,
              "showlegend": True, "legendgrouptitle": title} for cat, color in items]
    slots += [{"name": "", "marker": {"color": GREY, "size": 9}, "visible": False,
               "showlegend": False, "legendgrouptitle": title}
              for _ in range(LEGEND_SLOTS - len(items))]
    return slots


ARROW_AT = 0.8  # arrowheads sit 80% along each edge
ARROW_SIZE = 0.012  # as a fraction of the map's diagonal


def _gapped(columns) -> np.ndarray:
    """Polylines as one float array: each row of `columns` then a NaN (a gap in the line)."""
    stacked = np.column_stack([*columns, np.full(len(columns[0]), np.nan)])
    return stacked.ravel().astype(np.float32)


def trajectory_lines(store: Store, edges) -> dict:
    """x / y arrays of the six trajectory traces: paths by the patient's survival, arrowheads
    (chevrons pointing from the earlier to the later image) by the state arrived at.

    Everything is WebGL lines in float arrays (NaN-separated): cheap to send and to draw even
    for tens of thousands of edges. The map's axes share one scale, so chevrons keep shape.
    """
    x, y = store.covid[S.X].to_numpy(np.float64), store.covid[S.Y].to_numpy(np.float64)
    a, b = edges["from_pos"].to_numpy(int), edges["to_pos"].to_numpy(int)
    out = {}
    for name, survival in (("path_Y", S.YES), ("path_N", S.NO), ("path_unknown", S.UNKNOWN)):
        m = (edges[S.SURVIVAL] == survival).to_numpy()
        out[name] = (_gapped([x[a[m]], x[b[m]]]), _gapped([y[a[m]], y[b[m]]]))
    span = np.hypot(np.ptp(x), np.ptp(y)) if len(x) else 1.0
    size = ARROW_SIZE * (span or 1.0)
    dx, dy = x[b] - x[a], y[b] - y[a]
    length = np.hypot(dx, dy)
    length[length == 0] = 1.0
    ux, uy = dx / length, dy / length
    tx, ty = x[a] + ARROW_AT * dx, y[a] + ARROW_AT * dy
    for name, state in (("arrow_good", S.STATE_GOOD), ("arrow_bad", S.STATE_BAD),
                        ("arrow_unknown", S.STATE_UNKNOWN)):
        m = (edges[S.TO_STATE] == state).to_numpy()
        bx, by = tx[m] - size * ux[m], ty[m] - size * uy[m]
        nx, ny = -uy[m] * size * 0.55, ux[m] * size * 0.55
        out[name] = (_gapped([bx + nx, tx[m], bx - nx]), _gapped([by + ny, ty[m], by - ny]))
    return out


def visible_edges(store: Store, keep: np.ndarray):
    t = store.trajectories
    return t[keep[t["from_pos"].to_numpy()] & keep[t["to_pos"].to_numpy()]] if len(t) else t


def map_figure(store: Store, *, color_by: str = S.STATE, keep: np.ndarray | None = None,
               filtered_mode: str = "dim", show=("density", "trajectories", "rsna"),
               density_style: str = "heatmap", density_opacity: float = 0.55,
               selected: str | None = None, uploads=None, export: bool = False) -> go.Figure:
    keep = np.ones(len(store.covid), bool) if keep is None else keep
    show = set(show or ())
    fig = go.Figure()
    fig.add_trace(density_trace(store, density_style, density_opacity, "density" in show))
    fig.add_trace(go.Scattergl(
        x=store.rsna[S.X], y=store.rsna[S.Y], mode="markers", name="RSNA pneumonia (reference)",
        marker={"color": "#D9D9D9", "size": 4}, hoverinfo="skip",
        visible=bool("rsna" in show and len(store.rsna))))
    lines = trajectory_lines(store, visible_edges(store, keep))
    for name in TRAJECTORY_TRACES:
        is_path = name.startswith("path_")
        key = name.split("_", 1)[1]
        color = SURVIVAL_COLORS[key] if is_path else STATE_COLORS[key]
        label = (f"trajectory: {SURVIVAL_NAMES[key]}" if is_path
                 else f"arrow into {key} state")
        fig.add_trace(go.Scattergl(
            x=lines[name][0], y=lines[name][1], mode="lines", name=label,
            line={"color": color, "width": 1.3 if is_path else 1.8}, hoverinfo="skip",
            opacity=path_opacity(selected) if is_path else arrow_opacity(selected),
            visible="trajectories" in show, legendgroup="trajectories"))
    colors = point_colors(store, color_by)
    points = point_positions(store, keep, filtered_mode, selected)
    fig.add_trace(go.Scattergl(
        x=points["x"], y=points["y"], mode="markers", name="images",
        customdata=store.image_ids,
        text=store.hover_text_array, hovertemplate="%{text}<extra></extra>", showlegend=False,
        marker={**colors["marker"], "size": 7, "opacity": points["opacity"],
                "line": {"width": 0.4, "color": "white"}}))
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
    fig.add_trace(go.Scatter(**uploads_trace(uploads)))
    for slot in legend_slots(colors):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", legendgroup="colors",
                                 hoverinfo="skip", **slot))
    fig.update_layout(
        margin={"l": 10, "r": 10, "t": 40 if store.warning else 10,
                                         "b": 10},
        xaxis={"showgrid": False, "zeroline": False, "showticklabels": False, "title": None},
        yaxis={"showgrid": False, "zeroline": False, "showticklabels": False, "title": None,
               "scaleanchor": "x", "scaleratio": 1},
        legend={"x": 1.01, "y": 1.0, "xanchor": "left", "yanchor": "top",
                "itemsizing": "constant", "tracegroupgap": 6},
        clickmode="event+select", dragmode="zoom", uirevision="map", hovermode="closest",
        paper_bgcolor="white", plot_bgcolor="white")
    if store.warning:
        fig.add_annotation(text=f"⚠ {store.warning}", xref="paper", yref="paper", x=0.5,
                           y=1.0, yanchor="bottom", showarrow=False,
                           font={"color": "#B00020", "size": 16}, bgcolor="#FFF0F0",
                           bordercolor="#B00020", borderwidth=1)
    if export:
        fig.update_layout(uirevision=None)
    return fig


def point_positions(store: Store, keep: np.ndarray, filtered_mode: str, selected) -> dict:
    """x, y and opacity of the main trace: filtered-out points hidden (no x/y) or dimmed; with a
    patient selected, everyone else is dimmed too."""
    x, y = store.covid[S.X].to_numpy(np.float32), store.covid[S.Y].to_numpy(np.float32)
    base = np.full(len(keep), POINT_OPACITY, dtype=np.float32)
    if selected and selected in store.position:
        patient = store.covid[S.PATIENTID].iat[store.position[selected]]
        base = np.where(store.covid[S.PATIENTID].to_numpy() == patient, 1.0, 0.3)
    base = base.astype(np.float32)
    if filtered_mode == "hide":  # NaN: not drawn, not hoverable
        return {"x": np.where(keep, x, np.nan), "y": np.where(keep, y, np.nan), "opacity": base}
    return {"x": x, "y": y, "opacity": np.where(keep, base, DIM_OPACITY).astype(np.float32)}


def path_opacity(selected) -> float:
    return 0.25 if selected else 0.8


def arrow_opacity(selected) -> float:
    return 0.3 if selected else 1.0


def density_trace(store: Store, style: str, opacity: float, visible: bool):
    """The bad-state density behind the map: a heatmap or contour lines, with its colour bar."""
    d = store.artifact.density
    if style == "contours":
        dens = go.Contour(x=d[S.DENSITY_X], y=d[S.DENSITY_Y], z=d[S.DENSITY_Z],
                          colorscale=DENSITY_SCALE, contours={"coloring": "lines"},
                          line={"width": 1.2}, ncontours=8)
    else:
        dens = go.Heatmap(x=d[S.DENSITY_X], y=d[S.DENSITY_Y], z=d[S.DENSITY_Z],
                          colorscale=DENSITY_SCALE, zsmooth="best")
    dens.update(name="bad-state density", opacity=opacity, hoverinfo="skip", visible=visible,
                showscale=True,
                colorbar={"title": {"text": "bad-state density", "side": "top"},
                          "orientation": "h", "x": 0.25, "xanchor": "center", "y": -0.02,
                          "yanchor": "top", "len": 0.45, "thickness": 10})
    return dens


def uploads_trace(uploads) -> dict:
    """Placed new images: numbered stars, distinct from every collection marker."""
    uploads = uploads or []
    return {"x": [u["x"] for u in uploads], "y": [u["y"] for u in uploads],
            "text": [str(u["n"]) for u in uploads], "mode": "markers+text",
            "name": "your images", "textposition": "top center",
            "textfont": {"size": 14, "color": "#111"},
            "marker": {"symbol": "star", "size": 20, "color": "#F0E442",
                       "line": {"width": 2, "color": "#111"}},
            "hovertemplate": "your image %{text}<extra></extra>",
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


def outputs_figure(pathologies, logits, title: str = "Model outputs") -> go.Figure:
    """The 18 outputs as probabilities (sigmoid of the raw logit), sorted; logit on hover."""
    logits = np.asarray(logits, dtype=float)
    probs = 1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))
    order = np.argsort(probs, kind="stable")
    bar = go.Bar(x=probs[order], y=[pathologies[i] for i in order], orientation="h",
                 customdata=logits[order], marker={"color": "#0072B2"},
                 hovertemplate="%{y}<br>probability %{x:.3f}<br>logit %{customdata:.3f}"
                               "<extra></extra>")
    # One constructor call, no template: update_layout and template copies cost tens of ms.
    return go.Figure(data=[bar], layout={
        "title": {"text": title, "font": {"size": 13}}, "paper_bgcolor": "white",
        "plot_bgcolor": "white", "height": max(260, 18 * len(pathologies) + 60),
        "margin": {"l": 10, "r": 10, "t": 30, "b": 30},
        "xaxis": {"range": [0, 1], "title": {"text": "sigmoid(logit)"}, "gridcolor": "#eee"},
        "yaxis": {"automargin": True}})


def image_figure(src: str, width: int, height: int) -> go.Figure:
    """A display image in a zoomable plotly figure (scroll / box zoom, double-click resets).

    The browser fetches `src` itself (a layout image), so no pixels pass through Python.
    """
    return go.Figure(layout={
        "images": [{"source": src, "xref": "x", "yref": "y", "x": 0, "y": 0, "sizex": width,
                    "sizey": height, "xanchor": "left", "yanchor": "top", "sizing": "stretch",
                    "layer": "below"}],
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0}, "height": 330, "dragmode": "zoom",
        "xaxis": {"visible": False, "range": [0, width], "constrain": "domain"},
        "yaxis": {"visible": False, "range": [height, 0], "scaleanchor": "x",
                  "constrain": "domain"},
        "plot_bgcolor": "black", "paper_bgcolor": "black"})


# ---- export presets (figures for papers) ----------------------------------------------------
MM_PER_INCH = 25.4
CSS_DPI = 96
PRESETS = {
    "single": {"label": "single column (89 mm)", "width_mm": 89, "height_mm": 80, "font": 7},
    "double": {"label": "double column (183 mm)", "width_mm": 183, "height_mm": 120, "font": 8},
}
EXPORT_DPI = 300


def export_figure(fig: go.Figure, preset: str, caption: str | None = None) -> tuple:
    """-> (figure styled for print, width px, height px, scale) at 300 dpi for raster formats."""
    p = PRESETS[preset]
    width = round(p["width_mm"] / MM_PER_INCH * CSS_DPI)
    height = round(p["height_mm"] / MM_PER_INCH * CSS_DPI)
    out = go.Figure(fig)
    out.update_layout(width=width, height=height, font={"size": p["font"], "family": "Arial"},
                      paper_bgcolor="white", plot_bgcolor="white", template="plotly_white",
                      legend={"font": {"size": p["font"] - 1}, "tracegroupgap": 2,
                              "itemwidth": 30},
                      margin={"l": 4, "r": 4, "t": 18 if fig.layout.annotations else 4,
                              "b": 16 if caption else 4})
    for tr in out.data:
        if tr.type in ("heatmap", "contour"):
            tr.colorbar.update(thickness=6, tickfont={"size": p["font"] - 1})
        if tr.type == "scattergl" and tr.marker is not None and tr.marker.size == 7:
            tr.marker.size = 3.5
            if tr.marker.showscale:
                tr.marker.colorbar.update(thickness=6)
    for ann in out.layout.annotations:
        ann.font.size = p["font"] + 1
    if caption:
        out.add_annotation(text=caption, xref="paper", yref="paper", x=0, y=0,
                           xanchor="left", yanchor="top", showarrow=False, yshift=-2,
                           font={"size": p["font"] - 1, "color": "#444"})
    return out, width, height, EXPORT_DPI / CSS_DPI

