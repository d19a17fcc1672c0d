"""The map page: layout from the URL's query string, and every callback of the page.

Callbacks send only what changed (dash.Patch on the figure); nothing here reads a file: the
store was loaded once at start-up.
"""
from __future__ import annotations

import base64
from urllib.parse import urlencode

import numpy as np
from _plotly_utils.utils import to_typed_array_spec
from dash import ALL, Input, Output, Patch, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from cxrviz import figures, ids
from cxrviz import schema as S
from cxrviz.appstate import get_service, get_store
from cxrviz.placement_service import LOADING
from cxrviz.store import LIST_FILTERS

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
SALIENCY_NOTE = ("Saliency is the magnitude of the gradient of the chosen output's logit with "
                 "respect to the model's 224 px input, smoothed: where small changes would move "
                 "that output most. It is not a segmentation, not a localisation of disease and "
                 "not evidence that the model is right. For collection images it is computed on "
                 "the artifact's display image.")

LAYERS = [{"label": " bad-state density", "value": "density"},
          {"label": " trajectories", "value": "trajectories"},
          {"label": " RSNA reference cloud", "value": "rsna"}]
DEFAULT_LAYERS = ["density", "trajectories", "rsna"]
DEFAULT_COLOR = S.STATE
DEFAULT_OPACITY = 0.55

# filter key -> component id (list filters); order = layout order
LIST_FILTER_IDS = {
    "continent": ids.F_CONTINENT, "subregion": ids.F_SUBREGION, "country": ids.F_COUNTRY,
    "view": ids.F_VIEW, "finding_group": ids.F_FINDING, "sex": ids.F_SEX,
    "survival": ids.F_SURVIVAL, "icu": ids.F_ICU, "intubation": ids.F_INTUBATION,
    "state": ids.F_STATE,
}
FILTER_LABELS = {
    "continent": "Continent", "subregion": "UN subregion", "country": "Country",
    "view": "View", "finding_group": "Finding group", "sex": "Sex", "survival": "Survival",
    "icu": "In ICU (at image time)", "intubation": "Intubated (at image time)",
    "state": "State",
}
FILTER_INPUTS = [Input(i, "value") for i in LIST_FILTER_IDS.values()] + [
    Input(ids.F_AGE, "value"), Input(ids.F_MIN_IMAGES, "value"), Input(ids.F_PATIENT, "value")]
VIEW_INPUTS = [Input(ids.COLOR_BY, "value"), Input(ids.SHOW, "value"),
               Input(ids.DENSITY_STYLE, "value"), Input(ids.DENSITY_OPACITY, "value"),
               Input(ids.FILTERED_MODE, "value")]
FILTER_IDS = [*LIST_FILTER_IDS.values(), ids.F_AGE, ids.F_MIN_IMAGES, ids.F_PATIENT]


def filters_from(values) -> dict:
    """Positional values of FILTER_INPUTS -> the store's filter dict."""
    keys = [*LIST_FILTER_IDS, "age", "min_images", "patient"]
    return dict(zip(keys, values))


# ---- URL state -------------------------------------------------------------------------------
def query_from(filters: dict, view: dict, selected: str | None, store) -> str:
    pairs = []
    for key in LIST_FILTER_IDS:
        pairs += [(key, v) for v in (filters.get(key) or [])]
    age = filters.get("age")
    if age and tuple(age) != tuple(store.age_range):
        pairs.append(("age", f"{age[0]}-{age[1]}"))
    if filters.get("min_images") and int(filters["min_images"]) > 1:
        pairs.append(("min_images", int(filters["min_images"])))
    if (filters.get("patient") or "").strip():
        pairs.append(("patient", filters["patient"].strip()))
    if view["color"] != DEFAULT_COLOR:
        pairs.append(("color", view["color"]))
    if sorted(view["show"] or []) != sorted(DEFAULT_LAYERS):
        pairs.append(("show", ",".join(view["show"] or []) or "none"))
    if view["density_style"] != "heatmap":
        pairs.append(("density", view["density_style"]))
    if view["opacity"] != DEFAULT_OPACITY:
        pairs.append(("opacity", view["opacity"]))
    if view["mode"] != "dim":
        pairs.append(("mode", view["mode"]))
    if selected:
        pairs.append(("image", selected))
    return ("?" + urlencode(pairs)) if pairs else ""


def state_from_query(args, store) -> dict:
    """Flask's request.args (a MultiDict) -> initial control values, ignoring what is invalid."""
    def choices(key, column):
        allowed = set(store.options(column))
        return [v for v in args.getlist(key) if v in allowed]

    f = {key: choices(key, col) for key, col in LIST_FILTERS.items()}
    age = list(store.age_range)
    try:
        lo, hi = (float(v) for v in args.get("age", "").split("-", 1))
        age = [max(lo, age[0]), min(hi, age[1])]
    except ValueError:
        pass
    f["age"] = age
    try:
        f["min_images"] = max(1, int(args.get("min_images", 1)))
    except ValueError:
        f["min_images"] = 1
    f["patient"] = args.get("patient", "")
    color = args.get("color", DEFAULT_COLOR)
    if color not in {o["value"] for o in figures.color_options(store.pathologies)}:
        color = DEFAULT_COLOR
    show = args.get("show")
    show = DEFAULT_LAYERS if show is None else [v for v in show.split(",")
                                                if v in set(DEFAULT_LAYERS)]
    try:
        opacity = min(1.0, max(0.0, float(args.get("opacity", DEFAULT_OPACITY))))
    except ValueError:
        opacity = DEFAULT_OPACITY
    image = args.get("image")
    return {"filters": f, "color": color, "show": show,
            "density_style": "contours" if args.get("density") == "contours" else "heatmap",
            "opacity": opacity, "mode": "hide" if args.get("mode") == "hide" else "dim",
            "selected": image if image and store.row(image) is not None else None}


# ---- layout ----------------------------------------------------------------------------------
def _labelled(label, component):
    return html.Div([html.Label(label, className="control-label"), component],
                    className="control")


def _multi(cid, column, store, value):
    return dcc.Dropdown(id=cid, options=store.options(column), value=value, multi=True,
                        placeholder="all")


def layout(args) -> html.Div:
    store = get_store()
    st = state_from_query(args, store)
    f = st["filters"]
    keep = store.mask(f)
    fig = figures.map_figure(store, color_by=st["color"], keep=keep, filtered_mode=st["mode"],
                             show=st["show"], density_style=st["density_style"],
                             density_opacity=st["opacity"], selected=st["selected"])
    banner = (html.Div(f"⚠ {store.warning}. Built with weights "
                       f"'{store.artifact.manifest[S.M_WEIGHTS][S.W_NAME]}': positions and outputs"
                       " carry no clinical meaning.", id=ids.BANNER, className="banner")
              if store.warning else html.Div(id=ids.BANNER, hidden=True))
    filters = [_labelled(FILTER_LABELS[k], _multi(cid, LIST_FILTERS[k], store, f[k]))
               for k, cid in LIST_FILTER_IDS.items()]
    lo, hi = store.age_range
    filters += [
        _labelled("Age", dcc.RangeSlider(id=ids.F_AGE, min=lo, max=hi, step=1, value=f["age"],
                                         marks=None,
                                         tooltip={"placement": "bottom", "always_visible": True})),
        _labelled("Patients with at least N images",
                  dcc.Input(id=ids.F_MIN_IMAGES, type="number", min=1, step=1,
                            value=f["min_images"], debounce=True)),
        _labelled("Patient id", dcc.Input(id=ids.F_PATIENT, type="text", value=f["patient"],
                                          placeholder="e.g. 205", debounce=True)),
        html.Button("Reset filters", id=ids.RESET, className="button"),
    ]
    view_controls = [
        _labelled("Colour by", dcc.Dropdown(id=ids.COLOR_BY, value=st["color"], clearable=False,
                                            options=figures.color_options(store.pathologies))),
        dcc.Checklist(id=ids.SHOW, options=LAYERS, value=st["show"], className="checklist"),
        _labelled("Density as", dcc.RadioItems(id=ids.DENSITY_STYLE, inline=True,
                                               value=st["density_style"],
                                               options=["heatmap", "contours"])),
        _labelled("Density opacity", dcc.Slider(id=ids.DENSITY_OPACITY, min=0, max=1, step=0.05,
                                                value=st["opacity"], marks=None)),
        _labelled("Filtered-out images", dcc.RadioItems(id=ids.FILTERED_MODE, inline=True,
                                                        value=st["mode"],
                                                        options=["dim", "hide"])),
    ]
    export = html.Div([
        html.H4("Export"),
        dcc.RadioItems(id=ids.EXPORT_PRESET, value="single", className="radio",
                       options=[{"label": f" {p['label']}", "value": k}
                                for k, p in figures.PRESETS.items()]),
        dcc.RadioItems(id=ids.EXPORT_SCOPE, value="filtered", inline=True, className="radio",
                       options=[{"label": " filtered images", "value": "filtered"},
                                {"label": " box/lasso selection", "value": "selection"}]),
        html.Div([html.Button(fmt.upper(), id={"type": ids.EXPORT_BUTTON, "index": fmt},
                              className="button") for fmt in ("png", "svg", "pdf", "csv")],
                 className="buttons"),
        dcc.Loading(html.Div(id=ids.EXPORT_STATUS, className="muted")),
        dcc.Download(id=ids.EXPORT_DOWNLOAD),
    ], className="panel")
    service = get_service()
    outputs = [{"label": p, "value": i} for i, p in enumerate(store.pathologies)]
    default_output = (store.pathologies.index("Lung Opacity")
                      if "Lung Opacity" in store.pathologies else 0)
    upload = html.Div([
        html.H4("Where does my patient fall?"),
        html.Div(service.message, id=ids.MODEL_STATUS, className="muted"),
        dcc.Interval(id=ids.MODEL_POLL, interval=1000, disabled=service.state != LOADING),
        dcc.Upload(id=ids.UPLOAD, max_size=MAX_UPLOAD_BYTES, multiple=False,
                   accept=".png,.jpg,.jpeg,.dcm,image/png,image/jpeg,application/dicom",
                   className="upload",
                   children=html.Div(["Drop a chest X-ray (PNG, JPEG or DICOM, ≤ 20 MB) or ",
                                      html.A("choose a file")])),
        html.Div([
            html.Label("neighbours "), dcc.Input(id=ids.UPLOAD_K, type="number", min=1, max=50,
                                                 step=1, value=8, debounce=True,
                                                 className="small-input"),
            dcc.RadioItems(id=ids.UPLOAD_SPACE, value="logits", inline=True,
                           options=[{"label": " 18 outputs", "value": "logits"},
                                    {"label": " 1024-d features", "value": "features"}]),
        ], className="row"),
        html.Div(id=ids.UPLOAD_MESSAGE, className="message"),
        html.Div(id=ids.UPLOAD_PANEL),
        html.Button("Clear my images", id=ids.UPLOAD_CLEAR, className="button"),
        _labelled("Saliency for output", dcc.Dropdown(id=ids.UPLOAD_SALIENCY_OUTPUT,
                                                      options=outputs, value=default_output,
                                                      clearable=False)),
        dcc.Loading(html.Div(id=ids.UPLOAD_SALIENCY_VIEW)),
        html.P("Uploads are processed in memory and never stored; DICOM patient fields are "
               "never read into the page.", className="muted small"),
        dcc.Store(id=ids.UPLOADS, data=[]),
    ], className="panel")
    saliency = html.Div([
        html.H4("What drives an output (saliency)"),
        _labelled("Output", dcc.Dropdown(id=ids.SALIENCY_OUTPUT, options=outputs,
                                         value=default_output, clearable=False)),
        html.Button("Show saliency for the selected image", id=ids.SALIENCY_BUTTON,
                    className="button"),
        dcc.Loading(html.Div(id=ids.SALIENCY_VIEW)),
        html.P(SALIENCY_NOTE, className="muted small"),
    ], className="panel")
    return html.Div([
        dcc.Location(id=ids.URL, refresh=False),
        dcc.Store(id=ids.SELECTED, data=st["selected"]),
        html.Header([html.H1("cxrviz"),
                     html.Span("COVID-19 chest X-rays on a model's map: research use only, not "
                               "a diagnostic tool", className="muted"),
                     html.Span(store.count_text(keep), id=ids.COUNT, className="count")]),
        banner,
        html.Div([
            html.Aside([html.H4("View"), *view_controls, html.H4("Filters"), *filters],
                       className="sidebar"),
            html.Main([
                dcc.Graph(id=ids.MAP, figure=fig, className="map",
                          config={"displaylogo": False, "scrollZoom": True,
                                  "toImageButtonOptions": {"format": "png", "scale": 3}}),
                html.Div([html.Div(id=ids.SELECTION_SUMMARY, className="panel"), upload,
                          export], className="below-map"),
            ], className="center"),
            html.Aside([html.Div(detail_children(store, st["selected"]), id=ids.DETAIL),
                        saliency], className="detail"),
        ], className="grid"),
    ], className="page")


# ---- detail panel ----------------------------------------------------------------------------
def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and value != value) or value == "":
        return "unknown"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def detail_children(store, image_id):
    if not image_id or store.row(image_id) is None:
        return [html.H4("Image"), html.P("Click a point on the map to see its image, metadata, "
                                         "model outputs and the patient's timeline.",
                                         className="muted")]
    row = store.row(image_id)
    pos = store.position.get(image_id)
    pct = (f"percentile {store.density_percentile[pos]:.0f} of the collection"
           if pos is not None else "n/a (reference image)")
    facts = [("Patient", row[S.PATIENTID]), ("Age", _fmt(row[S.AGE])), ("Sex", row[S.SEX]),
             ("Finding", row[S.FINDING]), ("Day (offset)", _fmt(row[S.OFFSET])),
             ("View", row[S.VIEW]), ("Location", row[S.LOCATION] or "unknown"),
             ("In ICU", row[S.IN_ICU]), ("Intubated", row[S.INTUBATION_PRESENT]),
             ("Went to ICU", row[S.WENT_ICU]), ("Ever intubated", row[S.INTUBATED]),
             ("Survival", row[S.SURVIVAL]), ("State", f"{row[S.STATE]} ({row[S.STATE_REASON]})"),
             ("Bad-state density", pct), ("Licence", row[S.LICENSE] or "unknown")]
    links = []
    if row[S.DOI]:
        links.append(html.A(f"doi:{row[S.DOI]}", href=f"https://doi.org/{row[S.DOI]}",
                            target="_blank", rel="noopener"))
    if row[S.URL]:
        links.append(html.A("source", href=row[S.URL], target="_blank", rel="noopener"))
    src = f"/display/{image_id}.jpg"
    return [
        html.H4(f"Image {row[S.FILENAME]}", className="detail-title"),
        dcc.Graph(id=ids.DETAIL_IMAGE, figure=figures.image_figure(src, *store.display_size(image_id)),
                  className="detail-image",
                  config={"scrollZoom": True, "displaylogo": False,
                          "modeBarButtonsToRemove": ["select2d", "lasso2d"]}),
        html.Div(["Scroll or drag to zoom, double-click to reset; ",
                  html.A("open the image", href=src, target="_blank")], className="muted small"),
        html.Table([html.Tr([html.Th(k), html.Td(_fmt(v))]) for k, v in facts],
                   className="facts"),
        html.Div(links, className="links"),
        html.Details([html.Summary("Clinical notes"),
                      html.P(row[S.CLINICAL_NOTES] or "none")]),
        dcc.Graph(id=ids.DETAIL_OUTPUTS, config={"displayModeBar": False},
                  figure=figures.outputs_figure(store.pathologies, store.logits(image_id),
                                                "Model outputs (18)")),
        timeline(store, row),
    ]


def timeline(store, row):
    if row[S.SOURCE] != S.SOURCE_COVID:
        return html.Div(id=ids.TIMELINE)
    rows = store.patient_images(row[S.PATIENTID])
    thumbs = [html.Button([
        html.Img(src=f"/display/{r[S.IMAGE_ID]}.jpg", alt=r[S.FILENAME]),
        html.Span(f"day {_fmt(r[S.OFFSET])}", className="day"),
        html.Span(r[S.STATE], className=f"badge badge-{r[S.STATE]}")],
        id={"type": ids.TIMELINE_THUMB, "index": r[S.IMAGE_ID]},
        className="thumb" + (" current" if r[S.IMAGE_ID] == row[S.IMAGE_ID] else ""),
        title=r[S.STATE_REASON]) for _, r in rows.iterrows()]
    return html.Div([html.H4(f"Patient {row[S.PATIENTID]}: {len(rows)} images"),
                     html.Div(thumbs, className="thumbs")], id=ids.TIMELINE)


# ---- callbacks -------------------------------------------------------------------------------
@callback(Output(ids.SELECTED, "data"),
          Input(ids.MAP, "clickData"),
          Input({"type": ids.TIMELINE_THUMB, "index": ALL}, "n_clicks"),
          Input({"type": ids.NEIGHBOUR, "index": ALL}, "n_clicks"),
          prevent_initial_call=True)
def select_image(click, _thumb_clicks, _neighbour_clicks=None):
    store = get_store()
    trigger = ctx.triggered_id
    if isinstance(trigger, dict) and trigger.get("type") in (ids.TIMELINE_THUMB, ids.NEIGHBOUR):
        if not any(t["value"] for t in ctx.triggered):
            raise PreventUpdate  # thumbnails re-rendered, not clicked
        image_id = trigger["index"]
    else:
        points = (click or {}).get("points") or []
        image_id = points[0].get("customdata") if points else None
        if isinstance(image_id, list):
            image_id = image_id[0] if image_id else None
    if not isinstance(image_id, str) or store.row(image_id) is None:
        raise PreventUpdate
    return image_id


@callback(Output(ids.DETAIL, "children"), Input(ids.SELECTED, "data"), prevent_initial_call=True)
def show_detail(image_id):
    return detail_children(get_store(), image_id)


@callback(Output(ids.MAP, "figure"), Output(ids.COUNT, "children"),
          *VIEW_INPUTS, *FILTER_INPUTS, Input(ids.SELECTED, "data"),
          prevent_initial_call=True)
def update_map(color_by, show, density_style, opacity, mode, *rest):
    """Patch only the traces that the changed control affects."""
    store = get_store()
    *filter_values, selected = rest
    keep = store.mask(filters_from(filter_values))
    changed = {t["prop_id"].split(".")[0] for t in ctx.triggered}
    patch = Patch()
    T = figures.TRACE
    count = no_update
    show = set(show or ())
    if ids.SHOW in changed:
        patch["data"][T["density"]]["visible"] = "density" in show
        patch["data"][T["rsna"]]["visible"] = bool("rsna" in show and len(store.rsna))
        for name in figures.TRAJECTORY_TRACES:
            patch["data"][T[name]]["visible"] = "trajectories" in show
    if ids.DENSITY_STYLE in changed:
        patch["data"][T["density"]] = figures.density_trace(
            store, density_style, opacity, "density" in show).to_plotly_json()
    elif ids.DENSITY_OPACITY in changed:
        patch["data"][T["density"]]["opacity"] = opacity
    if ids.COLOR_BY in changed:
        colors = figures.point_colors(store, color_by)
        patch["data"][T["points"]]["marker"]["color"] = typed(colors["marker"]["color"])
        for key in ("colorscale", "cmin", "cmax", "showscale"):
            patch["data"][T["points"]]["marker"][key] = colors["marker"][key]
        if "colorbar" in colors["marker"]:
            patch["data"][T["points"]]["marker"]["colorbar"] = colors["marker"]["colorbar"]
        for i, slot in enumerate(figures.legend_slots(colors)):
            for key, value in slot.items():
                patch["data"][figures.LEGEND_START + i][key] = value
    filters_changed = bool(changed & (set(FILTER_IDS) | {ids.FILTERED_MODE, ids.SELECTED}))
    if filters_changed:
        count = store.count_text(keep)
        _patch_points(patch, store, keep, mode, selected,
                      positions=mode == "hide" or ids.FILTERED_MODE in changed)
        lines = figures.trajectory_lines(store, figures.visible_edges(store, keep))
        for name, (xs, ys) in lines.items():
            patch["data"][T[name]]["x"], patch["data"][T[name]]["y"] = typed(xs), typed(ys)
            patch["data"][T[name]]["opacity"] = (figures.path_opacity(selected)
                                                 if name.startswith("path_")
                                                 else figures.arrow_opacity(selected))
    if ids.SELECTED in changed:
        hx, hy = figures.highlight_path(store, selected)
        sx, sy = figures.selected_point(store, selected)
        patch["data"][T["highlight"]]["x"], patch["data"][T["highlight"]]["y"] = hx, hy
        patch["data"][T["selected"]]["x"], patch["data"][T["selected"]]["y"] = sx, sy
    return patch, count


def typed(values):
    """numpy -> plotly.js typed-array spec (base64): a fraction of a JSON list's size."""
    return to_typed_array_spec(np.asarray(values))


def _patch_points(patch, store, keep, mode, selected, positions: bool):
    """Opacity always; x / y only when hiding (NaN = hidden) or leaving hide mode."""
    T = figures.TRACE["points"]
    points = figures.point_positions(store, keep, mode, selected)
    if positions:
        patch["data"][T]["x"], patch["data"][T]["y"] = typed(points["x"]), typed(points["y"])
    patch["data"][T]["marker"]["opacity"] = typed(points["opacity"])


@callback(Output(ids.F_CONTINENT, "value"), Output(ids.F_SUBREGION, "value"),
          Output(ids.F_COUNTRY, "value"), Output(ids.F_VIEW, "value"),
          Output(ids.F_FINDING, "value"), Output(ids.F_SEX, "value"),
          Output(ids.F_SURVIVAL, "value"), Output(ids.F_ICU, "value"),
          Output(ids.F_INTUBATION, "value"), Output(ids.F_STATE, "value"),
          Output(ids.F_AGE, "value"), Output(ids.F_MIN_IMAGES, "value"),
          Output(ids.F_PATIENT, "value"),
          Input(ids.RESET, "n_clicks"), prevent_initial_call=True)
def reset_filters(_):
    return ([],) * len(LIST_FILTER_IDS) + (list(get_store().age_range), 1, "")


@callback(Output(ids.URL, "search"), *VIEW_INPUTS, *FILTER_INPUTS, Input(ids.SELECTED, "data"),
          prevent_initial_call=True)
def sync_url(color_by, show, density_style, opacity, mode, *rest):
    *filter_values, selected = rest
    view = {"color": color_by, "show": show, "density_style": density_style,
            "opacity": opacity, "mode": mode}
    return query_from(filters_from(filter_values), view, selected, get_store())


def selected_positions(store, selected_data) -> np.ndarray:
    points = (selected_data or {}).get("points") or []
    pos = [store.position.get(p.get("customdata")) for p in points]
    return np.array(sorted({p for p in pos if p is not None}), dtype=int)


@callback(Output(ids.SELECTION_SUMMARY, "children"), Input(ids.MAP, "selectedData"))
def selection_summary(selected_data):
    store = get_store()
    pos = selected_positions(store, selected_data)
    if not len(pos):
        return [html.H4("Selection"),
                html.P("Use box or lasso select on the map to summarise a region.",
                       className="muted")]
    rows = store.covid.iloc[pos]
    tables = []
    for column, title in ((S.STATE, "State"), (S.SURVIVAL, "Outcome (survival)"),
                          (S.FINDING_GROUP, "Finding group"), (S.CONTINENT, "Continent")):
        counts = rows[column].value_counts()
        tables.append(html.Div([html.H5(title), html.Table(
            [html.Tr([html.Td(str(k)), html.Td(int(v))]) for k, v in counts.items()],
            className="counts")], className="summary-block"))
    return [html.H4(f"Selection: {len(rows)} images, {rows[S.PATIENTID].nunique()} patients"),
            html.Div(tables, className="summary-grid")]


@callback(Output(ids.EXPORT_DOWNLOAD, "data"), Output(ids.EXPORT_STATUS, "children"),
          Input({"type": ids.EXPORT_BUTTON, "index": ALL}, "n_clicks"),
          State(ids.EXPORT_PRESET, "value"), State(ids.EXPORT_SCOPE, "value"),
          State(ids.MAP, "selectedData"), State(ids.SELECTED, "data"), State(ids.UPLOADS, "data"),
          *[State(i.component_id, i.component_property) for i in VIEW_INPUTS + FILTER_INPUTS],
          prevent_initial_call=True)
def export(clicks, preset, scope, selected_data, selected, uploads, color_by, show,
           density_style, opacity, mode, *filter_values):
    from cxrviz.export import export_csv, export_image

    if not ctx.triggered_id or not any(clicks):
        raise PreventUpdate
    fmt = ctx.triggered_id["index"]
    store = get_store()
    keep = store.mask(filters_from(filter_values))
    if scope == "selection":
        pos = selected_positions(store, selected_data)
        if not len(pos):
            return no_update, "Nothing selected: use box or lasso select first."
        keep = np.zeros(len(store.covid), bool)
        keep[pos] = True
    if fmt == "csv":
        data, name = export_csv(store, keep)
        return dcc.send_bytes(data, name), f"CSV: {int(keep.sum())} rows"
    data, name = export_image(store, fmt, preset, keep=keep, color_by=color_by, show=show,
                              density_style=density_style, density_opacity=opacity,
                              filtered_mode="hide" if scope == "selection" else mode,
                              selected=selected, uploads=uploads)
    return dcc.send_bytes(data, name), f"{fmt.upper()} ready ({len(data) // 1024} KB)"



# ---- placing new images ----------------------------------------------------------------------
@callback(Output(ids.MODEL_STATUS, "children"), Output(ids.MODEL_POLL, "disabled"),
          Input(ids.MODEL_POLL, "n_intervals"))
def model_status(_):
    service = get_service()
    return service.message, service.state != LOADING


def _upload_bytes(contents: str) -> bytes:
    if not isinstance(contents, str) or "," not in contents:
        raise ValueError("the upload arrived incomplete")
    return base64.b64decode(contents.split(",", 1)[1], validate=False)


@callback(Output(ids.UPLOADS, "data"), Output(ids.UPLOAD_MESSAGE, "children"),
          Output(ids.UPLOAD, "contents"),
          Input(ids.UPLOAD, "contents"), Input(ids.UPLOAD_CLEAR, "n_clicks"),
          State(ids.UPLOAD, "filename"), State(ids.UPLOADS, "data"),
          State(ids.UPLOAD_K, "value"), State(ids.UPLOAD_SPACE, "value"),
          prevent_initial_call=True)
def place_upload(contents, _clear, filename, uploads, k, space):
    """Decode, embed and place one upload, in memory; nothing is written anywhere."""
    from cxrviz.compute.placement import UploadRejected
    from cxrviz.data.images import display_jpeg

    if ctx.triggered_id == ids.UPLOAD_CLEAR:
        return [], "Cleared.", None
    if not contents:
        raise PreventUpdate
    uploads = list(uploads or [])
    service = get_service()
    if service.state != "ready":
        return no_update, service.message, None
    store = get_store()
    try:
        data = _upload_bytes(contents)
        placed = service.place(data, k=int(k or 8), space=space or "logits")
        preview = display_jpeg(service.placer.decode(data))
    except UploadRejected as exc:
        return no_update, f"Not placed: {exc}", None
    except ValueError as exc:
        return no_update, f"Not placed: {exc}", None
    n = max([u["n"] for u in uploads], default=0) + 1
    neighbours = []
    for nb in placed.neighbours:
        row = store.row(nb["image_id"])
        neighbours.append({**nb, "patientid": str(row[S.PATIENTID]), "state": row[S.STATE],
                           "survival": row[S.SURVIVAL], "finding": row[S.FINDING],
                           "source": row[S.SOURCE]})
    uploads.append({
        "n": n, "name": str(filename or f"image {n}")[:80], "x": placed.x, "y": placed.y,
        "logits": [float(v) for v in placed.logits], "density": placed.density,
        "percentile": placed.percentile, "neighbours": neighbours, "space": space,
        "preview": "data:image/jpeg;base64," + base64.b64encode(preview).decode(),
    })
    return uploads, f"Placed image {n} at ({placed.x:.2f}, {placed.y:.2f}).", None


@callback(Output(ids.UPLOAD_PANEL, "children"), Output(ids.MAP, "figure", allow_duplicate=True),
          Input(ids.UPLOADS, "data"), prevent_initial_call=True)
def show_uploads(uploads):
    store = get_store()
    patch = Patch()
    for key, value in figures.uploads_trace(uploads).items():
        patch["data"][figures.TRACE["uploads"]][key] = value
    return [upload_card(store, u) for u in uploads or []], patch


def upload_card(store, u):
    rows = [html.Tr([
        html.Td(nb["rank"]),
        html.Td(html.Button(f"patient {nb['patientid']}",
                            id={"type": ids.NEIGHBOUR, "index": nb["image_id"]},
                            className="link-button", title="select on the map")),
        html.Td(f"{nb['distance']:.3g}"),
        html.Td(html.Span(nb["state"], className=f"badge badge-{nb['state']}")),
        html.Td(f"survival {nb['survival']}")]) for nb in u["neighbours"]]
    return html.Div([
        html.H5(f"{u['n']}. {u['name']}"),
        html.Div([
            html.Img(src=u["preview"], className="upload-preview", alt=f"your image {u['n']}"),
            html.Div([
                html.Div(f"Map position ({u['x']:.2f}, {u['y']:.2f}); bad-state density at this "
                         f"position: percentile {u['percentile']:.0f} of the collection"),
                html.Button("Saliency", id={"type": ids.UPLOAD_SALIENCY, "index": u["n"]},
                            className="button"),
            ]),
        ], className="row"),
        dcc.Graph(figure=figures.outputs_figure(store.pathologies, u["logits"],
                                                f"Model outputs: your image {u['n']}"),
                  config={"displayModeBar": False}, className="upload-outputs"),
        html.H5(f"{len(rows)} nearest images ({'18 outputs' if u['space'] == 'logits' else '1024-d features'})"),
        html.Table([html.Tr([html.Th("#"), html.Th("image"), html.Th("distance"),
                             html.Th("state"), html.Th("outcome")]), *rows],
                   className="neighbours"),
    ], className="upload-card", id=f"upload-card-{u['n']}")


def _saliency_image(png: bytes, caption: str):
    return html.Figure([html.Img(src="data:image/png;base64," + base64.b64encode(png).decode(),
                                 className="saliency"),
                        html.Figcaption(caption, className="muted small")])


@callback(Output(ids.SALIENCY_VIEW, "children"), Input(ids.SALIENCY_BUTTON, "n_clicks"),
          State(ids.SELECTED, "data"), State(ids.SALIENCY_OUTPUT, "value"),
          prevent_initial_call=True)
def saliency_for_selected(_, image_id, output):
    store, service = get_store(), get_service()
    path = store.display_file(image_id) if image_id else None
    if path is None:
        return "Select an image on the map first."
    if service.state != "ready":
        return service.message
    png = service.saliency_png(path.read_bytes(), int(output))
    return _saliency_image(png, f"{store.pathologies[int(output)]}: image {image_id}")


@callback(Output(ids.UPLOAD_SALIENCY_VIEW, "children"),
          Input({"type": ids.UPLOAD_SALIENCY, "index": ALL}, "n_clicks"),
          State(ids.UPLOADS, "data"), State(ids.UPLOAD_SALIENCY_OUTPUT, "value"),
          prevent_initial_call=True)
def saliency_for_upload(clicks, uploads, output):
    if not isinstance(ctx.triggered_id, dict) or not any(clicks or []):
        raise PreventUpdate
    service = get_service()
    if service.state != "ready":
        return service.message
    n = ctx.triggered_id["index"]
    upload = next((u for u in uploads or [] if u["n"] == n), None)
    if upload is None:
        raise PreventUpdate
    png = service.saliency_png(_upload_bytes(upload["preview"]), int(output))
    return _saliency_image(png, f"{get_store().pathologies[int(output)]}: your image {n} "
                                "(computed on its 512 px preview)")
