"""Which image is selected, and how a user gets there: a click on the map, a chart or a table
row, a thumbnail, a neighbour, previous / next along the patient's timeline, the search box
(an image or patient id), or "Clear selection" (the button, or Esc)."""
from __future__ import annotations

from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from cxrviz import ids
from cxrviz import schema as S
from cxrviz.appstate import current
from cxrviz.pages.map.table import first_image_of


def selection_bar():
    """In the header: go to an image or patient by id; clear the selection."""
    return html.Div([
        html.Label("Go to an image or patient id", htmlFor=ids.GOTO, className="visually-hidden"),
        dcc.Input(id=ids.GOTO, type="search", debounce=True, className="goto",
                  placeholder="go to image or patient id"),
        html.Span(id=ids.GOTO_MESSAGE, className="muted small", role="status"),
        html.Button("Clear selection", id=ids.CLEAR, className="button",
                    title="also: Esc"),
    ], className="selection-bar")


def _clicked_id(click):
    points = (click or {}).get("points") or []
    image_id = points[0].get("customdata") if points else None
    return image_id[0] if isinstance(image_id, list) and image_id else image_id


def _step(store, selected, step: int):
    """The previous / next image of the selected image's patient, in time order."""
    pos = store.position.get(selected)
    if pos is None:
        return None
    order = list(store.patient_positions[store.covid[S.PATIENTID].iat[pos]])
    i = order.index(pos) + step
    return store.image_ids[order[i]] if 0 <= i < len(order) else None


def _goto(store, text: str):
    """An image id, or a patient id (its first image) -> (image id or None, message)."""
    text = (text or "").strip()
    if not text:
        return None, ""
    if store.row(text) is not None:
        return text, ""
    image = first_image_of(store, text)
    if image is not None:
        return image, f"patient {text}: first image"
    return None, f"no image or patient '{text}'"


@callback(Output(ids.SELECTED, "data"), Output(ids.GOTO_MESSAGE, "children"),
          inputs={"click": Input(ids.MAP_CLICK, "data"),
                  "thumbs": Input({"type": ids.TIMELINE_THUMB, "index": ALL}, "n_clicks"),
                  "neighbours": Input({"type": ids.NEIGHBOUR, "index": ALL}, "n_clicks"),
                  "series": Input({"type": ids.SERIES_GRAPH, "index": ALL}, "clickData"),
                  "cohort": Input(ids.COHORT_GRAPH, "clickData"),
                  "row": Input(ids.TABLE, "cellClicked"),
                  "steps": Input({"type": ids.STEP, "index": ALL}, "n_clicks"),
                  "goto": Input(ids.GOTO, "value"),
                  "clear": Input(ids.CLEAR, "n_clicks"),
                  "selected": State(ids.SELECTED, "data")},
          prevent_initial_call=True)
def select_image(click, thumbs, neighbours, series=None, cohort=None, row=None, steps=None,
                 goto=None, clear=None, selected=None):
    """By the id in customdata (never by coordinates), a button, a patient (a table row or the
    search box: the patient's first image), a step along the timeline, or nothing (clear)."""
    store = current().store
    trigger = ctx.triggered_id
    message = no_update
    if trigger == ids.CLEAR:
        return "", ""
    if isinstance(trigger, dict) and trigger.get("type") in (ids.TIMELINE_THUMB, ids.NEIGHBOUR,
                                                             ids.STEP):
        if not any(t["value"] for t in ctx.triggered):
            raise PreventUpdate  # buttons re-rendered, not clicked
        image_id = (_step(store, selected, int(trigger["index"]))
                    if trigger["type"] == ids.STEP else trigger["index"])
    elif trigger == ids.TABLE:
        image_id = first_image_of(store, (row or {}).get("rowId"))
    elif trigger == ids.GOTO:
        image_id, message = _goto(store, goto)
        if image_id is None:
            return no_update, message
    elif isinstance(trigger, dict) and trigger.get("type") == ids.SERIES_GRAPH:
        image_id = _clicked_id(next((c for c in series or [] if c), None))
    elif trigger == ids.MAP_CLICK:
        image_id = (click or {}).get("image_id") if isinstance(click, dict) else None
    else:
        image_id = _clicked_id(cohort if trigger == ids.COHORT_GRAPH else None)
    if not isinstance(image_id, str) or store.row(image_id) is None:
        raise PreventUpdate
    return image_id, message


@callback(Output(ids.MAP_SELECTION, "data", allow_duplicate=True),
          Output(ids.SALIENCY_VIEW, "children", allow_duplicate=True),
          inputs={"clear": Input(ids.CLEAR, "n_clicks")}, prevent_initial_call=True)
def clear_box_selection(clear):
    """Clear also drops a box / lasso selection (the map's marks go with it: mapSelection) and
    the saliency of the image it showed."""
    return None, None


@callback(Output(ids.SALIENCY_VIEW, "children", allow_duplicate=True),
          inputs={"image_id": Input(ids.SELECTED, "data")}, prevent_initial_call=True)
def forget_saliency(image_id):
    """A saliency map belongs to one image: it goes when another is selected."""
    return None
