import { h } from "./dom";
import { t, getLang, val } from "./i18n";
import { state, resetFilters } from "./state";

/** The page-wide filters: time range, street, industry. */
export function filterBar(onChange: () => void): HTMLElement {
  const f = state.filters;
  const c = state.conf!;
  const from = h("input", { type: "date", id: "f-from", value: f.from }) as HTMLInputElement;
  const to = h("input", { type: "date", id: "f-to", value: f.to }) as HTMLInputElement;
  const street = h("select", { id: "f-street" }, h("option", { value: "" }, t("all")),
    ...c.streets.map((s) => { const o = h("option", { value: s.adcode }, getLang() === "zh" ? s.name_zh : s.name_en || s.name_zh); if (s.adcode === f.street) o.setAttribute("selected", ""); return o; })) as HTMLSelectElement;
  const inds = c.industries.rows || [];
  const industry = h("select", { id: "f-industry" }, h("option", { value: "" }, t("all")),
    ...inds.map((i) => { const o = h("option", { value: i.industry }, val(i.industry)); if (i.industry === f.industry) o.setAttribute("selected", ""); return o; })) as HTMLSelectElement;
  // A range that ends before it starts is said where it is chosen, and the
  // page keeps what it shows (it once blanked the whole page).
  const note = h("span", { class: "error small", id: "f-error" });
  const apply = () => {
    if (from.value && to.value && from.value > to.value) {
      note.textContent = t("range_reversed");
      return;
    }
    note.textContent = "";
    Object.assign(state.filters, { from: from.value, to: to.value, street: street.value, industry: industry.value });
    onChange();
  };
  for (const el of [from, to, street, industry]) el.addEventListener("change", apply);
  return h("div", { class: "filters" },
    h("label", null, t("from"), from), h("label", null, t("to"), to),
    h("label", null, t("street"), street), h("label", null, t("industry"), industry),
    h("button", { class: "small", id: "f-reset", onclick: () => { resetFilters(); onChange(); } }, t("reset")), note);
}

/** Sets filters (a chart click) and re-renders the page. */
export function setFilter(patch: Partial<typeof state.filters>, onChange: () => void) {
  Object.assign(state.filters, patch);
  onChange();
}
