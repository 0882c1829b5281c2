import { test } from "node:test";
import assert from "node:assert/strict";
import { flattenTree, toggleCollapsed, specHeader, checkButtonDisabled, sampleSummary, checkSummary } from "../lib/spec_view.js";

const leaf = (key) => ({ key, kind: "Unbounded", shape: [1], device: "cpu", dtype: "float32" });
const groups = [
  { name: "observation_spec", node: { kind: "Composite", shape: [], device: "cpu", children: [leaf("a"), { key: "nested", kind: "Composite", children: [leaf("x"), leaf("y")] }] } },
  { name: "action_spec", node: leaf("ignored") },
];

test("flattenTree lists groups and children depth first; collapsed ids hide their children", () => {
  const open = flattenTree(groups, new Set());
  assert.deepEqual(open.map((r) => [r.node.key, r.depth, r.isGroup, r.open]), [
    ["observation_spec", 0, true, true], ["a", 1, false, false], ["nested", 1, true, true],
    ["x", 2, false, false], ["y", 2, false, false], ["action_spec", 0, false, false],
  ]);
  assert.equal(open[2].id, "observation_spec\u0000nested");
  const shut = flattenTree(groups, new Set(["observation_spec\u0000nested"]));
  assert.deepEqual(shut.map((r) => r.node.key), ["observation_spec", "a", "nested", "action_spec"]);
  assert.equal(shut[2].open, false);
  assert.deepEqual(flattenTree(groups, new Set(["observation_spec"])).map((r) => r.node.key), ["observation_spec", "action_spec"]);
});

test("toggleCollapsed returns a new set with the id flipped", () => {
  const a = new Set(["x"]);
  const b = toggleCollapsed(a, "y");
  assert.deepEqual([...b].sort(), ["x", "y"]);
  assert.deepEqual([...a], ["x"]);
  assert.deepEqual([...toggleCollapsed(b, "x")], ["y"]);
});

test("specHeader: title, batch size and the Check button's state", () => {
  assert.deepEqual(specHeader({ title: "", batchSize: [4], canCheck: true, offline: false }),
    { title: "Specs", subtitle: "batch_size (4,)", checkDisabled: false, note: null });
  assert.deepEqual(specHeader({ title: "T", batchSize: [], canCheck: false, offline: false }),
    { title: "T", subtitle: "", checkDisabled: true, note: "Check specs needs an env (this is a single spec)." });
  // a saved copy keeps its disabled buttons and its own note
  assert.deepEqual(specHeader({ title: "T", batchSize: null, canCheck: false, offline: true }),
    { title: "T", subtitle: "", checkDisabled: null, note: null });
});

test("checkButtonDisabled: only while a check runs, and only for a live env", () => {
  assert.equal(checkButtonDisabled({ status: "running" }, true, false), true);
  assert.equal(checkButtonDisabled({ status: "ok" }, true, false), false);
  assert.equal(checkButtonDisabled(undefined, true, false), false);
  assert.equal(checkButtonDisabled({ status: "running" }, false, false), null);
  assert.equal(checkButtonDisabled({ status: "running" }, true, true), null);
});

test("sampleSummary: rows with group[key] names, an error, or nothing yet", () => {
  assert.equal(sampleSummary(undefined), null);
  assert.equal(sampleSummary({ status: "none" }), null);
  assert.deepEqual(sampleSummary({ status: "error", message: "boom" }), { error: "Sampling failed: boom" });
  const s = sampleSummary({ status: "ok", rows: [
    { group: "observation_spec", key: "<b>", shape: [2], dtype: "float32", value: "[0.1, 0.2]" },
    { group: "action_spec", key: "", shape: [], dtype: "int64", value: "1" },
  ] });
  assert.deepEqual(s.rows, [
    { key: "observation_spec[<b>]", shape: "(2,)", dtype: "float32", value: "[0.1, 0.2]" },
    { key: "action_spec", shape: "()", dtype: "int64", value: "1" },
  ]);
});

test("checkSummary: a badge per status, the mismatch count, notes for ok and errors", () => {
  assert.equal(checkSummary(undefined), null);
  assert.equal(checkSummary({ status: "idle" }), null);
  assert.deepEqual(checkSummary({ status: "running" }),
    { status: "running", badge: { text: "running…", cls: "rlb-badge" }, note: null, mismatches: null });
  assert.deepEqual(checkSummary({ status: "ok", steps: 3 }), {
    status: "ok", badge: { text: "passed", cls: "rlb-badge rlb-ok" },
    note: { text: "Reset and 3 random steps match every spec.", cls: "rlb-note" }, mismatches: null,
  });
  const one = [{ key: "k", problem: "missing" }];
  assert.deepEqual(checkSummary({ status: "mismatch", mismatches: one }).badge, { text: "1 mismatch", cls: "rlb-badge rlb-bad" });
  assert.equal(checkSummary({ status: "mismatch", mismatches: one }).mismatches, one);
  assert.equal(checkSummary({ status: "mismatch", mismatches: [...one, ...one] }).badge.text, "2 mismatches");
  assert.deepEqual(checkSummary({ status: "error", message: "env crashed" }), {
    status: "error", badge: { text: "error", cls: "rlb-badge rlb-bad" },
    note: { text: "env crashed", cls: "rlb-note rlb-warn" }, mismatches: null,
  });
  assert.deepEqual(checkSummary({ status: "unavailable" }).note, { text: "", cls: "rlb-note rlb-warn" });
});
