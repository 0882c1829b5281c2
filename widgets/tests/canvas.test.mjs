import { test } from "node:test";
import assert from "node:assert/strict";
import { recordingContext } from "./recorder.mjs";
import { fitCanvas, fitWidth, paintShapes, watchWidth } from "../lib/canvas.js";

test("fitCanvas sizes the backing store in device pixels and draws in CSS pixels", () => {
  const ctx = recordingContext();
  const canvas = { style: {}, getContext: (kind) => (kind === "2d" ? ctx : null) };
  assert.equal(fitCanvas(canvas, 301, 22, 1.5), ctx);
  assert.deepEqual([canvas.width, canvas.height], [452, 33]);
  assert.deepEqual(canvas.style, { width: "301px", height: "22px" });
  assert.deepEqual(ctx.calls, [["setTransform", 1.5, 0, 0, 1.5, 0, 0]]);
  fitCanvas(canvas, 10, 10);  // no devicePixelRatio under node: 1
  assert.deepEqual([canvas.width, canvas.height], [10, 10]);
});

test("fitWidth: the box less its inset, a fallback before layout, never below the minimum", () => {
  assert.equal(fitWidth(800, 240, 24), 776);
  assert.equal(fitWidth(0, 240, 24), 696);  // not laid out yet: 720 px assumed
  assert.equal(fitWidth(100, 240, 24), 240);
  assert.equal(fitWidth(0, 100, 0, 400), 400);
  assert.equal(fitWidth(250.7, 100), 250);
});

test("paintShapes fills rects and closed polygons in order, alpha per shape, and restores alpha", () => {
  const ctx = recordingContext();
  paintShapes(ctx, [
    { fill: "#111", rect: [0, 1, 2, 3] },
    { fill: "#222", alpha: 0.5, rect: [4, 5, 6, 7] },
    { fill: "#333", poly: [[0, 0], [10, 0], [5, 6]] },
  ]);
  assert.deepEqual(ctx.calls, [
    ["=fillStyle", "#111"], ["=globalAlpha", 1], ["fillRect", 0, 1, 2, 3],
    ["=fillStyle", "#222"], ["=globalAlpha", 0.5], ["fillRect", 4, 5, 6, 7],
    ["=fillStyle", "#333"], ["=globalAlpha", 1], ["beginPath"], ["moveTo", 0, 0], ["lineTo", 10, 0], ["lineTo", 5, 6],
    ["closePath"], ["fill"],
    ["=globalAlpha", 1],
  ]);
});

test("watchWidth calls back only when the width moves by more than 4 px, and stops", () => {
  assert.equal(typeof globalThis.ResizeObserver, "undefined");
  const off = watchWidth({}, () => 500, () => assert.fail("no observer: never called"));
  off();
  const observers = [];
  globalThis.ResizeObserver = class {
    constructor(cb) { this.cb = cb; this.targets = []; observers.push(this); }
    observe(t) { this.targets.push(t); }
    disconnect() { this.targets = []; }
  };
  try {
    let width = 500;
    const seen = [];
    const target = {};
    const stop = watchWidth(target, () => width, (w) => seen.push(w));
    const [ro] = observers;
    assert.deepEqual(ro.targets, [target]);
    ro.cb(); width = 503; ro.cb(); width = 510; ro.cb(); width = 506; ro.cb(); width = 505; ro.cb();
    assert.deepEqual(seen, [500, 510, 505]);
    stop();
    assert.deepEqual(ro.targets, []);
  } finally {
    delete globalThis.ResizeObserver;
  }
});
