// A small SVG line chart (no library). Views call lineChart() once and then update()/setCursor()
// as data or the cursor move; it redraws only what changed. Ranges, scales, ticks and decimation come
// from scales.js (shared with the canvas plots); `linePath` is pure (widgets/tests/svgplot.test.mjs).
import { decimate, extent, linearScale, niceTicks, padRange } from "./scales.js";
import { nearestIndex } from "./indices.js";
import { formatNumber } from "./format.js";

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * SVG path data for a polyline through the points, mapped by sx/sy. Non-finite y values break the
 * line (a gap, not a drop to zero).
 */
export function linePath(xs, ys, sx, sy) {
  const parts = [];
  let pen = "M";
  for (let i = 0; i < Math.min(xs.length, ys.length); i += 1) {
    const y = Number(ys[i]);
    if (!Number.isFinite(y)) {
      pen = "M";
      continue;
    }
    parts.push(`${pen}${sx(Number(xs[i])).toFixed(1)},${sy(y).toFixed(1)}`);
    pen = "L";
  }
  return parts.join("");
}

/** The points of a series a chart draws: at most about `maxPoints` of them (decimate), as plain numbers. */
function drawnPoints(xs, ys, maxPoints) {
  const n = Math.min(xs.length, ys.length);
  const keep = decimate(ys.length === n ? ys : ys.slice(0, n), Math.floor(maxPoints / 2));
  return { xs: keep.map((i) => Number(xs[i])), ys: keep.map((i) => Number(ys[i])) };
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

/**
 * Create a line chart inside `container`.
 * options: {width, height, title, maxPoints}
 * update({series: [{name, xs, ys, cls}], markers: [x...]}) redraws; setCursor(x) moves the cursor
 * line and the value readout.
 */
export function lineChart(container, options = {}) {
  const width = options.width || 320;
  const height = options.height || 140;
  const pad = { left: 44, right: 8, top: 18, bottom: 20 };
  const root = svg("svg", { class: "rlb-chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
  const title = svg("text", { class: "rlb-chart-title", x: pad.left, y: 12 });
  title.textContent = options.title || "";
  const readout = svg("text", { class: "rlb-chart-readout", x: width - pad.right, y: 12, "text-anchor": "end" });
  const axes = svg("g", { class: "rlb-chart-axes" });
  const markers = svg("g", { class: "rlb-chart-markers" });
  const lines = svg("g", { class: "rlb-chart-lines" });
  const cursor = svg("line", { class: "rlb-chart-cursor", y1: pad.top, y2: height - pad.bottom, visibility: "hidden" });
  root.append(title, readout, axes, markers, lines, cursor);
  container.append(root);

  let state = { series: [], sx: null, sy: null };

  function update({ series = [], markers: marks = [] } = {}) {
    const pts = series.map((s) => ({ ...s, ...drawnPoints(s.xs, s.ys, options.maxPoints || 800) }));
    const xr = extent(...pts.map((s) => s.xs)) || [0, 1];
    const yr = padRange(extent(...pts.map((s) => s.ys)), 0, 0.5);
    const sx = linearScale(xr[0], xr[1], pad.left, width - pad.right);
    const sy = linearScale(yr[0], yr[1], height - pad.bottom, pad.top);
    axes.replaceChildren();
    for (const t of niceTicks(yr[0], yr[1], 3)) {
      axes.append(svg("line", { class: "rlb-chart-grid", x1: pad.left, x2: width - pad.right, y1: sy(t), y2: sy(t) }));
      const label = svg("text", { class: "rlb-chart-tick", x: pad.left - 4, y: sy(t) + 3, "text-anchor": "end" });
      label.textContent = formatNumber(t, 3);
      axes.append(label);
    }
    for (const t of niceTicks(xr[0], xr[1], 4)) {
      const label = svg("text", { class: "rlb-chart-tick", x: sx(t), y: height - 6, "text-anchor": "middle" });
      label.textContent = formatNumber(t, 3);
      axes.append(label);
    }
    markers.replaceChildren(
      ...marks.map((m) => svg("line", { class: "rlb-chart-marker", x1: sx(m), x2: sx(m), y1: pad.top, y2: height - pad.bottom })),
    );
    lines.replaceChildren(
      ...pts.map((s, i) => svg("path", { class: `rlb-chart-line ${s.cls || `rlb-series-${i % 6}`}`, d: linePath(s.xs, s.ys, sx, sy) })),
    );
    state = { series, sx, sy };
    if (!series.length || !series.some((s) => s.xs.length)) readout.textContent = "no data yet";
    else {
      const last = series[0];
      readout.textContent = `last ${formatNumber(Number(last.ys[last.ys.length - 1]))}`;
    }
  }

  function setCursor(x) {
    if (!state.sx || x === null || x === undefined) {
      cursor.setAttribute("visibility", "hidden");
      return;
    }
    const px = state.sx(x);
    cursor.setAttribute("x1", px);
    cursor.setAttribute("x2", px);
    cursor.setAttribute("visibility", "visible");
    const s = state.series[0];
    if (s && s.xs.length) {
      const i = nearestIndex(s.xs, x);
      readout.textContent = `${formatNumber(Number(s.xs[i]))}: ${formatNumber(Number(s.ys[i]))}`;
    }
  }

  return { element: root, update, setCursor };
}
