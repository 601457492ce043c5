import streetsGeo from "../../../../internal/geo/data/xicheng_streets.geojson";
import { api, Section } from "../api";
import { h, clear, text, fmtTime, dataText } from "../dom";
import { t, getLang, levelColor, levelOrder, fieldName, val, pick } from "../i18n";
import { card, draw, echarts } from "../charts";
import { qs, streetName, state } from "../state";
import { setFilter } from "../filters";
import { render } from "../main";

// The district drawn from the streets' GeoJSON (no tiles): regions named by adcode.
let registered = false;
function registerMap() {
  if (registered) return;
  const fc = { type: "FeatureCollection", features: streetsGeo.features.map((f) => ({ ...f, properties: { name: String(f.properties.adcode) } })) };
  echarts.registerMap("xicheng", fc as any);
  registered = true;
}

type BBox = [number, number, number, number]; // min lon, min lat, max lon, max lat
function bboxOf(coords: any, b: BBox = [Infinity, Infinity, -Infinity, -Infinity]): BBox {
  if (typeof coords[0] === "number") {
    b[0] = Math.min(b[0], coords[0]); b[1] = Math.min(b[1], coords[1]); b[2] = Math.max(b[2], coords[0]); b[3] = Math.max(b[3], coords[1]);
  } else for (const c of coords) bboxOf(c, b);
  return b;
}
const streetBox: Record<string, BBox> = {};
let districtBox: BBox | null = null;
function boxes() {
  if (districtBox) return;
  districtBox = [Infinity, Infinity, -Infinity, -Infinity];
  for (const f of streetsGeo.features as any[]) {
    streetBox[String(f.properties.adcode)] = bboxOf(f.geometry.coordinates);
    bboxOf(f.geometry.coordinates, districtBox);
  }
}

// A layer's own colour is none of the levels' (red, orange, yellow, blue): a point in one of
// those reads as a risk or a warning (1,037 fire stations in the red-risk colour read as a
// district on fire). Enterprises and venues with a level, and alarms, take the level's colour.
const layerDefs: { id: string; color: string; symbol: string; on: boolean }[] = [
  { id: "crowd", color: "#a06bff", symbol: "rect", on: false },
  { id: "venues", color: "#4dd0e1", symbol: "diamond", on: true },
  { id: "enterprises", color: "#8fa6c6", symbol: "circle", on: true },
  { id: "shelters", color: "#27ae60", symbol: "triangle", on: false },
  { id: "warehouses", color: "#16a085", symbol: "roundRect", on: false },
  { id: "fire_stations", color: "#ff66cc", symbol: "pin", on: false },
  { id: "waterlogging", color: "#00bcd4", symbol: "circle", on: false },
  { id: "lifeline", color: "#b39ddb", symbol: "circle", on: false },
  { id: "incidents", color: "#c6ff00", symbol: "circle", on: false },
  { id: "responses", color: "#ffffff", symbol: "pin", on: true },
];
// Kept across renders of the page (filters, language switch).
const enabled: Record<string, boolean> = Object.fromEntries(layerDefs.map((l) => [l.id, l.on]));
// Enterprises: red and orange units by default (24,000 points would bury the district).
const highLevels = ["red", "orange"];
const allLevels = [...levelOrder, "none"];
let entLevels = new Set(highLevels);
// Above clusterAbove enterprise points (800; per browser:
// localStorage["citybrain.map.clusterAbove"]), the whole-district view shows
// totals per street; zooming in past clusterZoom (or choosing a street) shows the units.
const clusterZoom = 2;

function pointColor(layer: string, r: Record<string, any>, def: string, maxPeople: number): string {
  if (layer === "enterprises" && r.level) return levelColor[r.level] || def;
  if ((layer === "venues" || layer === "responses") && r.warning_level) return levelColor[r.warning_level] || def;
  if (layer === "crowd") { const v = Number(r.people || 0) / (maxPeople || 1); return `rgba(160,107,255,${0.15 + 0.85 * Math.min(1, v)})`; }
  if ((layer === "waterlogging" || layer === "lifeline") && r.alarm) return "#e5393b";
  return def;
}

const shortName = (s: string) => s.replace(/街道$/, "").replace(/ Subdistrict$/, "");
const enumFields = new Set(["kind", "level", "zone", "site_kind", "status", "category", "warning_level", "warning_state", "alarm", "located"]);

export async function mapPage(el: HTMLElement) {
  registerMap();
  boxes();
  const lang = getLang();
  const street = state.filters.street;
  const grid = h("div", { class: "grid" });
  el.appendChild(grid);
  const data: Record<string, Section> = {};
  const load = async (id: string) => {
    const extra: Record<string, string> = {};
    if (id === "enterprises" && entLevels.size < allLevels.length) extra.levels = [...entLevels].join(",") || "none";
    data[id] = await api<Section>(`/api/dash/map/${id}?` + qs(extra));
  };
  await Promise.all(layerDefs.filter((l) => enabled[l.id]).map((l) => load(l.id)));

  const side = h("section", { class: "card span3 mapside" });
  const list = h("div", { class: "layers", id: "layers" });
  const detail = h("div", { class: "detail", id: "feature-detail" }, h("span", { class: "muted" }, t("click_feature")));
  const hint = h("p", { class: "muted small", id: "map-hint" });
  side.appendChild(h("h2", null, t("layers")));
  side.appendChild(list);
  side.appendChild(hint);
  side.appendChild(h("h2", null, t("details")));
  side.appendChild(detail);
  const mc = card(t("map") + (street ? " · " + streetName(street, lang) : ""), "span9", () => layerDefs.filter((l) => enabled[l.id]).flatMap((l) => (data[l.id]?.rows || []).map((r) => ({ layer: l.id, ...r }))), "map");
  grid.appendChild(side);
  grid.appendChild(mc.el);

  // The view: the whole district, or the chosen street filling the map.
  let zoom = 1;
  let center: number[] | undefined;
  if (street && streetBox[street] && districtBox) {
    const b = streetBox[street], d = districtBox;
    zoom = Math.max(1, 0.85 * Math.min((d[2] - d[0]) / (b[2] - b[0]), (d[3] - d[1]) / (b[3] - b[1])));
    center = [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2];
  }
  const clusterAbove = Number(localStorage.getItem("citybrain.map.clusterAbove")) || 800;
  const clustered = () => !street && zoom < clusterZoom && (data.enterprises?.rows?.length || 0) > clusterAbove;

  // Large layers are drawn in ECharts' large mode (one colour per series):
  // enterprises become one series per risk level, or one bubble per street.
  const seriesRows: Record<string, Record<string, any>[]> = {};
  const series = (): any[] => layerDefs.filter((l) => enabled[l.id] && data[l.id]?.rows).flatMap((l): any[] => {
    const rows = data[l.id].rows!;
    const maxPeople = l.id === "crowd" ? Math.max(1, ...rows.map((r) => Number(r.people || 0))) : 0;
    const point = (r: Record<string, any>, color?: string) => ({ name: String(pick(r, "name") || r.name || r.id || ""), value: [Number(r.lon), Number(r.lat), Number(r.people ?? r.score ?? 0)],
      itemStyle: color ? undefined : { color: pointColor(l.id, r, l.color, maxPeople) } });
    const common = { type: "scatter", coordinateSystem: "geo", symbol: l.symbol, symbolSize: l.id === "crowd" || l.id === "venues" ? 14 : l.id === "enterprises" ? 7 : 11,
      z: l.id === "crowd" ? 1 : l.id === "enterprises" ? 2 : 3 };
    if (l.id === "enterprises" && clustered()) {
      const by = new Map<string, { n: number; lon: number; lat: number; counts: Record<string, number> }>();
      for (const r of rows) {
        const k = String(r.street_code || "");
        const g = by.get(k) || { n: 0, lon: 0, lat: 0, counts: {} };
        g.n++; g.lon += Number(r.lon); g.lat += Number(r.lat); g.counts[r.level || "none"] = (g.counts[r.level || "none"] || 0) + 1;
        by.set(k, g);
      }
      const max = Math.max(1, ...[...by.values()].map((g) => g.n));
      const groups = [...by.entries()].map(([k, g]) => ({ street_code: k, n: g.n, counts: g.counts, lon: g.lon / g.n, lat: g.lat / g.n }));
      seriesRows["enterprises:streets"] = groups;
      // One bubble per street: its name and its units per level, in the level's colour.
      const rich: Record<string, any> = { s: { color: "#e6eefb", fontSize: 11, lineHeight: 14 } };
      for (const lv of allLevels) rich[lv] = { color: levelColor[lv] || "#cfd8e3", fontSize: 12, fontWeight: "bold", lineHeight: 15 };
      // The label inside its bubble: the bubble at least as wide as its widest line.
      const ctx = document.createElement("canvas").getContext("2d");
      const width = (s: string, px: number, bold = false) => {
        if (!ctx) return s.length * px;
        ctx.font = `${bold ? "bold " : ""}${px}px "Noto Sans CJK SC", sans-serif`;
        return ctx.measureText(s).width;
      };
      const nameOf = (g: { street_code: string }) => names[g.street_code] || g.street_code;
      const countsOf = (g: { counts: Record<string, number> }) => allLevels.filter((lv) => g.counts[lv]).map((lv) => text(g.counts[lv]));
      const need = groups.map((g) => 14 + Math.max(width(nameOf(g), 11), width(countsOf(g).join(" · "), 12, true)));
      return [{ ...common, id: "enterprises:streets", name: t("layer_enterprises"), symbol: "circle", z: 2,
        symbolSize: (v: number[], p: any) => Math.max(46 + 30 * Math.sqrt(v[2] / max), need[p.dataIndex] || 0),
        label: { show: true, position: "inside", rich, formatter: (p: any) => { const g = groups[p.dataIndex];
          return `{s|${nameOf(g)}}\n` + allLevels.filter((lv) => g.counts[lv]).map((lv) => `{${lv}|${text(g.counts[lv])}}`).join("{s| · }"); } },
        tooltip: { formatter: (p: any) => { const g = groups[p.dataIndex]; return streetName(g.street_code, lang) + "\n" + allLevels.filter((lv) => g.counts[lv]).map((lv) => (lv === "none" ? "—" : t(lv)) + " " + text(g.counts[lv])).join("  "); } },
        data: groups.map((g) => ({ name: streetName(g.street_code, lang), value: [g.lon, g.lat, g.n],
          itemStyle: { color: "#0a1628", opacity: 0.88, borderColor: levelColor[levelOrder.find((lv) => g.counts[lv]) || ""] || l.color, borderWidth: 2 } })) }];
    }
    if (l.id === "enterprises") {
      // Low levels first, so red units are drawn on top, and larger.
      const size: Record<string, number> = { red: 9, orange: 8, yellow: 6, blue: 5, none: 5 };
      return [...allLevels].reverse().map((lv) => {
        const id = "enterprises:" + lv, mine = rows.filter((r) => (r.level || "none") === lv);
        seriesRows[id] = mine;
        return { ...common, id, symbolSize: size[lv], name: t("layer_enterprises") + (lv !== "none" ? " · " + t(lv) : ""), large: true, largeThreshold: 2000,
          itemStyle: { color: levelColor[lv] || l.color }, data: mine.map((r) => point(r, "series")) };
      }).filter((s) => s.data.length);
    }
    seriesRows[l.id] = rows;
    return [{ ...common, id: l.id, name: t("layer_" + l.id), data: rows.map((r) => point(r)) }];
  });
  const names = Object.fromEntries((state.conf?.streets || []).map((s) => [s.adcode, shortName(lang === "zh" ? s.name_zh : s.name_en || s.name_zh)]));
  const codeOf = Object.fromEntries(Object.entries(names).map(([code, n]) => [n, code]));
  // Tooltips: the feature's name and its key figure (not the coordinates).
  const tip = (p: any) => {
    const sid = String(p.seriesId || "");
    if (p.componentType === "geo") return String(p.name || "");
    const r = seriesRows[sid]?.[p.dataIndex];
    if (!r) return String(p.name || "");
    const layer = sid.split(":")[0];
    const fig = layer === "enterprises" && r.score != null ? fieldName("score") + " " + text(r.score)
      : layer === "crowd" ? fieldName("people") + " " + (r.people == null ? "—" : text(r.people))
      : layer === "venues" && r.warning_level ? fieldName("warning_level") + " " + val(r.warning_level)
      : r.capacity_people != null ? fieldName("capacity_people") + " " + text(r.capacity_people) : "";
    return t("layer_" + layer) + "\n" + String(pick(r, "name") || r.name || r.id || "") + (fig ? "\n" + fig : "");
  };
  const chart = draw(mc, {
    tooltip: { trigger: "item", formatter: tip },
    geo: { map: "xicheng", roam: true, zoom, center, layoutCenter: ["50%", "50%"], layoutSize: "96%", scaleLimit: { min: 0.8, max: 40 }, nameMap: names,
      label: { show: !clustered(), color: "#8fa6c6", fontSize: 11 }, itemStyle: { areaColor: "#13294a", borderColor: "#3a6ea5" },
      regions: street ? [{ name: names[street] || street, itemStyle: { areaColor: "#1d4271", borderColor: "#7fb2ff", borderWidth: 2 }, label: { color: "#fff", fontWeight: "bold" } }] : [],
      emphasis: { itemStyle: { areaColor: "#1b3b66" }, label: { color: "#fff" } }, selectedMode: false },
    series: series(),
  }, true);
  // The bubbles carry the streets' names: the map's own labels are hidden under them.
  const redraw = () => { chart.setOption({ geo: { label: { show: !clustered() } }, series: series() }, { replaceMerge: ["series"] }); showHint(); };
  const showHint = () => {
    hint.textContent = clustered() ? t("clustered") : "";
    mc.el.setAttribute("data-clustered", clustered() ? "1" : "");
  };
  showHint();
  chart.on("georoam", () => {
    const was = clustered();
    zoom = Number((chart.getOption() as any).geo?.[0]?.zoom || 1);
    if (clustered() !== was) redraw();
  });
  chart.on("click", (p: any) => {
    // Regions carry their mapped (display) names: back to the adcode.
    if (p.componentType === "geo") { setFilter({ street: codeOf[String(p.name)] || String(p.name) }, render); return; }
    const sid = String(p.seriesId || "");
    if (sid === "enterprises:streets") { setFilter({ street: String(seriesRows[sid][p.dataIndex].street_code) }, render); return; }
    // In large mode ECharts keeps no data objects: find the row by index.
    const row = seriesRows[sid]?.[p.dataIndex] as Record<string, unknown> | undefined;
    if (row) showDetail(sid.split(":")[0], row);
  });

  const showDetail = (layer: string, row: Record<string, unknown>) => {
    clear(detail);
    detail.setAttribute("data-layer", layer);
    detail.setAttribute("data-id", String(row.id ?? ""));
    detail.appendChild(h("div", { class: "muted" }, t("layer_" + layer)));
    detail.appendChild(h("b", { id: "feature-title" }, dataText(pick(row, "name") || row.name || row.id || "")));
    const other = lang === "zh" ? "_en" : "_zh";
    const first = ["id", "kind", "level", "score", "warning_level", "warning_state", "industry", "top_factors_zh", "top_factors_en", "people", "value", "alarm", "capacity_people", "street_code", "address"];
    const rank = (k: string) => { const i = first.indexOf(k); return i < 0 ? first.length : i; };
    for (const [k, v] of Object.entries(row).sort((a, b) => rank(a[0]) - rank(b[0]))) {
      if (v === null || v === "" || ["lon", "lat", "name", "name_zh", "name_en"].includes(k) || k.endsWith(other)) continue;
      let shown: Node | string;
      if (k === "street_code") shown = streetName(String(v), lang);
      else if (/_at$|window_start/.test(k)) shown = fmtTime(v);
      else if (k === "level" && levelColor[String(v)] || k === "warning_level") shown = h("span", { class: "badge " + String(v) }, val(v));
      else if (enumFields.has(k) || typeof v === "boolean") shown = val(v);
      else shown = k === "industry" ? val(v) : typeof v === "string" && /[\u4e00-\u9fff]/.test(v) && lang !== "zh" ? dataText(v) : text(v);
      detail.appendChild(h("div", { "data-field": k }, h("span", { class: "muted" }, fieldName(k) + "："), shown));
    }
    if (layer === "enterprises") {
      // The factors in words come with the enterprise's portrait (not in the 24,000-row layer).
      const id = String(row.id);
      const link = h("a", { href: "#/enterprise/" + encodeURIComponent(id), id: "feature-link" }, t("enterprise_page") + " →");
      detail.appendChild(link);
      api<Record<string, Section>>("/api/dash/enterprise/" + encodeURIComponent(id)).then((d) => {
        const r = d.risk?.rows?.[0];
        const f = r && (lang === "zh" ? r.top_factors_zh || r.top_factors_en : r.top_factors_en || r.top_factors_zh);
        if (!f || detail.getAttribute("data-id") !== id) return;
        detail.insertBefore(h("div", { "data-field": "top_factors" }, h("span", { class: "muted" }, fieldName("top_factors_zh") + "："), String(f)), link);
      }).catch(() => { /* the link still leads to the portrait */ });
    }
    if (layer === "venues") detail.appendChild(h("a", { href: "#/crowd/" + encodeURIComponent(String(row.id)), id: "feature-link" }, t("crowd_page") + " →"));
  };

  const label = (id: string) => {
    const s = data[id];
    if (!enabled[id] || !s) return "";
    if (id === "enterprises" && s.totals) {
      const total = Object.values(s.totals).reduce((a, n) => a + n, 0);
      return ` (${text(s.rows?.length || 0)} / ${text(total)})`;
    }
    if (s.rows && s.rows.length) return ` (${text(s.rows.length)})`;
    return ` (${t(s.missing === "no_access" ? "no_access" : s.missing === "error" ? "error" : "no_data")})`;
  };
  const reloadEnterprises = async () => {
    hint.textContent = t("loading"); // all levels: 24,000 units take a few seconds
    list.querySelectorAll("#ent-levels input, #ent-levels button").forEach((e) => ((e as HTMLInputElement).disabled = true));
    await load("enterprises");
    redraw();
    drawList();
  };
  const drawList = () => {
    clear(list);
    for (const l of layerDefs) {
      const cb = h("input", { type: "checkbox", id: "layer-" + l.id, "data-layer": l.id }) as HTMLInputElement;
      cb.checked = enabled[l.id];
      cb.addEventListener("change", async () => {
        enabled[l.id] = cb.checked;
        if (cb.checked && !data[l.id]) {
          hint.textContent = t("loading");
          cb.disabled = true;
          try { await load(l.id); } finally { hint.textContent = ""; cb.disabled = false; }
        }
        redraw();
        drawList();
      });
      const count = enabled[l.id] && data[l.id] ? String(data[l.id].rows?.length ?? 0) : "";
      const sw = h("span", { "data-swatch": l.id, class: "swatch" }, "●");
      sw.style.color = l.color; // CSSOM, not an inline style attribute: allowed by the CSP
      list.appendChild(h("label", { "data-layer-count": count, id: "layer-label-" + l.id }, cb, sw, t("layer_" + l.id) + label(l.id)));
      if (l.id === "enterprises" && enabled.enterprises) {
        const totals = data.enterprises?.totals || {};
        const chips = h("div", { class: "sublayers", id: "ent-levels" });
        for (const lv of allLevels) {
          if (lv === "none" && !totals.none) continue;
          const c = h("input", { type: "checkbox", id: "ent-level-" + lv, "data-level": lv }) as HTMLInputElement;
          c.checked = entLevels.has(lv);
          c.addEventListener("change", () => { if (c.checked) entLevels.add(lv); else entLevels.delete(lv); void reloadEnterprises(); });
          const dot = h("span", { class: "swatch" }, "●");
          dot.style.color = levelColor[lv] || l.color;
          chips.appendChild(h("label", null, c, dot, (lv === "none" ? "—" : t(lv)) + " " + text(totals[lv] || 0)));
        }
        const all = entLevels.size >= allLevels.length;
        chips.appendChild(h("button", { class: "small", id: "ent-all-levels", onclick: () => { entLevels = new Set(all ? highLevels : allLevels); void reloadEnterprises(); } },
          all ? t("high_levels") : t("all_levels")));
        list.appendChild(chips);
      }
    }
  };
  drawList();
}
