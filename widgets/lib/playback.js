// Timeline input of the rollout inspector as pure functions: how far playback moves in a frame of the
// browser, where it stops, and what a key press does. The view owns the clock and the DOM
// (widgets/tests/playback.test.mjs).
import { clampIndex } from "./indices.js";

/** Playback owes `carry` (a fraction of a step); `elapsedMs` later at `fps` it moves `steps` whole
 *  steps and keeps the rest: {steps, carry}. */
export function advancePlayback(carry, elapsedMs, fps) {
  const owed = carry + (elapsedMs * fps) / 1000;
  const steps = owed >= 1 ? Math.floor(owed) : 0;
  return { steps, carry: owed - steps };
}

/** Moving `n` steps on from `step` of `steps`: {step, end}; at or past the last step playback ends there. */
export function playbackTarget(step, n, steps) {
  const end = step + n >= steps - 1;
  return { step: end ? steps - 1 : step + n, end };
}

/** What a key press on the inspector does, or null when it is not the timeline's (the browser keeps it).
 *  `target`: "slider" (the range input moves itself on arrow keys and fires "input"), "select" (a
 *  drop-down's own keys) or "other". Returns {go: step, input} (input: a move to time, like dragging)
 *  or {toggle: true} (play / pause). Shift+arrow jumps 10 steps. */
export function keyCommand(key, shiftKey, target, step, steps) {
  if (target === "select") return null;
  const jump = shiftKey ? 10 : 1;
  if (key === "ArrowRight" || key === "ArrowLeft") {
    if (target === "slider") return null;
    return { go: clampIndex(step + (key === "ArrowRight" ? jump : -jump), steps), input: true };
  }
  if (key === "Home") return { go: 0, input: false };
  if (key === "End") return { go: clampIndex(steps - 1, steps), input: false };
  if (key === " ") return { toggle: true };
  return null;
}
