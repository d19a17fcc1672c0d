// cxrviz's map engine: one deck.gl (WebGL2) view of the map, fed binary columns once.
//
// The page (cxrviz/pages/map) renders <div id="map" class="map map-gl" data-state="...">; this
// file finds it, loads the columns (data.js) and draws (layers.js). Dash's callbacks reach it
// through window.cxrvizMap.setState / setView / setSelection / setUploads (assets/cxrviz.js,
// pages/map/callbacks.py), and it answers through dash_clientside.set_props: a click sets the
// MAP_CLICK store ({image_id, n}), a box / lasso the MAP_SELECTION store ({polygon, query}),
// whose summary Python renders; it writes the count and the time note.
// Test hook (hook.js): window.cxrvizMap.shownIds(), .shownEdges(), .screenPosition(imageId), ...
import {Deck, OrthographicView} from "@deck.gl/core";
import {ScatterplotLayer} from "@deck.gl/layers";
import {DataFilterExtension} from "@deck.gl/extensions";
import * as data from "./data.js";
import * as V from "./view.js";
import {arrowheads, layers} from "./layers.js";
import {lassoTool, selectionQuery, withoutKeys} from "./lasso.js";
import {hookOf} from "./hook.js";

const s = {loaded: false, view: null, pending: {}, seq: {}, drawn: {}, clicks: 0};
let deck = null, root = null, tooltip = null, hoverTimer = 0;

function setProps(id, props) {
  const dc = window.dash_clientside;
  if (dc && dc.set_props) dc.set_props(id, props);
}

function filterQuery(query) {  // only the filter part of a page query decides the mask
  return withoutKeys(query, s.cfg ? s.cfg.non_filter_keys : []);
}

function edgeQuery() {
  return edgeQueryOf(s.view, s.selectionEpisodes);
}

/* /edges' query for a view's trajectory scope (the page's start asks it from the address). */
function edgeQueryOf(v, selectionEpisodes) {
  const q = new URLSearchParams({traj: v.scope});
  if (v.scope === "ids" && v.ids) q.set("traj_ids", v.ids);
  if (v.scope === "selected" && v.selectedId) q.set("image", v.selectedId);
  if (v.scope === "selection" && selectionEpisodes) q.set("episodes", selectionEpisodes.join(","));
  return q.toString();
}

/* --- what changed -> what is recomputed ---------------------------------------------------- */
async function refresh(what) {
  if (!s.loaded && !what.initial) {  // the first load draws the latest view; changes after it
    Object.assign(s.pending, what);
    return;
  }
  const v = s.view, jobs = [];
  // each kind of answer applies only if no later request of its kind was sent meanwhile
  const latest = (kind) => { const k = (s.seq[kind] || 0) + 1; s.seq[kind] = k; return () => s.seq[kind] === k; };
  if (what.mask) {
    const mine = latest("mask");
    jobs.push(data.mask(filterQuery(v.query), s.cfg.n).then((m) => {
      if (mine()) { s.keep = m.keep; s.unknown = m.unknown; s.maskInfo = m.info; }
    }));
  }
  if (what.color) {
    const mine = latest("color");
    jobs.push(data.colorCodes(v.color).then((c) => { if (mine()) s.codes = c; }));
  }
  if (what.selected) {
    const mine = latest("selected"), id = v.selectedId;
    jobs.push((id ? data.point(`id=${encodeURIComponent(id)}`).catch(() => null)
                  : Promise.resolve(null)).then((p) => { if (mine()) s.selected = p; }));
  }
  if (what.edges) {
    const mine = latest("edges");
    jobs.push(data.edges(edgeQuery()).then((e) => { if (mine()) s.edges = e; }));
  }
  if (v.show.has("density") && v.densityStyle === "contours" && !s.contours) {
    jobs.push(data.contours().then((c) => { s.contours = c; }));
  }
  try {
    await Promise.all(jobs);
  } catch (e) {
    console.warn("map:", e.message);  // keep drawing what is loaded
    if (!s.keep || !s.codes) return;
  }
  if (!s.days) what.align = true;
  if (what.align) s.days = V.alignedDays(s.cols, s.events, v.align);
  s.range = V.dayRange(s.cfg, v.range, v.align);
  if (what.mask || what.color || what.selected || what.points || what.align) {
    s.pointAttrs = V.pointAttributes(s);
    s.pointData = null;
  }
  if (s.edges && (what.mask || what.edges || what.selected || what.points || what.align)) {
    s.edgeAttrs = V.edgeAttributes(s);
    s.edgeData = null;
  }
  draw();
}

function setUploads(uploads) {
  s.uploads = uploads;
  if (s.loaded) draw();
}

function draw() {
  if (!deck) return;
  s.shown = V.shownMask(s);
  s.heads = arrowheads(s);
  deck.setProps({layers: layers(s, s.heads)});
  const t = V.texts(s, s.shown);
  if (t.count !== s.countText) { s.countText = t.count; setProps(s.cfg.ids.count, {children: t.count}); }
  if (t.notes !== s.notesText) { s.notesText = t.notes; setProps(s.cfg.ids.time_note, {children: t.notes}); }
  root.dataset.drawn = String(++s.frames);
}

/* --- hover and click: facts by index, debounced and cached --------------------------------- */
function showTooltip(info, facts) {
  tooltip.textContent = "";
  for (const line of facts.hover) {  // the artifact's own fields (cxrviz/fields.py)
    const div = document.createElement("div");
    div.textContent = line;  // data as text, never as HTML
    tooltip.appendChild(div);
  }
  tooltip.style.left = `${info.x + 12}px`;
  tooltip.style.top = `${info.y + 12}px`;
  tooltip.hidden = false;
}

function onHover(info) {
  clearTimeout(hoverTimer);
  if (!info || info.index < 0 || !info.layer || info.layer.id !== "points") {
    tooltip.hidden = true;
    if (s.hover) { s.hover = null; redrawLayers(); }
    return;
  }
  hoverTimer = setTimeout(() => data.point(`i=${info.index}`).then((p) => {
    showTooltip(info, p);
    if (!s.hover || s.hover.index !== p.index) { s.hover = p; redrawLayers(); }
  }, () => {}), 60);
}

function redrawLayers() {  // a hover: the same view, another hover path
  if (deck && s.heads) deck.setProps({layers: layers(s, s.heads)});
}

/* For tests: the point's hover as the mouse would show it (tooltip and path). */
async function hover(imageId) {
  const {index} = await data.imageIds();
  const i = index.get(imageId);
  if (i === undefined || !s.shown[i]) return null;
  const p = await data.point(`i=${i}`);
  const [x, y] = deck.getViewports()[0].project([s.cols.x[i], s.cols.y[i]]);
  showTooltip({x, y}, p);
  s.hover = p;
  redrawLayers();
  return p.image_id;
}

function onClick(info) {
  if (!info || info.index < 0 || !info.layer || info.layer.id !== "points") return;
  const n = ++s.clicks;  // counted, so that the same point clicked twice fires again
  data.point(`i=${info.index}`).then((p) => {
    setProps(s.cfg.ids.map_click, {data: {image_id: p.image_id, n}});
  });
}

/* --- the map's start --------------------------------------------------------------------- */
function initialView(el) {
  const r = s.cfg.ranges, w = el.clientWidth || 800, h = el.clientHeight || 600;
  const zoom = Math.log2(Math.min(w / (r.x[1] - r.x[0]), h / (r.y[1] - r.y[0])));
  return {target: [(r.x[0] + r.x[1]) / 2, (r.y[0] + r.y[1]) / 2, 0], zoom};
}

function viewFrom(state) {
  return {range: state.range, align: state.align || "offset", mode: state.mode || "dim",
          selectedId: state.selected || "", scope: state.scope, ids: state.ids || "",
          hidden: new Set(state.hidden || []), color: state.color, show: new Set(state.show || []),
          opacity: state.opacity, query: state.query || "",
          densityStyle: state.density_style || "heatmap"};
}

async function mount(el) {
  root = el;
  s.timings = {mount: performance.now()};  // page-load milestones (benchmarks read them)
  s.frames = 0;
  s.ready = false;
  Object.assign(s, {drawn: {}, hover: null, selection: null, marked: null,
                    selectionEpisodes: null, selectionPatients: null});
  const initial = JSON.parse(el.dataset.state || "{}");
  s.view = viewFrom(initial);
  const loaded = await data.loadAll();
  s.timings.columns = performance.now();
  Object.assign(s, {cfg: loaded.config, cols: loaded.cols, events: loaded.events});
  const rx = s.cols.reference_x, ry = s.cols.reference_y;
  s.referenceXY = new Float32Array(2 * rx.length);
  for (let i = 0; i < rx.length; i++) { s.referenceXY[2 * i] = rx[i]; s.referenceXY[2 * i + 1] = ry[i]; }
  tooltip = document.createElement("div");
  tooltip.className = "map-tooltip"; tooltip.hidden = true;
  el.appendChild(tooltip);
  if (s.cfg.warning) {
    const warn = document.createElement("div");
    warn.className = "map-warning"; warn.textContent = `⚠ ${s.cfg.warning}`;
    el.appendChild(warn);
  }
  deck = new Deck({
    parent: el, views: new OrthographicView({id: "map", flipY: false}),
    initialViewState: initialView(el), controller: {doubleClickZoom: false},
    layers: [], onHover, onClick, useDevicePixels: true,
    onAfterRender: () => {
      s.rendered = (s.rendered || 0) + 1;
      if (s.frames > 0 && !s.firstPaint) s.firstPaint = performance.now();
    },
    getCursor: ({isDragging, isHovering}) => (isDragging ? "grabbing" : isHovering ? "pointer" : "grab"),
    onError: (e) => console.warn("map:", e && e.message),
  });
  lassoTool(el, deck, onLasso);
  const v = s.view;
  s.pending = {};
  s.timings.deck = performance.now();
  await refresh({initial: true, mask: true, color: true, selected: true,
                 edges: true, align: true, points: true});
  s.timings.drawn = performance.now();
  s.loaded = true;
  const later = s.pending;
  s.pending = {};
  if (Object.keys(later).length) await refresh(later);
  s.ready = s.frames > 0;
}

/* --- box and lasso: the server counts and marks; Python renders the summary ------------ */
function sameSelection(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

async function select(selection, tell) {
  s.selection = selection;
  let got;
  try {
    got = await data.select(selection.polygon, selection.query);
  } catch (e) {
    console.warn("map:", e.message);
    return;
  }
  if (s.selection !== selection) return;  // cleared or replaced meanwhile
  s.marked = data.bitsOf(got.marked, s.cfg.n);
  s.selectionEpisodes = got.episodes;
  s.selectionPatients = got.patient_ids;
  if (tell) setProps(s.cfg.ids.map_selection, {data: selection});
  await refresh({points: true, edges: s.view.scope === "selection"});
}

function onLasso(polygon) {
  return select({polygon, query: selectionQuery(s)}, true);
}

/* MAP_SELECTION changed (Clear, Esc, or the map itself): null clears the marks and the
 * selection's trajectories; what the map already holds changes nothing. */
function setSelection(selection) {
  if (!s.view) return;
  if (selection && sameSelection(selection, s.selection)) return;
  if (selection) return select(selection, false);
  if (!s.selection && !s.marked) return;
  s.selection = null;
  s.marked = null;
  s.selectionEpisodes = null;
  s.selectionPatients = null;
  return refresh({points: true, edges: s.view.scope === "selection"});
}

/* --- what Dash calls ------------------------------------------------------------------------ */
function setState(state) {
  if (!s.view) return;
  const v = s.view, what = {};
  if (state.align !== undefined && (state.align || "offset") !== v.align) { v.align = state.align || "offset"; what.align = true; }
  if (state.mode !== undefined && state.mode !== v.mode) { v.mode = state.mode; what.points = true; }
  if (state.selected !== undefined && (state.selected || "") !== v.selectedId) {
    v.selectedId = state.selected || ""; what.selected = true;
    if (v.scope === "selected") what.edges = true;
  }
  if (state.scope !== undefined && state.scope !== v.scope) { v.scope = state.scope; what.edges = true; }
  if (state.ids !== undefined && (state.ids || "") !== v.ids) {
    v.ids = state.ids || ""; if (v.scope === "ids") what.edges = true;
  }
  if (state.hidden !== undefined) {
    const h = new Set(state.hidden || []);
    if (h.size !== v.hidden.size || [...h].some((x) => !v.hidden.has(x))) { v.hidden = h; what.points = true; }
  }
  if (state.range !== undefined) v.range = state.range;
  return refresh(what);
}

function setView(view) {
  if (!s.view) return;
  const v = s.view, what = {};
  if (view.query !== undefined && filterQuery(view.query) !== filterQuery(v.query)) what.mask = true;
  if (view.query !== undefined) v.query = view.query;
  if (view.color !== undefined && view.color !== v.color) { v.color = view.color; v.hidden = new Set(); what.color = true; }
  if (view.show !== undefined) v.show = new Set(view.show || []);
  if (view.opacity !== undefined) v.opacity = view.opacity;
  if (view.density_style !== undefined) v.densityStyle = view.density_style || "heatmap";
  return refresh(what);
}

window.cxrvizMap = {setState, setView, setUploads, setSelection, hover,
                    ...hookOf(s, () => deck, () => root),
                    get active() { return root !== null && document.body.contains(root); },
                    get ready() { return Boolean(s.ready) && root !== null && document.body.contains(root); },
                    get frames() { return s.frames || 0; },
                    get rendered() { return s.rendered || 0; },
                    get firstPaint() { return s.firstPaint || null; },
                    get timings() { return {...s.timings, firstPaint: s.firstPaint || null}; },
                    // the same renderer, for benchmarks/browser.py's bare page
                    lib: {Deck, OrthographicView, ScatterplotLayer, DataFilterExtension}};

// The page comes and goes (Dash Pages): mount when the element appears.
function watch() {
  const el = document.querySelector(".map-gl");
  if (el && el !== root && !el.dataset.mounted) {
    el.dataset.mounted = "1";
    if (deck) { deck.finalize(); deck = null; }
    s.xy = null;
    s.loaded = false;
    mount(el).catch((e) => console.warn("map:", e.message, e.stack));
  }
}
// On the map page (the app's root), fetch the columns, and the mask, colours, trajectory steps
// and selected image the address asks for, while Dash is still building the page: the same
// requests mount() then makes (one that differs is asked again; the page's state decides).
if (window.location.pathname.replace(/\/+$/, "") === "") {
  data.loadAll().then(({config}) => {
    const url = new URLSearchParams(window.location.search);
    const query = withoutKeys(window.location.search, config.non_filter_keys);
    data.startEarly(`mask?${query}`, data.mask(query, config.n));
    const color = url.get("color") || config.default_color;
    if (config.colors.columns[color]) data.startEarly(`colors/${color}`, data.colorCodes(color));
    const view = {scope: url.get("traj") || config.default_scope, ids: url.get("traj_ids") || "",
                  selectedId: url.get("image") || ""};
    const edges = edgeQueryOf(view, null);
    if (view.scope !== "selection") data.startEarly(`edges?${edges}`, data.edges(edges));
    if (view.selectedId) data.point(`id=${encodeURIComponent(view.selectedId)}`).catch(() => {});
  }).catch(() => {});
}
new MutationObserver(watch).observe(document.documentElement, {childList: true, subtree: true});
watch();
