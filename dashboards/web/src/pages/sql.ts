import { api } from "../api";
import { h, clear, table, download, toCSV, text } from "../dom";
import { t, getLang } from "../i18n";

interface CatalogTable { table: string; description_zh?: string; description_en?: string; rows?: number | null; }
interface CatalogColumn { table: string; column: string; type?: string; description_zh?: string; description_en?: string; }
type Col = string | { name: string; type?: string };

/** The analysts' SQL console: POST /api/sql (the SQL access service: sandboxed, scoped, audited). */
export async function sqlPage(el: HTMLElement) {
  let cat: { tables: CatalogTable[]; columns: CatalogColumn[] } = { tables: [], columns: [] };
  try { cat = await api("/api/catalog"); } catch { /* the list stays empty; queries still run */ }
  const zh = getLang() === "zh";
  const ta = h("textarea", { class: "sql", id: "sql-text", spellcheck: "false" }) as HTMLTextAreaElement;
  ta.value = "SELECT street_code, count(*) AS n FROM raw.city_events GROUP BY 1 ORDER BY 2 DESC";
  const out = h("div", { class: "scroll", id: "sql-result" });
  const cols = h("div", { class: "scroll", id: "sql-columns" });
  let last: Record<string, unknown>[] = [];
  const run = async () => {
    clear(out);
    out.appendChild(h("p", { class: "muted" }, t("loading")));
    try {
      const res = await api<{ columns: Col[]; rows: unknown[][]; truncated?: boolean; error?: string; elapsed_ms?: number }>("/api/sql?format=json", { form: { q: ta.value } });
      const names = res.columns.map((c) => typeof c === "string" ? c : c.name);
      last = res.rows.map((r) => Object.fromEntries(names.map((c, i) => [c, r[i]])));
      clear(out);
      out.appendChild(h("p", { class: "muted", id: "sql-count" }, `${res.rows.length} ${t("sql_rows")}${res.truncated ? " " + t("truncated") : ""}${res.elapsed_ms != null ? " · " + res.elapsed_ms + " ms" : ""}`));
      if (res.error) out.appendChild(h("p", { class: "error", id: "sql-error" }, res.error));
      out.appendChild(table(names.map((c) => ({ key: c, label: c })), last));
    } catch (e) { clear(out); out.appendChild(h("p", { class: "error", id: "sql-error" }, (e as Error).message)); }
  };
  const showCols = (tbl: string) => {
    clear(cols);
    cols.appendChild(table([{ key: "column", label: t("name") }, { key: "type", label: "type" },
      { key: "d", label: t("description"), render: (c) => String((zh ? c.description_zh : c.description_en || c.description_zh) || "") }],
      cat.columns.filter((c) => c.table === tbl)));
  };
  const list = h("div", { class: "layers", id: "sql-tables" }, ...cat.tables.map((x) =>
    h("a", { title: (zh ? x.description_zh : x.description_en) || "", onclick: () => { ta.value = `SELECT * FROM ${x.table} LIMIT 100`; showCols(x.table); run(); } },
      h("code", { class: "tname" }, x.table), ` · ${(zh ? x.description_zh : x.description_en) || ""} (${text(x.rows ?? 0)})`)));
  el.appendChild(h("div", { class: "grid" },
    h("section", { class: "card span4" }, h("h2", null, t("tables")), h("div", { class: "scroll" }, list), cols),
    h("section", { class: "card span8" }, h("h2", null, t("sql"), h("span", { class: "tools" },
      h("button", { class: "small", "data-export": "csv", onclick: () => download("query.csv", new Blob([toCSV(last)], { type: "text/csv;charset=utf-8" })) }, t("export_csv")))),
      ta, h("p", null, h("button", { id: "sql-run", onclick: run }, t("run"))), out)));
}
