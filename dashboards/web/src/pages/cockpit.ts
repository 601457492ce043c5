import { api, Section } from "../api";
import { h, text, fmtTime, table, clear, dataText } from "../dom";
import { t, getLang, pick, levelOrder, levelColor, val } from "../i18n";
import { card, draw, missing, levelLegend } from "../charts";
import { state, qs, streetName } from "../state";
import { setFilter } from "../filters";
import { render } from "../main";
import { WarningsFreshness, Paths, PathRow, staleBanner, isLive, shortTime, statusBadge, pathLabel, lagCell, eventCell } from "../freshness";

let liveBox: HTMLElement | null = null;
let pageEl: HTMLElement | null = null;
let levelsEl: HTMLElement | null = null;
let byTime: Record<string, any>[] = [];
let fresh: WarningsFreshness | null = null;
let pathsBody: HTMLElement | null = null;
let pathRows: PathRow[] = [];

/** A warning pushed by the server: shown at the top of the live list. */
export function onLiveWarning(w: Record<string, unknown>) {
  if (!liveBox || !document.body.contains(liveBox)) return;
  liveBox.querySelector(".empty")?.remove();
  liveBox.insertBefore(warnRow(w, true), liveBox.firstChild);
}

/**
 * The warnings' freshness, at render and from the live stream: the stale
 * banner, the live counts by level and the live marks of the list follow
 * it without a reload.
 */
export function applyFreshness(f: WarningsFreshness) {
  fresh = f;
  if (!pageEl || !document.body.contains(pageEl)) return;
  const old = pageEl.querySelector("#stale-banner");
  if (f.stale) {
    const b = staleBanner(f);
    if (old) old.replaceWith(b); else pageEl.insertBefore(b, pageEl.firstChild);
  } else old?.remove();
  drawLevels();
  if (f.paths) drawPaths(f.paths.rows);
  liveBox?.querySelectorAll<HTMLElement>(".w[data-event-time]").forEach((r) => markRow(r, isLive(r.dataset.eventTime, fresh)));
}

/** The freshness card: every path, the worst first. */
function drawPaths(rows: PathRow[]) {
  if (!pathsBody) return;
  const rank: Record<string, number> = { error: 0, warn: 1, ok: 2, unknown: 3 };
  pathRows = rows.map((r, i) => ({ r, i })).sort((a, b) => (rank[a.r.level] ?? 4) - (rank[b.r.level] ?? 4) || a.i - b.i).map((x) => x.r);
  clear(pathsBody);
  pathsBody.appendChild(pathRows.length ? table([
    { key: "level", label: t("status"), render: (r) => statusBadge(r.level) },
    { key: "key", label: t("path"), render: (r) => pathLabel(r) },
    { key: "event_time", label: t("newest_event"), render: (r) => eventCell(r) },
    { key: "lag_s", label: t("lag_words"), num: true, render: (r) => lagCell(r) }], pathRows) : missing(undefined)!);
  pathsBody.querySelectorAll("tbody tr").forEach((tr, i) => { tr.setAttribute("data-path", pathRows[i].key); tr.setAttribute("data-level", pathRows[i].level); });
}

/** Active warnings by level: the live ones large, those not live apart. */
function drawLevels() {
  if (!levelsEl) return;
  const live: Record<string, number> = {}, stale: Record<string, number> = {};
  let nStale = 0;
  for (const r of byTime) {
    const l = String(r.level), n = Number(r.n);
    if (isLive(r.event_time, fresh)) live[l] = (live[l] || 0) + n;
    else { stale[l] = (stale[l] || 0) + n; nStale += n; }
  }
  clear(levelsEl);
  levelsEl.appendChild(h("div", { class: "levels" }, ...levelOrder.map((l) => h("div", { class: "lvl " + l, "data-level": l },
    h("div", { class: "v" }, String(live[l] || 0)), h("div", null, t(l)),
    stale[l] ? h("div", { class: "stale-n", "data-stale": String(stale[l]) }, "+" + stale[l] + " " + t("not_live")) : null))));
  if (nStale && fresh?.live_after) levelsEl.appendChild(h("p", { class: "small stale-note", id: "not-live-count" },
    `${nStale} ${t("not_live_n")} ${shortTime(fresh.live_after)}）`));
}

function markRow(r: HTMLElement, live: boolean) {
  r.classList.toggle("notlive", !live);
  const tag = r.querySelector(".tag-notlive");
  if (live) tag?.remove();
  else if (!tag) r.querySelector(".head")?.appendChild(h("span", { class: "tag-notlive" }, t("not_live")));
}

/** A warning: event time first (when the data happened), the engine's processing time apart. */
function warnRow(w: Record<string, unknown>, isNew = false): HTMLElement {
  const lv = String(w.level || "");
  const r = h("div", { class: "w" + (isNew ? " new" : ""), "data-warning-id": String(w.warning_id || ""), "data-event-time": String(w.event_time || "") },
    h("div", { class: "head" }, h("span", { class: "badge " + lv }, t(lv)), " ", h("b", null, dataText(pick(w, "subject_name"))), " · ", t("state_" + String(w.state || "")), " "),
    h("div", { class: "times" }, h("span", { class: "et" }, t("event_time") + " " + fmtTime(w.event_time)),
      h("span", { class: "muted pt" }, t("processed_at") + " " + fmtTime(w.transition_at))),
    // The engine's text (TestMessagesInWords): its names are the data's.
    h("div", { "data-raw": "message" }, pick(w, "message")));
  markRow(r, isLive(w.event_time, fresh));
  return r;
}

export async function cockpit(el: HTMLElement) {
  const [data, warns] = await Promise.all([
    api<{ lake: Record<string, Section>; freshness: Section; paths: Paths; warnings_freshness: WarningsFreshness }>("/api/dash/cockpit?" + qs()),
    api<{ warnings: Section }>("/api/dash/warnings?" + qs()),
  ]);
  const d = data.lake;
  const grid = h("div", { class: "grid" });
  el.appendChild(grid);
  pageEl = el;

  // KPIs of the plan's ten targets and the response KPIs (11–13; lower is
  // better for the minutes to acknowledge: "≤ goal").
  const kp = card(t("kpis"), "span12", () => d.kpis.rows || [], "kpis");
  const km = missing(d.kpis);
  if (km) kp.body.appendChild(km);
  else kp.body.appendChild(h("div", { class: "kpis" }, ...d.kpis.rows!.map((k) => {
    const st = String(k.status || "");
    const arrow = k.trend === "up" ? " ↑" : k.trend === "down" ? " ↓" : k.trend === "flat" ? " →" : "";
    return h("div", { class: "kpi " + st, "data-kpi": String(k.target_no ?? "") },
      h("div", { class: "v" }, k.figure == null ? "—" : text(k.figure), h("small", null, " / " + (k.better === "lower" ? "≤ " : "") + text(k.goal) + (k.unit_zh == null ? "" : (pick(k, "unit") === "%" ? " %" : " " + pick(k, "unit")))), arrow),
      h("div", null, pick(k, "target")),
      h("div", { class: "n" }, t("kpi_" + st)));
  })));
  grid.appendChild(kp.el);

  // Active warnings by level (live ones: by event time) + the live list.
  const lvRows = d.warnings_by_level.rows || [];
  const wl = card(t("warnings_by_level"), "span4", () => lvRows, "warnings_by_level");
  const wm = missing(d.warnings_by_level);
  byTime = d.active_warnings_by_time?.rows || [];
  levelsEl = h("div", { id: "warning-levels" });
  wl.body.appendChild(levelsEl);
  if (wm && d.warnings_by_level.missing) wl.body.appendChild(wm);
  liveBox = h("div", { class: "warnlist", id: "live-warnings" });
  const wsec = warns.warnings;
  const lm = missing(wsec);
  fresh = data.warnings_freshness;
  if (lm) liveBox.appendChild(lm); else for (const w of wsec.rows!) liveBox.appendChild(warnRow(w));
  wl.body.appendChild(h("h2", null, t("live_warnings")));
  wl.body.appendChild(liveBox);
  grid.appendChild(wl.el);
  applyFreshness(data.warnings_freshness);

  // Enterprises by risk level and street: click a street to filter the page.
  const ent = d.enterprises_by_level_street;
  const ec = card(t("ent_by_street"), "span8", () => ent.rows || [], "enterprises_by_level_street");
  grid.appendChild(ec.el);
  const em = missing(ent);
  if (em) ec.body.appendChild(em);
  else {
    const streets = [...new Set(ent.rows!.map((r) => String(r.street_code)))];
    const ch = draw(ec, {
      legend: levelLegend(ent.rows!), grid: { left: 40, right: 10, top: 36, bottom: 60 },
      xAxis: { type: "category", data: streets.map((s) => streetName(s, getLang())), axisLabel: { rotate: 30, color: "#8fa6c6" } },
      yAxis: { type: "value", axisLabel: { color: "#8fa6c6" } },
      tooltip: { ...({} as any), trigger: "axis", renderMode: "richText" },
      series: levelOrder.map((l) => ({ name: t(l), type: "bar", stack: "n", barMaxWidth: 64, itemStyle: { color: levelColor[l] },
        data: streets.map((s) => Number(ent.rows!.find((r) => r.street_code === s && r.level === l)?.n || 0)) })),
    });
    ch.on("click", (p: any) => setFilter({ street: streets[p.dataIndex] }, render));
  }

  // Trends of incidents, 12345 events and warnings: click a day to narrow the range.
  const days = new Set<string>();
  const trend: Record<string, Section> = { incidents: d.trend_incidents, events12345: d.trend_events, warnings: d.trend_warnings };
  for (const s of Object.values(trend)) for (const r of s.rows || []) days.add(String(r.day).slice(0, 10));
  const dayList = [...days].sort();
  const tc = card(t("trends"), "span8", () => dayList.map((day) => ({ day, ...Object.fromEntries(Object.entries(trend).map(([k, s]) => [k, Number((s.rows || []).find((r) => String(r.day).slice(0, 10) === day)?.n || 0)])) })), "trends");
  grid.appendChild(tc.el);
  if (!dayList.length) tc.body.appendChild(missing(undefined)!);
  else {
    const ch = draw(tc, {
      legend: { top: 0, textStyle: { color: "#e6eefb" } }, grid: { left: 40, right: 10, top: 36, bottom: 30 },
      xAxis: { type: "category", data: dayList, axisLabel: { color: "#8fa6c6" } }, yAxis: { type: "value", axisLabel: { color: "#8fa6c6" } },
      tooltip: { trigger: "axis", renderMode: "richText" },
      series: Object.entries(trend).map(([k, s]) => ({ name: t(k), type: "line", data: dayList.map((day) => Number((s.rows || []).find((r) => String(r.day).slice(0, 10) === day)?.n || 0)) })),
    });
    ch.on("click", (p: any) => setFilter({ from: dayList[p.dataIndex], to: dayList[p.dataIndex] }, render));
  }

  // 12345 categories (pie) and the latest requests (text only).
  const cat = d.events_by_category;
  const cc = card(t("events_by_category"), "span4", () => cat.rows || [], "events_by_category");
  grid.appendChild(cc.el);
  const cm = missing(cat);
  if (cm) cc.body.appendChild(cm);
  else draw(cc, { tooltip: { trigger: "item", renderMode: "richText" },
    series: [{ type: "pie", radius: ["35%", "65%"], label: { color: "#e6eefb" }, data: cat.rows!.map((r) => ({ name: val(r.category) || "—", value: Number(r.n) })) }] });

  const re = d.recent_events;
  const rc = card(t("recent_events"), "span6", () => re.rows || [], "recent_events");
  grid.appendChild(rc.el);
  const rm = missing(re);
  rc.body.appendChild(rm || h("div", { class: "scroll", id: "recent-events" }, table([
    { key: "requested_at", label: t("time"), render: (r) => fmtTime(r.requested_at) },
    { key: "category", label: t("category"), render: (r) => val(r.category) }, { key: "description", label: t("description"), render: (r) => dataText(r.description) },
    { key: "street_code", label: t("street"), render: (r) => streetName(String(r.street_code || ""), getLang()) },
    { key: "status", label: t("status"), render: (r) => val(r.status) }], re.rows!)));

  // Freshness of every path at a glance (the same rows as 数据健康), the worst first.
  const fc = card(t("paths_card"), "span6", () => pathRows as any, "freshness");
  grid.appendChild(fc.el);
  pathsBody = h("div", { class: "scroll", id: "freshness-paths" });
  fc.body.appendChild(pathsBody);
  if (data.paths) drawPaths(data.paths.rows);
  else pathsBody.appendChild(missing(data.freshness) || missing(undefined)!);
  void state;
}
