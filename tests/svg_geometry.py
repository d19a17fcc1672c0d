"""Where things land in an exported SVG, read from chromium's own rendering of the file (not
estimated from font sizes): every text's box, the annotations' background boxes, the plotting
areas, the centres and widths of the point markers, the legend's symbols and the axes' tick
labels, in the SVG's px (its viewBox)."""
from __future__ import annotations

from pathlib import Path

MEASURE = """
const svg = document.documentElement;
const box = svg.getBoundingClientRect();
const k = svg.viewBox.baseVal.width / box.width;
const rel = r => ({x0: (r.left - box.left) * k, y0: (r.top - box.top) * k,
                   x1: (r.right - box.left) * k, y1: (r.bottom - box.top) * k});
const classes = el => { const out = []; for (let e = el.parentNode; e && e !== svg;
                          e = e.parentNode) out.push(e.getAttribute('class') || ''); return out; };
const texts = Array.from(svg.querySelectorAll('text'))
  .filter(t => t.textContent.trim())
  .map(t => ({text: t.textContent, classes: classes(t), ...rel(t.getBoundingClientRect())}));
const backgrounds = Array.from(svg.querySelectorAll('g.annotation rect.bg'))
  .map(r => ({text: r.parentNode.textContent, ...rel(r.getBoundingClientRect())}));
// each subplot: its plotting area (its clip rectangle, where its plot group draws) and the
// centres of its point markers
const areas = [], points = {};
for (const c of svg.querySelectorAll('clipPath.plotclip')) {
  const plot = svg.querySelector(`g[clip-path="url(#${c.id})"]`);
  const r = c.querySelector('rect');
  const m = plot.transform.baseVal.consolidate().matrix;
  const sub = plot.getAttribute('class');
  areas.push({subplot: sub, x0: m.e, y0: m.f, x1: m.e + r.width.baseVal.value,
              y1: m.f + r.height.baseVal.value});
  points[sub] = Array.from(plot.querySelectorAll('g.trace.scatter path.point')).map(p => {
    const b = rel(p.getBoundingClientRect());
    return [(b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2, b.x1 - b.x0];
  });
}
// legend entries: their text and the width of their marker symbol (none for lines)
const legend = Array.from(svg.querySelectorAll('g.legend g.traces')).map(g => {
  const sym = g.querySelector('g.legendpoints path.scatterpts');
  const b = sym ? rel(sym.getBoundingClientRect()) : null;
  return {text: g.textContent, symbol: b ? b.x1 - b.x0 : null};
});
const view = svg.viewBox.baseVal;
const ticks = Array.from(svg.querySelectorAll('g.xaxislayer-above > g, g.yaxislayer-above > g'))
  .map(g => ({axis: g.getAttribute('class'), text: g.textContent}));
return {width: view.width, height: view.height, texts, backgrounds, areas, points, legend,
        ticks};
"""


def measure(driver, svg: bytes, folder: Path) -> dict:
    """Open the SVG file in the browser and read back the rendered geometry."""
    path = folder / "measured.svg"
    path.write_bytes(svg)
    driver.get(path.resolve().as_uri())
    return driver.execute_script(MEASURE)


def overlap(a: dict, b: dict, tolerance: float = 0.5) -> bool:
    """True when two boxes share more than `tolerance` px in both directions."""
    return (min(a["x1"], b["x1"]) - max(a["x0"], b["x0"]) > tolerance
            and min(a["y1"], b["y1"]) - max(a["y0"], b["y0"]) > tolerance)


def inside(a: dict, width: float, height: float) -> bool:
    return a["x0"] >= 0 and a["y0"] >= 0 and a["x1"] <= width and a["y1"] <= height


def marks(svg: bytes, subplot: str = "xy") -> dict:
    """What a plot of an exported SVG draws, counted from the file's elements (plotly's
    classes; the legend lies outside the plot): point markers (any symbol but a triangle),
    line segments (every 'L' of a line's path: a trajectory step is one) and arrowheads (the
    triangles)."""
    import re
    import xml.etree.ElementTree as ET

    ns = "{http://www.w3.org/2000/svg}"
    (plot,) = [g for g in ET.fromstring(svg).iter(f"{ns}g")
               if (g.get("class") or "").split() == ["subplot", subplot]]
    out = {"points": 0, "segments": 0, "arrowheads": 0}
    for path in plot.iter(f"{ns}path"):
        kind, d = path.get("class") or "", path.get("d") or ""
        if kind == "js-line":
            out["segments"] += d.count("L")
        elif kind == "point":
            triangle = re.fullmatch(r"M[^A-Z]+L[^A-Z]+L[^A-Z]+Z", d) is not None
            out["arrowheads" if triangle else "points"] += 1
    return out
