// The portal's session and its calls to /api/v1 with the app token (no DOM in here).

const API = new URL("../api/v1/", location.href); // the page is served at <base>/portal/
const KEY_STORE = "herald.portal.key";

// Which capability each action needs (api/capabilities.py is the server's side of this).
const NEEDS = {
  manage: "ManageEndpoint",
  viewSecret: "ViewEndpointSecret",
  rotate: "ManageEndpointSecret",
  resend: "CreateAttempts",
  sendExample: "CreateAttempts",
  recover: "CreateAttempts",
};

export const state = { token: null, session: null, catalog: null, expired: false, view: 0 };
// set by portal.js: what a 401 shows, and how a view is drawn again after a change
export const hooks = { expired: () => {}, refresh: () => {} };

export class ApiError extends Error {
  constructor(status, body) {
    super((body && typeof body.detail === "string" && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export const can = (action) =>
  Boolean(state.session && state.session.capabilities.includes(NEEDS[action]));
export const enc = encodeURIComponent;
export const appPath = (rest = "") => `app/${enc(state.session.appId)}${rest}`;

/** The token from `#key=...` (then kept in sessionStorage, the fragment replaced), or the
 * one kept earlier in this tab. */
export function takeToken() {
  const key = new URLSearchParams(location.hash.slice(1)).get("key");
  if (key) {
    try {
      sessionStorage.setItem(KEY_STORE, key);
    } catch {
      // storage blocked (a sandboxed frame): the key lives in memory only
    }
    history.replaceState(null, "", `${location.pathname}${location.search}#/endpoints`);
    return key;
  }
  try {
    return sessionStorage.getItem(KEY_STORE) || state.token;
  } catch {
    return state.token;
  }
}

export function forgetToken() {
  try {
    sessionStorage.removeItem(KEY_STORE);
  } catch {
    // nothing stored
  }
}

/** One API call; JSON in and out. A 401 (expired or revoked link) shows the expired screen. */
export async function api(method, path, { query, body } = {}) {
  const url = new URL(path, API);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== null && value !== undefined && value !== "") {
      url.searchParams.set(name, String(value));
    }
  }
  const headers = { Authorization: `Bearer ${state.token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, { detail: "Could not reach the server. Check the connection." });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text };
  }
  if (response.status === 401) hooks.expired();
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** What to tell the user about a failed call. */
export function errorText(err) {
  if (!(err instanceof ApiError)) return `Something went wrong: ${err.message || err}`;
  if (err.status === 401) return "This link has expired.";
  if (err.status === 403) return "This link does not allow that action.";
  if (err.status === 404) return "Not found: it may have been deleted.";
  const items = err.body && err.body.detail;
  if (err.status === 422 && Array.isArray(items)) {
    const where = (d) => (d.loc || []).slice(1).join(".") || "request";
    return items.map((d) => `${where(d)}: ${d.msg}`).join("; ");
  }
  return err.message;
}

/** Every item of a Svix list, following `iterator` until `done` (bounded). */
export async function listAll(path, query = {}) {
  const items = [];
  let iterator = null;
  for (let page = 0; page < 40; page += 1) {
    const data = await api("GET", path, { query: { ...query, limit: 250, iterator } });
    items.push(...data.data);
    if (data.done || !data.iterator) break;
    iterator = data.iterator;
  }
  return items;
}

/** The event-type catalog (loaded once per page view of it). */
export async function catalog() {
  if (!state.catalog) state.catalog = await listAll("event-type", { with_content: true });
  return state.catalog;
}

/** The JSON Schema version examples are sent from (as the server: "1", else the first) and
 * that schema's `examples`. */
export function exampleSchema(eventType) {
  const schemas = eventType.schemas || {};
  const versions = Object.keys(schemas).sort();
  const version = "1" in schemas ? "1" : versions[0];
  const schema = version === undefined ? null : schemas[version];
  const examples = schema && Array.isArray(schema.examples) ? schema.examples : [];
  return { version, schema, examples };
}
