"""Pieces every page shows: the navigation and the untrained-weights banner."""
from __future__ import annotations

from dash import dcc, html

from cxrviz import ids

LINKS = (("/", "Map"), ("/evaluation", "Evaluation"))


def nav(active: str):
    return html.Nav([dcc.Link(label, href=path, className="nav-link" + (
        " active" if path == active else "")) for path, label in LINKS], id=ids.NAV,
        className="nav")


def banner(store):
    if not store.warning:
        return html.Div(id=ids.BANNER, hidden=True)
    return html.Div(f"⚠ {store.warning}. Built with weights '{store.artifact.weights.label}': "
                    "positions and outputs carry no clinical meaning.", id=ids.BANNER,
                    className="banner")
