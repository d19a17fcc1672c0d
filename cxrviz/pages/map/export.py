"""The export panel: figures for papers (PNG / SVG / PDF) and CSV of the filtered or selected rows,
built by the same figure builders as the map."""
from __future__ import annotations

import numpy as np
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from cxrviz import figures, ids
from cxrviz.appstate import current
from cxrviz.pages.map.callbacks import selected_positions
from cxrviz.pages.map.controls import filter_inputs, view_inputs

FORMATS = ("png", "svg", "pdf", "csv")


def export_panel():
    return html.Div([
        html.H4("Export"),
        dcc.RadioItems(id=ids.EXPORT_PRESET, value="single", className="radio",
                       options=[{"label": f" {p['label']}", "value": k}
                                for k, p in figures.PRESETS.items()]),
        dcc.RadioItems(id=ids.EXPORT_SCOPE, value="filtered", inline=True, className="radio",
                       options=[{"label": " filtered images", "value": "filtered"},
                                {"label": " box/lasso selection", "value": "selection"}]),
        html.Div([html.Button(fmt.upper(), id={"type": ids.EXPORT_BUTTON, "index": fmt},
                              className="button") for fmt in FORMATS],
                 className="buttons"),
        dcc.Loading(html.Div(id=ids.EXPORT_STATUS, className="muted")),
        dcc.Download(id=ids.EXPORT_DOWNLOAD),
    ], className="panel")


@callback(Output(ids.EXPORT_DOWNLOAD, "data"), Output(ids.EXPORT_STATUS, "children"),
          inputs={"clicks": Input({"type": ids.EXPORT_BUTTON, "index": ALL}, "n_clicks"),
                  "preset": State(ids.EXPORT_PRESET, "value"),
                  "scope": State(ids.EXPORT_SCOPE, "value"),
                  "selected_data": State(ids.MAP, "selectedData"),
                  "selected": State(ids.SELECTED, "data"),
                  "uploads": State(ids.UPLOADS, "data"),
                  "filters": filter_inputs(State), "view": view_inputs(State)},
          prevent_initial_call=True)
def export(clicks, preset, scope, selected_data, selected, uploads, filters, view):
    from cxrviz.export import export_csv, export_image

    if not isinstance(ctx.triggered_id, dict) or not any(clicks):
        raise PreventUpdate
    fmt = ctx.triggered_id["index"]
    if fmt not in FORMATS or preset not in figures.PRESETS:
        raise PreventUpdate
    store = current().store
    keep = store.mask(filters)
    if scope == "selection":
        pos = selected_positions(store, selected_data)
        if not len(pos):
            return no_update, "Nothing selected: use box or lasso select first."
        keep = np.zeros(len(store.covid), bool)
        keep[pos] = True
    if fmt == "csv":
        data, name = export_csv(store, keep)
        return dcc.send_bytes(data, name), f"CSV: {int(keep.sum())} rows"
    data, name = export_image(store, fmt, preset, keep=keep, color_by=view["color"],
                              show=view["show"], density_style=view["density_style"],
                              density_opacity=view["opacity"],
                              filtered_mode="hide" if scope == "selection" else view["mode"],
                              selected=selected, uploads=uploads)
    return dcc.send_bytes(data, name), f"{fmt.upper()} ready ({len(data) // 1024} KB)"
