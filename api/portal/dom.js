// DOM helpers and small widgets. Values always enter the page as text nodes or attributes.

import { errorText } from "./api.js";

const STATUS_TEXT = { 0: "success", 1: "pending", 2: "fail", 3: "sending", 4: "canceled" };
const STATUS_LABEL = { 0: "Succeeded", 1: "Pending", 2: "Failed", 3: "Sending", 4: "Canceled" };

/** An element: props are attributes (`on*` listeners, `class`, `value`, `checked`);
 * children are nodes or strings (made text nodes); null/false children are skipped. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "value") el.value = value;
    else if (name === "checked") el.checked = Boolean(value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  return append(el, children);
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function fmtDate(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** JSON (or text holding JSON) indented; any other text as it is. */
export function pretty(value) {
  if (typeof value !== "string") return JSON.stringify(value, null, 2);
  try {
    return JSON.stringify(JSON.parse(value), null, 2);
  } catch {
    return value;
  }
}

export function statusBadge(status) {
  const text = STATUS_TEXT[status] || "unknown";
  return h("span", { class: `badge badge-${text}` }, STATUS_LABEL[status] || text);
}

export function enabledBadge(endpoint) {
  const [kind, label] = endpoint.disabled ? ["off", "Disabled"] : ["success", "Enabled"];
  return h("span", { class: `badge badge-${kind}` }, label);
}

export function section(title, ...children) {
  const id = `s-${title.toLowerCase().replace(/[^a-z]+/g, "-")}`;
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), children);
}

let fieldCount = 0;

/** A labelled form field (with an optional hint the input is described by). */
export function field(label, input, hint) {
  if (!input.id) input.id = `f-${(fieldCount += 1)}`;
  const hintEl = hint ? h("p", { class: "hint", id: `${input.id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input, hintEl);
}

export function fact(term, value) {
  return h("div", {}, h("dt", {}, term), h("dd", {}, value));
}

export function button(label, onclick, kind = "secondary") {
  return h("button", { type: "button", class: `btn btn-${kind}`, onclick }, label);
}

/** Run an action with its button disabled; a failure becomes the page's notice. */
export async function busy(btn, action) {
  btn.disabled = true;
  try {
    await action();
  } catch (err) {
    if (err.status !== 401) notify(errorText(err), "error");
  } finally {
    btn.disabled = false;
  }
}

/** A button that asks inline ("Delete this endpoint? [Delete] [Cancel]") before acting. */
export function confirmButton(label, question, action, kind = "danger") {
  const box = h("span", { class: "confirm" });
  const start = button(label, () => {
    const yes = button(label, () => busy(yes, action), kind);
    const no = button("Cancel", () => {
      replace(box, start);
      start.focus();
    });
    replace(box, h("span", { class: "confirm-q" }, question), yes, no);
    yes.focus();
  }, kind);
  return replace(box, start);
}

/** A form whose submit runs `action` (its submit button disabled meanwhile). */
export function actionForm(props, action, ...children) {
  const form = h("form", {
    ...props,
    onsubmit: (event) => {
      event.preventDefault();
      busy(event.submitter || form.querySelector("[type=submit]"), action);
    },
  }, children);
  return form;
}

export function notify(text, kind = "ok") {
  const role = kind === "error" ? "alert" : null;
  const message = h("p", { class: `notice notice-${kind}`, role }, text);
  replace(document.getElementById("notice"), message);
  if (kind === "ok") setTimeout(() => message.remove(), 6000);
}

export function loading() {
  return h("p", { class: "muted loading" }, "Loading…");
}

export function emptyState(title, text) {
  return h("div", { class: "empty" }, h("p", { class: "empty-title" }, title),
    h("p", { class: "muted" }, text));
}

export function pageTitle(text, ...extra) {
  return h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, text), extra);
}

/** Older/Newer buttons over a Svix list page; `pages` is the stack of iterators used. */
export function pager(data, pages, reload) {
  const newer = pages.length > 1
    ? button("← Newer", () => { pages.pop(); reload(); })
    : null;
  const older = !data.done && data.iterator
    ? button("Older →", () => { pages.push(data.iterator); reload(); })
    : null;
  return newer || older ? h("div", { class: "pager" }, newer, older) : null;
}
