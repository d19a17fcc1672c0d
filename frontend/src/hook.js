// The test hook (tests, reviewers): what the map draws now, read from the same values and ranges
// the layers are given (s.drawn, recorded by layers.js); positions in CSS px; a safe point to
// click. `ready` and `hover(imageId)` live in map.js.
import * as data from "./data.js";
import * as V from "./view.js";

export function hookOf(s, deckOf, rootOf) {
  async function shownIds() {
    const {ids} = await data.imageIds();
    const out = [];
    for (let i = 0; i < s.cfg.n; i++) if (s.shown[i]) out.push(ids[i]);
    return out;
  }

  async function shownEdges() {
    const {ids} = await data.imageIds();
    return V.shownEdges(s, s.shown).map(([a, b]) => [ids[a], ids[b]]);
  }

  async function screenPosition(imageId) {
    const {index} = await data.imageIds();
    const i = index.get(imageId);
    if (i === undefined || !s.shown[i]) return null;
    return projected(s.cols.x[i], s.cols.y[i]);
  }

  /* Whose trajectories "the selected patient" / "the box or lasso selection" draw (patient ids). */
  function scopePatientIds(scope) {
    if (scope === "selected") return s.selected ? [s.selected.patient] : [];
    if (scope === "selection") return s.selectionPatients || [];
    return [];
  }

  /* For tests: map coordinates under a viewport position (CSS px). */
  function unproject([cx, cy]) {
    const r = rootOf().querySelector("canvas").getBoundingClientRect();
    return deckOf().getViewports()[0].unproject([cx - r.left, cy - r.top]).slice(0, 2);
  }

  /* For tests: the image shown farthest from any other shown image (safe to click). */
  async function lonelyPoint() {
    const {ids} = await data.imageIds();
    const idx = [];
    for (let i = 0; i < s.cfg.n && idx.length < 5000; i++) if (s.shown[i]) idx.push(i);
    let best = -1, gap = -1;
    for (const i of idx) {
      let g = Infinity;
      for (const j of idx) {
        if (j !== i) g = Math.min(g, Math.hypot(s.cols.x[i] - s.cols.x[j], s.cols.y[i] - s.cols.y[j]));
      }
      if (g > gap) { gap = g; best = i; }
    }
    return best < 0 ? null : ids[best];
  }

  /* The opacity (0..1) the point is drawn with, or null where it is not drawn. */
  async function pointAlpha(imageId) {
    const {index} = await data.imageIds();
    const i = index.get(imageId);
    return i === undefined ? null : V.drawnAlpha(s, i);
  }

  function projected(x, y) {
    const vp = deckOf().getViewports()[0], [px, py] = vp.project([x, y]);
    const r = rootOf().querySelector("canvas").getBoundingClientRect();
    if (px < 0 || py < 0 || px > r.width || py > r.height) return null;
    return {x: r.left + px, y: r.top + py};
  }

  /* The placed uploads as drawn: number, map position, unlike the map's images, on screen. */
  function uploads() {
    return (s.uploads || []).map((u) => ({n: u.n, x: u.x, y: u.y,
                                          unlike: Boolean(u.out_of_distribution),
                                          screen: projected(u.x, u.y)}));
  }

  async function idsOf(points) {
    const {ids} = await data.imageIds();
    return (points || []).map((i) => ids[i]);
  }

  /* Image ids along the drawn hover path / selected patient's path ([] when none is drawn). */
  const hoverPath = () => idsOf(s.drawn.hoverPath);
  const selectedPath = () => idsOf(s.drawn.selectedPath);

  /* [[from image id, to image id], ...] of the steps that carry a drawn arrowhead. */
  async function arrowheads() {
    const {ids} = await data.imageIds();
    return (s.drawn.arrowheads || []).map(([a, b]) => [ids[a], ids[b]]);
  }

  /* Image ids inside the box / lasso selection, as marked on the map. */
  async function marked() {
    const {ids} = await data.imageIds();
    const out = [];
    if (s.marked) for (let i = 0; i < s.cfg.n; i++) if (s.marked[i]) out.push(ids[i]);
    return out;
  }

  /* The ids of the layers drawn now, bottom to top ("uploads" and their numbers last). */
  const layerOrder = () => [...(s.drawn.layers || [])];

  /* "heatmap", "contours", or null where no density is drawn. */
  const density = () => s.drawn.density || null;

  function view() {
    return {lo: s.range.lo, hi: s.range.hi, align: s.view.align, scope: s.view.scope,
            selected: s.view.selectedId, color: s.view.color};
  }

  return {shownIds, shownEdges, screenPosition, lonelyPoint, view, unproject, scopePatientIds,
          pointAlpha, uploads, hoverPath, selectedPath, arrowheads, marked, density, layerOrder};
}
