// Box and lasso selection: the polygon (map coordinates) goes to the server, which counts and
// marks what it holds in numpy (cxrviz/map_data.py /select); never a list of ids.
const SVG = "http://www.w3.org/2000/svg";

/* A page query without the keys named (the config's non_filter_keys: view, selection, time). */
export function withoutKeys(query, keys) {
  const q = new URLSearchParams(String(query || "").replace(/^\?/, ""));
  for (const k of keys) q.delete(k);
  return q.toString();
}

/* What a box / lasso is taken over: the page's filters and the day range drawn now. */
export function selectionQuery(s) {
  const v = s.view, q = new URLSearchParams(withoutKeys(v.query, s.cfg.non_filter_keys));
  if (v.align && v.align !== "offset") q.set("align", v.align);
  if (s.range && s.range.lo !== null) q.set("day_from", s.range.lo);
  if (s.range && s.range.hi !== null) q.set("day_to", s.range.hi);
  return q.toString();
}

/* The Pan / Box select / Lasso buttons and the drawing overlay; `done(polygon)` with the
 * shape in map coordinates. */
export function lassoTool(el, deck, done) {
  const bar = document.createElement("div");
  bar.className = "map-tools";
  const overlay = document.createElementNS(SVG, "svg");
  overlay.setAttribute("class", "map-lasso");
  const shape = document.createElementNS(SVG, "polygon");
  overlay.appendChild(shape);
  overlay.style.display = "none";
  let mode = "pan", pts = [];
  const buttons = {};
  for (const [key, label] of [["pan", "Pan"], ["box", "Box select"], ["lasso", "Lasso"]]) {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = label; b.className = "map-tool"; b.dataset.tool = key;
    b.addEventListener("click", () => {
      mode = key;
      for (const [k, x] of Object.entries(buttons)) x.classList.toggle("on", k === key);
      overlay.style.display = key === "pan" ? "none" : "block";
    });
    buttons[key] = b;
    bar.appendChild(b);
  }
  buttons.pan.classList.add("on");
  el.appendChild(overlay);
  el.appendChild(bar);

  const local = (e) => {
    const r = overlay.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  const paint = () => shape.setAttribute("points", pts.map((p) => p.join(",")).join(" "));
  overlay.addEventListener("pointerdown", (e) => {
    overlay.setPointerCapture(e.pointerId);
    pts = [local(e)];
    paint();
  });
  overlay.addEventListener("pointermove", (e) => {
    if (!pts.length) return;
    const p = local(e);
    if (mode === "box") {
      const [x0, y0] = pts[0];
      pts = [[x0, y0], [p[0], y0], p, [x0, p[1]]];
    } else {
      pts.push(p);
    }
    paint();
  });
  overlay.addEventListener("pointerup", () => {
    const screen = pts;
    pts = [];
    paint();
    if (screen.length < 3) return;
    const vp = deck.getViewports()[0];
    const step = Math.max(1, Math.ceil(screen.length / 500));  // the server takes 512 vertices
    done(screen.filter((_, i) => i % step === 0).map((p) => vp.unproject(p).slice(0, 2)));
  });
}
