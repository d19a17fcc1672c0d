"""The Dash app over one artifact: created once per process, reads nothing after start-up."""
from __future__ import annotations

import json
import time
from pathlib import Path

from urllib.parse import parse_qsl, urlsplit

from flask import abort, g, has_request_context, request, send_file
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest, HTTPException

from cxrviz.appstate import get_store, set_service, set_store
from cxrviz.placement_service import PlacementService
from cxrviz.store import Store

ASSETS = Path(__file__).resolve().parents[1] / "assets"
MAX_CALLBACK_BYTES = 28 * 1024 * 1024  # a 20 MB upload, base64-encoded, plus the request
_CALLBACK_KEYS = ("output", "outputs", "inputs", "changedPropIds")


def page_query() -> MultiDict:
    """The page's query string while Dash fetches the layout.

    The browser asks for /_dash-layout with the page's URL as Referer (same origin), so the view
    in a shared URL is rendered directly, with no second round of callbacks.
    """
    if not has_request_context():
        return MultiDict()
    if request.path.endswith("/_dash-layout") and request.referrer:
        ref = urlsplit(request.referrer)
        if ref.netloc == request.host:
            return MultiDict(parse_qsl(ref.query))
    return request.args


_APP = None
_SERVING = None  # (artifact path, model on?) the app serves now


def create_app(artifact_path, *, model: bool = True):
    """Load the artifact (refusing a bad one with ArtifactError) and return the Dash app.

    One Dash app per process: `@callback`s register globally and the first app takes them all,
    so later calls (tests opening another artifact) swap the store under the same app.
    """
    global _APP, _SERVING
    key = (str(Path(artifact_path).expanduser().resolve()), model)
    if _APP is not None and _SERVING == key:
        return _APP  # already serving this artifact: keep its store and loaded model
    store = Store.open(artifact_path).warm()
    set_store(store)
    set_service(PlacementService(store.artifact, start=model))  # loads in the background
    if _APP is None:
        _APP = _build_app()
    _SERVING = key
    return _APP


def _build_app():
    import dash

    from cxrviz.pages import map as map_page  # registers the page's callbacks

    app = dash.Dash(__name__, title="cxrviz", assets_folder=str(ASSETS),
                    update_title=None, suppress_callback_exceptions=False)
    app.layout = lambda: map_page.layout(page_query())
    server = app.server
    server.config["MAX_CONTENT_LENGTH"] = MAX_CALLBACK_BYTES

    @server.before_request
    def start_timer():
        g.cxrviz_start = time.perf_counter()

    @server.after_request
    def server_timing(response):
        """Server-Timing: what the server spent (browser dev tools and benchmarks read it)."""
        start = getattr(g, "cxrviz_start", None)
        if start is not None:
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1e3:.2f}"
        return response

    @server.route("/display/<image_id>.jpg")
    def display_image(image_id):
        """By id only: anything that is not a known image id is a 404, never a path."""
        path = get_store().display_file(image_id)
        if path is None or not path.is_file():
            abort(404)
        return send_file(path, mimetype="image/jpeg", max_age=86400)

    @server.before_request
    def refuse_other_display_paths():
        """"../x", "%2e%2e/x", "//etc/passwd", ...: under /display only exact ids are served."""
        if request.path.startswith("/display") and request.endpoint != "display_image":
            abort(404)

    @server.before_request
    def refuse_malformed_callbacks():
        if request.path.endswith("/_dash-update-component") and request.method == "POST":
            body = request.get_json(silent=True)
            if not isinstance(body, dict) or not all(k in body for k in _CALLBACK_KEYS):
                abort(400, "malformed callback request")
            if body["output"] not in app.callback_map:
                abort(400, "unknown callback output")
            if not isinstance(body["inputs"], list) or not all(
                    isinstance(i, (dict, list)) for i in body["inputs"]):
                abort(400, "malformed callback inputs")

    @server.errorhandler(Exception)
    def callback_input_errors(err):
        """A callback fed values no control can produce (hand-made requests) is the client's
        error: answer 400 and stay up; anything else stays a 500."""
        if isinstance(err, HTTPException):
            return err
        if request.path.endswith("/_dash-update-component") and isinstance(
                err, (TypeError, ValueError, KeyError, IndexError, AttributeError)):
            server.logger.warning("rejected callback input: %s: %s", type(err).__name__, err)
            return bad_request(BadRequest(f"invalid callback input ({type(err).__name__})"))
        server.logger.exception("unhandled error")
        return json.dumps({"error": "internal error"}), 500, {"Content-Type": "application/json"}

    @server.errorhandler(400)
    def bad_request(err):
        return json.dumps({"error": getattr(err, "description", "bad request")}), 400, {
            "Content-Type": "application/json"}

    return app
