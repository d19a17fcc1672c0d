// What the map reads from the server (cxrviz/map_data.py): the config and the binary columns
// once, then masks, trajectory segments and per-point facts as the view changes.

const TYPED = {f4: Float32Array, f8: Float64Array, u1: Uint8Array, u2: Uint16Array,
               u4: Uint32Array, i4: Int32Array};
const BASE = "/api/map";

async function ok(response, what) {
  if (!response.ok) throw new Error(`${what}: HTTP ${response.status}`);
  return response;
}

export async function getJson(path) {
  return (await ok(await fetch(BASE + path, {credentials: "same-origin"}), path)).json();
}

async function getBuffer(path) {
  const r = await ok(await fetch(BASE + path, {credentials: "same-origin"}), path);
  return {buffer: await r.arrayBuffer(), headers: r.headers};
}

/* Typed-array views of one buffer, by the layout the config gives (no copies). */
export function columns(buffer, layout) {
  const out = {};
  for (const c of layout) out[c.name] = new TYPED[c.dtype](buffer, c.offset, c.length);
  return out;
}

let loading = null, configuring = null;

/* The map's config (cxrviz/map_columns.py: layout, rules, ids), once per page load. */
export function config() {
  if (!configuring) configuring = getJson("/config").catch((e) => { configuring = null; throw e; });
  return configuring;
}

/* Config, points and event days: fetched once per page load. */
export function loadAll() {
  if (!loading) loading = fetchAll().catch((e) => { loading = null; throw e; });
  return loading;
}

async function fetchAll() {
  const [cfg, points, events] = await Promise.all([config(), getBuffer("/points"),
                                                    getBuffer("/events")]);
  const cols = columns(points.buffer, cfg.points);
  // each image's patient, from its episode's (sent per episode, not per image)
  cols.patient = new Uint32Array(cols.episode.length);
  for (let i = 0; i < cols.episode.length; i++) cols.patient[i] = cols.episode_patient[cols.episode[i]];
  const all = new Float32Array(events.buffer);
  const ev = {};
  cfg.alignments.forEach((a, k) => {
    ev[a] = all.subarray(k * cfg.n_episodes, (k + 1) * cfg.n_episodes);
  });
  return {config, cols, events: ev};
}

export function colorCodes(column) {
  return getBuffer(`/colors/${encodeURIComponent(column)}`).then((r) => new Uint8Array(r.buffer));
}

/* 1 bit per point (little bit order) -> one byte per point. */
function unpack(bytes, n, start) {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (bytes[start + (i >> 3)] >> (i & 7)) & 1;
  return out;
}

/* base64 of a bitmask (map_data.bits) -> one byte per point. */
export function bitsOf(b64, n) {
  const raw = atob(b64), bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return unpack(bytes, n, 0);
}

export async function mask(query, n) {
  const {buffer, headers} = await getBuffer(`/mask?${query}`);
  const info = JSON.parse(headers.get("X-Cxrviz-Mask"));
  const bytes = new Uint8Array(buffer), size = Math.ceil(n / 8);
  return {keep: unpack(bytes, n, 0), unknown: info.unknown_label ? unpack(bytes, n, size) : null,
          info};
}

export async function edges(query) {
  const {buffer, headers} = await getBuffer(`/edges?${query}`);
  const info = JSON.parse(headers.get("X-Cxrviz-Edges"));
  const m = info.n, pad = (k) => k + ((4 - (k % 4)) % 4);
  return {
    n: m, leftOut: info.left_out, from: new Uint32Array(buffer, 0, m),
    to: new Uint32Array(buffer, 4 * m, m), survival: new Uint8Array(buffer, 8 * m, m),
    toState: new Uint8Array(buffer, 8 * m + pad(m), m),
    episode: new Uint32Array(buffer, 8 * m + 2 * pad(m), m),
  };
}

let contourLines = null;

/* The density's contour lines (map_columns.density_contours), once. */
export function contours() {
  if (!contourLines) contourLines = getJson("/contours").catch((e) => { contourLines = null; throw e; });
  return contourLines;
}

const facts = new Map();  // "i=3" / "id=x" -> Promise of the point's facts

export function point(key) {
  if (!facts.has(key)) {
    facts.set(key, getJson(`/point?${key}`).catch((e) => { facts.delete(key); throw e; }));
  }
  return facts.get(key);
}

let idList = null;

export function imageIds() {
  if (!idList) idList = getJson("/ids").then((ids) => ({ids, index: new Map(ids.map((d, i) => [d, i]))}));
  return idList;
}

export async function select(polygon, query) {
  const r = await fetch(`${BASE}/select?${query}`, {
    method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({polygon})});
  return (await ok(r, "select")).json();
}
