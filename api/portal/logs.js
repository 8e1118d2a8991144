// An endpoint's logs: its attempts or its messages, filtered by status, paged by iterator;
// each row opens to the body that was sent and the response (code, body, duration).

import { api, appPath, can, enc, errorText, state } from "./api.js";
import {
  busy, button, emptyState, fact, field, fmtDate, h, loading, notify, pager, pretty, replace,
  section, statusBadge,
} from "./dom.js";

const STATUSES = [["", "All statuses"], ["0", "Succeeded"], ["2", "Failed"], ["1", "Pending"],
  ["3", "Sending"], ["4", "Canceled"]];
const logs = { reload: null, timers: [] };

/** After a send or a resend: look again a few times while the delivery happens. */
export function refreshLogsSoon() {
  logs.timers.forEach(clearTimeout);
  logs.timers = [1200, 3000, 6000, 10000].map((ms) => setTimeout(() => logs.reload?.(), ms));
}

export function logsCard(ep, epPath) {
  const kind = h("select", { name: "kind" },
    h("option", { value: "attempts" }, "Attempts"), h("option", { value: "messages" }, "Messages"));
  const status = h("select", { name: "status" },
    STATUSES.map(([value, label]) => h("option", { value }, label)));
  const list = h("div", { class: "logs" }, loading());
  const pages = [null];
  const open = new Set();
  const view = state.view;
  const load = async () => {
    if (view !== state.view) return; // the page has changed since
    try {
      const query = { status: status.value, iterator: pages.at(-1), limit: 20,
        expanded_statuses: true };
      const attempts = kind.value === "attempts";
      const data = attempts
        ? await api("GET", appPath(`/attempt/endpoint/${enc(ep.id)}`),
          { query: { ...query, with_msg: true } })
        : await api("GET", epPath("/msg"), { query: { ...query, with_content: true } });
      if (view !== state.view) return;
      const rows = data.data.map((item) => (attempts ? attemptRow : messageRow)(item, ep, open));
      const none = status.value
        ? "Nothing with this status."
        : "Nothing sent to this endpoint yet.";
      replace(list, rows.length
        ? h("div", { class: "log-list" }, rows)
        : emptyState(attempts ? "No attempts" : "No messages", none),
      pager(data, pages, load));
    } catch (err) {
      if (err.status === 401) return;
      replace(list, h("p", { class: "error-text", role: "alert" }, errorText(err)));
    }
  };
  const restart = () => {
    pages.splice(1);
    open.clear();
    load();
  };
  kind.addEventListener("change", restart);
  status.addEventListener("change", restart);
  logs.reload = load;
  load();
  const refresh = button("Refresh", () => busy(refresh, load));
  return section("Logs", h("div", { class: "toolbar" }, field("Show", kind),
    field("Status", status), refresh), list);
}

/** A <details> row that loads its body when first opened (and stays open across refreshes). */
function logRow(key, summary, open, fill) {
  const body = h("div", { class: "log-body" }, loading());
  const row = h("details", { class: "log", "data-id": key }, h("summary", {}, summary), body);
  let loaded = false;
  row.addEventListener("toggle", () => {
    if (row.open) open.add(key);
    else open.delete(key);
    if (row.open && !loaded) {
      loaded = true;
      fill(body).catch((err) => replace(body, h("p", { class: "error-text" }, errorText(err))));
    }
  });
  if (open.has(key)) row.open = true;
  return row;
}

function resendButton(msgId, ep) {
  if (!can("resend")) return null;
  const resend = button("Resend", () => busy(resend, async () => {
    await api("POST", appPath(`/msg/${enc(msgId)}/endpoint/${enc(ep.id)}/resend`), { body: {} });
    notify("Resent: the new attempt appears in the log in a moment.");
    refreshLogsSoon();
  }));
  return resend;
}

const responseCode = (a) => (a.responseStatusCode ? `HTTP ${a.responseStatusCode}` : "No response");
const responseBody = (a) =>
  h("pre", { class: "json", "data-role": "response" }, a.response ? pretty(a.response) : "(empty)");

function attemptRow(a, ep, open) {
  const summary = [statusBadge(a.status), h("span", { class: "code" }, responseCode(a)),
    h("span", { class: "event" }, (a.msg && a.msg.eventType) || a.msgId),
    h("span", { class: "muted when" }, fmtDate(a.timestamp))];
  return logRow(a.id, summary, open, async (body) => {
    const msg = await api("GET", appPath(`/msg/${enc(a.msgId)}`)).catch(() => null);
    replace(body,
      h("dl", { class: "facts" },
        fact("URL", h("code", {}, a.url)),
        fact("Response", responseCode(a)),
        fact("Duration", `${a.responseDurationMs} ms`),
        fact("Trigger", a.triggerType === 1 ? "Manual (resend)" : "Scheduled"),
        fact("Message", h("code", {}, a.msgId))),
      h("h3", {}, "Request body"),
      h("pre", { class: "json", "data-role": "request" },
        msg ? pretty(msg.payload) : "Unavailable."),
      h("h3", {}, "Response body"), responseBody(a),
      h("div", { class: "actions" }, resendButton(a.msgId, ep)));
  });
}

function messageRow(m, ep, open) {
  const summary = [statusBadge(m.status), h("span", { class: "event" }, m.eventType),
    h("span", { class: "muted code" }, m.id),
    h("span", { class: "muted when" }, fmtDate(m.timestamp))];
  return logRow(m.id, summary, open, async (body) => {
    const query = { endpoint_id: ep.id, limit: 50, expanded_statuses: true };
    const attempts = await api("GET", appPath(`/attempt/msg/${enc(m.id)}`), { query });
    const items = attempts.data.map((a) => h("li", {},
      h("p", {}, statusBadge(a.status), ` ${responseCode(a)} · ${a.responseDurationMs} ms · `,
        h("span", { class: "muted" }, fmtDate(a.timestamp))),
      responseBody(a)));
    replace(body,
      h("h3", {}, "Payload"),
      h("pre", { class: "json", "data-role": "request" }, pretty(m.payload)),
      h("h3", {}, "Attempts"),
      items.length
        ? h("ul", { class: "attempts" }, items)
        : h("p", { class: "muted" }, "No attempt yet."),
      h("div", { class: "actions" }, resendButton(m.id, ep)));
  });
}
