"""Print presets: a figure styled for a journal page (millimetres at 300 dpi)."""
from __future__ import annotations

import plotly.graph_objects as go

# ---- export presets (figures for papers) ----------------------------------------------------
MM_PER_INCH = 25.4
CSS_DPI = 96
PRESETS = {
    "single": {"label": "single column (89 mm)", "width_mm": 89, "height_mm": 80, "font": 7},
    "double": {"label": "double column (183 mm)", "width_mm": 183, "height_mm": 120, "font": 8},
}
EXPORT_DPI = 300


def export_figure(fig: go.Figure, preset: str, caption: str | None = None) -> tuple:
    """-> (figure styled for print, width px, height px, scale) at 300 dpi for raster formats."""
    p = PRESETS[preset]
    width = round(p["width_mm"] / MM_PER_INCH * CSS_DPI)
    height = round(p["height_mm"] / MM_PER_INCH * CSS_DPI)
    out = go.Figure(fig)
    out.update_layout(width=width, height=height, font={"size": p["font"], "family": "Arial"},
                      paper_bgcolor="white", plot_bgcolor="white", template="plotly_white",
                      legend={"font": {"size": p["font"] - 1}, "tracegroupgap": 2,
                              "itemwidth": 30},
                      margin={"l": 4, "r": 4, "t": 18 if fig.layout.annotations else 4,
                              "b": 16 if caption else 4})
    for tr in out.data:
        if tr.type in ("heatmap", "contour"):
            tr.colorbar.update(thickness=6, tickfont={"size": p["font"] - 1})
        if tr.type == "scattergl" and tr.marker is not None and tr.marker.size == 7:
            tr.marker.size = 3.5
            if tr.marker.showscale:
                tr.marker.colorbar.update(thickness=6)
    for ann in out.layout.annotations:
        ann.font.size = p["font"] + 1
    if caption:
        out.add_annotation(text=caption, xref="paper", yref="paper", x=0, y=0,
                           xanchor="left", yanchor="top", showarrow=False, yshift=-2,
                           font={"size": p["font"] - 1, "color": "#444"})
    return out, width, height, EXPORT_DPI / CSS_DPI
