"""The map itself, drawn by one of two engines: Plotly (a dcc.Graph whose figure the view
controls patch, only the traces that changed) or, opted into with `?map=webgl` or
CXRVIZ_MAP=webgl, the WebGL map (frontend/, built into assets/map/; its data from
cxrviz/map_data.py). Box / lasso selections are summarised; a selection brings the detail
panel into view where it sits under the map."""
from __future__ import annotations

import base64
import json
import os

import numpy as np
import plotly.graph_objects as go
from dash import (ClientsideFunction, Input, Output, Patch, State, callback, clientside_callback,
                  ctx, dcc, html)
from dash.exceptions import PreventUpdate

from cxrviz import figures, ids, words
from cxrviz import schema as S
from cxrviz.appstate import current
from cxrviz.pages.common import graph_config
from cxrviz.map_columns import selection_counts
from cxrviz.pages.map.controls import view_inputs

WEBGL, PLOTLY = "webgl", "plotly"
ENGINE_ENV = "CXRVIZ_MAP"  # webgl: the WebGL map unless a URL asks for map=plotly


def engine(query: dict) -> str:
    """Which engine draws the map: the URL's map=webgl|plotly, else CXRVIZ_MAP, else Plotly."""
    asked = query.get("map")
    asked = asked[0] if isinstance(asked, (list, tuple)) and asked else asked
    if asked in (WEBGL, PLOTLY):
        return asked
    return WEBGL if os.environ.get(ENGINE_ENV, "").strip().lower() == WEBGL else PLOTLY


def _graph(fig, **extra):
    return dcc.Graph(id=ids.MAP, figure=fig, className="map", **extra,
                     config=graph_config(scrollZoom=True, toImageButtonOptions={
                         "format": "png", "scale": 3}))


SLIM_TIME_DATA = ("n", "day_lo", "day_hi", "default_scope", "align_events", "many_edges",
                  "n_edges", "patients")


def time_data_for(engine_name: str, data: dict) -> dict:
    """What the page's time controls hold for the browser: the WebGL map reads its columns
    from its own routes, so the page keeps only the scalars and the patient list
    (assets/cxrviz.js: play, the URL, the export command), not the per-image arrays."""
    return {k: data[k] for k in SLIM_TIME_DATA} if engine_name == WEBGL else data


def map_element(store, st: dict, t: dict, keep, in_days, query: dict) -> list:
    """The map's element(s) for the page's engine. With WebGL the Plotly graph stays, empty and
    hidden, so that every callback that reads its clickData / selectedData or patches its
    figure keeps working; the WebGL map sets clickData on a click."""
    from cxrviz.pages.map import time as time_part
    from cxrviz.pages.map import urlstate

    view = st["view"]
    if engine(query) == PLOTLY:
        fig = figures.map_figure(
            store, color_by=view["color"], keep=keep, filtered_mode=view["mode"],
            show=view["show"], density_style=view["density_style"],
            density_opacity=view["opacity"], selected=st["selected"], in_days=in_days,
            trajectory_patients=time_part.trajectory_patients(t, st["selected"], store))
        return [_graph(fig), dcc.Store(id=ids.MAP_ENGINE, data=PLOTLY),
                dcc.Store(id=ids.MAP_SINK, data="")]
    empty = go.Figure([go.Scatter(x=[], y=[]) for _ in figures.TRACE])  # patches find traces
    lo = time_part.DAY_LO if t["lo"] is None else t["lo"]
    hi = time_part.DAY_HI if t["hi"] is None else t["hi"]
    state = {"query": urlstate.encode(st["filters"], view, st["selected"], store),
             "align": t["align"], "range": [lo, hi], "mode": view["mode"],
             "selected": st["selected"] or "", "scope": t["scope"], "ids": t["ids"],
             "color": view["color"], "show": view["show"], "opacity": view["opacity"],
             "density_style": view["density_style"], "hidden": []}
    return [_graph(empty, style={"display": "none"}),
            html.Div(id=ids.MAP_GL, className="map map-gl", **{"data-state": json.dumps(state)}),
            dcc.Store(id=ids.MAP_ENGINE, data=WEBGL), dcc.Store(id=ids.MAP_SINK, data="")]


PLOTLY_TYPED = {np.dtype(t) for t in ("f8", "f4", "i4", "u4", "i2", "u2", "i1", "u1")}


def typed(values):
    """numpy -> plotly.js's documented typed-array form {dtype, bdata (base64)}: a fraction of
    a JSON list's size. 64-bit integers (which plotly.js has no type for) go as float64."""
    arr = np.ascontiguousarray(values)
    if arr.dtype not in PLOTLY_TYPED:
        arr = arr.astype(np.float64)
    arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    return {"dtype": arr.dtype.str[1:], "bdata": base64.b64encode(arr.tobytes()).decode("ascii")}


@callback(Output(ids.MAP, "figure"),
          inputs={"view": {k: v for k, v in view_inputs().items() if k != "mode"},
                  "selected": Input(ids.SELECTED, "data"),
                  "engine": State(ids.MAP_ENGINE, "data")},
          prevent_initial_call=True)
def update_map(view, selected, engine=PLOTLY):
    """Patch only the traces that the changed control affects. Points and trajectories (filters,
    day range, dimming) are drawn in the browser (pages/map/time.py). The WebGL map takes
    these changes in the browser (mapView below)."""
    if engine == WEBGL:
        raise PreventUpdate
    store = current().store
    changed = {t["prop_id"].split(".")[0] for t in ctx.triggered}
    patch = Patch()
    T = figures.TRACE
    show = set(view["show"] or ())
    if ids.SHOW in changed:
        patch["data"][T["density"]]["visible"] = "density" in show
        patch["data"][T["rsna"]]["visible"] = bool("rsna" in show and len(store.rsna))
        for name in figures.TRAJECTORY_TRACES:
            patch["data"][T[name]]["visible"] = "trajectories" in show
    if ids.DENSITY_STYLE in changed:
        patch["data"][T["density"]] = figures.density_trace(
            store, view["density_style"], view["opacity"], "density" in show).to_plotly_json()
    elif ids.DENSITY_OPACITY in changed:
        patch["data"][T["density"]]["opacity"] = view["opacity"]
    if ids.COLOR_BY in changed:
        colors = figures.point_colors(store, view["color"])
        points = patch["data"][T["points"]]["marker"]
        points["color"] = typed(colors["marker"]["color"])
        for key in ("colorscale", "cmin", "cmax"):
            points[key] = colors["marker"][key]
    if ids.SELECTED in changed:
        hx, hy = figures.highlight_path(store, selected)
        sx, sy = figures.selected_point(store, selected)
        patch["data"][T["highlight"]]["x"], patch["data"][T["highlight"]]["y"] = hx, hy
        patch["data"][T["selected"]]["x"], patch["data"][T["selected"]]["y"] = sx, sy
    return patch


def selected_positions(store, selected_data) -> np.ndarray:
    points = (selected_data or {}).get("points") or []
    pos = [store.position.get(p.get("customdata")) for p in points]
    return np.array(sorted({p for p in pos if p is not None}), dtype=int)


@callback(Output(ids.SELECTION_SUMMARY, "children"),
          inputs={"selected_data": Input(ids.MAP, "selectedData")})
def selection_summary(selected_data):
    store = current().store
    pos = selected_positions(store, selected_data)
    if not len(pos):
        return [html.H4("Selection"),
                html.P("Use box or lasso select on the map to summarise a region.",
                       className="muted")]
    rows = store.covid.iloc[pos]
    tables = [html.Div([html.H5(title), html.Table(
        [html.Tr([html.Td(label), html.Td(n)]) for label, n in counts], className="counts")],
        className="summary-block") for title, counts in selection_counts(store, rows)]
    return [html.H4(f"Selection: {words.plural(len(rows), 'image')}, "
                    f"{words.plural(rows[S.PATIENTID].nunique(), 'patient')}"),
            html.Div(tables, className="summary-grid")]


# below 1280 px a click fills a detail panel under the map: bring it into view (the browser
# knows where the panel is; no output)
clientside_callback(ClientsideFunction(namespace="cxrviz", function_name="revealDetail"),
                    Input(ids.SELECTED, "data"), prevent_initial_call=True)


# the WebGL map: filters (the page query), colour, layers and density opacity go to it directly
clientside_callback(ClientsideFunction(namespace="cxrviz", function_name="mapView"),
                    Output(ids.MAP_SINK, "data"), Input(ids.QUERY, "data"),
                    Input(ids.COLOR_BY, "value"), Input(ids.SHOW, "value"),
                    Input(ids.DENSITY_OPACITY, "value"), prevent_initial_call=True)
clientside_callback(ClientsideFunction(namespace="cxrviz", function_name="mapUploads"),
                    Output(ids.MAP_SINK, "data", allow_duplicate=True),
                    Input(ids.UPLOADS, "data"), prevent_initial_call=True)
