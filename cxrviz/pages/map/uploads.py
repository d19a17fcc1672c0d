"""Where does my patient fall? Uploads placed on the map by the artifact's own model, in memory,
and saliency for them.

An upload waits on the server (cxrviz.upload_queue: per page, bounded, one placement at a time)
until the model is ready; the page keeps only how many wait and the images already placed. A
file the browser refuses (wrong type, too large) never reaches the server: assets/uploads.js
reports it (UPLOAD_REJECTED) against the limits this module writes into the page, and the
reason shows where the server's own refusals do. How a placed upload is shown: upload_card.py.
"""
from __future__ import annotations

import base64
import json

from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from cxrviz import ids, words
from cxrviz import schema as S
from cxrviz.appstate import current
from cxrviz.data.images import MAX_UPLOAD_BYTES
from cxrviz.pages.map.controls import labelled
from cxrviz.pages.map.detail import default_output, output_options, saliency_image
from cxrviz.pages.map.upload_card import SPACE_LABELS, upload_card
from cxrviz.placement_service import IDLE, LOADING, READY
from cxrviz.upload_queue import Busy, NotKept, PendingUploads, new_id, too_large

ACCEPT = ".png,.jpg,.jpeg,.dcm,image/png,image/jpeg,application/dicom"
KINDS = "a PNG, JPEG or DICOM file"
MAX_PLACED = 16  # images on the map at once (each comes back with the page's requests)
DEFAULT_K = 8
PENDING = PendingUploads()  # this process's waiting uploads, every page's


def upload_panel(store, service):
    limits = {"accept": ACCEPT.split(","), "max_bytes": MAX_UPLOAD_BYTES,
              "store": ids.UPLOAD_REJECTED}
    return html.Div([
        html.H4("Where does my patient fall?"),
        html.Div(service.message, id=ids.MODEL_STATUS, className="muted"),
        dcc.Interval(id=ids.MODEL_POLL, interval=1000, disabled=service.state != LOADING),
        html.Div(dcc.Upload(
            id=ids.UPLOAD, max_size=MAX_UPLOAD_BYTES, multiple=False, accept=ACCEPT,
            className="upload",
            children=html.Div([f"Drop a chest X-ray (PNG, JPEG or DICOM, ≤ "
                               f"{MAX_UPLOAD_BYTES // 2**20} MB) or ", html.A("choose a file")])),
            id=ids.UPLOAD_ZONE, **{"data-upload-limits": json.dumps(limits)}),
        html.Div([
            html.Label("neighbours "), dcc.Input(id=ids.UPLOAD_K, type="number", min=1, max=50,
                                                 step=1, value=DEFAULT_K, debounce=True,
                                                 className="small-input"),
            dcc.RadioItems(id=ids.UPLOAD_SPACE, value="logits", inline=True,
                           options=[{"label": f" {v}", "value": k}
                                    for k, v in SPACE_LABELS.items()]),
        ], className="row"),
        html.Div(id=ids.UPLOAD_MESSAGE, className="message", role="status"),
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
        dcc.Store(id=ids.UPLOADS_PENDING, data=0),
        dcc.Store(id=ids.UPLOAD_SESSION, data=new_id()),  # a new one for every page built
        dcc.Store(id=ids.UPLOAD_REJECTED, data=None),
    ], className="panel")


def upload_bytes(contents: str) -> bytes:
    if not isinstance(contents, str) or "," not in contents:
        raise ValueError("the upload arrived incomplete")
    return base64.b64decode(contents.split(",", 1)[1], validate=False)


def file_name(filename) -> str:
    return str(filename)[:80] if isinstance(filename, str) and filename else "your file"


@callback(Output(ids.MODEL_STATUS, "children"), Output(ids.MODEL_POLL, "disabled"),
          inputs={"tick": Input(ids.MODEL_POLL, "n_intervals")})
def model_status(tick):
    service = current().service
    return service.message, service.state != LOADING


def _place(app, data: bytes, name: str, n: int, k, space) -> dict:
    """One upload, embedded and placed in memory -> the record the page keeps."""
    from cxrviz.compute.placement import OOD_K, OOD_PERCENTILE
    from cxrviz.data.images import display_jpeg

    placed = app.service.place(data, k=int(k or DEFAULT_K), space=space)
    preview = display_jpeg(placed.image)
    return {
        "n": n, "name": name, "x": placed.x, "y": placed.y,
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


def _placed(uploads) -> list:
    """The page's placed uploads, as a request brings them back (at most MAX_PLACED)."""
    if uploads is None:
        return []
    if not isinstance(uploads, list) or len(uploads) > MAX_PLACED or not all(
            isinstance(u, dict) for u in uploads):
        raise ValueError("malformed list of placed uploads")
    return list(uploads)


def _place_batch(app, batch, uploads, k, space) -> list:
    """Place what waited, in order, into `uploads` -> one message per upload."""
    messages = []
    for data, name in batch:
        from cxrviz.compute.placement import UploadRejected

        n = max([u.get("n", 0) for u in uploads], default=0) + 1
        try:
            u = _place(app, data, name, n, k, space)
        except (UploadRejected, ValueError) as exc:
            messages.append(f"Not placed: {name}: {exc}")
            continue
        uploads.append(u)
        messages.append(f"Placed image {n} at ({u['x']:.2f}, {u['y']:.2f})"
                        + (", though it is unlike anything the map was built from."
                           if u["out_of_distribution"] else "."))
    return messages


def _lost(n: int) -> str:
    return (f"{words.plural(n, 'upload')} kept while the model was loading "
            f"{'is' if n == 1 else 'are'} no longer held by the server (another server process "
            "answered, or the page waited too long): drop "
            f"{'it' if n == 1 else 'them'} again.")


@callback(Output(ids.UPLOADS, "data"), Output(ids.UPLOAD_MESSAGE, "children"),
          Output(ids.UPLOAD, "contents"), Output(ids.UPLOADS_PENDING, "data"),
          Output(ids.MODEL_POLL, "disabled", allow_duplicate=True),
          inputs={"contents": Input(ids.UPLOAD, "contents"),
                  "clear": Input(ids.UPLOAD_CLEAR, "n_clicks"),
                  "ready": Input(ids.MODEL_POLL, "disabled"),
                  "filename": State(ids.UPLOAD, "filename"),
                  "uploads": State(ids.UPLOADS, "data"),
                  "pending": State(ids.UPLOADS_PENDING, "data"),
                  "session": State(ids.UPLOAD_SESSION, "data"),
                  "k": State(ids.UPLOAD_K, "value"), "space": State(ids.UPLOAD_SPACE, "value")},
          prevent_initial_call=True)
def place_upload(contents, clear, ready, filename, uploads, pending, session, k, space):
    """Decode, embed and place uploads, in memory; nothing is written anywhere. An upload waits
    on the server (at most 8 a page) while the model loads, or while another of the page's
    uploads is being placed; the poll then brings the page back to place it."""
    trigger = ctx.triggered_id
    if trigger == ids.UPLOAD_CLEAR:
        PENDING.clear(session)
        return [], "Cleared.", None, 0, no_update
    app = current()
    uploads = _placed(uploads)
    told = pending if isinstance(pending, int) and not isinstance(pending, bool) else 0
    if trigger == ids.UPLOAD:
        if not contents:
            raise PreventUpdate
        name = file_name(filename)
        if not isinstance(contents, str):
            return no_update, "Not placed: one file at a time.", None, no_update, no_update
        if len(uploads) + PENDING.count(session) >= MAX_PLACED:
            return (no_update, f"Not placed: {MAX_PLACED} images are on the map; clear them to "
                               "place more.", None, no_update, no_update)
        try:
            PENDING.add(session, upload_bytes(contents), name)
        except (NotKept, ValueError) as exc:
            return no_update, f"Not placed: {exc}", None, no_update, no_update
        told += 1
    elif told <= 0 and not PENDING.count(session):
        raise PreventUpdate  # the model's state changed with nothing waiting
    if app.service.state in (LOADING, IDLE):
        n = PENDING.count(session)
        return (no_update, f"Kept {words.plural(n, 'upload')}: placed as soon as the model is "
                           "ready.", None, n, no_update)
    if app.service.state != READY:
        PENDING.clear(session)
        return no_update, app.service.message, None, 0, no_update
    space = space if space in SPACE_LABELS else "logits"
    try:
        with PENDING.placing(session) as batch:
            messages = _place_batch(app, batch, uploads, k, space)
    except Busy:
        n = PENDING.count(session)
        return (no_update, f"Kept {words.plural(n, 'upload')}: placed after the one being "
                           "placed now.", None, n, False)
    except NotKept as exc:
        return no_update, f"Not placed: {exc}", None, no_update, no_update
    if told > len(batch):
        messages.append(_lost(told - len(batch)))
    waiting = PENDING.count(session)  # added meanwhile: the poll brings them back
    placed_any = any(m.startswith("Placed") for m in messages)
    return (uploads if placed_any else no_update, " ".join(messages), None, waiting,
            False if waiting else no_update)


@callback(Output(ids.UPLOAD_MESSAGE, "children", allow_duplicate=True),
          inputs={"rejected": Input(ids.UPLOAD_REJECTED, "data")}, prevent_initial_call=True)
def show_rejection(rejected):
    """A file the browser refused (assets/uploads.js): which, and why."""
    if not isinstance(rejected, dict) or rejected.get("reason") not in ("type", "size"):
        raise PreventUpdate
    name = file_name(rejected.get("name"))
    if rejected["reason"] == "type":
        return f"Not placed: {name} is not {KINDS}."
    size = rejected.get("size")
    nbytes = size if isinstance(size, (int, float)) and not isinstance(size, bool) else 0
    return f"Not placed: {too_large(name, nbytes)}"


@callback(Output(ids.UPLOADS, "data", allow_duplicate=True),
          inputs={"k": Input(ids.UPLOAD_K, "value"), "space": Input(ids.UPLOAD_SPACE, "value"),
                  "uploads": State(ids.UPLOADS, "data")},
          prevent_initial_call=True)
def renew_neighbours(k, space, uploads):
    """Neighbours of the images already placed follow the chosen number and distance."""
    import numpy as np

    app = current()
    uploads = _placed(uploads)
    if not uploads or app.service.state != READY:
        raise PreventUpdate
    space = space if space in SPACE_LABELS else "logits"
    out = []
    for u in uploads:
        logits, features = np.float32(u["logits"]), np.float32(u["features"])
        if logits.shape != (len(app.store.pathologies),) or features.ndim != 1 or not (
                np.isfinite(logits).all() and np.isfinite(features).all()):
            raise ValueError("malformed placed upload")
        nb = app.service.placer.neighbours(logits, features, int(k or DEFAULT_K), space)
        out.append({**u, "space": space, "neighbours": _neighbour_rows(app.store, nb)})
    return out


@callback(Output(ids.UPLOAD_PANEL, "children"),
          inputs={"uploads": Input(ids.UPLOADS, "data")}, prevent_initial_call=True)
def show_uploads(uploads):
    """The cards; the map draws the uploads itself (mapUploads)."""
    store = current().store
    return [upload_card(store, u) for u in _placed(uploads)]


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
    upload = next((u for u in _placed(uploads) if u.get("n") == n), None)
    if upload is None:
        raise PreventUpdate
    from cxrviz.compute.placement import UploadRejected

    try:
        png = app.service.saliency_png(upload_bytes(upload["preview"]), int(output))
    except (UploadRejected, ValueError) as exc:  # a preview the page did not get from us
        return f"No saliency: {exc}"
    return saliency_image(png, f"{app.store.pathologies[int(output)]}: your image {n} "
                               "(computed on its 512 px preview)")
