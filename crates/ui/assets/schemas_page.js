// Schemas: subjects, versions, compatibility levels, a diff between two versions, and for
// the raw subject the `events` columns each version adds.

import {h, fill, api, errorBox, table} from "./util.js";

export function render(view, {parts, params}) {
  const subjects = h("ul", {class: "subjects", "data-testid": "subjects"});
  const main = h("div", {});
  fill(view, h("h1", {}, "Schemas"),
    h("div", {class: "two", style: "grid-template-columns: 1fr 3fr"},
      h("div", {class: "panel"}, h("h2", {}, "Subjects"), subjects, h("div", {class: "small muted", id: "global-compat"})),
      main));
  let alive = true;
  (async () => {
    try {
      const data = await api("/api/ui/schemas");
      if (!alive) return;
      const current = parts[1] || (data.subjects[0] && data.subjects[0].subject);
      fill(subjects, data.subjects.map((s) => h("li", {class: s.subject === current ? "selected" : null,
        onclick: () => { location.hash = `#/schemas/${encodeURIComponent(s.subject)}`; }},
        h("div", {class: "mono", style: "word-break:break-all"}, s.subject),
        h("div", {class: "small muted"}, `${s.versions.length} version${s.versions.length === 1 ? "" : "s"} · id ${s.latest_id} · `,
          h("span", {class: "badge"}, s.compatibility)))));
      document.getElementById("global-compat").textContent = `global compatibility: ${data.global_compatibility}`;
      const subject = data.subjects.find((s) => s.subject === current);
      if (subject) await showSubject(main, subject, params);
      else fill(main, h("div", {class: "panel"}, h("p", {class: "muted"}, "No subjects registered.")));
    } catch (e) {
      fill(main, errorBox(e));
    }
  })();
  return () => { alive = false; };
}

async function showSubject(main, subject, params) {
  const versions = subject.versions;
  const last = versions[versions.length - 1];
  const from = h("select", {"aria-label": "from version"}, versions.map((v) => h("option", {value: v}, `v${v}`)));
  const to = h("select", {"aria-label": "to version"}, versions.map((v) => h("option", {value: v}, `v${v}`)));
  from.value = params.get("from") || versions[Math.max(0, versions.length - 2)];
  to.value = params.get("to") || last;
  const schemaBox = h("div", {});
  const diffBox = h("div", {});
  const showDiff = async () => {
    try {
      const diff = await api(`/api/ui/schemas/${encodeURIComponent(subject.subject)}/diff?from=${from.value}&to=${to.value}`);
      const changed = diff.lines.filter((l) => l.op !== "same").length;
      fill(diffBox,
        h("p", {class: "small muted"}, `v${diff.from.version} (id ${diff.from.id}) → v${diff.to.version} (id ${diff.to.id}): `,
          changed ? `${changed} changed lines` : "identical"),
        h("div", {class: "diff", "data-testid": "diff"}, diff.lines.map((l) => h("div", {class: l.op}, l.text))));
    } catch (e) { fill(diffBox, errorBox(e)); }
  };
  from.addEventListener("change", showDiff);
  to.addEventListener("change", showDiff);
  const latest = await api(`/api/ui/schemas/${encodeURIComponent(subject.subject)}/versions/${last}`);
  fill(schemaBox, h("pre", {"data-testid": "schema"}, latest.schema));
  const columns = subject.feeds_table
    ? await api(`/api/ui/schemas/${encodeURIComponent(subject.subject)}/columns`).then(columnsPanel, errorBox)
    : null;
  fill(main,
    h("div", {class: "panel"},
      h("h2", {}, subject.subject),
      h("p", {class: "small"}, `latest version ${subject.latest_version}, schema id ${subject.latest_id}, compatibility `,
        h("span", {class: "badge"}, subject.compatibility)),
      schemaBox),
    columns,
    h("div", {class: "panel"},
      h("h2", {}, "Compare versions"),
      versions.length < 2
        ? h("p", {class: "small muted"}, "Only one version so far: a diff appears here once the schema evolves.")
        : [h("div", {class: "toolbar"}, "from ", from, " to ", to), diffBox]));
  if (versions.length >= 2) await showDiff();
}

/** Per version, newest first, the columns of the lake table it adds: `name · path · type`. */
function columnsPanel(view) {
  const rows = [...view.versions].reverse();
  return h("div", {class: "panel"},
    h("h2", {}, `Columns each version adds to ${view.table}`),
    h("p", {class: "small muted"}, "A field no earlier version has becomes a column of its own; later versions keep it. " +
      "Fields added inside a record grow its column. ",
      h("a", {href: `#/lake/${view.table}`}, `The ${view.table} table's schema and history`), "."),
    table([
      {label: "Version", value: (v) => h("span", {class: "mono"}, `v${v.version} · id ${v.id}`)},
      {label: "Columns added (column · Avro path · type)", value: (v) => v.error
        ? h("span", {class: "error small", "data-testid": "version-error"}, `its records cannot land: ${v.error}`)
        : v.columns_added.length || v.columns_widened.length
          ? h("div", {class: "mono small"},
            v.columns_added.map((c) => h("div", {"data-column": c.column}, `${c.column} · ${c.path} · ${c.type}`)),
            v.columns_widened.map((c) => h("div", {"data-widened": c.column},
              `${c.column} · ${c.path} · ${c.type} `, h("span", {class: "muted"}, `(grown from ${c.was})`))))
          : h("span", {class: "muted small"}, "none")},
    ], rows, {testid: "columns-added"}));
}
