// Herald's consumer app portal: one application's webhook endpoints, managed with an app token.
// Start-up (token, session), the expired and no-key screens, and the #/ hash routes. No
// framework and no build step; every value reaches the DOM as text (dom.js).

import { api, errorText, forgetToken, hooks, state, takeToken } from "./api.js";
import { viewCatalog } from "./catalog.js";
import { h, loading, replace } from "./dom.js";
import { viewEndpoint, viewEndpoints } from "./endpoints.js";
import { viewEndpointForm } from "./forms.js";

const ROUTES = [
  [/^#\/endpoints$/, () => viewEndpoints()],
  [/^#\/endpoints\/new$/, () => viewEndpointForm(null)],
  [/^#\/endpoint\/([^/]+)$/, (id) => viewEndpoint(decodeURIComponent(id))],
  [/^#\/endpoint\/([^/]+)\/edit$/, (id) => viewEndpointForm(decodeURIComponent(id))],
  [/^#\/catalog$/, () => viewCatalog()],
];

const byId = (id) => document.getElementById(id);

function showScreen(title, text) {
  byId("nav").hidden = true;
  byId("notice").replaceChildren();
  const main = byId("main");
  main.setAttribute("aria-busy", "false");
  replace(main, h("div", { class: "screen" },
    h("h1", { tabindex: "-1" }, title), h("p", {}, text)));
  main.querySelector("h1").focus();
}

function showExpired() {
  if (state.expired) return;
  state.expired = true;
  state.view += 1; // renders still in flight are dropped
  forgetToken();
  showScreen("This link has expired", "For your security, access links work for a limited "
    + "time. Go back to the application that sent you here and open its webhooks page again.");
}

async function boot() {
  state.token = takeToken();
  state.expired = false;
  state.catalog = null;
  if (!state.token) {
    showScreen("No access key", "Open this page with the link you were given: it carries the key.");
    return;
  }
  try {
    state.session = await api("GET", "auth/portal-session");
  } catch (err) {
    if (err.status !== 401) showScreen("The portal could not load", errorText(err));
    return;
  }
  const name = state.session.appName || state.session.appId;
  byId("app-name").textContent = name;
  document.title = `Webhooks · ${name}`;
  byId("nav").hidden = false;
  const left = Date.parse(state.session.expiresAt) - Date.now();
  if (left > 0 && left < 2 ** 31) setTimeout(showExpired, left);
  await route(false);
}

/** Draw the view the fragment names (`focus`: move focus to its heading, for navigation). */
async function route(focus = true) {
  if (location.hash.startsWith("#key=")) return boot(); // a new link opened in this tab
  if (state.expired || !state.session) return;
  if (!location.hash.startsWith("#/")) {
    if (location.hash) return; // an anchor of no route
    history.replaceState(null, "", "#/endpoints");
  }
  const found = ROUTES.map(([re, view]) => [location.hash.match(re), view]).find(([m]) => m);
  for (const link of byId("nav").querySelectorAll("a")) {
    const here = location.hash.startsWith(link.getAttribute("href").replace(/s$/, ""));
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  byId("notice").replaceChildren();
  const view = (state.view += 1);
  const main = byId("main");
  main.setAttribute("aria-busy", "true");
  replace(main, loading());
  let nodes;
  try {
    nodes = found
      ? await found[1](...found[0].slice(1))
      : [h("h1", { tabindex: "-1" }, "Not found")];
  } catch (err) {
    if (err.status === 401) return;
    const title = err.status === 404 ? "Not found" : "Something went wrong";
    nodes = [h("h1", { tabindex: "-1" }, title),
      h("p", { class: "error-text", role: "alert" }, errorText(err))];
  }
  if (view !== state.view) return; // another navigation won
  main.setAttribute("aria-busy", "false");
  replace(main, nodes);
  if (focus) (main.querySelector("h1") || main).focus();
}

// the skip link moves focus without touching the fragment (which holds the route)
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  byId("main").focus();
});
hooks.expired = showExpired;
hooks.refresh = () => route(false);
window.addEventListener("hashchange", () => route(true));
boot();
