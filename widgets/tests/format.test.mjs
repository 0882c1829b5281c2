import { test } from "node:test";
import assert from "node:assert/strict";
import { formatBytes, formatNumber, formatShape } from "../lib/format.js";

test("formatNumber: integers, decimals, special values", () => {
  assert.equal(formatNumber(3), "3");
  assert.equal(formatNumber(-0.123456), "-0.1235");
  assert.equal(formatNumber(2.5, 2), "2.5");
  assert.equal(formatNumber(1e-5), "1.000e-5");
  assert.equal(formatNumber(12345678.9), "1.235e+7");
  assert.equal(formatNumber(NaN), "nan");
  assert.equal(formatNumber(-Infinity), "-inf");
  assert.equal(formatNumber(true), "True");
  assert.equal(formatNumber(10n), "10");
  assert.equal(formatNumber(undefined), "");
});

test("formatShape prints Python tuples", () => {
  assert.equal(formatShape([]), "()");
  assert.equal(formatShape([4]), "(4,)");
  assert.equal(formatShape([2, 3]), "(2, 3)");
});

test("formatBytes", () => {
  assert.equal(formatBytes(12), "12 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(3 * 1024 * 1024), "3.0 MiB");
});
