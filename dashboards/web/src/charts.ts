// Apache ECharts (tree-shaken, canvas renderer, tooltips drawn on the
// canvas: no HTML from data ever reaches the DOM) and the chart card with
// CSV / PNG export.
import * as echarts from "echarts/core";
import { BarChart, LineChart, PieChart, ScatterChart, MapChart, EffectScatterChart } from "echarts/charts";
import { GridComponent, TooltipComponent, LegendComponent, GeoComponent, VisualMapComponent, MarkLineComponent, DataZoomComponent } from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";
import { h, download, toCSV } from "./dom";
import { t, val, getLang, Lang } from "./i18n";
import { state } from "./state";
import type { Section } from "./api";

echarts.use([BarChart, LineChart, PieChart, ScatterChart, MapChart, EffectScatterChart, GridComponent, TooltipComponent, LegendComponent,
  GeoComponent, VisualMapComponent, MarkLineComponent, DataZoomComponent, CanvasRenderer]);
export { echarts };

/** Charts of the current page; pending counts charts not yet finished drawing. */
const live: echarts.ECharts[] = [];
let pending = 0;
let onAllFinished: (() => void) | null = null;
const byId = new Map<string, echarts.ECharts>();
export function disposeAll() { while (live.length) live.pop()!.dispose(); pending = 0; byId.clear(); }
/** For the browser tests and support: the numbers each chart of the page draws, by card id. */
(window as any).citybrainChartData = () => {
  const out: Record<string, unknown> = {};
  byId.forEach((c, id) => {
    const o = c.getOption() as any;
    out[id] = (o.series || []).map((s: any) => ({ name: s.name, data: (s.data || []).map((d: any) => Array.isArray(d) ? d[d.length - 1] : d && typeof d === "object" ? (Array.isArray(d.value) ? d.value[d.value.length - 1] : d.value) : d) }));
  });
  return out;
};
/**
 * For the browser tests: the words each chart draws — series, legend and
 * pie names, axis names and the axis labels as drawn (time axes included),
 * reference lines' names.
 */
(window as any).citybrainChartTexts = () => {
  const out: string[] = [];
  const add = (v: unknown) => { if (v != null && v !== "") out.push(String(v)); };
  for (const c of live) {
    const o = c.getOption() as any;
    for (const s of o.series || []) {
      add(s.name);
      // A pie's slices are words (categories); a map's points are named by the data.
      if (s.type === "pie") for (const d of s.data || []) if (d && typeof d === "object" && !Array.isArray(d)) add(d.name);
      for (const m of s.markLine?.data || []) add(Array.isArray(m) ? m[0]?.name : m?.name);
    }
    for (const l of o.legend || []) for (const d of l.data || []) add(typeof d === "object" ? d.name : d);
    for (const kind of ["xAxis", "yAxis"]) {
      for (const [i, a] of (o[kind] || []).entries()) {
        add(a.name);
        try {
          const axis = (c as any).getModel().getComponent(kind, i)?.axis;
          for (const l of axis?.getViewLabels?.() || []) add(String(l.formattedLabel ?? "").replace(/\{\w+\|([^}]*)\}/g, "$1"));
        } catch { /* an axis ECharts has not laid out */ }
      }
    }
  }
  return out;
};
/** For the browser tests and support: the ECharts instance of a card (pixel positions of features). */
(window as any).citybrainChart = (id: string) => byId.get(id);
/** For the browser tests: each chart's axis label size (px), 0 when it has no axis. */
(window as any).citybrainAxisFontSizes = () => live.map((c) => { const o = c.getOption() as any; return o.xAxis?.[0]?.axisLabel?.fontSize || o.yAxis?.[0]?.axisLabel?.fontSize || 0; });
export function whenChartsFinished(fn: () => void) { onAllFinished = fn; if (pending === 0) { onAllFinished = null; fn(); } }
// A map zoomed to a street (roam) could throw inside ECharts while the
// layout changes under it (a phone turned, a screenshot of the whole page):
// one chart's failure to resize must not stop the others, nor reach the console.
window.addEventListener("resize", () => live.forEach((c) => { try { c.resize(); } catch (e) { console.warn("chart resize", e); } }));

export const base = {
  backgroundColor: "transparent",
  textStyle: { color: "#e6eefb", fontFamily: "Noto Sans CJK SC, Microsoft YaHei, sans-serif" },
  tooltip: { renderMode: "richText", backgroundColor: "#0a1628", borderColor: "#1f3b63", textStyle: { color: "#e6eefb" } },
  animation: false,
};

/** Chart text size: 12 px, scaled with the screen's width in 大屏 mode (18 px at 1920, 29 at 3840). */
export function chartFontSize(): number {
  return document.documentElement.classList.contains("big") ? Math.round(12 * Math.max(1.5, innerWidth / 1600)) : 12;
}

/** In 大屏 mode, the axes', legends' and titles' text (which ECharts sizes
 * at 12 px itself, not from the global textStyle) at the chart font size,
 * and any size an option sets scaled alike. */
function scaleText(opt: any, fs: number): any {
  if (fs === 12) return opt;
  const k = fs / 12;
  const fix = (o: any, keys: string[]) => {
    for (const x of Array.isArray(o) ? o : o ? [o] : []) {
      for (const key of keys) {
        x[key] = { ...(x[key] || {}) };
        x[key].fontSize = typeof x[key].fontSize === "number" ? Math.round(x[key].fontSize * k) : fs;
      }
    }
  };
  fix(opt.xAxis, ["axisLabel", "nameTextStyle"]);
  fix(opt.yAxis, ["axisLabel", "nameTextStyle"]);
  fix(opt.legend, ["textStyle"]);
  fix(opt.title, ["textStyle"]);
  fix(opt.visualMap, ["textStyle"]);
  fix(opt.series, ["label"]);
  return opt;
}

/** A card's rows as its CSV shows them: the headers in the page's words
 * (等级, 街道, 数量), values as shown on screen (红色, the street's name), and
 * each code kept in a column of its own beside its label (level, street_code). */
export function readableRows(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  const zh = getLang() === "zh";
  const streets = new Map((state.conf?.streets || []).map((s) => [s.adcode, zh ? s.name_zh : s.name_en || s.name_zh]));
  return rows.map((r) => {
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r)) {
      const label = t(k) !== k ? t(k) : k;
      const codeCol = label === k ? k + "_code" : k;
      if (k === "street_code" || k === "street") {
        o[t("street")] = streets.get(String(v)) ?? v;
        o[k === "street" ? "street_code" : k] = v;
        continue;
      }
      const shown = typeof v === "string" ? val(v) : v;
      if (shown !== v) {
        o[label] = shown;
        o[codeCol] = v;
      } else {
        o[label] = v;
      }
    }
    return o;
  });
}

export interface Card { el: HTMLElement; body: HTMLElement; chart?: echarts.ECharts; }

/** A card with a title; tools export rows() as CSV and the chart as PNG. */
/** A panel whose data is on its way: a pulsing placeholder saying 加载中…. */
export function loadingCard(span: string, title = ""): HTMLElement {
  return h("section", { class: "card loading " + span, "data-loading": "1" },
    h("h2", null, title || h("span", { class: "bar" })), h("div", { class: "pulse" }), h("p", { class: "muted" }, t("loading")));
}

export function card(title: string, span: string, rows: () => Record<string, unknown>[], id?: string): Card {
  const body = h("div");
  const c: Card = { el: h("section", { class: "card " + span, "data-card": id || "" }), body };
  const tools = h("span", { class: "tools" },
    h("button", { class: "small", "data-export": "csv", onclick: () => download((id || "chart") + ".csv", new Blob([toCSV(readableRows(rows()))], { type: "text/csv;charset=utf-8" })) }, t("export_csv")),
    h("button", { class: "small", "data-export": "png", onclick: () => {
      if (!c.chart) return;
      // Decoded here: fetch() of a data: URL is refused by the CSP (connect-src 'self').
      const url = c.chart.getDataURL({ type: "png", pixelRatio: 2, backgroundColor: "#10243f" });
      const bin = atob(url.slice(url.indexOf(",") + 1));
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      download((id || "chart") + ".png", new Blob([bytes], { type: "image/png" }));
    } }, t("export_png")));
  c.el.appendChild(h("h2", null, title, tools));
  c.el.appendChild(body);
  return c;
}

/** Draws an option into the card (or an empty state) and tracks "finished". */
export function draw(c: Card, opt: any, tall = false): echarts.ECharts {
  const box = h("div", { class: "chart" + (tall ? " tall" : "") });
  c.body.appendChild(box);
  // The page's language, not the browser's (ECharts reads that once, at load:
  // month names stayed 12月 after switching to English).
  const chart = echarts.init(box, undefined, { renderer: "canvas", locale: getLang() === "zh" ? "ZH" : "EN" });
  live.push(chart);
  pending++;
  let done = false;
  chart.on("finished", () => {
    if (done) return;
    done = true;
    pending--;
    box.setAttribute("data-finished", "1");
    if (pending === 0 && onAllFinished) { const f = onAllFinished; onAllFinished = null; f(); }
  });
  const fs = chartFontSize();
  chart.setOption(scaleText({ ...base, textStyle: { ...base.textStyle, fontSize: fs }, ...opt, tooltip: { ...base.tooltip, ...(opt.tooltip || {}) } }, fs));
  c.chart = chart;
  c.el.classList.add("has-chart"); // the PNG export is offered only for a chart
  const id = c.el.getAttribute("data-card");
  if (id) byId.set(id, chart);
  return chart;
}

/** The legend of a chart stacked by risk level: blue (low-risk) units start
 * hidden when they outnumber the other levels three to one, as they would
 * flatten the red and orange ones (a click on the legend shows them). */
export function levelLegend(rows: Record<string, any>[]): any {
  const n: Record<string, number> = {};
  for (const r of rows) n[r.level] = (n[r.level] || 0) + Number(r.n || 0);
  const others = (n.red || 0) + (n.orange || 0) + (n.yellow || 0);
  return { top: 0, textStyle: { color: "#e6eefb" }, selected: others > 0 && (n.blue || 0) > 3 * others ? { [t("blue")]: false } : {} };
}

/** The empty state of a section (no data yet / no access / error). */
export function missing(sec: Section | undefined): HTMLElement | null {
  if (sec && sec.rows && sec.rows.length) return null;
  const why = !sec ? "no_data" : sec.missing || "no_data";
  return h("div", { class: "empty", "data-missing": why, title: sec?.detail || "" }, t(why === "error" ? "error" : why === "no_access" ? "no_access" : "no_data"));
}
export type { Lang };
