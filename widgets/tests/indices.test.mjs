// indices.js against brute force: counting, scanning for the nearest value, clamping by hand.
import { test } from "node:test";
import assert from "node:assert/strict";
import { clampIndex, lowerBound, nearestIndex } from "../lib/indices.js";

function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a * 1664525 + 1013904223) >>> 0;
    return a / 4294967296;
  };
}

/** Sorted distinct integers (like episode ends or kept frame steps). */
function sortedSample(rnd, n, span) {
  const set = new Set();
  while (set.size < n) set.add(Math.floor(rnd() * span));
  return [...set].sort((a, b) => a - b);
}

test("lowerBound counts the values below x", () => {
  const rnd = random(7);
  for (let trial = 0; trial < 300; trial += 1) {
    const sorted = sortedSample(rnd, Math.floor(rnd() * 20), 100);
    const x = Math.floor(rnd() * 110) - 5 + (rnd() < 0.3 ? 0.5 : 0);
    assert.equal(lowerBound(sorted, x), sorted.filter((v) => v < x).length, `${sorted} ${x}`);
  }
  // as the episode number of a step: the done step closes its own episode
  const ends = [2, 4];
  assert.deepEqual([0, 2, 3, 4, 5].map((t) => lowerBound(ends, t)), [0, 0, 1, 1, 2]);
  assert.equal(lowerBound([], 3), 0);
});

test("nearestIndex: the closest value, the earlier one on a tie, -1 when empty", () => {
  const rnd = random(8);
  for (let trial = 0; trial < 300; trial += 1) {
    const sorted = sortedSample(rnd, 1 + Math.floor(rnd() * 20), 100);
    const x = Math.floor(rnd() * 120) - 10 + (rnd() < 0.3 ? 0.5 : 0);
    let best = 0;
    for (let i = 1; i < sorted.length; i += 1) if (Math.abs(sorted[i] - x) < Math.abs(sorted[best] - x)) best = i;
    assert.equal(nearestIndex(sorted, x), best, `${sorted} ${x}`);
  }
  assert.deepEqual([0, 1, 2, 3, 5, 6, 7, 9, 100].map((t) => nearestIndex([0, 4, 8], t)), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
  assert.deepEqual([12, 16, -5, 99].map((x) => nearestIndex([0, 10, 20, 30], x)), [1, 2, 0, 3]);
  assert.equal(nearestIndex(Float64Array.from([0.5, 1.5]), 1.2), 1, "typed arrays too");
  assert.equal(nearestIndex([], 3), -1);
  assert.equal(nearestIndex([5], 0), 0);
});

test("clampIndex rounds into [0, count - 1]", () => {
  assert.deepEqual([-3, 12, 4.6, 4.4, 9].map((i) => clampIndex(i, 10)), [0, 9, 5, 4, 9]);
  assert.equal(clampIndex(NaN, 10), 0);
  assert.equal(clampIndex(Infinity, 10), 0);
  assert.equal(clampIndex(3, 0), 0, "no slots");
  assert.equal(clampIndex(2, undefined), 0, "an unknown count (a page not loaded yet)");
});
