import { test } from "node:test";
import assert from "node:assert/strict";
import { decimate, extent, linePath, linearScale, nearestIndex, niceTicks } from "../lib/plot.js";

test("extent skips non-finite values", () => {
  assert.deepEqual(extent([3, NaN, -1, Infinity, 2]), [-1, 3]);
  assert.equal(extent([NaN]), null);
  assert.equal(extent([]), null);
});

test("niceTicks are round and cover the range", () => {
  assert.deepEqual(niceTicks(0, 1, 4), [0, 0.5, 1]);
  const ticks = niceTicks(0, 10, 5);
  assert.deepEqual(ticks, [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(-0.3, 0.3, 3), [-0.2, 0, 0.2]);
  assert.deepEqual(niceTicks(5, 5), [5]);
  assert.deepEqual(niceTicks(NaN, 1), []);
});

test("linearScale maps ends and handles a flat domain", () => {
  const s = linearScale(0, 10, 100, 200);
  assert.equal(s(0), 100);
  assert.equal(s(10), 200);
  assert.equal(s(5), 150);
  assert.equal(linearScale(3, 3, 0, 10)(3), 5);
});

test("decimate keeps spikes and bounds the point count", () => {
  const n = 10000;
  const xs = Array.from({ length: n }, (_, i) => i);
  const ys = xs.map((i) => (i === 4321 ? 100 : Math.sin(i / 100)));
  const out = decimate(xs, ys, 500);
  assert.ok(out.xs.length <= 500, `got ${out.xs.length} points`);
  assert.ok(out.ys.includes(100), "the spike survived");
  for (let i = 1; i < out.xs.length; i += 1) assert.ok(out.xs[i] >= out.xs[i - 1], "x stays sorted");
  const small = decimate([0, 1, 2], [5, 6, 7], 10);
  assert.deepEqual(small, { xs: [0, 1, 2], ys: [5, 6, 7] });
});

test("linePath breaks at NaN", () => {
  const id = (v) => v;
  assert.equal(linePath([0, 1, 2, 3], [0, 1, NaN, 3], id, id), "M0.0,0.0L1.0,1.0M3.0,3.0");
});

test("nearestIndex finds the closest sorted x", () => {
  const xs = [0, 10, 20, 30];
  assert.equal(nearestIndex(xs, 12), 1);
  assert.equal(nearestIndex(xs, 16), 2);
  assert.equal(nearestIndex(xs, -5), 0);
  assert.equal(nearestIndex(xs, 99), 3);
  assert.equal(nearestIndex([], 1), -1);
});
