"""The map itself: one WebGL view (frontend/, built into assets/map/; its data from
cxrviz/map_data.py), which takes every view change in the browser (assets/cxrviz.js: mapView,
mapState) and answers through two stores: MAP_CLICK (a click: the selection callbacks read it)
and MAP_SELECTION (a box / lasso: its polygon, summarised here in numpy). A selection brings the
detail panel into view where it sits under the map."""
from __future__ import annotations

import json

import numpy as np
from dash import ClientsideFunction, Input, Output, callback, clientside_callback, dcc, html

from cxrviz import ids, words
from cxrviz import schema as S
from cxrviz.appstate import current
from cxrviz.map_columns import selection_counts

def map_state(store, st: dict, t: dict) -> dict:
    """The view the URL asked for, as the map's first state (its element's data-state): the
    page's element and the shell's (shell.py) carry the same, so the map drawn in the shell
    moves into the page's."""
    from cxrviz.pages.map import time as time_part
    from cxrviz.pages.map import urlstate

    view = st["view"]
    lo = time_part.DAY_LO if t["lo"] is None else t["lo"]
    hi = time_part.DAY_HI if t["hi"] is None else t["hi"]
    return {"query": urlstate.encode(st["filters"], view, st["selected"], store),
            "align": t["align"], "range": [lo, hi], "mode": view["mode"],
            "selected": st["selected"] or "", "scope": t["scope"], "ids": t["ids"],
            "color": view["color"], "show": view["show"], "opacity": view["opacity"],
            "density_style": view["density_style"], "hidden": []}


def map_element(store, st: dict, t: dict) -> list:
    """The map's element, with its first state (map_state; the JS reads data-state once, then
    takes changes from the callbacks), and the stores it answers in."""
    state = json.dumps(map_state(store, st, t))
    return [html.Div(id=ids.MAP, className="map map-gl", **{"data-state": state}),
            dcc.Store(id=ids.MAP_CLICK, data=None), dcc.Store(id=ids.MAP_SELECTION, data=None),
            dcc.Store(id=ids.MAP_SINK, data="")]


def selected_positions(store, selection) -> np.ndarray:
    """Row positions inside a box / lasso (MAP_SELECTION's {polygon, query}) among the points
    the query shows: the rule of /api/map/select (map_data.selected_mask), checked there."""
    from cxrviz.map_data import selected_mask

    if not isinstance(selection, dict) or not selection.get("polygon"):
        return np.array([], dtype=int)
    return np.flatnonzero(selected_mask(store, selection.get("polygon"),
                                        str(selection.get("query") or "")))


@callback(Output(ids.SELECTION_SUMMARY, "children"),
          inputs={"selection": Input(ids.MAP_SELECTION, "data")})
def selection_summary(selection):
    store = current().store
    pos = selected_positions(store, selection)
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


# filters (the page query), colour, layers, density style and opacity go to the map directly
clientside_callback(ClientsideFunction(namespace="cxrviz", function_name="mapView"),
                    Output(ids.MAP_SINK, "data"), Input(ids.QUERY, "data"),
                    Input(ids.COLOR_BY, "value"), Input(ids.SHOW, "value"),
                    Input(ids.DENSITY_OPACITY, "value"), Input(ids.DENSITY_STYLE, "value"),
                    prevent_initial_call=True)
clientside_callback(ClientsideFunction(namespace="cxrviz", function_name="mapSelection"),
                    Output(ids.MAP_SINK, "data", allow_duplicate=True),
                    Input(ids.MAP_SELECTION, "data"), prevent_initial_call=True)
clientside_callback(ClientsideFunction(namespace="cxrviz", function_name="mapUploads"),
                    Output(ids.MAP_SINK, "data", allow_duplicate=True),
                    Input(ids.UPLOADS, "data"), prevent_initial_call=True)
