"""The detail panel: what a clicked image is (image, metadata, 18 outputs, the patient's timeline),
how an image gets selected, and saliency for the selected image."""
from __future__ import annotations

import base64

from dash import Input, Output, State, callback, dcc, html

from cxrviz import figures, ids, words
from cxrviz import schema as S
from cxrviz.appstate import current
from cxrviz.fields import detail_fields, fmt
from cxrviz.pages.common import graph_config
from cxrviz.figures.time import patient_series_figure
from cxrviz.pages.map.controls import labelled

SALIENCY_NOTE = ("Saliency is the magnitude of the gradient of the chosen output's logit with "
                 "respect to the model's 224 px input, smoothed: where small changes would move "
                 "that output most. It is not a segmentation, not a localisation of disease and "
                 "not evidence that the model is right. For collection images it is computed on "
                 "the artifact's display image.")


def output_options(store) -> list:
    return [{"label": p, "value": i} for i, p in enumerate(store.pathologies)]


def default_output(store) -> int:
    return (store.pathologies.index("Lung Opacity") if "Lung Opacity" in store.pathologies
            else 0)


def detail_children(store, image_id):
    if not image_id or store.row(image_id) is None:
        return [html.H4("Image"), html.P("Click a point on the map to see its image, metadata, "
                                         "model outputs and the patient's timeline.",
                                         className="muted")]
    row = store.row(image_id)
    groups = detail_fields(store, row)
    links = []
    if row[S.DOI]:
        links.append(html.A(f"doi:{row[S.DOI]}", href=f"https://doi.org/{row[S.DOI]}",
                            target="_blank", rel="noopener"))
    if row[S.URL]:
        links.append(html.A("source", href=row[S.URL], target="_blank", rel="noopener"))
    src = f"/display/{image_id}.jpg"
    return [
        html.H4(f"Image {row[S.FILENAME]}", className="detail-title"),
        dcc.Graph(id=ids.DETAIL_IMAGE,
                  figure=figures.image_figure(src, *store.display_size(image_id)),
                  className="detail-image",
                  config=graph_config(scrollZoom=True,
                                     modeBarButtonsToRemove=["select2d", "lasso2d"])),
        html.Div(["Scroll or drag to zoom, double-click to reset; ",
                  html.A("open the image", href=src, target="_blank")], className="muted small"),
        *(part for title, facts in groups for part in facts_table(title, facts)),
        html.Div(links, className="links"),
        *([html.Details([html.Summary("Clinical notes"),
                         html.P(row[S.CLINICAL_NOTES] or "none")])]
          if store.has_known(S.CLINICAL_NOTES) else []),
        dcc.Graph(id=ids.DETAIL_OUTPUTS, config=graph_config(displayModeBar=False),
                  figure=figures.outputs_figure(store.pathologies, store.logits(image_id),
                                                "Model outputs (18)")),
        timeline(store, row),
    ]


def facts_table(title, facts) -> list:
    """One group of cxrviz.fields.detail_fields: a heading (none for the first) and a table,
    each row's tooltip saying what the value means."""
    return [*([html.H5(title, className="facts-title")] if title else []),
            html.Table([html.Tr([html.Th(k, title=why), html.Td(fmt(v), title=why)])
                        for k, v, why in facts], className="facts")]


def timeline(store, row):
    if row[S.ROLE] != S.ROLE_COHORT:
        return html.Div(id=ids.TIMELINE)
    rows = store.patient_images(row[S.PATIENTID])
    ids_in_order = list(rows[S.IMAGE_ID])
    here = ids_in_order.index(row[S.IMAGE_ID])
    thumbs = [html.Button([
        html.Img(src=f"/display/{r[S.IMAGE_ID]}.jpg", alt=f"day {fmt(r[S.OFFSET])}"),
        html.Span(f"day {fmt(r[S.OFFSET])}", className="day"),
        html.Span(r[S.STATE], className=f"badge badge-{r[S.STATE]}")],
        id={"type": ids.TIMELINE_THUMB, "index": r[S.IMAGE_ID]},
        className="thumb" + (" current" if r[S.IMAGE_ID] == row[S.IMAGE_ID] else ""),
        title=words.state(r[S.STATE], r[S.STATE_REASON])) for _, r in rows.iterrows()]
    steps = html.Div([
        html.Button("◀ previous", id={"type": ids.STEP, "index": -1}, className="button",
                    disabled=here == 0, title="the patient's previous image"),
        html.Span(f"image {here + 1} of {len(rows)}", className="muted"),
        html.Button("next ▶", id={"type": ids.STEP, "index": 1}, className="button",
                    disabled=here == len(rows) - 1, title="the patient's next image"),
    ], className="row steps")
    return html.Div([html.H4(f"Patient {row[S.PATIENTID]}: {words.plural(len(rows), 'image')}"),
                     steps, html.Div(thumbs, className="thumbs")], id=ids.TIMELINE)


def series_panel(store, selected, align):
    default = ["Lung Opacity"] if "Lung Opacity" in store.pathologies else []
    row = store.row(selected) if selected else None
    fig = (patient_series_figure(store, row[S.PATIENTID], align, default, selected)
           if row is not None and row[S.ROLE] == S.ROLE_COHORT else {})
    return html.Div([
        html.H4("One patient over time"),
        labelled("Model outputs to show (probabilities)", dcc.Dropdown(
            id=ids.SERIES_OUTPUTS, options=store.pathologies, value=default, multi=True)),
        html.Div(series_graph(fig) if fig else [], id=ids.SERIES),
        html.P("Shaded: days in ICU / intubated (from the first to the last image that says so). "
               "Click a point to open that image.", className="muted small"),
    ], className="panel")


def series_graph(fig) -> list:
    """The patient's series chart, mounted only once there is a patient to draw: a page with
    no dcc.Graph on it needs no plotly.js before the map's first paint (app.py loads it after).
    A pattern-matching id: select_image listens to ALL of them, none while nothing is selected."""
    return [dcc.Graph(id={"type": ids.SERIES_GRAPH, "index": 0}, figure=fig,
                      config=graph_config(displayModeBar=False), className="series")]


def saliency_panel(store):
    return html.Div([
        html.H4("What drives an output (saliency)"),
        labelled("Output", dcc.Dropdown(id=ids.SALIENCY_OUTPUT, options=output_options(store),
                                        value=default_output(store), clearable=False)),
        html.Button("Show saliency for the selected image", id=ids.SALIENCY_BUTTON,
                    className="button"),
        dcc.Loading(html.Div(id=ids.SALIENCY_VIEW)),
        html.P(SALIENCY_NOTE, className="muted small"),
    ], className="panel")


def saliency_image(png: bytes, caption: str):
    return html.Figure([html.Img(src="data:image/png;base64," + base64.b64encode(png).decode(),
                                 className="saliency"),
                        html.Figcaption(caption, className="muted small")])


@callback(Output(ids.DETAIL, "children"), inputs={"image_id": Input(ids.SELECTED, "data")},
          prevent_initial_call=True)
def show_detail(image_id):
    return detail_children(current().store, image_id)


@callback(Output(ids.SERIES, "children"),
          inputs={"image_id": Input(ids.SELECTED, "data"), "align": Input(ids.ALIGN, "value"),
                  "outputs": Input(ids.SERIES_OUTPUTS, "value")},
          prevent_initial_call=True)
def show_series(image_id, align, outputs):
    store = current().store
    row = store.row(image_id) if image_id else None
    if row is None or row[S.ROLE] != S.ROLE_COHORT:
        return []
    outputs = [o for o in (outputs or []) if o in store.pathologies]
    return series_graph(patient_series_figure(store, row[S.PATIENTID], align or "offset",
                                              outputs, image_id))


@callback(Output(ids.SALIENCY_VIEW, "children"),
          inputs={"clicks": Input(ids.SALIENCY_BUTTON, "n_clicks"),
                  "image_id": State(ids.SELECTED, "data"),
                  "output": State(ids.SALIENCY_OUTPUT, "value")},
          prevent_initial_call=True)
def saliency_for_selected(clicks, image_id, output):
    app = current()
    path = app.store.display_file(image_id) if image_id else None
    if path is None:
        return "Select an image on the map first."
    if app.service.state != "ready":
        return app.service.message
    png = app.service.saliency_png(path.read_bytes(), int(output))
    return saliency_image(png, f"{app.store.pathologies[int(output)]}: image {image_id}")
