// SpecInspector view: a collapsible spec tree, a sampled value per key and check_env_specs results.
// Synced fields (widgets/README.md): title, batch_size, groups [{name, node}], can_check,
// sample {status, rows|message}, check {status, mismatches|message}. Messages to the kernel:
// {type: "sample"} and {type: "check"}.
import { h, isOffline } from "./lib/escape.js";
import { formatShape } from "./lib/format.js";

function flattenTree(groups, collapsed) {
  // rows in display order; children of a collapsed node are left out
  const rows = [];
  const walk = (node, path, depth) => {
    const id = path.join("\u0000");
    const isGroup = Array.isArray(node.children);
    rows.push({ node, id, depth, isGroup, open: isGroup && !collapsed.has(id) });
    if (isGroup && !collapsed.has(id)) {
      for (const child of node.children) walk(child, [...path, child.key], depth + 1);
    }
  };
  for (const group of groups) walk({ ...group.node, key: group.name }, [group.name], 0);
  return rows;
}

function treeTable(groups, collapsed, onToggle) {
  const body = h("tbody");
  for (const row of flattenTree(groups, collapsed)) {
    const n = row.node;
    const toggle = row.isGroup
      ? h("button", { class: "rlb-si-toggle", "aria-expanded": String(row.open), onclick: () => onToggle(row.id) }, row.open ? "▾" : "▸")
      : h("span", { class: "rlb-si-leaf" }, "•");
    body.append(
      h(
        "tr",
        { class: row.depth === 0 ? "rlb-si-group" : null, "data-key": n.key },
        h("td", { class: "rlb-si-key", style: { paddingLeft: `${6 + row.depth * 16}px` } }, toggle, " ", h("span", { class: "rlb-mono" }, n.key)),
        h("td", {}, n.kind),
        h("td", { class: "rlb-mono" }, formatShape(n.shape)),
        h("td", { class: "rlb-mono" }, n.dtype || ""),
        h("td", { class: "rlb-mono rlb-si-detail" }, n.detail || ""),
        h("td", { class: "rlb-mono" }, n.device),
      ),
    );
  }
  return h(
    "table",
    { class: "rlb-table rlb-si-tree" },
    h("thead", {}, h("tr", {}, ...["key", "kind", "shape", "dtype", "bounds / categories", "device"].map((c) => h("th", {}, c)))),
    body,
  );
}

function sampleView(sample) {
  if (!sample || sample.status === "none") return null;
  if (sample.status === "error") return h("div", { class: "rlb-note rlb-warn" }, `Sampling failed: ${sample.message}`);
  return h(
    "div",
    { class: "rlb-si-section rlb-si-sample" },
    h("div", { class: "rlb-si-section-title" }, "Random sample (spec.rand())"),
    h(
      "table",
      { class: "rlb-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "key"), h("th", {}, "shape"), h("th", {}, "dtype"), h("th", {}, "value"))),
      h(
        "tbody",
        {},
        ...sample.rows.map((r) =>
          h(
            "tr",
            {},
            h("td", { class: "rlb-mono" }, r.key ? `${r.group}[${r.key}]` : r.group),
            h("td", { class: "rlb-mono" }, formatShape(r.shape)),
            h("td", { class: "rlb-mono" }, r.dtype),
            h("td", { class: "rlb-mono rlb-si-value" }, r.value),
          ),
        ),
      ),
    ),
  );
}

function checkView(check) {
  if (!check || check.status === "idle") return null;
  const title = h("div", { class: "rlb-si-section-title" }, "check_env_specs ");
  const section = h("div", { class: "rlb-si-section rlb-si-check", "data-status": check.status }, title);
  if (check.status === "running") {
    title.append(h("span", { class: "rlb-badge" }, "running…"));
  } else if (check.status === "ok") {
    title.append(h("span", { class: "rlb-badge rlb-ok" }, "passed"));
    section.append(h("div", { class: "rlb-note" }, `Reset and ${check.steps} random steps match every spec.`));
  } else if (check.status === "mismatch") {
    const count = check.mismatches.length;
    title.append(h("span", { class: "rlb-badge rlb-bad" }, `${count} mismatch${count === 1 ? "" : "es"}`));
    section.append(
      h(
        "table",
        { class: "rlb-table rlb-si-mismatches" },
        h("thead", {}, h("tr", {}, ...["key", "problem", "expected (spec)", "got (env)", "fix"].map((c) => h("th", {}, c)))),
        h(
          "tbody",
          {},
          ...check.mismatches.map((m) =>
            h(
              "tr",
              {},
              h("td", { class: "rlb-mono" }, m.key),
              h("td", {}, h("span", { class: "rlb-badge rlb-bad" }, m.problem)),
              h("td", { class: "rlb-mono rlb-si-expected" }, m.expected),
              h("td", { class: "rlb-mono rlb-si-got" }, m.got),
              h("td", { class: "rlb-si-hint" }, m.hint),
            ),
          ),
        ),
      ),
    );
  } else {
    title.append(h("span", { class: "rlb-badge rlb-bad" }, check.status));
    section.append(h("div", { class: "rlb-note rlb-warn" }, check.message || ""));
  }
  return section;
}

function render({ model, el }) {
  const offline = isOffline(model);
  const collapsed = new Set();
  const title = h("span", { class: "rlb-title" });
  const subtitle = h("span", { class: "rlb-subtitle" });
  const note = h("span", { class: "rlb-note" });
  const sampleBtn = h("button", { class: "rlb-button", "data-action": "sample" }, "Sample");
  const checkBtn = h("button", { class: "rlb-button", "data-action": "check" }, "Check specs");
  const tree = h("div", { class: "rlb-si-treebox" });
  const results = h("div", { class: "rlb-si-results" });
  const root = h(
    "div",
    { class: "rlb-root rlb-spec-inspector" },
    h("div", { class: "rlb-header" }, title, subtitle),
    h("div", { class: "rlb-toolbar" }, sampleBtn, checkBtn, note),
    tree,
    results,
  );
  el.replaceChildren(root);

  if (offline) {
    sampleBtn.disabled = true;
    checkBtn.disabled = true;
    note.textContent = "Saved copy: Sample and Check specs need a running kernel.";
  } else {
    sampleBtn.addEventListener("click", () => model.send({ type: "sample" }));
    checkBtn.addEventListener("click", () => {
      checkBtn.disabled = true;
      model.send({ type: "check" });
    });
  }

  const drawTree = () => {
    tree.replaceChildren(
      treeTable(model.get("groups") || [], collapsed, (id) => {
        if (collapsed.has(id)) collapsed.delete(id);
        else collapsed.add(id);
        drawTree();
      }),
    );
  };
  const drawHeader = () => {
    title.textContent = model.get("title") || "Specs";
    const batch = model.get("batch_size") || [];
    subtitle.textContent = batch.length ? `batch_size ${formatShape(batch)}` : "";
    if (!offline) checkBtn.disabled = !model.get("can_check");
    if (!offline && !model.get("can_check")) note.textContent = "Check specs needs an env (this is a single spec).";
  };
  const drawResults = () => {
    const check = model.get("check");
    if (!offline && model.get("can_check")) checkBtn.disabled = check && check.status === "running";
    results.replaceChildren(...[checkView(check), sampleView(model.get("sample"))].filter(Boolean));
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
