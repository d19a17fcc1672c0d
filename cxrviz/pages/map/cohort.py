"""The cohort over time (a tab below the map): every patient in the current filter with two or
more dated images, on the density scale, by survival, over the day slider's range. Built when
the tab is open."""
from __future__ import annotations

from dash import Input, Output, State, callback, clientside_callback, dcc, html
from dash.exceptions import PreventUpdate

from cxrviz import ids
from cxrviz.appstate import current
from cxrviz.figures.time import BIN_DAYS, cohort_figure
from cxrviz.pages.common import graph_config
from cxrviz.pages.map.controls import filter_inputs
from cxrviz.pages.map.time import DAY_HI, DAY_LO

CAPTION = ("Each faint line is one patient: day by day, how close their X-rays sit to the map's "
           "images of patients in ICU, intubated or dying (100 = closest); the thick lines follow "
           f"the typical value of every {BIN_DAYS} days for those who survived, died, or whose "
           "outcome is unknown.")


def cohort_panel():
    return html.Div([
        html.P(CAPTION, className="muted small"),
        dcc.Loading(dcc.Graph(id=ids.COHORT_GRAPH, config=graph_config(),
                              figure={"layout": {"height": 440}})),
    ], id=ids.COHORT)


def slider_range(value) -> tuple:
    """The day slider's value as the chart's x-axis (its ends stand for 'and beyond')."""
    lo, hi = (value or [DAY_LO, DAY_HI])[:2]
    lo = DAY_LO if lo is None else max(float(lo), DAY_LO)
    hi = DAY_HI if hi is None else min(float(hi), DAY_HI)
    return (lo, hi) if lo < hi else (DAY_LO, DAY_HI)


@callback(Output(ids.COHORT_GRAPH, "figure"),
          inputs={"filters": filter_inputs(), "align": Input(ids.ALIGN, "value"),
                  "tab": Input(ids.TABS, "value"), "days": State(ids.DAY_RANGE, "value")})
def cohort(filters, align, tab, days):
    """Built on the server when the tab opens or the filters or alignment change; moving the day
    slider only re-ranges the axis in the browser (below): day ranges and playback send no
    server request."""
    if tab != "cohort":
        raise PreventUpdate
    store = current().store
    return cohort_figure(store, store.mask(filters), align or "offset",
                         day_range=slider_range(days))


# The day slider's value is the x-axis range (slider_range's rule for a value the slider gives)
clientside_callback(
    """function (days, tab, fig) {
        const nothing = window.dash_clientside.no_update;
        if (tab !== "cohort" || !fig || !fig.layout || !fig.layout.xaxis2 || !days) return nothing;
        const layout = {...fig.layout, xaxis: {...fig.layout.xaxis, range: [days[0], days[1]]},
                        xaxis2: {...fig.layout.xaxis2, range: [days[0], days[1]]}};
        return {...fig, layout};
    }""",
    Output(ids.COHORT_GRAPH, "figure", allow_duplicate=True),
    Input(ids.DAY_RANGE, "value"), State(ids.TABS, "value"), State(ids.COHORT_GRAPH, "figure"),
    prevent_initial_call=True)
