// The page shell: a hash router that shows one page at a time and stops its polling when
// another is opened.

import {h, route, fill, errorBox, api} from "./util.js";
import * as overview from "./overview_page.js";
import * as topics from "./topics_page.js";
import * as invalid from "./invalid_page.js";
import * as schemas from "./schemas_page.js";
import * as lake from "./lake_page.js";
import * as sql from "./sql_page.js";
import * as login from "./login_page.js";

const PAGES = {overview, topics, invalid, schemas, lake, sql, login};
let stop = () => {};

function show() {
  stop();
  const current = route();
  const name = PAGES[current.parts[0]] ? current.parts[0] : "overview";
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.page === name);
  }
  const view = document.getElementById("view");
  document.title = `clickstream · ${name}`;
  try {
    stop = PAGES[name].render(view, current) || (() => {});
  } catch (e) {
    fill(view, errorBox(e));
    stop = () => {};
  }
}

// Credits the data's licences ask for wherever results are shown (DB-IP's geolocation).
async function credits() {
  try {
    const data = await api("/api/ui/overview");
    const attributions = (data.enrichment && data.enrichment.attributions) || [];
    fill(document.getElementById("credits"),
      attributions.map((a) => h("a", {href: a.url, target: "_blank", rel: "noopener"}, a.text)));
  } catch (_) { /* the overview shows connection problems */ }
}

// With an admin token set, a logged-out browser starts at the login page, and a logged-in
// one gets a way to log out.
async function session() {
  let auth;
  try {
    auth = await (await fetch("/api/auth")).json();
  } catch (_) { return; }
  const out = document.getElementById("logout");
  out.hidden = !(auth.required && auth.authenticated);
  if (auth.required && !auth.authenticated && !location.hash.startsWith("#/login")) {
    location.hash = `#/login?next=${encodeURIComponent(location.hash || "#/overview")}`;
  }
}

document.getElementById("logout").addEventListener("click", async () => {
  await fetch("/api/logout", {method: "POST"}).catch(() => {});
  location.hash = "#/login";
  session();
});
document.addEventListener("clickstream:login", () => { session(); credits(); });
window.addEventListener("hashchange", show);
session().then(() => { show(); credits(); });
