"""The export panel: figures for papers (PNG / SVG / PDF at a journal's column width) and CSV of
the filtered or selected rows (with a provenance sidecar), drawn by the same builders as
`python -m cxrviz.figure`, whose command for the current view the panel shows."""
from __future__ import annotations

import numpy as np
from dash import (ALL, ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx,
                  dcc, html, no_update)
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
        dcc.Checklist(id=ids.EXPORT_CAPTION, value=[], className="checklist",
                      options=[{"label": " print the caption on the figure", "value": "on"}]),
        html.Div([html.Button(fmt.upper(), id={"type": ids.EXPORT_BUTTON, "index": fmt},
                              className="button") for fmt in FORMATS],
                 className="buttons"),
        dcc.Loading(html.Div(id=ids.EXPORT_STATUS, className="muted")),
        html.P("Every file records what made it (artifact, weights and their sha256, UMAP and "
               "KDE parameters, counts, filters, day range, date) in its metadata; a CSV comes "
               "with a .provenance.json beside it. The same figure from a terminal:",
               className="muted small"),
        html.Div([html.Pre(id=ids.EXPORT_COMMAND, className="command"),
                  dcc.Clipboard(target_id=ids.EXPORT_COMMAND, title="copy the command",
                                className="copy")], className="command-row"),
        dcc.Store(id=ids.EXPORT_COMMAND_BASE, data=""),
        dcc.Download(id=ids.EXPORT_DOWNLOAD), dcc.Download(id=ids.EXPORT_SIDECAR),
    ], className="panel")


def _time_state():
    return {"align": State(ids.ALIGN, "value"), "day_range": State(ids.DAY_RANGE, "value"),
            "scope": State(ids.TRAJ_SCOPE, "value"), "traj_ids": State(ids.TRAJ_IDS, "value")}


def figure_settings(store, preset, filters, view, time, selected, selected_data) -> dict:
    """What the page shows, as the figure builders and the command line take it."""
    from cxrviz.figure import FIGURE3_PATIENTS
    from cxrviz.pages.map.time import DAY_HI, DAY_LO, trajectory_patients

    lo, hi = time["day_range"] or [DAY_LO, DAY_HI]
    days = {"align": time["align"] or "offset", "from": None if lo <= DAY_LO else lo,
            "to": None if hi >= DAY_HI else hi}
    scope = {"scope": time["scope"], "ids": time["traj_ids"] or ""}
    if time["scope"] == "selection":
        pos = selected_positions(store, selected_data)
        patients = sorted(set(store.covid.iloc[pos]["patientid"])) if len(pos) else []
    else:
        chosen = trajectory_patients(scope, selected, store)
        patients = None if chosen is None else sorted(chosen)
    if preset == "figure3" and not patients:
        patients = [p for p in FIGURE3_PATIENTS if p in set(store.patient_ids)]
    return {"days": days, "patients": patients}


@callback(Output(ids.EXPORT_DOWNLOAD, "data"), Output(ids.EXPORT_SIDECAR, "data"),
          Output(ids.EXPORT_STATUS, "children"),
          inputs={"clicks": Input({"type": ids.EXPORT_BUTTON, "index": ALL}, "n_clicks"),
                  "preset": State(ids.EXPORT_PRESET, "value"),
                  "scope": State(ids.EXPORT_SCOPE, "value"),
                  "caption_on": State(ids.EXPORT_CAPTION, "value"),
                  "selected_data": State(ids.MAP, "selectedData"),
                  "selected": State(ids.SELECTED, "data"),
                  "command": State(ids.EXPORT_COMMAND, "children"),
                  "filters": filter_inputs(State), "view": view_inputs(State),
                  "time": _time_state()},
          prevent_initial_call=True)
def export(clicks, preset, scope, caption_on, selected_data, selected, command, filters, view,
           time):
    from cxrviz.export import export_csv, export_image, provenance

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
            return no_update, no_update, "Nothing selected: use box or lasso select first."
        keep = np.zeros(len(store.covid), bool)
        keep[pos] = True
    s = figure_settings(store, preset, filters, view, time, selected, selected_data)
    days = s["days"]
    in_days = store.day_mask(days["align"], days["from"], days["to"])
    shown = keep if in_days is None else keep & in_days
    prov = provenance(store, shown, filters=filters, days=days, command=command,
                      view={"color": view["color"], "preset": preset,
                            "density": "density" in (view["show"] or [])},
                      patients=s["patients"])
    if fmt == "csv":
        data, sidecar, name, side_name = export_csv(store, shown, prov)
        return (dcc.send_bytes(data, name), dcc.send_bytes(sidecar, side_name),
                f"CSV: {int(shown.sum())} rows, with {side_name}")
    data, name = export_image(
        store, fmt, preset, keep=keep, prov=prov, caption_on=bool(caption_on),
        color_by=view["color"], in_days=in_days, patients=s["patients"],
        density="density" in (view["show"] or []),
        filtered_mode="hide" if scope == "selection" else view["mode"], align=days["align"])
    return dcc.send_bytes(data, name), no_update, f"{fmt.upper()} ready ({len(data) // 1024} KB)"


@callback(Output(ids.EXPORT_COMMAND_BASE, "data"),
          inputs={"tab": Input(ids.TABS, "value"), "preset": Input(ids.EXPORT_PRESET, "value"),
                  "caption_on": Input(ids.EXPORT_CAPTION, "value"),
                  "filters": filter_inputs(), "view": view_inputs()})
def command_base(tab, preset, caption_on, filters, view):
    """The command without its time part (the browser adds day range, alignment, patients)."""
    from cxrviz.figure import command

    if tab != "export":
        raise PreventUpdate
    app = current()
    fmt = "png"
    return command(app.artifact_path, f"cxrviz-{preset}.{fmt}", preset, color=view["color"],
                   filters=filters, store=app.store,
                   density="density" in (view["show"] or []), dim=view["mode"] == "dim",
                   caption=bool(caption_on))


clientside_callback(
    ClientsideFunction(namespace="cxrviz", function_name="exportCommand"),
    Output(ids.EXPORT_COMMAND, "children"),
    Input(ids.EXPORT_COMMAND_BASE, "data"), Input(ids.DAY_RANGE, "value"), Input(ids.ALIGN, "value"),
    Input(ids.TRAJ_SCOPE, "value"), Input(ids.TRAJ_IDS, "value"), Input(ids.SELECTED, "data"),
    Input(ids.MAP, "selectedData"), Input(ids.EXPORT_PRESET, "value"),
    State(ids.TIME_DATA, "data"))
