import { test } from "node:test";
import assert from "node:assert/strict";
import { recordingContext } from "./recorder.mjs";
import { drawPlot, drawCursor, plotArea } from "../lib/plot_canvas.js";
import { niceTicks } from "../lib/scales.js";

test("drawPlot draws every point of a short series, boundaries between steps, and a cursor", () => {
  const ctx = recordingContext();
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
  const ctx = recordingContext();
  const values = Float64Array.from({ length: 20000 }, (_, i) => Math.sin(i / 50));
  drawPlot(ctx, { width: 400, height: 100, steps: values.length, series: [{ values, label: "x" }] });
  const lineTos = ctx.calls.filter((c) => c[0] === "lineTo").length;
  assert.ok(lineTos < 2 * 400 + 10, `expected at most ~2 per column, got ${lineTos}`);
});

test("a decimated line still reaches a one-step spike, the last step, and breaks at a NaN run", () => {
  const ctx = recordingContext();
  const values = Float64Array.from({ length: 5000 }, (_, i) => (i === 2345 ? 50 : i === 4999 ? -7 : Math.cos(i / 30)));
  values.fill(NaN, 1000, 1200);  // about 27 columns with no number at all
  const s = drawPlot(ctx, { width: 300, height: 100, steps: values.length, series: [{ values, label: "x" }] });
  const pts = ctx.calls.filter((c) => c[0] === "lineTo" || c[0] === "moveTo");
  const at = (t) => pts.find((c) => Math.abs(c[1] - s.x(t)) < 1e-9 && Math.abs(c[2] - s.y(values[t])) < 1e-9);
  assert.ok(at(2345), "the spike is drawn at its own step and height");
  assert.ok(at(4999), "the last point is drawn");
  assert.ok(at(0), "the first point is drawn");
  // the y range is the data's: the spike at the top, the last value at the bottom
  assert.deepEqual([s.y.invert(s.area.top), s.y.invert(s.area.top + s.area.height)], [50, -7]);
  const restart = pts.find((c) => c[0] === "moveTo" && c[1] > s.x(1000) && c[1] < s.x(1300));
  assert.ok(restart, "the pen lifts over the NaN run and comes down after it");
  assert.ok(!pts.some((c) => c[1] > s.x(1001) && c[1] < s.x(1199)), "nothing is drawn inside the NaN run");
});

test("drawPlot labels the y axis with the shared niceTicks of the padded data range", () => {
  const ctx = recordingContext();
  drawPlot(ctx, { width: 300, height: 100, steps: 3, series: [{ values: [2, 2, 2], label: "flat" }] });
  const labels = ctx.calls.filter((c) => c[0] === "fillText" && c[1] !== "").map((c) => c[1]);
  // flat data at 2 is widened by 10 %: [1.8, 2.2]
  assert.deepEqual(labels, niceTicks(1.8, 2.2, 3).map(String));
  assert.deepEqual(labels, ["1.8", "2", "2.2"]);
});

test("stepped series hold each value; breakAfter lifts the pen after an episode end", () => {
  const ctx = recordingContext();
  const scales = drawPlot(ctx, { width: 300, height: 100, steps: 4, series: [{ values: [0, 1, 1, 0], label: "a", stepped: true }] });
  const pts = ctx.calls.filter((c) => c[0] === "lineTo" || c[0] === "moveTo").slice(-7);
  // moveTo(0,0), then for t=1: (x1, y0) -> (x1, y1), t=2: (x2, y1) -> (x2, y1), t=3: (x3, y1) -> (x3, y0)
  assert.deepEqual(pts.map((c) => [c[0], c[1], c[2]]), [
    ["moveTo", scales.x(0), scales.y(0)],
    ["lineTo", scales.x(1), scales.y(0)], ["lineTo", scales.x(1), scales.y(1)],
    ["lineTo", scales.x(2), scales.y(1)], ["lineTo", scales.x(2), scales.y(1)],
    ["lineTo", scales.x(3), scales.y(1)], ["lineTo", scales.x(3), scales.y(0)],
  ]);
  const ctx2 = recordingContext();
  const s2 = drawPlot(ctx2, { width: 300, height: 100, steps: 4, series: [{ values: [1, 2, 1, 2], label: "ret", breakAfter: [1] }] });
  const moves = ctx2.calls.filter((c) => c[0] === "moveTo" && c[2] !== undefined && Math.abs(c[2] - s2.y(1)) < 1e-9);
  assert.ok(moves.some((c) => Math.abs(c[1] - s2.x(2)) < 1e-9), "a new stroke starts at step 2, after the episode end at 1");
});
