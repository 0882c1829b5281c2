// TrainingMonitor view: one small line chart per logged metric, redrawn when `series` changes.
// Synced fields (widgets/README.md): title, series {name: {step, value: packed float64, count}}.
// The points and the status line come from lib/monitor_view.js (pure, node-tested).
import { h } from "./lib/escape.js";
import { lineChart } from "./lib/svgplot.js";
import { metricSeries, monitorStatus } from "./lib/monitor_view.js";

/** Update each metric's chart, adding a chart (in arrival order) for a metric seen the first time. */
function drawCharts(grid, charts, metrics) {
  for (const { name, xs, ys } of metrics) {
    if (!charts.has(name)) {
      const cell = h("div", { class: "rlb-tm-cell", "data-metric": name });
      grid.append(cell);
      charts.set(name, lineChart(cell, { title: name, width: 300, height: 130 }));
    }
    charts.get(name).update({ series: [{ name, xs, ys }] });
  }
}

function render({ model, el }) {
  const title = h("span", { class: "rlb-title" });
  const status = h("span", { class: "rlb-subtitle" });
  const grid = h("div", { class: "rlb-tm-grid" });
  el.replaceChildren(h("div", { class: "rlb-root rlb-training-monitor" }, h("div", { class: "rlb-header" }, title, status), grid));
  const charts = new Map();
  const draw = () => {
    title.textContent = model.get("title") || "Training";
    const metrics = metricSeries(model.get("series"));
    drawCharts(grid, charts, metrics);
    status.textContent = monitorStatus(metrics);
  };

  draw();
  model.on("change:series", draw);
  model.on("change:title", draw);
  return () => {
    model.off("change:series", draw);
    model.off("change:title", draw);
  };
}

export default { render };
