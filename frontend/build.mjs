// Builds the map engine (src/) into one browser bundle the app serves from assets/map/, with the
// licences of everything bundled and a record of what it was built from (build-info.json:
// sha256 of each source file, package.json and package-lock.json). tests/test_map_bundle.py
// compares that record with the files, and rebuilds and compares bytes where node is present.
//
//   node build.mjs [OUT_DIR]      (default ../assets/map)
import {createHash} from "node:crypto";
import {existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync} from "node:fs";
import {dirname, join, relative, resolve} from "node:path";
import {fileURLToPath} from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] || join(here, "..", "assets", "map"));
mkdirSync(out, {recursive: true});

const result = await esbuild.build({
  entryPoints: [join(here, "src", "map.js")],
  bundle: true, minify: !process.env.CXRVIZ_DEV, format: "iife", target: ["chrome100", "firefox100", "safari15"],
  outfile: join(out, "cxrviz-map.js"), legalComments: "none", metafile: true,
  logLevel: "warning", charset: "utf8",
});

// the licence of every package that ended up in the bundle
const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (!m) continue;
  const dir = join(here, input.slice(0, input.indexOf(m[0]) + m[0].length));
  if (!packages.has(m[1])) packages.set(m[1], dir);
}
let licences = "Licences of the packages bundled into cxrviz-map.js (built by frontend/build.mjs)\n";
for (const name of [...packages.keys()].sort()) {
  const dir = packages.get(name);
  const meta = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
  licences += `\n==== ${name} ${meta.version} (${meta.license || "see below"}) ====\n`;
  licences += file ? readFileSync(join(dir, file), "utf8") : "(no licence file in the package)\n";
}
writeFileSync(join(out, "LICENSES.txt"), licences);

// what the bundle was built from
const sha = (p) => createHash("sha256").update(readFileSync(p)).digest("hex");
const inputs = {};
const walk = (dir) => readdirSync(dir, {withFileTypes: true}).forEach((e) => {
  const p = join(dir, e.name);
  if (e.isDirectory()) walk(p); else inputs[relative(here, p)] = sha(p);
});
walk(join(here, "src"));
for (const f of ["package.json", "package-lock.json", "build.mjs"]) {
  if (existsSync(join(here, f))) inputs[f] = sha(join(here, f));
}
const sorted = Object.fromEntries(Object.entries(inputs).sort(([a], [b]) => a.localeCompare(b)));
writeFileSync(join(out, "build-info.json"), JSON.stringify({
  built_from: sorted, bundle_sha256: sha(join(out, "cxrviz-map.js")),
  packages: Object.fromEntries([...packages.keys()].sort().map((n) => [n, JSON.parse(
    readFileSync(join(packages.get(n), "package.json"), "utf8")).version])),
}, null, 2) + "\n");
