// Bundles src/main.ts (with Apache ECharts) into ../dist/assets and copies
// public/ into ../dist. No CDN: everything the app needs ends up in dist/.
import * as esbuild from "esbuild";
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";

const out = new URL("../dist/", import.meta.url).pathname;
rmSync(out + "assets", { recursive: true, force: true });
rmSync(out + "index.html", { force: true });
mkdirSync(out + "assets", { recursive: true });
writeFileSync(out + ".gitkeep", "");
cpSync(new URL("public/", import.meta.url).pathname, out, { recursive: true });
await esbuild.build({
  entryPoints: [new URL("src/main.ts", import.meta.url).pathname],
  bundle: true,
  minify: true,
  sourcemap: false,
  target: "es2020",
  format: "iife",
  outfile: out + "assets/app.js",
  loader: { ".geojson": "json" },
  legalComments: "linked",
  logLevel: "info",
});
