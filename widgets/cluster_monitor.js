// ClusterMonitor view: a table of the actors (frames/s, batches, policy lag, restarts), a frames/s chart
// with one line per actor, a policy-lag chart and one chart per other logged metric.
// Synced fields (widgets/README.md): title, actors [{actor, node, fps, batches, policy_lag_mean,
// policy_lag_max, restarts}], series {name: {step, value: packed float64, count}} (as the training monitor).
// What is shown comes from lib/cluster_view.js (pure, node-tested).
import { h } from "./lib/escape.js";
import { lineChart } from "./lib/svgplot.js";
import { actorColumns, actorRows, clusterCharts, clusterStatus } from "./lib/cluster_view.js";

function buildDom(el) {
  const title = h("span", { class: "rlb-title" });
  const status = h("span", { class: "rlb-subtitle rlb-cm-status" });
  const head = h("tr");
  const body = h("tbody");
  const table = h("table", { class: "rlb-table rlb-cm-actors" }, h("thead", null, head), body);
  const fpsCell = h("div", { class: "rlb-cm-cell", "data-chart": "fps" });
  const lagCell = h("div", { class: "rlb-cm-cell", "data-chart": "lag" });
  const grid = h("div", { class: "rlb-cm-grid" }, fpsCell, lagCell);
  el.replaceChildren(h("div", { class: "rlb-root rlb-cluster-monitor" },
    h("div", { class: "rlb-header" }, title, status), table, grid));
  return {
    title, status, head, body, grid,
    fps: lineChart(fpsCell, { title: "frames/s per actor", width: 300, height: 130 }),
    lag: lineChart(lagCell, { title: "policy lag (updates)", width: 300, height: 130 }),
    others: new Map(),
  };
}

function drawTable(head, body, actors) {
  head.replaceChildren(...actorColumns(actors).map(([name]) => h("th", null, name)));
  body.replaceChildren(...actorRows(actors).map((row) =>
    h("tr", { class: row.cls || null, "data-actor": row.index }, row.cells.map((c) => h("td", null, c)))));
}

function drawCharts(dom, series) {
  const charts = clusterCharts(series);
  dom.fps.update({ series: charts.fps });
  dom.lag.update({ series: charts.lag });
  for (const m of charts.others) {
    if (!dom.others.has(m.name)) {
      const cell = h("div", { class: "rlb-cm-cell", "data-metric": m.name });
      dom.grid.append(cell);
      dom.others.set(m.name, lineChart(cell, { title: m.name, width: 300, height: 130 }));
    }
    dom.others.get(m.name).update({ series: [m] });
  }
}

function render({ model, el }) {
  const dom = buildDom(el);
  const draw = () => {
    dom.title.textContent = model.get("title") || "Cluster";
    dom.status.textContent = clusterStatus(model.get("actors"));
    drawTable(dom.head, dom.body, model.get("actors"));
    drawCharts(dom, model.get("series"));
  };
  draw();
  for (const field of ["actors", "series", "title"]) model.on(`change:${field}`, draw);
  return () => {
    for (const field of ["actors", "series", "title"]) model.off(`change:${field}`, draw);
  };
}

export default { render };
