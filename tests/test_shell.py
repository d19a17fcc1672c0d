"""The map page's first paint without waiting for Dash (cxrviz/pages/map/shell.py, app.py's
CxrvizDash.interpolate_index, assets/start/dash-start.js): the HTML of "/" holds a static shell of
the page with the map's element and the state the URL asks for, the map bundle loads async in
the head, and Dash's scripts wait in a <template> until the map has drawn. Through Flask's test
client on the real collection's artifact; the browser side is in test_browser_map.py.

Expected states come from the URL by hand (the days, the scope and the filter asked for) and
from the page's own layout (the shell's state must be the page's, or the map cannot move into
it); the query parse from Dash Pages' own function."""
import html
import json
import re
import zstandard

import pytest

from cxrviz import ids

QUERY = "sex=F&day_from=0&day_to=14&traj=all&color=survival"


@pytest.fixture(scope="module")
def app(covid_artifact):
    from cxrviz.app import create_app

    return create_app(covid_artifact.out)


@pytest.fixture(scope="module")
def client(app):
    return app.server.test_client()


def shell_state(page_html: str) -> dict:
    m = re.search(r'<div class="map-shell".*?<div class="map map-gl" data-state="([^"]*)"',
                  page_html, re.S)
    assert m, "no shell with a map element in the page"
    return json.loads(html.unescape(m.group(1)))


def layout_state(query: dict) -> dict:
    from cxrviz.pages import map as page

    tree = page.layout(**query)
    element = next(c for c in tree._traverse() if getattr(c, "id", None) == ids.MAP)
    return json.loads(getattr(element, "data-state"))


def test_the_query_is_parsed_as_dash_pages_parses_it():
    from dash._pages import _parse_query_string

    from cxrviz.map_data import query_of

    for q in ["", "sex=F", "sex=F&sex=M", "age=30-60&traj=ids&traj_ids=205,178", "a=&b=%20c",
              "image=covid%2F1.png&day_from=-3", "x=1&x=2&x=3&y"]:
        assert query_of(q) == _parse_query_string(f"?{q}" if q else ""), q


def test_the_map_page_s_html_holds_the_shell_with_the_page_s_state(client, app):
    from cxrviz.map_data import query_of

    body = client.get(f"/?{QUERY}").get_data(as_text=True)
    state = shell_state(body)
    # what the URL asked for, by hand
    assert state["range"] == [0, 14] and state["scope"] == "all" and state["color"] == "survival"
    assert "sex=F" in state["query"] and state["selected"] == ""
    # the page Dash renders for the same URL carries the same state: the map moves into it
    assert state == layout_state(query_of(QUERY))
    assert shell_state(client.get("/").get_data(as_text=True)) == layout_state({})
    # the untrained weights are said in the shell too (random weights here)
    shell = body[body.index('<div class="map-shell"'):body.index('<div id="react-entry-point"')]
    assert "positions and outputs carry no clinical meaning" in shell
    assert "<script" not in shell and "<button" not in shell and "<input" not in shell


def test_a_link_s_ignored_values_are_said_in_the_shell_as_on_the_page(client):
    body = client.get("/?color=nope").get_data(as_text=True)
    shell = body[body.index('<div class="map-shell"'):body.index('<div id="react-entry-point"')]
    assert "ignored: color=nope" in shell
    assert shell_state(body)["color"] != "nope"
    # a query past the server's bounds: no shell (the map mounts in Dash's page)
    assert "map-shell" not in client.get("/?" + "&".join(["sex=F"] * 300)).get_data(as_text=True)


def scripts(fragment: str) -> list:
    return re.findall(r"<script\b[^>]*>", fragment)


def test_dash_waits_for_the_map_on_the_map_page_only(client, app):
    body = client.get("/").get_data(as_text=True)
    head = body[:body.index("</head>")]
    bundle = [s for s in scripts(body) if "map/cxrviz-map.js" in s]
    assert len(bundle) == 1 and " async " in bundle[0] and bundle[0] in head
    held = re.search(r'<template id="cxrviz-dash-scripts">(.*?)</template>', body, re.S)
    assert held, "Dash's scripts are not held on the map page"
    inside, outside = held.group(1), body.replace(held.group(0), "")
    assert "dash_renderer" in inside or "dash-renderer" in inside
    assert "new DashRenderer" in inside and "new DashRenderer" not in outside
    assert not any("_dash-component-suites" in s for s in scripts(outside))
    assert [s for s in scripts(outside) if "start/dash-start.js" in s]
    assert 'id="_dash-config"' in outside  # the renderer reads it from the document
    # the columns every view needs are preloaded with the HTML (the bundle fetches them after)
    for part in ("config", "points", "events"):
        assert f'<link rel="preload" href="/api/map/{part}" as="fetch" crossorigin>' in head
    # the evaluation page: Dash's scripts as Dash writes them, no shell, the bundle still async
    other = client.get("/evaluation").get_data(as_text=True)
    assert "map-shell" not in other and "cxrviz-dash-scripts" not in other
    assert 'rel="preload"' not in other
    assert "new DashRenderer" in other and "start/dash-start.js" not in other
    assert any("map/cxrviz-map.js" in s and " async " in s for s in scripts(other))
    # the bundle and the start file are served, versioned, and not also in Dash's own list
    for src in re.findall(r'src="([^"]*(?:cxrviz-map|dash-start)\.js\?v=[0-9a-f]{16})"', body):
        assert client.get(src).status_code == 200
    assert body.count("cxrviz-map.js") == 1


def test_the_columns_come_zstd_or_gzip_compressed_once(client):
    plain = client.get("/api/map/points").get_data()
    z = client.get("/api/map/points", headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert z.headers["Content-Encoding"] == "zstd"
    assert zstandard.ZstdDecompressor().decompress(z.get_data()) == plain
    again = client.get("/api/map/points", headers={"Accept-Encoding": "zstd"})
    assert again.get_data() == z.get_data()
    g = client.get("/api/map/points", headers={"Accept-Encoding": "gzip"})
    assert g.headers["Content-Encoding"] == "gzip"
    m = client.get("/api/map/mask?sex=F", headers={"Accept-Encoding": "zstd"})
    assert m.headers["Content-Encoding"] == "zstd" and m.status_code == 200
