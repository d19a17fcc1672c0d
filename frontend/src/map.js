// cxrviz's map engine: one deck.gl (WebGL2) view of the map, fed binary columns once.
//
// The page (cxrviz/pages/map) renders <div id="map" class="map map-gl" data-state="...">; this
// file finds it, loads the columns (data.js) and draws (layers.js). On a load of the map page,
// the page's HTML also holds a static shell of it (pages/map/shell.py) with the same element and
// state: the map is drawn there before Dash has started, and moves (canvas, tools, tooltip) into
// Dash's element when that appears with the same state. Dash's callbacks reach it
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

const s = {loaded: false, view: null, pending: {}, seq: {}, drawn: {}, clicks: 0, mounts: 0,
           inShell: false};
let deck = null, root = null, tooltip = null, hoverTimer = 0;

function setProps(id, props) {
  const dc = window.dash_clientside;
  if (s.inShell) return;  // Dash's page is not there yet; adopt() writes the texts then
  if (dc && dc.set_props) dc.set_props(id, props);
}

function filterQuery(query) {  // only the filter part of a page query decides the mask
  return withoutKeys(query, s.cfg ? s.cfg.non_filter_keys : []);
}

/* /edges' query for the view's trajectory scope. */
function edgeQuery() {
  const v = s.view, q = new URLSearchParams({traj: v.scope});
  if (v.scope === "ids" && v.ids) q.set("traj_ids", v.ids);
  if (v.scope === "selected" && v.selectedId) q.set("image", v.selectedId);
  if (v.scope === "selection" && s.selectionEpisodes) q.set("episodes", s.selectionEpisodes.join(","));
  return q.toString();
}

/* What the view needs from the server besides the columns, by kind (the view as it is now). */
const ask = {
  mask: () => data.mask(filterQuery(s.view.query), s.cfg.n),
  color: () => data.colorCodes(s.view.color),
  selected: () => (s.view.selectedId
    ? data.point(`id=${encodeURIComponent(s.view.selectedId)}`).catch(() => null)
    : Promise.resolve(null)),
  edges: () => data.edges(edgeQuery()),
};

/* --- what changed -> what is recomputed ---------------------------------------------------- */
async function refresh(what) {
  if (!s.loaded && !what.initial) {  // the first load draws the latest view; changes after it
    Object.assign(s.pending, what);
    return;
  }
  if (!what.initial && !Object.keys(what).length) {
    // nothing changed (Dash's callbacks at load repeat the first state): no redraw, which at
    // 10^6 points in software WebGL costs seconds; the frame asked for is on screen already
    // (playback paces itself by this count)
    s.rendered = (s.rendered || 0) + 1;
    return;
  }
  const v = s.view, jobs = [];
  // the first draw takes the answers mount() asked for while the columns loaded
  const first = (what.initial && s.first) || {};
  s.first = null;
  const get = (kind) => first[kind] || ask[kind]();
  // each kind of answer applies only if no later request of its kind was sent meanwhile
  const latest = (kind) => { const k = (s.seq[kind] || 0) + 1; s.seq[kind] = k; return () => s.seq[kind] === k; };
  if (what.mask) {
    const mine = latest("mask");
    jobs.push(get("mask").then((m) => {
      if (mine()) { s.keep = m.keep; s.unknown = m.unknown; s.maskInfo = m.info; }
    }));
  }
  if (what.color) {
    const mine = latest("color");
    jobs.push(get("color").then((c) => { if (mine()) s.codes = c; }));
  }
  if (what.selected) {
    const mine = latest("selected");
    jobs.push(get("selected").then((p) => { if (mine()) s.selected = p; }));
  }
  if (what.edges) {
    const mine = latest("edges");
    jobs.push(get("edges").then((e) => { if (mine()) s.edges = e; }));
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
  if (what.initial) s.timings.answers = performance.now();
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
  if (what.initial) s.timings.attributes = performance.now();
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
  if (!s.inShell) writeTexts();
  root.dataset.drawn = String(++s.frames);
}

function writeTexts() {  // the count and the time note, into Dash's page (none in the shell)
  const t = V.texts(s, s.shown);
  if (t.count !== s.countText) { s.countText = t.count; setProps(s.cfg.ids.count, {children: t.count}); }
  if (t.notes !== s.notesText) { s.notesText = t.notes; setProps(s.cfg.ids.time_note, {children: t.notes}); }
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

async function mount(el, inShell) {
  root = el;
  const mine = ++s.mounts;  // a later mount (another page's element) makes this one stale
  s.inShell = inShell;
  s.timings = {mount: performance.now(), inShell};  // page-load milestones (benchmarks read them)
  s.frames = 0;
  s.ready = false;
  Object.assign(s, {drawn: {}, hover: null, selection: null, marked: null, countText: null,
                    notesText: null, selectionEpisodes: null, selectionPatients: null});
  const initial = JSON.parse(el.dataset.state || "{}");
  s.view = viewFrom(initial);
  // config, points and event days asked at once; the view's mask, colours, selected image and
  // trajectory steps as soon as the config is in. The main thread stays free meanwhile: Blink
  // hands a fetch its body on it, and a deck made during the download (device, programs) kept
  // 10^6 points' columns from a warm cache for 0.5 s instead of 0.15 s
  const loading = data.loadAll();
  loading.catch(() => {});  // awaited below
  s.cfg = await data.config();
  if (mine !== s.mounts) return;
  s.first = Object.fromEntries(Object.entries(ask).map(([kind, make]) => [kind, make()]));
  for (const p of Object.values(s.first)) p.catch(() => {});  // refresh() reports a failure
  const loaded = await loading;
  if (mine !== s.mounts) return;
  s.timings.columns = performance.now();
  Object.assign(s, {cols: loaded.cols, events: loaded.events});
  el = root;  // Dash's element, if it took the shell's over meanwhile (adopt)
  deck = new Deck({
    parent: el, views: new OrthographicView({id: "map", flipY: false}),
    initialViewState: initialView(el), controller: {doubleClickZoom: false},
    layers: [], onHover, onClick, useDevicePixels: true,
    onAfterRender: () => {
      s.rendered = (s.rendered || 0) + 1;
      if (s.frames > 0 && !s.firstPaint) { s.firstPaint = performance.now(); startDash("first frame"); }
    },
    getCursor: ({isDragging, isHovering}) => (isDragging ? "grabbing" : isHovering ? "pointer" : "grab"),
    onError: cannotDraw,  // a map that cannot draw never holds the page
  });
  s.timings.deck = performance.now();
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
  lassoTool(el, deck, onLasso);
  s.pending = {};
  await refresh({initial: true, mask: true, color: true, selected: true,
                 edges: true, align: true, points: true});
  if (mine !== s.mounts) return;
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
  if (state.range !== undefined) {
    if (JSON.stringify(state.range) !== JSON.stringify(v.range)) what.range = true;
    v.range = state.range;
  }
  return refresh(what);
}

function setView(view) {
  if (!s.view) return;
  const v = s.view, what = {};
  if (view.query !== undefined && filterQuery(view.query) !== filterQuery(v.query)) what.mask = true;
  if (view.query !== undefined) v.query = view.query;
  if (view.color !== undefined && view.color !== v.color) { v.color = view.color; v.hidden = new Set(); what.color = true; }
  if (view.show !== undefined) {
    const show = new Set(view.show || []);
    if (show.size !== v.show.size || [...show].some((x) => !v.show.has(x))) what.style = true;
    v.show = show;
  }
  if (view.opacity !== undefined && view.opacity !== v.opacity) { v.opacity = view.opacity; what.style = true; }
  if (view.density_style !== undefined && (view.density_style || "heatmap") !== v.densityStyle) {
    v.densityStyle = view.density_style || "heatmap"; what.style = true;
  }
  return refresh(what);
}

window.cxrvizMap = {setState, setView, setUploads, setSelection, hover,
                    ...hookOf(s, () => deck, () => root),
                    get active() { return root !== null && document.body.contains(root); },
                    // drawn, in Dash's page (in the shell, a click could not reach Dash's stores)
                    get ready() {
                      return Boolean(s.ready) && !s.inShell && root !== null && document.body.contains(root);
                    },
                    get frames() { return s.frames || 0; },
                    get rendered() { return s.rendered || 0; },
                    get firstPaint() { return s.firstPaint || null; },
                    get timings() { return {...s.timings, firstPaint: s.firstPaint || null}; },
                    get adoption() { return s.adoption || null; },
                    // the same renderer, for benchmarks/browser.py's bare page
                    lib: {Deck, OrthographicView, ScatterplotLayer, DataFilterExtension}};

/* Dash's map element appeared with the state the shell's was drawn with: everything the map
 * put in the shell's element moves into it (listeners stay with their elements, the WebGL
 * context with its canvas); the shell goes. */
function adopt(el) {
  const box = (e) => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; };
  s.adoption = {shell: box(root), page: box(el)};  // for tests: the shell's map is the page's
  el.dataset.mounted = "1";
  while (root.firstChild) el.appendChild(root.firstChild);
  if (root.dataset.drawn) el.dataset.drawn = root.dataset.drawn;
  root = el;
  s.inShell = false;
  s.timings.adopted = performance.now();
  removeShell();
  if (s.loaded) writeTexts();  // the count and time note, which the shell could not take
}

/* The map page holds Dash's scripts until the map has drawn in its shell (assets/start/
 * dash-start.js); a map that cannot draw starts them too. */
function startDash(why) {
  if (window.cxrvizStartDash) window.cxrvizStartDash(why);
}

/* The map could not draw (no WebGL 2, a failed device): say so on the map, start Dash's page. */
function cannotDraw(e) {
  console.warn("map:", e && e.message);
  if (!s.firstPaint && root && !root.querySelector(".no-webgl")) {
    const note = document.createElement("div");
    note.className = "map-warning no-webgl";
    note.textContent = "The map could not be drawn" + (e && e.message ? ` (${e.message})` : "")
      + ": it needs WebGL 2. The rest of the page works without it.";
    root.appendChild(note);
  }
  startDash("map failed");
}

function removeShell() {
  const shell = document.querySelector(".map-shell");
  if (shell) shell.remove();
}

// The page comes and goes (Dash Pages): mount when the element appears; the shell's first.
function watch() {
  const shellEl = document.querySelector(".map-shell .map-gl");
  for (const el of document.querySelectorAll(".map-gl")) {
    if (el === shellEl || el === root || el.dataset.mounted) continue;
    if (s.inShell && root === shellEl && el.dataset.state === shellEl.dataset.state) {
      adopt(el);
      continue;
    }
    el.dataset.mounted = "1";
    removeShell();
    if (deck) { deck.finalize(); deck = null; }
    s.xy = null;
    s.loaded = false;
    mount(el, false).catch(cannotDraw);
  }
  if (shellEl && !shellEl.dataset.mounted && !root) {
    shellEl.dataset.mounted = "1";
    mount(shellEl, true).catch(cannotDraw);
  }
  // Dash rendered a page without a map (the shell was only ever for the map page)
  const content = document.getElementById("_pages_content");
  if (shellEl && content && content.childElementCount && !content.querySelector(".map-gl")) {
    removeShell();
  }
}
new MutationObserver(watch).observe(document.documentElement, {childList: true, subtree: true});
watch();
