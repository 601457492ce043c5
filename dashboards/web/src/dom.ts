// Every value from a feed goes into the page as text (textContent), never
// as HTML: a complaint containing <script> shows as text.
type Attrs = Record<string, string | number | boolean | ((e: Event) => void) | undefined>;
export function h(tag: string, attrs?: Attrs | null, ...kids: (Node | string | number | null | undefined | false)[]): HTMLElement {
  const el = document.createElement(tag);
  if (attrs) for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v as EventListener);
    else if (k === "class") el.className = String(v);
    else if (k === "value") (el as HTMLInputElement).value = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of kids) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return el;
}
export function clear(el: Element) { while (el.firstChild) el.removeChild(el.firstChild); }
export function text(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return Number.isInteger(v) ? v.toLocaleString() : v.toLocaleString(undefined, { maximumFractionDigits: 2 });
  return String(v);
}
export function fmtTime(v: unknown): string {
  if (!v) return "";
  // The server sends times in Beijing time (+08:00): show them as such, whatever the browser's zone.
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)(?::[\d.]+)?\+08:00$/.exec(String(v));
  if (m) return m[1] + " " + m[2];
  const d = new Date(String(v));
  if (isNaN(d.getTime())) return String(v);
  const b = new Date(d.getTime() + 8 * 3600000); // Beijing time, read through the UTC getters
  const p = (n: number) => String(n).padStart(2, "0");
  return `${b.getUTCFullYear()}-${p(b.getUTCMonth() + 1)}-${p(b.getUTCDate())} ${p(b.getUTCHours())}:${p(b.getUTCMinutes())}`;
}
export function table(cols: { key: string; label: string; num?: boolean; render?: (row: any) => Node | string }[], rows: any[], onRow?: (row: any) => void): HTMLElement {
  // A figures column is right-aligned, its heading too (they were apart).
  const thead = h("thead", null, h("tr", null, ...cols.map((c) => h("th", c.num ? { class: "num" } : null, c.label))));
  const tbody = h("tbody");
  for (const r of rows) {
    const tr = h("tr", onRow ? { class: "click", onclick: () => onRow(r) } : null, ...cols.map((c) => h("td", c.num ? { class: "num" } : null, c.render ? c.render(r) : text(r[c.key]))));
    tbody.appendChild(tr);
  }
  return h("table", { class: "data" }, thead, tbody);
}
export function download(name: string, blob: Blob) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name }) as HTMLAnchorElement;
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
export function toCSV(rows: Record<string, unknown>[]): string {
  if (!rows.length) return "";
  const cols = Object.keys(rows[0]);
  const q = (v: unknown) => { const s = v == null ? "" : String(v); return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s; };
  return "\ufeff" + [cols.join(","), ...rows.map((r) => cols.map((c) => q(r[c])).join(","))].join("\r\n") + "\r\n";
}
/**
 * Free text from the data (a name, an address, a description) as written
 * at its source, in whatever language: marked data-raw, so the page's
 * language check (and a reader) can tell it from the page's own words.
 */
export function dataText(v: unknown): HTMLElement {
  return h("span", { "data-raw": "data" }, v == null ? "" : String(v));
}
