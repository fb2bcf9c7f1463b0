// Charts drawn as SVG: a line chart for series over time, a bar chart for categories.

const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A round upper bound for an axis: 1, 2, 5 × 10^n. */
export function niceMax(max) {
  if (!(max > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(max)));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

const shortNum = (n) => n >= 1e6 ? `${+(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${+(n / 1e3).toFixed(1)}k` : `${+n.toFixed(2)}`;

function timeLabel(ms, spanMs) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, "0");
  if (spanMs > 3 * 86400e3) return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  if (spanMs > 86400e3) return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:00`;
  return `${p(d.getHours())}:${p(d.getMinutes())}${spanMs < 600e3 ? ":" + p(d.getSeconds()) : ""}`;
}

/**
 * Lines over time. `series`: [{name, color, points: [[xMs, y], ...]}]; the x range is
 * [opts.from, opts.to] when given, else the data's.
 */
export function lineChart(series, opts = {}) {
  const W = opts.width || 900, H = opts.height || 240, L = 48, R = 12, T = 10, B = 26;
  const xs = series.flatMap((one) => one.points.map((p) => p[0]));
  const from = opts.from ?? Math.min(...xs), to = opts.to ?? Math.max(...xs);
  const span = Math.max(1, to - from);
  const max = niceMax(Math.max(0, ...series.flatMap((one) => one.points.map((p) => p[1]))));
  const x = (v) => L + ((v - from) / span) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  const svg = s("svg", {class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": opts.label || "chart", "data-testid": opts.testid, "data-max": max});
  const grid = s("g", {class: "grid"});
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    grid.append(s("line", {x1: L, x2: W - R, y1: y(v), y2: y(v)}));
    svg.append(s("text", {x: L - 6, y: y(v) + 4, "text-anchor": "end"}, shortNum(v)));
  }
  svg.prepend(grid);
  const ticks = 6;
  for (let i = 0; i <= ticks; i++) {
    const v = from + (span * i) / ticks;
    svg.append(s("text", {x: x(v), y: H - 8, "text-anchor": i === 0 ? "start" : i === ticks ? "end" : "middle"},
      opts.xLabel ? opts.xLabel(v) : timeLabel(v, span)));
  }
  for (const one of series) {
    if (!one.points.length) continue;
    const pts = one.points.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(" ");
    svg.append(s("polyline", {points: pts, fill: "none", stroke: one.color, "stroke-width": 2,
      "stroke-linejoin": "round", "data-series": one.name,
      "data-last": one.points[one.points.length - 1][1],
      "data-peak": Math.max(...one.points.map((p) => p[1]))}));
    if (one.points.length === 1) {
      const [a, b] = one.points[0];
      svg.append(s("circle", {cx: x(a), cy: y(b), r: 3, fill: one.color}));
    }
  }
  return svg;
}

/** Vertical bars: `labels[i]` under a bar of height `values[i]`. */
export function barChart(labels, values, opts = {}) {
  const W = opts.width || 900, H = opts.height || 240, L = 48, R = 12, T = 10, B = 40;
  const max = niceMax(Math.max(0, ...values));
  const n = Math.max(1, values.length);
  const slot = (W - L - R) / n;
  const bar = Math.max(2, Math.min(60, slot * 0.7));
  const y = (v) => T + (1 - v / max) * (H - T - B);
  const svg = s("svg", {class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": opts.label || "chart", "data-testid": opts.testid, "data-bars": values.length});
  const grid = s("g", {class: "grid"});
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    grid.append(s("line", {x1: L, x2: W - R, y1: y(v), y2: y(v)}));
    svg.append(s("text", {x: L - 6, y: y(v) + 4, "text-anchor": "end"}, shortNum(v)));
  }
  svg.append(grid);
  const every = Math.ceil(n / Math.max(1, Math.floor((W - L - R) / 70)));
  values.forEach((v, i) => {
    const cx = L + slot * i + slot / 2;
    const rect = s("rect", {x: cx - bar / 2, y: y(v), width: bar, height: Math.max(0, y(0) - y(v)),
      rx: 2, fill: opts.color || "#2a6fdb"});
    rect.append(s("title", {}, `${labels[i]}: ${v}`));
    svg.append(rect);
    if (i % every === 0) {
      const text = String(labels[i]);
      svg.append(s("text", {x: cx, y: H - 24, "text-anchor": "middle"}, text.length > 14 ? text.slice(0, 13) + "…" : text));
    }
  });
  return svg;
}
