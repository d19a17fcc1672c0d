// The map's deck.gl layers, bottom to top: density (image or contour lines), reference cloud,
// trajectory steps, points, hover path, selected path, arrowheads (above the paths, so that
// the selected patient's direction shows over its highlight), the selected image's ring, and
// placed uploads above everything. Built from the attributes view.js computes; the test hook
// reads what is recorded here in s.drawn (the same values the layers are given).
import {BitmapLayer, IconLayer, LineLayer, PathLayer, ScatterplotLayer, TextLayer} from "@deck.gl/layers";
import {DataFilterExtension} from "@deck.gl/extensions";
import * as V from "./view.js";

const POINT_FILTER = new DataFilterExtension({filterSize: 2});
const EDGE_FILTER = new DataFilterExtension({filterSize: 3});
const ARROW_ICON = {arrow: {x: 0, y: 0, width: 64, height: 64, mask: true, anchorX: 32, anchorY: 32}};
const HOVER_COLOR = [68, 68, 68, 220], SELECTED_COLOR = [17, 17, 17, 255];

function pointData(s) {
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

function edgeData(s) {
  if (!s.edgeData) {
    const a = s.edgeAttrs;
    s.edgeData = {length: s.edges.n, attributes: {
      getSourcePosition: {value: a.src, size: 2}, getTargetPosition: {value: a.dst, size: 2},
      getColor: {value: a.color, size: 4, normalized: true},
      getFilterValue: {value: a.filter, size: 3}}};
  }
  return s.edgeData;
}

/* Arrowheads as binary columns: at `at` along each [from, to] point pair, turned its way. */
function headData(s, pairs, at, colorOf) {
  const k = pairs.length, pos = new Float32Array(2 * k), angle = new Float32Array(k);
  const color = new Uint8Array(4 * k), {x, y} = s.cols;
  pairs.forEach(([a, b], j) => {
    const dx = x[b] - x[a], dy = y[b] - y[a];
    pos[2 * j] = x[a] + at * dx; pos[2 * j + 1] = y[a] + at * dy;
    angle[j] = Math.atan2(dy, dx) * 180 / Math.PI;
    color.set(colorOf(j), 4 * j);
  });
  return {length: k, attributes: {getPosition: {value: pos, size: 2},
                                  getAngle: {value: angle, size: 1},
                                  getColor: {value: color, size: 4, normalized: true}}};
}

/* Per draw (a day-range frame included): which steps carry an arrowhead, by the config's rule,
 * for the trajectories and for the selected patient's path. */
export function arrowheads(s) {
  const out = {trajectories: null, selected: null, pairs: []};
  const e = s.edges, heads = V.edgeHeads(s, s.shown);
  if (heads.steps.length) {
    const pairs = heads.steps.map((j) => [e.from[j], e.to[j]]), hc = s.edgeAttrs.headColor;
    out.trajectories = headData(s, pairs, heads.at, (j) => hc.subarray(4 * heads.steps[j],
                                                                        4 * heads.steps[j] + 4));
    out.pairs.push(...pairs);
  }
  const path = V.shownPath(s, s.selected);
  if (path.length > 1) {
    const own = V.arrowRule(s, path.length - 1, (k) => s.cols.episode[path[k]], () => true);
    const pairs = own.steps.map((k) => [path[k], path[k + 1]]);
    out.selected = headData(s, pairs, own.at, () => SELECTED_COLOR);
    out.pairs.push(...pairs);
  }
  // a step of the selected path that is also a drawn trajectory step carries both: one segment
  s.drawn.arrowheads = [...new Map(out.pairs.map((p) => [p.join(","), p])).values()];
  return out;
}

function pathLayer(s, points, color, width, id) {
  if (points.length < 2) return null;
  return new PathLayer({id, data: [{path: points.map((i) => [s.cols.x[i], s.cols.y[i]])}],
                        getPath: (d) => d.path, getColor: color, getWidth: width,
                        widthUnits: "pixels", capRounded: true, jointRounded: true});
}

function densityLayer(s) {
  const cfg = s.cfg, v = s.view;
  if (!v.show.has("density")) return [null, null];
  if (v.densityStyle === "contours") {
    if (!s.contours) return [null, null];  // loading: drawn once it arrives
    return [new PathLayer({id: "contours", data: s.contours.lines, getPath: (d) => d.path,
                           getColor: (d) => d.color, getWidth: cfg.sizes.contour,
                           widthUnits: "pixels", opacity: v.opacity}), "contours"];
  }
  return [new BitmapLayer({id: "density", image: cfg.density.url, bounds: cfg.density.bounds,
                           opacity: v.opacity, textureParameters: {minFilter: "linear",
                                                                   magFilter: "linear"}}),
          "heatmap"];
}

function arrowLayer(s, id, data, size) {
  return data && new IconLayer({id, data, iconAtlas: "/api/map/arrow.png", iconMapping: ARROW_ICON,
                                getIcon: () => "arrow", sizeUnits: "pixels", getSize: size,
                                billboard: true});
}

/* Placed X-rays above everything, numbered; one unlike the map's images is a hollow ring. */
function uploadLayers(s, style) {
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

/* Every layer of the view now; `heads` from arrowheads(s) (recomputed per draw, not per hover). */
export function layers(s, heads) {
  const cfg = s.cfg, v = s.view, f = s.range.filter, out = [];
  const [density, style] = densityLayer(s);
  s.drawn.density = style;
  if (density) out.push(density);
  if (v.show.has("rsna") && cfg.n_reference) {
    out.push(new ScatterplotLayer({id: "reference", data: {length: cfg.n_reference, attributes: {
      getPosition: {value: s.referenceXY, size: 2}}}, getFillColor: cfg.reference_color,
      radiusUnits: "pixels", getRadius: 2}));
  }
  if (v.show.has("trajectories") && s.edges && s.edges.n) {
    out.push(new LineLayer({id: "paths", data: edgeData(s), widthUnits: "pixels", getWidth: 1.3,
                            extensions: [EDGE_FILTER], filterRange: [f, f, [0.5, 1.5]]}));
  }
  out.push(new ScatterplotLayer({
    id: "points", data: pointData(s), radiusUnits: "pixels", getRadius: cfg.sizes.point / 2,
    stroked: true, lineWidthUnits: "pixels", getLineWidth: 0.4, getLineColor: [255, 255, 255, 200],
    pickable: true, extensions: [POINT_FILTER], filterRange: [f, [0.5, 1.5]]}));
  const hover = V.shownPath(s, s.hover), selected = V.shownPath(s, s.selected);
  s.drawn.hoverPath = hover.length > 1 ? hover : [];
  s.drawn.selectedPath = selected.length > 1 ? selected : [];
  for (const layer of [pathLayer(s, hover, HOVER_COLOR, 2, "hover-path"),
                       pathLayer(s, selected, SELECTED_COLOR, 2.5, "selected-path"),
                       arrowLayer(s, "arrows", heads.trajectories, cfg.sizes.arrow + 2),
                       arrowLayer(s, "selected-arrows", heads.selected, cfg.sizes.arrow + 4)]) {
    if (layer) out.push(layer);
  }
  if (s.selected) {
    const i = s.selected.index;
    out.push(new ScatterplotLayer({id: "selected", data: [[s.cols.x[i], s.cols.y[i]]],
                                   getPosition: (d) => d, radiusUnits: "pixels", getRadius: 9,
                                   filled: false, stroked: true, lineWidthUnits: "pixels",
                                   getLineWidth: 3, getLineColor: SELECTED_COLOR}));
  }
  if (s.uploads && s.uploads.length) out.push(...uploadLayers(s, cfg.uploads));
  s.drawn.layers = out.map((layer) => layer.id);  // bottom to top, as deck.gl draws them
  return out;
}
