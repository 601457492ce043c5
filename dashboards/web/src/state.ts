import { api } from "./api";
export interface Filters { from: string; to: string; street: string; industry: string; }
export interface Me { name: string; role: string; department?: string; display_name?: string; }
export interface Conf { streets: { adcode: string; name_zh: string; name_en: string }[]; industries: { rows?: { industry: string; n: number }[] }; today: string; default_days: number; sql: boolean; tables?: Record<string, { zh: string; en: string }>; }
export const state = {
  me: null as Me | null,
  conf: null as Conf | null,
  filters: { from: "", to: "", street: "", industry: "" } as Filters,
};
export function resetFilters() {
  const c = state.conf!;
  const to = new Date(c.today + "T00:00:00");
  const from = new Date(to.getTime() - (c.default_days - 1) * 86400000);
  const iso = (d: Date) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
  state.filters = { from: iso(from), to: c.today, street: "", industry: "" };
}
export function qs(extra: Record<string, string> = {}): string {
  const f = state.filters;
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries({ from: f.from, to: f.to, street: f.street, industry: f.industry, ...extra })) if (v) p.set(k, v);
  return p.toString();
}
export async function loadConf() { state.conf = await api<Conf>("/api/dash/config"); }
export function streetName(code: string, lang: string): string {
  const s = state.conf?.streets.find((x) => x.adcode === code);
  return s ? (lang === "zh" ? s.name_zh : s.name_en || s.name_zh) : code;
}
/** A table's title in the page's language ("" when it has none). */
export function tableTitle(name: string, lang: string): string {
  const d = state.conf?.tables?.[name];
  return d ? (lang === "zh" ? d.zh || d.en : d.en || d.zh) : "";
}
