// Same-origin JSON calls: the session cookie goes along, the CSRF token is
// sent on every state-changing request.
let csrf = "";
export function setCSRF(t: string) { csrf = t; }
export class HTTPError extends Error { constructor(public status: number, msg: string) { super(msg); } }
export async function api<T = any>(path: string, opts: { method?: string; body?: unknown; form?: Record<string, string> } = {}): Promise<T> {
  const headers: Record<string, string> = {};
  let body: BodyInit | undefined;
  if (opts.form) { headers["Content-Type"] = "application/x-www-form-urlencoded"; body = new URLSearchParams(opts.form).toString(); }
  else if (opts.body !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(opts.body); }
  const method = opts.method || (body ? "POST" : "GET");
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  const r = await fetch(path, { method, headers, body, credentials: "same-origin" });
  const ct = r.headers.get("Content-Type") || "";
  const data = ct.includes("json") ? await r.json() : await r.text();
  if (!r.ok) {
    const msg = typeof data === "object" && data && (data as any).error ? (data as any).error : String(data).slice(0, 300);
    throw new HTTPError(r.status, msg);
  }
  return data as T;
}
export interface Section { rows?: Record<string, any>[]; missing?: string; detail?: string; totals?: Record<string, number>; columns?: string[]; }
