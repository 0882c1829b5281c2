import { test } from "node:test";
import assert from "node:assert/strict";
import { dataRange, niceTicks, linearScale, decimate, drawPlot, drawCursor, plotArea } from "../lib/plot_canvas.js";

function recorder() {
  const calls = [];
  return new Proxy({ calls }, {
    get(target, prop) {
      if (prop in target) return target[prop];
      if (prop === "measureText") return (s) => ({ width: 6 * s.length });
      return (...args) => calls.push([prop, ...args]);
    },
    set(target, prop, value) { calls.push([`=${String(prop)}`, value]); return true; },
  });
}

test("dataRange ignores non-finite values and widens flat data", () => {
  assert.deepEqual(dataRange([[1, NaN, 3], [Infinity, -2]]), [-2, 3]);
  assert.deepEqual(dataRange([[5, 5]]), [4.5, 5.5]);
  assert.deepEqual(dataRange([[0]]), [-1, 1]);
  assert.deepEqual(dataRange([[NaN]]), [0, 1]);
});

test("niceTicks are round and cover the range", () => {
  assert.deepEqual(niceTicks(0, 10, 5), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(-0.3, 0.3, 3), [-0.2, 0, 0.2]);
  assert.deepEqual(niceTicks(0.5, 0.5), [0.5]);
});

test("linearScale maps and inverts", () => {
  const s = linearScale(0, 10, 100, 200);
  assert.equal(s(5), 150);
  assert.equal(s.invert(175), 7.5);
});

test("decimate keeps each column's min and max", () => {
  const values = Float64Array.from({ length: 1000 }, (_, i) => (i === 503 ? 99 : i % 7));
  const cols = decimate(values, 10);
  assert.equal(cols.length, 10);
  assert.equal(cols[5].hi, 99);
  assert.equal(cols[5].t, 500);
  assert.equal(cols[0].lo, 0);
  assert.equal(cols[9].t1, 999);
  assert.equal(decimate([1, 2], 10).length, 2);
});

test("drawPlot draws every point of a short series, boundaries between steps, and a cursor", () => {
  const ctx = recorder();
  const scales = drawPlot(ctx, { width: 300, height: 100, steps: 5, series: [{ values: [0, 1, 2, NaN, 4], label: "r" }], boundaries: [1, 4], title: "reward" });
  const lineTos = ctx.calls.filter((c) => c[0] === "lineTo");
  const area = plotArea(300, 100);
  // 3 grid lines at most + 1 boundary (t=4 is the last step, no boundary after it) + 2 line points after the NaN gap
  const moveTos = ctx.calls.filter((c) => c[0] === "moveTo");
  assert.ok(moveTos.some((c) => Math.abs(c[1] - scales.x(1.5)) <= 1), "a boundary between steps 1 and 2");
  assert.ok(!moveTos.some((c) => Math.abs(c[1] - scales.x(4.5)) <= 1), "no boundary after the last step");
  assert.ok(lineTos.some((c) => Math.abs(c[1] - scales.x(2)) < 1e-9 && Math.abs(c[2] - scales.y(2)) < 1e-9));
  assert.ok(ctx.calls.some((c) => c[0] === "fillText" && c[1] === "reward"));
  assert.equal(scales.x(0), area.left);
  const px = drawCursor(ctx, scales, 2);
  assert.equal(px, Math.round(scales.x(2)) + 0.5);
});

test("drawPlot decimates a long series to about one segment per pixel column", () => {
  const ctx = recorder();
  const values = Float64Array.from({ length: 20000 }, (_, i) => Math.sin(i / 50));
  drawPlot(ctx, { width: 400, height: 100, steps: values.length, series: [{ values, label: "x" }] });
  const lineTos = ctx.calls.filter((c) => c[0] === "lineTo").length;
  assert.ok(lineTos < 2 * 400 + 10, `expected at most ~2 per column, got ${lineTos}`);
});

test("stepped series hold each value; breakAfter lifts the pen after an episode end", () => {
  const ctx = recorder();
  const scales = drawPlot(ctx, { width: 300, height: 100, steps: 4, series: [{ values: [0, 1, 1, 0], label: "a", stepped: true }] });
  const pts = ctx.calls.filter((c) => c[0] === "lineTo" || c[0] === "moveTo").slice(-7);
  // moveTo(0,0), then for t=1: (x1, y0) -> (x1, y1), t=2: (x2, y1) -> (x2, y1), t=3: (x3, y1) -> (x3, y0)
  assert.deepEqual(pts.map((c) => [c[0], c[1], c[2]]), [
    ["moveTo", scales.x(0), scales.y(0)],
    ["lineTo", scales.x(1), scales.y(0)], ["lineTo", scales.x(1), scales.y(1)],
    ["lineTo", scales.x(2), scales.y(1)], ["lineTo", scales.x(2), scales.y(1)],
    ["lineTo", scales.x(3), scales.y(1)], ["lineTo", scales.x(3), scales.y(0)],
  ]);
  const ctx2 = recorder();
  const s2 = drawPlot(ctx2, { width: 300, height: 100, steps: 4, series: [{ values: [1, 2, 1, 2], label: "ret", breakAfter: [1] }] });
  const moves = ctx2.calls.filter((c) => c[0] === "moveTo" && c[2] !== undefined && Math.abs(c[2] - s2.y(1)) < 1e-9);
  assert.ok(moves.some((c) => Math.abs(c[1] - s2.x(2)) < 1e-9), "a new stroke starts at step 2, after the episode end at 1");
});
