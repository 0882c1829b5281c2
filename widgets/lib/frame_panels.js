// The picture panels of the rollout inspector: the raw frame and the observation as the agent sees
// it (a stack of frames tiled in one image, see rlbench/widgets/_encode.py ImageLayout), each with
// its own kept steps. Pure (no DOM): widgets/tests/frame_panels.test.mjs.
import { nearestIndex } from "./indices.js";

/** The panels a rollout's meta holds, in display order: [{id: "frame" | "agent", frames, perEnv, label}].
 *  `label` is the line under the panel ("" for a lone raw frame, which needs none). */
export function framePanels(meta) {
  const m = meta || {};
  const frame = m.frames && m.frames.count ? m.frames : null;
  const agent = m.agent_frames && m.agent_frames.count ? m.agent_frames : null;
  const panels = [];
  if (frame) {
    const label = agent ? `raw frame${frame.key ? ` (${frame.key})` : ""}` : "";
    panels.push({ id: "frame", frames: frame, perEnv: frame.steps.length, label });
  }
  if (agent) panels.push({ id: "agent", frames: agent, perEnv: agent.steps.length, label: agentLabel(agent) });
  return panels;
}

/** "agent's view: pixels · 4 stacked 84×84 grey frames, oldest first". */
export function agentLabel(agent) {
  const order = agent.stack > 1 ? ", oldest first" : "";
  return `agent's view: ${agent.key ?? "observation"} · ${agent.layout ?? "image"}${order}`;
}

/** The frame of `panel` that shows `step` of env `env`: {index (into its store), step (its own step)},
 *  the nearest kept step, the earlier one on a tie. */
export function panelFrame(panel, env, step) {
  const k = nearestIndex(panel.frames.steps, step);
  return { index: env * panel.perEnv + k, step: panel.frames.steps[k] };
}

/** True when every panel has drawn `step` (drawn: panel id -> the step it last drew). */
export function allDrawn(panels, drawn, step) {
  return panels.length > 0 && panels.every((p) => drawn[p.id] === step);
}
