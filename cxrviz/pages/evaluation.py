"""The Evaluation page (/evaluation): the artifact's leave-one-continent-out results (on a one-site
cohort: patient-grouped folds, and the page says so) beside the paper's Tables 5 and 6, every
split, and ROC curves per held-out continent or test fold. It reads what
`python -m precompute.evaluate` wrote (loaded once at start-up) and the paper's numbers
(cxrviz/reference/)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd
from dash import Input, Output, callback, dcc, html
from dash.exceptions import PreventUpdate

from cxrviz import ids
from cxrviz.appstate import current
from cxrviz.words import EVAL_COLUMNS
from cxrviz.compute.evaluate import (FEATURE_SETS, N_FOLDS, SCHEME_GROUPED, SCHEME_LOCO,
                                     SCHEME_TEST_NAME, TASKS)
from cxrviz.figures.evaluation import roc_figure
from cxrviz.pages.common import banner, graph_config, nav

PATH = "/evaluation"
TITLE = "cxrviz: evaluation"
REFERENCE = Path(__file__).resolve().parents[1] / "reference"
# The paper's continent names -> the region table's (country_converter's `continent`, the names
# the map's filters and every split of ours use): one name per continent on the page.
PAPER_REGIONS = {"Americas": "America"}


@lru_cache(maxsize=1)
def paper_tables() -> dict:
    return {"classification": pd.read_csv(REFERENCE / "table5_classification.csv"),
            "regression": pd.read_csv(REFERENCE / "table6_regression.csv")}


def _pm(mean, std) -> str:
    """'0.81 ± 0.10', kept on one line (no-break spaces)."""
    return "–" if pd.isna(mean) else f"{mean:.2f}\u00a0±\u00a0{std:.2f}"


def _regions(text) -> str:
    """A comma-separated list of continents (ours or the paper's), in the region table's names."""
    if not isinstance(text, str) or not text:
        return "–"
    return ", ".join(PAPER_REGIONS.get(r.strip(), r.strip()) for r in text.split(","))


def scheme_of(info: dict) -> str:
    """The split scheme an evaluation used (written before schemes existed: LOCO)."""
    return info.get("protocol", {}).get("split_scheme") or SCHEME_LOCO


def protocol_text(info: dict) -> str:
    """The first paragraph: how the splits were made, in words."""
    views = ", ".join(info["protocol"]["views"])
    offsets = info["protocol"]["classification_offsets"]
    if scheme_of(info) == SCHEME_GROUPED:
        return (f"Patient-grouped {N_FOLDS}-fold cross-validation, not leave one continent out: "
                "this cohort comes from one site (one continent, or none known), so no continent "
                "can be held out. Each fold in turn is the test set and every patient's images "
                "are in one fold only, never on both sides of a split (classification folds keep "
                "the label balance; seeded). A fold without an example of each class is left out "
                f"(hover a fold list to see why). Views {views}; classification tasks use "
                f"{offsets}. Mean ± standard deviation over the test folds.")
    return ("Leave one continent out: each continent in turn is the test set; training rows "
            "that share a source (DOI, else URL) with a test row are dropped; a continent "
            "without an example of each class is left out (hover a region list to see why). "
            f"Views {views}; classification tasks use {offsets}. Mean ± standard deviation over "
            "the held-out continents.")


def comparison(summary: pd.DataFrame, kind: str, scheme: str = SCHEME_LOCO) -> html.Table:
    """Table 5 (classification) or 6 (regression) style: ours beside the paper's."""
    paper = paper_tables()[kind]
    metrics = ("auroc", "auprc") if kind == "classification" else ("pearson", "r2", "mae")
    names = EVAL_COLUMNS
    head = html.Tr([*(html.Th(names[c]) for c in ("task", "features", "params")),
                    *(html.Th(f"{names[m]} (ours)") for m in metrics),
                    html.Th("regions (ours)" if scheme == SCHEME_LOCO else "test folds (ours)"),
                    *(html.Th(f"{names[m]} (paper)") for m in metrics),
                    html.Th("regions (paper)")])
    rows = []
    ours = summary[summary["kind"] == kind]
    for i, (_, r) in enumerate(ours.iterrows()):
        task, (paper_feat, title) = TASKS[r["task"]], FEATURE_SETS[r["features"]]
        match = paper[(paper["task"] == task.paper) & (paper["features"] == paper_feat)]
        p = match.iloc[0] if len(match) else None
        first = i == 0 or ours.iloc[i - 1]["task"] != r["task"]
        cells = []
        if first:  # the task once, over its feature sets, with both studies' label counts
            in_paper = paper[paper["task"] == task.paper]
            n = (f"{int(r['n_true'])} positive / {int(r['n_false'])} negative"
                 if kind == "classification" else f"n = {int(r['n'])}")
            if len(in_paper):
                q = in_paper.iloc[0]
                n += (f" (paper: {q['n_true']} / {q['n_false']})" if kind == "classification"
                      else f" (paper: {q['n']})")
            cells.append(html.Td([html.B(task.title), html.Br(),
                                  html.Span(n, className="muted small")],
                                 rowSpan=int((ours["task"] == r["task"]).sum())))
        rows.append(html.Tr([
            *cells, html.Td(title), html.Td(r["params"]),
            *(html.Td(_pm(r[f"{m}_mean"], r[f"{m}_std"])) for m in metrics),
            html.Td(_regions(r["test_regions"]), title=r.get("left_out_regions") or "",
                    className="regions"),
            *(html.Td(_pm(p[f"{m}_mean"], p[f"{m}_std"]) if p is not None else "–",
                      className="paper") for m in metrics),
            html.Td(_regions(p["test_regions"]) if p is not None else "–",
                    className="paper regions")]))
    return html.Table([head, *rows], className="eval-table")


def layout(**query):
    store = current().store
    ev = store.evaluation
    header = html.Header([html.H1("cxrviz"), html.Span("prospective evaluation", className="muted"),
                          nav(PATH)])
    if ev is None:
        return html.Div([header, banner(store), html.Div([
            html.H3("No evaluation computed for this artifact yet"),
            html.P("Compute it (a few seconds; add --pixels for the paper's MLP on pixels):"),
            html.Pre(f"python -m precompute.evaluate --artifact {current().artifact_path}",
                     className="command"),
            html.P("then restart the app.", className="muted"),
            html.Div([dcc.Dropdown(id=ids.EVAL_TASK), dcc.Dropdown(id=ids.EVAL_FEATURES),
                      dcc.Graph(id=ids.EVAL_ROC)], hidden=True)],  # what its callback reads
            className="panel eval")], className="page eval-page")
    info, summary = ev["info"], ev["summary"]
    scheme = scheme_of(info)
    w = store.artifact.weights
    tasks = [t for t in TASKS if t in set(summary["task"])]
    feats = [f for f in FEATURE_SETS if f in set(summary["features"])]
    return html.Div([
        header, banner(store),
        html.Div([
            html.P([html.B(f"Splits: {scheme}. "), protocol_text(info)], id=ids.EVAL_SCHEME),
            html.P([html.B("The paper's numbers "), "(Cohen et al. 2020, Tables 5 and 6) come "
                    "from the September 2020 collection and the pretrained "
                    "densenet121-res224-all weights. ",
                    html.B("These come from "), f"{store.artifact.artifact_id}, weights "
                    f"{w.label} (sha256 {w.short_sha}…, "
                    f"{'pretrained' if w.pretrained else 'NOT pretrained'}). Different data and "
                    "weights give different numbers. Continents are named as on the map "
                    "(the paper's \u201cAmericas\u201d is America)."], className="note"),
            html.H3("Classification (Table 5)"), comparison(summary, "classification", scheme),
            html.H3("Regression: severity scores (Table 6)"),
            comparison(summary, "regression", scheme),
            html.H3(f"ROC curves per {SCHEME_TEST_NAME[scheme]}"),
            html.Div([
                dcc.Dropdown(id=ids.EVAL_TASK, clearable=False, value=tasks[0],
                             options=[{"label": TASKS[t].title, "value": t} for t in tasks
                                      if TASKS[t].kind == "classification"]),
                dcc.Dropdown(id=ids.EVAL_FEATURES, clearable=False,
                             value="outputs18" if "outputs18" in feats else feats[0],
                             options=[{"label": FEATURE_SETS[f][1], "value": f}
                                      for f in feats]),
            ], className="row eval-pickers"),
            dcc.Graph(id=ids.EVAL_ROC, config=graph_config(),
                      style={"maxWidth": "760px"}),
            html.H3("Every split (Appendix C.2)"),
            splits_grid(ev["splits"], scheme),
            html.P(f"Computed in {info['seconds']} s with scikit-learn "
                   f"{info['versions'].get('scikit-learn')}; seed {info['seed']}.",
                   className="muted small"),
        ], className="eval"),
    ], className="page eval-page")


def splits_grid(splits: pd.DataFrame, scheme: str = SCHEME_LOCO):
    """Every split, in words: task and feature titles, continents by the region table's names
    (or the test fold), column headings from words.EVAL_COLUMNS (the CSV keeps the codes)."""
    import dash_ag_grid as dag

    cols = [c for c in EVAL_COLUMNS if c in splits]
    frame = splits[cols].round(3)
    frame["task"] = frame["task"].map(lambda t: TASKS[t].title if t in TASKS else t)
    frame["features"] = frame["features"].map(
        lambda f: FEATURE_SETS[f][1] if f in FEATURE_SETS else f)
    frame["test_region"] = frame["test_region"].map(_regions)
    return dag.AgGrid(id=ids.EVAL_SPLITS, rowData=frame.astype(object).where(frame.notna(), None)
                      .to_dict("records"),
                      columnDefs=[{"field": c, "headerName": heading(c, scheme),
                                   "headerTooltip": heading(c, scheme)} for c in cols],
                      defaultColDef={"sortable": True, "filter": True, "resizable": True,
                                     "wrapHeaderText": True, "autoHeaderHeight": True},
                      style={"height": "420px"}, className="ag-theme-quartz")


def heading(column: str, scheme: str) -> str:
    return SCHEME_TEST_NAME[scheme] if column == "test_region" else EVAL_COLUMNS[column]


@callback(Output(ids.EVAL_ROC, "figure"),
          inputs={"task": Input(ids.EVAL_TASK, "value"),
                  "features": Input(ids.EVAL_FEATURES, "value")})
def roc(task, features):
    ev = current().store.evaluation
    if ev is None or task is None:
        raise PreventUpdate
    return roc_figure(ev["predictions"], task, features, region_name=_regions,
                      split_name=SCHEME_TEST_NAME[scheme_of(ev["info"])])
