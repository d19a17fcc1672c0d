"""ROC curves of the evaluation: one per held-out continent (LOCO) or test fold (a one-site
cohort's patient-grouped folds), for a task and feature set."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from cxrviz.figures.palette import OKABE_ITO

LEGEND_ROW_PX = 20  # one legend entry per row, below the plot


def roc_figure(predictions, task: str, features: str, plot_px: int = 340,
               region_name=str, split_name: str = "held-out continent") -> go.Figure:
    """The legend sits below the square plot, one entry per row, so it never covers a curve;
    the figure grows by a row per continent. region_name: how a continent is written;
    split_name: what a split's test set is ('held-out continent', 'test fold')."""
    from sklearn.metrics import roc_auc_score, roc_curve

    rows = predictions[(predictions["task"] == task) & (predictions["features"] == features)]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance",
                             line={"color": "#999", "dash": "dot", "width": 1}))
    for i, (region, grp) in enumerate(rows.groupby("test_region", sort=True)):
        y, score = grp["y_true"].to_numpy(), grp["y_score"].to_numpy()
        if len(np.unique(y)) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, score)
        fig.add_trace(go.Scatter(
            x=fpr, y=tpr, mode="lines", line={"color": OKABE_ITO[i % len(OKABE_ITO)], "width": 2},
            name=f"{region_name(region)}: AUROC {roc_auc_score(y, score):.2f} (n={len(y)}, "
                 f"{int(y.sum())} positive)"))
    top, axis_titles = 30, 46
    legend_px = LEGEND_ROW_PX * len(fig.data) + 8
    height = top + plot_px + axis_titles + legend_px
    fig.update_layout(
        height=height, margin={"l": 50, "r": 10, "t": top, "b": axis_titles + legend_px},
        paper_bgcolor="white", plot_bgcolor="white",
        title={"text": f"ROC per {split_name}", "font": {"size": 13}},
        xaxis={"title": {"text": "false positive rate"}, "range": [0, 1], "gridcolor": "#eee",
               "constrain": "domain"},
        yaxis={"title": {"text": "true positive rate"}, "range": [0, 1.01], "gridcolor": "#eee",
               "scaleanchor": "x"},
        legend={"orientation": "v", "x": 0, "xanchor": "left", "y": -axis_titles / plot_px,
                "yanchor": "top", "font": {"size": 11}, "tracegroupgap": 0})
    return fig
