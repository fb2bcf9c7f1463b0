// Small helpers shared by the pages: building elements, calling the API, formatting.

/** Creates an element: h("td", {class: "num"}, "12"). Children may be strings, nodes or arrays. */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `node`. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** GET (or POST with a JSON body) on the API; throws an Error with the server's message. */
export async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body),
  };
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    connection(false);
    throw new Error("the server does not answer: is clickstream still running?");
  }
  connection(true);
  if (response.status === 401) {
    // Admin routes need the token: ask for it, then come back here.
    if (!location.hash.startsWith("#/login")) {
      location.hash = `#/login?next=${encodeURIComponent(location.hash || "#/overview")}`;
    }
    throw new Error("log in with the admin token to see this");
  }
  const text = await response.text();
  let json;
  try { json = JSON.parse(text); } catch { json = null; }
  if (!response.ok) {
    throw new Error((json && json.message) || `${response.status} ${response.statusText}`);
  }
  return json;
}

function connection(up) {
  const node = document.getElementById("conn");
  if (!node) return;
  node.textContent = up ? "live" : "disconnected";
  node.classList.toggle("down", !up);
}

/** Runs `task` now and every `ms` until the returned stop function is called. */
export function every(ms, task) {
  let stopped = false;
  let timer = null;
  const run = async () => {
    if (stopped) return;
    try { await task(); } catch (e) { console.warn(e); }
    if (!stopped) timer = setTimeout(run, ms);
  };
  run();
  return () => { stopped = true; clearTimeout(timer); };
}

export const fmtNum = (n) => n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US");

export function fmtRate(n) {
  if (n === null || n === undefined) return "–";
  return n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(n >= 10 ? 1 : 2).replace(/\.?0+$/, "") || "0";
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

const pad = (n) => String(n).padStart(2, "0");

/** Local date and time, to the second. */
export function fmtTime(ms) {
  if (ms === null || ms === undefined) return "–";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtAgo(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return "never";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function fmtSeconds(s) {
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  return `${Math.round(s / 60)} min`;
}

/** A JSON value indented, key order kept. */
export const pretty = (value) => JSON.stringify(value, null, 2);

/** The hash route's path segments and query parameters. */
export function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = hash.split("?");
  return {
    parts: path.split("/").filter(Boolean).map(decodeURIComponent),
    params: new URLSearchParams(query),
  };
}

/** An error box. */
export const errorBox = (error) => h("div", {class: "error", role: "alert"}, String(error.message || error));

/** A table from column specs [{label, value: row => text|node, num: bool}] and rows. */
export function table(columns, rows, {onRow, rowClass, testid} = {}) {
  return h("table", {"data-testid": testid},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {class: c.num ? "num" : null}, c.label)))),
    h("tbody", {}, rows.map((row) => h("tr", {
      class: [onRow ? "clickable" : "", rowClass ? rowClass(row) : ""].join(" ").trim() || null,
      onclick: onRow ? () => onRow(row) : null,
    }, columns.map((c) => h("td", {class: c.num ? "num" : null}, c.value(row)))))));
}
