import { test } from "node:test";
import assert from "node:assert/strict";
import { advancePlayback, playbackTarget, keyCommand } from "../lib/playback.js";

test("advancePlayback moves whole steps and carries the fraction", () => {
  assert.deepEqual(advancePlayback(0, 16, 30), { steps: 0, carry: 0.48 });
  // 30 fps for one second moves 30 steps, whatever the frame times were
  let carry = 0, moved = 0;
  for (const dt of [16, 17, 16, 50, 1, 200, 700]) {
    const r = advancePlayback(carry, dt, 30);
    moved += r.steps;
    carry = r.carry;
    assert.ok(carry >= 0 && carry < 1);
  }
  assert.equal(moved, 30);
  assert.ok(Math.abs(carry) < 1e-9);
  const late = advancePlayback(0.9, 100, 60);  // 6.9 steps owed
  assert.equal(late.steps, 6);
  assert.ok(Math.abs(late.carry - 0.9) < 1e-9);
});

test("playbackTarget stops at the last step", () => {
  assert.deepEqual(playbackTarget(3, 2, 40), { step: 5, end: false });
  assert.deepEqual(playbackTarget(37, 2, 40), { step: 39, end: true });
  assert.deepEqual(playbackTarget(37, 5, 40), { step: 39, end: true });
  assert.deepEqual(playbackTarget(36, 2, 40), { step: 38, end: false });
});

test("keyCommand: arrows step (shift: 10), Home/End jump, space toggles", () => {
  assert.deepEqual(keyCommand("ArrowRight", false, "other", 5, 40), { go: 6, input: true });
  assert.deepEqual(keyCommand("ArrowLeft", true, "other", 5, 40), { go: 0, input: true });  // clamped
  assert.deepEqual(keyCommand("ArrowRight", true, "other", 35, 40), { go: 39, input: true });
  assert.deepEqual(keyCommand("Home", false, "other", 5, 40), { go: 0, input: false });
  assert.deepEqual(keyCommand("End", false, "slider", 5, 40), { go: 39, input: false });
  assert.deepEqual(keyCommand("End", false, "other", 0, 0), { go: 0, input: false });
  assert.deepEqual(keyCommand(" ", false, "other", 5, 40), { toggle: true });
});

test("keyCommand leaves keys that are not the timeline's to the browser", () => {
  assert.equal(keyCommand("ArrowRight", false, "slider", 5, 40), null);  // the range input moves itself
  assert.equal(keyCommand("ArrowDown", false, "other", 5, 40), null);
  assert.equal(keyCommand("a", false, "other", 5, 40), null);
  for (const key of ["ArrowRight", "Home", " "]) assert.equal(keyCommand(key, false, "select", 5, 40), null);
});
