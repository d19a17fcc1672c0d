"""Small figures of the detail panel: the 18 outputs, and a zoomable display image."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from cxrviz.figures.palette import probability


def outputs_figure(pathologies, logits, title: str = "Model outputs") -> go.Figure:
    """The 18 outputs as probabilities (sigmoid of the raw logit), sorted; logit on hover."""
    logits = np.asarray(logits, dtype=float)
    probs = probability(logits)
    order = np.argsort(probs, kind="stable")
    bar = go.Bar(x=probs[order], y=[pathologies[i] for i in order], orientation="h",
                 customdata=logits[order], marker={"color": "#0072B2"},
                 hovertemplate="%{y}<br>probability %{x:.3f}<br>logit %{customdata:.3f}"
                               "<extra></extra>")
    # One constructor call, no template: update_layout and template copies cost tens of ms.
    return go.Figure(data=[bar], layout={
        "title": {"text": title, "font": {"size": 13}}, "paper_bgcolor": "white",
        "plot_bgcolor": "white", "height": max(260, 18 * len(pathologies) + 60),
        "margin": {"l": 10, "r": 10, "t": 30, "b": 30},
        "xaxis": {"range": [0, 1], "title": {"text": "sigmoid(logit)"}, "gridcolor": "#eee"},
        "yaxis": {"automargin": True}})


def image_figure(src: str, width: int, height: int) -> go.Figure:
    """A display image in a zoomable plotly figure (scroll / box zoom, double-click resets).

    The browser fetches `src` itself (a layout image), so no pixels pass through Python.
    """
    return go.Figure(layout={
        "images": [{"source": src, "xref": "x", "yref": "y", "x": 0, "y": 0, "sizex": width,
                    "sizey": height, "xanchor": "left", "yanchor": "top", "sizing": "stretch",
                    "layer": "below"}],
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0}, "height": 330, "dragmode": "zoom",
        "xaxis": {"visible": False, "range": [0, width], "constrain": "domain"},
        "yaxis": {"visible": False, "range": [height, 0], "scaleanchor": "x",
                  "constrain": "domain"},
        "plot_bgcolor": "black", "paper_bgcolor": "black"})
