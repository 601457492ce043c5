import { api, Section } from "../api";
import { h, text, fmtTime, table, dataText } from "../dom";
import { t, getLang, levelOrder, levelColor, fieldName, val } from "../i18n";
import { card, draw, missing, levelLegend } from "../charts";
import { state, qs, streetName } from "../state";

function stacked(rows: Record<string, any>[], keyOf: (r: any) => string, nameOf: (k: string) => string) {
  const keys = [...new Set(rows.map(keyOf))];
  return {
    keys,
    option: {
      legend: levelLegend(rows), grid: { left: 40, right: 10, top: 30, bottom: 70 },
      tooltip: { trigger: "axis", renderMode: "richText" },
      xAxis: { type: "category", data: keys.map(nameOf), axisLabel: { rotate: 30, color: "#8fa6c6" } }, yAxis: { type: "value", axisLabel: { color: "#8fa6c6" } },
      series: levelOrder.map((l) => ({ name: t(l), type: "bar", stack: "n", barMaxWidth: 64, itemStyle: { color: levelColor[l] },
        data: keys.map((k) => rows.filter((r) => keyOf(r) === k && r.level === l).reduce((a, r) => a + Number(r.n), 0)) })),
    },
  };
}

/** Street → community → enterprise. */
export async function riskPage(el: HTMLElement, args: string[]) {
  const [street, community] = args;
  const lang = getLang();
  const d = await api<Record<string, Section>>("/api/dash/risk?" + qs({ street: street || state.filters.street, community: community || "" }));
  const s = street || state.filters.street;
  const crumbs = h("div", { class: "crumbs", id: "crumbs" }, h("a", { href: "#/risk" }, t("district")));
  if (s) crumbs.append("› ", h("a", { href: "#/risk/" + s }, streetName(s, lang)));
  if (community) crumbs.append("› ", community);
  el.appendChild(crumbs);
  const grid = h("div", { class: "grid" });
  el.appendChild(grid);
  if (community) {
    const sec = d.enterprises;
    const c = card(t("enterprises"), "span12", () => sec.rows || [], "enterprises");
    grid.appendChild(c.el);
    c.body.appendChild(missing(sec) || table([
      { key: "name", label: t("name"), render: (r) => h("a", { href: "#/enterprise/" + encodeURIComponent(r.enterprise_id), "data-enterprise": r.enterprise_id }, dataText(r.name)) },
      { key: "level", label: t("level"), render: (r) => h("span", { class: "badge " + r.level }, t(r.level)) },
      { key: "score", label: t("score"), num: true }, { key: "industry", label: t("industry"), render: (r) => val(r.industry) },
      { key: "top_factors_zh", label: t("factors"), render: (r) => String((lang === "zh" ? r.top_factors_zh : r.top_factors_en || r.top_factors_zh) || "") }], sec.rows!));
  } else if (s) {
    const sec = d.communities;
    const c = card(t("communities") + " · " + streetName(s, lang), "span8", () => sec.rows || [], "communities");
    grid.appendChild(c.el);
    const m = missing(sec);
    if (m) c.body.appendChild(m);
    else {
      const names: Record<string, string> = {};
      for (const r of sec.rows!) names[r.community_code] = lang === "zh" ? r.name_zh : r.name_en;
      const st = stacked(sec.rows!, (r) => String(r.community_code), (k) => names[k] || k);
      const ch = draw(c, st.option);
      ch.on("click", (p: any) => { location.hash = `#/risk/${s}/${encodeURIComponent(st.keys[p.dataIndex])}`; });
      c.body.appendChild(h("div", { class: "crumbs" }, ...st.keys.map((k) => h("a", { href: `#/risk/${s}/${encodeURIComponent(k)}`, "data-community": k }, names[k] || k))));
    }
  } else {
    const sec = d.streets;
    const c = card(t("streets"), "span8", () => sec.rows || [], "streets");
    grid.appendChild(c.el);
    const m = missing(sec);
    if (m) c.body.appendChild(m);
    else {
      const st = stacked(sec.rows!, (r) => String(r.street_code), (k) => streetName(k, lang));
      const ch = draw(c, st.option);
      ch.on("click", (p: any) => { location.hash = "#/risk/" + st.keys[p.dataIndex]; });
      c.body.appendChild(h("div", { class: "crumbs" }, ...st.keys.map((k) => h("a", { href: "#/risk/" + k, "data-street": k }, streetName(k, lang)))));
    }
  }
  const ind = d.industries;
  const ic = card(t("by_industry"), "span4", () => ind.rows || [], "industries");
  grid.appendChild(ic.el);
  const im = missing(ind);
  if (im) ic.body.appendChild(im);
  else draw(ic, stacked(ind.rows!, (r) => String(r.industry || "—"), (k) => val(k)).option);
}

export async function enterprisePage(el: HTMLElement, args: string[]) {
  const id = args[0] || "";
  const d = await api<Record<string, Section>>("/api/dash/enterprise/" + encodeURIComponent(id));
  const e = d.enterprise.rows?.[0] || {};
  const r = d.risk.rows?.[0];
  const lang = getLang();
  const crumbs = h("div", { class: "crumbs" }, h("a", { href: "#/risk" }, t("district")));
  const sc = String(e.street_code || r?.street_code || "");
  if (sc) crumbs.append("› ", h("a", { href: "#/risk/" + sc }, streetName(sc, lang)));
  const cc = String(e.community_code || r?.community_code || "");
  if (sc && cc) crumbs.append("› ", h("a", { href: `#/risk/${sc}/${encodeURIComponent(cc)}` }, cc));
  crumbs.append("› ", dataText(e.name || id));
  el.appendChild(crumbs);
  const grid = h("div", { class: "grid" });
  el.appendChild(grid);

  const head = card(t("enterprise"), "span5", () => [{ ...e, ...(r || {}) }], "enterprise");
  grid.appendChild(head.el);
  head.body.appendChild(h("h2", { id: "enterprise-name" }, dataText(e.name || id)));
  if (r) {
    head.body.appendChild(h("div", { class: "levels" },
      h("div", { class: "lvl " + r.level, id: "enterprise-level", "data-level": String(r.level) }, h("div", { class: "v" }, t(String(r.level))), h("div", null, t("level"))),
      h("div", { class: "lvl" }, h("div", { class: "v", id: "enterprise-score" }, text(r.score)), h("div", null, t("score")))));
  } else head.body.appendChild(missing(d.risk)!);
  for (const k of ["industry", "address", "credit_code", "employees", "has_liability_insurance"]) {
    if (e[k] != null && e[k] !== "") head.body.appendChild(h("div", { "data-field": k }, h("span", { class: "muted" }, fieldName(k) + "："), typeof e[k] === "boolean" ? val(e[k]) : k === "industry" ? val(e[k]) : k === "address" ? dataText(e[k]) : text(e[k])));
  }

  const fc = card(t("factors"), "span7", () => r ? [r] : [], "factors");
  grid.appendChild(fc.el);
  const factors = r ? factorList(r, lang) : [];
  if (!factors.length) fc.body.appendChild(missing(r ? { rows: [] } : d.risk)!);
  else fc.body.appendChild(h("ul", { id: "factors" }, ...factors.map((f) => h("li", null, f))));

  const rs = d.risk_sources;
  const rc = card(t("risk_sources"), "span6", () => rs.rows || [], "risk_sources");
  grid.appendChild(rc.el);
  rc.body.appendChild(missing(rs) || table([{ key: "name", label: t("name"), render: (r) => dataText(r.name) }, { key: "kind", label: t("category"), render: (r) => val(r.kind) },
    { key: "lec_l", label: "L", num: true }, { key: "lec_e", label: "E", num: true }, { key: "lec_c", label: "C", num: true }, { key: "lec_d", label: "D", num: true }], rs.rows!));

  const hz = d.hazards;
  const hc = card(t("hazards"), "span6", () => hz.rows || [], "hazards");
  grid.appendChild(hc.el);
  hc.body.appendChild(missing(hz) || table([{ key: "found_at", label: t("time"), render: (x) => fmtTime(x.found_at) }, { key: "level", label: t("level"), render: (x) => val(x.level) },
    { key: "status", label: t("status"), render: (x) => val(x.status) }, { key: "description", label: t("description"), render: (x) => dataText(x.description) },
    { key: "deadline", label: fieldName("deadline"), render: (x) => String(x.deadline || "").slice(0, 10) }], hz.rows!));

  const ins = d.inspections;
  const inc = card(t("inspections"), "span12", () => ins.rows || [], "inspections");
  grid.appendChild(inc.el);
  inc.body.appendChild(missing(ins) || table([{ key: "inspected_at", label: fieldName("inspected_at"), render: (x) => fmtTime(x.inspected_at) },
    { key: "result", label: fieldName("result"), render: (x) => val(x.result) }, { key: "hazards_found", label: fieldName("hazards_found"), num: true },
    { key: "notes", label: fieldName("notes") }], ins.rows!));

  const hi = d.history;
  const hic = card(t("history"), "span12", () => hi.rows || [], "history");
  grid.appendChild(hic.el);
  const hm = missing(hi);
  if (hm) hic.body.appendChild(hm);
  else {
    hi.rows!.reverse();
    const dayKey = Object.keys(hi.rows![0]).find((k) => /day|date|as_of|computed/.test(k)) || Object.keys(hi.rows![0])[0];
    draw(hic, { grid: { left: 40, right: 10, top: 20, bottom: 30 }, tooltip: { trigger: "axis", renderMode: "richText" },
      xAxis: { type: "category", data: hi.rows!.map((x) => String(x[dayKey]).slice(0, 10)), axisLabel: { color: "#8fa6c6" } },
      yAxis: { type: "value", min: 0, max: 100, axisLabel: { color: "#8fa6c6" } },
      series: [{ type: "line", name: t("score"), data: hi.rows!.map((x) => ({ value: Number(x.score), itemStyle: { color: levelColor[x.level] || "#3aa0ff" } })) }] });
  }
}

/** The factors in words: factors_zh / factors_en as a list, JSON array or text. */
function factorList(r: Record<string, any>, lang: string): string[] {
  const v = lang === "zh" ? (r.top_factors_zh ?? r.factors_zh ?? r.top_factors_en ?? r.factors) : (r.top_factors_en || r.factors_en || r.top_factors_zh || r.factors);
  if (v == null || v === "") return [];
  if (Array.isArray(v)) return v.map(String);
  const s = String(v);
  try { const j = JSON.parse(s); if (Array.isArray(j)) return j.map((x) => typeof x === "string" ? x : String(x[lang === "zh" ? "zh" : "en"] ?? x.text ?? JSON.stringify(x))); } catch { /* plain text */ }
  return s.split(/\s*[;；\n]\s*/).filter(Boolean);
}
