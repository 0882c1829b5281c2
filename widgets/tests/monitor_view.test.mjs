import { test } from "node:test";
import assert from "node:assert/strict";
import { metricSeries, monitorStatus } from "../lib/monitor_view.js";

const packed = (values) => ({ dtype: "float64", shape: [values.length], data: new DataView(new Float64Array(values).buffer) });

test("metricSeries unpacks each metric in arrival order", () => {
  const m = metricSeries({ loss: { step: packed([0, 10]), value: packed([2, 1]), count: 2 }, ret: { step: packed([5]), value: packed([-1]), count: 1 } });
  assert.deepEqual(m.map((s) => s.name), ["loss", "ret"]);
  assert.ok(m[0].xs instanceof Float64Array);
  assert.deepEqual(Array.from(m[0].ys), [2, 1]);
  assert.deepEqual(Array.from(m[1].xs), [5]);
  assert.deepEqual(metricSeries(undefined), []);
});

test("monitorStatus counts metrics and names the latest step any of them reached", () => {
  assert.equal(monitorStatus([]), "waiting for log_scalar(...)");
  const m = metricSeries({ a: { step: packed([0, 299]), value: packed([1, 2]) }, b: { step: packed([310]), value: packed([0]) } });
  assert.equal(monitorStatus(m), "2 metrics · step 310");
  assert.equal(monitorStatus([{ name: "a", xs: new Float64Array([7]) }]), "1 metric · step 7");
  assert.equal(monitorStatus([{ name: "a", xs: new Float64Array(0) }]), "1 metric · step ");  // no point yet
});
