"""The map page's first paint: a static shell of the page, written into its HTML.

Dash draws a page only after its scripts have run, its layout and callbacks have been fetched
and the page's own callback has answered: ~0.7 s at 30,000 images on this machine's browser,
before the map's element even exists (benchmarks/browser.py --map-only). The shell is the
page's boxes with the same CSS classes (header, banner, notice, sidebar, the map, the detail
panel) and the map's element with the state the URL asks for (callbacks.map_state, the one
codec), so the map bundle, loaded `async` in the page's head, draws there at once; when Dash's
page appears with the same state, the map moves into its element and the shell goes
(frontend/src/map.js, adopt). The shell holds no control: nothing in it can be clicked.
"""
from __future__ import annotations

import html
import json
from urllib.parse import parse_qs

from cxrviz.appstate import current
from cxrviz.pages.common import banner_text
from cxrviz.pages.map import callbacks, time, urlstate


def query_dict(search: str) -> dict:
    """A query string as Dash Pages hands it to layout(**query): one value as a string, a
    repeated key as a list, blanks kept (dash._pages parses it the same way)."""
    search = search if search.startswith("?") else "?" + search
    parsed = parse_qs(search[1:], keep_blank_values=True) if len(search) > 1 else {}
    return {k: v[0] if len(v) == 1 else v for k, v in parsed.items()}


def ignored_text(ignored: list) -> str:
    return "This link asked for values this map does not have, ignored: " + ", ".join(ignored)


def shell_html(search: str) -> str:
    """The shell for the map page at `search` (the request's query string)."""
    store = current().store
    query = query_dict(search)
    st, t = urlstate.decode(query, store), time.decode(query, store)
    state = json.dumps(callbacks.map_state(store, st, t))
    ignored = st["ignored"] + t["ignored"]
    warning = banner_text(store)
    parts = [
        '<div class="map-shell" aria-hidden="true"><div class="page">',
        '<header><h1>cxrviz</h1></header>',
        f'<div class="banner">{html.escape(warning)}</div>' if warning else "",
        f'<div class="notice">{html.escape(ignored_text(ignored))}</div>' if ignored else "",
        '<div class="grid"><aside class="sidebar"></aside><div class="map-and-detail">',
        f'<main class="center"><div class="map map-gl" data-state="{html.escape(state)}">'
        '</div></main><aside class="detail"></aside></div></div></div></div>',
    ]
    return "".join(parts)
