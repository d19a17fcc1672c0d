"""Time, the map's second axis: day range and playback, alignment, whose trajectories to draw.

The WebGL map holds every image's day and each episode's event days (map_data.py): day ranges,
playback frames and trajectory choices are drawn in the browser (assets/cxrviz.js hands them to
the map) with no server request per frame. The time part of the URL (day_from, day_to, align,
window, traj, traj_ids) is read by `decode` and written by the table `url_spec`: by `pairs`
here (urlstate.encode, for the page's first URL and exports) and in the browser on every slider
step and Play frame (no request).
"""
from __future__ import annotations

from urllib.parse import urlencode

from dash import ClientsideFunction, Input, Output, State, clientside_callback, dcc, html

from cxrviz import ids, words
from cxrviz import schema as S
from cxrviz.compute.timeline import ALIGN_OFFSET, ALIGNMENTS
from cxrviz.filters import split_ids
from cxrviz.pages.map.controls import labelled

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


def url_spec(store) -> list:
    """The time part of the URL as data: per key, the control value it writes ('field' of the
    dict `decode` returns), the value it omits, and the control that must have a value for it
    to be written. `pairs` encodes by it here; the browser encodes the same table on every
    slider step and Play frame (assets/cxrviz.js timeQuery), with no request."""
    return [{"key": "align", "field": "align", "omit": ALIGN_OFFSET},
            {"key": "day_from", "field": "lo", "omit": None},
            {"key": "day_to", "field": "hi", "omit": None},
            {"key": "window", "field": "window", "omit": None},
            {"key": "traj", "field": "scope", "omit": default_scope(store)},
            {"key": "traj_ids", "field": "ids", "omit": "", "when": ["scope", "ids"]}]


def pairs(t: dict, store) -> list:
    """The time part of the query string as (key, value) pairs, `decode`'s inverse, by
    url_spec (trajectory ids as split_ids reads them, comma-joined)."""
    values = {**t, "ids": ",".join(split_ids(t["ids"]))}
    out = []
    for spec in url_spec(store):
        v = values[spec["field"]]
        when = spec.get("when")
        if v is None or v == "" or v == spec["omit"] or (when and values[when[0]] != when[1]):
            continue
        out.append((spec["key"], v))
    return out


def trajectory_patients(t: dict, selected, store):
    """Whose trajectories are drawn for 'the selected patient' / 'these ids' (patient ids; None:
    all): the map's /api/map/edges and the export read this one rule."""
    if t["scope"] == "all":
        return None
    if t["scope"] == "selected":
        row = store.row(selected) if selected else None
        return set() if row is None else {row[S.PATIENTID]}
    if t["scope"] == "ids":
        return set(split_ids(t["ids"]))
    return set()  # a box / lasso selection exists only in the browser


def client_data(store) -> dict:
    """What playback needs in the browser: the slider's ends and the default trajectory scope
    (the map itself loads its columns from map_data.py)."""
    return {"n": len(store.covid), "day_lo": DAY_LO, "day_hi": DAY_HI,
            "default_scope": default_scope(store), "speeds": SPEEDS, "url": url_spec(store)}


def time_controls(store, t: dict, keep) -> list:
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
        dcc.Store(id=ids.TIME_QUERY, data=urlencode(pairs(t, store))),
        dcc.Store(id=ids.PLAY_RANGE, data=None),
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


# the view's time part goes to the map (it draws and writes the count and the time note)
clientside_callback(
    ClientsideFunction(namespace="cxrviz", function_name="mapState"),
    Output(ids.MAP_SINK, "data", allow_duplicate=True),
    Input(ids.DAY_RANGE, "value"), Input(ids.ALIGN, "value"),
    Input(ids.FILTERED_MODE, "value"), Input(ids.SELECTED, "data"),
    Input(ids.TRAJ_SCOPE, "value"), Input(ids.TRAJ_IDS, "value"),
    Input(ids.HIDDEN_CATS, "data"), prevent_initial_call=True)
# ... and to the URL's time part, encoded in the browser by url_spec (no request per frame)
clientside_callback(
    ClientsideFunction(namespace="cxrviz", function_name="timeQuery"),
    Output(ids.TIME_QUERY, "data"),
    Input(ids.DAY_RANGE, "value"), Input(ids.ALIGN, "value"), Input(ids.PLAY_MODE, "value"),
    Input(ids.PLAY_WINDOW, "value"), Input(ids.TRAJ_SCOPE, "value"),
    Input(ids.TRAJ_IDS, "value"), State(ids.TIME_DATA, "data"), prevent_initial_call=True)
clientside_callback(ClientsideFunction(namespace="cxrviz", function_name="resetHidden"),
                    Output(ids.HIDDEN_CATS, "data", allow_duplicate=True),
                    Input(ids.COLOR_BY, "value"), prevent_initial_call=True)
clientside_callback(
    ClientsideFunction(namespace="cxrviz", function_name="play"),
    Output(ids.DAY_RANGE, "value"), Output(ids.PLAY_TICK, "disabled"),
    Output(ids.PLAY, "children"), Output(ids.PLAY_TICK, "interval"),
    Output(ids.PLAY_RANGE, "data"),
    Input(ids.PLAY, "n_clicks"), Input(ids.PLAY_TICK, "n_intervals"),
    Input(ids.PLAY_SPEED, "value"),
    State(ids.DAY_RANGE, "value"), State(ids.PLAY_MODE, "value"),
    State(ids.PLAY_WINDOW, "value"), State(ids.PLAY_TICK, "disabled"),
    State(ids.TIME_DATA, "data"), State(ids.PLAY_RANGE, "data"), prevent_initial_call=True)
