import streetsGeo from "../../../../internal/geo/data/xicheng_streets.geojson";
import { api, Section } from "../api";
import { h, clear, text, fmtTime } from "../dom";
import { t, getLang, levelColor, levelOrder } from "../i18n";
import { card, draw, echarts, missing } from "../charts";
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

const layerDefs: { id: string; color: string; symbol: string; on: boolean }[] = [
  { id: "crowd", color: "#a06bff", symbol: "rect", on: false },
  { id: "venues", color: "#3aa0ff", symbol: "diamond", on: true },
  { id: "enterprises", color: "#8fa6c6", symbol: "circle", on: true },
  { id: "shelters", color: "#27ae60", symbol: "triangle", on: false },
  { id: "warehouses", color: "#16a085", symbol: "roundRect", on: false },
  { id: "fire_stations", color: "#ff5252", symbol: "pin", on: false },
  { id: "waterlogging", color: "#00bcd4", symbol: "circle", on: false },
  { id: "lifeline", color: "#ffd166", symbol: "circle", on: false },
  { id: "incidents", color: "#ff7043", symbol: "circle", on: false },
];
const enabled: Record<string, boolean> = Object.fromEntries(layerDefs.map((l) => [l.id, l.on]));

function pointColor(layer: string, r: Record<string, any>, def: string, maxPeople: number): string {
  if (layer === "enterprises" && r.level) return levelColor[r.level] || def;
  if (layer === "venues" && r.warning_level) return levelColor[r.warning_level] || def;
  if (layer === "crowd") { const v = Number(r.people || 0) / (maxPeople || 1); return `rgba(160,107,255,${0.15 + 0.85 * Math.min(1, v)})`; }
  if ((layer === "waterlogging" || layer === "lifeline") && r.alarm) return "#e5393b";
  return def;
}

export async function mapPage(el: HTMLElement) {
  registerMap();
  const grid = h("div", { class: "grid" });
  el.appendChild(grid);
  const data: Record<string, Section> = {};
  const load = async (id: string) => { data[id] = await api<Section>(`/api/dash/map/${id}?` + qs()); };
  await Promise.all(layerDefs.filter((l) => enabled[l.id]).map((l) => load(l.id)));

  const side = h("section", { class: "card span3" });
  const list = h("div", { class: "layers", id: "layers" });
  const detail = h("div", { class: "detail", id: "feature-detail" }, t("click_feature"));
  side.appendChild(h("h2", null, t("layers")));
  side.appendChild(list);
  side.appendChild(h("h2", null, t("details")));
  side.appendChild(detail);
  const mc = card(t("map"), "span9", () => layerDefs.filter((l) => enabled[l.id]).flatMap((l) => (data[l.id]?.rows || []).map((r) => ({ layer: l.id, ...r }))), "map");
  grid.appendChild(side);
  grid.appendChild(mc.el);

  // Large layers are drawn in ECharts' large mode (one colour per series):
  // enterprises become one series per risk level.
  const seriesRows: Record<string, Record<string, any>[]> = {};
  const series = () => layerDefs.filter((l) => enabled[l.id] && data[l.id]?.rows).flatMap((l) => {
    const rows = data[l.id].rows!;
    const maxPeople = l.id === "crowd" ? Math.max(1, ...rows.map((r) => Number(r.people || 0))) : 0;
    const point = (r: Record<string, any>, color?: string) => ({ name: String(r.name_zh ?? r.name ?? r.id ?? ""), value: [Number(r.lon), Number(r.lat), Number(r.people ?? r.score ?? 0)], row: r,
      itemStyle: color ? undefined : { color: pointColor(l.id, r, l.color, maxPeople) } });
    const common = { type: "scatter", coordinateSystem: "geo", symbol: l.symbol, symbolSize: l.id === "crowd" || l.id === "venues" ? 14 : 8, z: l.id === "crowd" ? 1 : l.id === "enterprises" ? 2 : 3 };
    if (l.id === "enterprises") {
      return [...levelOrder, ""].map((lv) => {
        const id = "enterprises:" + (lv || "none"), mine = rows.filter((r) => (r.level || "") === lv);
        seriesRows[id] = mine;
        return { ...common, id, name: t("layer_enterprises") + (lv ? " · " + t(lv) : ""), large: true, largeThreshold: 2000,
          itemStyle: { color: lv ? levelColor[lv] : l.color }, data: mine.map((r) => point(r, "series")) };
      }).filter((s) => s.data.length);
    }
    seriesRows[l.id] = rows;
    return [{ ...common, id: l.id, name: t("layer_" + l.id), data: rows.map((r) => point(r)) }];
  });
  const chart = draw(mc, {
    tooltip: { trigger: "item", renderMode: "richText" },
    geo: { map: "xicheng", roam: true, nameMap: Object.fromEntries((state.conf?.streets || []).map((s) => [s.adcode, getLang() === "zh" ? s.name_zh : s.name_en || s.name_zh])),
      label: { show: true, color: "#8fa6c6", fontSize: 11 }, itemStyle: { areaColor: "#13294a", borderColor: "#3a6ea5" },
      emphasis: { itemStyle: { areaColor: "#1b3b66" }, label: { color: "#fff" } }, selectedMode: false },
    series: series(),
  }, true);
  chart.on("click", (p: any) => {
    if (p.componentType === "geo") { setFilter({ street: String(p.name) }, render); return; }
    // In large mode ECharts keeps no data objects: find the row by index.
    const row = (p.data?.row ?? seriesRows[String(p.seriesId)]?.[p.dataIndex]) as Record<string, unknown> | undefined;
    if (!row) return;
    const layer = String(p.seriesId || "").split(":")[0];
    clear(detail);
    detail.appendChild(h("b", { id: "feature-title" }, t("layer_" + layer) + " · " + String(row.name_zh ?? row.name ?? row.id ?? "")));
    for (const [k, v] of Object.entries(row)) {
      if (v === null || v === "" || k === "lon" || k === "lat") continue;
      const val = k === "street_code" ? streetName(String(v), getLang()) : /_at$|window_start/.test(k) ? fmtTime(v) : text(v);
      detail.appendChild(h("div", null, h("span", { class: "muted" }, k + "："), val));
    }
    if (layer === "enterprises") detail.appendChild(h("a", { href: "#/enterprise/" + encodeURIComponent(String(row.id)), id: "feature-link" }, t("risk") + " →"));
    if (layer === "venues") detail.appendChild(h("a", { href: "#/crowd/" + encodeURIComponent(String(row.id)) }, t("crowd") + " →"));
  });

  const label = (id: string) => {
    const s = data[id];
    if (!enabled[id] || !s) return "";
    if (s.rows && s.rows.length) return ` (${s.rows.length})`;
    return ` (${t(s.missing === "no_access" ? "no_access" : s.missing === "error" ? "error" : "no_data")})`;
  };
  const drawList = () => {
    clear(list);
    for (const l of layerDefs) {
      const cb = h("input", { type: "checkbox", id: "layer-" + l.id, "data-layer": l.id }) as HTMLInputElement;
      cb.checked = enabled[l.id];
      cb.addEventListener("change", async () => {
        enabled[l.id] = cb.checked;
        if (cb.checked && !data[l.id]) await load(l.id);
        chart.setOption({ series: series() }, { replaceMerge: ["series"] });
        drawList();
      });
      const count = enabled[l.id] && data[l.id] ? String(data[l.id].rows?.length ?? 0) : "";
      const sw = h("span", { "data-swatch": l.id }, "●");
      sw.style.color = l.color; // CSSOM, not an inline style attribute: allowed by the CSP
      list.appendChild(h("label", { "data-layer-count": count, id: "layer-label-" + l.id }, cb, " ", sw, " ", t("layer_" + l.id) + label(l.id)));
    }
  };
  drawList();
  void missing;
}
