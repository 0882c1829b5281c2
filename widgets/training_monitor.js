// TrainingMonitor view: one small line chart per logged metric, redrawn when `series` changes.
// Synced fields (widgets/README.md): title, series {name: {step, value: packed float64, count}}.
import { h } from "./lib/escape.js";
import { unpackArray } from "./lib/buffers.js";
import { formatNumber } from "./lib/format.js";
import { lineChart } from "./lib/svgplot.js";

function render({ model, el }) {
  const title = h("span", { class: "rlb-title" });
  const status = h("span", { class: "rlb-subtitle" });
  const grid = h("div", { class: "rlb-tm-grid" });
  const root = h("div", { class: "rlb-root rlb-training-monitor" }, h("div", { class: "rlb-header" }, title, status), grid);
  el.replaceChildren(root);
  const charts = new Map();

  function draw() {
    title.textContent = model.get("title") || "Training";
    const series = model.get("series") || {};
    const names = Object.keys(series);
    let lastStep = null;
    for (const name of names) {
      const entry = series[name];
      const xs = unpackArray(entry.step).values;
      const ys = unpackArray(entry.value).values;
      if (!charts.has(name)) {
        const cell = h("div", { class: "rlb-tm-cell", "data-metric": name });
        grid.append(cell);
        charts.set(name, lineChart(cell, { title: name, width: 300, height: 130 }));
      }
      charts.get(name).update({ series: [{ name, xs, ys }] });
      if (xs.length) lastStep = Math.max(lastStep ?? -Infinity, xs[xs.length - 1]);
    }
    status.textContent = names.length
      ? `${names.length} metric${names.length === 1 ? "" : "s"} · step ${formatNumber(lastStep)}`
      : "waiting for log_scalar(...)";
  }

  draw();
  model.on("change:series", draw);
  model.on("change:title", draw);
  return () => {
    model.off("change:series", draw);
    model.off("change:title", draw);
  };
}

export default { render };
