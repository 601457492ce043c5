import { api, Section } from "../api";
import { h, fmtTime, table, text } from "../dom";
import { t, getLang } from "../i18n";
import { tableTitle } from "../state";
import { card, missing } from "../charts";
import { Paths, PathRow, statusBadge, pathLabel, lagCell, eventCell, noteCell, tablesOf } from "../freshness";

/**
 * 数据健康: one row per source, the warning engine and its sink, the model
 * runner and the query layer — newest event time, lag in words, records
 * behind, last commit and a status; the page is not green when any row is.
 * Then the sources' dead-letter reasons.
 */
export async function healthPage(el: HTMLElement) {
  const d = await api<{ sources: Section; tables: Record<string, any>; rejects: Record<string, { reason: string; count: number; last: string }[]>; at: string; paths: Paths }>("/api/dash/health");
  const paths = d.paths || { level: "unknown", rows: [], at: d.at };
  // The worst first (alarm, warning, OK, not reported), in the server's order within a level:
  // sources, the warning engine and sink, the model runner, the query layer.
  const rank: Record<string, number> = { error: 0, warn: 1, ok: 2, unknown: 3 };
  const rows = paths.rows.map((r, i) => ({ r, i })).sort((a, b) => (rank[a.r.level] ?? 4) - (rank[b.r.level] ?? 4) || a.i - b.i).map(({ r }) => {
    const tb = r.table ? d.tables[r.table] : undefined;
    // A source without a reported event time: the lake's newest record.
    return { ...r, event_time: r.event_time ?? tb?.last_record ?? null, rows_today: tb?.rows_today ?? null } as PathRow & { rows_today: number | null };
  });
  const level = rows.length ? paths.level : "unknown";
  const nUnknown = rows.filter((r) => r.level === "unknown").length;
  el.appendChild(h("div", { class: "health-status " + level, id: "health-status", "data-level": level },
    statusBadge(level), " ", t("health_" + level),
    nUnknown ? h("span", { class: "muted small", id: "health-unknown" }, `（${nUnknown} ${t("paths_unknown")}）`) : null));
  const grid = h("div", { class: "grid" });
  el.appendChild(grid);
  const c = card(t("health") + " · " + t("updated") + " " + fmtTime(paths.at || d.at), "span12", () => rows as any, "health");
  grid.appendChild(c.el);
  if (!rows.length) c.body.appendChild(missing(d.sources) || missing(undefined)!);
  else {
    const tb = table([
      { key: "level", label: t("status"), render: (r) => statusBadge(r.level) },
      { key: "key", label: t("path"), render: (r) => pathLabel(r) },
      { key: "table", label: t("table"), render: (r) => tablesOf(r) },
      { key: "event_time", label: t("newest_event"), render: (r) => eventCell(r) },
      { key: "lag_s", label: t("lag_words"), render: (r) => lagCell(r) },
      { key: "behind", label: t("behind"), num: true, render: (r) => r.reported || r.behind ? text(r.behind) : "—" },
      { key: "last_commit", label: t("last_commit"), render: (r) => fmtTime(r.last_commit) || "—" },
      { key: "rows_today", label: t("rows_today"), num: true },
      { key: "rejects", label: t("rejects"), num: true, render: (r) => r.component === "source" ? text(r.rejects) : "" },
      { key: "instances", label: t("instance"), render: (r) => (r.instances || []).join(", ") || "—" },
      { key: "note", label: t("note"), render: (r) => noteCell(r) }], rows);
    // For support and the tests: each row says which path it is and its level.
    tb.querySelectorAll("tbody tr").forEach((tr, i) => { tr.setAttribute("data-path", rows[i].key); tr.setAttribute("data-level", rows[i].level); });
    c.body.appendChild(h("div", { class: "wide", id: "health-paths" }, tb));
  }
  const rc = card(t("reasons"), "span12", () => Object.entries(d.rejects || {}).flatMap(([source, rs]) => rs.map((r) => ({ source, ...r }))), "rejects");
  grid.appendChild(rc.el);
  const rr = Object.entries(d.rejects || {}).flatMap(([source, rs]) => rs.map((r) => ({ source, ...r })));
  // A source by its table's title; the reasons are the connectors' (bilingual) words.
  const tableOf = Object.fromEntries(paths.rows.filter((r) => r.component === "source").map((r) => [r.name, r.table || ""]));
  rc.body.appendChild(rr.length ? table([{ key: "source", label: t("source"), render: (r) => tableTitle(tableOf[r.source] || "", getLang()) || h("code", { class: "tname" }, r.source) },
    { key: "reason", label: t("reasons"), render: (r) => h("span", { "data-raw": "message" }, r.reason) },
    { key: "count", label: t("n"), num: true, render: (r) => text(r.count) }, { key: "last", label: t("time"), render: (r) => fmtTime(r.last) }], rr) : missing(undefined)!);
}
