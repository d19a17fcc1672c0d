"""The map page (Dash Pages, path "/"): `layout(**query)` renders the view a URL describes.

Where things are: controls.py (sidebar: view controls, filters from cxrviz.filters), callbacks.py
(the map figure and the selection summary), detail.py (clicked image, timeline, saliency),
uploads.py (placing new X-rays), export.py (figures and CSV), urlstate.py (the query string).
Importing this package registers every callback of the page.
"""
from __future__ import annotations

from dash import dcc, html

from cxrviz import figures, ids
from cxrviz import schema as S
from cxrviz.appstate import current
from cxrviz.pages.map import callbacks, controls, detail, export, uploads, urlstate

PATH = "/"
TITLE = "cxrviz: map"
__all__ = ["PATH", "TITLE", "layout", "callbacks", "controls", "detail", "export", "uploads",
           "urlstate"]


def layout(**query):
    app = current()
    store = app.store
    st = urlstate.decode(query, store)
    keep = store.mask(st["filters"])
    view = st["view"]
    fig = figures.map_figure(store, color_by=view["color"], keep=keep, filtered_mode=view["mode"],
                             show=view["show"], density_style=view["density_style"],
                             density_opacity=view["opacity"], selected=st["selected"])
    notice = (html.Div("This link asked for values this map does not have, ignored: "
                       + ", ".join(st["ignored"]), id=ids.NOTICE, className="notice")
              if st["ignored"] else html.Div(id=ids.NOTICE, hidden=True))
    return html.Div([
        dcc.Store(id=ids.SELECTED, data=st["selected"]),
        dcc.Store(id=ids.QUERY), dcc.Store(id=ids.QUERY_SINK),
        html.Header([html.H1("cxrviz"),
                     html.Span("COVID-19 chest X-rays on a model's map: research use only, not "
                               "a diagnostic tool", className="muted"),
                     html.Span(store.count_text(keep), id=ids.COUNT, className="count")]),
        banner(store), notice,
        html.Div([
            html.Aside([html.H4("View"), *controls.view_controls(store, view),
                        html.H4("Filters"), *controls.filter_controls(store, st["filters"]),
                        about(store)], className="sidebar"),
            html.Main([
                dcc.Graph(id=ids.MAP, figure=fig, className="map",
                          config={"displaylogo": False, "scrollZoom": True,
                                  "toImageButtonOptions": {"format": "png", "scale": 3}}),
                html.Div([html.Div(id=ids.SELECTION_SUMMARY, className="panel"),
                          uploads.upload_panel(store, app.service), export.export_panel()],
                         className="below-map"),
            ], className="center"),
            html.Aside([html.Div(detail.detail_children(store, st["selected"]), id=ids.DETAIL),
                        detail.saliency_panel(store)], className="detail"),
        ], className="grid"),
    ], className="page")


def banner(store):
    if not store.warning:
        return html.Div(id=ids.BANNER, hidden=True)
    return html.Div(f"⚠ {store.warning}. Built with weights '{store.artifact.weights.label}': "
                    "positions and outputs carry no clinical meaning.", id=ids.BANNER,
                    className="banner")


def about(store):
    """Where every metadata row went: on the map, left out by design, or skipped."""
    m = store.artifact.manifest
    counts = m[S.M_COUNTS]
    excluded = [html.Li(f"{g[S.E_COUNT]} {g[S.E_REASON]}: {g[S.E_RAW_VALUE] or 'blank'}")
                for g in m[S.M_EXCLUDED]]
    skipped = [s for s in m[S.M_SKIPPED] if s["source"] == S.SOURCE_COVID]
    w = store.artifact.weights
    return html.Details([
        html.Summary("About this map"),
        html.P(f"{counts[S.C_METADATA_ROWS]} rows in metadata.csv: {counts[S.C_EMBEDDED_COVID]} "
               f"on the map, {counts[S.C_EXCLUDED]} left out by design, "
               f"{counts[S.C_SKIPPED_COVID]} skipped (image missing or unreadable)."),
        html.H5("Left out by design"), html.Ul(excluded),
        html.H5("Skipped"),
        html.Ul([html.Li(f"{s['filename']}: {s['reason']}") for s in skipped] or
                [html.Li("none")]),
        html.P(f"Weights: {w.label} (sha256 {w.short_sha}…, {w.precision}, batch size "
               f"{w.batch_size}, {'pretrained' if w.pretrained else 'NOT pretrained'}). UMAP "
               f"n_neighbors {m[S.M_UMAP].get('n_neighbors')}, min_dist "
               f"{m[S.M_UMAP].get('min_dist')}; KDE bandwidth {m[S.M_KDE].get('bandwidth')}.",
               className="muted small"),
    ], id=ids.ABOUT, className="about")
