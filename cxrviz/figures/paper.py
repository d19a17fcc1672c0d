"""Figures for a journal page: the map, or the paper's two-panel Figure 3, sized in millimetres.

The same rules as the app (point_colors, whose codes map_columns hands the WebGL map;
layers' edges, arrowheads and density; patient_series, as the detail panel draws it), drawn with
SVG traces so that SVG and PDF exports keep points, arrows and text as vectors; only the density
background is a raster. The canvas is laid out in bands that never overlap
(print_layout.py): the panel letters and the untrained-weights warning above the plots, the
plots (the map at its data's aspect), then legends packed in rows, colour bars and the caption.
"""
from __future__ import annotations

from html import escape

import numpy as np
import plotly.graph_objects as go

from cxrviz import schema as S
from cxrviz.figures.layers import (ARROW_TRACES, PATH_TRACES, density_trace, percentile_ticks,
                                   trajectory_data, visible_edges)
from cxrviz.figures.palette import (COLOR_LABELS, GREY, STATE_COLORS, SURVIVAL_COLORS,
                                    SURVIVAL_NAMES, category_colors, hidden_mask, point_colors)
from cxrviz.figures.print_layout import (EXPORT_DPI, LEGEND_ROW_PX, Size, colorbar,
                                         colorbar_px, legend_layout, legend_rows, plot_area, pt,
                                         px, rows_used, text_width, wrap)
from cxrviz.figures.time import DAY_TITLES, patient_series
from cxrviz.store import CATEGORICAL, Store

__all__ = ["EXPORT_DPI", "PRESETS", "Size", "marker_px", "paper_figure"]

FONT = "Arial"
PRESETS = {  # aspect: bounds of the map's height / width (the data's own aspect in between)
    "single": {"label": "single column (89 mm)", "width_mm": 89, "font_pt": 7,
               "aspect": (0.25, 1.3)},
    "double": {"label": "double column (183 mm)", "width_mm": 183, "font_pt": 8,
               "aspect": (0.25, 0.9)},
    "figure3": {"label": "Figure 3: map and patients over time (183 mm)", "width_mm": 183,
                "font_pt": 7, "aspect": (0.6, 1.1)},  # panel b needs the height
}
STATE_SYMBOLS = {S.STATE_GOOD: "circle", S.STATE_BAD: "square", S.STATE_UNKNOWN: "circle-open"}
# Figure 3's patients: Okabe-Ito colours other than the states' blue and vermillion
PATIENT_COLORS = ["#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
MAP_SHARE = 0.56  # figure3: the map's share of the width
B_GAP = 0.08  # figure3: between the map and panel b's axis (room for its labels)
# kaleido prints a PDF with 0.1-inch page margins on a page of the figure's size: the figure is
# shrunk to the page's width and its bottom ~10 px fall off the page. White space there keeps
# the colour bar's labels and the caption on the PDF (PNG and SVG just end a little lower).
PDF_BOTTOM_PX = 11
# Legends, in order, by the legendgroup their traces carry: (key, title)
LEGENDS = (("states", "state"), ("colours", None), ("context", ""), ("patients", ""),
           ("paths", "trajectory, by outcome"), ("arrows", "arrowheads"))


def marker_px(preset: str, n: int) -> float:
    """Marker size scaled to the page and to the number of points: 4.5 px (single column) for a
    few hundred points, down to ~1.2 px for tens of thousands."""
    base = 4.5 if preset == "single" else 5.0
    return float(np.clip(base * (600 / max(n, 600)) ** 0.35, 1.2, base))


def _point_traces(store, shown, color_by, size, xaxis="x", yaxis="y", muted=None,
                  muted_name="other images", hidden=()) -> list:
    """One SVG trace per state (symbol by state), coloured by `color_by`; `muted`: images drawn
    as small grey context points instead (filtered out, or not the chosen patients); `hidden`:
    colour categories left out, so without a legend entry."""
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
                x=[None], y=[None], mode="markers", name=state, xaxis=xaxis, yaxis=yaxis,
                legendgroup="states", legendrank=1,
                marker={"symbol": STATE_SYMBOLS[state], "size": size, "color": "#444",
                        "line": {"color": "#444", "width": 0.6}}))
    if muted is not None and (shown & muted).any():
        m = shown & muted
        traces.insert(0, go.Scatter(
            x=store.covid.loc[m, S.X], y=store.covid.loc[m, S.Y], mode="markers",
            name=muted_name, marker={"color": "#C8C8C8", "size": size * 0.7},
            xaxis=xaxis, yaxis=yaxis, showlegend=True, legendgroup="context"))
    if color_by in CATEGORICAL and color_by != S.STATE:
        for cat, color in category_colors(store, color_by).items():
            if cat in hidden:
                continue
            traces.append(go.Scatter(x=[None], y=[None], mode="markers", name=str(cat),
                                     marker={"color": color, "size": size, "symbol": "circle"},
                                     legendgroup="colours", xaxis=xaxis, yaxis=yaxis))
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
            traces.append(go.Scatter(x=xs, y=ys, mode="lines", name=f"patient {escape(str(patient))}",
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
                                     legendgroup="arrows", marker={**marker, "angle": angle}))
            traces.append(go.Scatter(x=[None], y=[None], mode="markers", name=f"into {key}",
                                     xaxis=xaxis, yaxis=yaxis,  # its legend entry, upright
                                     legendgroup="arrows",
                                     marker={**marker, "symbol": "triangle-right"}))
    return traces


def _legends(fig: go.Figure, color_by: str, font_px: float, avail: float) -> list:
    """The legend entries by group (LEGENDS), laid out in rows (print_layout.legend_rows),
    each trace sent to its row's legend."""
    groups = []
    for group, title in LEGENDS:
        names = [t.name for t in fig.data if t.legendgroup == group and t.showlegend is not False]
        if names:
            title = COLOR_LABELS.get(color_by, "") if title is None else title
            groups.append((group, f"{title}:" if title else "", names))
    rows = legend_rows(groups, font_px, avail)
    key_of = {(r.group, name): r.key for r in rows for name in r.names}
    first = {}
    for r in rows:
        first.setdefault(r.group, r.key)
    for t in fig.data:
        if t.legendgroup in first:
            t.legend = key_of.get((t.legendgroup, t.name), first[t.legendgroup])
    return rows


def paper_figure(store: Store, preset: str, *, color_by: str = S.STATE, keep=None,
                 in_days=None, patients=None, trajectories: bool = True, hidden=(),
                 density: bool = True, density_style: str = "heatmap",
                 filtered_mode: str = "hide", align: str = "offset",
                 caption: str | None = None, warning: str | None = None) -> tuple:
    """-> (go.Figure, Size). patients: whose trajectories to draw (None: all shown; figure3:
    the patients of both panels); trajectories False: none on the map. hidden: categories of
    `color_by` hidden in the app's legend: neither drawn (not even as context) nor joined.
    density_style: "heatmap" or "contours", as the app's map draws the density."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    p = PRESETS[preset]
    font = p["font_pt"]
    keep = np.ones(len(store.covid), bool) if keep is None else keep
    drawn = ~hidden_mask(store, color_by, hidden)
    if in_days is not None:
        drawn &= in_days
    shown_filter = keep & drawn
    shown = shown_filter if filtered_mode == "hide" else drawn
    width = round(px(p["width_mm"]))
    figure3 = preset == "figure3"
    # figure3's right edge holds half of panel b's last x tick label
    margin = {"l": round(pt(2)), "r": round(pt(2) + (pt(font) if figure3 else 0)), "t": 0,
              "b": 0}
    avail = width - margin["l"] - margin["r"]  # the plotting width, all panels
    area = plot_area(store.covid[S.X].to_numpy(float), store.covid[S.Y].to_numpy(float),
                     p["aspect"])
    map_frac = MAP_SHARE if figure3 else 1.0  # of the plotting width
    plot_h = avail * map_frac * area.aspect
    map_domain = ([0.0, map_frac * area.width_share] if figure3 else
                  [(1 - area.width_share) / 2, (1 + area.width_share) / 2])
    n_shown = int(shown.sum())
    size = marker_px(preset, n_shown)
    line_w = 0.9 if n_shown < 3000 else 0.5
    fig = go.Figure()
    if density:
        dens = density_trace(store, density_style, 0.6, True)
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
    edges = visible_edges(store, shown_filter, patients if trajectories else ())
    fig.add_traces(_trajectory_traces(store, edges, in_days is not None, line_w,
                                      max(size * 1.6, 4.5), patient_colors=patient_colors))
    fig.add_traces(_point_traces(store, shown, color_by, size, muted=muted,
                                 muted_name=muted_name, hidden=set(hidden or ())))

    # The band above the plots: the panel letters (figure3) and the warning, which starts
    # after letter a and keeps to the map's column there, so that it meets neither letter
    warn_font, letter_font = pt(font), pt(font + 1)
    warn_x = text_width("a", letter_font, bold=True) + 8 if figure3 else 0
    warn_w = (avail * MAP_SHARE if figure3 else avail) - warn_x - 4
    warn_lines = wrap(f"⚠ {warning}", warn_w, warn_font) if warning else []
    warn_h = len(warn_lines) * warn_font * 1.25 + 3 if warning else 0
    letters_h = letter_font * 1.25 + 2 if figure3 else 0
    margin["t"] = round(pt(2) + max(warn_h, letters_h))
    # Bands below: legends, colour bars, caption
    legend_font = pt(font - 1)
    rows = _legends(fig, color_by, legend_font, avail)
    legend_top = 4
    legend_h = rows_used(rows) * LEGEND_ROW_PX + (3 if rows else 0)  # the last row's text
    scales = [t for t in fig.data if t.type == "heatmap" or (
        t.type == "scatter" and t.marker is not None and t.marker.showscale)]
    bars_h = colorbar_px(font) + 4 if scales else 0
    caption_font = pt(font - 1)
    lines = wrap(caption, avail - 4, caption_font, sep=" · ") if caption else []
    caption_h = caption_font * 1.35 * len(lines) + 2 if caption else 0
    margin["b"] = round(legend_top + legend_h + bars_h + caption_h + pt(2) + PDF_BOTTOM_PX)
    height = round(margin["t"] + plot_h + margin["b"])
    layout = dict(
        width=width, height=height, margin=margin, paper_bgcolor="white", plot_bgcolor="white",
        font={"family": FONT, "size": pt(font), "color": "#111"}, showlegend=True,
        xaxis={"range": area.xrange, "visible": False, "domain": map_domain},
        yaxis={"range": area.yrange, "visible": False},
        hovermode=False)
    annotations = []
    for row in rows:
        layout[row.key], title = legend_layout(row, legend_top, avail, plot_h, legend_font)
        annotations += [title] if title else []
    bar_y = -(legend_top + legend_h + 4) / plot_h  # the bar's title at its top
    for i, tr in enumerate(scales):
        title = ("bad-state density (collection percentile)" if tr.type == "heatmap"
                 else point_colors(store, color_by)["title"])
        bar = colorbar(font, bar_y, 0.0 if i == 0 else 0.52, title, 0.46)
        if tr.type == "heatmap":
            tr.update(colorbar={**bar, **percentile_ticks(store)})
        else:
            tr.marker.colorbar = bar
    if figure3:
        _add_series_panel(fig, store, patients or [], patient_colors, align, font, size,
                          in_days)
        b_left = MAP_SHARE + B_GAP
        layout["xaxis2"] = {"domain": [b_left, 1], "anchor": "y2", "showgrid": True,
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
        # each letter above its panel's top left corner (b: left of panel b's axis labels)
        for letter, x in (("a", 0.0), ("b", MAP_SHARE + 0.01)):
            annotations.append({"text": f"<b>{letter}</b>", "x": x, "y": 1, "xref": "paper",
                                "yref": "paper", "xanchor": "left", "yanchor": "bottom",
                                "yshift": 1, "showarrow": False, "borderpad": 0,
                                "font": {"size": letter_font}})
    if warning:  # on the figure, above the plots: it covers nothing
        annotations.append({"text": "<br>".join(warn_lines), "x": warn_x / avail, "y": 1,
                            "xref": "paper",
                            "yref": "paper", "xanchor": "left", "yanchor": "bottom",
                            "yshift": 1, "showarrow": False, "align": "left",
                            "borderpad": 1, "font": {"size": warn_font, "color": "#B00020"}})
    if caption:
        annotations.append({"text": "<br>".join(lines), "x": 0, "xref": "paper",
                            "xanchor": "left", "yref": "paper", "yanchor": "top",
                            "y": -(legend_top + legend_h + bars_h + 2) / plot_h,
                            "showarrow": False, "align": "left",
                            "font": {"size": caption_font, "color": "#333"}})
    layout["annotations"] = annotations
    fig.update_layout(**layout)
    return fig, Size(width, height, p["width_mm"])


def _add_series_panel(fig, store, patients, colors, align, font, size, in_days) -> None:
    """Figure 3b: the chosen patients' density percentile against the (aligned) day, one line
    per episode (a patient with two admissions has two, each on its own day 0)."""
    for pid in patients:
        # each episode its own line, on its own day 0 (images in no episode have no day)
        units = [int(u) for u in store.episodes_of(pid) if store.episode_ids[u] is not None]
        for k, unit in enumerate(units):
            _add_series(fig, store, pid, unit, colors, align, size, in_days,
                        EPISODE_DASHES[k % len(EPISODE_DASHES)])
    fig.add_trace(go.Scatter(x=[None], y=[None], xaxis="x2", yaxis="y2", showlegend=False,
                             marker={"color": GREY}))


EPISODE_DASHES = ("solid", "dash", "dot", "dashdot")  # a patient's episodes in panel b


def _add_series(fig, store, pid, unit, colors, align, size, in_days, dash) -> None:
    s = patient_series(store, pid, align, unit)
    if in_days is not None:
        inside = in_days[s["positions"]]
        s = {k: v[inside] for k, v in s.items()}
    rows = s["rows"]
    fig.add_trace(go.Scatter(
        x=s["days"], y=rows[S.DENSITY_PERCENTILE], mode="lines+markers", xaxis="x2",
        yaxis="y2", name=f"patient {escape(store.episode_label(unit))}",
        legendgroup="patients", showlegend=False,
        line={"color": colors[pid], "width": 1.2, "dash": dash},
        marker={"symbol": [STATE_SYMBOLS[v] for v in rows[S.STATE]], "size": size + 1.5,
                "color": [STATE_COLORS[v] for v in rows[S.STATE]],
                "line": {"color": colors[pid], "width": 0.8}}))
