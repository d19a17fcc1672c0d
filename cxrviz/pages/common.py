"""Pieces every page shows: the navigation and the untrained-weights banner."""
from __future__ import annotations

from dash import dcc, html

from cxrviz import ids

LINKS = (("/", "Map"), ("/evaluation", "Evaluation"))
# Every chart's toolbar: local actions only. plotly.js shows a "Share chart" button by default
# that uploads the chart (hover text with patient ids included) to a third-party cloud.
OFFLINE = {"displaylogo": False, "showSendToCloud": False, "showEditInChartStudio": False,
           "showLink": False, "showTips": False}


def graph_config(**extra) -> dict:
    return {**OFFLINE, **extra}


def nav(active: str):
    return html.Nav([dcc.Link(label, href=path, className="nav-link" + (
        " active" if path == active else "")) for path, label in LINKS], id=ids.NAV,
        className="nav")


def banner_text(store) -> str:
    """The untrained-weights warning every page shows ('' for pretrained weights)."""
    if not store.warning:
        return ""
    return (f"⚠ {store.warning}. Built with weights '{store.artifact.weights.label}': "
            "positions and outputs carry no clinical meaning.")


def banner(store):
    text = banner_text(store)
    if not text:
        return html.Div(id=ids.BANNER, hidden=True)
    return html.Div(text, id=ids.BANNER, className="banner")
