"""Time, the map's second axis: day range and playback, alignment, whose trajectories to draw.

The server sends, once, what the browser needs to draw any day range (TIME_DATA) and, on each
filter change, which images pass the filters (MASK). Day ranges, playback frames, trajectory
choices and hover highlights are then drawn in the browser (assets/cxrviz.js): no server request
per frame. The time part of the URL (day_from, day_to, align, window, traj, traj_ids) is written
there too and read here by `decode`.
"""
from __future__ import annotations

import base64
from urllib.parse import urlencode

import numpy as np
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, dcc, html

from cxrviz import ids, words
from cxrviz import schema as S
from cxrviz.appstate import current
from cxrviz.compute.timeline import ALIGN_OFFSET, ALIGNMENTS
from cxrviz.filters import split_ids
from cxrviz.pages.map.controls import filter_inputs, labelled

DAY_LO, DAY_HI = -31, 31  # the slider's ends mean "and earlier" / "and later"
# a week apart where most images are (0-30), two weeks before: at a 1024 px window's sidebar a
# week is ~22 px, too close for two labels of two characters and a sign
DAY_MARKS = {DAY_LO: "≤−30", -14: "−14", 0: "0", 7: "7", 14: "14", 21: "21", DAY_HI: "30+"}
ALIGN_LABELS = {ALIGN_OFFSET: "reported day", "first": "first image",
                "first_bad": "first bad state", "last": "last image"}
SCOPES = {"all": "all patients shown", "selected": "the selected patient",
          "selection": "patients in the box / lasso selection", "ids": "these patient ids:"}
SPEEDS = {"slow": 1200, "normal": 600, "fast": 250}  # ms per day
MANY_EDGES = 2000  # above this, trajectories are drawn for the selected patient by default
ALIGN_EVENTS = {ALIGN_OFFSET: "a reported day", "first": "a dated image",
                "first_bad": "a dated bad-state image", "last": "a dated image"}


def default_scope(store) -> str:
    return "all" if len(store.trajectories) <= MANY_EDGES else "selected"


def _int(value):
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def decode(query: dict, store) -> dict:
    """The time part of a query dict -> control values; invalid values are ignored (listed)."""
    def first(key):
        v = query.get(key)
        return (v[0] if isinstance(v, (list, tuple)) and v else v)

    ignored = []
    align = first("align") or ALIGN_OFFSET
    if align not in ALIGNMENTS:
        ignored.append(f"align={align}")
        align = ALIGN_OFFSET
    lo, hi = _int(first("day_from")), _int(first("day_to"))
    for key, v in (("day_from", lo), ("day_to", hi)):
        if first(key) is not None and v is None:
            ignored.append(f"{key}={first(key)}")
    lo = None if lo is None or lo <= DAY_LO else min(lo, DAY_HI - 1)
    hi = None if hi is None or hi >= DAY_HI else max(hi, DAY_LO + 1)
    if lo is not None and hi is not None and lo > hi:
        ignored.append(f"day_from={lo}&day_to={hi}")
        lo = hi = None
    window = _int(first("window"))
    scope = first("traj") or default_scope(store)
    if scope not in SCOPES:
        ignored.append(f"traj={scope}")
        scope = default_scope(store)
    return {"align": align, "lo": lo, "hi": hi,
            "window": window if window and window > 0 else None, "scope": scope,
            "ids": str(first("traj_ids") or ""), "ignored": ignored}


def encode(t: dict, store) -> str:
    """The time part of the query string, as assets/cxrviz.js (timeQuery) writes it."""
    pairs = []
    if t["align"] != ALIGN_OFFSET:
        pairs.append(("align", t["align"]))
    if t["lo"] is not None:
        pairs.append(("day_from", t["lo"]))
    if t["hi"] is not None:
        pairs.append(("day_to", t["hi"]))
    if t["window"]:
        pairs.append(("window", t["window"]))
    if t["scope"] != default_scope(store):
        pairs.append(("traj", t["scope"]))
    if t["scope"] == "ids" and split_ids(t["ids"]):
        pairs.append(("traj_ids", ",".join(split_ids(t["ids"]))))
    return urlencode(pairs)


def trajectory_patients(t: dict, selected, store):
    """Whose trajectories the server-drawn figure shows (the browser redraws on change)."""
    if t["scope"] == "all":
        return None
    if t["scope"] == "selected":
        row = store.row(selected) if selected else None
        return set() if row is None else {row[S.PATIENTID]}
    if t["scope"] == "ids":
        return set(split_ids(t["ids"]))
    return set()  # a box / lasso selection exists only in the browser


def b64(values, dtype) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode()


def mask_payload(store, filters: dict) -> dict:
    """Which images pass the filters (a byte each), which of them are in only because their
    value is unknown to a range filter that keeps unknowns, and what emptied an empty result."""
    keep = store.mask(filters)
    unknown, names = store.unknown_kept(filters)
    return {"keep": b64(keep, np.uint8), "unknown": b64(unknown & keep, np.uint8) if names
            else None, "unknown_label": names,
            "emptied_by": None if keep.any() else store.emptied_by(filters)}


def client_data(store) -> dict:
    """Everything the browser needs to draw a day range, as base64 typed arrays (little endian).
    Built once per process."""
    cached = store.__dict__.get("_client_data")
    if cached is not None:
        return cached
    from cxrviz.figures import ARROW_AT, ARROW_TRACES, PATH_TRACES, TRACE
    from cxrviz.figures.layers import ARROW_STEP

    covid, t = store.covid, store.trajectories
    codes = {S.YES: 0, S.NO: 1, S.UNKNOWN: 2, S.STATE_GOOD: 0, S.STATE_BAD: 1}
    data = {
        "n": len(covid),
        "x": b64(covid[S.X], "<f4"), "y": b64(covid[S.Y], "<f4"),
        "offset": b64(covid[S.OFFSET], "<f4"),
        # per image its episode's number (the unit of day 0 and of a trajectory; in the COVID
        # collection the patient), the images of each episode in time order, and per episode
        # its patient id (a patient with two admissions is named twice) and episode id
        "patient": b64(store.episode_index, "<i4"),
        "order": b64(np.concatenate(store.episode_positions)
                     if len(covid) else [], "<i4"),
        "patients": store.patients[S.PATIENTID].tolist(),
        "episodes": store.episode_ids.tolist(),
        "unit_word": words.unit_word(store.episodes_are_patients),
        "events": {a: b64(store.events(a), "<f4") for a in ALIGNMENTS},
        "edges": {"from": b64(t["from_pos"], "<i4"), "to": b64(t["to_pos"], "<i4"),
                  "patient": b64(store.edge_episodes, "<i4"),
        "survival": b64(t[S.SURVIVAL].map(codes), "u1"),
                  "to_state": b64(t[S.TO_STATE].map(codes), "u1")},
        "trace": {"points": TRACE["points"], "hover": TRACE["hover"],
                  "paths": [TRACE[n] for n in PATH_TRACES],
                  "arrows": [TRACE[n] for n in ARROW_TRACES]},
        "arrow_at": ARROW_AT, "arrow_step": ARROW_STEP, "day_lo": DAY_LO, "day_hi": DAY_HI,
        "align_events": ALIGN_EVENTS, "many_edges": MANY_EDGES, "n_edges": len(t),
        "default_scope": default_scope(store),
    }
    store.__dict__["_client_data"] = data
    return data


def time_controls(store, t: dict, keep: np.ndarray) -> list:
    lo = DAY_LO if t["lo"] is None else t["lo"]
    hi = DAY_HI if t["hi"] is None else t["hi"]
    return [
        labelled("Day 0 is", dcc.RadioItems(
            id=ids.ALIGN, value=t["align"], className="radio",
            options=[{"label": f" {v}", "value": k} for k, v in ALIGN_LABELS.items()])),
        labelled("Days", dcc.RangeSlider(id=ids.DAY_RANGE, min=DAY_LO, max=DAY_HI, step=1,
                                         value=[lo, hi], marks=DAY_MARKS, allowCross=False,
                                         tooltip={"placement": "bottom"})),
        html.Div([
            html.Button("▶ Play", id=ids.PLAY, className="button", n_clicks=0),
            dcc.RadioItems(id=ids.PLAY_MODE, inline=True,
                           value="window" if t["window"] else "grow",
                           options=[{"label": " grow paths", "value": "grow"},
                                    {"label": " window of", "value": "window"}]),
            dcc.Input(id=ids.PLAY_WINDOW, type="number", min=1, max=60, step=1,
                      value=t["window"] or 7, className="small-input"),
            html.Span(" days", className="muted"),
        ], className="row play"),
        labelled("Speed", dcc.RadioItems(id=ids.PLAY_SPEED, inline=True, value="normal",
                                         options=list(SPEEDS))),
        dcc.Interval(id=ids.PLAY_TICK, interval=SPEEDS["normal"], disabled=True),
        labelled("Draw trajectories of", html.Div([
            dcc.RadioItems(id=ids.TRAJ_SCOPE, value=t["scope"], className="radio",
                           options=[{"label": f" {v}", "value": k} for k, v in SCOPES.items()]),
            dcc.Input(id=ids.TRAJ_IDS, type="text", value=t["ids"], debounce=True,
                      placeholder="e.g. 178, 332, 205"),
        ])),
        html.Div(time_note(store, keep, t), id=ids.TIME_NOTE, className="muted small"),
        dcc.Store(id=ids.TIME_DATA, data=client_data(store)),
        dcc.Store(id=ids.TIME_QUERY, data=encode(t, store)),
        dcc.Store(id=ids.HOVER_SINK, data=""),
        dcc.Store(id=ids.HIDDEN_CATS, data=[]),
    ]


def time_note(store, keep, t) -> str:
    """Same words as assets/cxrviz.js (timeNote)."""
    parts = []
    if t["scope"] == "selected" and len(store.trajectories) > MANY_EDGES:
        parts.append(f"{len(store.trajectories):,} trajectory steps: drawn for the selected "
                     "patient only (choose 'all patients shown' to draw every one).")
    missing = store.left_out(keep, t["align"])
    if missing:
        word = words.unit_word(store.episodes_are_patients)
        parts.append(f"{words.plural(missing, word)} without "
                     f"{ALIGN_EVENTS[t['align']]} left out.")
    return " ".join(parts)


@callback(Output(ids.MASK, "data"), inputs={"filters": filter_inputs()},
          prevent_initial_call=True)
def update_mask(filters):
    """The one server step of a filter change: which images pass (the browser draws them)."""
    return mask_payload(current().store, filters)


_VIEW = ClientsideFunction(namespace="cxrviz", function_name="drawView")
clientside_callback(
    _VIEW,
    Output(ids.MAP, "figure", allow_duplicate=True), Output(ids.COUNT, "children"),
    Output(ids.TIME_NOTE, "children"), Output(ids.TIME_QUERY, "data"),
    Input(ids.MASK, "data"), Input(ids.DAY_RANGE, "value"), Input(ids.ALIGN, "value"),
    Input(ids.FILTERED_MODE, "value"), Input(ids.SELECTED, "data"),
    Input(ids.TRAJ_SCOPE, "value"), Input(ids.TRAJ_IDS, "value"),
    Input(ids.MAP, "selectedData"), Input(ids.PLAY_MODE, "value"),
    Input(ids.PLAY_WINDOW, "value"), Input(ids.HIDDEN_CATS, "data"),
    State(ids.TIME_DATA, "data"), State(ids.MAP, "figure"),
    prevent_initial_call=True)
clientside_callback(ClientsideFunction(namespace="cxrviz", function_name="resetHidden"),
                    Output(ids.HIDDEN_CATS, "data", allow_duplicate=True),
                    Input(ids.COLOR_BY, "value"), prevent_initial_call=True)
clientside_callback(
    ClientsideFunction(namespace="cxrviz", function_name="play"),
    Output(ids.DAY_RANGE, "value"), Output(ids.PLAY_TICK, "disabled"),
    Output(ids.PLAY, "children"), Output(ids.PLAY_TICK, "interval"),
    Input(ids.PLAY, "n_clicks"), Input(ids.PLAY_TICK, "n_intervals"),
    Input(ids.PLAY_SPEED, "value"),
    State(ids.DAY_RANGE, "value"), State(ids.PLAY_MODE, "value"),
    State(ids.PLAY_WINDOW, "value"), State(ids.PLAY_TICK, "disabled"),
    State(ids.TIME_DATA, "data"), prevent_initial_call=True)
clientside_callback(
    ClientsideFunction(namespace="cxrviz", function_name="hoverPath"),
    Output(ids.HOVER_SINK, "data"),
    Input(ids.MAP, "hoverData"), State(ids.TIME_DATA, "data"), prevent_initial_call=True)
