// Bundles src/main.ts (with Apache ECharts) into ../dist/assets and copies
// public/ into ../dist. No CDN: everything the app needs ends up in dist/.
//
// The script and style sheet get content-hashed names (app-<hash>.js), which
// index.html is rewritten to name, so the server can let browsers keep them
// for a year (immutable); each asset is also written gzip- and
// brotli-compressed (.gz, .br) for the server to send to browsers that
// accept them (dashboards/server.go serveAsset).
import * as esbuild from "esbuild";
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const out = new URL("../dist/", import.meta.url).pathname;
rmSync(out + "assets", { recursive: true, force: true });
rmSync(out + "index.html", { force: true });
mkdirSync(out + "assets", { recursive: true });
writeFileSync(out + ".gitkeep", "");
cpSync(new URL("public/", import.meta.url).pathname, out, { recursive: true });
await esbuild.build({
  entryPoints: [new URL("src/main.ts", import.meta.url).pathname],
  bundle: true,
  minify: process.env.CITYBRAIN_NO_MINIFY ? false : true,
  sourcemap: false,
  target: "es2020",
  format: "iife",
  outfile: out + "assets/app.js",
  loader: { ".geojson": "json" },
  legalComments: "linked",
  logLevel: "info",
});

// Content-hashed names for what index.html loads.
let html = readFileSync(out + "index.html", "utf8");
for (const name of ["app.js", "app.css"]) {
  const body = readFileSync(out + "assets/" + name);
  const hash = createHash("sha256").update(body).digest("hex").slice(0, 12);
  const hashed = name.replace(/\.(\w+)$/, `-${hash}.$1`);
  renameSync(out + "assets/" + name, out + "assets/" + hashed);
  if (!html.includes(`/assets/${name}"`)) throw new Error(`index.html does not load /assets/${name}`);
  html = html.replace(`/assets/${name}"`, `/assets/${hashed}"`);
}
writeFileSync(out + "index.html", html);

// Precompressed copies.
let raw = 0, br = 0;
for (const name of readdirSync(out + "assets")) {
  if (!/\.(js|css|svg|txt)$/.test(name)) continue;
  const body = readFileSync(out + "assets/" + name);
  const b = brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } });
  writeFileSync(out + "assets/" + name + ".br", b);
  writeFileSync(out + "assets/" + name + ".gz", gzipSync(body, { level: 9 }));
  raw += body.length;
  br += b.length;
}
console.log(`assets: ${(raw / 1024).toFixed(0)} KB, ${(br / 1024).toFixed(0)} KB brotli`);
