"""The Dash app over one artifact: built once per process, reads nothing after start-up.

Pages are registered here (PAGES); each page module holds its layout and its callbacks. The
model service is started by the caller (app.py, gunicorn), never as a side effect of building.
What every response carries and which hosts are answered: cxrviz/security.py; how callback
requests are checked: cxrviz/callback_guard.py.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import re
import time
from pathlib import Path

from dash.exceptions import DependencyException
from flask import abort, g, jsonify, request, send_file
from werkzeug.exceptions import BadRequest, HTTPException, NotFound

from cxrviz import map_data, security
from cxrviz.appstate import current, open_once
from cxrviz.callback_guard import Refused, bounds_of, check
from cxrviz.data.images import MAX_UPLOAD_BYTES

ASSETS = Path(__file__).resolve().parents[1] / "assets"
# The largest request a page sends: one upload, base64-encoded (4/3), plus the rest of its
# callback request (the page's placed uploads included). Larger bodies get 413 unread.
MAX_CALLBACK_BYTES = MAX_UPLOAD_BYTES * 4 // 3 + 2 * 1024 * 1024
EARLY_DCC_PARTS = ("dropdown", "slider")
AFTER_PAINT_DCC_PARTS = ("graph",)
_APP = None
_BOUNDS: dict = {}  # callback_guard bounds, from the page layouts at the first callback
_HOSTS = {"allowed": security.allowed_hosts()}
_PATH = re.compile(r"(?<![\w.:/~-])(?:/[^\s/'\"]+)+/?")


def allow_hosts(names=(), bound: str | None = None) -> frozenset:
    """Answer to these host names too (app.py: --allow-host, --host); returns the list."""
    _HOSTS["allowed"] = security.allowed_hosts(names, bound)
    return _HOSTS["allowed"]


def without_paths(text: str) -> str:
    """A message for the outside (/api/status) with absolute paths cut to their last part."""
    return _PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], text or "")


def create_app(artifact_path, *, model: bool = True, weights_path=None):
    """Load the artifact (refusing a bad one with ArtifactError) and return the Dash app.

    One app per process, for one artifact: a second call with the same artifact returns the same
    app; a call with another raises appstate.AlreadyServing.
    """
    global _APP
    open_once(artifact_path, model=model, weights_path=weights_path)
    if _APP is None:
        _APP = _build_app()
        _freeze_loaded_objects()
    return _APP


def _freeze_loaded_objects() -> None:
    """Move what loading made (the store's tables: at 10^6 images tens of millions of Python
    objects, most of them strings) out of the cyclic garbage collector's reach: they live as
    long as the process, and every full collection walked them all, a pause of tens of ms that
    landed on whichever click or filter request was running (the p95 of a click at 10^6)."""
    import gc

    gc.collect()
    gc.freeze()


def start_model() -> None:
    """Start loading the model in the background (no-op with model=False, or when started)."""
    current().service.start()


def _dash_class():
    import dash

    class CxrvizDash(dash.Dash):
        """The page Dash writes, with the code-split parts of the components the sidebar shows
        at once (dropdown, slider) requested with the page (deferred): they compile while the
        renderer fetches the layout, and dcc finds them loaded. plotly.js and dcc's graph part
        (1.4 MB compressed; the detail panel's charts, not the map's) are named in a meta tag
        and loaded by assets/cxrviz.js once the map has drawn, off the first paint's path
        (benchmarks/browser.py measures the page load)."""

        def interpolate_index(self, **kwargs):
            from flask import has_request_context, request

            from cxrviz.pages.map import shell

            # the map bundle first, async: it draws the map into the page's shell (the map
            # page's HTML: pages/map/shell.py) while Dash's own scripts load and start
            head = f'<script async src="{asset_url(self, MAP_BUNDLE)}"></script>'
            entry, scripts, renderer = kwargs["app_entry"], kwargs["scripts"], kwargs["renderer"]
            map_page = (has_request_context()
                        and self.strip_relative_path(request.path) in ("", None))
            if map_page:
                entry = shell.shell_html(request.query_string.decode("utf-8", "replace")) + entry
                # the columns' download starts with the HTML, not once the bundle has run; the
                # map's fetch() of the same URLs takes these answers
                api = f"{self.config.requests_pathname_prefix}api/map"
                head += "".join(f'<link rel="preload" href="{api}/{part}" as="fetch" crossorigin>'
                                for part in PRELOADED)
            prefix = f"{self.config.requests_pathname_prefix}_dash-component-suites"
            early = [f"{prefix}/dash/dcc/async-{part}.js" for part in EARLY_DCC_PARTS]
            later = [f"{prefix}/plotly/package_data/plotly.min.js",
                     *(f"{prefix}/dash/dcc/async-{part}.js" for part in AFTER_PAINT_DCC_PARTS)]
            tags = "".join(f'<script defer src="{src}"></script>' for src in early)
            meta = f'<meta name="cxrviz-after-paint" content="{" ".join(later)}">'
            scripts += tags
            if map_page:  # held until the map has drawn in the shell (assets/start/)
                held = f'<template id="cxrviz-dash-scripts">{scripts}{renderer}</template>'
                scripts, renderer = held, f'<script src="{asset_url(self, DASH_START)}"></script>'
            return super().interpolate_index(
                **{**kwargs, "scripts": scripts, "renderer": renderer, "app_entry": entry,
                   "metas": kwargs.get("metas", "") + meta + head})

    return CxrvizDash


# under assets/, written by CxrvizDash.interpolate_index, not in Dash's own script list
MAP_BUNDLE = "map/cxrviz-map.js"
DASH_START = "start/dash-start.js"
PRELOADED = ("config", "points", "events")  # the map's routes every view needs (map_data.py)


@functools.lru_cache(maxsize=None)
def _file_version(rel: str) -> str:
    return hashlib.sha256((ASSETS / rel).read_bytes()).hexdigest()[:16]


def asset_url(app, rel: str) -> str:
    """An assets/ file's URL, versioned by its sha256 so a browser's cached copy never
    outlives a rebuild."""
    return f"{app.get_asset_url(rel)}?v={_file_version(rel)}"


def _pages():
    from cxrviz.pages import evaluation
    from cxrviz.pages import map as map_page

    return [map_page, evaluation]


# Props that carry data, not structure: Dash sends the validation layout (every page's layout)
# inside every page's HTML, so at 30,000 images the map's figure and time data made 6 MB of each
# page. Dash validates callbacks against ids and prop names only, so the values go.
HEAVY_PROPS = ("figure", "data", "rowData")


def _lighten(layout) -> None:
    """Strip HEAVY_PROPS' values from the validation layout, in place."""
    for component in [layout, *layout._traverse()]:
        for prop in HEAVY_PROPS:
            if getattr(component, prop, None) is not None:
                setattr(component, prop, None)


class StaticBundles:
    """Flask-Compress's cache, for the files that never change while the app runs: Dash's
    component bundles and assets/ (their URLs carry their version). They are compressed once;
    every other response (the page, layouts, callbacks) is compressed per request and never
    stored. The map's binary routes compress themselves (map_data), so Flask-Compress leaves
    them alone."""

    STATIC = ("/_dash-component-suites/", "/assets/")

    def __init__(self):
        self._stored = {}

    @classmethod
    def key(cls, req) -> str:
        static = req.method == "GET" and any(part in req.path for part in cls.STATIC)
        return req.full_path if static else ""

    def get(self, key):
        return self._stored.get(key)

    def set(self, key, value):
        if not key.endswith(";"):  # "<algorithm>;" + "" : a response of its own request
            self._stored[key] = value


def _compress(server) -> None:
    """Compress what the server sends (a first visit is mostly Dash's and plotly.js's
    JavaScript: 6 MB uncompressed). zstd and brotli where the browser takes them, else gzip."""
    from flask_compress import Compress

    server.config.update(COMPRESS_ALGORITHM=["zstd", "br", "gzip"],
                         COMPRESS_CACHE_BACKEND=StaticBundles, COMPRESS_CACHE_KEY=StaticBundles.key)
    Compress(server)


def _build_app():
    import dash
    from dash import html

    app = _dash_class()(__name__, title="cxrviz", assets_folder=str(ASSETS), use_pages=True,
                        pages_folder="", update_title=None,
                        assets_ignore=r"^(cxrviz-map|dash-start)\.js$",  # see MAP_BUNDLE
                        suppress_callback_exceptions=False)
    for page in _pages():
        dash.register_page(page.__name__, path=page.PATH, title=page.TITLE, layout=page.layout)
    app.layout = html.Div([dash.page_container], className="app")
    server = app.server
    server.config["MAX_CONTENT_LENGTH"] = MAX_CALLBACK_BYTES
    security.install(server, app, lambda: _HOSTS["allowed"])
    _compress(server)

    @server.before_request
    def start_timer():
        g.cxrviz_start = time.perf_counter()
        if app.validation_layout is not None and not getattr(app, "_cxrviz_light", False):
            _lighten(app.validation_layout)  # Dash built it in its own (earlier) hook
            app._cxrviz_light = True

    @server.after_request
    def server_timing(response):
        """Server-Timing: what the server spent (browser dev tools and benchmarks read it)."""
        start = getattr(g, "cxrviz_start", None)
        if start is not None:
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1e3:.2f}"
        return response

    @server.route("/display/<image_id>.jpg")
    def display_image(image_id):
        """By id only: anything that is not a known image id is a 404, never a path. A map
        built with --display none shows the source image, rendered here, or a card saying why
        it cannot (also in the X-Cxrviz-Display-Unavailable header)."""
        store = current().store
        if store.artifact.display_size is None and (
                image_id in store.position or image_id in store.rsna_ids):
            jpeg, why = store.display_jpeg(image_id)
            response = send_file(io.BytesIO(jpeg), mimetype="image/jpeg", max_age=0 if why else 600)
            if why:
                response.headers["X-Cxrviz-Display-Unavailable"] = why
            return response
        path = store.display_file(image_id)
        if path is None or not path.is_file():
            abort(404)
        return send_file(path, mimetype="image/jpeg", max_age=86400)

    map_data.register(server)  # the WebGL map's columns, masks, edges, hover and selection

    @server.route("/api/status")
    def status():
        """What this process serves and whether placement works (health checks, tests): the
        artifact's id, never a path of this machine."""
        state = current()
        weights = {k: v for k, v in state.store.artifact.weights.to_manifest().items()
                   if k != "path"}
        return jsonify({"artifact": state.store.artifact.artifact_id, "weights": weights,
                        "model": {"state": state.service.state,
                                  "message": without_paths(state.service.message)}})

    @server.before_request
    def refuse_other_display_paths():
        """"../x", "%2e%2e/x", "//etc/passwd", ...: under /display only exact ids are served."""
        if request.path.startswith("/display") and request.endpoint != "display_image":
            abort(404)

    @server.before_request
    def check_callback_requests():
        """callback_guard: Dash's shape, finite numbers, bounded nesting, a known callback,
        numeric controls clamped to their own bounds (in the body Dash then reads)."""
        if request.path.endswith("/_dash-update-component") and request.method == "POST":
            try:
                body = request.get_json(silent=True)
            except RecursionError:  # the json module gives up on very deep nesting
                abort(400, "callback request nested too deeply")
            if "bounds" not in _BOUNDS:
                _BOUNDS["bounds"] = bounds_of([page.layout() for page in _pages()])
            try:
                check(body, app.callback_map, _BOUNDS["bounds"])
            except Refused as exc:
                abort(400, str(exc))

    @server.errorhandler(DependencyException)
    def unknown_component_file(err):
        """/_dash-component-suites/<package>/<path> that Dash does not serve: a 404, not the
        500 (with the list of every registered file) Dash raises."""
        return not_found(NotFound())

    @server.errorhandler(Exception)
    def callback_input_errors(err):
        """A callback fed values no control can produce (hand-made requests) is the client's
        error: answer 400 and stay up; anything else stays a 500, its traceback in the log
        only."""
        if isinstance(err, HTTPException):
            return err
        if request.path.endswith("/_dash-update-component") and isinstance(
                err, (TypeError, ValueError, KeyError, IndexError, AttributeError,
                      OverflowError, RecursionError)):
            server.logger.warning("rejected callback input: %s: %s", type(err).__name__, err)
            return bad_request(BadRequest(f"invalid callback input ({type(err).__name__})"))
        server.logger.exception("unhandled error")
        return json.dumps({"error": "internal error"}), 500, {"Content-Type": "application/json"}

    @server.errorhandler(400)
    def bad_request(err):
        return json.dumps({"error": getattr(err, "description", "bad request")}), 400, {
            "Content-Type": "application/json"}

    @server.errorhandler(404)
    def not_found(err):
        return json.dumps({"error": "not found"}), 404, {"Content-Type": "application/json"}

    return app
