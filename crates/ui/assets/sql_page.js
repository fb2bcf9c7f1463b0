// SQL: an editor with saved clickstream questions; results as a table, and as a chart when
// they have a time or category column; unique users per day always shown as a chart.

import {h, fill, api, fmtNum, errorBox} from "./util.js";
import {lineChart, barChart} from "./charts.js";

// Segment's calls: a track call is named by `event`, a page or screen call by `name`.
const SEGMENT_BY_NAME = `SELECT type, coalesce(event, name) AS name, count(*) AS calls
FROM segment_events
GROUP BY 1, 2
ORDER BY calls DESC
LIMIT 50`;

// Properties are JSON text: read with the JSON functions.
const SEGMENT_REVENUE = `SELECT event_date AS day, sum(json_get_float(properties, 'revenue')) AS revenue,
       count(*) AS orders
FROM segment_events
WHERE type = 'track' AND event = 'Order Completed'
GROUP BY 1
ORDER BY 1`;

// Each call is counted for its person: the user id when the call has one, else the user
// its anonymous id was linked to (identify), else the anonymous id itself; so a visitor's
// steps before the login count for the user they turned out to be.
const SEGMENT_FUNNEL = `WITH links AS (
  SELECT anonymous_id, min(user_id) AS user_id
  FROM identities
  WHERE anonymous_id IS NOT NULL
  GROUP BY anonymous_id
), steps AS (
  SELECT coalesce(c.user_id, l.user_id, c.anonymous_id) AS person, c.event
  FROM segment_events c LEFT JOIN links l ON c.anonymous_id = l.anonymous_id
  WHERE c.type = 'track'
    AND c.event IN ('Product Viewed', 'Product Added', 'Checkout Started', 'Order Completed')
)
SELECT event AS step, count(DISTINCT person) AS people
FROM steps
GROUP BY event
ORDER BY people DESC`;

export const SAVED = [
  {name: "Events by type", sql: "SELECT type, count(*) AS events\nFROM events\nGROUP BY type\nORDER BY events DESC"},
  {name: "Events per minute (last hour)", sql: "SELECT date_trunc('minute', ingested_at) AS minute, count(*) AS events\nFROM events\nWHERE ingested_at > now() - INTERVAL '1 hour'\nGROUP BY 1\nORDER BY 1"},
  {name: "Unique users per day", sql: "SELECT day, unique_users\nFROM unique_users_daily\nORDER BY day"},
  {name: "Top pages", sql: "SELECT page, count(*) AS views\nFROM events\nWHERE type = 'page_view' AND page IS NOT NULL\nGROUP BY page\nORDER BY views DESC\nLIMIT 20"},
  {name: "Most viewed products", sql: "SELECT CAST(product AS VARCHAR) AS product, count(*) AS events\nFROM events\nWHERE product IS NOT NULL\nGROUP BY product\nORDER BY events DESC\nLIMIT 20"},
  {name: "Funnel: view → cart → purchase", sql: "SELECT type, count(DISTINCT customer_id) AS customers\nFROM events\nWHERE type IN ('page_view', 'view', 'add_to_cart', 'placed_order', 'purchase')\nGROUP BY type\nORDER BY customers DESC"},
  {name: "Latest events", sql: "SELECT ingested_at, type, customer_id, page, product, source_partition, source_offset\nFROM events\nORDER BY ingested_at DESC\nLIMIT 50"},
  {name: "Why events were rejected", sql: "SELECT reason, count(*) AS rejects\nFROM invalid_events\nGROUP BY reason\nORDER BY rejects DESC\nLIMIT 20"},
  {name: "Segment: calls by name", sql: SEGMENT_BY_NAME},
  {name: "Segment: revenue of Order Completed per day", sql: SEGMENT_REVENUE},
  {name: "Segment: funnel of track events, anonymous visits stitched to users", sql: SEGMENT_FUNNEL},
  {name: "Segment: why calls were rejected", sql: "SELECT reason, count(*) AS rejects\nFROM segment_invalid_events\nGROUP BY reason\nORDER BY rejects DESC\nLIMIT 20"},
];

const SHOWN_ROWS = 1000;
let lastSql = SAVED[0].sql;

export function render(view) {
  const editor = h("textarea", {class: "sql", spellcheck: "false", "aria-label": "SQL", "data-testid": "sql-editor"});
  editor.value = lastSql;
  const result = h("div", {"data-testid": "sql-result"});
  const uniqueUsers = h("div", {"data-testid": "unique-users"});
  // The chart follows the lake: drawn at load and again with every query run.
  const loadUniqueUsers = () => api("/api/sql", {sql: SAVED[2].sql})
    .then((data) => fill(uniqueUsers, chartFor(data, {height: 160}) || h("p", {class: "muted"}, "No events in the lake yet.")))
    .catch((e) => fill(uniqueUsers, errorBox(e)));
  let runs = 0;
  const run = async () => {
    lastSql = editor.value;
    const mine = ++runs; // only the latest run's answer is shown
    fill(result, h("p", {class: "muted"}, "Running…"));
    try {
      const data = await api("/api/sql", {sql: editor.value});
      if (mine === runs) fill(result, ...renderResult(data));
    } catch (e) { if (mine === runs) fill(result, errorBox(e)); }
    loadUniqueUsers();
  };
  editor.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); run(); }
  });
  fill(view,
    h("h1", {}, "SQL"),
    h("div", {class: "panel"},
      h("h2", {}, "Unique users per day"), uniqueUsers),
    h("div", {class: "panel"},
      h("div", {class: "saved"}, h("span", {class: "small muted"}, "Saved questions: "),
        SAVED.map((q) => h("button", {class: "link", onclick: () => { editor.value = q.sql; run(); }}, q.name))),
      editor,
      h("div", {class: "toolbar", style: "margin-top:8px"},
        h("button", {class: "primary", onclick: run, "data-testid": "run-sql"}, "Run"),
        h("span", {class: "small muted"}, "Ctrl+Enter runs · read-only · tables: events, invalid_events, dead_letters, unique_users_daily"))),
    h("div", {class: "panel"}, result));
  run();
  return () => {};
}

function renderResult(data) {
  const columns = data.columns;
  const rows = data.rows.slice(0, SHOWN_ROWS);
  return [
    h("p", {class: "small muted", "data-testid": "sql-meta"},
      `${fmtNum(data.row_count)} row${data.row_count === 1 ? "" : "s"} in ${data.elapsed_ms.toFixed(1)} ms`,
      data.row_count > SHOWN_ROWS ? ` (first ${SHOWN_ROWS} shown)` : ""),
    chartFor(data),
    h("div", {class: "scroll"}, h("table", {"data-testid": "sql-rows"},
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", {title: c.type, class: isNumeric(c) ? "num" : null}, c.name)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", {class: isNumeric(c) ? "num mono" : "mono"}, cell(row[c.name]))))))))
  ];
}

function cell(value) {
  if (value === null || value === undefined) return h("span", {class: "muted"}, "null");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

const isNumeric = (c) => /^(U?Int|Float|Decimal)/.test(c.type);
const isTimeType = (c) => /^(Date|Timestamp)/.test(c.type);
const DATE_LIKE = /^\d{4}-\d{2}-\d{2}/;

/** A chart for results with a time or category column and a numeric one; null otherwise. */
export function chartFor(data, size = {}) {
  const {columns, rows} = data;
  if (!rows.length || rows.length > 500 || columns.length < 2) return null;
  const timeCol = columns.find((c) => isTimeType(c) ||
    (!isNumeric(c) && rows.every((r) => r[c.name] !== null && DATE_LIKE.test(String(r[c.name])))));
  const x = timeCol || columns.find((c) => !isNumeric(c));
  const y = columns.find((c) => isNumeric(c) && c !== x);
  if (!x || !y) return null;
  const values = rows.map((r) => Number(r[y.name] ?? 0));
  const box = h("div", {"data-testid": "sql-chart", "data-kind": ""});
  if (timeCol && rows.length >= 8) {
    const points = rows.map((r, i) => [Date.parse(String(r[x.name]).replace(" ", "T")), values[i]])
      .filter((p) => !Number.isNaN(p[0])).sort((a, b) => a[0] - b[0]);
    box.dataset.kind = "line";
    box.append(lineChart([{name: y.name, color: "#2a6fdb", points}], {label: `${y.name} by ${x.name}`, width: 1200, height: size.height || 220}));
  } else {
    const labels = rows.map((r) => timeCol ? String(r[x.name]).slice(0, 16).replace("T", " ") : String(r[x.name] ?? "null"));
    box.dataset.kind = "bar";
    box.append(barChart(labels, values, {label: `${y.name} by ${x.name}`, width: 1200, height: size.height || 220}));
  }
  box.append(h("div", {class: "small muted"}, `${y.name} by ${x.name}`));
  return box;
}
