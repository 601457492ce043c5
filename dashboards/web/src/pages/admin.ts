import { api } from "../api";
import { h, clear, fmtTime } from "../dom";
import { t, val, getLang } from "../i18n";

interface U { name: string; role: string; department?: string; display_name?: string; disabled?: boolean; created: string; }

/** Admin: users, roles, departments, passwords. */
export async function adminPage(el: HTMLElement) {
  const box = h("div");
  el.appendChild(box);
  const load = async () => {
    const d = await api<{ users: U[]; departments: { name: string; name_zh: string; name_en?: string }[] }>("/api/admin/users");
    const lk = await api<{ locks: { key: string; failures: number; until: string }[] }>("/api/admin/locks");
    clear(box);
    const msg = h("p", { class: "error", id: "admin-msg" });
    const act = (fn: () => Promise<unknown>) => async () => { try { await fn(); await load(); } catch (e) { msg.textContent = (e as Error).message; } };
    const roleSel = (v: string) => { const s = h("select", null, ...["admin", "leader", "analyst", "department"].map((r) => { const o = h("option", { value: r }, val(r)); if (r === v) o.setAttribute("selected", ""); return o; })) as HTMLSelectElement; return s; };
    const depSel = (v?: string) => { const s = h("select", null, h("option", { value: "" }, "—"), ...d.departments.map((x) => { const o = h("option", { value: x.name }, getLang() === "zh" ? x.name_zh || x.name : x.name_en || x.name); if (x.name === v) o.setAttribute("selected", ""); return o; })) as HTMLSelectElement; return s; };
    const rows = d.users.map((u) => {
      const rs = roleSel(u.role), ds = depSel(u.department), pw = h("input", { type: "password", placeholder: t("new_password") }) as HTMLInputElement;
      const dis = h("input", { type: "checkbox" }) as HTMLInputElement; dis.checked = !!u.disabled;
      return h("tr", { "data-user": u.name }, h("td", { "data-raw": "user" }, u.name), h("td", null, rs), h("td", null, ds), h("td", null, dis), h("td", null, pw), h("td", null, fmtTime(u.created)),
        h("td", null, h("button", { class: "small", onclick: act(() => api("/api/admin/users/" + encodeURIComponent(u.name), { method: "PATCH", body: { role: rs.value, department: ds.value, disabled: dis.checked, password: pw.value } })) }, t("save")), " ",
          h("button", { class: "small", onclick: act(async () => { if (confirm(t("confirm_delete"))) await api("/api/admin/users/" + encodeURIComponent(u.name), { method: "DELETE" }); }) }, t("delete"))));
    });
    const nn = h("input", { id: "new-user", placeholder: t("user") }) as HTMLInputElement, np = h("input", { id: "new-password", type: "password", placeholder: t("password") }) as HTMLInputElement;
    const nr = roleSel("leader"), nd = depSel();
    box.appendChild(h("section", { class: "card" }, h("h2", null, t("admin")),
      h("table", { class: "data", id: "users" }, h("thead", null, h("tr", null, ...["user", "role", "department", "disabled", "new_password", "time", ""].map((k) => h("th", null, k ? t(k) : "")))), h("tbody", null, ...rows)),
      h("h2", null, t("add_user")), h("div", { class: "filters" }, nn, np, nr, nd,
        h("button", { id: "add-user", onclick: act(() => api("/api/admin/users", { body: { name: nn.value, password: np.value, role: nr.value, department: nd.value } })) }, t("add_user"))), msg));
    box.appendChild(h("section", { class: "card", id: "locks" }, h("h2", null, t("locked_logins")),
      lk.locks.length === 0 ? h("p", { class: "muted" }, t("no_locks")) :
        h("table", { class: "data" }, h("thead", null, h("tr", null, ...["lock_key", "failures", "locked_until", ""].map((k) => h("th", null, k ? t(k) : "")))),
          h("tbody", null, ...lk.locks.map((l) => h("tr", { "data-lock": l.key }, h("td", null, l.key), h("td", null, String(l.failures)), h("td", null, fmtTime(l.until)),
            h("td", null, h("button", { class: "small", onclick: act(() => api("/api/admin/locks/" + encodeURIComponent(l.key), { method: "DELETE" })) }, t("unlock")))))))));
  };
  await load();
}
