"""The trajectory table: one row per patient (patients.parquet), following the page's filters;
sortable, filterable and virtualised (AG Grid); a click selects the patient; CSV download."""
from __future__ import annotations

import json

import numpy as np
from dash import Input, Output, State, callback, dcc, html
from dash.exceptions import PreventUpdate

from cxrviz import ids, words
from cxrviz import schema as S
from cxrviz.appstate import current
from cxrviz.pages.map.controls import filter_inputs

HEADERS = {
    S.PATIENTID: "patient", S.P_N_IMAGES: "images", S.P_N_DATED: "dated",
    S.P_FIRST_DAY: "first day", S.P_LAST_DAY: "last day",
    S.P_FIRST_PCT: "first pct", S.P_LAST_PCT: "last pct", S.P_MAX_PCT: "max pct",
    S.P_CHANGE_PCT: "change (last − first)", S.P_DAYS_TO_BAD: "days to first bad state",
    S.P_ICU: "in ICU at any time", S.P_INTUBATED: "intubated at any time", S.SURVIVAL: "outcome",
    S.CONTINENT: "continent", S.COUNTRY: "country", S.FINDING_GROUP: "finding group",
}
NUMERIC = {S.P_N_IMAGES, S.P_N_DATED, S.P_FIRST_DAY, S.P_LAST_DAY, S.P_FIRST_PCT, S.P_LAST_PCT,
           S.P_MAX_PCT, S.P_CHANGE_PCT, S.P_DAYS_TO_BAD}


def column_defs() -> list:
    defs = []
    for col in S.PATIENT_COLUMNS:
        d = {"field": col, "headerName": HEADERS[col]}
        if col in NUMERIC:
            d["filter"] = "agNumberColumnFilter"
            d["type"] = "numericColumn"
            if col in (S.P_FIRST_PCT, S.P_LAST_PCT, S.P_MAX_PCT, S.P_CHANGE_PCT):
                d["valueFormatter"] = {"function": "params.value == null ? '' : "
                                                   "d3.format('.0f')(params.value)"}
        if col == S.PATIENTID:
            d["pinned"] = "left"
        if col in (S.SURVIVAL, S.P_ICU, S.P_INTUBATED, S.FINDING_GROUP):  # words, not codes
            table = {S.SURVIVAL: words.SURVIVAL, S.FINDING_GROUP: {"unknown": "unknown"}}.get(
                col, words.YES_NO)
            d["valueFormatter"] = {"function": f"({json.dumps(table)})[params.value] || "
                                               "params.value"}
        defs.append(d)
    return defs


def rows_for(store, keep: np.ndarray) -> list:
    """Patients with at least one image passing the filters, as plain records (NaN -> None;
    percentiles to one decimal: the table shows whole numbers, and the page gets half the
    bytes)."""
    patients = store.patients.iloc[np.unique(store.patient_index[keep])].round(
        {c: 1 for c in (S.P_FIRST_PCT, S.P_LAST_PCT, S.P_MAX_PCT, S.P_CHANGE_PCT)})
    frame = patients.astype(object).where(patients.notna(), None)
    return frame.to_dict("records")


def table_panel():
    import dash_ag_grid as dag

    return html.Div([
        html.Div([html.Span("One row per patient; click a row to select the patient. Days are the "
                            "reported offset; percentiles are of the bad-state density.",
                            className="muted small"),
                  html.Button("Download CSV", id=ids.TABLE_CSV, className="button")],
                 className="row spread"),
        dag.AgGrid(id=ids.TABLE, columnDefs=column_defs(), rowData=[],
                   getRowId="params.data.patientid",
                   defaultColDef={"sortable": True, "filter": True, "resizable": True,
                                  "floatingFilter": True, "minWidth": 90},
                   dashGridOptions={"rowSelection": {"mode": "singleRow",
                                                     "enableClickSelection": True,
                                                     "checkboxes": False},
                                    "animateRows": False},
                   style={"height": "420px"}, className="ag-theme-quartz"),
        dcc.Download(id=ids.TABLE_DOWNLOAD), dcc.Download(id=ids.TABLE_SIDECAR),
    ])


@callback(Output(ids.TABLE, "rowData"),
          inputs={"filters": filter_inputs(), "tab": Input(ids.TABS, "value")})
def table_rows(filters, tab):
    if tab != "patients":
        raise PreventUpdate  # built when the table is opened, not on every filter change
    store = current().store
    return rows_for(store, store.mask(filters))


@callback(Output(ids.TABLE_DOWNLOAD, "data"), Output(ids.TABLE_SIDECAR, "data"),
          inputs={"clicks": Input(ids.TABLE_CSV, "n_clicks"), "filters": filter_inputs(State)},
          prevent_initial_call=True)
def table_csv(clicks, filters):
    """The patients of the current filter as CSV (cxrviz.export: formulas quoted away, the
    weights in every row), with its provenance beside it."""
    from cxrviz.export import patients_csv, provenance

    store = current().store
    keep = store.mask(filters)
    data, sidecar, name, side_name = patients_csv(store, keep,
                                                  provenance(store, keep, filters=filters))
    return dcc.send_bytes(data, name), dcc.send_bytes(sidecar, side_name)


def first_image_of(store, patient):
    """The image a selected patient opens on: its first image in time order."""
    pos = store.patient_positions.get(str(patient))
    return None if pos is None or not len(pos) else store.image_ids[pos[0]]

