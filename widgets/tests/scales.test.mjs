// scales.js against references written here independently: brute-force extents, the nice step found by
// walking the 1-2-5 sequence, and a naive bucket-by-bucket decimation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { decimate, extent, linearScale, niceTicks, padRange } from "../lib/scales.js";

/** Deterministic uniform numbers in [0, 1) (mulberry32). */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("extent: min and max of the finite values over every array given", () => {
  const rnd = random(1);
  for (let trial = 0; trial < 200; trial += 1) {
    const arrays = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => Array.from({ length: Math.floor(rnd() * 20) }, () => {
      const u = rnd();
      return u < 0.1 ? NaN : u < 0.15 ? Infinity : u < 0.2 ? -Infinity : (rnd() - 0.5) * 1000;
    }));
    const finite = arrays.flat().filter((v) => Number.isFinite(v));
    const want = finite.length ? [Math.min(...finite), Math.max(...finite)] : null;
    assert.deepEqual(extent(...arrays), want);
    assert.deepEqual(extent(...arrays.map((a) => Float64Array.from(a))), want, "typed arrays too");
  }
  assert.deepEqual(extent([3, NaN, -1, Infinity, 2]), [-1, 3]);
  assert.equal(extent([NaN]), null);
  assert.equal(extent([]), null);
  assert.equal(extent(), null);
});

test("padRange: [0, 1] without data, a flat range widened, any other left alone", () => {
  assert.deepEqual(padRange(null), [0, 1]);
  assert.deepEqual(padRange([5, 5]), [4.5, 5.5]);  // 10 % of |5| by default
  assert.deepEqual(padRange([-20, -20]), [-22, -18]);
  assert.deepEqual(padRange([0, 0]), [-1, 1]);  // nothing to take 10 % of: the absolute pad
  assert.deepEqual(padRange([100, 100], 0, 0.5), [99.5, 100.5]);  // a fixed half-unit either side
  assert.deepEqual(padRange([-3, 7], 0, 0.5), [-3, 7]);
});

/** The nice step by walking 1, 2, 5, 10, 20, 50, ... from far below: the first one >= raw. */
function referenceStep(lo, hi, count) {
  const raw = (hi - lo) / Math.max(1, count);
  for (let e = -30; e <= 30; e += 1) {
    for (const m of [1, 2, 5]) {
      const step = Number(`${m}e${e}`);
      if (step >= raw * (1 - 1e-12)) return step;
    }
  }
  throw new Error("range out of reach");
}

test("niceTicks: every multiple of the 1-2-5 step inside the range, and nothing else", () => {
  const rnd = random(2);
  for (let trial = 0; trial < 3000; trial += 1) {
    const scale = 10 ** Math.floor(rnd() * 16 - 8);
    // values like data: often on round numbers (printed with a few digits), sometimes not
    const round = (v) => (rnd() < 0.7 ? Number(v.toPrecision(1 + Math.floor(rnd() * 4))) : v);
    const lo = round((rnd() - 0.5) * 20 * scale);
    const hi = round(lo + rnd() * 10 * scale);
    if (!(hi > lo)) continue;
    const count = 2 + Math.floor(rnd() * 5);
    const step = referenceStep(lo, hi, count);
    const ticks = niceTicks(lo, hi, count);
    const tol = step * 1e-9;
    // the multiples k * step with lo <= k * step <= hi (less float noise), found by a plain scan of k
    const want = [];
    for (let k = Math.floor(lo / step) - 1; k <= Math.ceil(hi / step) + 1; k += 1) {
      const v = k * step;
      if (v >= lo - tol / 10 && v <= hi + tol / 10) want.push(v);
    }
    assert.equal(ticks.length, want.length, `${lo}..${hi} (${count}): ${ticks} vs ${want}`);
    ticks.forEach((t, i) => assert.ok(Math.abs(t - want[i]) <= tol, `${lo}..${hi}: tick ${t} vs ${want[i]}`));
    assert.ok(ticks.length <= count + 1, `${ticks.length} ticks for count ${count}`);
    // a range at least one step wide always holds a tick, and no step-wide hole at either end
    if (hi - lo >= step) assert.ok(ticks.length >= 1 && ticks[0] - lo < step + tol && hi - ticks[ticks.length - 1] < step + tol);
    for (const t of ticks) {
      assert.equal(t, Number(t.toPrecision(12)), `${t} is printed short`);
      if (Math.abs(t) < tol) assert.equal(t, 0, "a tick at zero is exactly 0");
    }
  }
});

test("niceTicks: fixed cases", () => {
  assert.deepEqual(niceTicks(0, 1, 4), [0, 0.5, 1]);
  assert.deepEqual(niceTicks(0, 10, 5), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(-0.3, 0.3, 3), [-0.2, 0, 0.2]);
  // a running sum of 0.2 from -0.6 lands on -5.6e-17, not 0
  assert.deepEqual(niceTicks(-0.7, 0.1, 4), [-0.6, -0.4, -0.2, 0]);
  // a data minimum exactly on a multiple is a tick (0.00035 / 0.00005 is 7.000000000000001)
  assert.deepEqual(niceTicks(0.00035, 0.00045, 3), [0.00035, 0.0004, 0.00045]);
  assert.deepEqual(niceTicks(1.8, 2.2, 3), [1.8, 2, 2.2]);
  assert.deepEqual(niceTicks(10, 0, 5), [0, 2, 4, 6, 8, 10], "a reversed range");
  assert.deepEqual(niceTicks(5, 5), [5]);
  assert.deepEqual(niceTicks(NaN, 1), []);
  assert.deepEqual(niceTicks(0, Infinity), []);
});

test("linearScale maps the ends, the middle and back; a flat domain goes to the middle", () => {
  const s = linearScale(0, 10, 100, 200);
  assert.deepEqual([s(0), s(5), s(10), s(-10)], [100, 150, 200, 0]);
  assert.equal(s.invert(175), 7.5);
  const y = linearScale(-7, 50, 84, 16);  // a y axis: larger values higher up
  assert.deepEqual([y(-7), y(50)], [84, 16]);
  const rnd = random(3);
  for (let i = 0; i < 100; i += 1) {
    const v = (rnd() - 0.5) * 200;
    assert.ok(Math.abs(y.invert(y(v)) - v) < 1e-9);
  }
  const flat = linearScale(3, 3, 0, 10);
  assert.deepEqual([flat(3), flat(99)], [5, 5]);
  assert.equal(flat.invert(7), 3);
  assert.equal(linearScale(0, NaN, 0, 10)(1), 5);
  assert.equal(linearScale(0, 1, 4, 4).invert(4), 0, "a flat range inverts to d0");
});

/** Naive decimation: slice each bucket, take the first index of its min and of its max. */
function referenceDecimate(values, buckets) {
  const n = values.length;
  if (n <= 2 * buckets) return [...values.keys()];
  const keep = new Set([0, n - 1]);
  for (let k = 0; k < buckets; k += 1) {
    const start = Math.floor((k * n) / buckets);
    const idx = [...Array(Math.floor(((k + 1) * n) / buckets) - start).keys()].map((j) => start + j);
    const finite = idx.filter((i) => Number.isFinite(values[i]));
    if (!finite.length) { keep.add(start); continue; }
    const lo = Math.min(...finite.map((i) => values[i]));
    const hi = Math.max(...finite.map((i) => values[i]));
    keep.add(finite.find((i) => values[i] === lo));
    keep.add(finite.find((i) => values[i] === hi));
  }
  return [...keep].sort((a, b) => a - b);
}

test("decimate matches the naive reference: each bucket's min and max, the first and last points", () => {
  const rnd = random(4);
  for (let trial = 0; trial < 300; trial += 1) {
    const n = Math.floor(rnd() * 3000);
    const buckets = 1 + Math.floor(rnd() * 200);
    const values = Float64Array.from({ length: n }, () => {
      const u = rnd();
      return u < 0.05 ? NaN : Math.round((rnd() - 0.5) * 40);  // ties between equal values happen
    });
    if (rnd() < 0.3 && n > 50) values.fill(NaN, Math.floor(n / 3), Math.floor(n / 2));  // a long gap
    const got = decimate(values, buckets);
    assert.deepEqual(got, referenceDecimate(values, buckets), `n=${n} buckets=${buckets}`);
    assert.ok(got.length <= Math.max(n <= 2 * buckets ? n : 0, 2 * buckets + 2));
  }
});

test("decimate keeps a one-sample spike, the last point and gaps; short series untouched", () => {
  const n = 10000;
  const values = Array.from({ length: n }, (_, i) => (i === 4321 ? 100 : i === n - 1 ? -5 : Math.sin(i / 100)));
  for (let i = 6000; i < 6500; i += 1) values[i] = NaN;
  const keep = decimate(values, 250);
  assert.ok(keep.length <= 502, `${keep.length} points`);
  assert.ok(keep.includes(4321), "the spike survived");
  assert.equal(keep[0], 0);
  assert.equal(keep[keep.length - 1], n - 1, "the last point is kept");
  assert.ok(keep.some((i) => i >= 6000 && i < 6500 && Number.isNaN(values[i])), "a NaN index marks the gap");
  for (let i = 1; i < keep.length; i += 1) assert.ok(keep[i] > keep[i - 1], "ascending, no repeats");
  assert.deepEqual(decimate([5, 6, 7], 10), [0, 1, 2]);
  assert.deepEqual(decimate([], 10), []);
  assert.deepEqual(decimate([1, 9, 2, 8, 3], 2), [0, 1, 2, 3, 4], "at most 2 per bucket: 5 > 4, all kept anyway");
});
