import { test } from "node:test";
import assert from "node:assert/strict";
import { stripX, stripIndex, pageOf, sampledIn, histogramBars, formatPercent, sampledRows } from "../lib/replay_data.js";

test("strip positions and clicks agree, for flat and [rows, n_envs] storages", () => {
  assert.equal(stripX(0, 1, 100, 200), 1);
  assert.equal(stripX(99, 1, 100, 200), 199);
  assert.equal(stripX(7, 2, 10, 100), 35);  // item 7 of a [10, 2] storage is row 3
  for (const idx of [0, 10, 42, 99]) assert.equal(stripIndex(stripX(idx, 1, 100, 300), 1, 100, 300), idx);
  assert.equal(stripIndex(-5, 2, 10, 100), 0);
  assert.equal(stripIndex(1000, 2, 10, 100), 18);
});

test("pageOf and sampledIn", () => {
  assert.equal(pageOf(0, 50), 0);
  assert.equal(pageOf(49, 50), 0);
  assert.equal(pageOf(50, 50), 1);
  assert.equal(pageOf(999_999, 50), 19_999);
  const hits = sampledIn([3, 60, 3, 49, 50], 0, 50);
  assert.deepEqual([...hits.entries()].sort((a, b) => a[0] - b[0]), [[3, 2], [49, 1]]);
});

test("histogramBars scale to the tallest bar", () => {
  const bars = histogramBars([1, 4, 2], [0, 1, 2, 3], 30, 100);
  assert.equal(bars.length, 3);
  assert.equal(bars[1].h, 100);
  assert.equal(bars[1].y, 0);
  assert.equal(bars[0].h, 25);
  assert.equal(bars[2].x, 20);
  assert.deepEqual([bars[2].lo, bars[2].hi], [2, 3]);
  assert.deepEqual(histogramBars([], [], 10, 10), []);
  assert.equal(histogramBars([0, 0], [0, 1, 2], 10, 10)[0].h, 0);
});

test("formatPercent", () => {
  assert.equal(formatPercent(0), "0%");
  assert.equal(formatPercent(0.0004), "<0.1%");
  assert.equal(formatPercent(0.125), "12.5%");
  assert.equal(formatPercent(1), "100%");
});

test("sampledRows counts per row", () => {
  assert.deepEqual([...sampledRows([0, 1, 5, 5], 2).entries()], [[0, 2], [2, 2]]);
});
