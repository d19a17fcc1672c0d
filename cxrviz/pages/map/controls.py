"""The sidebar: view controls and the filters (built from the filter table), and the callback
inputs that read them, as dicts keyed like the table."""
from __future__ import annotations

from dash import Input, Output, callback, dcc, html

from cxrviz import figures, ids
from cxrviz.appstate import current
from cxrviz.filters import FILTERS, IDS, LIST, MIN_IMAGES, RANGE

LAYER_LABELS = {"density": " bad-state density", "trajectories": " trajectories",
                "rsna": " RSNA reference cloud"}
VIEW_IDS = {"color": ids.COLOR_BY, "show": ids.SHOW, "density_style": ids.DENSITY_STYLE,
            "opacity": ids.DENSITY_OPACITY, "mode": ids.FILTERED_MODE}


def filter_inputs(kind=Input) -> dict:
    """{filter key: Input(component, "value")}: a callback receives {key: value}."""
    return {f.key: kind(f.cid, "value") for f in FILTERS}


def view_inputs(kind=Input) -> dict:
    return {key: kind(cid, "value") for key, cid in VIEW_IDS.items()}


def labelled(label, component, **kw):
    return html.Div([html.Label(label, className="control-label"), component],
                    className="control", **kw)


def filter_control(f, store, value):
    """One filter's component, by kind."""
    if f.kind == LIST:
        return dcc.Dropdown(id=f.cid, options=store.options(f.column), value=value, multi=True,
                            placeholder="all")
    if f.kind == RANGE:
        lo, hi = store.ranges[f.key]
        return dcc.RangeSlider(id=f.cid, min=lo, max=hi, step=1, value=value, marks=None,
                               tooltip={"placement": "bottom", "always_visible": True})
    if f.kind == MIN_IMAGES:
        return dcc.Input(id=f.cid, type="number", min=1, step=1, value=value, debounce=True)
    if f.kind == IDS:
        return dcc.Input(id=f.cid, type="text", value=value, placeholder="e.g. 205",
                         debounce=True)
    raise ValueError(f"unknown filter kind {f.kind!r}")


def filter_controls(store, filters: dict) -> list:
    return [*(labelled(f.label, filter_control(f, store, filters[f.key])) for f in FILTERS),
            html.Button("Reset filters", id=ids.RESET, className="button")]


def view_controls(store, view: dict) -> list:
    layers = [k for k in LAYER_LABELS if k != "rsna" or len(store.rsna)]
    return [
        labelled("Colour by", dcc.Dropdown(id=ids.COLOR_BY, value=view["color"], clearable=False,
                                           options=figures.color_options(store.pathologies))),
        dcc.Checklist(id=ids.SHOW, value=view["show"], className="checklist",
                      options=[{"label": LAYER_LABELS[k], "value": k} for k in layers]),
        labelled("Density as", dcc.RadioItems(id=ids.DENSITY_STYLE, inline=True,
                                              value=view["density_style"],
                                              options=["heatmap", "contours"])),
        labelled("Density opacity", dcc.Slider(id=ids.DENSITY_OPACITY, min=0, max=1, step=0.05,
                                               value=view["opacity"], marks=None)),
        labelled("Filtered-out images", dcc.RadioItems(id=ids.FILTERED_MODE, inline=True,
                                                       value=view["mode"],
                                                       options=["dim", "hide"])),
    ]


@callback(output=filter_inputs(Output), inputs={"clicks": Input(ids.RESET, "n_clicks")},
          prevent_initial_call=True)
def reset_filters(clicks):
    return current().store.default_filters()

