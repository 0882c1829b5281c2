import { test } from "node:test";
import assert from "node:assert/strict";
import { agentLabel, allDrawn, framePanels, panelFrame } from "../lib/frame_panels.js";

const frames = (steps, extra = {}) => ({ count: steps.length * 2, steps, width: 160, height: 210, ...extra });
const agent = (steps) => frames(steps, { key: "pixels", layout: "4 stacked 84×84 grey frames", stack: 4 });

test("a lone raw frame is one unlabelled panel; none without frames", () => {
  assert.deepEqual(framePanels({ frames: frames([0, 1]) }).map((p) => [p.id, p.label, p.perEnv]), [["frame", "", 2]]);
  assert.deepEqual(framePanels({ frames: null, agent_frames: null }), []);
  assert.deepEqual(framePanels({ frames: { count: 0, steps: [] } }), []);
  assert.deepEqual(framePanels(undefined), []);
});

test("raw frame and agent's view side by side, labelled", () => {
  const panels = framePanels({ frames: frames([0, 2], { key: "raw.pixels" }), agent_frames: agent([0, 1, 2, 3]) });
  assert.deepEqual(panels.map((p) => p.id), ["frame", "agent"]);
  assert.equal(panels[0].label, "raw frame (raw.pixels)");
  assert.equal(panels[1].label, "agent's view: pixels · 4 stacked 84×84 grey frames, oldest first");
  assert.equal(framePanels({ agent_frames: agent([0]) })[0].id, "agent");
  assert.equal(agentLabel({ key: "pixels", layout: "one 64×64 RGB frame", stack: 1 }), "agent's view: pixels · one 64×64 RGB frame");
});

test("each panel finds its own nearest kept frame, env-major", () => {
  const [raw, view] = framePanels({ frames: frames([0, 2]), agent_frames: agent([0, 1, 2, 3]) });
  assert.deepEqual(panelFrame(raw, 0, 3), { index: 1, step: 2 });
  assert.deepEqual(panelFrame(raw, 1, 1), { index: 2, step: 0 });  // tie: the earlier kept step
  assert.deepEqual(panelFrame(view, 1, 3), { index: 7, step: 3 });
});

test("allDrawn waits for every panel at the same step", () => {
  const panels = framePanels({ frames: frames([0]), agent_frames: agent([0]) });
  assert.equal(allDrawn(panels, { frame: 3 }, 3), false);
  assert.equal(allDrawn(panels, { frame: 3, agent: 2 }, 3), false);
  assert.equal(allDrawn(panels, { frame: 3, agent: 3 }, 3), true);
  assert.equal(allDrawn([], {}, 0), false);
});
