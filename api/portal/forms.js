// Adding and editing an endpoint: URL, description, event types from the catalog, channels,
// rate limit.

import { api, appPath, can, catalog, enc, errorText } from "./api.js";
import { busy, field, h, notify, pageTitle, replace } from "./dom.js";

export async function viewEndpointForm(id) {
  if (!can("manage")) {
    return [pageTitle("Not allowed"), h("p", {}, "This link does not allow changing endpoints.")];
  }
  const [ep, types] = await Promise.all([
    id ? api("GET", appPath(`/endpoint/${enc(id)}`)) : null,
    catalog(),
  ]);
  const url = h("input", { type: "url", name: "url", required: true, autocomplete: "url",
    placeholder: "https://example.com/webhooks", value: ep ? ep.url : "" });
  const description = h("input", { name: "description", value: ep ? ep.description : "" });
  const channels = h("input", { name: "channels", autocomplete: "off",
    value: ep && ep.channels ? ep.channels.join(", ") : "" });
  const rate = h("input", { type: "number", name: "rateLimit", min: "1", max: "65535",
    inputmode: "numeric", value: ep && ep.throttleRate ? String(ep.throttleRate) : "" });
  const chosen = new Set((ep && ep.eventTypes) || []);
  // a subscribed type the catalog does not show (archived, behind a feature flag) stays offered,
  // so saving the form does not drop it
  const known = new Set(types.map((t) => t.name));
  const offered = [
    ...types.filter((t) => !t.archived || chosen.has(t.name)),
    ...[...chosen].filter((name) => !known.has(name)).map((name) => ({ name })),
  ];
  const boxes = offered.map((t) => h("input", {
    type: "checkbox", name: "eventTypes", value: t.name, id: `et-${t.name}`,
    checked: chosen.has(t.name),
  }));
  const checks = offered.map((t, i) => h("div", { class: "check" }, boxes[i],
    h("label", { for: boxes[i].id }, h("code", {}, t.name),
      t.description ? h("span", { class: "muted small block" }, t.description) : null)));
  const errors = h("div", { class: "form-errors", role: "alert", tabindex: "-1" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" },
    ep ? "Save changes" : "Create endpoint");
  const save = async () => {
    const picked = boxes.filter((b) => b.checked).map((b) => b.value);
    const names = channels.value.split(",").map((s) => s.trim()).filter(Boolean);
    const body = {
      url: url.value.trim(),
      description: description.value,
      eventTypes: picked.length ? picked : null,
      channels: names.length ? names : null,
      rateLimit: rate.value ? Number(rate.value) : null,
    };
    try {
      const saved = ep
        ? await api("PATCH", appPath(`/endpoint/${enc(ep.id)}`), { body })
        : await api("POST", appPath("/endpoint"), { body });
      location.hash = `#/endpoint/${enc(saved.id)}`;
      notify(ep ? "Endpoint saved." : "Endpoint created.");
    } catch (err) {
      if (err.status === 401) return;
      replace(errors, h("p", {}, errorText(err)));
      errors.focus();
    }
  };
  const form = h("form", {
    class: "card form",
    onsubmit: (event) => {
      event.preventDefault();
      errors.replaceChildren();
      busy(submit, save);
    },
  },
  errors,
  field("Endpoint URL", url, "Where webhooks are sent (http or https)."),
  field("Description", description),
  h("fieldset", { class: "field" }, h("legend", {}, "Events"),
    h("p", { class: "hint" }, boxes.length
      ? "Leave all unchecked to receive every event."
      : "No event types are defined: the endpoint receives every event."),
    h("div", { class: "checks" }, checks)),
  field("Channels", channels, "Optional, comma-separated: only messages on these channels."),
  field("Rate limit", rate, "Optional: at most this many webhooks per second."),
  h("div", { class: "actions" }, submit, h("a", { class: "btn btn-secondary",
    href: ep ? `#/endpoint/${enc(ep.id)}` : "#/endpoints" }, "Cancel")));
  return [
    h("p", { class: "crumbs" }, h("a", { href: "#/endpoints" }, "← Endpoints")),
    pageTitle(ep ? "Edit endpoint" : "Add endpoint"),
    form,
  ];
}
