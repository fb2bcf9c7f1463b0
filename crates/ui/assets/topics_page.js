// Topics: partitions, offsets, consumer groups and lag; the message browser with live tail
// and seek by offset.

import {h, fill, api, every, fmtNum, fmtBytes, fmtTime, pretty, errorBox, table} from "./util.js";

const PAGE = 50;
const MAX_ROWS = 500;

export function render(view, {parts, params}) {
  return parts.length > 1 ? browser(view, parts[1], params) : list(view);
}

function list(view) {
  const box = h("div", {});
  fill(view, h("h1", {}, "Topics"), box);
  return every(2000, async () => {
    const topics = await api("/api/ui/topics");
    fill(box, h("div", {class: "panel"}, table([
      {label: "Topic", value: (t) => h("a", {href: `#/topics/${encodeURIComponent(t.name)}`}, t.name)},
      {label: "Partitions", num: true, value: (t) => t.partitions.length},
      {label: "Records", num: true, value: (t) => fmtNum(t.records)},
      {label: "Size", num: true, value: (t) => fmtBytes(t.size_bytes)},
      {label: "Consumer groups (lag)", value: (t) => t.groups.length
        ? t.groups.map((g) => h("div", {}, g.group, " ", h("span", {class: g.lag ? "badge warn" : "badge"}, `lag ${fmtNum(g.lag)}`)))
        : h("span", {class: "muted"}, "none")},
    ], topics, {testid: "topics"})));
  });
}

function browser(view, topic, params) {
  const state = {
    partition: params.has("partition") ? Number(params.get("partition")) : null,
    offset: params.has("offset") ? Number(params.get("offset")) : null,
    live: !params.has("offset"),
    messages: [],
    next: null,
    open: new Set(),
  };
  const info = h("div", {});
  const list = h("div", {class: "scroll"});
  const status = h("span", {class: "muted small"});
  const partitionSelect = h("select", {"aria-label": "partition", "data-testid": "partition"});
  const offsetInput = h("input", {type: "number", min: 0, placeholder: "offset", style: "width:120px",
    "aria-label": "offset", "data-testid": "offset"});
  const liveBox = h("input", {type: "checkbox", "data-testid": "live"});
  liveBox.checked = state.live;
  if (state.offset !== null) offsetInput.value = state.offset;

  const load = async (reset) => {
    let url = `/api/ui/topics/${encodeURIComponent(topic)}/messages?limit=${PAGE}`;
    if (state.partition !== null) url += `&partition=${state.partition}`;
    const tailing = state.live && !reset;
    if (state.partition !== null && state.next !== null && !reset) url += `&offset=${state.next}`;
    else if (state.partition !== null && state.offset !== null) url += `&offset=${state.offset}`;
    const page = await api(url);
    if (state.partition === null) {
      state.messages = page.messages; // newest first, re-read each time
    } else if (reset || !tailing) {
      state.messages = page.messages;
    } else {
      state.messages = state.messages.concat(page.messages).slice(-MAX_ROWS);
    }
    if (page.next_offset !== null && page.next_offset !== undefined) state.next = page.next_offset;
    status.textContent = state.partition === null
      ? `newest ${page.messages.length} records across partitions`
      : `partition ${state.partition}: offsets ${fmtNum(page.start)}–${fmtNum(page.end)}; showing ${state.messages.length}`;
    draw();
  };

  const draw = () => fill(list, state.messages.length
    ? messageTable(state.messages, state.open, draw)
    : h("p", {class: "muted"}, "No records here yet."));

  const go = () => {
    state.partition = partitionSelect.value === "" ? null : Number(partitionSelect.value);
    state.offset = offsetInput.value === "" ? null : Number(offsetInput.value);
    if (state.offset !== null && state.partition === null) {
      state.partition = 0;
      partitionSelect.value = "0";
    }
    state.live = liveBox.checked = state.offset === null ? liveBox.checked : false;
    state.next = null;
    state.open.clear();
    load(true).catch((e) => fill(list, errorBox(e)));
  };

  fill(view,
    h("h1", {}, h("a", {href: "#/topics"}, "Topics"), " / ", topic),
    info,
    h("div", {class: "panel"},
      h("h2", {}, "Messages"),
      h("div", {class: "toolbar"},
        h("label", {}, "Partition ", partitionSelect),
        h("label", {}, "from offset ", offsetInput),
        h("button", {class: "primary", onclick: go, "data-testid": "seek"}, "Show"),
        h("button", {onclick: () => { offsetInput.value = ""; liveBox.checked = true; go(); }}, "Newest"),
        h("label", {}, liveBox, " live tail"),
        state.partition !== null ? h("button", {onclick: () => {
          state.offset = state.next; offsetInput.value = state.next ?? ""; state.live = liveBox.checked = false;
          load(true).catch((e) => fill(list, errorBox(e)));
        }}, "Next page") : null,
        status),
      list));
  liveBox.addEventListener("change", () => { state.live = liveBox.checked; });

  let partitionsKnown = -1;
  const stopInfo = every(3000, async () => {
    const topics = await api("/api/ui/topics");
    const t = topics.find((x) => x.name === topic);
    if (!t) { fill(info, errorBox(`no topic ${topic}`)); return; }
    if (partitionsKnown !== t.partitions.length) {
      partitionsKnown = t.partitions.length;
      fill(partitionSelect, h("option", {value: ""}, "all (newest)"),
        t.partitions.map((p) => h("option", {value: p.partition}, String(p.partition))));
      partitionSelect.value = state.partition === null ? "" : String(state.partition);
    }
    fill(info, h("div", {class: "panel"}, h("h2", {}, "Partitions"), table([
      {label: "Partition", value: (p) => h("a", {href: "#", onclick: (e) => {
        e.preventDefault(); partitionSelect.value = p.partition; offsetInput.value = ""; go();
      }}, p.partition)},
      {label: "Start offset", num: true, value: (p) => fmtNum(p.start)},
      {label: "End offset", num: true, value: (p) => fmtNum(p.end)},
      {label: "Records", num: true, value: (p) => fmtNum(p.end - p.start)},
      {label: "Size", num: true, value: (p) => fmtBytes(p.size_bytes)},
      ...t.groups.map((g) => ({label: `${g.group}: committed / lag`, num: true, value: (p) => {
        const gp = g.partitions.find((x) => x.partition === p.partition);
        return gp ? `${gp.committed === null ? "–" : fmtNum(gp.committed)} / ${fmtNum(gp.lag)}` : "–";
      }})),
    ], t.partitions, {testid: "partitions"})));
  });
  load(true).catch((e) => fill(list, errorBox(e)));
  const stopTail = every(1000, async () => { if (state.live) await load(false); });
  return () => { stopInfo(); stopTail(); };
}

function preview(m) {
  const v = m.value;
  if (v.json !== undefined) return JSON.stringify(v.json);
  return v.text || "";
}

function messageTable(messages, open, redraw) {
  const rows = [];
  for (const m of messages) {
    const id = `${m.partition}:${m.offset}`;
    rows.push(h("tr", {class: "clickable" + (open.has(id) ? " selected" : ""), "data-offset": m.offset,
      "data-partition": m.partition, onclick: () => { open.has(id) ? open.delete(id) : open.add(id); redraw(); }},
      h("td", {class: "num"}, m.partition),
      h("td", {class: "num"}, fmtNum(m.offset)),
      h("td", {}, fmtTime(m.timestamp_ms)),
      h("td", {class: "mono"}, m.key ?? h("span", {class: "muted"}, "null")),
      h("td", {}, formatBadge(m.value)),
      h("td", {class: "preview"}, preview(m))));
    if (open.has(id)) rows.push(h("tr", {class: "detail"}, h("td", {colspan: 6}, messageDetail(m))));
  }
  return h("table", {class: "message-list", "data-testid": "messages"},
    h("thead", {}, h("tr", {}, ["Partition", "Offset", "Timestamp", "Key", "Format", "Value"].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows));
}

function formatBadge(v) {
  if (v.format === "avro") return h("span", {class: "badge avro", title: "decoded with the registry's schema"}, `avro · schema ${v.schema_id}`);
  if (v.error) return h("span", {class: "badge warn", title: v.error}, `${v.format} · undecodable`);
  return h("span", {class: `badge ${v.format}`}, v.format);
}

function messageDetail(m) {
  const v = m.value;
  return h("div", {"data-testid": "message-detail"},
    h("div", {class: "small muted"}, `${fmtNum(m.size_bytes)} bytes`, v.schema_id ? ` · writer schema id ${v.schema_id}` : ""),
    v.error ? errorBox(v.error) : null,
    h("h2", {style: "margin-top:8px"}, "Headers"),
    m.headers.length ? h("table", {class: "headers", "data-testid": "headers"}, m.headers.map((hd) =>
      h("tr", {}, h("th", {class: "mono"}, hd.key), h("td", {class: "mono"}, hd.value))))
      : h("div", {class: "muted"}, "none"),
    h("h2", {style: "margin-top:8px"}, v.format === "avro" ? "Value (Avro decoded to JSON)" : "Value"),
    h("pre", {"data-testid": "decoded"}, v.json !== undefined ? pretty(v.json) : v.text));
}
