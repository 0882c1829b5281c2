import { test } from "node:test";
import assert from "node:assert/strict";
import { createOfflineModel, restoreBuffers } from "../lib/offline.js";
import { escapeHtml } from "../lib/escape.js";

test("offline model: get/set/on/off and change events", () => {
  const sent = [];
  const model = createOfflineModel({ a: 1 }, (msg) => sent.push(msg));
  assert.equal(model.get("a"), 1);
  assert.equal(model.get("_rlb_offline"), true);
  const seen = [];
  const fn = (v) => seen.push(v);
  model.on("change:a", fn);
  model.set("a", 2);
  model.set("a", 2); // no change, no event
  model.off("change:a", fn);
  model.set("a", 3);
  assert.deepEqual(seen, [2]);
  model.save_changes();
  model.send({ type: "sample" });
  assert.deepEqual(sent, [{ type: "sample" }]);
});

test("restoreBuffers puts buffers back at nested paths", () => {
  const state = { series: { loss: { step: { dtype: "float64" } } }, list: [{}, {}] };
  restoreBuffers(state, [["series", "loss", "step", "data"], ["list", 1, "data"]], ["A", "B"]);
  assert.equal(state.series.loss.step.data, "A");
  assert.equal(state.list[1].data, "B");
});

test("escapeHtml neutralises markup", () => {
  assert.equal(escapeHtml('<img src=x onerror="alert(1)">&\''), "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&#39;");
  assert.equal(escapeHtml(null), "");
});
