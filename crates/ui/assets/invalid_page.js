// Invalid events: the reasons grouped with counts, the latest rejects, and one reject
// in full with a link to its record in the log.

import {h, fill, api, every, fmtNum, pretty, errorBox, table} from "./util.js";

const INVALID_TOPIC = "acme.clickstream.invalid.events";

export function render(view) {
  const summary = h("div", {});
  const reasons = h("div", {});
  const latest = h("div", {});
  const detail = h("div", {});
  let selected = null;
  let rows = [];
  fill(view, h("h1", {}, "Invalid events"), summary,
    h("div", {class: "two"},
      h("div", {class: "panel"}, h("h2", {}, "Latest rejects"), latest),
      h("div", {},
        h("div", {class: "panel", "data-testid": "invalid-detail"}, detail),
        h("div", {class: "panel"}, h("h2", {}, "By reason"), reasons))));
  const show = () => {
    const row = rows.find((r) => key(r) === selected);
    if (!row) {
      fill(detail, h("h2", {}, "Reject"), h("p", {class: "muted"}, "Click a reject to see it in full."));
      return;
    }
    let original;
    try { original = pretty(JSON.parse(row.raw_json)); } catch { original = row.raw_json; }
    fill(detail,
      h("h2", {}, "Reject"),
      h("div", {class: "error", "data-testid": "reason"}, row.reason),
      h("table", {class: "headers", style: "margin:10px 0"},
        h("tr", {}, h("th", {}, "received"), h("td", {}, String(row.received_at))),
        h("tr", {}, h("th", {}, "event id / type"), h("td", {}, `${row.event_id ?? "–"} / ${row.event_type ?? "–"}`)),
        h("tr", {}, h("th", {}, "correlation id"), h("td", {class: "mono"}, row.correlation_id ?? "–")),
        h("tr", {}, h("th", {}, "in the log"), h("td", {}, h("a", {
          href: `#/topics/${encodeURIComponent(INVALID_TOPIC)}?partition=${row.source_partition}&offset=${row.source_offset}`,
        }, `partition ${row.source_partition}, offset ${row.source_offset}`)))),
      h("div", {class: "small muted"}, "Original JSON, as sent"),
      h("pre", {"data-testid": "raw-json"}, original));
  };
  return every(2000, async () => {
    const data = await api("/api/ui/invalid?limit=100");
    rows = data.latest;
    fill(summary, h("div", {class: "cards"}, h("div", {class: "card invalid"},
      h("div", {class: "label"}, "Rejects in the lake"),
      h("div", {class: "value", "data-testid": "invalid-total"}, fmtNum(data.total)),
      h("div", {class: "sub"}, `${data.by_reason.length} kinds of mistake`))));
    const most = Math.max(1, ...data.by_reason.map((r) => r.count));
    fill(reasons, data.by_reason.length ? table([
      {label: "Reason", value: (r) => h("div", {class: "bar-cell"},
        h("div", {class: "bar", style: `width:${(100 * r.count) / most}%`}), h("span", {}, r.reason))},
      {label: "Count", num: true, value: (r) => fmtNum(r.count)},
      {label: "Last seen", value: (r) => h("span", {class: "small"}, String(r.last_seen).replace("T", " ").slice(0, 19))},
    ], data.by_reason, {testid: "reasons"}) : h("p", {class: "muted"}, "No invalid events. Good."));
    fill(latest, rows.length ? table([
      {label: "Received", value: (r) => h("span", {class: "small"}, String(r.received_at).replace("T", " ").slice(0, 19))},
      {label: "Event", value: (r) => `${r.event_id ?? "–"}`},
      {label: "Type", value: (r) => r.event_type ?? "–"},
      {label: "Reason", value: (r) => r.reason},
    ], rows, {testid: "rejects", onRow: (r) => { selected = key(r); show(); draw(); },
      rowClass: (r) => (key(r) === selected ? "selected" : "")}) : h("p", {class: "muted"}, "Nothing rejected yet."));
    show();
  });
  function draw() {
    for (const tr of latest.querySelectorAll("tbody tr")) tr.classList.remove("selected");
    const index = rows.findIndex((r) => key(r) === selected);
    const tr = latest.querySelectorAll("tbody tr")[index];
    if (tr) tr.classList.add("selected");
  }
}

const key = (r) => `${r.source_partition}:${r.source_offset}`;

