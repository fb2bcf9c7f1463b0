// Lake: tables with sizes, partitions, files, recent commits with their log offsets, the
// last compaction, and each table's columns with the commits that added them.

import {h, fill, api, every, fmtNum, fmtBytes, fmtTime, fmtAgo, errorBox, table} from "./util.js";

export function render(view, {parts}) {
  const tables = h("div", {});
  const detail = h("div", {});
  const root = h("p", {class: "small muted"});
  const current = parts[1] || "events";
  fill(view, h("h1", {}, "Lake"), root, tables, detail);
  const stopTables = every(2000, async () => {
    const lake = await api("/api/ui/lake");
    root.textContent = `Delta tables under ${lake.root}clickstream-data/`;
    fill(tables, h("div", {class: "panel"}, table([
      {label: "Table", value: (t) => h("a", {href: `#/lake/${t.name}`}, t.name)},
      {label: "Version", num: true, value: (t) => fmtNum(t.version)},
      {label: "Rows", num: true, value: (t) => fmtNum(t.rows)},
      {label: "Files", num: true, value: (t) => fmtNum(t.files)},
      {label: "Size", num: true, value: (t) => fmtBytes(t.bytes)},
      {label: "Avg file", num: true, value: (t) => t.files ? fmtBytes(Math.round(t.bytes / t.files)) : "–"},
      {label: "Partitions", num: true, value: (t) => fmtNum(t.partitions)},
      {label: "Last write", value: (t) => fmtAgo(t.last_write_ms)},
      {label: "Last compaction", value: (t) => t.last_compaction
        ? `v${t.last_compaction.version}, ${fmtAgo(t.last_compaction.timestamp_ms)} (${t.last_compaction.files_removed} → ${t.last_compaction.files_added} files)`
        : h("span", {class: "muted", title: "no OPTIMIZE among the commits seen since start (at most 100 back)"}, "none seen")},
    ], lake.tables, {testid: "lake-tables", rowClass: (t) => (t.name === current ? "selected" : "")})));
  });
  const stopDetail = every(5000, async () => {
    try {
      fill(detail, tableDetail(await api(`/api/ui/lake/${encodeURIComponent(current)}`)));
    } catch (e) { fill(detail, errorBox(e)); }
  });
  return () => { stopTables(); stopDetail(); };
}

function tableDetail(t) {
  return h("div", {},
    h("div", {class: "panel"},
      h("h2", {}, `${t.name} — version ${t.version}`),
      h("p", {class: "small muted"}, `${t.url} · ${fmtNum(t.rows)} rows in ${fmtNum(t.file_count)} files (${fmtBytes(t.bytes)})`,
        t.partition_columns.length ? ` · partitioned by ${t.partition_columns.join(", ")}` : " · not partitioned"),
      h("h2", {style: "margin-top:12px"}, "Recent commits"),
      table([
        {label: "Version", num: true, value: (c) => c.version},
        {label: "When", value: (c) => fmtTime(c.timestamp_ms)},
        {label: "Operation", value: (c) => h("span", {class: "badge"}, c.operation || "?")},
        {label: "Files +/−", num: true, value: (c) => `+${c.files_added} / −${c.files_removed}`},
        {label: "Bytes added", num: true, value: (c) => fmtBytes(c.bytes_added)},
        {label: "Log offsets recorded (next to read)", value: (c) => c.offsets.length
          ? h("div", {class: "small mono"}, c.offsets.map((o) => h("div", {}, `${shortTopic(o.topic)}/${o.partition} → ${fmtNum(o.next_offset)}`)))
          : h("span", {class: "muted small"}, "none")},
      ], t.commits, {testid: "commits"})),
    h("div", {class: "two", style: "grid-template-columns: 1fr 1fr"},
      h("div", {class: "panel"}, h("h2", {}, `Columns (${t.columns.length})`),
        h("div", {class: "scroll"}, table([
          {label: "Column", value: (c) => h("span", {class: "mono small"}, c.name)},
          {label: "Type", value: (c) => h("span", {class: "mono small"}, c.type)},
          {label: "Avro path", value: (c) => c.avro_path ? h("span", {class: "mono small"}, c.avro_path) : ""},
          {label: "Schema id", num: true, value: (c) => c.schema_id ?? ""},
        ], t.columns, {testid: "columns", rowClass: (c) => (c.avro_path ? "user-column" : "")}))),
      h("div", {class: "panel"}, h("h2", {}, "Schema history"), schemaHistory(t))),
    h("div", {class: "two"},
      h("div", {class: "panel"}, h("h2", {}, `Files (newest ${t.files.length} of ${fmtNum(t.file_count)})`),
        h("div", {class: "scroll"}, table([
          {label: "Path", value: (f) => h("span", {class: "mono small", style: "word-break:break-all"}, f.path)},
          {label: "Rows", num: true, value: (f) => fmtNum(f.rows)},
          {label: "Size", num: true, value: (f) => fmtBytes(f.size_bytes)},
          {label: "Written", value: (f) => h("span", {class: "small"}, fmtTime(f.modified_ms))},
        ], t.files, {testid: "files"}))),
      h("div", {class: "panel"}, h("h2", {}, `Partitions (${fmtNum(t.partition_count)})`),
        h("div", {class: "scroll"}, table([
          {label: "Partition", value: (p) => h("span", {class: "mono small"}, p.partition || "(whole table)")},
          {label: "Files", num: true, value: (p) => fmtNum(p.files)},
          {label: "Rows", num: true, value: (p) => fmtNum(p.rows)},
          {label: "Size", num: true, value: (p) => fmtBytes(p.bytes)},
        ], t.partitions, {testid: "partitions"})))));
}

/** The commits that changed the columns, newest first, each column with its type and path. */
function schemaHistory(t) {
  const history = t.schema_history;
  const byName = Object.fromEntries(t.columns.map((c) => [c.name, c]));
  // The type the commit gave the column; the Avro path and schema id it has now.
  const describe = ({name, type}) => {
    const c = byName[name] || {};
    return [name, type, c.avro_path, c.schema_id != null ? `schema ${c.schema_id}` : null].filter(Boolean).join(" · ");
  };
  const list = (columns) => {
    const items = columns.map((c) => h("div", {"data-column": c.name}, describe(c)));
    return columns.length > 8
      ? h("details", {}, h("summary", {}, `${columns.length} columns`), h("div", {class: "mono small"}, items))
      : h("div", {class: "mono small"}, items);
  };
  const rows = [...history.changes].reverse();
  if (history.columns_before.length) {
    const before = history.columns_before.map((name) => ({name, type: byName[name]?.type}));
    rows.push({version: null, columns_added: before, columns_widened: [], columns_removed: []});
  }
  const behind = history.read_to < t.version;
  return h("div", {},
    behind ? h("p", {class: "small muted"}, `Reading the log: up to version ${fmtNum(history.read_to)} of ${fmtNum(t.version)} so far.`) : null,
    h("div", {class: "scroll"}, table([
      {label: "Version", num: true, value: (c) => (c.version === null ? "" : c.version)},
      {label: "When", value: (c) => (c.version === null
        ? h("span", {class: "small muted"}, `before version ${history.read_from}`)
        : h("span", {class: "small"}, fmtTime(c.timestamp_ms)))},
      {label: "Operation", value: (c) => (c.operation ? h("span", {class: "badge"}, c.operation) : "")},
      {label: "Columns added", value: (c) => [list(c.columns_added),
        c.columns_widened.map((w) => h("div", {class: "mono small", "data-widened": w.name}, `grown: ${describe(w)}`)),
        c.columns_removed.length ? h("div", {class: "small error"}, `removed: ${c.columns_removed.join(", ")}`) : null]},
    ], rows, {testid: "schema-history"})));
}

const shortTopic = (topic) => (topic || "?").replace(/^acme\.clickstream\./, "");
