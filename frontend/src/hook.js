// The test hook (tests, reviewers): what the map draws now, read from the same values and ranges
// the GPU is given; positions in CSS px; a safe point to click.
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
    const vp = deckOf().getViewports()[0], [px, py] = vp.project([s.cols.x[i], s.cols.y[i]]);
    const r = rootOf().querySelector("canvas").getBoundingClientRect();
    if (px < 0 || py < 0 || px > r.width || py > r.height) return null;
    return {x: r.left + px, y: r.top + py};
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

  function view() {
    return {lo: s.range.lo, hi: s.range.hi, align: s.view.align, scope: s.view.scope,
            selected: s.view.selectedId, color: s.view.color};
  }

  return {shownIds, shownEdges, screenPosition, lonelyPoint, view, unproject, scopePatientIds};
}
