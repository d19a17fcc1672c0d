// cxrviz's map engine: one deck.gl (WebGL2) view of the map, fed binary columns once.
//
// The page (cxrviz/pages/map) renders <div class="map-gl" data-state="..."> when the WebGL map is
// on; this file finds it, loads the columns (data.js) and draws. Dash's callbacks reach it
// through window.cxrvizMap.setState / setView (assets/cxrviz.js, pages/map/callbacks.py), and it
// answers through dash_clientside.set_props: a click sets the map graph's clickData (the
// selection callbacks read it), and it writes the count and the time note.
// Test hook: window.cxrvizMap.shownIds(), .shownEdges(), .screenPosition(imageId).
import {Deck, OrthographicView} from "@deck.gl/core";
import {BitmapLayer, IconLayer, LineLayer, PathLayer, ScatterplotLayer, TextLayer} from "@deck.gl/layers";
import {DataFilterExtension} from "@deck.gl/extensions";
import * as data from "./data.js";
import * as V from "./view.js";
import {lassoTool} from "./lasso.js";
import {hookOf} from "./hook.js";

const s = {loaded: false, view: null, pending: {}, seq: {}};
const POINT_FILTER = new DataFilterExtension({filterSize: 2});
const EDGE_FILTER = new DataFilterExtension({filterSize: 3});
const ARROW_ICON = {arrow: {x: 0, y: 0, width: 64, height: 64, mask: true, anchorX: 32, anchorY: 32}};
let deck = null, root = null, tooltip = null, hoverTimer = 0;

function setProps(id, props) {
  const dc = window.dash_clientside;
  if (dc && dc.set_props) dc.set_props(id, props);
}

function filterQuery(query) {  // only the filter part of a page query decides the mask
  const q = new URLSearchParams(String(query || "").replace(/^\?/, ""));
  for (const k of ["image", "color", "show", "density", "opacity", "mode", "map"]) q.delete(k);
  return q.toString();
}

function edgeQuery() {
  const v = s.view, q = new URLSearchParams({traj: v.scope});
  if (v.scope === "ids" && v.ids) q.set("traj_ids", v.ids);
  if (v.scope === "selected" && v.selectedId) q.set("image", v.selectedId);
  if (v.scope === "selection" && s.selectionEpisodes) q.set("episodes", s.selectionEpisodes.join(","));
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

function pointData() {
  if (!s.pointData) {
    const n = s.cfg.n;
    if (!s.xy) {  // positions never change: interleaved once
      s.xy = new Float32Array(2 * n);
      for (let i = 0; i < n; i++) { s.xy[2 * i] = s.cols.x[i]; s.xy[2 * i + 1] = s.cols.y[i]; }
    }
    s.pointData = {length: n, attributes: {
      getPosition: {value: s.xy, size: 2},
      getFillColor: {value: s.pointAttrs.color, size: 4, normalized: true},
      getFilterValue: {value: s.pointAttrs.filter, size: 2}}};
  }
  return s.pointData;
}

function edgeData() {
  if (!s.edgeData) {
    const a = s.edgeAttrs, m = s.edges.n;
    s.edgeData = {
      lines: {length: m, attributes: {
        getSourcePosition: {value: a.src, size: 2}, getTargetPosition: {value: a.dst, size: 2},
        getColor: {value: a.color, size: 4, normalized: true},
        getFilterValue: {value: a.filter, size: 3}}},
      heads: {length: m, attributes: {
        getPosition: {value: a.head, size: 2}, getAngle: {value: a.angle, size: 1},
        getColor: {value: a.headColor, size: 4, normalized: true},
        getFilterValue: {value: a.filter, size: 3}}},
    };
  }
  return s.edgeData;
}

/* A patient's path through the images shown now: it grows with the day range and Play. */
function pathOf(p, color, width, id) {
  const path = p && p.path ? p.path.filter((i) => s.shown[i]) : [];
  if (path.length < 2) return null;
  return new PathLayer({id, data: [{path: path.map((i) => [s.cols.x[i], s.cols.y[i]])}],
                        getPath: (d) => d.path, getColor: color, getWidth: width,
                        widthUnits: "pixels", capRounded: true, jointRounded: true});
}

function layers() {
  const cfg = s.cfg, v = s.view, f = s.range.filter, out = [];
  if (v.show.has("density")) {
    out.push(new BitmapLayer({id: "density", image: cfg.density.url, bounds: cfg.density.bounds,
                              opacity: v.opacity, textureParameters: {minFilter: "linear",
                                                                      magFilter: "linear"}}));
  }
  if (v.show.has("rsna") && cfg.n_reference) {
    const n = cfg.n_reference, xy = s.referenceXY;
    out.push(new ScatterplotLayer({id: "reference", data: {length: n, attributes: {
      getPosition: {value: xy, size: 2}}}, getFillColor: cfg.reference_color, radiusUnits: "pixels",
      getRadius: 2}));
  }
  const traj = v.show.has("trajectories") && s.edges && s.edges.n;
  if (traj) {
    out.push(new LineLayer({id: "paths", data: edgeData().lines, widthUnits: "pixels", getWidth: 1.3,
                            extensions: [EDGE_FILTER], filterRange: [f, f, [0.5, 1.5]]}));
  }
  out.push(new ScatterplotLayer({
    id: "points", data: pointData(), radiusUnits: "pixels", getRadius: cfg.sizes.point / 2,
    stroked: true, lineWidthUnits: "pixels", getLineWidth: 0.4, getLineColor: [255, 255, 255, 200],
    pickable: true, extensions: [POINT_FILTER], filterRange: [f, [0.5, 1.5]]}));
  const hover = pathOf(s.hover, [68, 68, 68, 220], 2, "hover-path");
  if (hover) out.push(hover);
  const sel = pathOf(s.selected, [17, 17, 17, 255], 2.5, "selected-path");
  if (sel) out.push(sel);
  if (traj) {
    out.push(new IconLayer({id: "arrows", data: edgeData().heads, iconAtlas: "/api/map/arrow.png",
                            iconMapping: ARROW_ICON, getIcon: () => "arrow", sizeUnits: "pixels",
                            getSize: cfg.sizes.arrow + 2, billboard: true,
                            extensions: [EDGE_FILTER], filterRange: [f, f, [0.5, 1.5]]}));
  }
  if (s.uploads && s.uploads.length) out.push(...uploadLayers(cfg.uploads));
  if (s.selected) {
    const i = s.selected.index;
    out.push(new ScatterplotLayer({id: "selected", data: [[s.cols.x[i], s.cols.y[i]]],
                                   getPosition: (d) => d, radiusUnits: "pixels", getRadius: 9,
                                   filled: false, stroked: true, lineWidthUnits: "pixels",
                                   getLineWidth: 3, getLineColor: [17, 17, 17, 255]}));
  }
  return out;
}

/* Placed X-rays above everything, numbered; one unlike the map's images is a hollow ring. */
function uploadLayers(style) {
  const st = (u) => (u.out_of_distribution ? style.unlike : style.placed);
  return [
    new ScatterplotLayer({id: "uploads", data: s.uploads, getPosition: (u) => [u.x, u.y],
                          radiusUnits: "pixels", getRadius: (u) => st(u).size / 2,
                          getFillColor: (u) => (st(u).hollow ? [0, 0, 0, 0] : st(u).fill),
                          stroked: true, lineWidthUnits: "pixels", getLineWidth: 2.5,
                          getLineColor: (u) => st(u).line}),
    new TextLayer({id: "upload-numbers", data: s.uploads, getPosition: (u) => [u.x, u.y],
                   getText: (u) => String(u.n), getSize: 14, getColor: (u) => st(u).line,
                   getPixelOffset: (u) => [0, -st(u).size / 2 - 9], fontWeight: 700,
                   characterSet: "0123456789"}),
  ];
}

function setUploads(uploads) {
  s.uploads = uploads;
  if (s.loaded) draw();
}

function draw() {
  if (!deck) return;
  s.shown = V.shownMask(s);
  deck.setProps({layers: layers()});
  const t = V.texts(s, s.shown);
  if (t.count !== s.countText) { s.countText = t.count; setProps(s.cfg.ids.count, {children: t.count}); }
  if (t.notes !== s.notesText) { s.notesText = t.notes; setProps(s.cfg.ids.time_note, {children: t.notes}); }
  root.dataset.drawn = String(++s.frames);
}

/* --- hover and click: facts by index, debounced and cached --------------------------------- */
function showTooltip(info, facts) {
  tooltip.textContent = "";
  for (const line of [`patient ${facts.patient} · day ${facts.day === null ? "unknown" : facts.day}`,
                      `${facts.finding} · ${facts.view}`, `${facts.country} · state: ${facts.state}`]) {
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
    if (s.hover) { s.hover = null; deck.setProps({layers: layers()}); }
    return;
  }
  hoverTimer = setTimeout(() => data.point(`i=${info.index}`).then((p) => {
    showTooltip(info, p);
    if (!s.hover || s.hover.index !== p.index) { s.hover = p; deck.setProps({layers: layers()}); }
  }, () => {}), 60);
}

function onClick(info) {
  if (!info || info.index < 0 || !info.layer || info.layer.id !== "points") return;
  data.point(`i=${info.index}`).then((p) => {
    setProps(s.cfg.ids.map, {clickData: {points: [{customdata: p.image_id, pointIndex: p.index,
                                                   curveNumber: s.cfg.points_trace}]}});
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
          opacity: state.opacity, query: state.query || ""};
}

async function mount(el) {
  root = el;
  s.frames = 0;
  const initial = JSON.parse(el.dataset.state || "{}");
  s.view = viewFrom(initial);
  const loaded = await data.loadAll();
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
  lassoTool(el, deck, s, onSelection);
  const v = s.view;
  s.pending = {};
  await refresh({initial: true, mask: true, color: true, selected: true,
                 edges: true, align: true, points: true});
  s.loaded = true;
  const later = s.pending;
  s.pending = {};
  if (Object.keys(later).length) await refresh(later);
}

async function onSelection(summary) {
  s.selectionEpisodes = summary.episodes;
  s.selectionPatients = summary.patient_ids;
  const rows = (counts) => counts.map(([k, c]) => (
    {type: "Tr", namespace: "dash_html_components", props: {children: [
      {type: "Td", namespace: "dash_html_components", props: {children: k}},
      {type: "Td", namespace: "dash_html_components", props: {children: c}}]}}));
  const h = (tag, text) => ({type: tag, namespace: "dash_html_components", props: {children: text}});
  const blocks = summary.counts.map(([title, counts]) => ({
    type: "Div", namespace: "dash_html_components", props: {className: "summary-block", children: [
      h("H5", title), {type: "Table", namespace: "dash_html_components",
                       props: {className: "counts", children: rows(counts)}}]}}));
  setProps(s.cfg.ids.selection_summary, {children: [
    h("H4", `Selection: ${summary.images} image${summary.images === 1 ? "" : "s"}, ` +
            `${summary.patients} patient${summary.patients === 1 ? "" : "s"}`),
    {type: "Div", namespace: "dash_html_components", props: {className: "summary-grid", children: blocks}}]});
  if (s.view.scope === "selection") refresh({edges: true});
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
  return refresh(what);
}

window.cxrvizMap = {setState, setView, setUploads, ...hookOf(s, () => deck, () => root),
                    get active() { return root !== null && document.body.contains(root); },
                    get frames() { return s.frames || 0; },
                    get rendered() { return s.rendered || 0; },
                    get firstPaint() { return s.firstPaint || null; },
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
// Where the page will draw with WebGL, fetch the columns while Dash is still building the page.
if (new URLSearchParams(window.location.search).get("map") === "webgl" ||
    document.querySelector('meta[name="cxrviz-map"][content="webgl"]')) {
  data.loadAll().catch(() => {});
}
new MutationObserver(watch).observe(document.documentElement, {childList: true, subtree: true});
watch();
