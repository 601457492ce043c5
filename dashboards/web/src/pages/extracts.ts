import { api } from "../api";
import { h, clear, fmtTime, table, text, dataText } from "../dom";
import { t } from "../i18n";

interface Manifest {
  id: string; extract: string; status: string; error?: string; period: string; rows: number; bytes: number;
  file: string; started: string; duration_ms: number; trigger: string;
}
interface Summary {
  name: string; title?: string; department: string; format: string; encoding?: string;
  schedule?: { cron?: string; timezone?: string }; next_run?: string; last?: Manifest;
}

const download = (m?: Manifest) => m && m.status === "ok"
  ? h("a", { href: "/api/extracts/deliveries/" + encodeURIComponent(m.id) + "/download", download: m.file, "data-download": m.id }, m.file)
  : "";
const status = (m?: Manifest) => m
  ? h("span", { class: "badge " + (m.status === "ok" ? "ok" : "red"), title: m.error || "" }, t(m.status === "ok" ? "ok" : "failed"))
  : t("never_run");

/** Departments' extracts: what each receives, when, the last files (download) and a run now;
 * #/extracts/NAME also shows NAME's runs. */
export async function extractsPage(el: HTMLElement, args: string[] = []) {
  const list = await api<Summary[]>("/api/extracts");
  const grid = h("div", { class: "grid" });
  el.appendChild(grid);
  const msg = h("p", { class: "error", id: "extracts-msg" });
  const detail = h("section", { class: "card span12", id: "extract-history" });
  const card = h("section", { class: "card span12" }, h("h2", null, t("extracts")), msg);
  grid.appendChild(card);
  if (!list.length) {
    card.appendChild(h("p", { class: "muted", id: "no-extracts" }, t("no_extracts")));
    return;
  }
  const showHistory = async (name: string) => {
    clear(detail);
    grid.appendChild(detail);
    detail.appendChild(h("p", { class: "muted", "data-loading": "1" }, t("loading")));
    const d = await api<{ extract: Summary; history: Manifest[] }>("/api/extracts/" + encodeURIComponent(name));
    clear(detail);
    grid.appendChild(detail);
    detail.appendChild(h("h2", null, t("history_of") + " ", dataText(d.extract.title || name)));
    detail.appendChild(table([
      { key: "period", label: t("period"), render: (m) => fmtTime(m.period) },
      { key: "status", label: t("status"), render: (m) => status(m) },
      { key: "rows", label: t("rows_out"), num: true, render: (m) => text(m.rows) },
      { key: "file", label: t("file"), render: (m) => download(m) },
      { key: "started", label: t("time"), render: (m) => fmtTime(m.started) },
      { key: "trigger", label: t("trigger") },
      { key: "error", label: t("message") }], d.history));
  };
  const run = async (s: Summary, btn: HTMLButtonElement) => {
    btn.disabled = true;
    btn.textContent = t("running");
    msg.textContent = "";
    try {
      await api("/api/extracts/" + encodeURIComponent(s.name) + "/run", { method: "POST" });
    } catch (e) {
      msg.textContent = s.name + ": " + (e as Error).message;
    }
    clear(el);
    await extractsPage(el, [s.name]);
  };
  const tbl = table([
    { key: "title", label: t("name"), render: (s) => h("span", { "data-extract": s.name }, dataText(s.title || s.name), h("br"), h("code", { class: "tname" }, s.name)) },
    { key: "department", label: t("department"), render: (s) => h("code", { class: "tname" }, s.department) },
    { key: "format", label: t("format"), render: (s) => h("code", { class: "tname" }, s.format + (s.encoding ? " · " + s.encoding : "")) },
    { key: "schedule", label: t("schedule"), render: (s) => s.schedule?.cron ? h("code", { class: "tname" }, s.schedule.cron + " (" + (s.schedule.timezone || "Asia/Shanghai") + ")") : t("on_demand") },
    { key: "next_run", label: t("next_run"), render: (s) => fmtTime(s.next_run) },
    { key: "last", label: t("last_run"), render: (s) => h("span", null, status(s.last), s.last ? " " + fmtTime(s.last.period) + " · " + text(s.last.rows) + " " + t("sql_rows") : "") },
    { key: "file", label: t("file"), render: (s) => download(s.last) },
    { key: "run", label: "", render: (s) => {
      const b = h("button", { class: "small", "data-run": s.name }) as HTMLButtonElement;
      b.textContent = t("run_now");
      b.addEventListener("click", (e) => { e.stopPropagation(); run(s, b); });
      return b;
    } }], list, (s) => showHistory(s.name));
  tbl.id = "extracts";
  card.appendChild(tbl);
  if (args[0] && list.some((s) => s.name === args[0])) await showHistory(args[0]);
}
