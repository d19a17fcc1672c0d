/* cxrviz in the browser: hands the page's controls to the map (assets/map/cxrviz-map.js, a
 * WebGL view that draws, filters and plays on the GPU), paces playback by the map's own draws
 * and writes the server's query string into the address bar. No rule of the map is written
 * here: they come from Python (cxrviz/map_columns.py's config, pages/map/*.py). Dash loads
 * this file from assets/ and calls the functions below as clientside callbacks.
 */
(function () {
  "use strict";
  const nu = () => window.dash_clientside.no_update;
  const map = () => (window.cxrvizMap && window.cxrvizMap.active ? window.cxrvizMap : null);
  // Playback asks for the next frame only once the map has drawn the last one (a slow machine
  // skips no frame), or after 5 s.
  const frame = {rendered: -1, at: 0};

  /* The view's time part, selection and legend -> the map. */
  function mapState(range, align, mode, selectedId, scope, ids, hidden) {
    const gl = map();
    if (gl) {
      gl.setState({range, align: align || "offset", mode, selected: selectedId || "", scope, ids,
                   hidden: hidden || []});
    }
    return nu();
  }

  /* The URL's time part, by Python's table (pages/map/time.py url_spec, which its `pairs`
   * encodes by too): each key written unless its value is empty, the one it omits, or the
   * control it needs has another value. */
  function timeQuery(range, align, mode, width, scope, ids, data) {
    const w = Math.round(Number(width));
    const values = {
      align: align || "offset", scope,
      lo: range && range[0] > data.day_lo ? range[0] : null,
      hi: range && range[1] < data.day_hi ? range[1] : null,
      window: mode === "window" && w > 0 ? w : null,
      ids: String(ids || "").split(",").map((t) => t.trim()).filter((t) => t).join(","),
    };
    const q = new URLSearchParams();
    for (const spec of data.url) {
      const v = values[spec.field], when = spec.when;
      if (v === null || v === "" || v === spec.omit || (when && values[when[0]] !== when[1])) continue;
      q.set(spec.key, v);
    }
    return q.toString();
  }

  /* Play / pause, and one frame per tick through the range chosen when Play was pressed:
   * "grow" keeps its start and moves the end a day at a time (from day 0, or the start when
   * it is later, to the chosen end); "window" slides `width` days inside it. It stops at the
   * chosen end. A pause keeps the frame; Play then resumes unless the range was moved. */
  function play(clicks, ticks, speed, range, mode, width, stopped, data, run) {
    const ctx = window.dash_clientside.callback_context;
    const trig = (ctx.triggered || []).map((t) => t.prop_id.split(".")[0]);
    const speeds = data.speeds, lo = data.day_lo, hi = data.day_hi;
    const w = Math.max(1, Number(width) || 7);
    if (trig.includes("play-speed")) return [nu(), nu(), nu(), speeds[speed] || speeds.normal, nu()];
    const gl = map();
    const frameOf = (r, t) => (mode === "window" ? [Math.max(r.chosen[0], t - w + 1), t]
                                                 : [r.chosen[0], t]);
    const show = (r, t, more) => {
      frame.rendered = gl ? gl.rendered : -1;
      frame.at = performance.now();
      const f = frameOf(r, t);
      return [f, !more, more ? "❚❚ Pause" : "▶ Play", nu(), more ? {...r, t, frame: f} : null];
    };
    if (trig.includes("play")) {
      if (!stopped) return [nu(), true, "▶ Play", nu(), run];  // pause where it is
      const same = run && range && run.frame && run.frame[0] === range[0] && run.frame[1] === range[1];
      if (same && run.t < run.chosen[1]) return show(run, run.t + 1, run.t + 1 < run.chosen[1]);
      const chosen = [range ? range[0] : lo, range ? range[1] : hi];
      const first = Math.min(chosen[1], chosen[0] > lo ? chosen[0] + (mode === "window" ? w - 1 : 0)
                                                      : Math.max(chosen[0], 0));
      return show({chosen}, first, first < chosen[1]);
    }
    if (stopped || !run) return [nu(), nu(), nu(), nu(), nu()];
    if (gl && gl.rendered === frame.rendered && performance.now() - frame.at < 5000) {
      return [nu(), nu(), nu(), nu(), nu()];
    }
    const t = Math.min(run.chosen[1], run.t + 1);
    return show(run, t, t < run.chosen[1]);
  }

  /* The address bar: the server's query (urlstate.encode) and the time part (timeQuery). */
  function writeUrl(query, time) {
    const parts = [String(query || "").replace(/^\?/, ""), String(time || "")].filter((p) => p);
    const search = parts.length ? "?" + parts.join("&") : "";
    window.history.replaceState(null, "", window.location.pathname + search);
    return search;
  }

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

  /* The page query (its filters), colour, layers, density style and opacity -> the map. */
  function mapView(query, color, show, opacity, densityStyle) {
    const gl = map();
    if (gl) gl.setView({query, color, show, opacity, density_style: densityStyle});
    return nu();
  }

  /* A box / lasso selection set or cleared (Clear, Esc) -> the map's marks. */
  function mapSelection(selection) {
    const gl = map();
    if (gl && gl.setSelection) gl.setSelection(selection || null);
    return nu();
  }

  /* Placed uploads, drawn by the map above everything. */
  function mapUploads(uploads) {
    const gl = map();
    if (gl) gl.setUploads(uploads || []);
    return nu();
  }

  /* plotly.js and dcc's graph part (the meta tag cxrviz/app.py writes): for the detail panel's
   * charts, not the map's, so they load once the map has drawn in Dash's page (ready: Dash has
   * rendered its layout; 4.8 MB of plotly.js parsed earlier delayed Dash's start by seconds), or
   * 1.5 s after a page without a map has loaded. Skipped where dcc has already asked for them
   * (a chart shown at once). */
  function loadAfterPaint() {
    const meta = document.querySelector('meta[name="cxrviz-after-paint"]');
    if (!meta) return;
    const asked = [...document.scripts].map((el) => el.src);
    for (const src of meta.content.split(" ").filter(Boolean)) {
      const part = src.slice(src.lastIndexOf("/") + 1).replace(/\.(min\.)?js$/, "");
      if (asked.some((a) => a.includes(part)) || (part === "plotly" && window.Plotly)) continue;
      const el = document.createElement("script");
      el.src = src;
      el.async = false;  // in order: plotly.js before the graph part
      document.head.appendChild(el);
    }
  }
  const started = performance.now();
  (function waitForPaint() {
    const m = window.cxrvizMap, waited = performance.now() - started;
    const noMap = document.readyState === "complete" && !document.querySelector(".map-gl");
    if ((m && m.ready) || (noMap && waited > 1500) || waited > 10000) loadAfterPaint();
    else setTimeout(waitForPaint, 50);
  })();

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    cxrviz: {mapState, timeQuery, play, writeUrl, resetHidden, legendToggle, revealDetail,
             mapView, mapSelection, mapUploads},
  });
})();
