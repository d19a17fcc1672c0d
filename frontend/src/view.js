// The per-point and per-segment attributes the GPU filters and colours by, recomputed only when
// what they depend on changes (mask, colour, legend, selection, alignment); a day-range frame
// changes the filter range alone. The rules (opacities, colours, words) come from the config.

export const NO_EVENT = 1e9;  // aligned day of an undated image or a patient without the event
export const OPEN = 1e8;  // an open end of the day range
const ALL_DAYS = [-3e9, 3e9];  // no day range: every image, undated included

/* Python's rule (store.day_mask): only the reported offset with no range is not a range. */
export function dayRange(cfg, range, align) {
  const lo = range && range[0] > cfg.day.lo ? range[0] : null;
  const hi = range && range[1] < cfg.day.hi ? range[1] : null;
  const timed = !(align === "offset" && lo === null && hi === null);
  return {lo, hi, timed, filter: timed ? [lo === null ? -OPEN : lo, hi === null ? OPEN : hi]
                                       : ALL_DAYS};
}

/* Per point: day - event_day[episode] under `align` (NO_EVENT where undefined). */
export function alignedDays(cols, events, align) {
  const n = cols.x.length, out = new Float32Array(n), ev = events[align];
  for (let i = 0; i < n; i++) {
    const d = cols.day[i] - ev[cols.episode[i]];
    out[i] = Number.isFinite(d) ? d : NO_EVENT;
  }
  return out;
}

export function inside(day, f) {
  return day >= f[0] && day <= f[1];
}

function hiddenFlags(codes, hidden, n) {
  const out = new Uint8Array(n);
  if (hidden.size) for (let i = 0; i < n; i++) out[i] = hidden.has(codes[i]) ? 1 : 0;
  return out;
}

/* Points: filter values [aligned day, drawn], fill colours (RGBA). Outside a box / lasso
 * selection (s.marked) a point is drawn at opacity.unselected times its opacity. */
export function pointAttributes(s) {
  const {cfg, cols, keep, codes, days} = s;
  const n = cfg.n, filter = new Float32Array(2 * n), color = new Uint8Array(4 * n);
  const pal = cfg.colors.columns[s.view.color];
  const table = pal.kind === "categorical" ? pal.colors : cfg.colors.ramp;
  const o = cfg.opacity, sel = s.selected ? s.selected.patient_index : -1;  // dims by patient
  const hide = s.view.mode === "hide", marked = s.marked;
  s.legendHidden = hiddenFlags(codes, s.view.hidden, n);
  for (let i = 0; i < n; i++) {
    filter[2 * i] = days[i];
    filter[2 * i + 1] = (hide && !keep[i]) || s.legendHidden[i] ? 0 : 1;
    const base = sel < 0 ? o.point : (cols.patient[i] === sel ? o.patient : o.others);
    const c = table[codes[i]] || table[table.length - 1];
    color[4 * i] = c[0]; color[4 * i + 1] = c[1]; color[4 * i + 2] = c[2];
    const dim = marked && !marked[i] ? o.unselected : 1;
    color[4 * i + 3] = Math.round(255 * dim * (hide || keep[i] ? base : o.dim));
  }
  return {filter, color};
}

/* Segments: positions, filter values [day from, day to, both ends pass filters and legend],
 * colours by survival; their arrowheads' colours (the state reached) and angles. */
export function edgeAttributes(s) {
  const {cfg, cols, keep, days, edges: e} = s;
  const m = e.n, src = new Float32Array(2 * m), dst = new Float32Array(2 * m);
  const filter = new Float32Array(3 * m), color = new Uint8Array(4 * m);
  const angle = new Float32Array(m), headColor = new Uint8Array(4 * m);
  const sel = s.selected !== null;
  const pa = Math.round(255 * cfg.opacity.path[sel ? 1 : 0]);
  const aa = Math.round(255 * cfg.opacity.arrow[sel ? 1 : 0]);
  for (let j = 0; j < m; j++) {
    const a = e.from[j], b = e.to[j];
    const x0 = cols.x[a], y0 = cols.y[a], dx = cols.x[b] - x0, dy = cols.y[b] - y0;
    src[2 * j] = x0; src[2 * j + 1] = y0; dst[2 * j] = cols.x[b]; dst[2 * j + 1] = cols.y[b];
    filter[3 * j] = days[a]; filter[3 * j + 1] = days[b];
    filter[3 * j + 2] = keep[a] && keep[b] && !s.legendHidden[a] && !s.legendHidden[b] ? 1 : 0;
    const c = cfg.edge_colors.survival[e.survival[j]], h = cfg.edge_colors.to_state[e.toState[j]];
    color.set([c[0], c[1], c[2], pa], 4 * j);
    headColor.set([h[0], h[1], h[2], aa], 4 * j);
    angle[j] = Math.atan2(dy, dx) * 180 / Math.PI;
  }
  return {src, dst, filter, color, angle, headColor};
}

/* figures.layers.trajectory_data's rule, from the config: in a day range (timed) only the
 * latest shown step of each episode carries an arrowhead, at its end; otherwise every shown
 * step carries one at arrow_at. The m steps are in time order within each episode;
 * `episodeOf(k)` names step k's episode, `shownStep(k)` says whether it is drawn.
 * -> {steps: indices of the steps that carry one, at: where along them}. */
export function arrowRule(s, m, episodeOf, shownStep) {
  const cfg = s.cfg, latest = cfg.arrows_latest_only_when_timed && s.range.timed;
  const out = [];
  if (!latest) {
    for (let k = 0; k < m; k++) if (shownStep(k)) out.push(k);
    return {steps: out, at: cfg.sizes.arrow_at};
  }
  const last = new Map();  // episode -> its latest shown step (steps are in time order)
  for (let k = 0; k < m; k++) if (shownStep(k)) last.set(episodeOf(k), k);
  return {steps: [...last.values()].sort((a, b) => a - b), at: cfg.sizes.arrow_at_latest};
}

/* The arrowheads of the trajectory steps drawn now (indices into s.edges). */
export function edgeHeads(s, shown) {
  const e = s.edges;
  if (!e || !e.n || !s.view.show.has("trajectories")) return {steps: [], at: s.cfg.sizes.arrow_at};
  return arrowRule(s, e.n, (k) => e.episode[k], (k) => shown[e.from[k]] && shown[e.to[k]]);
}

/* A patient's path through the images shown now (point indices): it grows with the day range
 * and Play; images outside the range are not joined. */
export function shownPath(s, p) {
  return p && p.path ? p.path.filter((i) => s.shown[i]) : [];
}

/* What the GPU draws a point with: null where it is not drawn (filtered out in "hide" mode,
 * hidden in the legend, outside the day range), else its opacity. */
export function drawnAlpha(s, i) {
  const f = s.pointAttrs.filter, r = s.range.filter;
  if (!f[2 * i + 1] || !inside(f[2 * i], r)) return null;
  return s.pointAttrs.color[4 * i + 3] / 255;
}

/* What the GPU shows, by the same values and ranges it is given: points passing the filters,
 * the day range and the legend; segments whose two ends are shown. */
export function shownMask(s) {
  const n = s.cfg.n, out = new Uint8Array(n), f = s.range.filter;
  for (let i = 0; i < n; i++) {
    out[i] = s.keep[i] && !s.legendHidden[i] && inside(s.days[i], f) ? 1 : 0;
  }
  return out;
}

export function shownEdges(s, shown) {
  const out = [];
  if (!s.edges || !s.view.show.has("trajectories")) return out;
  for (let j = 0; j < s.edges.n; j++) {
    if (shown[s.edges.from[j]] && shown[s.edges.to[j]]) out.push([s.edges.from[j], s.edges.to[j]]);
  }
  return out;
}

function plural(k, word) {
  return `${k} ${word}${k === 1 ? "" : "s"}`;
}

/* The header's count and the time note (the words of store.count_text and time.time_note). */
export function texts(s, shown) {
  const {cfg, cols} = s, n = cfg.n;
  let count = 0, unknown = 0, legendOff = 0;
  const patients = new Uint8Array(cfg.n_patients), missing = new Uint8Array(cfg.n_episodes);
  const ev = s.events[s.view.align];
  for (let i = 0; i < n; i++) {
    if (shown[i]) {
      count++; patients[cols.patient[i]] = 1;  // patients, not episodes (as count_text)
      if (s.unknown && s.unknown[i]) unknown++;
    } else if (s.keep[i] && s.legendHidden[i] && inside(s.days[i], s.range.filter)) legendOff++;
    if (s.keep[i] && s.view.align !== "offset" && !Number.isFinite(ev[cols.episode[i]])) {
      missing[cols.episode[i]] = 1;
    }
  }
  const k = patients.reduce((a, b) => a + b, 0), left = missing.reduce((a, b) => a + b, 0);
  let text = `${count} of ${n} images, ${plural(k, "patient")}`;
  const w = cfg.day.words, {lo, hi} = s.range;
  const label = lo !== null && hi !== null ? w.both : lo !== null ? w.from : hi !== null ? w.to : "";
  if (label) text += ` · ${label.replace("{lo}", lo).replace("{hi}", hi)}`;
  if (unknown) text += ` (${unknown} with ${s.maskInfo.unknown_label} unknown)`;
  if (legendOff) text += ` · ${legendOff} hidden in the legend`;
  if (!count && s.maskInfo.emptied_by) text += ` · the filter "${s.maskInfo.emptied_by}" left none`;
  const notes = [];
  if (s.view.scope === "selected" && cfg.n_edges > cfg.many_edges) {
    notes.push(`${cfg.n_edges.toLocaleString("en-US")} trajectory steps: drawn for the selected ` +
               "patient only (choose 'all patients shown' to draw every one).");
  }
  if (s.edges && s.edges.leftOut) {
    notes.push(`${s.edges.leftOut.toLocaleString("en-US")} trajectory steps beyond the budget of ` +
               `${cfg.edge_budget.toLocaleString("en-US")} left out: narrow the filters or draw ` +
               "trajectories of fewer patients.");
  }
  if (left) notes.push(`${plural(left, cfg.unit_word)} without ${cfg.align_events[s.view.align]} left out.`);
  return {count: text, notes: notes.join(" ")};
}
