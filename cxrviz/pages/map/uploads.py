"""Where does my patient fall? Uploads placed on the map by the artifact's own model, in memory,
and saliency for them."""
from __future__ import annotations

import base64

from dash import ALL, Input, Output, Patch, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from cxrviz import figures, ids, words
from cxrviz import schema as S
from cxrviz.appstate import current
from cxrviz.pages.common import graph_config
from cxrviz.data.images import MAX_UPLOAD_BYTES
from cxrviz.pages.map.controls import labelled
from cxrviz.pages.map.detail import default_output, output_options, saliency_image
from cxrviz.placement_service import IDLE, LOADING, READY

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
        dcc.Store(id=ids.UPLOADS_PENDING, data=[]),
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
        html.Td(words.value(S.SURVIVAL, nb["survival"]))]) for nb in u["neighbours"]]
    if u.get("out_of_distribution"):
        ood = html.Div([
            html.B("⚠ This does not look like the collection's chest X-rays. "),
            f"Its distance to its {u['ood_k']}th nearest collection image is at the "
            f"{u['ood_percentile']:.0f}th percentile of the collection's own (flagged beyond "
            f"the {u['ood_threshold']:.0f}th): its position, density and neighbours say "
            "little."],
            className="ood-warning")
    else:
        ood = html.Div(
            f"Looks like the collection: its distance to its {u['ood_k']}th nearest image is at "
            f"the {u['ood_percentile']:.0f}th percentile of the collection's own (flagged beyond "
            f"the {u['ood_threshold']:.0f}th).", className="muted small")
    return html.Div([
        html.H5(f"{u['n']}. {u['name']}"), ood,
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
                  config=graph_config(displayModeBar=False), className="upload-outputs"),
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


def _place(app, contents, filename, n, k, space) -> dict:
    """One upload, decoded, embedded and placed in memory -> the record the page keeps."""
    from cxrviz.compute.placement import OOD_K, OOD_PERCENTILE
    from cxrviz.data.images import display_jpeg

    data = upload_bytes(contents)
    placed = app.service.place(data, k=int(k or 8), space=space)
    preview = display_jpeg(placed.image)
    return {
        "n": n, "name": str(filename or f"image {n}")[:80], "x": placed.x, "y": placed.y,
        "logits": [float(v) for v in placed.logits],
        "features": [round(float(v), 6) for v in placed.features],
        "density": placed.density, "percentile": placed.percentile,
        "neighbours": _neighbour_rows(app.store, placed.neighbours), "space": space,
        "out_of_distribution": placed.out_of_distribution,
        "ood_percentile": placed.ood_percentile, "ood_k": OOD_K,
        "ood_threshold": OOD_PERCENTILE,
        "preview": "data:image/jpeg;base64," + base64.b64encode(preview).decode(),
    }


def _neighbour_rows(store, neighbours) -> list:
    rows = []
    for nb in neighbours:
        row = store.row(nb["image_id"])
        rows.append({**nb, "patientid": str(row[S.PATIENTID]), "state": row[S.STATE],
                     "survival": row[S.SURVIVAL], "finding": row[S.FINDING],
                     "source": row[S.SOURCE]})
    return rows


@callback(Output(ids.UPLOADS, "data"), Output(ids.UPLOAD_MESSAGE, "children"),
          Output(ids.UPLOAD, "contents"), Output(ids.UPLOADS_PENDING, "data"),
          inputs={"contents": Input(ids.UPLOAD, "contents"),
                  "clear": Input(ids.UPLOAD_CLEAR, "n_clicks"),
                  "ready": Input(ids.MODEL_POLL, "disabled"),
                  "filename": State(ids.UPLOAD, "filename"),
                  "uploads": State(ids.UPLOADS, "data"),
                  "pending": State(ids.UPLOADS_PENDING, "data"),
                  "k": State(ids.UPLOAD_K, "value"), "space": State(ids.UPLOAD_SPACE, "value")},
          prevent_initial_call=True)
def place_upload(contents, clear, ready, filename, uploads, pending, k, space):
    """Decode, embed and place uploads, in memory; nothing is written anywhere. An upload made
    while the model is loading waits in the page and is placed as soon as it is ready."""
    from cxrviz.compute.placement import UploadRejected

    if ctx.triggered_id == ids.UPLOAD_CLEAR:
        return [], "Cleared.", None, []
    app = current()
    queue = list(pending or [])
    if ctx.triggered_id == ids.UPLOAD:
        if not contents:
            raise PreventUpdate
        queue.append({"contents": contents, "name": filename})
    if not queue:
        raise PreventUpdate
    if app.service.state in (LOADING, IDLE):
        return (no_update, f"Kept {words.plural(len(queue), 'upload')}: placed as soon as the "
                           "model is ready.", None, queue)
    if app.service.state != READY:
        return no_update, app.service.message, None, []
    uploads = list(uploads or [])
    space = space if space in SPACE_LABELS else "logits"
    messages = []
    for item in queue:
        n = max([u["n"] for u in uploads], default=0) + 1
        try:
            uploads.append(_place(app, item["contents"], item["name"], n, k, space))
            messages.append(f"Placed image {n} at ({uploads[-1]['x']:.2f}, "
                            f"{uploads[-1]['y']:.2f}).")
        except (UploadRejected, ValueError) as exc:
            messages.append(f"Not placed: {exc}")
    placed_any = any(m.startswith("Placed") for m in messages)
    return uploads if placed_any else no_update, " ".join(messages), None, []


@callback(Output(ids.UPLOADS, "data", allow_duplicate=True),
          inputs={"k": Input(ids.UPLOAD_K, "value"), "space": Input(ids.UPLOAD_SPACE, "value"),
                  "uploads": State(ids.UPLOADS, "data")},
          prevent_initial_call=True)
def renew_neighbours(k, space, uploads):
    """Neighbours of the images already placed follow the chosen number and distance."""
    import numpy as np

    app = current()
    if not uploads or app.service.state != READY:
        raise PreventUpdate
    space = space if space in SPACE_LABELS else "logits"
    out = []
    for u in uploads:
        nb = app.service.placer.neighbours(np.float32(u["logits"]), np.float32(u["features"]),
                                           int(k or 8), space)
        out.append({**u, "space": space, "neighbours": _neighbour_rows(app.store, nb)})
    return out


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
