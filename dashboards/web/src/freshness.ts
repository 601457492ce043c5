// How old what the pages show is: the rows of the server's freshness
// registry (数据健康, the cockpit's freshness card) and the warnings'
// freshness (the cockpit's stale banner and which warnings are live).
import { h, fmtTime, text } from "./dom";
import { t, getLang, has } from "./i18n";
import { tableTitle } from "./state";

/** One row of the freshness table (dashboards.PathRow). */
export interface PathRow {
  key: string; component: string; name: string; table?: string; tables?: string[]; names?: string[]; instances?: string[];
  event_time: string | null; input_event_time: string | null; last_commit: string | null;
  lag_s: number; age_zh: string; age_en: string; event_lag_s: number; caught_up: boolean;
  behind: number; rejects: number; rows: number; level: string; reported: boolean; error?: string; note?: string;
}
export interface Paths { level: string; rows: PathRow[]; at: string; }

/** The warnings' freshness (dashboards.WarningsFreshness). */
export interface WarningsFreshness {
  reported: boolean; stale: boolean; lag_s: number; age_zh: string; age_en: string; level: string;
  event_time: string | null; data_event_time: string | null; behind: number; live_after: string | null;
  stale_after_s: number; error?: string; at: string;
  /** Every path's freshness: on the live stream only. */
  paths?: Paths;
}

/** A duration in words, as the server's freshness.Age. */
export function ageWords(s: number, zh = getLang() === "zh"): string {
  s = Math.max(0, s); // a commit stamped a moment after the page's clock is not in the future
  if (s < 90) return zh ? `${Math.round(s)} 秒` : `${Math.round(s)} s`;
  if (s < 90 * 60) return zh ? `${Math.round(s / 60)} 分钟` : `${Math.round(s / 60)} min`;
  if (s < 36 * 3600) return zh ? `${(s / 3600).toFixed(1)} 小时` : `${(s / 3600).toFixed(1)} h`;
  return zh ? `${(s / 86400).toFixed(1)} 天` : `${(s / 86400).toFixed(1)} days`;
}

/** The row's path in words: the source's name, 预警引擎, 查询层 (pgwire, api_sql) … */
export function pathLabel(r: PathRow): string {
  switch (r.component) {
    case "source": return tableTitle(r.table || "", getLang()) || r.name;
    case "warnings": return t("path_warnings_" + r.name);
    case "models": return t("path_models");
    case "query": {
      const ns = (r.names?.length ? r.names : r.name ? [r.name] : []).map((n) => (has("query_" + n) ? t("query_" + n) : n));
      return t("path_query") + (ns.length ? "（" + ns.join("、") + "）" : "");
    }
  }
  return r.component + (r.name ? " / " + r.name : "");
}

/** A coloured status: green ok, yellow warn, red error, grey unknown. */
export function statusBadge(level: string): HTMLElement {
  return h("span", { class: "status " + level, "data-level": level }, h("i", { class: "dot" }), t("level_" + level));
}

/** The lag in words ("已追平" when caught up, "—" when not reported). */
export function lagText(r: PathRow): string {
  if (!r.reported) return "—";
  if (r.caught_up || r.lag_s <= 0) return t("caught_up");
  return getLang() === "zh" ? r.age_zh : r.age_en;
}

/** The lag cell: wall lag, and under it the data-time gap to the newest input when there is one. */
export function lagCell(r: PathRow): HTMLElement {
  const el = h("span", { "data-lag-s": String(r.lag_s) }, lagText(r));
  if (r.reported && r.event_lag_s > 0) el.appendChild(h("div", { class: "muted small" }, t("event_gap") + " " + ageWords(r.event_lag_s)));
  return el;
}

/** What the row says besides its figures: an error, not reported, a note. */
export function noteCell(r: PathRow): HTMLElement | string {
  if (r.error) return h("span", { class: "error" }, r.error);
  if (r.note === "not_reported" || r.note === "waiting") return t("note_" + r.note);
  if (!r.reported) return t("note_no_registry") + (r.note ? "；" + r.note : "");
  return r.note || "";
}

/** The row's table; an aggregated row names its worst path's table and how many more (all in the tooltip). */
export function tablesOf(r: PathRow): HTMLElement | string {
  const lang = getLang();
  const all = r.tables?.length ? r.tables : r.table ? [r.table] : [];
  if (!all.length) return "";
  const first = r.table || all[0];
  // The title people read, the table's name as code (what SQL users type).
  const one = (name: string) => h("span", null, tableTitle(name, lang) || "", " ", h("code", { class: "tname" }, name));
  if (all.length === 1) return one(first);
  const more = lang === "zh" ? ` 等 ${all.length} 张表` : ` and ${all.length - 1} more`;
  return h("span", { title: all.map((n) => tableTitle(n, lang) || n).join("\n"), "data-tables": all.join(" ") }, one(first), more);
}

export function eventCell(r: PathRow): string { return r.event_time ? fmtTime(r.event_time) : "—"; }

/** MM-DD HH:mm of a server time. */
export function shortTime(v: string | null): string { return v ? fmtTime(v).slice(5) : ""; }

/** Is a warning with this event time live (实时) under f? */
export function isLive(eventTime: unknown, f: WarningsFreshness | null): boolean {
  if (!f || !f.live_after) return true;
  const t0 = Date.parse(String(eventTime || ""));
  return !isNaN(t0) && t0 >= Date.parse(f.live_after);
}

/** The red banner of a stale warnings path, Chinese with English alongside. */
export function staleBanner(f: WarningsFreshness): HTMLElement {
  const at = shortTime(f.event_time);
  const zh = `预警数据已滞后 ${f.age_zh}` + (at ? `（最新事件 ${at}）` : "");
  const en = `Warnings are ${f.age_en} behind` + (at ? ` (newest event ${at})` : "");
  const more: string[] = [];
  if (f.behind > 0) more.push(`待处理 ${text(f.behind)} 条 · ${text(f.behind)} records not yet evaluated`);
  more.push(`以下预警不一定是实时的 · the warnings below may not be live`);
  return h("div", { class: "banner stale", id: "stale-banner", role: "alert", "data-lag-s": String(Math.round(f.lag_s)) },
    h("div", { class: "zh" }, "⚠ " + zh), h("div", { class: "en" }, en),
    h("div", { class: "more" }, more.join("；"), " ", h("a", { href: "#/health" }, "数据健康 Data health →")));
}
