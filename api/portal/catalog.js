// The event catalog: event types with their descriptions, JSON Schemas and examples.

import { catalog, exampleSchema, state } from "./api.js";
import { emptyState, h, pageTitle, pretty } from "./dom.js";

export async function viewCatalog() {
  state.catalog = null; // always fresh on this page
  const types = (await catalog()).filter((t) => !t.archived);
  const head = [
    pageTitle("Event catalog"),
    h("p", { class: "muted lead" }, "The events an endpoint can subscribe to, and their payloads."),
  ];
  if (!types.length) return [head, emptyState("No event types", "No event is defined yet.")];
  return [head, types.map(eventTypeCard)];
}

function eventTypeCard(t) {
  const { version, schema, examples } = exampleSchema(t);
  const block = (summary, value) => h("details", { class: "example" }, h("summary", {}, summary),
    h("pre", { class: "json" }, pretty(value)));
  return h("article", { class: "card event-type", "data-event-type": t.name },
    h("h2", {}, h("code", {}, t.name),
      t.deprecated ? h("span", { class: "badge badge-off" }, "Deprecated") : null,
      t.groupName ? h("span", { class: "badge" }, t.groupName) : null),
    h("p", {}, t.description || h("span", { class: "muted" }, "No description.")),
    examples.map((example, i) =>
      block(examples.length > 1 ? `Example ${i + 1}` : "Example", example)),
    schema
      ? block(`JSON Schema (version ${version})`, schema)
      : h("p", { class: "muted small" }, "No schema."));
}
