// Overview: live events/s, totals, end-to-end lag and the health of each component.

import {h, fill, api, every, fmtNum, fmtRate, fmtSeconds, fmtTime, fmtAgo} from "./util.js";
import {lineChart} from "./charts.js";

const WINDOW_MS = 5 * 60 * 1000;

export function render(view) {
  const cards = h("div", {class: "cards", "data-testid": "totals"});
  const chart = h("div", {"data-testid": "rate-chart-box"});
  const rates = h("div", {class: "legend"});
  const components = h("ul", {class: "components", "data-testid": "components"});
  const lag = h("div", {});
  const enrichment = h("div", {"data-testid": "enrichment"});
  const hint = h("div", {class: "hint small"});
  fill(view,
    h("h1", {}, "Overview"),
    cards,
    h("div", {class: "two"},
      h("div", {class: "panel"}, h("h2", {}, "Events per second, last 5 minutes"), chart, rates),
      h("div", {},
        h("div", {class: "panel"}, h("h2", {}, "Components"), components),
        h("div", {class: "panel"}, h("h2", {}, "End-to-end lag"), lag),
        h("div", {class: "panel"}, h("h2", {}, "Enrichment"), enrichment))),
    h("div", {class: "panel"}, hint));

  return every(1000, async () => {
    const data = await api("/api/ui/overview");
    const latest = data.latest;
    if (!latest) {
      fill(cards, h("div", {class: "muted"}, "Taking the first sample…"));
      return;
    }
    const t = latest.totals;
    const last = data.rates[data.rates.length - 1] || {valid: 0, invalid: 0, dead_letters: 0, lake_events: 0};
    fill(cards,
      card("valid", "Valid events", t.valid_acknowledged, `${fmtRate(last.valid)}/s now`, "total-valid"),
      card("invalid", "Invalid events", t.invalid_acknowledged, `${fmtRate(last.invalid)}/s now`, "total-invalid"),
      card("dead", "Dead letters", t.dead_letters, `${fmtRate(last.dead_letters)}/s now`, "total-dead"),
      card("lake", "Events in the lake", t.events_in_lake, `${fmtNum(t.invalid_in_lake)} rejects, ${fmtNum(t.duplicates_in_lake)} duplicates kept`, "total-lake"),
      card("", "Lake behind by", latest.lag.records, latest.lag.records ? `records, oldest ${fmtSeconds(latest.lag.seconds)} old` : "records: caught up", "lag-records"),
      card("segment", "Segment calls", t.segment_acknowledged,
        `${fmtNum(t.segment_in_lake)} in the lake, ${fmtNum(t.segment_duplicates_in_lake)} retries kept apart, ${fmtNum(t.segment_invalid_acknowledged)} refused, ${fmtNum(t.identities)} identity links`,
        "total-segment"),
      t.throttled_requests == null ? null
        : card("", "Requests throttled", t.throttled_requests, `429 by a rate limit; ${fmtNum(t.shed_requests)} shed (503) under load`, "total-refused"));

    const to = data.now_ms, from = to - WINDOW_MS;
    const recent = data.rates.filter((r) => r.t_ms >= from);
    const series = [
      {name: "valid", color: "#2a9d8f", points: recent.map((r) => [r.t_ms, r.valid])},
      {name: "invalid", color: "#e76f51", points: recent.map((r) => [r.t_ms, r.invalid])},
      {name: "dead letters", color: "#8d5bd6", points: recent.map((r) => [r.t_ms, r.dead_letters])},
    ];
    fill(chart, lineChart(series, {from, to, testid: "rate-chart", label: "events per second"}));
    fill(rates, series.map((one) => h("span", {style: `--c:${one.color}`}, one.name)),
      h("span", {class: "muted", style: "margin-left:auto"}, `sampled ${fmtAgo(latest.taken_ms, data.now_ms)}`));

    fill(components, latest.components.map((c) => h("li", {"data-component": c.name, "data-status": c.status},
      h("span", {class: `dot ${c.status}`}), h("span", {class: "name"}, c.name), " ",
      h("span", {class: "badge"}, c.status), h("div", {class: "muted small"}, c.detail))));

    fill(enrichment, enrichmentView(data.enrichment));

    const l = latest.lag;
    fill(lag,
      h("div", {}, h("b", {}, fmtNum(l.records)), " acknowledged records not yet queryable"),
      h("div", {class: "small muted"}, "newest acknowledged: ", fmtTime(l.newest_acknowledged_ms)),
      h("div", {class: "small muted"}, "newest in the lake: ", fmtTime(l.newest_in_lake_ms)),
      l.records ? h("div", {class: "small"}, `oldest waiting record: ${fmtSeconds(l.seconds)} old`) : null);

    fill(hint,
      h("b", {}, "Send events"), " — the ingest API is at ", h("code", {}, data.ingest_url),
      ", the schema registry at ", h("code", {}, data.registry_url), ":",
      h("pre", {}, `curl -s -H 'content-type: application/json' ${data.ingest_url}/collect \\\n` +
        `  -d '[{"id": 1, "type": "page_view", "event": {"user_agent": "curl", "ip": "10.0.0.1", ` +
        `"customer_id": 42, "timestamp": "${new Date().toISOString().slice(0, 19)}Z", "page": "/home"}}]'`),
      h("span", {class: "muted"}, "Then watch them on this page, browse them under Topics and query them under SQL."));
  });
}

function card(kind, label, value, sub, testid) {
  return h("div", {class: `card ${kind}`},
    h("div", {class: "label"}, label),
    h("div", {class: "value", "data-testid": testid, "data-value": value}, fmtNum(value)),
    h("div", {class: "sub"}, sub));
}

function enrichmentView(e) {
  if (!e) return h("div", {class: "muted small"}, "No processor runs in this process.");
  return h("div", {},
    h("ul", {class: "enrichers"}, e.enrichers.map((one) => h("li", {"data-enricher": one.name, "data-enabled": String(one.enabled)},
      h("span", {class: `dot ${one.enabled ? "ok" : "off"}`}), h("span", {class: "name"}, one.name), " ",
      h("span", {class: "muted small"}, one.enabled ? one.detail : "off")))),
    e.geo_databases.length
      ? h("div", {class: "small muted"}, "geo data: ", e.geo_databases.map((p) => h("code", {}, p.split("/").pop())).flatMap((c, i) => (i ? [", ", c] : [c])))
      : null,
    e.attributions.map((a) => h("div", {class: "small"}, h("a", {href: a.url, target: "_blank", rel: "noopener"}, a.text))));
}
