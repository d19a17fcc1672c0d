"""The map page (Dash Pages, path "/"): `layout(**query)` renders the view a URL describes.

Where things are: controls.py (sidebar: view controls, filters from cxrviz.filters), time.py
(day range, playback, alignment, trajectory choice; handed to the map by assets/cxrviz.js),
callbacks.py (the map's element, what it answers, the selection summary), selection.py (what is selected, and how: clicks,
search, previous / next, clear), detail.py (clicked image, timeline, the patient's course,
saliency), cohort.py and table.py (tabs below the map), uploads.py (placing new X-rays),
export.py (figures and CSV), urlstate.py (the query string).
Importing this package registers every callback of the page.
"""
from __future__ import annotations

from dash import dcc, html

from cxrviz import ids, words
from cxrviz import schema as S
from cxrviz.appstate import current
from cxrviz.data.mimic import DATA_USE_NOTE  # the reader's own words, also in its notes
from cxrviz.pages.common import banner, nav
from cxrviz.pages.map import (callbacks, cohort, controls, detail, export, legend, selection,
                              shell, table, time, uploads, urlstate)

PATH = "/"
TITLE = "cxrviz: map"
__all__ = ["PATH", "TITLE", "layout", "callbacks", "cohort", "controls", "detail", "export",
           "legend", "selection", "shell", "table", "time", "uploads", "urlstate"]


def layout(**query):
    app = current()
    store = app.store
    st = urlstate.decode(query, store)
    t = time.decode(query, store)
    keep = store.mask(st["filters"])
    view = st["view"]
    in_days = store.day_mask(t["align"], t["lo"], t["hi"])
    ignored = st["ignored"] + t["ignored"]
    notice = (html.Div(shell.ignored_text(ignored), id=ids.NOTICE, className="notice")
              if ignored else html.Div(id=ids.NOTICE, hidden=True))
    shown = keep if in_days is None else keep & in_days
    tabs = dcc.Tabs(id=ids.TABS, value="selection", className="tabs", children=[
        dcc.Tab(label="Selection", value="selection",
                children=html.Div(id=ids.SELECTION_SUMMARY, className="panel")),
        dcc.Tab(label="Cohort over time", value="cohort", children=cohort.cohort_panel()),
        dcc.Tab(label="Patients", value="patients", children=table.table_panel()),
        dcc.Tab(label="Place an X-ray", value="upload",
                children=uploads.upload_panel(store, app.service)),
        dcc.Tab(label="Export", value="export", children=export.export_panel()),
    ])
    return html.Div([
        # "" rather than None: a Store mounted with None sets its data once, which would fire
        # every callback that listens to the selection on each page load.
        dcc.Store(id=ids.SELECTED, data=st["selected"] or ""),
        dcc.Store(id=ids.QUERY, data=urlstate.encode(st["filters"], view, st["selected"], store)),
        dcc.Store(id=ids.QUERY_SINK, data=""),
        html.Header([html.H1("cxrviz", title="chest X-rays on a model's map: research use "
                                              "only, not a diagnostic tool"),
                     html.Span(store.count_text(shown, (t["lo"], t["hi"]), st["filters"]),
                               id=ids.COUNT, className="count", role="status"),
                     html.Div(controls.chips(store, st["filters"]), id=ids.CHIPS,
                              className="chips"),
                     selection.selection_bar(), nav(PATH)]),
        banner(store), notice,
        html.Div([
            html.Aside([html.P("Chest X-rays on a model's map. Research use only, not a "
                               "diagnostic tool.", className="muted small"),
                        html.H4("View"), *controls.view_controls(store, view),
                        html.H4("Time"), *time.time_controls(store, t, keep),
                        html.H4("Filters"), *controls.filter_controls(store, st["filters"]),
                        about(store)], className="sidebar"),
            # map and detail: two columns from 1280 px (the wrapper takes no box); below, the
            # detail panel sits under the map and both scroll together in the wrapper
            html.Div([
                html.Main([
                    *callbacks.map_element(store, st, t),
                    html.Div(legend.legend(store, view), id=ids.LEGEND, className="legend"),
                    tabs,
                ], className="center"),
                html.Aside([html.Div(detail.detail_children(store, st["selected"]),
                                     id=ids.DETAIL, className="detail-body"),
                            detail.series_panel(store, st["selected"], t["align"]),
                            detail.saliency_panel(store)], className="detail"),
            ], className="map-and-detail"),
        ], className="grid"),
    ], className="page")


# Sources whose artifact holds credentialed data, by kind: the About box says so first.
CREDENTIALED = {S.SOURCE_MIMIC}


def about(store):
    """Where every input row went, per source (on the map, left out by design, or skipped), from
    the manifest; the data-use note of credentialed sources (MIMIC) first; the build's notes."""
    m = store.artifact.manifest
    sources = m.get(S.M_SOURCES) or [_counts_as_source(m)]
    several = len(sources) > 1
    credentialed = any(src.get(S.SRC_KIND) in CREDENTIALED for src in sources)

    def whose(entry) -> str:
        return f" ({entry.get(S.SOURCE, '')})" if several else ""

    excluded = [html.Li(f"{g[S.E_COUNT]} {g[S.E_REASON]}: {g[S.E_RAW_VALUE] or 'blank'}"
                        f"{whose(g)}") for g in m[S.M_EXCLUDED]]
    skipped = [html.Li(f"{s['filename']}: {s['reason']}{whose(s)}") for s in m[S.M_SKIPPED]]
    notes = [n for n in m.get(S.M_NOTES) or [] if n != DATA_USE_NOTE]
    w = store.artifact.weights
    return html.Details([
        html.Summary("About this map" + (" (credentialed data)" if credentialed else "")),
        *([html.P(DATA_USE_NOTE, className="notice data-use", id=ids.DATA_USE)]
          if credentialed else []),
        html.Ul([html.Li(_source_line(src)) for src in sources], className="sources"),
        html.H5("Left out by design"), html.Ul(excluded or [html.Li("none")]),
        html.H5("Skipped"), html.Ul(skipped or [html.Li("none")]),
        *([html.H5("Notes"), html.Ul([html.Li(n) for n in notes])] if notes else []),
        html.P(f"Weights: {w.label} (sha256 {w.short_sha}…, {w.precision}, batch size "
               f"{w.batch_size}, {'pretrained' if w.pretrained else 'NOT pretrained'}). UMAP "
               f"n_neighbors {m[S.M_UMAP].get('n_neighbors')}, min_dist "
               f"{m[S.M_UMAP].get('min_dist')}; KDE bandwidth {m[S.M_KDE].get('bandwidth')}.",
               className="muted small"),
    ], id=ids.ABOUT, className="about")


def _source_line(src: dict) -> str:
    """'751 rows in metadata.csv: 559 on the map, 181 left out by design, 11 skipped (image
    missing or unreadable).' for one source of the manifest."""
    kind = src.get(S.SRC_KIND, "")
    rows = words.SOURCE_ROWS.get(kind, "input rows")
    role = words.ROLE_WORDS.get(src.get(S.SRC_ROLE), src.get(S.SRC_ROLE, ""))
    return (f"{kind or src.get(S.SRC_NAME, 'source')} ({role}): {src[S.SRC_ROWS]} {rows}: "
            f"{src[S.SRC_EMBEDDED]} on the map, {src[S.SRC_EXCLUDED]} left out by design, "
            f"{src[S.SRC_SKIPPED]} skipped (image missing or unreadable).")


def _counts_as_source(m: dict) -> dict:
    """A manifest without `sources`: its cohort counts as one source."""
    c = m[S.M_COUNTS]
    return {S.SRC_KIND: S.SOURCE_COVID, S.SRC_ROLE: S.ROLE_COHORT,
            S.SRC_ROWS: c[S.C_METADATA_ROWS], S.SRC_EMBEDDED: c[S.C_EMBEDDED_COVID],
            S.SRC_EXCLUDED: c[S.C_EXCLUDED], S.SRC_SKIPPED: c[S.C_SKIPPED_COVID]}
