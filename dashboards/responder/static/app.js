// 西城应急响应 CityBrain Responder: the phone app of issue #24
// (dashboards/responder). Plain ES2020, no framework, nothing from another
// origin. Every value from the server is put on the page as text
// (textContent / createTextNode), never as HTML.
//
// Talks to pipelines/response.API under /api/respond/ and to the platform's
// login: POST /api/login → {user, csrf}; GET /api/me → {user, csrf} after a
// reload; POST /api/logout. The session is an HttpOnly cookie; the CSRF
// token is kept in memory only and sent as X-CSRF-Token on every POST.
"use strict";

const API = "/api/respond";
const CSRF_HEADER = "X-CSRF-Token"; // internal/auth.CSRFHeader
const CACHE_KEY = "citybrain.responder.v1"; // last tasks, for opening offline

const LEVELS = {
  I: ["Ⅰ", "特别重大"], II: ["Ⅱ", "重大"], III: ["Ⅲ", "较大"], IV: ["Ⅳ", "一般"],
};
const WARNINGS = {
  blue: ["蓝色预警", "Blue warning"], yellow: ["黄色预警", "Yellow warning"],
  orange: ["橙色预警", "Orange warning"], red: ["红色预警", "Red warning"],
};
const STATES = {
  notified: ["待确认", "Notified"], acknowledged: ["已确认", "Acknowledged"], closed: ["已关闭", "Closed"],
};

const state = {
  me: null, // GET /api/respond/me: {user, display_name, admin, person_id, person}
  csrf: "",
  tasks: [], // open tasks, newest first (GET /api/respond/tasks and the stream)
  all: null, // tasks with closed ones (?all=1), while the 全部 tab is shown
  known: new Map(), // task id → newest TaskView seen (a closed task's detail)
  support: new Map(), // task id → decision support answer
  drafts: new Map(), // "id|progress" → text being typed (kept across updates)
  seen: new Set(), // task ids shown already (to tell a new one)
  seenInit: false,
  skew: 0, // server clock − this clock, ms (the engine's clock decides "since")
  offline: false,
  syncedAt: "",
  es: null, // EventSource of /api/respond/stream
  retry: 0,
  backoff: 1000,
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

// ---- time ----------------------------------------------------------------

const clockFmt = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false,
});
const timeFmt = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

function ago(iso) {
  const sec = Math.max(0, Math.round((Date.now() + state.skew - Date.parse(iso)) / 1000));
  if (!isFinite(sec)) return ["", ""];
  if (sec < 45) return ["刚刚", "just now"];
  const m = Math.max(1, Math.round(sec / 60));
  if (m < 60) return [`${m} 分钟前`, `${m} min ago`];
  const hr = Math.floor(m / 60);
  if (hr < 24) return [`${hr} 小时 ${m % 60} 分钟前`, `${hr} h ${m % 60} min ago`];
  const d = Math.floor(hr / 24);
  return [`${d} 天前`, `${d} d ago`];
}

/** A <time> that says how long ago iso was, kept current by the ticker. */
function since(iso, zhPrefix, enPrefix) {
  const el = h("time", { datetime: iso, class: "rel", "data-zh": zhPrefix, "data-en": enPrefix });
  fillSince(el);
  return el;
}

function fillSince(el) {
  const iso = el.getAttribute("datetime");
  const [zh, en] = ago(iso);
  let at = "";
  try { at = clockFmt.format(new Date(iso)); } catch (_) { /* not a time */ }
  fill(el, ...bi(`${el.dataset.zh}${zh}（${at}）`, `${el.dataset.en} ${en} (${at})`));
}

setInterval(() => document.querySelectorAll("time.rel").forEach(fillSince), 30000);

function distanceText(m) {
  if (typeof m !== "number" || !isFinite(m)) return "";
  return m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(1)} km`;
}

// ---- API -----------------------------------------------------------------

class APIError extends Error {
  constructor(status, message, offline) {
    super(message);
    this.status = status;
    this.offline = Boolean(offline);
  }
}

/** A same-origin JSON call. A network failure (or a gateway's 502/504)
 * marks the app offline; an error answer throws its {"error"} text. */
async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  if (method !== "GET" && state.csrf) headers[CSRF_HEADER] = state.csrf;
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: "same-origin", cache: "no-store" });
  } catch (_) {
    setOffline(true);
    throw new APIError(0, "无法连接服务器 / cannot reach the server", true);
  }
  const type = res.headers.get("Content-Type") || "";
  if (res.status === 502 || res.status === 504 || (res.status === 503 && !type.includes("json"))) {
    setOffline(true);
    throw new APIError(res.status, `无法连接服务器 / cannot reach the server (HTTP ${res.status})`, true);
  }
  setOffline(false);
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
    return true; // unknown (offline, or no /api/me): the POST will tell
  }
}

/** A state-changing call. A 401 (expired session, or a stale CSRF token
 * after the server restarted) fetches the token again and retries once. */
async function send(path, body) {
  await ensureCSRF();
  try {
    return await api(path, { method: "POST", body });
  } catch (e) {
    if (e.status !== 401 && !(e.status === 403 && /CSRF/i.test(e.message))) throw e;
    const old = state.csrf;
    state.csrf = "";
    const session = await ensureCSRF();
    if (!session) {
      toLogin("登录已过期，请重新登录 / your session expired: log in again");
      throw e;
    }
    if (!state.csrf || state.csrf === old) throw e;
    return api(path, { method: "POST", body });
  }
}

// ---- offline cache (the last tasks, so the app opens without a network) ---

function saveCache() {
  try {
    localStorage.setItem(CACHE_KEY, JSON.stringify({ me: state.me, tasks: state.tasks, at: state.syncedAt, skew: state.skew }));
  } catch (_) { /* private mode or full: the app still works online */ }
}

function loadCache() {
  try { return JSON.parse(localStorage.getItem(CACHE_KEY) || "null"); } catch (_) { return null; }
}

function clearCache() {
  try { localStorage.removeItem(CACHE_KEY); } catch (_) { /* nothing kept */ }
}

function setOffline(v) {
  if (state.offline === v) return;
  state.offline = v;
  paintOffline();
  if (state.me) render();
}

/** The offline banner, with the time of the tasks shown. */
function paintOffline() {
  const v = state.offline;
  document.body.dataset.offline = v ? "1" : "0";
  $("offline").hidden = !v;
  let at = "";
  if (state.syncedAt) {
    try { at = timeFmt.format(new Date(state.syncedAt)); } catch (_) { at = ""; }
  }
  fill($("offline-detail"), ...bi(
    at ? `无法连接服务器，显示 ${at} 同步的任务` : "无法连接服务器",
    at ? `cannot reach the server; tasks as of ${at}` : "cannot reach the server",
  ));
}

// ---- session, tasks and the live stream -----------------------------------

async function boot() {
  clearTimeout(state.retry);
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
        state.skew = c.skew || 0;
        state.syncedAt = c.at || "";
        setTasks(c.tasks || [], false, false);
        paintOffline(); // with the time of the cache
      }
      if (state.me) render(); else viewNoConnection();
      return scheduleRetry();
    }
    return viewFatal(e.message);
  }
  if (state.me && state.me.user !== me.user) resetSession();
  state.me = me;
  await ensureCSRF();
  await loadTasks();
  if (!state.es) connectStream();
  render();
}

function resetSession() {
  stopStream();
  clearTimeout(state.retry);
  state.me = null;
  state.csrf = "";
  state.tasks = [];
  state.all = null;
  state.known.clear();
  state.support.clear();
  state.drafts.clear();
  state.seen.clear();
  state.seenInit = false;
  state.syncedAt = "";
  state.view = "";
}

function toLogin(msg) {
  resetSession();
  clearCache();
  viewLogin(msg);
}

async function loadTasks() {
  try {
    const d = await api(`${API}/tasks`);
    const now = Date.parse(d.now);
    if (isFinite(now)) state.skew = now - Date.now();
    setTasks(d.tasks || [], false, true);
  } catch (e) {
    if (e.status === 401) toLogin();
    else if (!e.offline) toast(e.message);
  }
}

let allBusy = false;
async function loadAll() {
  if (allBusy) return;
  allBusy = true;
  try {
    const d = await api(`${API}/tasks?all=1`);
    state.all = d.tasks || [];
    for (const t of state.all) state.known.set(t.id, t);
    render();
  } catch (e) {
    if (!e.offline) toast(e.message);
  } finally {
    allBusy = false;
  }
}

function setTasks(list, live, synced) {
  const fresh = live && state.seenInit ? list.filter((t) => !state.seen.has(t.id)) : [];
  for (const t of list) {
    state.seen.add(t.id);
    state.known.set(t.id, t);
  }
  state.seenInit = true;
  state.tasks = list;
  if (synced) {
    state.syncedAt = new Date().toISOString();
    saveCache();
  }
  const waiting = list.filter((t) => t.state === "notified").length;
  document.title = `${waiting ? `(${waiting}) ` : ""}西城应急响应 CityBrain Responder`;
  if (fresh.length) {
    if (navigator.vibrate) navigator.vibrate([200, 100, 200]);
    toast(`新任务 ${fresh.length} 条`, `${fresh.length} new task${fresh.length > 1 ? "s" : ""}`);
  }
  if (route().name === "all" && state.me) loadAll();
  if (state.me) render();
}

/** Puts a task the server answered with (an action's result) in place. */
function upsert(tv) {
  state.known.set(tv.id, tv);
  const open = tv.state !== "closed";
  const i = state.tasks.findIndex((t) => t.id === tv.id);
  if (i >= 0 && open) state.tasks[i] = tv;
  else if (i >= 0) state.tasks.splice(i, 1);
  if (state.all) {
    const j = state.all.findIndex((t) => t.id === tv.id);
    if (j >= 0) state.all[j] = tv;
  }
  saveCache();
  render();
}

function connectStream() {
  stopStream();
  const es = new EventSource(`${API}/stream`);
  state.es = es;
  es.addEventListener("tasks", (ev) => {
    let d;
    try { d = JSON.parse(ev.data); } catch (_) { return; }
    state.backoff = 1000;
    setOffline(false);
    setTasks(d.tasks || [], true, true);
  });
  es.addEventListener("error", () => {
    if (state.es !== es) return;
    // Reconnect ourselves: the browser gives up for good on a 401/403,
    // and whether the server is reachable decides the offline banner.
    es.close();
    state.es = null;
    scheduleRetry();
  });
}

function stopStream() {
  if (state.es) state.es.close();
  state.es = null;
}

function scheduleRetry() {
  clearTimeout(state.retry);
  const wait = state.backoff;
  state.backoff = Math.min(state.backoff * 2, 30000);
  state.retry = setTimeout(boot, wait);
}

window.addEventListener("online", () => { if (!state.es) { state.backoff = 1000; boot(); } });
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && state.me && !state.es) { state.backoff = 1000; boot(); }
});

async function logout() {
  stopStream();
  clearTimeout(state.retry);
  try {
    await ensureCSRF();
    await api("/api/logout", { method: "POST" });
  } catch (_) { /* the session may be gone already */ }
  toLogin();
}

// ---- views ---------------------------------------------------------------

function route() {
  const m = /^#\/task\/(.+)$/.exec(location.hash);
  if (m) return { name: "detail", id: decodeURIComponent(m[1]) };
  if (location.hash === "#/all") return { name: "all" };
  return { name: "list" };
}

window.addEventListener("hashchange", () => {
  if (!state.me) return;
  if (route().name === "all") loadAll();
  render();
});

function render() {
  if (!state.me) return;
  renderWho();
  const r = route();
  if (r.name === "detail") renderDetail(r.id);
  else renderList(r.name);
}

function renderWho() {
  const who = $("who");
  if (!state.me) { who.replaceChildren(); return; }
  const me = state.me;
  fill(who,
    h("span", { class: "who-name" }, me.display_name || (me.person && me.person.name) || me.user),
    h("button", { type: "button", id: "logout", class: "ghost" }, ...bi("退出", "Log out")),
  );
  $("logout").addEventListener("click", logout);
}

function viewLogin(msg) {
  $("who").replaceChildren();
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
  const form = h("form", { id: "login", class: "card login" },
    h("h1", {}, ...bi("登录", "Log in")),
    h("p", { class: "hint" }, ...bi("使用城市大脑平台账号登录，查看分配给你的应急任务。",
      "Log in with your CityBrain account to see the emergency tasks given to you.")),
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
    h("h1", {}, ...bi("无法显示任务", "Cannot show tasks")),
    h("p", { id: "unlinked-error", class: "error", role: "alert" }, msg),
    h("p", { class: "hint" }, ...bi("请联系管理员把你的账号关联到应急预案中的责任人，然后重新登录。",
      "Ask an admin to link your account to your person in the emergency plans, then log in again.")),
    out));
}

function viewNoConnection() {
  setMain("noconn", h("section", { class: "card notice" },
    h("h1", {}, ...bi("无法连接服务器", "Cannot reach the server")),
    h("p", { class: "hint" }, ...bi("本机没有已同步的任务。恢复网络后自动重试。",
      "No tasks synced on this phone yet. Retrying when the network is back."))));
}

function viewFatal(msg) {
  setMain("fatal", h("section", { class: "card notice" },
    h("h1", {}, ...bi("出错了", "Something went wrong")),
    h("p", { class: "error", role: "alert" }, msg)));
}

// ---- the task list --------------------------------------------------------

let cards = new Map(); // task id → card of the list view

function renderList(name) {
  const key = `list:${name}`;
  if (state.view !== key) {
    cards = new Map();
    const me = state.me;
    const person = me.person || null;
    const tabs = h("nav", { class: "tabs", "aria-label": "任务 Tasks" },
      h("a", { href: "#/", id: "tab-now", "aria-current": name === "list" ? "page" : false }, ...bi("我的任务", "My tasks now")),
      h("a", { href: "#/all", id: "tab-all", "aria-current": name === "all" ? "page" : false }, ...bi("全部", "All, with closed")));
    setMain(key,
      h("section", { id: "tasks-view" },
        person || me.admin ? h("p", { class: "person" },
          me.admin && !me.person_id ? bi("管理员：所有人的任务", "Admin: everyone's tasks")
            : bi(`责任人 ${person ? person.name : me.person_id}`, `Responder ${me.person_id}`)) : null,
        tabs,
        h("div", { id: "task-list", class: "list" }),
        h("p", { id: "empty", class: "empty", hidden: true }, ...bi("暂无任务", "No tasks")),
        h("p", { id: "synced", class: "synced" })));
  }
  const list = name === "all" ? (state.all || state.tasks) : state.tasks;
  const box = $("task-list");
  const keep = new Set(list.map((t) => t.id));
  for (const [id, c] of cards) {
    if (!keep.has(id)) { c.el.remove(); cards.delete(id); }
  }
  list.forEach((t, i) => {
    let c = cards.get(t.id);
    if (!c) { c = makeCard(t.id, true); cards.set(t.id, c); }
    c.update(t);
    const at = box.children[i] || null;
    if (at !== c.el) box.insertBefore(c.el, at);
  });
  $("empty").hidden = list.length > 0;
  let at = "";
  if (state.syncedAt) {
    try { at = timeFmt.format(new Date(state.syncedAt)); } catch (_) { at = ""; }
  }
  fill($("synced"), ...(at ? bi(`同步于 ${at}`, `synced at ${at}`) : []));
}

/** A task's card: its text (redrawn on every update) and its actions
 * (kept, so that a report being typed survives a live update). */
function makeCard(id, list) {
  const body = h("div", { class: "card-body" });
  const acts = makeActions(id, list);
  const el = h("article", { class: "card task", "data-task": id }, body, acts.root);
  return {
    el,
    update(t) {
      el.className = `card task lvl-${t.response.warning_level || "none"} state-${t.state}`;
      el.dataset.state = t.state;
      fill(body, taskBody(t, !list));
      acts.update(t);
    },
  };
}

function taskBody(t, detail) {
  const r = t.response || {};
  const lv = LEVELS[t.level] || [t.level, ""];
  const warn = WARNINGS[r.warning_level];
  const st = STATES[t.state] || [t.state, t.state];
  const out = [
    h("div", { class: "row top" },
      h("span", { class: `level bg-${r.warning_level || "none"}`, title: lv[1] ? `${lv[1]}（${lv[0]}级）` : false },
        `${lv[0]}级响应`, " ", h("small", { class: "en" }, `Level ${t.level}`)),
      h("span", { class: `state st-${t.state}`, "data-state": t.state }, ...bi(st[0], st[1]))),
    h("h2", { class: "subject" }, r.subject_name_zh || r.subject_id || "",
      r.subject_name_en ? h("small", { class: "en" }, r.subject_name_en) : null),
    warn ? h("p", { class: "warning" }, h("span", { class: `dot bg-${r.warning_level}` }), ...bi(warn[0], warn[1]),
      r.message_zh ? [" · ", r.message_zh] : null) : null,
    h("div", { class: "field role" }, h("span", { class: "label" }, ...bi("岗位", "Role")),
      h("span", { class: "value" }, ...bi(t.role_zh, t.role_en))),
    h("div", { class: "field duty" }, h("span", { class: "label" }, ...bi("职责", "Duty")),
      h("div", { class: "value" },
        h("p", { class: "duty-zh" }, t.duty_zh),
        t.duty_en ? h("p", { class: "duty-en en" }, t.duty_en) : null)),
    h("p", { class: "since" }, since(t.created_at, "发布于 ", "since")),
    escalation(t),
  ];
  const notes = t.notes || [];
  if (detail) {
    out.push(h("div", { class: "field plan" }, h("span", { class: "label" }, ...bi("预案", "Plan")),
      h("span", { class: "value" }, ...bi(r.plan_title_zh || r.plan_id || "", r.plan_title_en))));
    if (r.message_en) out.push(h("p", { class: "message en" }, r.message_en));
    out.push(h("section", { class: "notes" },
      h("h3", {}, ...bi("进展记录", "Progress reports")),
      notes.length
        ? h("ol", { class: "note-list" }, notes.map((n) => h("li", {},
          h("span", { class: "note-at" }, clockSafe(n.at)), " ", h("span", { class: "note-who" }, nameOf(t, n.person)), h("p", {}, n.text))))
        : h("p", { class: "muted" }, ...bi("尚无进展报告", "No reports yet"))));
  } else if (notes.length) {
    const last = notes[notes.length - 1];
    out.push(h("p", { class: "last-note" }, h("span", { class: "label" }, ...bi(`进展 ${notes.length} 条`, `${notes.length} report${notes.length > 1 ? "s" : ""}`)),
      " ", h("span", { class: "note-at" }, clockSafe(last.at)), " ", last.text));
  }
  return out;
}

function clockSafe(iso) {
  try { return clockFmt.format(new Date(iso)); } catch (_) { return ""; }
}

function nameOf(t, person) {
  const i = (t.assignees || []).indexOf(person);
  return i >= 0 && t.names && t.names[i] ? t.names[i] : person;
}

/** Says how the task came to this person when it was escalated to them
 * (they are not the task's first assignee), or where it went from them. */
function escalation(t) {
  const a = t.assignees || [];
  const names = t.names || [];
  const person = state.me && state.me.person_id;
  const name = (i) => names[i] || a[i] || "";
  const note = (cls, zh, en) => h("p", { class: `escalation ${cls}` }, h("span", { class: "esc-icon", "aria-hidden": "true" }, "⤴"), ...bi(zh, en));
  const i = person ? a.indexOf(person) : -1;
  const out = [];
  if (i > 0) {
    const also = i > 1 ? `，替补 ${name(1)} 亦未确认` : "";
    const alsoEn = i > 1 ? `, nor did the deputy ${name(1)}` : "";
    out.push(note("to-me", `升级转来：原责任人 ${name(0)} 未在时限内确认${also}，任务转给你`,
      `escalated to you: ${name(0)} did not acknowledge in time${alsoEn}`));
  } else if (a.length > 1 && t.state === "notified") {
    const last = name(a.length - 1);
    out.push(person
      ? note("from-me", `未在时限内确认，已升级至 ${last}；你仍可确认接收`, `not acknowledged in time: escalated to ${last}; you can still acknowledge`)
      : note("from-me", `已升级，当前由 ${last} 负责`, `escalated: now with ${last}`));
  }
  if (t.ack_by && t.ack_by !== person) {
    out.push(h("p", { class: "acked-by" }, ...bi(`已由 ${nameOf(t, t.ack_by)} 确认接收`, `acknowledged by ${nameOf(t, t.ack_by)}`)));
  }
  return out;
}

/** The buttons of a task and the text box of a report or a closing note. */
function makeActions(id, withDetails) {
  const err = h("p", { class: "error act-error", role: "alert", hidden: true });
  const ack = h("button", { type: "button", class: "primary act-ack" }, ...bi("确认接收", "Acknowledge"));
  const prog = h("button", { type: "button", class: "act-progress", "aria-expanded": "false" }, ...bi("报告进展", "Report progress"));
  const close = h("button", { type: "button", class: "act-close", "aria-expanded": "false" }, ...bi("关闭任务", "Close"));
  const details = withDetails
    ? h("a", { class: "button act-details", href: `#/task/${encodeURIComponent(id)}` }, ...bi("详情与地图", "Details & map"))
    : null;
  const title = h("label", { class: "form-title", for: `text-${id}` });
  const text = h("textarea", { id: `text-${id}`, class: "note-text", rows: "3", maxlength: "2000" });
  const submit = h("button", { type: "submit", class: "primary act-submit" });
  const cancel = h("button", { type: "button", class: "act-cancel" }, ...bi("取消", "Cancel"));
  const form = h("form", { class: "note-form", hidden: true }, title, text, h("div", { class: "buttons" }, submit, cancel));
  const buttons = h("div", { class: "buttons" }, ack, prog, close, details);
  const root = h("div", { class: "actions" }, buttons, form, err);
  let mode = "";
  let task = null;
  let busy = false;

  function open(m) {
    mode = m;
    form.dataset.mode = m;
    const progress = m === "progress";
    fill(title, ...(progress ? bi("进展情况", "Progress report") : bi("关闭说明（处置结果）", "Closing note (outcome)")));
    fill(submit, ...(progress ? bi("提交进展", "Send report") : bi("确认关闭", "Close task")));
    submit.className = `${progress ? "primary" : "danger"} act-submit`;
    text.placeholder = progress ? "如：已到场，正在疏导客流 e.g. on site, directing people" : "如：客流恢复正常 e.g. crowd back to normal";
    text.value = state.drafts.get(`${id}|${m}`) || "";
    form.hidden = false;
    err.hidden = true;
    refresh();
    text.focus();
  }
  function shut() {
    mode = "";
    delete form.dataset.mode;
    form.hidden = true;
    refresh();
  }
  async function run(action) {
    if (busy) return;
    busy = true;
    err.hidden = true;
    refresh();
    try {
      const tv = await send(`${API}/tasks/${encodeURIComponent(id)}/${action}`, action === "ack" ? undefined : { text: text.value });
      if (action !== "ack") {
        state.drafts.delete(`${id}|${action}`);
        text.value = "";
        shut();
      }
      const done = { ack: ["已确认接收", "Acknowledged"], progress: ["进展已提交", "Report sent"], close: ["任务已关闭", "Task closed"] }[action];
      toast(done[0], done[1]);
      if (tv && tv.id) upsert(tv);
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    } finally {
      busy = false;
      refresh();
    }
  }
  function refresh() {
    const t = task;
    const open = Boolean(t) && t.state !== "closed";
    const person = Boolean(state.me && state.me.person_id);
    const can = person && open && !state.offline && !busy;
    ack.hidden = !person || !t || t.state !== "notified";
    prog.hidden = !person || !open;
    close.hidden = !person || !open;
    for (const b of [ack, prog, close, submit]) b.disabled = !can;
    prog.setAttribute("aria-expanded", String(mode === "progress"));
    close.setAttribute("aria-expanded", String(mode === "close"));
    if (!open && mode) {
      mode = "";
      form.hidden = true;
    }
  }

  ack.addEventListener("click", () => run("ack"));
  prog.addEventListener("click", () => (mode === "progress" ? shut() : open("progress")));
  close.addEventListener("click", () => (mode === "close" ? shut() : open("close")));
  cancel.addEventListener("click", shut);
  text.addEventListener("input", () => state.drafts.set(`${id}|${mode}`, text.value));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); run(mode); });
  return { root, update(t) { task = t; refresh(); } };
}

// ---- a task's detail: the event map and decision support ------------------

let detailCard = null;

function renderDetail(id) {
  const key = `detail:${id}`;
  const t = state.known.get(id);
  if (state.view !== key) {
    detailCard = t ? makeCard(id, false) : null;
    const support = h("div", { id: "support", class: "support-body" });
    setMain(key,
      h("section", { id: "detail", "data-task": id },
        h("a", { href: "#/", class: "back button ghost" }, "← ", ...bi("返回任务列表", "Back to my tasks")),
        detailCard ? detailCard.el : h("p", { id: "no-task", class: "card notice" }, ...bi("没有该任务，或任务不属于你", "No such task, or not yours")),
        h("section", { class: "card support" },
          h("h3", {}, ...bi("事件地图与辅助决策", "Event map and decision support")), support)));
    if (!t) {
      if (!state.offline) loadAll().then(() => { if (state.known.has(id) && route().id === id) { state.view = ""; render(); } });
      fill(support, h("p", { class: "muted" }, ...bi("暂无辅助决策数据", "No decision-support data yet")));
      return;
    }
    const cached = state.support.get(id);
    if (cached) renderSupport(support, cached);
    else loadSupport(id, support);
  }
  if (detailCard && t) detailCard.update(t);
}

async function loadSupport(id, box) {
  fill(box, h("p", { class: "muted" }, ...bi("正在加载辅助决策数据…", "Loading decision support…")));
  try {
    const d = await api(`${API}/support?task=${encodeURIComponent(id)}`);
    state.support.set(id, d || {});
    renderSupport(box, d || {});
  } catch (e) {
    fill(box, h("p", { class: "error", role: "alert" }, e.message));
  }
}

const arr = (v) => (Array.isArray(v) ? v : []);
const finite = (v) => typeof v === "number" && isFinite(v);

function renderSupport(box, d) {
  const fire = arr(d.fire_stations);
  const shelters = arr(d.shelters);
  const stores = arr(d.warehouses);
  const units = arr(d.responsible_units);
  const people = d.people_nearby && finite(d.people_nearby.count) ? d.people_nearby : null;
  const c = d.center && finite(d.center.lon) && finite(d.center.lat) ? d.center : null;
  if (!c && !fire.length && !shelters.length && !stores.length && !people && !units.length) {
    fill(box, h("p", { id: "no-support", class: "muted no-support" }, ...bi("暂无辅助决策数据", "No decision-support data yet")));
    return;
  }
  // Without the event's location the places are the street's, not by distance.
  const distance = c ? distanceText : () => "";
  const list = (cls, zh, en, items, line) => items.length
    ? h("section", { class: `sup ${cls}` }, h("h4", {}, ...bi(zh, en)),
      h("ol", {}, items.map((it, i) => h("li", {}, h("span", { class: `chip ${cls}` }, String(i + 1)), ...line(it)))))
    : null;
  fill(box,
    c ? drawMap(c, fire, shelters, stores, people) : h("p", { class: "muted" }, ...bi("事件坐标未知，无法绘图", "Event location unknown: no map")),
    c ? legend() : null,
    c && d.center_approx === "street"
      ? h("p", { class: "muted approx", id: "center-approx" }, ...bi("事件无精确坐标，位置与距离按所在街道中心计", "No exact location: the street's centre stands in, distances are from there"))
      : null,
    people
      ? h("p", { class: "sup people", id: "people-nearby" }, h("span", { class: "chip people" }, "人"),
        ...bi(`周边约 ${people.count.toLocaleString("zh-CN")} 人（半径 ${Math.round(people.radius_m || 0)} 米内）`,
          `about ${people.count.toLocaleString("en")} people within ${Math.round(people.radius_m || 0)} m`))
      : h("p", { class: "sup people muted", id: "people-nearby" }, ...bi("周边人数：暂无", "People nearby: not available")),
    list("fire", "最近消防站", "Nearest fire stations", fire, (f) => [h("span", { class: "name" }, f.name || ""), " ", h("span", { class: "dist" }, distance(f.distance_m))]),
    list("shelter", "避难场所", "Shelters", shelters, (p) => [h("span", { class: "name" }, p.name || ""), " ",
      finite(p.capacity_people) ? h("span", { class: "cap" }, ...bi(`可容纳 ${p.capacity_people.toLocaleString("zh-CN")} 人`, `holds ${p.capacity_people.toLocaleString("en")}`)) : null,
      " ", h("span", { class: "dist" }, distance(p.distance_m))]),
    list("store", "应急物资仓库", "Supply warehouses", stores, (w) => [h("span", { class: "name" }, w.name || ""), " ", h("span", { class: "dist" }, distance(w.distance_m))]),
    units.length ? h("section", { class: "sup units" }, h("h4", {}, ...bi("责任单位", "Responsible units")),
      h("ul", {}, units.map((u) => h("li", {}, String(u))))) : null,
  );
}

function legend() {
  const item = (cls, zh, en) => h("li", {}, h("span", { class: `chip ${cls}` }, ""), ...bi(zh, en));
  return h("ul", { class: "legend" }, item("event", "事发地", "Event"), item("fire", "消防站", "Fire station"),
    item("shelter", "避难场所", "Shelter"), item("store", "物资仓库", "Warehouse"));
}

/** The event and the points around it on a schematic map: metres east and
 * north of the event, rings every "nice" distance. No tiles, no network. */
function drawMap(c, fire, shelters, stores, people) {
  const W = 360;
  const H = 280;
  const pad = 26;
  const kx = 111320 * Math.cos((c.lat * Math.PI) / 180);
  const ky = 110540;
  const at = (p) => [(p.lon - c.lon) * kx, (p.lat - c.lat) * ky];
  const placed = (items) => items.filter((p) => finite(p.lon) && finite(p.lat));
  const groups = [["fire", placed(fire)], ["shelter", placed(shelters)], ["store", placed(stores)]];
  let ext = 200;
  for (const [, items] of groups) {
    for (const p of items) { const [x, y] = at(p); ext = Math.max(ext, Math.abs(x), Math.abs(y)); }
  }
  if (people && finite(people.radius_m)) ext = Math.max(ext, people.radius_m);
  ext *= 1.08;
  const k = Math.min((W / 2 - pad) / ext, (H / 2 - pad) / ext); // px per metre
  const X = (m) => W / 2 + m * k;
  const Y = (m) => H / 2 - m * k;
  const step = [50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000].find((v) => ext / v <= 3) || 50000;
  const svg = s("svg", { id: "event-map", class: "map", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "事件位置示意图 Schematic map of the event" });
  svg.append(s("rect", { class: "map-bg", x: 0, y: 0, width: W, height: H, rx: 8 }));
  for (let r = step; r <= ext * 1.05; r += step) {
    svg.append(s("circle", { class: "ring", cx: X(0), cy: Y(0), r: r * k }));
    svg.append(s("text", { class: "ring-label", x: X(r * 0.7071) + 2, y: Y(r * 0.7071) - 2 }, distanceText(r)));
  }
  if (people && finite(people.radius_m) && people.radius_m > 0) {
    svg.append(s("circle", { class: "people-area", cx: X(0), cy: Y(0), r: people.radius_m * k },
      s("title", {}, `周边约 ${people.count} 人 / about ${people.count} people`)));
  }
  for (const [cls, items] of groups) {
    items.forEach((p, i) => {
      const [mx, my] = at(p);
      const x = X(mx);
      const y = Y(my);
      const g = s("g", { class: `marker ${cls}`, "data-kind": cls }, s("title", {}, `${p.name || ""} ${distanceText(p.distance_m)}`));
      if (cls === "fire") g.append(s("rect", { x: x - 9, y: y - 9, width: 18, height: 18, rx: 3 }));
      else if (cls === "shelter") g.append(s("polygon", { points: `${x},${y - 11} ${x + 10},${y + 8} ${x - 10},${y + 8}` }));
      else g.append(s("polygon", { points: `${x},${y - 11} ${x + 11},${y} ${x},${y + 11} ${x - 11},${y}` }));
      g.append(s("text", { x, y: y + (cls === "shelter" ? 5 : 4), "text-anchor": "middle" }, String(i + 1)));
      svg.append(g);
    });
  }
  svg.append(s("circle", { class: "event-ring", cx: X(0), cy: Y(0), r: 15 }));
  svg.append(s("circle", { class: "event", id: "event-point", cx: X(0), cy: Y(0), r: 8 }, s("title", {}, "事发地 Event")));
  // North arrow and scale bar.
  svg.append(s("path", { class: "north", d: `M ${W - 22} 16 l 7 18 l -7 -5 l -7 5 z` }));
  svg.append(s("text", { class: "north-label", x: W - 22, y: 46, "text-anchor": "middle" }, "北 N"));
  svg.append(s("line", { class: "scale", x1: 12, y1: H - 14, x2: 12 + step * k, y2: H - 14 }));
  svg.append(s("text", { class: "scale-label", x: 12, y: H - 20 }, distanceText(step)));
  return svg;
}

// ---- start ---------------------------------------------------------------

if ("serviceWorker" in navigator) {
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("sw.js", { scope: "./" }).catch((err) => console.warn("service worker not registered:", err));
  });
}

boot();
