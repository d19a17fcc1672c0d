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
from cxrviz.appstate import current
from cxrviz.map_data import query_of
from cxrviz.pages.common import banner_text
from cxrviz.pages.map import callbacks, time, urlstate


def ignored_text(ignored: list) -> str:
    return "This link asked for values this map does not have, ignored: " + ", ".join(ignored)


def shell_html(search: str) -> str:
    """The shell for the map page at `search` (the request's query string), parsed as Dash
    Pages hands it to layout(**query); '' for a query past map_data's bounds (the map then
    mounts in Dash's page, which says what it refused)."""
    store = current().store
    try:
        query = query_of(search)
    except ValueError:
        return ""
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
