// Login: the admin token, exchanged for a session cookie (HttpOnly, SameSite=Strict) by
// POST /api/login, then back to the page that asked for it.

import {h, fill, errorBox} from "./util.js";

export function render(view, current) {
  const next = current.params.get("next") || "#/overview";
  const token = h("input", {
    type: "password", name: "token", autocomplete: "current-password", required: true,
    "aria-label": "Admin token", "data-testid": "login-token",
  });
  const message = h("div", {"data-testid": "login-message"});
  const submit = async (event) => {
    event.preventDefault();
    fill(message);
    let response;
    try {
      response = await fetch("/api/login", {
        method: "POST", headers: {"content-type": "application/json"},
        body: JSON.stringify({token: token.value}),
      });
    } catch (_) {
      fill(message, errorBox(new Error("the server does not answer: is clickstream still running?")));
      return;
    }
    if (response.ok) {
      location.hash = next.startsWith("#/login") ? "#/overview" : next;
      document.dispatchEvent(new Event("clickstream:login"));
      return;
    }
    const body = await response.json().catch(() => ({}));
    fill(message, errorBox(new Error(body.message || `${response.status} ${response.statusText}`)));
    token.select();
  };
  fill(view, h("section", {class: "login"},
    h("h1", {}, "Log in"),
    h("p", {class: "muted"}, "This clickstream needs its admin token (CLICKSTREAM_ADMIN_TOKEN) to show its data."),
    h("form", {onsubmit: submit, "data-testid": "login-form"},
      h("label", {}, "Admin token ", token),
      h("button", {type: "submit", "data-testid": "login-submit"}, "Log in")),
    message));
  token.focus();
}
