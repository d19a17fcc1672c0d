"""Where does my patient fall? Uploads placed on the map by the artifact's own model, in memory,
and saliency for them."""
from __future__ import annotations

import base64

from dash import ALL, Input, Output, Patch, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from cxrviz import figures, ids
from cxrviz import schema as S
from cxrviz.appstate import current
from cxrviz.data.images import MAX_UPLOAD_BYTES
from cxrviz.pages.map.controls import labelled
from cxrviz.pages.map.detail import default_output, output_options, saliency_image
from cxrviz.placement_service import LOADING, READY

SPACE_LABELS = {"logits": "18 outputs", "features": "1024-d features"}


def upload_panel(store, service):
    return html.Div([
        html.H4("Where does my patient fall?"),
        html.Div(service.message, id=ids.MODEL_STATUS, className="muted"),
        dcc.Interval(id=ids.MODEL_POLL, interval=1000, disabled=service.state != LOADING),
        dcc.Upload(id=ids.UPLOAD, max_size=MAX_UPLOAD_BYTES, multiple=False,
                   accept=".png,.jpg,.jpeg,.dcm,image/png,image/jpeg,application/dicom",
                   className="upload",
                   children=html.Div([f"Drop a chest X-ray (PNG, JPEG or DICOM, ≤ "
                                      f"{MAX_UPLOAD_BYTES // 2**20} MB) or ",
                                      html.A("choose a file")])),
        html.Div([
            html.Label("neighbours "), dcc.Input(id=ids.UPLOAD_K, type="number", min=1, max=50,
                                                 step=1, value=8, debounce=True,
                                                 className="small-input"),
            dcc.RadioItems(id=ids.UPLOAD_SPACE, value="logits", inline=True,
                           options=[{"label": f" {v}", "value": k}
                                    for k, v in SPACE_LABELS.items()]),
        ], className="row"),
        html.Div(id=ids.UPLOAD_MESSAGE, className="message"),
        html.Div(id=ids.UPLOAD_PANEL),
        html.Button("Clear my images", id=ids.UPLOAD_CLEAR, className="button"),
        labelled("Saliency for output", dcc.Dropdown(id=ids.UPLOAD_SALIENCY_OUTPUT,
                                                     options=output_options(store),
                                                     value=default_output(store),
                                                     clearable=False)),
        dcc.Loading(html.Div(id=ids.UPLOAD_SALIENCY_VIEW)),
        html.P("Uploads are processed in memory and never stored; DICOM patient fields are "
               "never read into the page.", className="muted small"),
        dcc.Store(id=ids.UPLOADS, data=[]),
    ], className="panel")


def upload_bytes(contents: str) -> bytes:
    if not isinstance(contents, str) or "," not in contents:
        raise ValueError("the upload arrived incomplete")
    return base64.b64decode(contents.split(",", 1)[1], validate=False)


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
        html.H5(f"{len(rows)} nearest images ({SPACE_LABELS[u['space']]})"),
        html.Table([html.Tr([html.Th("#"), html.Th("image"), html.Th("distance"),
                             html.Th("state"), html.Th("outcome")]), *rows],
                   className="neighbours"),
    ], className="upload-card", id=f"upload-card-{u['n']}")


@callback(Output(ids.MODEL_STATUS, "children"), Output(ids.MODEL_POLL, "disabled"),
          inputs={"tick": Input(ids.MODEL_POLL, "n_intervals")})
def model_status(tick):
    service = current().service
    return service.message, service.state != LOADING


@callback(Output(ids.UPLOADS, "data"), Output(ids.UPLOAD_MESSAGE, "children"),
          Output(ids.UPLOAD, "contents"),
          inputs={"contents": Input(ids.UPLOAD, "contents"),
                  "clear": Input(ids.UPLOAD_CLEAR, "n_clicks"),
                  "filename": State(ids.UPLOAD, "filename"),
                  "uploads": State(ids.UPLOADS, "data"), "k": State(ids.UPLOAD_K, "value"),
                  "space": State(ids.UPLOAD_SPACE, "value")},
          prevent_initial_call=True)
def place_upload(contents, clear, filename, uploads, k, space):
    """Decode, embed and place one upload, in memory; nothing is written anywhere."""
    from cxrviz.compute.placement import UploadRejected
    from cxrviz.data.images import display_jpeg

    if ctx.triggered_id == ids.UPLOAD_CLEAR:
        return [], "Cleared.", None
    if not contents:
        raise PreventUpdate
    uploads = list(uploads or [])
    app = current()
    if app.service.state != READY:
        return no_update, app.service.message, None
    store = app.store
    space = space if space in SPACE_LABELS else "logits"
    try:
        data = upload_bytes(contents)
        placed = app.service.place(data, k=int(k or 8), space=space)
        preview = display_jpeg(app.service.placer.decode(data))
    except (UploadRejected, ValueError) as exc:
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
          inputs={"uploads": Input(ids.UPLOADS, "data")}, prevent_initial_call=True)
def show_uploads(uploads):
    store = current().store
    patch = Patch()
    for key, value in figures.uploads_trace(uploads).items():
        patch["data"][figures.TRACE["uploads"]][key] = value
    return [upload_card(store, u) for u in uploads or []], patch


@callback(Output(ids.UPLOAD_SALIENCY_VIEW, "children"),
          inputs={"clicks": Input({"type": ids.UPLOAD_SALIENCY, "index": ALL}, "n_clicks"),
                  "uploads": State(ids.UPLOADS, "data"),
                  "output": State(ids.UPLOAD_SALIENCY_OUTPUT, "value")},
          prevent_initial_call=True)
def saliency_for_upload(clicks, uploads, output):
    if not isinstance(ctx.triggered_id, dict) or not any(clicks or []):
        raise PreventUpdate
    app = current()
    if app.service.state != READY:
        return app.service.message
    n = ctx.triggered_id["index"]
    upload = next((u for u in uploads or [] if u["n"] == n), None)
    if upload is None:
        raise PreventUpdate
    png = app.service.saliency_png(upload_bytes(upload["preview"]), int(output))
    return saliency_image(png, f"{app.store.pathologies[int(output)]}: your image {n} "
                               "(computed on its 512 px preview)")
