"""Colours, symbols and labels of the map: one place, colour-blind safe (Okabe & Ito; Viridis)."""
from __future__ import annotations

import numpy as np
from plotly import colors as plotly_colors
from scipy.special import expit

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


COLOR_LABELS = {
    S.STATE: "state", S.SURVIVAL: "survival", S.FINDING_GROUP: "finding group", S.VIEW: "view",
    S.CONTINENT: "continent", S.SEX: "sex", S.AGE: "age (years)", S.OFFSET: "offset (days)",
    S.BAD_DENSITY: "bad-state density",
}


def probability(logits) -> np.ndarray:
    """A raw model output (logit) as the probability the panels and colours show: its sigmoid
    (scipy's expit, which neither overflows nor warns at extreme logits)."""
    return expit(np.asarray(logits, dtype=float))


def color_options(store: Store) -> list:
    """What the map can be coloured by: the columns this artifact has values for (the store's
    one rule, Store.has_known: no continent on a MIMIC map), then each model output."""
    opts = [{"label": label, "value": col} for col, label in COLOR_LABELS.items()
            if col == S.STATE or store.has_known(col)]
    return opts + [{"label": f"model output: {p}", "value": S.logit_column(p)}
                   for p in store.pathologies]


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


def hidden_categories(store: Store, column: str, positions) -> list:
    """The legend's hidden entries, as the page keeps them (their positions among the colour's
    categories), -> the category values they name, in legend order. Anything else a request
    holds (another colour's position, a non-integer) names nothing and is dropped."""
    if column not in CATEGORICAL:
        return []
    cats = list(category_colors(store, column))
    wanted = {i for i in positions or () if isinstance(i, int) and not isinstance(i, bool)}
    return [c for i, c in enumerate(cats) if i in wanted]


def hidden_mask(store: Store, column: str, hidden) -> np.ndarray:
    """Per image: is its colour category among `hidden` (values of `column`)? By the colour
    codes the map's points and legend use, so an image without a value is hidden with the
    category it is drawn in."""
    cats = list(category_colors(store, column)) if column in CATEGORICAL else []
    codes = [i for i, c in enumerate(cats) if c in set(hidden or ())]
    if not codes:
        return np.zeros(len(store.covid), bool)
    return np.isin(point_colors(store, column)["marker"]["color"], codes)


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
                "legend": colors, "title": COLOR_LABELS[column], "column": column}
    values = store.covid[column].to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    if column.startswith(S.LOGIT_PREFIX):  # probabilities, on their whole 0-1 scale
        values = probability(values)
        title = f"P({column[len(S.LOGIT_PREFIX):]})"
        lo, hi = 0.0, 1.0
    elif column == S.BAD_DENSITY:  # the density as the side panels give it: a percentile
        values = store.covid[S.DENSITY_PERCENTILE].to_numpy(dtype=float)
        title = "bad-state density (percentile)"
        lo, hi = 0.0, 100.0
    else:
        title = COLOR_LABELS.get(column, column)
    scale, legend = CONTINUOUS_SCALE, {}
    missing = ~np.isfinite(values)
    if missing.any():  # unknown values: grey, below the scale, with a legend entry of their own
        pad = (hi - lo or 1.0) * 0.04
        f = pad / ((hi - lo or 1.0) + pad)
        viridis = plotly_colors.sequential.Viridis
        scale = [[0, GREY], [f * 0.999, GREY],
                 *([f + (1 - f) * i / (len(viridis) - 1), c] for i, c in enumerate(viridis))]
        values = np.where(missing, lo - pad, values)
        lo = lo - pad
        legend = {f"{title.split(' (')[0]} unknown": GREY}
    return {"marker": {"color": values,
                       "colorscale": scale, "cmin": lo, "cmax": hi, "showscale": True,
                       "colorbar": {"title": {"text": title, "side": "top"}, "orientation": "h",
                                    "x": 0.52, "xanchor": "left", "y": -0.13,
                                    "yanchor": "top", "len": 0.45, "thickness": 9}},
            "legend": legend, "title": title, "column": column}
