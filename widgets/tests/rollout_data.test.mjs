import { test } from "node:test";
import assert from "node:assert/strict";
import {
  decodeSeries, decodeOffsets, stepValues, column, episodeEnds, cumulativeReturn, formatValue, formatValues,
  asBytes, LRUCache, FrameStore,
} from "../lib/rollout_data.js";

function dataViewAt(typed, pad = 1) {
  // a comm buffer need not be aligned: place the bytes at an odd offset
  const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  const buf = new Uint8Array(bytes.length + pad);
  buf.set(bytes, pad);
  return new DataView(buf.buffer, pad, bytes.length);
}

test("decodeSeries reads unaligned float32 and float64 buffers", () => {
  const f4 = decodeSeries(dataViewAt(new Float32Array([1.5, -2, NaN])), "f4");
  assert.ok(f4 instanceof Float32Array);
  assert.deepEqual(Array.from(f4.slice(0, 2)), [1.5, -2]);
  assert.ok(Number.isNaN(f4[2]));
  const f8 = decodeSeries(dataViewAt(new Float64Array([2 ** 40 + 1]), 3), "f8");
  assert.equal(f8[0], 2 ** 40 + 1);
  assert.equal(decodeSeries(null).length, 0);
  assert.throws(() => decodeSeries(new DataView(new ArrayBuffer(6)), "f4"), /6 bytes is not a whole number of float32/);
  // an aligned buffer is viewed, not copied
  const aligned = new Float64Array([1, 2, 3]);
  assert.equal(decodeSeries(new DataView(aligned.buffer), "f8").buffer, aligned.buffer);
});

test("asBytes views any buffer as bytes without copying", () => {
  const buf = new Uint8Array([9, 8, 7, 6]).buffer;
  assert.deepEqual(Array.from(asBytes(new DataView(buf, 1, 2))), [8, 7]);
  assert.equal(asBytes(new DataView(buf, 1, 2)).buffer, buf);
  assert.deepEqual(Array.from(asBytes(buf)), [9, 8, 7, 6]);
  assert.equal(asBytes(null).length, 0);
});

test("decodeOffsets is little endian", () => {
  const dv = new DataView(new ArrayBuffer(12));
  dv.setUint32(0, 0, true); dv.setUint32(4, 300, true); dv.setUint32(8, 70000, true);
  assert.deepEqual(Array.from(decodeOffsets(dv)), [0, 300, 70000]);
});

test("stepValues and column index a [B, T, n] layout", () => {
  // B=2, T=3, n=2: value = 100*b + 10*t + c
  const arr = new Float32Array(12);
  for (let b = 0; b < 2; b++) for (let t = 0; t < 3; t++) for (let c = 0; c < 2; c++) arr[(b * 3 + t) * 2 + c] = 100 * b + 10 * t + c;
  assert.deepEqual(Array.from(stepValues(arr, 2, 3, 1, 2)), [120, 121]);
  assert.deepEqual(Array.from(column(arr, 2, 3, 1, 1)), [101, 111, 121]);
  assert.deepEqual(Array.from(column(arr, 2, 3, 0, 0)), [0, 10, 20]);
});

test("returns restart after each done step; episode boundaries", () => {
  const reward = [1, 1, 1, 2, NaN, 3];
  const done = [0, 0, 1, 0, 1, 0];
  assert.deepEqual(Array.from(cumulativeReturn(reward, done)), [1, 2, 3, 2, 2, 3]);
  assert.deepEqual(Array.from(cumulativeReturn(reward, null)), [1, 2, 3, 5, 5, 8]);
  const ends = episodeEnds(done);
  assert.deepEqual(ends, [2, 4]);
  assert.deepEqual(episodeEnds(null), []);
});

test("formatValue and formatValues", () => {
  assert.equal(formatValue(1, "bool"), "true");
  assert.equal(formatValue(0, "bool"), "false");
  assert.equal(formatValue(7.0, "int"), "7");
  assert.equal(formatValue(0.123456), "0.1235");
  assert.equal(formatValue(-2), "-2");
  assert.equal(formatValue(123456789), "1.235e+8");
  assert.equal(formatValue(0.00001234), "1.234e-5");
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(formatValue(-Infinity), "-inf");
  assert.equal(formatValues([3]), "3");
  assert.equal(formatValues([1, 0], "bool"), "[true, false]");
  assert.equal(formatValues([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "int", 5), "[0, 1, …, 8, 9]");
});

test("LRUCache evicts the least recently used entry and calls onEvict", () => {
  const evicted = [];
  const c = new LRUCache(2, (v, k) => evicted.push(k));
  c.set("a", 1); c.set("b", 2);
  assert.equal(c.get("a"), 1);  // a is now the most recent
  c.set("c", 3);
  assert.deepEqual(evicted, ["b"]);
  assert.equal(c.has("b"), false);
  assert.equal(c.size, 2);
  c.clear();
  assert.deepEqual(evicted.sort(), ["a", "b", "c"]);
});

test("FrameStore decodes each frame once, shares in-flight decodes, evicts and closes", async () => {
  const data = new Uint8Array([10, 11, 20, 30, 31, 32]);
  const offsets = new Uint32Array([0, 2, 3, 6]);
  const seen = [];
  const closed = [];
  const store = new FrameStore({
    data, offsets, capacity: 2,
    decode: async (bytes, mime) => { seen.push(Array.from(bytes)); return { mime, first: bytes[0], close() { closed.push(this.first); } }; },
  });
  assert.equal(store.count, 3);
  const [a, a2] = await Promise.all([store.get(0), store.get(0)]);
  assert.equal(a, a2);
  assert.equal(a.first, 10);
  assert.equal(a.mime, "image/jpeg");
  assert.equal(store.decodes, 1);
  await store.get(2);
  assert.deepEqual(seen, [[10, 11], [30, 31, 32]]);
  await store.get(1);  // capacity 2: frame 0 goes, and its bitmap is closed
  assert.deepEqual(closed, [10]);
  assert.equal(store.peek(0), undefined);
  assert.throws(() => store.bytesOf(3), /frame 3 out of range/);
  await assert.rejects(() => new FrameStore({ data, offsets, decode: () => { throw new Error("bad jpeg"); } }).get(0), /bad jpeg/);
});

test("FrameStore.prefetch decodes one frame at a time and a new call replaces the wish list", async () => {
  const offsets = new Uint32Array(Array.from({ length: 11 }, (_, i) => i));
  const data = new Uint8Array(10).map((_, i) => i);
  let inFlight = 0, maxInFlight = 0;
  const order = [];
  const release = [];
  const store = new FrameStore({
    data, offsets, capacity: 20,
    decode: (bytes) => new Promise((resolve) => {
      inFlight++; maxInFlight = Math.max(maxInFlight, inFlight); order.push(bytes[0]);
      release.push(() => { inFlight--; resolve({ first: bytes[0] }); });
    }),
  });
  store.prefetch(2, 3, 1);  // wants 3, 4, 5, then 1
  assert.deepEqual(order, [3]);
  store.prefetch(7, 2, 0);  // the user moved on: now 8, 9
  while (release.length) { release.shift()(); await new Promise((r) => setTimeout(r, 0)); }
  assert.deepEqual(order, [3, 8, 9]);
  assert.equal(maxInFlight, 1);
  store.prefetch(7, 2, 0);  // all cached: nothing to decode
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(order, [3, 8, 9]);
  store.prefetch(0, 1, 0);
  store.cancelPrefetch();
  while (release.length) { release.shift()(); await new Promise((r) => setTimeout(r, 0)); }
  assert.deepEqual(order, [3, 8, 9, 1]);  // the decode already started finishes; nothing after it
});
