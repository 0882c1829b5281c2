import { test } from "node:test";
import assert from "node:assert/strict";
import { linePath } from "../lib/svgplot.js";

test("linePath maps each point and breaks at a non-finite y", () => {
  const id = (v) => v;
  assert.equal(linePath([0, 1, 2, 3], [0, 1, NaN, 3], id, id), "M0.0,0.0L1.0,1.0M3.0,3.0");
  const sx = (x) => 10 + 2 * x, sy = (y) => 100 - y;
  assert.equal(linePath(Float64Array.from([0, 0.25]), Float64Array.from([1, Infinity]), sx, sy), "M10.0,99.0");
  assert.equal(linePath([0, 1, 2], [5, 6], sx, sy), "M10.0,95.0L12.0,94.0", "the shorter array decides");
  assert.equal(linePath([], [], sx, sy), "");
});
