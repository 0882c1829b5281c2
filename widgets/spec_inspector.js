// SpecInspector view: a collapsible spec tree, a sampled value per key and check_env_specs results.
// Synced fields (widgets/README.md): title, batch_size, groups [{name, node}], can_check,
// sample {status, rows|message}, check {status, mismatches|message}. Messages to the kernel:
// {type: "sample"} and {type: "check"}.
// What each part shows comes from lib/spec_view.js (pure, node-tested); this file builds the DOM from
// those descriptions and wires the events.
import { h, isOffline } from "./lib/escape.js";
import { formatShape } from "./lib/format.js";
import { checkButtonDisabled, checkSummary, flattenTree, sampleSummary, specHeader, toggleCollapsed } from "./lib/spec_view.js";

const table = (cls, columns, rows) => h("table", { class: cls }, h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", {}, c)))), h("tbody", {}, ...rows));

function treeTable(groups, collapsed, onToggle) {
  const rows = flattenTree(groups, collapsed).map((row) => {
    const n = row.node;
    const toggle = row.isGroup
      ? h("button", { class: "rlb-si-toggle", "aria-expanded": String(row.open), onclick: () => onToggle(row.id) }, row.open ? "▾" : "▸")
      : h("span", { class: "rlb-si-leaf" }, "•");
    return h(
      "tr",
      { class: row.depth === 0 ? "rlb-si-group" : null, "data-key": n.key },
      h("td", { class: "rlb-si-key", style: { paddingLeft: `${6 + row.depth * 16}px` } }, toggle, " ", h("span", { class: "rlb-mono" }, n.key)),
      h("td", {}, n.kind),
      h("td", { class: "rlb-mono" }, formatShape(n.shape)),
      h("td", { class: "rlb-mono" }, n.dtype || ""),
      h("td", { class: "rlb-mono rlb-si-detail" }, n.detail || ""),
      h("td", { class: "rlb-mono" }, n.device),
    );
  });
  return table("rlb-table rlb-si-tree", ["key", "kind", "shape", "dtype", "bounds / categories", "device"], rows);
}

function sampleView(sample) {
  const s = sampleSummary(sample);
  if (!s) return null;
  if (s.error) return h("div", { class: "rlb-note rlb-warn" }, s.error);
  const rows = s.rows.map((r) => h("tr", {}, ...[r.key, r.shape, r.dtype].map((t) => h("td", { class: "rlb-mono" }, t)), h("td", { class: "rlb-mono rlb-si-value" }, r.value)));
  return h(
    "div",
    { class: "rlb-si-section rlb-si-sample" },
    h("div", { class: "rlb-si-section-title" }, "Random sample (spec.rand())"),
    table("rlb-table", ["key", "shape", "dtype", "value"], rows),
  );
}

function checkView(check) {
  const c = checkSummary(check);
  if (!c) return null;
  const title = h("div", { class: "rlb-si-section-title" }, "check_env_specs ", h("span", { class: c.badge.cls }, c.badge.text));
  const section = h("div", { class: "rlb-si-section rlb-si-check", "data-status": c.status }, title);
  if (c.note) section.append(h("div", { class: c.note.cls }, c.note.text));
  if (c.mismatches) {
    const rows = c.mismatches.map((m) => h(
      "tr",
      {},
      h("td", { class: "rlb-mono" }, m.key),
      h("td", {}, h("span", { class: "rlb-badge rlb-bad" }, m.problem)),
      h("td", { class: "rlb-mono rlb-si-expected" }, m.expected),
      h("td", { class: "rlb-mono rlb-si-got" }, m.got),
      h("td", { class: "rlb-si-hint" }, m.hint),
    ));
    section.append(table("rlb-table rlb-si-mismatches", ["key", "problem", "expected (spec)", "got (env)", "fix"], rows));
  }
  return section;
}

function buildDom() {
  const ui = {
    title: h("span", { class: "rlb-title" }),
    subtitle: h("span", { class: "rlb-subtitle" }),
    note: h("span", { class: "rlb-note" }),
    sampleBtn: h("button", { class: "rlb-button", "data-action": "sample" }, "Sample"),
    checkBtn: h("button", { class: "rlb-button", "data-action": "check" }, "Check specs"),
    tree: h("div", { class: "rlb-si-treebox" }),
    results: h("div", { class: "rlb-si-results" }),
  };
  ui.root = h("div", { class: "rlb-root rlb-spec-inspector" },
    h("div", { class: "rlb-header" }, ui.title, ui.subtitle),
    h("div", { class: "rlb-toolbar" }, ui.sampleBtn, ui.checkBtn, ui.note),
    ui.tree,
    ui.results);
  return ui;
}

function render({ model, el }) {
  const offline = isOffline(model);
  const ui = buildDom();
  el.replaceChildren(ui.root);
  let collapsed = new Set();

  if (offline) {
    ui.sampleBtn.disabled = ui.checkBtn.disabled = true;
    ui.note.textContent = "Saved copy: Sample and Check specs need a running kernel.";
  } else {
    ui.sampleBtn.addEventListener("click", () => model.send({ type: "sample" }));
    ui.checkBtn.addEventListener("click", () => { ui.checkBtn.disabled = true; model.send({ type: "check" }); });
  }
  const drawTree = () => ui.tree.replaceChildren(treeTable(model.get("groups") || [], collapsed, (id) => {
    collapsed = toggleCollapsed(collapsed, id);
    drawTree();
  }));
  const drawHeader = () => {
    const head = specHeader({ title: model.get("title"), batchSize: model.get("batch_size"), canCheck: model.get("can_check"), offline });
    ui.title.textContent = head.title;
    ui.subtitle.textContent = head.subtitle;
    if (head.checkDisabled !== null) ui.checkBtn.disabled = head.checkDisabled;
    if (head.note !== null) ui.note.textContent = head.note;
  };
  const drawResults = () => {
    const disabled = checkButtonDisabled(model.get("check"), model.get("can_check"), offline);
    if (disabled !== null) ui.checkBtn.disabled = disabled;
    ui.results.replaceChildren(...[checkView(model.get("check")), sampleView(model.get("sample"))].filter(Boolean));
  };

  drawHeader();
  drawTree();
  drawResults();
  const handlers = [
    ["change:groups", drawTree],
    ["change:title", drawHeader],
    ["change:batch_size", drawHeader],
    ["change:can_check", drawHeader],
    ["change:sample", drawResults],
    ["change:check", drawResults],
  ];
  for (const [name, fn] of handlers) model.on(name, fn);
  return () => {
    for (const [name, fn] of handlers) model.off(name, fn);
  };
}

export default { render };
