"""The cohort over time (a tab below the map): every patient in the current filter with two or
more dated images, on the density scale, by survival. Built when the tab is open."""
from __future__ import annotations

from dash import Input, Output, callback, dcc, html
from dash.exceptions import PreventUpdate

from cxrviz import ids
from cxrviz.appstate import current
from cxrviz.pages.common import graph_config
from cxrviz.figures.time import cohort_figure
from cxrviz.pages.map.controls import filter_inputs


def cohort_panel():
    return html.Div([
        html.P("Faint lines: each patient's bad-state density percentile against the aligned "
               "day, coloured by outcome. Thick lines and bands: median and interquartile range "
               "per bin; bars: images per bin. Click a line to select that patient. The cohort "
               "path is measured on the density scale, not by averaging map positions.",
               className="muted small"),
        dcc.Loading(dcc.Graph(id=ids.COHORT_GRAPH, config=graph_config(),
                              figure={"layout": {"height": 420}})),
    ], id=ids.COHORT)


@callback(Output(ids.COHORT_GRAPH, "figure"),
          inputs={"filters": filter_inputs(), "align": Input(ids.ALIGN, "value"),
                  "tab": Input(ids.TABS, "value")})
def cohort(filters, align, tab):
    if tab != "cohort":
        raise PreventUpdate
    store = current().store
    return cohort_figure(store, store.mask(filters), align or "offset")
