/* cxrviz in the browser: the map's day range, playback, trajectories and hover highlight,
 * drawn from data the page already holds (no server request per frame).
 *
 * The rules are those of cxrviz/figures/layers.py (point_positions, trajectory_data,
 * visible_edges) and cxrviz/store.py (count_text, day_mask); the browser tests hold them
 * together. Dash loads this file from assets/ and calls the functions below as clientside
 * callbacks (cxrviz/pages/map/time.py, urlstate.py).
 */
(function () {
  "use strict";
  const DIM_OPACITY = 0.12, POINT_OPACITY = 0.85;
  const cache = new WeakMap();  // TIME_DATA object -> decoded typed arrays
  // Playback waits for the map to finish drawing a frame before it asks for the next one, so
  // frames are never skipped on a slow machine (a frame of 30,000 points takes ~0.6 s there).
  const frame = {pending: 0};

  function bytes(b64) {
    const s = atob(b64), out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  const f32 = (b64) => new Float32Array(bytes(b64).buffer);
  const i32 = (b64) => new Int32Array(bytes(b64).buffer);

  function decoded(data) {
    let d = cache.get(data);
    if (d) return d;
    d = {
      n: data.n, x: f32(data.x), y: f32(data.y), offset: f32(data.offset),
      patient: i32(data.patient), order: i32(data.order), patients: data.patients,
      events: {}, from: i32(data.edges.from), to: i32(data.edges.to),
      edgePatient: i32(data.edges.patient), survival: bytes(data.edges.survival),
      toState: bytes(data.edges.to_state), trace: data.trace, arrowAt: data.arrow_at,
      arrowStep: data.arrow_step, lo: data.day_lo, hi: data.day_hi,
      alignEvents: data.align_events, manyEdges: data.many_edges, nEdges: data.n_edges,
      defaultScope: data.default_scope,
    };
    for (const k in data.events) d.events[k] = f32(data.events[k]);
    // patient id -> its episodes (a MIMIC patient has one per admission; the collection one)
    d.index = new Map();
    d.patients.forEach((p, i) => {
      if (!d.index.has(p)) d.index.set(p, []);
      d.index.get(p).push(i);
    });
    cache.set(data, d);
    return d;
  }

  /* image id -> row, from the map's own customdata (the page holds the ids once). */
  function ensureIdPos(d, fig) {
    if (d.idPos) return;
    const gd = document.querySelector("#map .js-plotly-plot");
    const source = fig || (gd && gd.data ? {data: gd.data} : null);
    const cd = source && source.data[d.trace.points] && source.data[d.trace.points].customdata;
    if (Array.isArray(cd)) d.idPos = new Map(cd.map((id, i) => [id, i]));
  }

  function dayLabel(lo, hi) {
    if (lo !== null && hi !== null) return `days ${lo} to ${hi}`;
    if (lo !== null) return `days ${lo} and later`;
    if (hi !== null) return `days up to ${hi}`;
    return "";
  }

  function splitIds(text) {
    return String(text || "").split(",").map((t) => t.trim()).filter((t) => t.length);
  }

  /* Which episodes' trajectories to draw (a patient id names all its episodes): null means
   * every one shown. */
  function scopePatients(d, scope, ids, selectedId, selectedData) {
    if (scope === "all") return null;
    const set = new Set();
    if (scope === "selected" && selectedId && d.idPos && d.idPos.has(selectedId)) {
      set.add(d.patient[d.idPos.get(selectedId)]);
    } else if (scope === "selection" && selectedData && selectedData.points) {
      for (const p of selectedData.points) {
        if (p.curveNumber === d.trace.points) set.add(d.patient[p.pointIndex]);
      }
    } else if (scope === "ids") {
      for (const id of splitIds(ids)) for (const e of d.index.get(id) || []) set.add(e);
    }
    return set;
  }

  function timeQuery(d, align, lo, hi, playMode, width, scope, ids) {
    const q = new URLSearchParams();
    if (align && align !== "offset") q.set("align", align);
    if (lo !== null) q.set("day_from", lo);
    if (hi !== null) q.set("day_to", hi);
    if (playMode === "window" && width) q.set("window", width);
    if (scope && scope !== d.defaultScope) q.set("traj", scope);
    if (scope === "ids" && splitIds(ids).length) q.set("traj_ids", splitIds(ids).join(","));
    return q.toString();
  }

  function arrowAngle(dx, dy, step) {
    const a = Math.atan2(dx, dy) * 180 / Math.PI;
    return ((Math.round(a / step) * step) % 360 + 360) % 360;
  }

  /* A plotly array: a plain array, a typed array, or a {dtype, bdata} spec. */
  function arrayOf(v) {
    if (!v || Array.isArray(v) || ArrayBuffer.isView(v)) return v;
    if (v.bdata && v.dtype) {
      const b = bytes(v.bdata).buffer;
      const T = {f4: Float32Array, f8: Float64Array, i1: Int8Array, u1: Uint8Array,
                 i2: Int16Array, u2: Uint16Array, i4: Int32Array, u4: Uint32Array}[v.dtype];
      return T ? new T(b) : null;
    }
    return null;
  }

  function drawView(maskData, range, align, mode, selectedId, scope, ids, selectedData,
                    playMode, width, hiddenCats, data, fig) {
    const nu = window.dash_clientside.no_update;
    const gl = window.cxrvizMap;
    if (gl && gl.active && data) {  // the WebGL map draws the view and writes count and note
      const lo = range && range[0] > data.day_lo ? range[0] : null;
      const hi = range && range[1] < data.day_hi ? range[1] : null;
      gl.setState({range, align: align || "offset", mode, selected: selectedId || "", scope, ids,
                   hidden: hiddenCats || []});
      return [nu, nu, nu, timeQuery({defaultScope: data.default_scope}, align, lo, hi, playMode,
                                    width, scope, ids)];
    }
    if (!data || !fig || !fig.data) return [nu, nu, nu, nu];
    const ctx = window.dash_clientside.callback_context;
    const trig = (ctx.triggered || []).map((t) => t.prop_id);
    if (trig.length === 1 && trig[0] === "map.selectedData" && scope !== "selection") {
      return [nu, nu, nu, nu];
    }
    const d = decoded(data);
    ensureIdPos(d, fig);
    const mask = bytes(maskData.keep);
    const unknown = maskData.unknown ? bytes(maskData.unknown) : null;
    align = align || "offset";
    const lo = range && range[0] > d.lo ? range[0] : null;
    const hi = range && range[1] < d.hi ? range[1] : null;
    const timed = !(align === "offset" && lo === null && hi === null);
    const ev = d.events[align];
    const n = d.n, shown = new Uint8Array(n), inDays = new Uint8Array(n);
    const X = new Float32Array(n), Y = new Float32Array(n), O = new Float32Array(n);
    let selPatient = -1;
    if (selectedId && d.idPos && d.idPos.has(selectedId)) {
      selPatient = d.patient[d.idPos.get(selectedId)];
    }
    // legend: categories the user hid (their slot's index = the colour code of their points)
    const hidden = new Set(hiddenCats || []);
    const codes = hidden.size ? arrayOf(fig.data[d.trace.points].marker.color) : null;
    let count = 0, unknownShown = 0;
    const patientsShown = new Set(), leftOut = new Set();
    for (let i = 0; i < n; i++) {
      const p = d.patient[i];
      let ok = true;
      if (timed) {
        const day = d.offset[i] - ev[p];
        ok = Number.isFinite(day) && (lo === null || day >= lo) && (hi === null || day <= hi);
        if (mask[i] && !Number.isFinite(ev[p]) && align !== "offset") leftOut.add(p);
      }
      inDays[i] = ok ? 1 : 0;
      shown[i] = ok && mask[i] ? 1 : 0;
      if (shown[i]) {
        count++; patientsShown.add(d.patients[p]);  // patients, not episodes (as count_text)
        if (unknown && unknown[i]) unknownShown++;
      }
      const base = selPatient < 0 ? POINT_OPACITY : (p === selPatient ? 1.0 : 0.3);
      const off = !ok || (mode === "hide" && !mask[i]) || (codes && hidden.has(codes[i]));
      X[i] = off ? NaN : d.x[i];
      Y[i] = off ? NaN : d.y[i];
      O[i] = mode === "hide" ? base : (mask[i] ? base : DIM_OPACITY);
    }
    // trajectories: edges with both images shown, of the chosen patients
    const only = scopePatients(d, scope, ids, selectedId, selectedData);
    const paths = [[], [], []], heads = [[], [], []];
    const lastEdge = new Map();
    for (let e = 0; e < d.from.length; e++) {
      const a = d.from[e], b = d.to[e];
      if (!shown[a] || !shown[b]) continue;
      if (only !== null && !only.has(d.edgePatient[e])) continue;
      paths[d.survival[e]].push(e);
      if (timed) lastEdge.set(d.edgePatient[e], e);
      else heads[d.toState[e]].push(e);
    }
    if (timed) for (const e of lastEdge.values()) heads[d.toState[e]].push(e);
    const at = timed ? 1.0 : d.arrowAt;
    const out = fig.data.slice();
    d.trace.paths.forEach((t, k) => {
      const es = paths[k], px = new Float32Array(es.length * 3), py = new Float32Array(es.length * 3);
      es.forEach((e, j) => {
        px[3 * j] = d.x[d.from[e]]; px[3 * j + 1] = d.x[d.to[e]]; px[3 * j + 2] = NaN;
        py[3 * j] = d.y[d.from[e]]; py[3 * j + 1] = d.y[d.to[e]]; py[3 * j + 2] = NaN;
      });
      out[t] = Object.assign({}, fig.data[t], {x: px, y: py,
                                               opacity: selPatient < 0 ? 0.8 : 0.25});
    });
    d.trace.arrows.forEach((t, k) => {
      const es = heads[k], ax = new Float32Array(es.length), ay = new Float32Array(es.length);
      const angle = new Array(es.length);
      es.forEach((e, j) => {
        const x0 = d.x[d.from[e]], y0 = d.y[d.from[e]], dx = d.x[d.to[e]] - x0, dy = d.y[d.to[e]] - y0;
        ax[j] = x0 + at * dx; ay[j] = y0 + at * dy; angle[j] = arrowAngle(dx, dy, d.arrowStep);
      });
      out[t] = Object.assign({}, fig.data[t], {x: ax, y: ay, opacity: selPatient < 0 ? 1.0 : 0.3,
                                               marker: Object.assign({}, fig.data[t].marker,
                                                                     {angle: angle})});
    });
    const pt = d.trace.points;
    out[pt] = Object.assign({}, fig.data[pt], {x: X, y: Y, marker: Object.assign(
      {}, fig.data[pt].marker, {opacity: O})});
    let total = n, k = patientsShown.size;
    let text = `${count} of ${total} images, ${k} patient${k === 1 ? "" : "s"}`;
    const label = dayLabel(lo, hi);
    if (label) text += ` · ${label}`;
    if (unknownShown) {
      text += ` (${unknownShown} with ${maskData.unknown_label} unknown)`;
    }
    if (!count && maskData.emptied_by) {
      text += ` · the filter "${maskData.emptied_by}" left none`;
    }
    const notes = [];
    if (scope === "selected" && d.nEdges > d.manyEdges) {
      notes.push(`${d.nEdges.toLocaleString("en-US")} trajectory steps: drawn for the selected ` +
                 "patient only (choose 'all patients shown' to draw every one).");
    }
    if (leftOut.size) {
      notes.push(`${leftOut.size} patient${leftOut.size === 1 ? "" : "s"} without ` +
                 `${d.alignEvents[align]} left out.`);
    }
    frame.pending = performance.now();
    return [Object.assign({}, fig, {data: out}), text, notes.join(" "),
            timeQuery(d, align, lo, hi, playMode, width, scope, ids)];
  }

  /* Play / pause, and one frame per tick: grow paths up to a day, or slide a window. */
  function play(clicks, ticks, speed, range, mode, width, paused, data) {
    const nu = window.dash_clientside.no_update;
    const ctx = window.dash_clientside.callback_context;
    const trig = (ctx.triggered || []).map((t) => t.prop_id.split(".")[0]);
    const speeds = {slow: 1200, normal: 600, fast: 250};
    const lo = data.day_lo, hi = data.day_hi, w = Math.max(1, Number(width) || 7);
    if (trig.includes("play-speed")) return [nu, nu, nu, speeds[speed] || 600];
    if (trig.includes("play")) {
      if (!paused) return [nu, true, "▶ Play", nu];  // pause where it is
      // start: from the range's start (or day 0), one day per tick
      const start = range && range[0] > lo ? range[0] : 0;
      const first = mode === "window" ? [Math.max(lo, start - w + 1), start] : [lo, start];
      return [first, false, "❚❚ Pause", nu];
    }
    if (paused) return [nu, nu, nu, nu];
    if (frame.pending && performance.now() - frame.pending < 5000) return [nu, nu, nu, nu];
    const to = Math.min(hi, (range ? range[1] : 0) + 1);
    if (to >= hi) return [[mode === "window" ? hi - w : lo, hi], true, "▶ Play", nu];
    return [mode === "window" ? [Math.max(lo, to - w + 1), to] : [lo, to], nu, nu, nu];
  }

  /* Hovering a point draws its patient's path (dotted) in the hover trace, directly. */
  function hoverPath(hover, data) {
    const nu = window.dash_clientside.no_update;
    const gd = document.querySelector("#map .js-plotly-plot");
    if (!gd || !data || !window.Plotly || (window.cxrvizMap && window.cxrvizMap.active)) return nu;
    const d = decoded(data);
    const xs = [], ys = [];
    const p = hover && hover.points && hover.points[0];
    if (p && p.curveNumber === d.trace.points) {
      const patient = d.patient[p.pointIndex];
      if (!d.byPatient) {  // rows of each patient, in time order
        d.byPatient = new Map();
        for (const i of d.order) {
          const q = d.patient[i];
          if (!d.byPatient.has(q)) d.byPatient.set(q, []);
          d.byPatient.get(q).push(i);
        }
      }
      for (const i of d.byPatient.get(patient) || []) {
        if (Number.isFinite(d.offset[i])) { xs.push(d.x[i]); ys.push(d.y[i]); }
      }
      if (xs.length < 2) { xs.length = 0; ys.length = 0; }
    }
    window.Plotly.restyle(gd, {x: [xs], y: [ys]}, [d.trace.hover]);
    return nu;
  }

  /* The address bar: the server's query (filters, view, selection) + the time part. */
  function writeUrl(query, timeQuery) {
    const engine = new URLSearchParams(window.location.search).get("map");
    const parts = [String(query || "").replace(/^\?/, ""), String(timeQuery || ""),
                   engine === "webgl" || engine === "plotly" ? `map=${engine}` : ""]
      .filter((s) => s.length);
    const search = parts.length ? "?" + parts.join("&") : "";
    window.history.replaceState(null, "", window.location.pathname + search);
    return search;
  }

  setInterval(() => {  // pace playback by the map's own draws (pages come and go)
    const gd = document.querySelector("#map .js-plotly-plot");
    if (gd && gd.on && !gd.__cxrvizWatched) {
      gd.__cxrvizWatched = true;
      gd.on("plotly_afterplot", () => { frame.pending = 0; });
    }
  }, 300);

  /* The legend's colour entries hide or show their points (the map's view redraws them). */
  function legendToggle(clicks, hidden) {
    const ctx = window.dash_clientside.callback_context;
    const id = ctx.triggered_id;
    const set = new Set(hidden || []);
    if (id && typeof id === "object" && (ctx.triggered || []).some((t) => t.value)) {
      if (set.has(id.index)) set.delete(id.index); else set.add(id.index);
    }
    const items = ctx.inputs_list[0] || [];
    return [Array.from(set), items.map((it) => "legend-item" + (set.has(it.id.index) ? " off" : ""))];
  }

  document.addEventListener("keydown", (e) => {  // Esc clears the selection
    if (e.key !== "Escape") return;
    const target = e.target && e.target.tagName;
    if (target === "INPUT" || target === "TEXTAREA") return;
    const clear = document.getElementById("clear-selection");
    if (clear) clear.click();
  });

  function resetHidden(color) {
    return [];
  }

  /* Below 1280 px the detail panel sits under the map: a new selection scrolls the panel's top
   * into view, unless it already covers the middle of the window (beside the map, or read).
   * Only the panel's own scroll box moves, never the page under the header. */
  function revealDetail(selected) {
    const panel = document.querySelector(".detail");
    if (!selected || !panel) return;
    const r = panel.getBoundingClientRect(), middle = window.innerHeight / 2;
    if (r.top <= middle && r.bottom >= middle) return;
    let box = panel.parentElement;
    while (box && !(box.scrollHeight > box.clientHeight &&
                    /auto|scroll/.test(getComputedStyle(box).overflowY))) box = box.parentElement;
    if (box) box.scrollBy({top: r.top - box.getBoundingClientRect().top, behavior: "smooth"});
  }

  /* The WebGL map (assets/map/): the page query (its filters), colour, layers, opacity. */
  function mapView(query, color, show, opacity) {
    const gl = window.cxrvizMap;
    if (gl && gl.active) gl.setView({query, color, show, opacity});
    return window.dash_clientside.no_update;
  }

  /* Placed uploads, drawn by the WebGL map above everything. */
  function mapUploads(uploads) {
    const gl = window.cxrvizMap;
    if (gl && gl.active) gl.setUploads(uploads || []);
    return window.dash_clientside.no_update;
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    cxrviz: {drawView, play, hoverPath, writeUrl, resetHidden, legendToggle,
             revealDetail, mapView, mapUploads},
  });
})();
