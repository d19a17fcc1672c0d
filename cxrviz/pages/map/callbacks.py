"""The map itself: view controls patch the figure (only the traces that changed); box / lasso
selections are summarised; a selection brings the detail panel into view where it sits under
the map."""
from __future__ import annotations

import numpy as np
from _plotly_utils.utils import to_typed_array_spec
from dash import ClientsideFunction, Input, Output, Patch, callback, clientside_callback, ctx, html

from cxrviz import figures, ids, words
from cxrviz import schema as S
from cxrviz.appstate import current
from cxrviz.pages.map.controls import view_inputs


def typed(values):
    """numpy -> plotly.js typed-array spec (base64): a fraction of a JSON list's size."""
    return to_typed_array_spec(np.asarray(values))


@callback(Output(ids.MAP, "figure"),
          inputs={"view": {k: v for k, v in view_inputs().items() if k != "mode"},
                  "selected": Input(ids.SELECTED, "data")},
          prevent_initial_call=True)
def update_map(view, selected):
    """Patch only the traces that the changed control affects. Points and trajectories (filters,
    day range, dimming) are drawn in the browser (pages/map/time.py)."""
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
    tables = []
    for column, title in ((S.STATE, "State"), (S.SURVIVAL, "Outcome"),
                          (S.FINDING_GROUP, "Finding group"), (S.CONTINENT, "Continent")):
        counts = rows[column].value_counts()
        tables.append(html.Div([html.H5(title), html.Table(
            [html.Tr([html.Td(words.value(column, k)), html.Td(int(v))])
             for k, v in counts.items()], className="counts")], className="summary-block"))
    return [html.H4(f"Selection: {words.plural(len(rows), 'image')}, "
                    f"{words.plural(rows[S.PATIENTID].nunique(), 'patient')}"),
            html.Div(tables, className="summary-grid")]


# below 1280 px a click fills a detail panel under the map: bring it into view (the browser
# knows where the panel is; no output)
clientside_callback(ClientsideFunction(namespace="cxrviz", function_name="revealDetail"),
                    Input(ids.SELECTED, "data"), prevent_initial_call=True)
