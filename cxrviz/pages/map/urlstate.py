"""The map page's URL: what the query string holds, encoded from and decoded into control values.

Dash Pages hands `layout(**query)` the query string as a dict (a value, or a list of values for
a repeated key); `decode` turns it into control values, ignoring (and reporting) what is invalid.
`encode` is its inverse (with `t`, the time part too, by pages/map/time.url_spec, the table the
browser encodes the time part by on every day step); the browser joins the two into the address
bar with history.replaceState, so sharing a view never re-renders the page.
"""
from __future__ import annotations

from urllib.parse import urlencode

from dash import ClientsideFunction, Input, Output, callback, clientside_callback

from cxrviz import figures, ids
from cxrviz import schema as S
from cxrviz.appstate import current
from cxrviz.filters import all_keys, as_pairs, read_pairs
from cxrviz.pages.map.controls import filter_inputs, view_inputs

LAYERS = ("density", "trajectories", "rsna")
DEFAULT_VIEW = {"color": S.STATE, "show": list(LAYERS), "density_style": "heatmap",
                "opacity": 0.55, "mode": "dim"}


def _values(query: dict, key: str) -> list:
    value = query.get(key)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def _first(query: dict, key: str):
    values = _values(query, key)
    return values[0] if values else None


def encode(filters: dict, view: dict, selected, store, t: dict | None = None) -> str:
    """Control values (and the time part `t`, as time.decode returns it) -> '?key=value&...'
    ('' for the default view)."""
    from cxrviz.pages.map import time as time_part

    pairs = as_pairs(filters, store.default_filters())
    if view["color"] != DEFAULT_VIEW["color"]:
        pairs.append(("color", view["color"]))
    if sorted(view["show"] or []) != sorted(DEFAULT_VIEW["show"]):
        pairs.append(("show", ",".join(view["show"] or []) or "none"))
    if view["density_style"] != DEFAULT_VIEW["density_style"]:
        pairs.append(("density", view["density_style"]))
    if view["opacity"] != DEFAULT_VIEW["opacity"]:
        pairs.append(("opacity", view["opacity"]))
    if view["mode"] != DEFAULT_VIEW["mode"]:
        pairs.append(("mode", view["mode"]))
    if selected:
        pairs.append(("image", selected))
    if t is not None:
        pairs += time_part.pairs(t, store)
    return ("?" + urlencode(pairs)) if pairs else ""


def decode(query: dict, store) -> dict:
    """{'filters', 'view', 'selected', 'ignored'}: control values from a query dict. Values that
    no longer exist (or never did) are dropped and listed in 'ignored'."""
    filters, ignored = read_pairs({k: _values(query, k) for k in all_keys() if k in query},
                                  store, strict=False)
    view = dict(DEFAULT_VIEW)
    color = _first(query, "color")
    if color is not None:
        if color in {o["value"] for o in figures.color_options(store)}:
            view["color"] = color
        else:
            ignored.append(f"color={color}")
    show = _first(query, "show")
    if show is not None:
        view["show"] = [v for v in show.split(",") if v in LAYERS]
    if _first(query, "density") == "contours":
        view["density_style"] = "contours"
    opacity = _first(query, "opacity")
    if opacity is not None:
        try:
            view["opacity"] = min(1.0, max(0.0, float(opacity)))
        except ValueError:
            ignored.append(f"opacity={opacity}")
    if _first(query, "mode") == "hide":
        view["mode"] = "hide"
    selected = _first(query, "image") or None  # "image=" (empty) asks for nothing
    if selected is not None and store.row(selected) is None:
        ignored.append(f"image={selected}")
        selected = None
    return {"filters": filters, "view": view, "selected": selected, "ignored": ignored}


@callback(Output(ids.QUERY, "data"),
          inputs={"filters": filter_inputs(), "view": view_inputs(),
                  "selected": Input(ids.SELECTED, "data")},
          prevent_initial_call=True)
def sync_url(filters, view, selected):
    """The query's filters, view and selection; the browser adds the time part (TIME_QUERY,
    by time.url_spec) so that a day step or a Play frame sends no request."""
    return encode(filters, view, selected, current().store)


# replaceState, not dcc.Location: a Location change would make Dash Pages render the page again.
clientside_callback(ClientsideFunction(namespace="cxrviz", function_name="writeUrl"),
                    Output(ids.QUERY_SINK, "data"), Input(ids.QUERY, "data"),
                    Input(ids.TIME_QUERY, "data"), prevent_initial_call=True)
