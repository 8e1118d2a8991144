// The endpoint list and one endpoint's page: overview, stats, secret, headers, examples, recover.

import { api, appPath, can, catalog, enc, exampleSchema, hooks } from "./api.js";
import {
  actionForm, busy, button, confirmButton, emptyState, enabledBadge, fact, field, fmtDate, h,
  notify, pageTitle, pager, replace, section,
} from "./dom.js";
import { logsCard, refreshLogsSoon } from "./logs.js";

const endpointPages = [null];

export async function viewEndpoints() {
  const query = { limit: 50, iterator: endpointPages.at(-1) };
  const data = await api("GET", appPath("/endpoint"), { query });
  const add = can("manage")
    ? h("a", { class: "btn btn-primary", href: "#/endpoints/new" }, "Add endpoint")
    : null;
  const head = [
    pageTitle("Endpoints", add),
    h("p", { class: "muted lead" }, "The URLs that receive webhooks, and what each one is sent."),
  ];
  if (!data.data.length) {
    const hint = can("manage")
      ? "Add an endpoint to start receiving webhooks."
      : "Nothing is being delivered yet.";
    return [head, emptyState("No endpoints yet", hint)];
  }
  const rows = data.data.map((ep) => h("tr", {},
    h("td", { "data-label": "Endpoint" },
      h("a", { class: "ep-url", href: `#/endpoint/${enc(ep.id)}` }, ep.url),
      ep.description ? h("span", { class: "muted small block" }, ep.description) : null),
    h("td", { "data-label": "Events" }, eventsText(ep)),
    h("td", { "data-label": "Status" }, enabledBadge(ep))));
  const th = (text) => h("th", { scope: "col" }, text);
  const table = h("table", { class: "list endpoints" },
    h("thead", {}, h("tr", {}, th("Endpoint"), th("Events"), th("Status"))),
    h("tbody", {}, rows));
  const pages = pager(data, endpointPages, hooks.refresh);
  return [head, h("div", { class: "card flush" }, table), pages];
}

function eventsText(ep) {
  return ep.eventTypes && ep.eventTypes.length ? ep.eventTypes.join(", ") : "All events";
}

export async function viewEndpoint(id) {
  const path = (rest = "") => appPath(`/endpoint/${enc(id)}${rest}`);
  const [ep, stats, headers] = await Promise.all([
    api("GET", path()),
    api("GET", path("/stats")).catch(() => null),
    api("GET", path("/headers")).catch(() => null),
  ]);
  const epPath = (rest = "") => appPath(`/endpoint/${enc(ep.id)}${rest}`);
  const overview = h("dl", { class: "facts" },
    fact("Status", enabledBadge(ep)),
    fact("Events", eventsText(ep)),
    fact("Channels", ep.channels && ep.channels.length ? ep.channels.join(", ") : "All channels"),
    fact("Rate limit", ep.throttleRate ? `${ep.throttleRate} per second` : "None"),
    fact("Created", fmtDate(ep.createdAt)),
    fact("Endpoint ID", h("code", {}, ep.id)));
  return [
    h("p", { class: "crumbs" }, h("a", { href: "#/endpoints" }, "← Endpoints")),
    pageTitle(ep.url, can("manage") ? endpointActions(ep, epPath) : null),
    ep.description ? h("p", { class: "lead" }, ep.description) : null,
    h("div", { class: "grid" }, section("Overview", overview), statsCard(stats)),
    can("viewSecret") || can("rotate") ? secretCard(epPath) : null,
    headersCard(epPath, headers),
    can("sendExample") ? await exampleCard(ep, epPath) : null,
    logsCard(ep, epPath),
    can("recover") ? recoverCard(epPath) : null,
  ];
}

function endpointActions(ep, epPath) {
  const toggle = button(ep.disabled ? "Enable" : "Disable", () => busy(toggle, async () => {
    await api("PATCH", epPath(), { body: { disabled: !ep.disabled } });
    await hooks.refresh();
    notify(ep.disabled ? "Endpoint enabled." : "Endpoint disabled.");
  }));
  const remove = confirmButton("Delete", "Delete this endpoint?", async () => {
    await api("DELETE", epPath());
    location.hash = "#/endpoints";
    notify("Endpoint deleted.");
  });
  const href = `#/endpoint/${enc(ep.id)}/edit`;
  const edit = h("a", { class: "btn btn-secondary", href }, "Edit");
  return h("div", { class: "actions" }, edit, toggle, remove);
}

function statsCard(stats) {
  if (!stats) return section("Delivery", h("p", { class: "muted" }, "No statistics available."));
  const items = [["success", "Succeeded"], ["fail", "Failed"], ["pending", "Pending"],
    ["sending", "Sending"]];
  return section("Delivery (last 28 days)", h("ul", { class: "stats" }, items.map(([key, label]) =>
    h("li", { class: `stat stat-${key}` },
      h("span", { class: "stat-n" }, String(stats[key] ?? 0)),
      h("span", { class: "stat-l" }, label)))));
}

function secretCard(epPath) {
  const shown = h("div", { class: "secret" });
  const show = (key) => replace(shown, h("code", { class: "secret-key", "data-secret": "" }, key));
  const reveal = can("viewSecret")
    ? button("Reveal secret", () => busy(reveal, async () => {
      if (shown.childElementCount) {
        shown.replaceChildren();
      } else {
        show((await api("GET", epPath("/secret"))).key);
      }
      reveal.textContent = shown.childElementCount ? "Hide secret" : "Reveal secret";
    }))
    : null;
  const question = "Replace the signing secret? The old one keeps working for 24 hours.";
  const rotate = can("rotate")
    ? confirmButton("Rotate secret", question, async () => {
      const out = await api("POST", epPath("/secret/rotate"), { body: {} });
      if (can("viewSecret") && out && out.key) show(out.key);
      else shown.replaceChildren();
      if (reveal) reveal.textContent = shown.childElementCount ? "Hide secret" : "Reveal secret";
      notify("Signing secret rotated.");
    }, "secondary")
    : null;
  const about = "Every webhook is signed with this secret (Standard Webhooks): use it to verify "
    + "that a request comes from us.";
  return section("Signing secret", h("p", { class: "muted" }, about), shown,
    h("div", { class: "actions" }, reveal, rotate));
}

function headersCard(epPath, data) {
  const manage = can("manage");
  const values = (data && data.headers) || {};
  const names = [...Object.keys(values), ...((data && data.sensitive) || [])
    .filter((name) => !(name in values))];
  const remove = (name) => confirmButton("Remove", `Remove ${name}?`, async () => {
    await api("PATCH", epPath("/headers"), { body: { headers: {}, deleteHeaders: [name] } });
    await hooks.refresh();
    notify(`Header ${name} removed.`);
  });
  const th = (text) => h("th", { scope: "col" }, text);
  const list = names.length
    ? h("table", { class: "list compact" },
      h("thead", {}, h("tr", {}, th("Header"), th("Value"),
        manage ? th(h("span", { class: "sr-only" }, "Actions")) : null)),
      h("tbody", {}, names.map((name) => h("tr", {},
        h("td", { "data-label": "Header" }, h("code", {}, name)),
        h("td", { "data-label": "Value" },
          values[name] ?? h("span", { class: "muted" }, "hidden (sensitive)")),
        manage ? h("td", { class: "right" }, remove(name)) : null))))
    : h("p", { class: "muted" }, "No custom headers.");
  let form = null;
  if (manage) {
    const name = h("input", { name: "name", required: true, autocomplete: "off" });
    const value = h("input", { name: "value", required: true, autocomplete: "off" });
    form = actionForm({ class: "inline-form" }, async () => {
      const header = name.value.trim();
      await api("PATCH", epPath("/headers"), { body: { headers: { [header]: value.value } } });
      await hooks.refresh();
      notify(`Header ${header} saved.`);
    }, field("Header name", name), field("Value", value),
    h("button", { type: "submit", class: "btn btn-secondary" }, "Save header"));
  }
  const about = "Sent with every webhook to this endpoint.";
  return section("Custom headers", h("p", { class: "muted" }, about), list, form);
}

async function exampleCard(ep, epPath) {
  const types = (await catalog()).filter((t) => !t.archived && exampleSchema(t).examples.length
    && (!ep.eventTypes || ep.eventTypes.includes(t.name)));
  if (!types.length) {
    const none = "None of this endpoint's event types has an example to send.";
    return section("Send an example", h("p", { class: "muted" }, none));
  }
  const type = h("select", { name: "eventType" },
    types.map((t) => h("option", { value: t.name }, t.name)));
  const example = h("select", { name: "exampleIndex" });
  const exampleField = field("Example", example);
  const fillExamples = () => {
    const { examples } = exampleSchema(types.find((t) => t.name === type.value));
    replace(example, examples.map((_, i) => h("option", { value: String(i) }, `Example ${i + 1}`)));
    exampleField.hidden = examples.length < 2;
  };
  type.addEventListener("change", fillExamples);
  fillExamples();
  const form = actionForm({ class: "inline-form" }, async () => {
    const body = { eventType: type.value, exampleIndex: Number(example.value || 0) };
    const msg = await api("POST", epPath("/send-example"), { body });
    notify(`Example ${type.value} sent${msg && msg.id ? ` (${msg.id})` : ""}.`);
    refreshLogsSoon();
  }, field("Event type", type), exampleField,
  h("button", { type: "submit", class: "btn btn-primary" }, "Send example"));
  const about = "Deliver an example event to this endpoint now, to test it.";
  return section("Send an example", h("p", { class: "muted" }, about), form);
}

function recoverCard(epPath) {
  const dayAgo = new Date(Date.now() - 24 * 3600e3);
  const since = h("input", { type: "datetime-local", name: "since", required: true,
    value: localInput(dayAgo) });
  const form = actionForm({ class: "inline-form" }, async () => {
    await api("POST", epPath("/recover"), { body: { since: new Date(since.value).toISOString() } });
    notify("Recovery started: the messages that failed since then are being sent again.");
    refreshLogsSoon();
  }, field("Failed since", since),
  h("button", { type: "submit", class: "btn btn-secondary" }, "Recover failed messages"));
  const about = "Send again every message that failed at this endpoint since a date "
    + "(at most 14 days ago).";
  return section("Recover failed messages", h("p", { class: "muted" }, about), form);
}

/** A date as a datetime-local input's value (local time, minutes). */
function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`
    + `T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}
