// Service worker of 西城监督检查 CityBrain Inspector (dashboards/inspector).
// It keeps the app shell — the page, its script, style, manifest and icon —
// so the app opens in a basement with no signal. The API (/api/…) is never
// cached or even seen here: visits come from the server or, offline, from
// the page's own copy of the last ones it loaded, and results wait in the
// page's outbox (localStorage), not here.
"use strict";

const CACHE = "citybrain-inspector-v1";
const SCOPE = new URL("./", self.location).pathname; // "/inspect/"
const SHELL = ["./", "app.js", "app.css", "manifest.webmanifest", "icon.svg"];
const NETWORK_WAIT = 4000; // ms before a slow network loses to the cache

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("citybrain-inspector-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith(SCOPE)) return;
  event.respondWith(fromNetworkOrCache(req, url));
});

// fromNetworkOrCache answers from the server when it answers in time, and
// keeps that copy; otherwise from the cache. A new version is seen on the
// next load, and the app still opens without a network.
async function fromNetworkOrCache(req, url) {
  const cache = await caches.open(CACHE);
  const key = url.pathname === SCOPE + "index.html" ? SCOPE : url.pathname;
  const network = fetch(req).then((res) => {
    if (res.ok && res.type === "basic") cache.put(key, res.clone());
    return res;
  });
  network.catch(() => {}); // answered from the cache: the failure is no news
  try {
    return await Promise.race([
      network,
      new Promise((_, reject) => setTimeout(() => reject(new Error("slow network")), NETWORK_WAIT)),
    ]);
  } catch (_) {
    const hit = await cache.match(key, { ignoreSearch: true });
    if (hit) return hit;
    if (req.mode === "navigate") {
      const shell = await cache.match(SCOPE);
      if (shell) return shell;
    }
    return network; // nothing cached: the network's own answer or error
  }
}
