import { test } from "node:test";
import assert from "node:assert/strict";
import { base64ToDataView, typedView, unpackArray } from "../lib/buffers.js";

test("unpackArray views float32 bytes without copying", () => {
  const src = new Float32Array([1.5, -2, 3]);
  const view = new DataView(src.buffer);
  const { values, shape } = unpackArray({ dtype: "float32", shape: [3], data: view });
  assert.deepEqual(Array.from(values), [1.5, -2, 3]);
  assert.deepEqual(shape, [3]);
  assert.equal(values.buffer, src.buffer);
});

test("unaligned offsets are copied, int64 becomes BigInt", () => {
  const bytes = new Uint8Array(17);
  new DataView(bytes.buffer).setBigInt64(1, 42n, true);
  new DataView(bytes.buffer).setBigInt64(9, -7n, true);
  const values = typedView(new DataView(bytes.buffer, 1, 16), "int64");
  assert.deepEqual(Array.from(values), [42n, -7n]);
});

test("errors name what was wrong", () => {
  assert.throws(() => typedView(new DataView(new ArrayBuffer(4)), "complex64"), /unsupported dtype "complex64"/);
  assert.throws(() => typedView(new DataView(new ArrayBuffer(5)), "float32"), /5 bytes is not a whole number of float32/);
  assert.throws(() => unpackArray({ dtype: "uint8", shape: [2, 2], data: new Uint8Array(3) }), /needs 4 values, got 3/);
  assert.throws(() => typedView("abc", "uint8"), /expected binary data/);
});

test("base64ToDataView decodes", () => {
  const view = base64ToDataView(Buffer.from([1, 2, 255]).toString("base64"));
  assert.deepEqual(Array.from(new Uint8Array(view.buffer)), [1, 2, 255]);
});
