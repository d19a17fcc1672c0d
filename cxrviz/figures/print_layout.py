"""Geometry of a printed figure, worked out before plotly draws it: units and the canvas
(Size), text widths, the plotting area that follows the data's aspect, legends packed in rows
below the plot, and horizontal colour bars under them.

Plotly places legends, colour bars and annotations where it is told and does not move them
apart, so everything that could collide is given its own band of the canvas here.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

MM_PER_INCH = 25.4
EXPORT_DPI = 300
CSS_DPI = 96  # what plotly's px are (kaleido renders at 96 px per inch)
PX_PER_PT = CSS_DPI / 72
# The faces a renderer uses for "Arial": Arial itself, or its metric twin Liberation Sans
FONT_FILES = {False: ("Arial.ttf", "arial.ttf", "LiberationSans-Regular.ttf"),
              True: ("Arial Bold.ttf", "arialbd.ttf", "LiberationSans-Bold.ttf")}
EM_WIDTH = 0.56  # average glyph width (em) when no such font is found: errs wide
# A plotly legend entry: symbol (itemwidth), gap, text, gap to the next entry; a row's height
# and its entries' middle line below the row's top (measured on kaleido's SVG)
LEGEND_SYMBOL_PX, LEGEND_TEXT_GAP, LEGEND_ITEM_GAP = 30, 10, 5
LEGEND_ROW_PX, LEGEND_ENTRY_MIDDLE = 19, 15.3
LEGEND_TITLE_GAP = 4  # between a group's title and its first entry
LEGEND_GAP_PX = 14  # between two groups on one row


@dataclass
class Size:
    """Canvas in CSS px (kaleido's unit), its width in mm as the preset says, and the PNG's
    scale to 300 dpi (the preset's width exactly: 89 mm -> 1051 px)."""

    width: int
    height: int
    width_mm: float

    @property
    def mm(self) -> tuple:
        return self.width_mm, self.width_mm * self.height / self.width

    @property
    def png_scale(self) -> float:
        return round(self.width_mm / MM_PER_INCH * EXPORT_DPI) / self.width


def px(mm: float) -> float:
    return mm / MM_PER_INCH * CSS_DPI


def pt(points: float) -> float:
    return points * PX_PER_PT


@lru_cache(maxsize=None)
def _font(size_px: float, bold: bool):
    from PIL import ImageFont

    for name in FONT_FILES[bold]:
        try:
            return ImageFont.truetype(name, size=max(1, round(size_px * 4)))  # 4x: sub-px
        except OSError:
            continue
    return None


def text_width(text: str, size_px: float, bold: bool = False) -> float:
    """Rendered width of one line of text in px (Arial metrics where the font is installed)."""
    font = _font(size_px, bold)
    if font is None:
        return len(text) * EM_WIDTH * size_px
    return font.getlength(text) / 4


def wrap(text: str, width_px: float, size_px: float, sep: str | None = None) -> list:
    """Lines of `text` that fit `width_px` (by measured width). With `sep` (a caption's " · "),
    lines break between its parts where they fit, so a part (the filters, say) stays whole;
    word by word otherwise."""
    if sep:
        lines = []
        for part in text.split(sep):
            joined = f"{lines[-1]}{sep}{part}" if lines else part
            if lines and text_width(joined, size_px) <= width_px:
                lines[-1] = joined
            elif text_width(part, size_px) <= width_px:
                lines.append(part)
            else:
                lines += wrap(part, width_px, size_px)
        return lines
    per_line = max(10, int(width_px / (EM_WIDTH * size_px)))
    lines = textwrap.wrap(text, per_line)
    while per_line > 10 and any(text_width(line, size_px) > width_px for line in lines):
        per_line -= 2
        lines = textwrap.wrap(text, per_line)
    return lines


@dataclass
class PlotArea:
    """Axis ranges with one scale for x and y, and the plot's share of the available width:
    the plot takes the data's aspect (height / width), between the preset's bounds; a map
    taller than the upper bound gets a narrower plot, not empty bands beside the points."""

    xrange: list
    yrange: list
    aspect: float  # plot height / plot width
    width_share: float  # of the width the preset gives the map (1: all of it)


def plot_area(x: np.ndarray, y: np.ndarray, bounds: tuple, margin: float = 0.05) -> PlotArea:
    (x0, x1), (y0, y1) = (x.min(), x.max()), (y.min(), y.max())
    dx, dy = (x1 - x0) * (1 + margin) or 1.0, (y1 - y0) * (1 + margin) or 1.0
    lo, hi = bounds
    data_aspect = dy / dx
    aspect, share = data_aspect, 1.0
    if data_aspect < lo:  # flatter than a figure should be: pad y (the only empty bands)
        aspect, dy = lo, dx * lo
    elif data_aspect > hi:  # taller than the page allows: the plot narrows
        aspect, share = hi, hi / data_aspect
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return PlotArea([cx - dx / 2, cx + dx / 2], [cy - dy / 2, cy + dy / 2], float(aspect),
                    float(share))


@dataclass
class LegendRow:
    """One row of legend entries (its own plotly legend, never wrapped by plotly), and the
    title of its group beside the group's first row (an annotation: plotly draws a legend's
    own title off the entries' middle line)."""

    key: str  # plotly's legend id: legend, legend2, ...
    group: str
    title: str  # "" on a group's later rows
    names: list
    title_x: float  # px from the plotting area's left edge
    x: float  # where the entries start
    row: int


def _entry_px(name: str, font_px: float) -> float:
    return LEGEND_SYMBOL_PX + LEGEND_TEXT_GAP + text_width(name, font_px) + LEGEND_ITEM_GAP


def legend_rows(groups: list, font_px: float, avail: float) -> list:
    """groups: [(group, title, names)] -> [LegendRow]: groups left to right in rows of
    `avail` px, a group that does not fit the rest of a row starting the next one, and a group
    wider than a row taking several, its later rows indented under its first entry."""
    rows, x, row = [], 0.0, 0
    for group, title, names in groups:
        title_w = text_width(title, font_px) + LEGEND_TITLE_GAP if title else 0.0
        widths = [_entry_px(n, font_px) for n in names]
        if x > 0 and x + title_w + sum(widths) > avail:
            x, row = 0.0, row + 1
        lines, line, end = [], [], x + title_w
        for name, w in zip(names, widths):
            if line and end + w > avail:
                lines.append(line)
                line, end = [], x + title_w
            line.append(name)
            end += w
        lines.append(line)
        for i, names_i in enumerate(lines):
            key = "legend" if not rows else f"legend{len(rows) + 1}"
            rows.append(LegendRow(key, group, title if i == 0 else "", names_i, x,
                                  x + title_w, row + i))
        row += len(lines) - 1
        x = end + LEGEND_GAP_PX
        if len(lines) > 1:
            x, row = 0.0, row + 1
    return rows


def rows_used(rows: list) -> int:
    return max((r.row + 1 for r in rows), default=0)


def legend_layout(row, top_px: float, avail: float, plot_h: float, font_px: float) -> tuple:
    """-> (plotly legend, its title annotation or None)."""
    y = top_px + row.row * LEGEND_ROW_PX
    legend = {"orientation": "h", "x": row.x / avail, "xanchor": "left", "y": -y / plot_h,
              "yanchor": "top", "font": {"size": font_px}, "itemsizing": "trace",
              "itemwidth": LEGEND_SYMBOL_PX, "bgcolor": "rgba(0,0,0,0)",
              "traceorder": "normal", "tracegroupgap": 0, "valign": "middle", "borderwidth": 0}
    title = None
    if row.title:
        title = {"text": row.title, "x": row.title_x / avail, "xanchor": "left",
                 "y": -(y + LEGEND_ENTRY_MIDDLE) / plot_h, "yanchor": "middle",
                 "xref": "paper", "yref": "paper", "showarrow": False, "borderpad": 0,
                 "font": {"size": font_px}}
    return legend, title


def colorbar_px(font_pt: float) -> float:
    """Height of a horizontal colour bar: title, bar, ticks and their labels."""
    return pt(font_pt - 0.5) * 1.25 + pt(4) + 2 + pt(font_pt - 1) * 1.25 + 2


def colorbar(font_pt: float, y: float, x: float, title: str, length: float) -> dict:
    """Horizontal, below the plot; its title above the bar and the ticks below: never on top
    of each other."""
    return {"orientation": "h", "x": x, "xanchor": "left", "y": y, "yanchor": "top",
            "len": length, "lenmode": "fraction", "thickness": pt(4), "outlinewidth": 0,
            "title": {"text": title, "side": "top", "font": {"size": pt(font_pt - 0.5)}},
            "tickfont": {"size": pt(font_pt - 1)}, "ticks": "outside", "ticklen": 2, "xpad": 0,
            "ypad": 0}
