import { api, Section } from "../api";
import { h, fmtTime, table, text } from "../dom";
import { t, getLang } from "../i18n";
import { card, missing } from "../charts";
import { ago } from "./cockpit";

/** Per source: last record, lag, rows today, rejects with their reasons. */
export async function healthPage(el: HTMLElement) {
  const d = await api<{ sources: Section; tables: Record<string, any>; rejects: Record<string, { reason: string; count: number; last: string }[]>; at: string }>("/api/dash/health");
  const zh = getLang() === "zh";
  const rows = (d.sources.rows || []).map((s) => ({ ...s, last_record: d.tables[s.table]?.last_record ?? null, rows_today: d.tables[s.table]?.rows_today ?? null }));
  const grid = h("div", { class: "grid" });
  el.appendChild(grid);
  const c = card(t("health") + " · " + t("updated") + " " + fmtTime(d.at), "span12", () => rows, "health");
  grid.appendChild(c.el);
  c.body.appendChild(missing(d.sources) || table([
    { key: "source", label: t("source") }, { key: "table", label: t("table") },
    { key: "last_record", label: t("last_record"), render: (r) => fmtTime(r.last_record) },
    { key: "last_commit", label: t("last_commit"), render: (r) => fmtTime(r.last_commit) },
    { key: "age_s", label: t("age"), num: true, render: (r) => r.age_s == null ? "—" : ago(Number(r.age_s), zh) },
    { key: "lag", label: t("lag"), num: true }, { key: "rows_today", label: t("rows_today"), num: true },
    { key: "rows", label: t("rows"), num: true }, { key: "rejects", label: t("rejects"), num: true }], rows));
  const rc = card(t("reasons"), "span12", () => Object.entries(d.rejects || {}).flatMap(([source, rs]) => rs.map((r) => ({ source, ...r }))), "rejects");
  grid.appendChild(rc.el);
  const rr = Object.entries(d.rejects || {}).flatMap(([source, rs]) => rs.map((r) => ({ source, ...r })));
  rc.body.appendChild(rr.length ? table([{ key: "source", label: t("source") }, { key: "reason", label: t("reasons") },
    { key: "count", label: t("n"), num: true, render: (r) => text(r.count) }, { key: "last", label: t("time"), render: (r) => fmtTime(r.last) }], rr) : missing(undefined)!);
}
