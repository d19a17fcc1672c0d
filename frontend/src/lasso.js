// Box and lasso selection: the polygon (map coordinates) goes to the server, which counts what
// it holds in numpy (cxrviz/map_data.py /select); never a list of ids.
import * as data from "./data.js";

const SVG = "http://www.w3.org/2000/svg";

function selectionQuery(s) {
  const v = s.view, q = new URLSearchParams(String(v.query || "").replace(/^\?/, ""));
  for (const k of ["image", "color", "show", "density", "opacity", "mode", "map"]) q.delete(k);
  if (v.align && v.align !== "offset") q.set("align", v.align);
  if (s.range && s.range.lo !== null) q.set("day_from", s.range.lo);
  if (s.range && s.range.hi !== null) q.set("day_to", s.range.hi);
  return q.toString();
}

export function lassoTool(el, deck, s, done) {
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
    const polygon = screen.filter((_, i) => i % step === 0).map((p) => vp.unproject(p).slice(0, 2));
    data.select(polygon, selectionQuery(s)).then(done, (e) => console.warn("map:", e.message));
  });
}
