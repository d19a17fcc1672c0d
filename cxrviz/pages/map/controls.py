"""The sidebar: view controls and the filters (built from the filter table), and the callback
inputs that read them, as dicts keyed like the table."""
from __future__ import annotations

from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from cxrviz import figures, ids, words
from cxrviz import schema as S
from cxrviz.appstate import current
from cxrviz.filters import BY_KEY, FILTERS

LAYER_LABELS = {"density": " bad-state density", "trajectories": " trajectories",
                "rsna": " RSNA reference cloud"}
VIEW_IDS = {"color": ids.COLOR_BY, "show": ids.SHOW, "density_style": ids.DENSITY_STYLE,
            "opacity": ids.DENSITY_OPACITY, "mode": ids.FILTERED_MODE}


def filter_inputs(kind=Input) -> dict:
    """{filter key: Input(component, "value")}: a callback receives {key: value}."""
    return {key: kind(cid, "value") for f in FILTERS for key, cid in f.values_of()}


def view_inputs(kind=Input) -> dict:
    return {key: kind(cid, "value") for key, cid in VIEW_IDS.items()}


def labelled(label, component, **kw):
    return html.Div([html.Label(label, className="control-label"), component],
                    className="control", **kw)


def filter_controls(store, filters: dict) -> list:
    """Every filter's control (cxrviz.filters builds it); those the artifact does not offer
    stay in the page hidden, at their default, so the callbacks are the same for every map."""
    controls = {f.key: f.control(store, filters) for f in FILTERS}
    subregions, countries = place_options(store, filters["continent"], filters["subregion"])
    controls["subregion"].options, controls["country"].options = subregions, countries
    offered = set(store.offered)
    return [*(labelled(f.label, controls[f.key], hidden=f not in offered) for f in FILTERS),
            html.Button("Reset filters", id=ids.RESET, className="button")]


SHOWN_CHIPS = 3  # more active filters than this are counted in one "+n more"
SHORT_CHIP = 12  # characters: a chip this short keeps its whole text in a narrow header


def chip(key: str, label: str, value: str):
    """An active filter as a button that removes it. In a narrow header a long chip shows its
    value only and may be cut short; its title and accessible name hold all of it."""
    text = f"{label}: {value}"
    return html.Button([html.Span([html.Span(f"{label}: ", className="chip-label"), value],
                                  className="chip-text"),
                        html.Span("×", **{"aria-hidden": "true"})],
                       id={"type": ids.CHIP, "index": key},
                       className="chip keep" if len(text) <= SHORT_CHIP else "chip",
                       title=f"{text} (click to remove this filter)",
                       **{"aria-label": f"{text}: remove this filter"})


def chips(store, filters: dict) -> list:
    """The active filters, each a button that removes it; past SHOWN_CHIPS, a "+n more" that
    names the rest (the header stays one line; the sidebar shows every filter)."""
    defaults = store.default_filters()
    active = [c for f in FILTERS for c in f.chips(filters, defaults)]
    out = [chip(*a) for a in active[:SHOWN_CHIPS]]
    rest = active[SHOWN_CHIPS:]
    if rest:
        out.append(html.Span(f"+{len(rest)} more", className="chip-more muted",
                             title="; ".join(f"{label}: {text}" for _, label, text in rest)))
    return out


def view_controls(store, view: dict) -> list:
    layers = [k for k in LAYER_LABELS if k != "rsna" or len(store.rsna)]
    return [
        labelled("Colour by", dcc.Dropdown(id=ids.COLOR_BY, value=view["color"], clearable=False,
                                           options=figures.color_options(store))),
        dcc.Checklist(id=ids.SHOW, value=view["show"], className="checklist",
                      options=[{"label": LAYER_LABELS[k], "value": k} for k in layers]),
        labelled("Density as", dcc.RadioItems(id=ids.DENSITY_STYLE, inline=True,
                                              value=view["density_style"],
                                              options=["heatmap", "contours"])),
        labelled("Density opacity", dcc.Slider(id=ids.DENSITY_OPACITY, min=0, max=1, step=0.05,
                                               value=view["opacity"], marks=None)),
        labelled("Filtered-out images", dcc.RadioItems(id=ids.FILTERED_MODE, inline=True,
                                                       value=view["mode"],
                                                       options=["dim", "hide"])),
    ]


@callback(output=filter_inputs(Output),
          inputs={"reset": Input(ids.RESET, "n_clicks"),
                  "chip": Input({"type": ids.CHIP, "index": ALL}, "n_clicks"),
                  "filters": filter_inputs(State)},
          prevent_initial_call=True)
def reset_filters(reset, chip, filters):
    """Reset every filter, or the one whose chip was clicked."""
    defaults = current().store.default_filters()
    trigger = ctx.triggered_id
    if isinstance(trigger, dict):
        if not any(t["value"] for t in ctx.triggered):
            raise PreventUpdate  # chips re-rendered, not clicked
        key = trigger["index"]
        return {k: (defaults[k] if k == key else no_update) for k in filters}
    return defaults


@callback(Output(ids.CHIPS, "children"), inputs={"filters": filter_inputs()})
def show_chips(filters):
    return chips(current().store, filters)


@callback(Output(BY_KEY["subregion"].cid, "options"), Output(BY_KEY["country"].cid, "options"),
          Output(BY_KEY["subregion"].cid, "value", allow_duplicate=True),
          Output(BY_KEY["country"].cid, "value", allow_duplicate=True),
          inputs={"continent": Input(BY_KEY["continent"].cid, "value"),
                  "subregion": Input(BY_KEY["subregion"].cid, "value"),
                  "country": State(BY_KEY["country"].cid, "value")},
          prevent_initial_call=True)
def follow_continent(continent, subregion, country):
    """Subregions and countries offered follow the chosen continent (and subregion), so an
    impossible combination cannot be built; choices that no longer fit are dropped."""
    store = current().store
    subregions, countries = place_options(store, continent, subregion)
    sub_value = [v for v in subregion or [] if v in {o["value"] for o in subregions}]
    country_value = [v for v in country or [] if v in {o["value"] for o in countries}]
    return (subregions, countries, sub_value if sub_value != (subregion or []) else no_update,
            country_value if country_value != (country or []) else no_update)


def place_options(store, continent, subregion) -> tuple:
    """(subregion options, country options) that exist within the chosen continent / subregion."""
    rows = store.covid
    if continent:
        rows = rows[rows[S.CONTINENT].isin(continent)]
    subregions = sorted(rows[S.SUBREGION].unique(), key=lambda v: (v == S.UNKNOWN, v))
    chosen = [v for v in subregion or [] if v in set(subregions)]
    if chosen:
        rows = rows[rows[S.SUBREGION].isin(chosen)]
    countries = sorted(rows[S.COUNTRY].unique(), key=lambda v: (v == S.UNKNOWN, v))
    sub, cty = BY_KEY["subregion"], BY_KEY["country"]
    return ([words.option(sub.column, v, sub.label) for v in subregions],
            [words.option(cty.column, v, cty.label) for v in countries])
