import { api, setCSRF, HTTPError } from "./api";
import { h, clear } from "./dom";
import { t, getLang, setLang, val } from "./i18n";
import { state, loadConf, resetFilters, Me } from "./state";
import { disposeAll, whenChartsFinished, loadingCard } from "./charts";
import { filterBar } from "./filters";
import { cockpit, onLiveWarning, applyFreshness } from "./pages/cockpit";
import { mapPage } from "./pages/map";
import { riskPage, enterprisePage } from "./pages/risk";
import { crowdPage } from "./pages/crowd";
import { healthPage } from "./pages/health";
import { sqlPage } from "./pages/sql";
import { adminPage } from "./pages/admin";
import { extractsPage } from "./pages/extracts";
import { deptPage } from "./pages/dept";

const root = document.getElementById("app")!;
let main: HTMLElement;
let renderSeq = 0;

interface Route { page: string; args: string[]; }
function route(): Route {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  // A department's users land on their own page.
  return { page: parts[0] || (state.me?.role === "department" ? "dept" : "cockpit"), args: parts.slice(1) };
}

// The SQL console is there only when the SQL access service serves /api/sql.
const pages: { id: string; roles?: string[]; when?: () => boolean }[] = [
  { id: "cockpit" }, { id: "dept" }, { id: "map" }, { id: "risk" }, { id: "crowd" }, { id: "health" },
  { id: "sql", roles: ["admin", "analyst"], when: () => !!state.conf?.sql }, { id: "extracts", roles: ["admin", "department"] },
  { id: "admin", roles: ["admin"] },
];

/** 大屏 mode (a video wall): ?big=1 in the address, or the header's button (remembered). */
function isBig(): boolean { return document.documentElement.classList.contains("big"); }
function setBig(on: boolean) {
  document.documentElement.classList.toggle("big", on);
  try { localStorage.setItem("cb.big", on ? "1" : "0"); } catch { /* private mode */ }
}
{
  const q = new URLSearchParams(location.search).get("big");
  let on = q === "1";
  if (q === null) { try { on = localStorage.getItem("cb.big") === "1"; } catch { /* private mode */ } }
  document.documentElement.classList.toggle("big", on);
}

function shell() {
  clear(root);
  const me = state.me!;
  const nav = h("nav", null, ...pages.filter((p) => (!p.roles || p.roles.includes(me.role)) && (!p.when || p.when())).map((p) =>
    h("a", { href: "#/" + p.id, "data-nav": p.id }, t(p.id))));
  const langBtn = h("button", { class: "small", id: "lang", onclick: () => { setLang(getLang() === "zh" ? "en" : "zh"); shell(); render(); } }, getLang() === "zh" ? "English" : "中文");
  const big = h("button", { class: "small", id: "bigscreen", title: t("big_screen_hint"), onclick: () => { setBig(!isBig()); shell(); render(); } }, t(isBig() ? "normal_screen" : "big_screen"));
  const out = h("button", { class: "small", id: "logout", onclick: async () => { try { await api("/api/logout", { method: "POST" }); } catch { /* already out */ } state.me = null; es?.close(); location.replace("/"); } }, t("logout"));
  root.appendChild(h("header", { class: "top" }, h("h1", null, t("title")), nav,
    h("span", { class: "right" }, h("span", { id: "who" }, h("span", { "data-raw": "user" }, me.display_name || me.name), " · " + val(me.role)), big, langBtn, out)));
  root.appendChild(h("div", { id: "filters" }));
  main = h("main", { id: "page" });
  root.appendChild(main);
  root.appendChild(h("div", { class: "toast", id: "toast" }));
}

/** The loading state: the page's panels as placeholders, each saying it is loading. */
function skeleton(): HTMLElement {
  const spans = ["span8", "span4", "span6", "span6"];
  return h("div", { id: "loading", class: "grid", "aria-busy": "true" }, ...spans.map((s) => loadingCard(s)));
}

export async function render() {
  const seq = ++renderSeq;
  document.body.removeAttribute("data-rendered");
  disposeAll();
  const r = route();
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.getAttribute("data-nav") === (r.page === "enterprise" ? "risk" : r.page)));
  clear(main);
  const fb = document.getElementById("filters")!;
  clear(fb);
  const withFilters = ["cockpit", "dept", "map", "risk", "crowd"].includes(r.page);
  if (withFilters) fb.appendChild(filterBar(() => render()));
  const fns: Record<string, (el: HTMLElement, args: string[]) => Promise<void>> = {
    cockpit, map: mapPage, risk: riskPage, enterprise: enterprisePage, crowd: crowdPage, health: healthPage, sql: sqlPage, admin: adminPage,
    extracts: extractsPage, dept: deptPage,
  };
  const allowed = pages.find((p) => p.id === r.page);
  const fn = allowed && ((allowed.roles && !allowed.roles.includes(state.me!.role)) || (allowed.when && !allowed.when())) ? cockpit : fns[r.page] || cockpit;
  // The page is built in place (charts need their size), hidden behind the loading line.
  const loading = skeleton();
  const el = h("div", { "data-page": r.page });
  main.appendChild(loading);
  main.appendChild(el);
  try {
    await fn(el, r.args);
  } catch (e) {
    if (e instanceof HTTPError && e.status === 401) { state.me = null; loginPage(); return; }
    const msg = e instanceof HTTPError && e.status === 404 ? t("not_served") : String((e as Error).message || e);
    el.appendChild(h("p", { class: "error", id: "page-error" }, msg));
  }
  if (seq !== renderSeq) return;
  loading.remove();
  requestAnimationFrame(() => whenChartsFinished(() => { if (seq === renderSeq) {
    // Milliseconds since navigation start, read by make bench.
    document.body.setAttribute("data-rendered-ms", String(Math.round(performance.now())));
    document.body.setAttribute("data-rendered", r.page);
  } }));
}

function loginPage() {
  clear(root);
  const err = h("p", { class: "error", id: "login-error" });
  const user = h("input", { id: "login-user", autocomplete: "username", placeholder: t("user") }) as HTMLInputElement;
  const pw = h("input", { id: "login-password", type: "password", autocomplete: "current-password", placeholder: t("password") }) as HTMLInputElement;
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const res = await api<{ user: Me; csrf: string }>("/api/login", { body: { user: user.value, password: pw.value } });
      setCSRF(res.csrf);
      state.me = res.user;
      await start();
    } catch (x) { err.textContent = (x as Error).message; }
  };
  const form = h("form", { class: "card", onsubmit: submit }, h("h2", null, t("title")), user, pw,
    h("button", { type: "submit", id: "login-submit" }, t("login")), err,
    h("a", { onclick: () => { setLang(getLang() === "zh" ? "en" : "zh"); loginPage(); } }, getLang() === "zh" ? "English" : "中文"));
  root.appendChild(h("div", { class: "login" }, form));
  document.body.setAttribute("data-rendered", "login");
}

let es: EventSource | null = null;
function connectLive() {
  if (es) es.close();
  es = new EventSource("/api/dash/live");
  // How far behind the warnings are, every few seconds: the cockpit's banner follows without a reload.
  es.addEventListener("freshness", (ev) => {
    try { applyFreshness(JSON.parse((ev as MessageEvent).data)); } catch { /* a malformed event changes nothing */ }
  });
  es.addEventListener("warning", (ev) => {
    let w: Record<string, unknown>;
    try { w = JSON.parse((ev as MessageEvent).data); } catch { return; }
    onLiveWarning(w);
    const box = document.getElementById("toast");
    if (box) {
      const lv = String(w.level || "");
      const msg = h("div", { class: "t", "data-toast": String(w.warning_id || "") }, h("span", { class: "badge " + lv }, t(lv)), " ",
        t("new_warning") + "：", String((getLang() === "zh" ? w.message_zh : w.message_en) || w.message_zh || w.subject_name_zh || ""));
      box.appendChild(msg);
      // At most three at once (a burst of transitions covered the page): the oldest go first.
      while (box.children.length > 3) box.firstElementChild!.remove();
      setTimeout(() => msg.remove(), 15000);
    }
  });
}

async function start() {
  await loadConf();
  resetFilters();
  shell();
  connectLive();
  await render();
}

window.addEventListener("hashchange", () => { if (state.me) render(); });
// A page left for another (a reload with another query, a link) may stay in
// the back-forward cache with its live stream open: six such streams took
// every connection the browser allows to the server and the next page
// never loaded. Close the stream on leaving; open it again on coming back.
window.addEventListener("pagehide", () => { if (es) { es.close(); es = null; } });
window.addEventListener("pageshow", (ev) => { if ((ev as PageTransitionEvent).persisted && state.me) connectLive(); });
setLang(getLang());
(async () => {
  try {
    const res = await api<{ user: Me | null; csrf: string }>("/api/me");
    if (!res.user) { loginPage(); return; }
    setCSRF(res.csrf || "");
    state.me = res.user;
    await start();
  } catch {
    loginPage();
  }
})();
