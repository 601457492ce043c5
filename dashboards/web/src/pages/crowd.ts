import { api, Section } from "../api";
import { h, fmtTime, table, text, dataText } from "../dom";
import { t, getLang, pick, levelColor } from "../i18n";
import { card, draw, missing, loadingCard } from "../charts";
import { qs, streetName } from "../state";

/** Per venue: actual vs forecast vs thresholds over time, and the warnings' lifecycle. */
export async function crowdPage(el: HTMLElement, args: string[]) {
  const vs = await api<{ venues: Section }>("/api/dash/crowd?" + qs());
  const lang = getLang();
  const venues = vs.venues.rows || [];
  const grid = h("div", { class: "grid" });
  el.appendChild(grid);
  const lc = card(t("venue"), "span3", () => venues, "venues");
  grid.appendChild(lc.el);
  const m = missing(vs.venues);
  if (m) { lc.body.appendChild(m); return; }
  const id = args[0] || String(venues[0].venue_id);
  lc.body.appendChild(h("div", { class: "layers", id: "venue-list" }, ...venues.map((v) =>
    h("a", { href: "#/crowd/" + encodeURIComponent(v.venue_id), class: v.venue_id === id ? "active" : "", "data-venue": v.venue_id },
      pick(v, "name") + " · " + streetName(String(v.street_code || ""), lang)))));

  const wait = loadingCard("span9", t("crowd"));
  grid.appendChild(wait);
  const d = await api<Record<string, Section> & { source?: string }>(`/api/dash/crowd/${encodeURIComponent(id)}?` + qs()).finally(() => wait.remove());
  const venue = d.venue.rows?.[0] || {};
  const actual = d.actual.rows || [], fc = d.forecast.rows || [], th = d.thresholds.rows || [];
  const sc = card(t("crowd") + " · " + pick(venue, "name"), "span9", () => [
    ...actual.map((r) => ({ series: "actual", t: r.t, value: r.people })),
    ...fc.map((r) => ({ series: "forecast", t: r.t, value: r.people })),
    ...th.map((r) => ({ series: "threshold_" + r.level, t: "", value: r.threshold })),
  ], "crowd");
  grid.appendChild(sc.el);
  if (!actual.length && !fc.length) sc.body.appendChild(missing(d.actual.missing ? d.actual : d.forecast)!);
  else {
    const cap = Number(venue.capacity_people || 0);
    // Thresholds: a dashed line each in the level's colour, the figures
    // written above the chart (labels on the lines overlap when levels are close).
    const ths = [...th].sort((a, b) => Number(a.threshold) - Number(b.threshold));
    const lines: any[] = ths.map((r) => ({ yAxis: Number(r.threshold), name: t("threshold") + " " + t(r.level), lineStyle: { color: levelColor[r.level] || "#888" }, label: { show: false } }));
    if (cap && !th.some((r) => Number(r.threshold) === cap)) lines.push({ yAxis: cap, name: t("capacity"), lineStyle: { color: "#fff", type: "dashed" }, label: { show: false } });
    sc.body.appendChild(h("div", { class: "thresholds", id: "crowd-thresholds" }, t("threshold") + "：", ...ths.flatMap((r) => [h("span", { class: "badge " + r.level }, t(r.level)),
      " " + text(r.threshold) + (Number(r.threshold) === cap ? "（" + t("capacity") + "）" : "") + "  "]),
      cap && !th.some((r) => Number(r.threshold) === cap) ? t("capacity") + " " + text(cap) : ""));
    // Which count is plotted: the one the venue's warnings are raised on.
    if (d.source) sc.body.appendChild(h("div", { class: "muted small", id: "crowd-source", "data-source": d.source }, t("crowd_source_" + d.source)));
    draw(sc, {
      legend: { top: 0, textStyle: { color: "#e6eefb" } }, grid: { left: 60, right: 20, top: 30, bottom: 50 }, tooltip: { trigger: "axis", renderMode: "richText" },
      xAxis: { type: "time", axisLabel: { color: "#8fa6c6" } }, yAxis: { type: "value", axisLabel: { color: "#8fa6c6" } },
      dataZoom: [{ type: "inside" }],
      series: [
        { name: t("actual"), type: "line", showSymbol: false, data: actual.map((r) => [r.t, r.people == null ? null : Number(r.people)]), markLine: { symbol: "none", data: lines } },
        { name: t("forecast"), type: "scatter", symbolSize: 7, data: fc.filter((r) => r.people != null).map((r) => [r.t, Number(r.people)]) },
      ],
    });
  }
  const lf = d.lifecycle;
  const wc = card(t("lifecycle"), "span12", () => lf.rows || [], "lifecycle");
  grid.appendChild(wc.el);
  wc.body.appendChild(missing(lf) || table([
    { key: "transition_at", label: t("time"), render: (r) => fmtTime(r.transition_at) }, { key: "warning_id", label: t("id"), render: (r) => h("code", { class: "tname" }, String(r.warning_id)) },
    { key: "level", label: t("level"), render: (r) => h("span", { class: "badge " + r.level }, t(r.level)) }, { key: "state", label: t("state"), render: (r) => t("state_" + r.state) },
    { key: "observed_value", label: t("observed"), num: true, render: (r) => metric(r.observed_value, r.unit) },
    { key: "forecast_value", label: t("forecast_value"), num: true, render: (r) => metric(r.forecast_value, r.unit) },
    { key: "threshold", label: t("threshold"), num: true, render: (r) => metric(r.threshold, r.unit) },
    { key: "people_count", label: t("people"), num: true },
    { key: "message", label: t("message"), render: (r) => h("span", { "data-raw": "message" }, pick(r, "message")) }], lf.rows!));
}

/** A warning's figure in its unit; a capacity ratio as a percentage. */
function metric(v: unknown, unit: unknown): string {
  if (v == null) return "";
  if (unit === "ratio") return text(Math.round(Number(v) * 1000) / 10) + "%";
  return text(v) + (unit ? " " + String(unit) : "");
}
