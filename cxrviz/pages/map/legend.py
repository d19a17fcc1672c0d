"""The map's legend and colour scales, as HTML below the map (so the map fills its panel).

Colour entries are buttons: a click hides or shows those points (in the browser, no server
request). The density scale speaks percentiles of the collection; model outputs run from 0 to 1;
unknown values have an entry of their own. Trajectory entries show only while trajectories do.
"""
from __future__ import annotations

from dash import ALL, ClientsideFunction, Input, Output, State, callback, clientside_callback, html
from plotly import colors as plotly_colors

from cxrviz import figures, ids, words
from cxrviz import schema as S
from cxrviz.appstate import current
from cxrviz.figures.palette import CATEGORICAL, COLOR_LABELS, DENSITY_SCALE, GREY
from cxrviz.pages.map.controls import view_inputs


def _swatch(color, shape="dot"):
    return html.Span(className=f"swatch {shape}", style={"background": color})


def _gradient(scale_name: str, labels: list, title: str, unknown: str | None = None):
    """A colour scale as a CSS gradient with labels at their positions (0-100%)."""
    stops = plotly_colors.get_colorscale(scale_name)
    css = ", ".join(f"{c} {p * 100:.0f}%" for p, c in stops)
    return html.Div([
        html.Div(title, className="legend-title"),
        html.Div([html.Div(className="gradient", style={"background":
                                                        f"linear-gradient(to right, {css})"}),
                  html.Div([html.Span(text, className="tick", style={"left": f"{pos:.1f}%"})
                            for pos, text in labels], className="ticks")],
                 className="scale"),
        *([html.Span([_swatch(GREY), unknown], className="legend-static")] if unknown else []),
    ], className="legend-block")


def colour_block(store, color_by: str):
    colors = figures.point_colors(store, color_by)
    if color_by in CATEGORICAL:
        items = [html.Button([_swatch(c), words.option(color_by, cat,
                                                      COLOR_LABELS[color_by])["label"]],
                             id={"type": ids.LEGEND_ITEM, "index": i}, className="legend-item",
                             title="hide or show these points")
                 for i, (cat, c) in enumerate(colors["legend"].items())]
        return html.Div([html.Div(colors["title"], className="legend-title"),
                         html.Div(items, className="legend-items")], className="legend-block")
    marker = colors["marker"]
    lo, hi = float(marker["cmin"]), float(marker["cmax"])
    if colors["legend"]:  # the grey band below the scale holds the unknown values
        lo = lo + (hi - lo) * 0.04 / 1.04
    labels = [(0, f"{lo:.3g}"), (50, f"{(lo + hi) / 2:.3g}"), (100, f"{hi:.3g}")]
    unknown = next(iter(colors["legend"]), None)
    return _gradient("Viridis", labels, colors["title"], unknown)


def density_block(store):
    top = float(store.artifact.density[S.DENSITY_Z].max()) or 1.0
    ticks = figures.percentile_ticks(store)
    labels = [(100 * v / top, t) for v, t in zip(ticks["tickvals"], ticks["ticktext"])]
    return _gradient(DENSITY_SCALE, labels, "bad-state density (collection percentile)")


def trajectory_block():
    paths = [html.Span([_swatch(figures.SURVIVAL_COLORS[k], "line"),
                        f"path: {figures.SURVIVAL_NAMES[k]}"], className="legend-static")
             for k in (S.YES, S.NO, S.UNKNOWN)]
    return html.Div([html.Div("trajectories", className="legend-title"),
                     html.Div([*paths, html.Span("▲ arrowhead: colour of the state reached",
                                                 className="legend-static")],
                              className="legend-items")], className="legend-block")


def legend(store, view: dict) -> list:
    show = set(view.get("show") or ())
    return [colour_block(store, view["color"]),
            *([density_block(store)] if "density" in show else []),
            *([trajectory_block()] if "trajectories" in show else [])]


@callback(Output(ids.LEGEND, "children"),
          inputs={"view": {k: v for k, v in view_inputs().items()
                           if k in ("color", "show")}},
          prevent_initial_call=True)
def update_legend(view):
    return legend(current().store, view)


clientside_callback(
    ClientsideFunction(namespace="cxrviz", function_name="legendToggle"),
    Output(ids.HIDDEN_CATS, "data"),
    Output({"type": ids.LEGEND_ITEM, "index": ALL}, "className"),
    Input({"type": ids.LEGEND_ITEM, "index": ALL}, "n_clicks"),
    State(ids.HIDDEN_CATS, "data"), prevent_initial_call=True)
