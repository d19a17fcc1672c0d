"""The trajectory table: one row per episode (patients.parquet: a MIMIC admission with its
patient id beside it; in the COVID collection a patient), following the page's filters; sortable,
filterable and virtualised (AG Grid); a click selects the episode's first image; CSV download."""
from __future__ import annotations

import json
import re

import numpy as np
from dash import Input, Output, State, callback, dcc, html
from dash.exceptions import PreventUpdate

from cxrviz import ids, words
from cxrviz import schema as S
from cxrviz.appstate import current
from cxrviz.pages.map.controls import filter_inputs

# Sixteen columns fit the map's column at 1280 px: short headers under group headers that say
# what they measure (soft hyphens let a long word break), blank cells for unknown values (as the
# numbers already had), a compact font, sized to the grid's width.
SHY = "\u00ad"
GROUPS = (
    (None, {S.PATIENTID: "patient", S.EPISODE: words.EPISODE}),
    ("images", {S.P_N_IMAGES: "all", S.P_N_DATED: "dated"}),
    ("day (reported)", {S.P_FIRST_DAY: "first", S.P_LAST_DAY: "last",
                        S.P_DAYS_TO_BAD: "to first bad state"}),
    ("density percentile", {S.P_FIRST_PCT: "first", S.P_LAST_PCT: "last", S.P_MAX_PCT: "max",
                            S.P_CHANGE_PCT: "last − first"}),
    ("at any time", {S.P_ICU: "in ICU", S.P_INTUBATED: f"intu{SHY}bated"}),
    (None, {S.SURVIVAL: f"out{SHY}come", S.CONTINENT: f"conti{SHY}nent",
            S.COUNTRY: "country", S.FINDING_GROUP: "finding group"}),
)
HEADERS = {col: head for _, cols in GROUPS for col, head in cols.items()}
TOOLTIPS = {S.P_DAYS_TO_BAD: "days from the first dated image to the first bad-state image",
            S.P_CHANGE_PCT: "last minus first percentile",
            S.P_ICU: words.MEANING[S.WENT_ICU][1], S.P_INTUBATED: words.MEANING[S.INTUBATED][1],
            S.SURVIVAL: words.MEANING[S.SURVIVAL][1]}
NUMERIC = {S.P_N_IMAGES, S.P_N_DATED, S.P_FIRST_DAY, S.P_LAST_DAY, S.P_FIRST_PCT, S.P_LAST_PCT,
           S.P_MAX_PCT, S.P_CHANGE_PCT, S.P_DAYS_TO_BAD}
WRAPPED = {S.COUNTRY, S.FINDING_GROUP}  # "United Kingdom", "other viral" take two lines
# narrowest a column may get (px at the table's font): its longest word fits
MIN_WIDTH = {S.PATIENTID: 68, S.EPISODE: 68, S.P_N_IMAGES: 24, S.P_N_DATED: 40,
             S.P_DAYS_TO_BAD: 36,
             S.P_ICU: 28, S.P_INTUBATED: 40, S.SURVIVAL: 55, S.CONTINENT: 52, S.COUNTRY: 60,
             S.FINDING_GROUP: 60}
# Patient ids are text ("10", "100", "11" ...): the table sorts them by a rank in natural
# order (numbers as numbers), sent with each row; the cell still shows, and filters, the id.
PATIENT_ORDER = "patient_order"  # a field of the table's rows only, not of the artifact
# A row's id (the grid's getRowId; a click sends it back): the patient id where every episode is
# its patient (the COVID collection), else ROW_PREFIX + the row's number in store.patients
ROW_ID, ROW_PREFIX = "row_id", "row:"


CODES = {S.SURVIVAL: words.SURVIVAL, S.P_ICU: words.YES_NO, S.P_INTUBATED: words.YES_NO}


def words_for(col: str) -> dict:
    """What a text column's cells show for its codes: words ('survived', 'yes'), and a blank
    for unknown; other values as they are."""
    return {**{k: v for k, v in CODES.get(col, {}).items() if k != S.UNKNOWN}, S.UNKNOWN: ""}


def column_def(col: str) -> dict:
    d = {"field": col, "headerName": HEADERS[col], "minWidth": MIN_WIDTH.get(col, 32),
         "headerTooltip": TOOLTIPS.get(col, HEADERS[col].replace(SHY, ""))}
    if col in NUMERIC:
        d["filter"] = "agNumberColumnFilter"
        d["type"] = "numericColumn"
        if col in (S.P_FIRST_PCT, S.P_LAST_PCT, S.P_MAX_PCT, S.P_CHANGE_PCT):
            d["valueFormatter"] = {"function": "params.value == null ? '' : "
                                               "d3.format('.0f')(params.value)"}
    elif col not in (S.PATIENTID, S.EPISODE):
        table = json.dumps(words_for(col))
        d["valueFormatter"] = {"function": f"({table})[params.value] == null ? params.value : "
                                           f"({table})[params.value]"}
    if col == S.EPISODE:
        d.update(pinned="left", filter="agTextColumnFilter", headerTooltip=(
            f"the {words.EPISODE} (its own day 0 and outcome); blank: images in no "
            f"{words.EPISODE}"))
    if col == S.PATIENTID:
        d.update(pinned="left", filter="agTextColumnFilter",
                 valueGetter={"function": f"params.data.{PATIENT_ORDER}"},
                 valueFormatter={"function": f"params.data.{S.PATIENTID}"},
                 filterValueGetter={"function": f"params.data.{S.PATIENTID}"})
    if col in WRAPPED:
        d.update(wrapText=True, autoHeight=True)
    return d


def column_defs(columns=S.PATIENT_COLUMNS) -> list:
    defs = []
    for group, cols in GROUPS:
        children = [column_def(col) for col in cols if col in columns]
        defs.extend(children if group is None else
                    [{"headerName": group, "children": children, "headerTooltip": group}])
    return defs


def natural_key(text: str) -> tuple:
    """A sort key that reads the digits in an id as a number: '9' < '10' < '100' < 'a10'."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", str(text)) if part)


def patient_order(store) -> np.ndarray:
    """Per row of store.patients: its rank by patient id in natural order, then episode (the
    table's order), once per process."""
    cached = store.__dict__.get("_patient_order")
    if cached is None:
        pids = store.patients[S.PATIENTID].tolist()
        ranked = sorted(range(len(pids)), key=lambda i: (natural_key(pids[i]), i))
        cached = np.empty(len(pids), dtype=np.int64)
        cached[ranked] = np.arange(len(pids))
        store.__dict__["_patient_order"] = cached
    return cached


def row_ids(store) -> list:
    """Per row of store.patients: its id in the grid (ROW_ID)."""
    if store.episodes_are_patients:
        return store.patients[S.PATIENTID].tolist()
    return [f"{ROW_PREFIX}{i}" for i in range(len(store.patients))]


def rows_for(store, keep: np.ndarray) -> list:
    """Episodes with at least one image passing the filters, as plain records (NaN -> None;
    percentiles to one decimal: the table shows whole numbers, and the page gets half the
    bytes), each with its rank in the natural order of patient ids (PATIENT_ORDER, then by
    episode) and its row id (ROW_ID)."""
    units = np.unique(store.episode_index[keep])
    patients = store.patients.iloc[units][store.table_columns].round(
        {c: 1 for c in (S.P_FIRST_PCT, S.P_LAST_PCT, S.P_MAX_PCT, S.P_CHANGE_PCT)})
    frame = patients.astype(object).where(patients.notna(), None)
    frame[PATIENT_ORDER] = patient_order(store)[units]
    frame[ROW_ID] = np.array(row_ids(store), dtype=object)[units]
    return frame.to_dict("records")


def table_panel(store=None):
    import dash_ag_grid as dag

    store = store or current().store
    unit = ("One row per patient; click a row to select the patient. Days are the reported "
            "offset" if store.episodes_are_patients else
            f"One row per {words.EPISODE} (its patient beside it; blank: images in no "
            f"{words.EPISODE}); click a row to select its first image. Days are since the "
            f"{words.EPISODE}'s start")
    return html.Div([
        html.Div([html.Span(f"{unit}; percentiles are of the bad-state density. A blank "
                            "cell is unknown.", className="muted small"),
                  html.Button("Download CSV", id=ids.TABLE_CSV, className="button")],
                 className="row spread"),
        # no filter row (it would not fit 16 columns): each header's filter button shows on
        # hover (assets/style.css)
        dag.AgGrid(id=ids.TABLE, columnDefs=column_defs(store.table_columns), rowData=[],
                   getRowId=f"params.data.{ROW_ID}", columnSize="responsiveSizeToFit",
                   defaultColDef={"sortable": True, "filter": True, "resizable": True,
                                  "wrapHeaderText": True, "autoHeaderHeight": True,
                                  "suppressHeaderMenuButton": True},
                   dashGridOptions={"rowSelection": {"mode": "singleRow",
                                                     "enableClickSelection": True,
                                                     "checkboxes": False},
                                    "animateRows": False, "tooltipShowDelay": 300},
                   style={"height": "420px"}, className="ag-theme-quartz patients-grid"),
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
    """The image a selected patient, or a table row (ROW_ID), opens on: its first image in
    time order (a row's: its episode's first)."""
    key = str(patient)
    if key.startswith(ROW_PREFIX) and key[len(ROW_PREFIX):].isdigit() \
            and int(key[len(ROW_PREFIX):]) < len(store.patients):
        pos = store.episode_positions[int(key[len(ROW_PREFIX):])]
    else:
        pos = store.patient_positions.get(key)
    return None if pos is None or not len(pos) else store.image_ids[pos[0]]

