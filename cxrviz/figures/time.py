"""Time on the density scale: one episode's course, and the cohort's.

Both plot the bad-state density percentile (a number the model's map defines) against the
aligned day (compute.timeline.aligned_days), per episode: a MIMIC admission has its own day 0
and outcome (in the COVID collection an episode is a patient). They never average UMAP
coordinates, which do not average meaningfully.
"""
from __future__ import annotations

from html import escape

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cxrviz import schema as S
from cxrviz import words
from cxrviz.figures.palette import STATE_COLORS, SURVIVAL_COLORS, SURVIVAL_NAMES, probability
from cxrviz.store import Store

# ICU: a flat light-orange band (a shape); intubation: dark-blue hatching (a filled trace):
# different in hue, in lightness and in texture, so they stay apart in greyscale and overlap
# visibly where a patient is both.
ICU_FILL = "rgba(230, 159, 0, 0.30)"
INTUBATION_HATCH = {"shape": "/", "fgcolor": "#0072B2", "bgcolor": "rgba(0,0,0,0)",
                    "size": 6, "solidity": 0.3}
ICU_LABEL, INTUBATION_LABEL = "in ICU (at image)", "intubated (at image)"
SERIES_PLOT_PX = 200  # the patient chart's plotting height
AXIS_TITLE_PX, SERIES_LEGEND_ROW_PX = 44, 19  # below it: ticks and title, then legend rows
MIN_BIN_IMAGES = 5  # fewer images in a bin: no median or band there (too few to summarise)
OUTPUT_COLORS = ["#0072B2", "#009E73", "#E69F00", "#56B4E9", "#000000"]
BIN_DAYS = 3
BIN_RANGE = (-30, 30)  # days beyond are pooled into the end bins
MAX_COHORT_LINES = 1500  # faint lines drawn at most (medians use every patient)
DAY_TITLES = {"offset": "day (reported offset)", "first": "days since the first image",
              "first_bad": "days since the first bad state", "last": "days before the last image"}


def _message(text: str, height: int) -> go.Figure:
    return go.Figure(layout={
        "height": height, "xaxis": {"visible": False}, "yaxis": {"visible": False},
        "annotations": [{"text": text, "showarrow": False, "xref": "paper", "yref": "paper",
                         "x": 0.5, "y": 0.5, "font": {"color": "#555"}}],
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10}, "paper_bgcolor": "white",
        "plot_bgcolor": "white"})


def runs(days: np.ndarray, flags: np.ndarray) -> list:
    """[(first day, last day)] of consecutive images with the flag set."""
    out, start = [], None
    for i, on in enumerate(flags):
        if on and start is None:
            start = i
        if start is not None and (not on or i == len(flags) - 1):
            end = i if on else i - 1
            out.append((float(days[start]), float(days[end])))
            start = None
    return out


def series_episode(store: Store, patient: str, selected: str | None = None) -> int | None:
    """Which of the patient's episodes a series shows (a row of store.patients): the selected
    image's, if it is the patient's; else the episode of their latest dated image; None for a
    patient unknown to the map."""
    units = store.episodes_of(patient)
    unit = store.episode_of(selected) if selected else None
    if unit is not None and unit in set(units.tolist()):
        return unit
    pos = store.patient_positions.get(patient, np.array([], int))  # in time order
    dated = pos[np.isfinite(store.aligned("offset")[pos])]
    if len(dated):
        return int(store.episode_index[dated[-1]])
    return int(units[-1]) if len(units) else None


def patient_series(store: Store, patient: str, align: str = "offset",
                   episode: int | None = None) -> dict:
    """One episode's dated images in time order, with their aligned days (episode: a row of
    store.patients; None: series_episode's choice for the patient)."""
    unit = series_episode(store, patient) if episode is None else episode
    pos = store.episode_positions[unit] if unit is not None else np.array([], int)
    day = store.aligned(align)[pos]
    dated = np.isfinite(day)
    pos, day = pos[dated], day[dated]
    rows = store.covid.iloc[pos]
    return {"positions": pos, "days": day, "rows": rows}


def _spans(days, flags) -> list:
    """[(x0, x1)] to shade for runs of flagged images; a lone image gets a band of 0.8 day."""
    return [(a - 0.4, b + 0.4) if a == b else (a, b) for a, b in runs(days, flags)]


def _shade_states(fig: go.Figure, days, rows) -> None:
    """ICU and intubation intervals behind the series, each with its legend entry."""
    for i, (a, b) in enumerate(_spans(days, (rows[S.IN_ICU] == S.YES).to_numpy())):
        fig.add_vrect(x0=a, x1=b, fillcolor=ICU_FILL, line_width=0, layer="below",
                      name=ICU_LABEL, legendgroup="icu", showlegend=i == 0, legendrank=1)
    spans = _spans(days, (rows[S.INTUBATION_PRESENT] == S.YES).to_numpy())
    if spans:
        xs = [v for a, b in spans for v in (a, b, b, a, a, None)]
        ys = [v for _ in spans for v in (-3, -3, 103, 103, -3, None)]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", fill="toself", name=INTUBATION_LABEL,
                                 fillcolor="rgba(0,0,0,0)", fillpattern=INTUBATION_HATCH,
                                 line={"width": 0}, hoverinfo="skip", hoveron="points",
                                 legendrank=2))


def patient_series_figure(store: Store, patient: str, align: str = "offset", outputs=(),
                          selected: str | None = None, height: int | None = None) -> go.Figure:
    """The selected image's episode (else the patient's latest) over time. height: the
    figure's, px (None: a plot of SERIES_PLOT_PX above its legend)."""
    unit = series_episode(store, patient, selected)
    s = patient_series(store, patient, align, unit)
    rows, days = s["rows"], s["days"]
    name = store.episode_label(unit) if unit is not None else str(patient)
    if not len(rows):
        why = "no dated images" if align == "offset" else f"no such event ({DAY_TITLES[align]})"
        return _message(f"Patient {escape(name)}: {why}", height or 330)
    pct = rows[S.DENSITY_PERCENTILE].to_numpy()
    fig = go.Figure()
    _shade_states(fig, days, rows)
    fig.add_trace(go.Scatter(
        x=days, y=pct, mode="lines+markers", name="bad-state density (percentile)",
        customdata=rows[S.IMAGE_ID].to_numpy(dtype=object),
        marker={"size": 9, "color": [STATE_COLORS.get(v) for v in rows[S.STATE]],
                "line": {"width": 1, "color": "#333"}},
        line={"color": "#333", "width": 1.5},
        hovertemplate="day %{x:g}<br>percentile %{y:.0f}<extra></extra>"))
    for k, name in enumerate(outputs or ()):
        logits = rows[S.logit_column(name)].to_numpy(float)
        fig.add_trace(go.Scatter(
            x=days, y=probability(logits), yaxis="y2",
            mode="lines+markers", name=f"P({name})", customdata=rows[S.IMAGE_ID].to_numpy(object),
            line={"color": OUTPUT_COLORS[k % len(OUTPUT_COLORS)], "dash": "dot", "width": 1.3},
            marker={"size": 5}, hovertemplate=f"day %{{x:g}}<br>P({name}) %{{y:.2f}}"
                                              "<extra></extra>"))
    survival = rows[S.SURVIVAL].iloc[-1]
    fig.add_trace(go.Scatter(
        x=[days[-1]], y=[pct[-1]], mode="markers+text",
        name=f"outcome: {words.SURVIVAL[survival]}",
        text=[SURVIVAL_NAMES[survival]], textposition="top left", cliponaxis=False,
        marker={"symbol": "diamond-open", "size": 16, "color": SURVIVAL_COLORS[survival],
                "line": {"width": 2.5}}, hoverinfo="skip"))
    if selected in set(rows[S.IMAGE_ID]):
        i = list(rows[S.IMAGE_ID]).index(selected)
        fig.add_trace(go.Scatter(x=[days[i]], y=[pct[i]], mode="markers", name="this image",
                                 marker={"symbol": "circle-open", "size": 18, "color": "#111",
                                         "line": {"width": 2.5}}, hoverinfo="skip"))
    # the legend: one entry a row under the x-axis, in a bottom margin made for it (a narrow
    # panel would wrap a horizontal one onto the axis title)
    entries = sum(t.showlegend is not False for t in fig.data) + any(
        sh.showlegend for sh in fig.layout.shapes)
    bottom = AXIS_TITLE_PX + entries * SERIES_LEGEND_ROW_PX
    fig.update_layout(
        height=height or 26 + SERIES_PLOT_PX + bottom,
        margin={"l": 44, "r": 44 if outputs else 10, "t": 26, "b": bottom},
        paper_bgcolor="white", plot_bgcolor="white", clickmode="event", hovermode="closest",
        title={"text": f"Patient {escape(name)} over time", "font": {"size": 13}},
        xaxis={"title": {"text": DAY_TITLES[align]}, "gridcolor": "#eee", "zeroline": False},
        yaxis={"title": {"text": "density percentile"}, "range": [-3, 103], "gridcolor": "#eee"},
        yaxis2={"overlaying": "y", "side": "right", "range": [-0.03, 1.03], "showgrid": False,
                "title": {"text": "probability"}, "visible": bool(outputs)},
        legend={"orientation": "v", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0,
                "xanchor": "left", "font": {"size": 10}, "tracegroupgap": 0})
    return fig


def _bins():
    edges = np.arange(BIN_RANGE[0], BIN_RANGE[1] + BIN_DAYS, BIN_DAYS, dtype=float)
    return edges, (edges[:-1] + edges[1:]) / 2


def cohort_summary(store: Store, keep: np.ndarray, align: str) -> dict:
    """Per survival group and day bin: median, quartiles and n of the density percentile, over
    the images (passing the filters) of episodes with two or more dated ones (each on its own
    day 0; `episodes` counts them, `patients` their patients)."""
    day = store.aligned(align)
    use = keep & np.isfinite(day)
    unit = store.episode_index
    counts = np.bincount(unit[use], minlength=len(store.patients))
    use &= counts[unit] >= 2
    edges, centers = _bins()
    which = np.clip(np.digitize(np.clip(day, BIN_RANGE[0], BIN_RANGE[1] - 1e-9), edges) - 1,
                    0, len(centers) - 1)
    pct = store.covid[S.DENSITY_PERCENTILE].to_numpy()
    survival = store.covid[S.SURVIVAL].to_numpy()
    groups = {}
    for group in (S.YES, S.NO, S.UNKNOWN):
        g = use & (survival == group)
        stats = []
        for b in range(len(centers)):
            v = pct[g & (which == b)]
            stats.append((np.median(v), *np.percentile(v, [25, 75]), len(v)) if len(v)
                         else (np.nan, np.nan, np.nan, 0))
        groups[group] = np.array(stats, dtype=float)
    return {"use": use, "days": day, "centers": centers, "groups": groups,
            "episodes": int(len(np.unique(unit[use]))),
            "patients": int(len(np.unique(store.patient_index[use])))}


def _runs_of(have: np.ndarray) -> list:
    """[(start, stop)] index ranges of consecutive True values."""
    edges = np.flatnonzero(np.diff(np.r_[0, have.astype(int), 0]))
    return list(zip(edges[::2], edges[1::2]))


def _summary_traces(summary: dict, group: str) -> list:
    """Median line and interquartile band of one survival group, only in bins of at least
    MIN_BIN_IMAGES images: a gap (no line, no band) across the others."""
    stats, c = summary["groups"][group], summary["centers"]
    have = stats[:, 3] >= MIN_BIN_IMAGES
    color = SURVIVAL_COLORS[group]
    bx, by = [], []
    for a, b in _runs_of(have):  # one closed band per run of summarised bins
        bx += [*c[a:b], *c[a:b][::-1], None]
        by += [*stats[a:b, 2], *stats[a:b, 1][::-1], None]
    band = go.Scatter(x=bx, y=by, fill="toself", fillcolor=color, opacity=0.18,
                      line={"width": 0}, hoverinfo="skip", showlegend=False, legendgroup=group)
    median = go.Scatter(
        x=c, y=np.where(have, stats[:, 0], np.nan), mode="lines+markers", connectgaps=False,
        name=f"{SURVIVAL_NAMES[group]}: median, IQR", legendgroup=group,
        line={"color": color, "width": 3}, customdata=stats[:, 3],
        hovertemplate=f"days %{{x:g}}±{BIN_DAYS / 2:g}: median %{{y:.0f}} "
                      "(n=%{customdata:.0f})<extra></extra>")
    return [band, median]


def cohort_figure(store: Store, keep: np.ndarray, align: str = "offset", height: int = 440,
                  day_range: tuple | None = None) -> go.Figure:
    """day_range: the x-axis (the day slider's range; its ends pool the days beyond them, as
    the end bins do). Days outside it are off the chart, not squeezed into it."""
    summary = cohort_summary(store, keep, align)
    use, day = summary["use"], summary["days"]
    word = words.unit_word(store.episodes_are_patients)  # what a faint line is
    if not use.any():
        return _message(f"No {word} in the current filter has two or more dated images.", height)
    lo, hi = day_range or (BIN_RANGE[0] - 1, BIN_RANGE[1] + 1)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.78, 0.22],
                        vertical_spacing=0.04)
    rng = np.random.default_rng(0)
    units = np.unique(store.episode_index[use])
    drawn = set(rng.choice(units, MAX_COHORT_LINES, replace=False)
                if len(units) > MAX_COHORT_LINES else units)
    pct = store.covid[S.DENSITY_PERCENTILE].to_numpy()
    ids = store.image_ids
    for group in (S.YES, S.NO, S.UNKNOWN):
        xs, ys, cd = [], [], []
        for unit in sorted(drawn):  # table order: patient, then episode
            pos = store.episode_positions[unit]
            pos = pos[use[pos]]
            if len(pos) < 2 or store.covid[S.SURVIVAL].iat[pos[0]] != group:
                continue
            xs += [*day[pos], None]
            ys += [*pct[pos], None]
            cd += [*ids[pos], None]
        color = SURVIVAL_COLORS[group]
        fig.add_trace(go.Scattergl(
            x=xs, y=ys, customdata=cd, mode="lines+markers", opacity=0.25,
            name=f"{SURVIVAL_NAMES[group]}: {word}s", legendgroup=group,
            line={"color": color, "width": 1}, marker={"size": 3, "color": color},
            hovertemplate="day %{x:g}, percentile %{y:.0f}<extra>click: select</extra>"),
            row=1, col=1)
        fig.add_traces(_summary_traces(summary, group), rows=1, cols=1)
        fig.add_trace(go.Bar(x=summary["centers"], y=summary["groups"][group][:, 3],
                             marker={"color": color}, name=f"n ({group})", showlegend=False,
                             legendgroup=group, hovertemplate="n=%{y:.0f}<extra></extra>"),
                      row=2, col=1)
    note = (f"{words.plural(summary['episodes'], word)} with ≥ 2 dated images"
            + ("" if store.episodes_are_patients else
               f" (of {words.plural(summary['patients'], 'patient')})")
            + (f"; faint lines for {MAX_COHORT_LINES} of them (medians use all)"
               if len(units) > MAX_COHORT_LINES else ""))
    fig.update_layout(
        height=height, margin={"l": 46, "r": 10, "t": 52, "b": 40}, barmode="stack",
        paper_bgcolor="white", plot_bgcolor="white", clickmode="event", hovermode="closest",
        title={"text": f"The cohort over time: {note}", "font": {"size": 12},
               "subtitle": {"text": f"Median and band only where a {BIN_DAYS}-day bin has "
                                    f"{MIN_BIN_IMAGES} or more images; gaps where it has fewer.",
                            "font": {"size": 11, "color": "#555"}}},
        legend={"orientation": "h", "y": -0.18, "x": 0, "font": {"size": 10}})
    fig.update_yaxes(title_text="density percentile", range=[-3, 103], gridcolor="#eee",
                     row=1, col=1)
    fig.update_yaxes(title_text="n", gridcolor="#eee", row=2, col=1)
    ticks = {"tick0": 0, "dtick": 5 if hi - lo <= 30 else 10}  # whole days, not bin centres
    fig.update_xaxes(range=[lo, hi], row=1, col=1, **ticks)
    fig.update_xaxes(title_text=f"{DAY_TITLES[align]} (bins of {BIN_DAYS} days; days beyond "
                                f"±{BIN_RANGE[1]} pooled into the end bins)",
                     range=[lo, hi], row=2, col=1, gridcolor="#eee", **ticks)
    return fig
