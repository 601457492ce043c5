import { api, Section } from "../api";
import { h, text, fmtTime, table, dataText } from "../dom";
import { t, getLang, pick, val, fieldName } from "../i18n";
import { card, draw, missing } from "../charts";
import { qs, state, streetName } from "../state";
import { render } from "../main";

interface DeptCard { id: string; title_zh: string; title_en: string; kind: "figures" | "daily" | "bar" | "table"; span: string; section: Section; }
interface DeptAnswer { department: string; departments: { name: string; name_zh: string; name_en: string }[]; cards: DeptCard[]; }

/** The department chosen on this page (leaders and admins choose; a department user has its own). */
let chosen = "";

/**
 * 本部门: a department's own data — the cards the server lists for it
 * (dashboards/dept.go), each drawn by its kind: figures, a daily line, a
 * bar of categories, a table.
 */
export async function deptPage(el: HTMLElement) {
  const lang = getLang();
  const extra: Record<string, string> = {};
  if (state.me?.role !== "department" && chosen) extra.dept = chosen;
  const d = await api<DeptAnswer>("/api/dash/dept?" + qs(extra));
  const grid = h("div", { class: "grid" });
  if (d.departments.length > 1) {
    const sel = h("select", { id: "dept-select" }, ...d.departments.map((x) => {
      const o = h("option", { value: x.name }, lang === "zh" ? x.name_zh : x.name_en);
      if (x.name === d.department) o.setAttribute("selected", "");
      return o;
    })) as HTMLSelectElement;
    sel.addEventListener("change", () => { chosen = sel.value; render(); });
    el.appendChild(h("div", { class: "deptsel" }, t("department"), sel));
  } else {
    const x = d.departments[0];
    if (x) el.appendChild(h("h2", { id: "dept-name" }, lang === "zh" ? x.name_zh : x.name_en));
  }
  el.appendChild(grid);
  for (const c of d.cards) {
    const rows = c.section.rows || [];
    const cd = card(lang === "zh" ? c.title_zh : c.title_en, c.span, () => rows, c.id);
    grid.appendChild(cd.el);
    const m = missing(c.section);
    if (m && c.kind !== "figures") { cd.body.appendChild(m); continue; }
    switch (c.kind) {
      case "figures": {
        if (m) { cd.body.appendChild(m); break; }
        const r = rows[0];
        cd.body.appendChild(h("div", { class: "figs", "data-figures": c.id }, ...(c.section.columns || Object.keys(r)).map((k) =>
          h("div", { class: "kpi", "data-figure": k }, h("div", { class: "v" }, text(r[k])), h("div", { class: "n" }, colName(k))))));
        break;
      }
      case "daily":
        draw(cd, {
          grid: { left: 44, right: 10, top: 16, bottom: 30 }, tooltip: { trigger: "axis", renderMode: "richText" },
          xAxis: { type: "category", data: rows.map((r) => String(r.day).slice(0, 10)), axisLabel: { color: "#8fa6c6" } },
          yAxis: { type: "value", axisLabel: { color: "#8fa6c6" } },
          series: [{ name: lang === "zh" ? c.title_zh : c.title_en, type: "line", data: rows.map((r) => Number(r.n)) }],
        });
        break;
      case "bar":
        draw(cd, {
          grid: { left: 110, right: 16, top: 10, bottom: 24 }, tooltip: { trigger: "axis", renderMode: "richText" },
          yAxis: { type: "category", inverse: true, data: rows.map((r) => val(r.label) || "—"), axisLabel: { color: "#8fa6c6" } },
          xAxis: { type: "value", axisLabel: { color: "#8fa6c6" } },
          series: [{ name: lang === "zh" ? c.title_zh : c.title_en, type: "bar", data: rows.map((r) => Number(r.n)), itemStyle: { color: "#3aa0ff" } }],
        });
        break;
      case "table":
        cd.body.appendChild(h("div", { class: "wide" }, table(columns(rows[0], c.section.columns).map((k) => ({
          key: k, label: colName(k), num: typeof rows[0][k] === "number" && !/_code$/.test(k),
          render: (r: Record<string, any>) => cell(r, k),
        })), rows)));
        break;
    }
  }
}

/** A table's columns: a _zh/_en pair becomes one column in the page's language. */
function columns(r: Record<string, unknown>, order?: string[]): string[] {
  const out: string[] = [];
  for (const k of order || Object.keys(r)) {
    if (k.endsWith("_en") && (k.slice(0, -3) + "_zh") in r) continue;
    out.push(k.endsWith("_zh") && (k.slice(0, -3) + "_en") in r ? k.slice(0, -3) : k);
  }
  return out;
}

function cell(r: Record<string, any>, k: string): Node | string {
  const lang = getLang();
  const v = (k + "_zh") in r ? pick(r, k) : r[k];
  if (v == null || v === "") return "—";
  if (k === "street_code") return streetName(String(v), lang);
  if (/_at$|_on$/.test(k) || k === "at") return fmtTime(v);
  if (typeof v === "boolean" || ["kind", "site_kind", "owner_kind", "status", "event", "channel"].includes(k)) return val(v);
  if (typeof v === "string") return /_id$/.test(k) ? h("code", { class: "tname" }, v) : dataText(v);
  return text(v);
}

function colName(k: string): string { return fieldName(k); }
