// 西城监督检查 CityBrain Inspector: the grid safety inspector's phone app of
// issue 25 (dashboards/inspector, docs/inspection.md). Plain ES2020, no
// framework, nothing from another origin. Every value from the server or
// from the inspector is put on the page as text (textContent /
// createTextNode), never as HTML.
//
// Talks to pipelines/inspection.API under /api/inspect/ — GET me, GET
// visits[?day=YYYY-MM-DD], POST results — and to the platform's login:
// POST /api/login → {user, csrf}; GET /api/me → {user, csrf} after a
// reload; POST /api/logout. The session is an HttpOnly cookie; the CSRF
// token is kept in memory only and sent as X-CSRF-Token on every POST.
//
// Results are never sent straight from the form: saving puts the result,
// with an id made here, in the outbox (localStorage), and the outbox is
// sent — now, when the phone is back online, when the app loads, and every
// 30 s. A result leaves the outbox when the server has it (201 accepted, or
// 200 duplicate: it had it already) or when the inspector discards it after
// the server refused it (400, its reason shown on the form). A network
// failure or a 5xx keeps it queued.
"use strict";

const API = "/api/inspect";
const CSRF_HEADER = "X-CSRF-Token"; // internal/auth.CSRFHeader
const CACHE_KEY = "citybrain.inspector.v1"; // {me, today, days: {day: {visits, note, at}}, sent}: opening offline
const OUTBOX_KEY = "citybrain.inspector.outbox.v1"; // [OutboxItem]: results not yet with the server
const RETRY_EVERY = 30000; // ms between attempts to send the outbox
const RETRY_FIRST = 2000; // ms before the first retry after a failure with the network up, doubling to RETRY_EVERY
const REQUEST_WAIT = 15000; // ms before an unanswered request counts as a network failure
const CACHE_DAYS = 7; // days of visits kept for opening offline
const TZ = "Asia/Shanghai";

const LEVELS = {
  red: ["红色", "Red"], orange: ["橙色", "Orange"], yellow: ["黄色", "Yellow"], blue: ["蓝色", "Blue"],
};
const REASONS = {
  mandatory_red: ["红色必检", "Red: every month"],
  mandatory_orange: ["橙色按季", "Orange: every quarter"],
  random: ["随机抽取", "Random draw"],
  weighted: ["风险加权", "Risk-weighted draw"],
};
const RESULTS = [["pass", "合格", "Pass"], ["rectify", "责令整改", "Rectify"], ["fail", "不合格", "Fail"]];
const HAZARD_LEVELS = [["general", "一般", "General", 30], ["major", "重大", "Major", 60]]; // default deadline: days after the inspection
const STATES = {
  todo: ["待检查", "To inspect"],
  queued: ["待发送", "Waiting to send"],
  rejected: ["需修改", "Refused: fix it"],
  done: ["✓ 已检查", "Done"],
};

const state = {
  me: null, // GET /api/inspect/me: {user, inspector_id, name, street_code}
  csrf: "",
  today: "", // the server's day (the visits answer without ?day)
  day: "", // the day shown
  visits: [], // that day's planned visits
  note: "", // the server's note on that day (no plan published yet)
  syncedAt: "", // when that day was loaded from the server
  missing: false, // offline, and that day is not on the phone
  sent: {}, // "YYYY-MM|enterprise_id" → inspected_at of a result sent from here (done before the API says so)
  outbox: [], // every user's unsent results on this phone (OutboxItem)
  kept: true, // the outbox is in localStorage (false: private mode or full)
  inflight: "", // id of the result being sent
  offline: false,
  view: "", // key of the view built in <main>
};

// ---- DOM helpers ---------------------------------------------------------

function append(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return el;
}

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  return append(el, kids);
}

/** Replaces el's children (arrays flattened, null and false left out). */
function fill(el, ...kids) {
  el.replaceChildren();
  return append(el, kids);
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return append(el, kids);
}

/** Chinese first, English after it in smaller type. */
function bi(zh, en) {
  return en ? [zh, " ", h("small", { class: "en" }, en)] : [zh];
}

const $ = (id) => document.getElementById(id);
const finite = (v) => typeof v === "number" && isFinite(v);

function setMain(view, ...nodes) {
  state.view = view;
  document.body.dataset.view = view.split(":")[0];
  fill($("main"), ...nodes);
  window.scrollTo(0, 0);
}

let toastTimer = 0;
function toast(zh, en) {
  const t = $("toast");
  fill(t, ...bi(zh, en));
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 2500);
}

// ---- days and times (Asia/Shanghai) ----------------------------------------

const dayParts = new Intl.DateTimeFormat("en-CA", { timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit" });
const clockFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: TZ, hour: "2-digit", minute: "2-digit", hour12: false });
const dayZh = new Intl.DateTimeFormat("zh-CN", { timeZone: "UTC", month: "long", day: "numeric", weekday: "short" });
const dayEn = new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", weekday: "short", day: "numeric", month: "short" });

/** The day (YYYY-MM-DD) of a moment in Shanghai. */
function dayOf(date) {
  const p = Object.fromEntries(dayParts.formatToParts(date).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day}`;
}

const isDay = (d) => typeof d === "string" && /^\d{4}-\d{2}-\d{2}$/.test(d);

function utcOf(day) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d));
}

function addDays(day, n) {
  const t = utcOf(day);
  t.setUTCDate(t.getUTCDate() + n);
  return t.toISOString().slice(0, 10);
}

function dayLabel(day) {
  const t = utcOf(day);
  return [dayZh.format(t), dayEn.format(t)];
}

function clock(iso) {
  try { return clockFmt.format(new Date(iso)); } catch (_) { return ""; }
}

// ---- API -----------------------------------------------------------------

class APIError extends Error {
  constructor(status, message, offline) {
    super(message);
    this.status = status;
    this.offline = Boolean(offline);
  }
}

/** A same-origin JSON call. A network failure, no answer in REQUEST_WAIT
 * or a gateway's 502/504 marks the app offline; an error answer throws its
 * {"error"} text. */
async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  if (method !== "GET" && state.csrf) headers[CSRF_HEADER] = state.csrf;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), REQUEST_WAIT);
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: "same-origin", cache: "no-store", signal: ctl.signal });
  } catch (_) {
    setOffline(true);
    throw new APIError(0, "无法连接服务器 / cannot reach the server", true);
  } finally {
    clearTimeout(timer);
  }
  const type = res.headers.get("Content-Type") || "";
  if (res.status === 502 || res.status === 504 || (res.status === 503 && !type.includes("json"))) {
    setOffline(true);
    throw new APIError(res.status, `无法连接服务器 / cannot reach the server (HTTP ${res.status})`, true);
  }
  if (navigator.onLine !== false) setOffline(false); // an answer that was on its way does not mean online
  let data = null;
  try { data = type.includes("json") ? await res.json() : await res.text(); } catch (_) { data = null; }
  if (!res.ok) {
    let msg = `HTTP ${res.status}`;
    if (data && typeof data === "object" && data.error) msg = String(data.error);
    else if (typeof data === "string" && data.trim()) msg = data.trim().slice(0, 300);
    throw new APIError(res.status, msg);
  }
  return data;
}

/** Fetches the session's CSRF token when it is not known (after a reload:
 * the token lives in memory only). Returns false when there is no session. */
async function ensureCSRF() {
  if (state.csrf) return true;
  try {
    const d = await api("/api/me");
    if (d && d.csrf) state.csrf = String(d.csrf);
    return Boolean(d && d.user);
  } catch (_) {
    return true; // unknown (offline): the POST will tell
  }
}

/** A POST. A 401 (expired session, or a stale CSRF token after the server
 * restarted) fetches the token again and retries once. */
async function post(path, body) {
  await ensureCSRF();
  try {
    return await api(path, { method: "POST", body });
  } catch (e) {
    if (e.status !== 401) throw e;
    const old = state.csrf;
    state.csrf = "";
    const session = await ensureCSRF();
    if (!session) {
      toLogin("登录已过期，请重新登录；未发送的结果仍保存在本机 / your session expired: log in again (unsent results stay on this phone)");
      throw e;
    }
    if (!state.csrf || state.csrf === old) throw e;
    return api(path, { method: "POST", body });
  }
}

// ---- the phone's copies: visits (cache) and unsent results (outbox) --------

function loadCache() {
  try {
    const c = JSON.parse(localStorage.getItem(CACHE_KEY) || "null");
    return c && typeof c === "object" ? c : null;
  } catch (_) { return null; }
}

function saveCache(day, d) {
  const c = loadCache();
  const same = c && c.me && state.me && c.me.user === state.me.user;
  const days = same && c.days && typeof c.days === "object" ? c.days : {};
  if (day) days[day] = { visits: d.visits, note: d.note || "", at: d.at };
  const keep = Object.keys(days).sort().reverse().slice(0, CACHE_DAYS);
  const out = { me: state.me, today: state.today, days: Object.fromEntries(keep.map((k) => [k, days[k]])), sent: state.sent };
  try { localStorage.setItem(CACHE_KEY, JSON.stringify(out)); } catch (_) { /* private mode or full: works online */ }
}

function clearCache() {
  try { localStorage.removeItem(CACHE_KEY); } catch (_) { /* nothing kept */ }
}

/** OutboxItem: {id, user, result: Result, visit: {day, month, visit_no, name},
 * saved_at, status: "queued" | "rejected", error} */
function loadOutbox() {
  try {
    const v = JSON.parse(localStorage.getItem(OUTBOX_KEY) || "[]");
    state.outbox = Array.isArray(v) ? v.filter((i) => i && i.id && i.result) : [];
  } catch (_) { /* unreadable: keep what is in memory */ }
}

function saveOutbox() {
  try {
    localStorage.setItem(OUTBOX_KEY, JSON.stringify(state.outbox));
    state.kept = true;
  } catch (_) {
    state.kept = false; // kept in memory only: said on the banner
  }
  paintOutbox();
}

const mine = () => state.outbox.filter((i) => state.me && i.user === state.me.user);

/** The unsent result of a visit of this user, if any. */
function itemOf(v) {
  return mine().find((i) => i.visit && i.visit.month === v.month && i.visit.visit_no === v.visit_no) || null;
}

window.addEventListener("storage", (ev) => {
  if (ev.key !== OUTBOX_KEY) return;
  loadOutbox();
  paintOutbox();
  render();
});

function newID() {
  if (window.crypto && typeof crypto.randomUUID === "function") {
    try { return crypto.randomUUID(); } catch (_) { /* not a secure context */ }
  }
  const b = new Uint8Array(16);
  if (window.crypto && typeof crypto.getRandomValues === "function") crypto.getRandomValues(b);
  else for (let i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(""); // 32 hex digits
}

/** The outbox banner: results waiting, results refused, sending now. */
function paintOutbox() {
  const list = mine();
  const queued = list.filter((i) => i.status === "queued").length;
  const refused = list.filter((i) => i.status === "rejected").length;
  const box = $("outbox");
  box.hidden = !queued && !refused;
  box.dataset.queued = String(queued);
  box.dataset.rejected = String(refused);
  const parts = [];
  if (queued) parts.push(h("span", { class: "ob-queued" }, ...bi(`待发送 ${queued} 条`, `${queued} waiting to send`)));
  if (refused) {
    const first = list.find((i) => i.status === "rejected").visit;
    parts.push(h("a", { class: "ob-rejected button ghost", id: "outbox-fix", href: visitHref(first.day, first.visit_no) },
      ...bi(`需修改 ${refused} 条`, `${refused} refused: fix ${refused > 1 ? "them" : "it"}`)));
  }
  if (state.inflight) parts.push(h("span", { class: "ob-sending" }, ...bi("发送中…", "sending…")));
  if (!state.kept) parts.push(h("span", { class: "ob-memory" }, ...bi("本机存储不可用：发送前请勿关闭应用", "not stored on this phone: keep the app open until sent")));
  fill($("outbox-text"), parts);
  $("outbox-send").hidden = !queued || Boolean(state.inflight);
}

// ---- sending the outbox ----------------------------------------------------

let flushing = null;
let flushAgain = false;

/** Sends this user's queued results, oldest first; resolves when done. A
 * call while sending runs the outbox again afterwards (a result saved
 * meanwhile is not left for the next timer). */
function flush() {
  if (flushing) {
    flushAgain = true;
    return flushing;
  }
  flushing = (async () => {
    try {
      let more = true;
      while (more) {
        flushAgain = false;
        const ok = await flushOnce();
        if (ok) retryWait = RETRY_FIRST;
        else retrySoon();
        more = ok && flushAgain;
      }
    } finally {
      flushing = null;
      state.inflight = "";
      paintOutbox();
    }
  })();
  return flushing;
}

/** One pass over the queue; false when it stopped for the network. */
async function flushOnce() {
  if (!state.me) return false;
  const tried = new Set();
  let sent = 0;
  let refused = 0;
  let ok = true;
  for (;;) {
    const item = mine().find((i) => i.status === "queued" && !tried.has(i.id));
    if (!item) break;
    tried.add(item.id);
    state.inflight = item.id;
    paintOutbox();
    let outcome = "sent";
    try {
      await post(`${API}/results`, item.result); // 201 accepted or 200 duplicate
    } catch (e) {
      // Only the result itself being wrong (400; 413, 422 from a proxy)
      // puts it back in the inspector's hands; anything else — no network,
      // a 5xx, the session or the account (401, 403) — is not theirs to
      // fix in the form, and the result waits.
      if (e.status === 400 || e.status === 413 || e.status === 422) {
        outcome = "rejected";
        item.error = e.message;
      } else outcome = "wait";
    }
    state.inflight = "";
    if (outcome === "wait") {
      ok = false;
      break;
    }
    if (outcome === "sent") {
      state.outbox = state.outbox.filter((i) => i.id !== item.id);
      const r = item.result;
      state.sent[`${item.visit.month}|${r.enterprise_id}`] = r.inspected_at;
      sent++;
    } else if (state.outbox.includes(item)) {
      item.status = "rejected";
      refused++;
    }
    saveOutbox();
  }
  if (sent) {
    saveCache("", null);
    if (!isForm()) toast(`已发送 ${sent} 条检查结果`, `${sent} result${sent > 1 ? "s" : ""} sent`);
    refreshDay();
  }
  if (refused && !isForm()) toast("检查结果被退回，请修改", "a result was refused: fix it");
  render();
  return ok;
}

const isForm = () => state.view.startsWith("form:");

async function refreshDay() {
  if (!state.me || !state.day) return;
  try {
    await loadDay(state.day);
    render();
  } catch (_) { /* the next attempt will tell */ }
}

// ---- offline -----------------------------------------------------------------

function setOffline(v) {
  if (state.offline === v) return;
  state.offline = v;
  paintOffline();
  if (state.me) render();
}

function paintOffline() {
  const v = state.offline;
  document.body.dataset.offline = v ? "1" : "0";
  $("offline").hidden = !v;
  const at = state.syncedAt ? clock(state.syncedAt) : "";
  fill($("offline-detail"), ...bi(
    at ? `无法连接服务器，显示 ${at} 加载的检查计划；结果保存在本机，联网后自动发送` : "无法连接服务器；结果保存在本机，联网后自动发送",
    at ? `cannot reach the server; visits as of ${at}; results are kept and sent when online` : "cannot reach the server; results are kept and sent when online",
  ));
}

// ---- session and visits --------------------------------------------------------

let booting = null;

/** Finds who is logged in, loads the day shown and sends the outbox. */
function boot() {
  if (!booting) booting = doBoot().finally(() => { booting = null; });
  return booting;
}

async function doBoot() {
  let me;
  try {
    me = await api(`${API}/me`);
  } catch (e) {
    if (e.status === 401) return toLogin();
    if (e.status === 403) return viewUnlinked(e.message);
    if (e.offline) {
      const c = loadCache();
      if (!state.me && c && c.me) {
        state.me = c.me;
        state.today = dayOf(new Date()); // the phone's day: the server's is not at hand
        state.sent = c.sent && typeof c.sent === "object" ? c.sent : {};
        useKept(route().day || state.today);
      }
      paintOutbox();
      if (state.me) render(); else viewNoConnection();
      retrySoon();
      return;
    }
    return viewFatal(e.message);
  }
  retryWait = RETRY_FIRST;
  if (state.me && state.me.user !== me.user) resetSession();
  const c = loadCache();
  if (!state.me && c && c.me && c.me.user === me.user && c.sent) state.sent = c.sent;
  state.me = me;
  paintOutbox();
  await ensureCSRF();
  try {
    const day = route().day;
    if (!day || !state.today) await loadDay(""); // today: the server's day
    if (day && day !== state.day) await loadDay(day);
  } catch (e) {
    if (e.status === 401) return toLogin();
    if (!e.offline) toast(e.message);
  }
  render();
  flush();
}

/** Loads a day's visits (the server's today when day is ""). Offline, the
 * copy kept on the phone stands in. */
async function loadDay(day) {
  let d;
  try {
    d = await api(`${API}/visits${day ? `?day=${encodeURIComponent(day)}` : ""}`);
  } catch (e) {
    if (!e.offline) throw e;
    useKept(day || state.today);
    return;
  }
  if (!day) state.today = d.day;
  state.day = d.day;
  state.visits = Array.isArray(d.visits) ? d.visits : [];
  state.note = d.note || "";
  state.syncedAt = new Date().toISOString();
  state.missing = false;
  // The API's done replaces what this phone remembers sending.
  for (const v of state.visits) {
    if (v.done) delete state.sent[`${v.month}|${v.enterprise_id}`];
  }
  saveCache(d.day, { visits: state.visits, note: state.note, at: state.syncedAt });
}

/** Shows the copy of a day kept on the phone (offline). */
function useKept(day) {
  const c = loadCache();
  const kept = c && c.me && state.me && c.me.user === state.me.user && c.days && c.days[day];
  state.day = day;
  state.visits = kept && Array.isArray(kept.visits) ? kept.visits : [];
  state.note = kept ? kept.note || "" : "";
  state.syncedAt = kept ? kept.at || "" : "";
  state.missing = !kept;
  paintOffline();
}

function resetSession() {
  state.me = null;
  state.csrf = "";
  state.today = "";
  state.day = "";
  state.visits = [];
  state.note = "";
  state.syncedAt = "";
  state.sent = {};
  state.missing = false;
  state.view = "";
}

function toLogin(msg) {
  resetSession();
  clearCache();
  paintOutbox();
  viewLogin(msg);
}

async function logout() {
  try {
    await ensureCSRF();
    await api("/api/logout", { method: "POST" });
  } catch (_) { /* the session may be gone already */ }
  toLogin();
}

// Back online, back in view, and every RETRY_EVERY: load again and send the
// outbox. Not while the login form shows (it would be drawn again under the
// inspector's thumbs).
const wake = () => {
  if (state.me || state.view === "noconn") boot();
};
window.addEventListener("online", wake);
window.addEventListener("offline", () => setOffline(true));
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") wake();
});
setInterval(() => {
  if (state.me && !state.offline) flush();
  else wake();
}, RETRY_EVERY);

// A failure while the phone says it is online (a dropped connection, the
// server restarting, a 5xx) is tried again soon, then less and less often:
// the interval above is the floor. Offline, the "online" event will come.
let retryTimer = 0;
let retryWait = RETRY_FIRST;
function retrySoon() {
  clearTimeout(retryTimer);
  if (navigator.onLine === false) return;
  retryTimer = setTimeout(wake, retryWait);
  retryWait = Math.min(retryWait * 2, RETRY_EVERY);
}

// ---- routes and views ------------------------------------------------------------

/** #/ (today), #/d/YYYY-MM-DD (a day), #/d/YYYY-MM-DD/v/N (a visit's form). */
function route() {
  const m = /^#\/d\/(\d{4}-\d{2}-\d{2})(?:\/v\/(\d+))?$/.exec(location.hash);
  if (!m) return { day: "", visit: 0 };
  return { day: m[1], visit: m[2] ? Number(m[2]) : 0 };
}

const dayHref = (day) => `#/d/${day}`;
const visitHref = (day, n) => `#/d/${day}/v/${n}`;

window.addEventListener("hashchange", async () => {
  if (!state.me) return;
  const want = route().day || state.today;
  if (want && want !== state.day) {
    try { await loadDay(want); } catch (e) { if (!e.offline) toast(e.message); }
  }
  render();
});

function render() {
  if (!state.me) return;
  renderWho();
  const r = route();
  if (r.visit) renderForm(r.day, r.visit);
  else renderList();
}

function renderWho() {
  const me = state.me;
  if ($("logout") && $("who").dataset.user === me.user) return;
  $("who").dataset.user = me.user;
  fill($("who"),
    h("span", { class: "who-name" }, me.name || me.user),
    h("button", { type: "button", id: "logout", class: "ghost" }, ...bi("退出", "Log out")));
  $("logout").addEventListener("click", logout);
}

function viewLogin(msg) {
  $("who").replaceChildren();
  delete $("who").dataset.user;
  const err = h("p", { id: "login-error", class: "error", role: "alert", hidden: !msg }, msg || "");
  const user = h("input", {
    id: "login-user", name: "username", autocomplete: "username", autocapitalize: "none",
    spellcheck: "false", required: true, enterkeyhint: "next",
  });
  const pw = h("input", {
    id: "login-password", name: "password", type: "password", autocomplete: "current-password",
    required: true, enterkeyhint: "go",
  });
  const submit = h("button", { id: "login-submit", type: "submit", class: "primary" }, ...bi("登录", "Log in"));
  const waiting = state.outbox.length;
  const form = h("form", { id: "login", class: "card login" },
    h("h1", {}, ...bi("登录", "Log in")),
    h("p", { class: "hint" }, ...bi("使用城市大脑平台账号登录，查看今天抽中的检查单位并录入检查结果。",
      "Log in with your CityBrain account to see the units drawn for you today and record the results.")),
    waiting ? h("p", { id: "login-outbox", class: "hint warn" }, ...bi(`本机有 ${waiting} 条未发送的检查结果，原账号登录后自动发送。`,
      `${waiting} unsent result${waiting > 1 ? "s" : ""} on this phone: sent when their account logs in.`)) : null,
    h("label", { for: "login-user" }, ...bi("用户名", "User name")), user,
    h("label", { for: "login-password" }, ...bi("密码", "Password")), pw,
    err, submit);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    err.hidden = true;
    try {
      const d = await api("/api/login", { method: "POST", body: { user: user.value.trim(), password: pw.value } });
      pw.value = "";
      state.csrf = d && d.csrf ? String(d.csrf) : "";
      await boot();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  setMain("login", form);
}

function viewUnlinked(msg) {
  resetSession();
  $("who").replaceChildren();
  const out = h("button", { type: "button", id: "unlinked-logout", class: "primary" }, ...bi("退出并换个账号", "Log out and switch account"));
  out.addEventListener("click", logout);
  setMain("unlinked", h("section", { id: "unlinked", class: "card notice" },
    h("h1", {}, ...bi("无法显示检查计划", "Cannot show your visits")),
    h("p", { id: "unlinked-error", class: "error", role: "alert" }, msg),
    h("p", { class: "hint" }, ...bi("请联系管理员把你的账号关联到网格安全员编号，然后重新登录。",
      "Ask an admin to link your account to your inspector id, then log in again.")),
    out));
}

function viewNoConnection() {
  setMain("noconn", h("section", { class: "card notice" },
    h("h1", {}, ...bi("无法连接服务器", "Cannot reach the server")),
    h("p", { class: "hint" }, ...bi("本机还没有加载过检查计划。恢复网络后自动重试。",
      "No visits loaded on this phone yet. Retrying when the network is back."))));
}

function viewFatal(msg) {
  setMain("fatal", h("section", { class: "card notice" },
    h("h1", {}, ...bi("出错了", "Something went wrong")),
    h("p", { class: "error", role: "alert" }, msg)));
}

/** A visit's state on this phone: done (the API's done, or sent from
 * here), a result waiting to be sent, one the server refused, or to do. */
function visitState(v) {
  const item = itemOf(v);
  if (item) return item.status === "rejected" ? "rejected" : "queued";
  if (v.done || state.sent[`${v.month}|${v.enterprise_id}`]) return "done";
  return "todo";
}

function levelBadge(level) {
  const l = LEVELS[level];
  return h("span", { class: `level bg-${l ? level : "none"}`, "data-level": level || "" },
    ...(l ? bi(l[0], l[1]) : bi("未评级", "No level")));
}

function stateBadge(st, v) {
  const [zh, en] = STATES[st];
  const at = st === "done" ? clock(v.done || state.sent[`${v.month}|${v.enterprise_id}`]) : "";
  return h("span", { class: `state st-${st}`, "data-state": st }, ...bi(at ? `${zh} ${at}` : zh, en));
}

// ---- the day's visits ------------------------------------------------------------

function renderList() {
  const day = state.day || state.today;
  const key = `list:${day}:${state.syncedAt}:${state.missing ? 1 : 0}`;
  if (state.view !== key) {
    const [zh, en] = day ? dayLabel(day) : ["", ""];
    const isToday = day && day === state.today;
    const nav = day ? h("nav", { class: "days", "aria-label": "日期 Day" },
      h("a", { id: "day-prev", class: "button", href: dayHref(addDays(day, -1)) }, "‹ ", ...bi("前一天", "Previous")),
      h("div", { id: "day-label", class: "day-label", "data-day": day },
        h("strong", {}, zh), h("small", { class: "en" }, en),
        isToday ? h("span", { class: "today" }, ...bi("今天", "today")) : null),
      h("a", { id: "day-next", class: "button", href: dayHref(addDays(day, 1)) }, ...bi("后一天", "Next"), " ›")) : null;
    const me = state.me;
    setMain(key,
      h("section", { id: "visits-view" },
        h("h1", { class: "title" }, ...bi(isToday ? "今日检查" : "当日检查", isToday ? "Today's visits" : "Visits of the day")),
        h("p", { class: "person" }, ...bi(`网格安全员 ${me.name || ""}（${me.inspector_id || ""}）`, `Inspector ${me.inspector_id || ""}`)),
        nav,
        !isToday && state.today ? h("p", { class: "back-today" },
          h("a", { id: "day-today", class: "button ghost", href: "#/" }, ...bi("回到今天", "Back to today"))) : null,
        h("div", { id: "map-box" }),
        h("div", { id: "visit-list", class: "list" }),
        h("p", { id: "empty", class: "empty", hidden: true }),
        h("p", { id: "synced", class: "synced" })));
  }
  const vs = state.visits;
  const done = vs.filter((v) => visitState(v) === "done").length;
  fill($("map-box"), vs.length ? [
    h("p", { id: "progress", class: "progress" }, ...bi(`共 ${vs.length} 家，已检查 ${done} 家`, `${vs.length} units, ${done} done`)),
    drawMap(vs, day),
    legend(),
  ] : null);
  fill($("visit-list"), vs.map((v, i) => visitCard(v, i, day)));
  const empty = $("empty");
  empty.hidden = vs.length > 0;
  if (state.missing) fill(empty, ...bi("本机没有这一天的检查计划（离线）", "This day's visits are not on this phone (offline)"));
  else if (state.note) fill(empty, state.note);
  else fill(empty, ...bi("当天没有计划检查", "No visits planned that day"));
  fill($("synced"), ...(state.syncedAt ? bi(`加载于 ${clock(state.syncedAt)}`, `loaded at ${clock(state.syncedAt)}`) : []));
}

function visitCard(v, i, day) {
  const st = visitState(v);
  const reason = REASONS[v.reason] || [v.reason || "", ""];
  return h("article", { class: `card visit lvl-${v.level || "none"} vs-${st}`, "data-visit": v.visit_no, "data-state": st, "data-enterprise": v.enterprise_id },
    h("a", { class: "visit-main", href: visitHref(day, v.visit_no) },
      h("div", { class: "row top" },
        h("span", { class: "num", "aria-label": `第 ${i + 1} 家 No. ${i + 1}` }, String(i + 1)),
        levelBadge(v.level),
        h("span", { class: `reason rs-${v.reason || "none"}` }, ...bi(reason[0], reason[1])),
        stateBadge(st, v)),
      h("h2", { class: "unit" }, v.enterprise_name || v.enterprise_id),
      v.address ? h("p", { class: "address" }, v.address) : null,
      h("p", { class: "meta" }, v.industry ? `${v.industry} · ` : "", v.enterprise_id),
      h("span", { class: "open" }, ...(st === "done" ? bi("查看 / 再次录入 ›", "View / record again ›")
        : st === "rejected" ? bi("修改结果 ›", "Fix the result ›")
          : st === "queued" ? bi("查看待发送结果 ›", "View the result waiting ›")
            : bi("录入检查结果 ›", "Record the result ›")))));
}

function legend() {
  const item = (lv) => h("li", {}, h("span", { class: `chip bg-${lv}` }, ""), ...bi(LEVELS[lv][0], LEVELS[lv][1]));
  return h("ul", { class: "legend" }, ["red", "orange", "yellow", "blue"].map(item),
    h("li", {}, h("span", { class: "chip done" }, "✓"), ...bi("已检查", "Done")));
}

function distanceText(m) {
  return m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(m < 10000 ? 1 : 0)} km`;
}

/** The day's units on a schematic map: metres east and north of the middle
 * of them, numbered as the cards are. No tiles, no network. */
function drawMap(vs, day) {
  const W = 360;
  const H = 240;
  const pad = 24;
  const pts = vs.map((v, i) => ({ v, i })).filter((p) => finite(p.v.lon) && finite(p.v.lat));
  if (!pts.length) {
    return h("p", { id: "no-map", class: "muted" }, ...bi("检查单位无坐标，无法绘图", "The units have no coordinates: no map"));
  }
  const lons = pts.map((p) => p.v.lon);
  const lats = pts.map((p) => p.v.lat);
  const c = { lon: (Math.min(...lons) + Math.max(...lons)) / 2, lat: (Math.min(...lats) + Math.max(...lats)) / 2 };
  const kx = 111320 * Math.cos((c.lat * Math.PI) / 180);
  const ky = 110540;
  for (const p of pts) {
    p.x = (p.v.lon - c.lon) * kx;
    p.y = (p.v.lat - c.lat) * ky;
  }
  const ex = Math.max(150, ...pts.map((p) => Math.abs(p.x))) * 1.1;
  const ey = Math.max(150, ...pts.map((p) => Math.abs(p.y))) * 1.1;
  const k = Math.min((W / 2 - pad) / ex, (H / 2 - pad) / ey); // px per metre
  const X = (m) => W / 2 + m * k;
  const Y = (m) => H / 2 - m * k;
  const step = [50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000].find((v) => v * k >= W / 8) || 100000;
  const svg = s("svg", { id: "visits-map", class: "map", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": "当日检查单位示意图 Schematic map of the day's units" });
  svg.append(s("rect", { class: "map-bg", x: 0, y: 0, width: W, height: H, rx: 8 }));
  for (let g = step; g < Math.max(W, H) / k; g += step) { // a grid every step from the middle
    for (const sign of [-1, 1]) {
      if (Math.abs(X(sign * g) - W / 2) < W / 2) svg.append(s("line", { class: "grid", x1: X(sign * g), y1: 0, x2: X(sign * g), y2: H }));
      if (Math.abs(Y(sign * g) - H / 2) < H / 2) svg.append(s("line", { class: "grid", x1: 0, y1: Y(sign * g), x2: W, y2: Y(sign * g) }));
    }
  }
  for (const p of pts) {
    const st = visitState(p.v);
    const x = X(p.x);
    const y = Y(p.y);
    const a = s("a", { class: `marker lvl-${p.v.level || "none"} vs-${st}`, href: visitHref(day, p.v.visit_no), "data-visit": p.v.visit_no },
      s("title", {}, `${p.i + 1}. ${p.v.enterprise_name || p.v.enterprise_id}`),
      s("circle", { cx: x, cy: y, r: 13 }),
      s("text", { x, y: y + 4.5, "text-anchor": "middle" }, st === "done" ? "✓" : String(p.i + 1)));
    svg.append(a);
  }
  svg.append(s("path", { class: "north", d: `M ${W - 22} 14 l 7 18 l -7 -5 l -7 5 z` }));
  svg.append(s("text", { class: "north-label", x: W - 22, y: 44, "text-anchor": "middle" }, "北 N"));
  svg.append(s("line", { class: "scale", x1: 12, y1: H - 12, x2: 12 + step * k, y2: H - 12 }));
  svg.append(s("text", { class: "scale-label", x: 12, y: H - 18 }, distanceText(step)));
  return svg;
}

// ---- a visit's result form ---------------------------------------------------------

let form = null; // the open form: {key, visit, paint(), showError()}

function renderForm(day, n) {
  const key = `form:${day}:${n}`;
  const v = state.visits.find((x) => x.visit_no === n && x.day === day);
  if (state.view === key && form) {
    if (v) form.paint(v);
    return;
  }
  if (!v) {
    form = null;
    setMain(key, h("section", { id: "visit" },
      h("a", { href: dayHref(day), class: "back button ghost" }, "‹ ", ...bi("返回当日检查", "Back to the day's visits")),
      h("p", { id: "no-visit", class: "card notice" }, ...bi("没有这项检查，或不属于你", "No such visit, or not yours"))));
    return;
  }
  form = makeForm(v, day, key);
  setMain(key, form.el);
  form.paint(v);
}

function makeForm(v0, day, key) {
  let v = v0;
  const head = h("div", { class: "visit-head" });
  const status = h("div", { class: "visit-status" });
  const err = h("p", { id: "form-error", class: "error", role: "alert", hidden: true });
  const radios = RESULTS.map(([val, zh, en]) => {
    const input = h("input", { type: "radio", name: "result", value: val, id: `r-${val}` });
    return { val, input, label: h("label", { class: `choice res-${val}`, for: `r-${val}` }, input, h("span", {}, ...bi(zh, en))) };
  });
  const list = h("ol", { id: "hazard-list", class: "hazard-list" });
  const add = h("button", { type: "button", id: "add-hazard" }, "+ ", ...bi("添加隐患", "Add a hazard"));
  const hint = h("p", { class: "hint", id: "hazard-hint" });
  const hazards = h("section", { id: "hazards", class: "hazards" },
    h("h3", {}, ...bi("发现的隐患", "Hazards found")), hint, list, add);
  const notes = h("textarea", { id: "notes", rows: "3", maxlength: "2000", placeholder: "检查情况说明（可选） Notes (optional)" });
  const save = h("button", { type: "submit", id: "save", class: "primary" }, ...bi("保存并提交", "Save & send"));
  const cancel = h("a", { id: "cancel", class: "button", href: dayHref(day) }, ...bi("取消", "Cancel"));
  const discard = h("button", { type: "button", id: "discard", class: "danger", hidden: true }, ...bi("放弃此结果", "Discard this result"));
  const el = h("section", { id: "visit", "data-visit": v.visit_no },
    h("a", { href: dayHref(day), class: "back button ghost" }, "‹ ", ...bi("返回当日检查", "Back to the day's visits")),
    h("article", { class: `card visit-card lvl-${v.level || "none"}` }, head, status),
    h("form", { id: "result-form", class: "card result-form", novalidate: true },
      h("fieldset", { class: "results" }, h("legend", {}, ...bi("检查结论", "Result")),
        h("div", { class: "choices" }, radios.map((r) => r.label))),
      hazards,
      h("label", { for: "notes" }, ...bi("检查说明", "Notes")), notes,
      err,
      h("div", { class: "buttons" }, save, cancel, discard)));
  const formEl = el.querySelector("form");
  let busy = false;
  let seq = 0;

  function result() {
    const r = radios.find((x) => x.input.checked);
    return r ? r.val : "";
  }

  /** The base day of deadlines: the inspection's day, today in Shanghai. */
  const today = () => dayOf(new Date());

  function addRow(hz) {
    seq++;
    const id = `hz-${seq}`;
    const levels = HAZARD_LEVELS.map(([val, zh, en]) => {
      const input = h("input", { type: "radio", name: `${id}-level`, value: val, id: `${id}-${val}`, class: "hz-level" });
      return { val, input, label: h("label", { class: `choice hz-${val}`, for: `${id}-${val}` }, input, h("span", {}, ...bi(zh, en))) };
    });
    const desc = h("textarea", { id: `${id}-desc`, class: "hz-desc", rows: "2", maxlength: "500", placeholder: "如：配电箱前堆放杂物 e.g. goods stacked in front of the switchboard" });
    const deadline = h("input", { id: `${id}-deadline`, class: "hz-deadline", type: "date", min: today() });
    const remove = h("button", { type: "button", class: "hz-remove ghost" }, ...bi("删除", "Remove"));
    const no = h("span", { class: "hz-no" });
    const row = h("li", { class: "hazard", id },
      h("div", { class: "row" }, no, remove),
      h("fieldset", { class: "hz-levels" }, h("legend", {}, ...bi("隐患等级", "Level")), h("div", { class: "choices" }, levels.map((l) => l.label))),
      h("label", { for: `${id}-desc` }, ...bi("隐患描述", "Description")), desc,
      h("label", { for: `${id}-deadline` }, ...bi("整改期限", "Deadline")), deadline);
    const level = () => (levels.find((l) => l.input.checked) || levels[0]).val;
    const setDefault = () => {
      const days = HAZARD_LEVELS.find((x) => x[0] === level())[3];
      deadline.value = addDays(today(), days);
    };
    const pick = hz && HAZARD_LEVELS.some((x) => x[0] === hz.level) ? hz.level : "general";
    levels.find((l) => l.val === pick).input.checked = true;
    desc.value = hz ? hz.description || "" : "";
    if (hz && hz.deadline) {
      deadline.value = hz.deadline;
      deadline.dataset.auto = "0";
    } else {
      setDefault();
      deadline.dataset.auto = "1"; // follows the level until the inspector picks a date
    }
    for (const l of levels) {
      l.input.addEventListener("change", () => { if (deadline.dataset.auto === "1") setDefault(); });
    }
    deadline.addEventListener("input", () => { deadline.dataset.auto = "0"; });
    remove.addEventListener("click", () => { row.remove(); number(); });
    row.read = () => ({ level: level(), description: desc.value.trim(), deadline: deadline.value });
    list.append(row);
    number();
    return row;
  }

  function number() {
    [...list.children].forEach((row, i) => fill(row.querySelector(".hz-no"), ...bi(`隐患 ${i + 1}`, `Hazard ${i + 1}`)));
  }

  function showHazards() {
    const r = result();
    hazards.hidden = r === "pass" || r === "";
    fill(hint, ...(r === "rectify"
      ? bi("责令整改须登记至少一项隐患；一般隐患默认 30 天整改，重大隐患 60 天。", "Rectify needs at least one hazard; deadlines default to 30 days (general), 60 (major).")
      : bi("一般隐患默认 30 天整改，重大隐患 60 天。", "Deadlines default to 30 days (general), 60 (major).")));
  }

  /** Shows a refusal under the form, scrolled into view when it is new
   * (not on every repaint: the page must not move under a thumb). */
  function showError(msg) {
    const fresh = Boolean(msg) && (err.hidden || err.textContent !== msg);
    err.textContent = msg || "";
    err.hidden = !msg;
    if (fresh) err.scrollIntoView({ block: "center" });
  }

  /** Fills the form with an unsent result of this visit. */
  function load(item) {
    const r = item.result;
    for (const x of radios) x.input.checked = x.val === r.result;
    list.replaceChildren();
    for (const hz of r.hazards || []) addRow(hz);
    notes.value = r.notes || "";
    showHazards();
  }

  function paint(nv) {
    v = nv;
    const st = visitState(v);
    const reason = REASONS[v.reason] || [v.reason || "", ""];
    fill(head,
      h("div", { class: "row top" }, levelBadge(v.level), h("span", { class: `reason rs-${v.reason || "none"}` }, ...bi(reason[0], reason[1])), stateBadge(st, v)),
      h("h1", { class: "unit" }, v.enterprise_name || v.enterprise_id),
      v.address ? h("p", { class: "address" }, v.address) : null,
      h("p", { class: "meta" }, v.industry ? `${v.industry} · ` : "", v.enterprise_id));
    const item = itemOf(v);
    fill(status,
      st === "done" ? h("p", { class: "notice-done" }, ...bi("本月已收到该单位的检查结果；再次保存将另行登记一次检查。",
        "A result for this unit was received this month; saving records another inspection.")) : null,
      item && item.status === "queued" ? h("p", { class: "notice-queued" }, ...bi(`结果已保存于 ${clock(item.saved_at)}，待发送；可修改后重新保存。`,
        `Saved at ${clock(item.saved_at)}, waiting to send; you may change it and save again.`)) : null);
    discard.hidden = !item;
    if (item && item.status === "rejected") showError(item.error);
    save.disabled = busy || Boolean(item && state.inflight === item.id);
  }

  for (const x of radios) x.input.addEventListener("change", showHazards);
  add.addEventListener("click", () => { addRow(null).querySelector(".hz-desc").focus(); });
  discard.addEventListener("click", () => {
    const item = itemOf(v);
    if (!item || state.inflight === item.id) return;
    state.outbox = state.outbox.filter((i) => i.id !== item.id);
    saveOutbox();
    toast("已放弃该结果", "Result discarded");
    location.hash = dayHref(day);
  });
  formEl.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (busy) return;
    const r = result();
    if (!r) return showError("请选择检查结论 / choose a result");
    const rows = hazards.hidden ? [] : [...list.children].map((row) => row.read());
    const blank = rows.findIndex((x) => !x.description || !x.deadline);
    if (blank >= 0) return showError(`隐患 ${blank + 1}：请填写描述和整改期限 / hazard ${blank + 1}: fill in the description and the deadline`);
    const old = itemOf(v);
    if (old && state.inflight === old.id) return; // being sent: wait for its answer
    const res = { id: newID(), enterprise_id: v.enterprise_id, inspected_at: new Date().toISOString(), result: r, hazards: rows, notes: notes.value.trim() };
    const item = { id: res.id, user: state.me.user, result: res, visit: { day: v.day, month: v.month, visit_no: v.visit_no, name: v.enterprise_name },
      saved_at: res.inspected_at, status: "queued", error: "" };
    state.outbox = state.outbox.filter((i) => !old || i.id !== old.id).concat([item]);
    saveOutbox();
    showError("");
    busy = true;
    save.disabled = true;
    fill(save, ...bi("发送中…", "Sending…"));
    try {
      await flush();
    } finally {
      busy = false;
      fill(save, ...bi("保存并提交", "Save & send"));
    }
    const now = state.outbox.find((i) => i.id === res.id);
    if (state.view !== key) return; // the inspector went elsewhere meanwhile
    if (!now) {
      toast("检查结果已提交", "Result sent");
      location.hash = dayHref(day);
    } else if (now.status === "rejected") {
      paint(v);
    } else {
      toast("已保存，联网后自动发送", "Saved: sent when online");
      location.hash = dayHref(day);
    }
  });

  const item = itemOf(v0);
  if (item) load(item);
  showHazards();
  return { el, paint, showError };
}

// ---- start ---------------------------------------------------------------

$("outbox-send").addEventListener("click", () => { boot(); });
loadOutbox();
paintOutbox();

if ("serviceWorker" in navigator) {
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("sw.js", { scope: "./" }).catch((err) => console.warn("service worker not registered:", err));
  });
}

boot();
