"""Figures for a journal page: the map, or the paper's two-panel Figure 3, sized in millimetres.

Same data builders as the app (point_colors, trajectory_data, density_trace, patient_series),
drawn with SVG traces so that SVG and PDF exports keep points, arrows and text as vectors; only
the density background is a raster. Legend and colour bars sit below the plot, which takes its
height from the data's aspect ratio (within bounds).
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from cxrviz import schema as S
from cxrviz.figures.layers import (ARROW_TRACES, PATH_TRACES, density_trace, percentile_ticks,
                                   trajectory_data, visible_edges)
from cxrviz.figures.palette import (COLOR_LABELS, GREY, STATE_COLORS, SURVIVAL_COLORS,
                                    SURVIVAL_NAMES, category_colors, point_colors)
from cxrviz.figures.time import DAY_TITLES, patient_series
from cxrviz.store import CATEGORICAL, Store

MM_PER_INCH = 25.4
CSS_DPI = 96  # what plotly's px are (kaleido renders at 96 px per inch)
EXPORT_DPI = 300
PX_PER_PT = CSS_DPI / 72
FONT = "Arial"
PRESETS = {  # aspect: the map's height / width, within these bounds
    "single": {"label": "single column (89 mm)", "width_mm": 89, "font_pt": 7,
               "aspect": (0.62, 1.1)},
    "double": {"label": "double column (183 mm)", "width_mm": 183, "font_pt": 8,
               "aspect": (0.55, 1.0)},
    "figure3": {"label": "Figure 3: map and patients over time (183 mm)", "width_mm": 183,
                "font_pt": 7, "aspect": (0.75, 1.1)},
}
STATE_SYMBOLS = {S.STATE_GOOD: "circle", S.STATE_BAD: "square", S.STATE_UNKNOWN: "circle-open"}
# Figure 3's patients: Okabe-Ito colours other than the states' blue and vermillion
PATIENT_COLORS = ["#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
MAP_SHARE = 0.56  # figure3: the map's share of the width


def px(mm: float) -> float:
    return mm / MM_PER_INCH * CSS_DPI


def pt(points: float) -> float:
    return points * PX_PER_PT


@dataclass
class Size:
    """Canvas in CSS px (kaleido's unit), its width in mm as the preset says, and the PNG's
    pixels at 300 dpi (the preset's width exactly: 89 mm -> 1051 px)."""

    width: int
    height: int
    width_mm: float

    @property
    def mm(self) -> tuple:
        return self.width_mm, self.width_mm * self.height / self.width

    @property
    def png_scale(self) -> float:
        return round(self.width_mm / MM_PER_INCH * EXPORT_DPI) / self.width

    @property
    def png_pixels(self) -> tuple:
        return round(self.width * self.png_scale), round(self.height * self.png_scale)


def marker_px(preset: str, n: int) -> float:
    """Marker size scaled to the page and to the number of points: 4.5 px (single column) for a
    few hundred points, down to ~1.2 px for tens of thousands."""
    base = 4.5 if preset == "single" else 5.0
    return float(np.clip(base * (600 / max(n, 600)) ** 0.35, 1.2, base))


def _ranges(store: Store, aspect_bounds) -> tuple:
    """Axis ranges around the map (5% margin), padded so that x and y keep one scale at an
    aspect within bounds; -> (xrange, yrange, height / width)."""
    x, y = store.covid[S.X].to_numpy(float), store.covid[S.Y].to_numpy(float)
    (x0, x1), (y0, y1) = (x.min(), x.max()), (y.min(), y.max())
    dx, dy = (x1 - x0) * 1.05 or 1.0, (y1 - y0) * 1.05 or 1.0
    aspect = float(np.clip(dy / dx, *aspect_bounds))
    if dy / dx < aspect:
        dy = dx * aspect
    else:
        dx = dy / aspect
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return [cx - dx / 2, cx + dx / 2], [cy - dy / 2, cy + dy / 2], aspect


def _point_traces(store, shown, color_by, size, xaxis="x", yaxis="y", muted=None,
                  muted_name="other images") -> list:
    """One SVG trace per state (symbol by state), coloured by `color_by`; `muted`: images drawn
    as small grey context points instead (filtered out, or not the chosen patients)."""
    colors = point_colors(store, color_by)
    marker = colors["marker"]
    values = np.asarray(marker["color"])
    traces = []
    for state in S.STATES:
        m = shown & (store.covid[S.STATE] == state).to_numpy()
        if muted is not None:
            m &= ~muted
        if not m.any():
            continue
        by_state = color_by == S.STATE
        mk = {"symbol": STATE_SYMBOLS[state], "size": size,
              "line": {"width": 0.6 if state == S.STATE_UNKNOWN else 0.25,
                       "color": STATE_COLORS[state] if by_state else "white"}}
        if by_state:
            mk["color"] = STATE_COLORS[state]
        else:
            mk.update({k: v for k, v in marker.items() if k != "color"})
            mk["color"] = values[m]
            mk["showscale"] = bool(marker.get("showscale")) and not any(
                t.marker.showscale for t in traces if t.marker is not None)
        traces.append(go.Scatter(
            x=store.covid.loc[m, S.X], y=store.covid.loc[m, S.Y], mode="markers",
            name=state, marker=mk, xaxis=xaxis, yaxis=yaxis, legendgroup="states",
            showlegend=by_state, legendrank=1))
        if not by_state:  # the symbol's legend entry, in a neutral colour
            traces.append(go.Scatter(
                x=[None], y=[None], mode="markers", name=f"{state} state", xaxis=xaxis,
                yaxis=yaxis, legendrank=1, marker={"symbol": STATE_SYMBOLS[state],
                                                    "color": "#444", "line": {"color": "#444",
                                                                              "width": 1}}))
    if muted is not None and (shown & muted).any():
        m = shown & muted
        traces.insert(0, go.Scatter(
            x=store.covid.loc[m, S.X], y=store.covid.loc[m, S.Y], mode="markers",
            name=muted_name, marker={"color": "#C8C8C8", "size": size * 0.7},
            xaxis=xaxis, yaxis=yaxis, showlegend=True))
    if color_by in CATEGORICAL and color_by != S.STATE:
        for cat, color in category_colors(store, color_by).items():
            traces.append(go.Scatter(x=[None], y=[None], mode="markers", name=str(cat),
                                     marker={"color": color, "size": 7, "symbol": "circle"},
                                     legendgroup="colours", xaxis=xaxis, yaxis=yaxis,
                                     legendgrouptitle={"text": COLOR_LABELS[color_by]}))
    return traces


def _trajectory_traces(store, edges, latest_only, line_w, arrow_px, xaxis="x", yaxis="y",
                       patient_colors=None) -> list:
    data = trajectory_data(store, edges, latest_only)
    traces = []
    if patient_colors:  # figure3: one colour per chosen patient, as in panel b
        x, y = store.covid[S.X].to_numpy(float), store.covid[S.Y].to_numpy(float)
        for patient, color in patient_colors.items():
            e = edges[edges[S.PATIENTID] == patient]
            xs, ys = [], []
            for a, b in zip(e["from_pos"], e["to_pos"]):
                xs += [x[a], x[b], None]
                ys += [y[a], y[b], None]
            traces.append(go.Scatter(x=xs, y=ys, mode="lines", name=f"patient {patient}",
                                     line={"color": color, "width": line_w * 1.6},
                                     legendgroup="patients", xaxis=xaxis, yaxis=yaxis))
    else:
        for name in PATH_TRACES:
            key = name.split("_", 1)[1]
            if len(data[name][0]):
                traces.append(go.Scatter(
                    x=data[name][0], y=data[name][1], mode="lines",
                    name=SURVIVAL_NAMES[key], opacity=0.8, xaxis=xaxis, yaxis=yaxis,
                    line={"color": SURVIVAL_COLORS[key], "width": line_w},
                    legendgroup="paths"))
    for name in ARROW_TRACES:
        key = name.split("_", 1)[1]
        ax, ay, angle = data[name]
        if len(ax):
            marker = {"symbol": "triangle-up", "size": arrow_px, "color": STATE_COLORS[key],
                      "line": {"width": 0}}
            traces.append(go.Scatter(x=ax, y=ay, mode="markers", name=f"into {key}",
                                     xaxis=xaxis, yaxis=yaxis, showlegend=False,
                                     marker={**marker, "angle": angle}))
            traces.append(go.Scatter(x=[None], y=[None], mode="markers", name=f"into {key}",
                                     xaxis=xaxis, yaxis=yaxis,  # its legend entry, upright
                                     marker={**marker, "symbol": "triangle-right"}))
    return traces


def _colorbar(font_pt: float, y: float, x: float, title: str, length: float) -> dict:
    """Horizontal, below the plot; its title above the bar and the ticks below: never on top
    of each other."""
    return {"orientation": "h", "x": x, "xanchor": "left", "y": y, "yanchor": "top",
            "len": length, "lenmode": "fraction", "thickness": pt(4), "outlinewidth": 0,
            "title": {"text": title, "side": "top", "font": {"size": pt(font_pt - 0.5)}},
            "tickfont": {"size": pt(font_pt - 1)}, "ticks": "outside", "ticklen": 2, "xpad": 0,
            "ypad": 0}


def _legend_columns(preset: str) -> int:
    return 3 if preset == "single" else 5


def _legend_rows(names: list, preset: str) -> int:
    return max(1, -(-len(names) // _legend_columns(preset)))


def paper_figure(store: Store, preset: str, *, color_by: str = S.STATE, keep=None,
                 in_days=None, patients=None, density: bool = True, filtered_mode: str = "hide",
                 align: str = "offset", caption: str | None = None,
                 warning: str | None = None) -> tuple:
    """-> (go.Figure, Size). patients: whose trajectories to draw (None: all shown; figure3:
    the patients of both panels)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    p = PRESETS[preset]
    font = p["font_pt"]
    keep = np.ones(len(store.covid), bool) if keep is None else keep
    shown_filter = keep if in_days is None else keep & in_days
    shown = shown_filter if filtered_mode == "hide" else (
        np.ones(len(keep), bool) if in_days is None else in_days)
    width = round(px(p["width_mm"]))
    margin = {"l": round(pt(2)), "r": round(pt(2)), "t": round(pt(2)), "b": 0}
    figure3 = preset == "figure3"
    map_w = (width - margin["l"] - margin["r"]) * (MAP_SHARE if figure3 else 1.0)
    xr, yr, aspect = _ranges(store, p["aspect"])
    plot_h = map_w * aspect
    n_shown = int(shown.sum())
    size = marker_px(preset, n_shown)
    line_w = 0.9 if n_shown < 3000 else 0.5
    fig = go.Figure()
    if density:
        dens = density_trace(store, "heatmap", 0.6, True, pad=False)
        dens.update(showscale=True)
        fig.add_trace(dens)
    patient_colors = None
    muted = ~keep if filtered_mode == "dim" else None  # filtered out: faint context
    muted_name = "filtered out"
    if figure3:
        patient_colors = {pid: PATIENT_COLORS[i % len(PATIENT_COLORS)]
                          for i, pid in enumerate(patients or [])}
        chosen = store.covid[S.PATIENTID].isin(list(patients or [])).to_numpy()
        muted = ~chosen if muted is None else (muted | ~chosen)
        muted_name = "other images"
    edges = visible_edges(store, shown_filter, patients)
    fig.add_traces(_trajectory_traces(store, edges, in_days is not None, line_w,
                                      max(size * 1.6, 4.5), patient_colors=patient_colors))
    fig.add_traces(_point_traces(store, shown, color_by, size, muted=muted,
                                 muted_name=muted_name))
    names = [t.name for t in fig.data if t.showlegend is not False and t.type == "scatter"
             and (t.xaxis or "x") == "x"]
    legend_font = pt(font - 1)
    legend_h = _legend_rows(names, preset) * (legend_font * 1.6 + 9) + 4
    scales = [t for t in fig.data if t.type == "heatmap" or (
        t.type == "scatter" and t.marker is not None and t.marker.showscale)]
    bars_h = pt(font) * 4.2 if scales else 0
    if caption:
        per_line = int((width - 8) / (0.5 * pt(font - 1)))
        caption = "<br>".join(textwrap.wrap(caption, per_line))
    caption_h = pt(font - 1) * 1.35 * (caption.count("<br>") + 1) + 2 if caption else 0
    margin["b"] = round(pt(2) + legend_h + bars_h + caption_h + 4)
    height = round(margin["t"] + plot_h + margin["b"])
    to_paper = 1.0 / plot_h  # px below the plot -> paper y
    layout = dict(
        width=width, height=height, margin=margin, paper_bgcolor="white", plot_bgcolor="white",
        font={"family": FONT, "size": pt(font), "color": "#111"}, showlegend=True,
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": -4 * to_paper,
                "yanchor": "top", "font": {"size": legend_font}, "itemsizing": "constant",
                "itemwidth": 30, "entrywidth": 0.999 / _legend_columns(preset),
                "entrywidthmode": "fraction", "bgcolor": "rgba(0,0,0,0)",
                "traceorder": "normal", "tracegroupgap": 0, "valign": "middle"},
        xaxis={"range": xr, "visible": False, "domain": [0, MAP_SHARE if figure3 else 1]},
        yaxis={"range": yr, "visible": False},
        hovermode=False)
    bar_y = -(4 + legend_h + pt(font) * 1.3) * to_paper
    for i, tr in enumerate(scales):
        title = ("bad-state density (collection percentile)" if tr.type == "heatmap"
                 else point_colors(store, color_by)["title"])
        bar = _colorbar(font, bar_y, 0.0 if i == 0 else 0.52, title, 0.46)
        if tr.type == "heatmap":
            tr.update(colorbar={**bar, **percentile_ticks(store)})
        else:
            tr.marker.colorbar = bar
    if figure3:
        _add_series_panel(fig, store, patients or [], patient_colors, align, font, size,
                          in_days)
        layout["xaxis2"] = {"domain": [MAP_SHARE + 0.08, 1], "anchor": "y2", "showgrid": True,
                            "gridcolor": "#e6e6e6", "zeroline": False, "ticks": "outside",
                            "ticklen": 2, "tickfont": {"size": pt(font - 1)},
                            "title": {"text": DAY_TITLES[align], "font": {"size": pt(font)},
                                      "standoff": 2}}
        layout["yaxis2"] = {"anchor": "x2", "range": [-3, 103], "showgrid": True,
                            "domain": [min(0.5, (pt(font) * 3.2) / plot_h), 1],
                            "gridcolor": "#e6e6e6", "ticks": "outside", "ticklen": 2,
                            "tickfont": {"size": pt(font - 1)},
                            "title": {"text": "density percentile", "font": {"size": pt(font)},
                                      "standoff": 2}}
        letters = [("a", 0.0), ("b", MAP_SHARE + 0.08)]
        layout["annotations"] = [
            {"text": f"<b>{t}</b>", "x": x, "y": 1, "xref": "paper", "yref": "paper",
             "xanchor": "right" if t == "b" else "left", "yanchor": "top",
             "xshift": -pt(font * 3.2) if t == "b" else 2, "showarrow": False,
             "font": {"size": pt(font + 1)}} for t, x in letters]
    fig.update_layout(**layout)
    if warning:  # inside the map's top edge: on the figure whatever a journal crops
        fig.add_annotation(text=f"⚠ {warning}", x=(MAP_SHARE if figure3 else 1) / 2, y=1,
                           xref="paper", yref="paper", yanchor="top", yshift=-1,
                           showarrow=False, bgcolor="rgba(255,255,255,0.85)", borderpad=1,
                           font={"size": pt(font), "color": "#B00020"})
    if caption:
        fig.add_annotation(text=caption, x=0, xref="paper", xanchor="left", yref="paper",
                           y=-(margin["b"] - caption_h - 2) * to_paper, yanchor="top",
                           showarrow=False, align="left",
                           font={"size": pt(font - 1), "color": "#333"})
    return fig, Size(width, height, p["width_mm"])


def _add_series_panel(fig, store, patients, colors, align, font, size, in_days) -> None:
    """Figure 3b: the chosen patients' density percentile against the (aligned) day."""

    for pid in patients:
        s = patient_series(store, pid, align)
        if in_days is not None:
            inside = in_days[s["positions"]]
            s = {k: v[inside] for k, v in s.items()}
        rows = s["rows"]
        fig.add_trace(go.Scatter(
            x=s["days"], y=rows[S.DENSITY_PERCENTILE], mode="lines+markers", xaxis="x2",
            yaxis="y2", name=f"patient {pid}", legendgroup="patients", showlegend=False,
            line={"color": colors[pid], "width": 1.2},
            marker={"symbol": [STATE_SYMBOLS[v] for v in rows[S.STATE]], "size": size + 1.5,
                    "color": [STATE_COLORS[v] for v in rows[S.STATE]],
                    "line": {"color": colors[pid], "width": 0.8}}))
    fig.add_trace(go.Scatter(x=[None], y=[None], xaxis="x2", yaxis="y2", showlegend=False,
                             marker={"color": GREY}))
