"""The export panel: figures for papers (PNG / SVG / PDF at a journal's column width) and CSV of
the filtered or selected rows (with a provenance sidecar), drawn by the same path as
`python -m cxrviz.figure` (figure.draw). The panel shows that command for the current view,
written on the server from the very settings an export of the view draws (`figure_settings`,
then figure.command), so running it redraws the same points, trajectories and arrowheads."""
from __future__ import annotations

import math

from dash import ALL, Input, Output, State, callback, clientside_callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from cxrviz import figures, ids
from cxrviz.appstate import current
from cxrviz.figures.palette import hidden_categories
from cxrviz.pages.map.callbacks import selected_positions
from cxrviz.pages.map.controls import filter_inputs, view_inputs

FORMATS = ("png", "svg", "pdf", "csv")
TAB = "export"  # the panel's tab (pages/map/__init__.py)


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
               "KDE parameters, counts, filters, day range, categories hidden in the legend, "
               "date) in its metadata; a CSV comes with a .provenance.json beside it. The same "
               "figure from a terminal:", className="muted small"),
        html.Div([html.Pre(id=ids.EXPORT_COMMAND, className="command"),
                  dcc.Clipboard(target_id=ids.EXPORT_COMMAND, title="copy the command",
                                className="copy")], className="command-row"),
        dcc.Store(id=ids.EXPORT_VIEW, data=None),
        dcc.Download(id=ids.EXPORT_DOWNLOAD), dcc.Download(id=ids.EXPORT_SIDECAR),
    ], className="panel")


# The page's state that a figure depends on beyond the filters and the view controls: time,
# whose trajectories, the clicked image, the box / lasso selection, the legend's hidden entries.
PAGE_STATE = {"align": (ids.ALIGN, "value"), "day_range": (ids.DAY_RANGE, "value"),
              "scope": (ids.TRAJ_SCOPE, "value"), "traj_ids": (ids.TRAJ_IDS, "value"),
              "selected": (ids.SELECTED, "data"), "selected_data": (ids.MAP_SELECTION, "data"),
              "hidden": (ids.HIDDEN_CATS, "data")}


def _days(page: dict) -> dict:
    """The day range as the figure takes it; the slider's ends are open ends. Checked here: the
    values reach the server through a dcc.Store, past the callback guard's slider bounds."""
    from cxrviz.compute.timeline import ALIGN_OFFSET, ALIGNMENTS
    from cxrviz.pages.map.time import DAY_HI, DAY_LO

    align = page.get("align") if page.get("align") in ALIGNMENTS else ALIGN_OFFSET
    value = page.get("day_range")
    lo, hi = DAY_LO, DAY_HI
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)):
        lo, hi = sorted(round(v) for v in value)
    return {"align": align, "from": None if lo <= DAY_LO else min(lo, DAY_HI - 1),
            "to": None if hi >= DAY_HI else max(hi, DAY_LO + 1)}


def figure_settings(store, *, preset: str, scope: str, caption_on, filters: dict, view: dict,
                    page: dict, fmt: str = "png") -> dict:
    """What the page shows, as the settings dict figure.parse_args returns for its command
    line: one dict, drawn by figure.draw and written out by figure.command."""
    from cxrviz.figure import FIGURE3_PATIENTS
    from cxrviz.pages.map.time import trajectory_patients

    known = set(store.patient_ids)
    show = set(view.get("show") or ())
    if page.get("scope") == "selection":
        pos = selected_positions(store, page.get("selected_data"))
        chosen = set(store.covid.iloc[pos]["patientid"]) if len(pos) else set()
    else:
        chosen = trajectory_patients({"scope": page.get("scope"),
                                      "ids": str(page.get("traj_ids") or "")},
                                     page.get("selected"), store)
    patients = None if chosen is None else sorted(set(chosen) & known)
    if preset == "figure3" and not patients:  # the patients of both its panels
        patients = [p for p in FIGURE3_PATIENTS if p in known]
    trajectories = "trajectories" in show and patients != []
    if not trajectories and preset != "figure3":
        patients = None  # --no-trajectories says it all
    images = None
    if scope == "selection":
        pos = selected_positions(store, page.get("selected_data"))
        images = [str(i) for i in store.image_ids[pos]]
    return {"fmt": fmt, "preset": preset, "color": view["color"], "filters": filters,
            "patients": patients, "trajectories": trajectories,
            "hidden": hidden_categories(store, view["color"], page.get("hidden")),
            "images": images, "days": _days(page), "density": "density" in show,
            "density_style": "contours" if view.get("density_style") == "contours" else "heatmap",
            "dim": view["mode"] == "dim" and images is None, "caption": bool(caption_on)}


@callback(Output(ids.EXPORT_DOWNLOAD, "data"), Output(ids.EXPORT_SIDECAR, "data"),
          Output(ids.EXPORT_STATUS, "children"),
          inputs={"clicks": Input({"type": ids.EXPORT_BUTTON, "index": ALL}, "n_clicks"),
                  "preset": State(ids.EXPORT_PRESET, "value"),
                  "scope": State(ids.EXPORT_SCOPE, "value"),
                  "caption_on": State(ids.EXPORT_CAPTION, "value"),
                  "filters": filter_inputs(State), "view": view_inputs(State),
                  "page": {k: State(*v) for k, v in PAGE_STATE.items()}},
          prevent_initial_call=True)
def export(clicks, preset, scope, caption_on, filters, view, page):
    from cxrviz.export import export_csv, settings_provenance, view_masks
    from cxrviz.figure import command, draw

    if not isinstance(ctx.triggered_id, dict) or not any(clicks):
        raise PreventUpdate
    fmt = ctx.triggered_id["index"]
    if fmt not in FORMATS or preset not in figures.PRESETS:
        raise PreventUpdate
    app = current()
    store = app.store
    s = figure_settings(store, preset=preset, scope=scope, caption_on=caption_on,
                        filters=filters, view=view, page=page, fmt=fmt)
    if s["images"] == []:
        return no_update, no_update, "Nothing selected: use box or lasso select first."
    if fmt == "csv":  # the rows of the images the figure shows, and the figure's command
        masks = view_masks(store, s)
        prov = settings_provenance(store, s, masks, command(
            app.artifact_path, f"cxrviz-{preset}.png", s, store))
        data, sidecar, name, side_name = export_csv(store, masks["shown"], prov)
        return (dcc.send_bytes(data, name), dcc.send_bytes(sidecar, side_name),
                f"CSV: {int(masks['shown'].sum())} rows, with {side_name}")
    name = f"cxrviz-{preset}.{fmt}"
    data, _ = draw(store, app.artifact_path, name, s)
    return dcc.send_bytes(data, name), no_update, f"{fmt.upper()} ready ({len(data) // 1024} KB)"


# The page's state reaches the server only while the export tab is open and no playback runs:
# a day range moved (or played) on another tab costs no request.
clientside_callback(
    f"""function (tab, playing, ...values) {{
        if (tab !== "{TAB}" || playing === false) return window.dash_clientside.no_update;
        const keys = {list(PAGE_STATE)!r};
        return Object.fromEntries(keys.map((k, i) => [k, values[i]]));
    }}""",
    Output(ids.EXPORT_VIEW, "data"),
    Input(ids.TABS, "value"), Input(ids.PLAY_TICK, "disabled"),
    *[Input(*v) for v in PAGE_STATE.values()])


@callback(Output(ids.EXPORT_COMMAND, "children"),
          inputs={"page": Input(ids.EXPORT_VIEW, "data"),
                  "preset": Input(ids.EXPORT_PRESET, "value"),
                  "scope": Input(ids.EXPORT_SCOPE, "value"),
                  "caption_on": Input(ids.EXPORT_CAPTION, "value"),
                  "filters": filter_inputs(), "view": view_inputs(),
                  "tab": State(ids.TABS, "value")})
def show_command(page, preset, scope, caption_on, filters, view, tab):
    """The command that draws the view an export would draw now (its PNG)."""
    from cxrviz.figure import command

    if tab != TAB or not isinstance(page, dict) or preset not in figures.PRESETS:
        raise PreventUpdate
    app = current()
    s = figure_settings(app.store, preset=preset, scope=scope, caption_on=caption_on,
                        filters=filters, view=view, page=page)
    if s["images"] == []:
        return "Nothing selected: use box or lasso select first."
    return command(app.artifact_path, f"cxrviz-{preset}.png", s, app.store)
