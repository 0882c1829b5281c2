// What the rollout inspector shows, worked out from the decoded rollout and the current env / step:
// the value table's order and cells, the header line, the step label, which frame to draw, the plot
// specs and the episode-end ticks. Pure (no DOM, no canvas); widgets/tests/rollout_view.test.mjs.
import { column, cumulativeReturn, decodeSeries, episodeEnds, formatValues, stepValues } from "./rollout_data.js";
import { lowerBound, nearestIndex } from "./indices.js";
import { linearScale } from "./scales.js";
import { PALETTE } from "./plot_canvas.js";
import { formatBytes } from "./format.js";

/** Decode the synced `meta` and `series` once.
 *  Returns {meta, batch, steps, specs, data (one typed array per spec, [B, T, size]), index (name ->
 *  position in specs), frames (meta.frames when it holds any frame, else null), perEnv (frames per env)}. */
export function decodeRollout(meta, series) {
  const m = meta || {};
  const specs = m.series || [];
  const raw = series || [];
  const frames = m.frames && m.frames.count ? m.frames : null;
  return {
    meta: m,
    batch: m.batch || 1,
    steps: m.steps || 0,
    specs,
    data: specs.map((s, i) => decodeSeries(raw[i], s.format)),
    index: new Map(specs.map((s, i) => [s.name, i])),
    frames,
    perEnv: frames ? frames.steps.length : 0,
  };
}

/** The key plotted when the view opens: the one Python chose, else the first series. */
export function initialPlotKey(rollout) {
  return rollout.meta.plot_key ?? (rollout.specs[0] && rollout.specs[0].name);
}

/** Series in the value table's order: the action first, then the rest of the step, then what the
 *  step produced (`next`: reward and flags first); nested keys after their level's plain ones. */
export function orderSeries(specs) {
  const rank = (s) => {
    const next = s.key[0] === "next" ? 100 : 0;
    const name = s.key[s.key.length - 1];
    const first = ["action", "reward", "done", "terminated", "truncated"].indexOf(name);
    return next + (first >= 0 ? first : 10) + (s.key.length > 2 ? 1 : 0);
  };
  return specs.map((s, i) => [rank(s), i, s]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[2]);
}

/** Columns of env `env` the plots and labels need: {reward, done, terminated, ends, ret}; each is
 *  null (ends: []) when the rollout lacks that key. `ret` is the running return per episode. */
export function deriveEnv(rollout, env) {
  const { meta, specs, data, index, steps } = rollout;
  const col = (name) => (name != null && index.has(name)
    ? column(data[index.get(name)], specs[index.get(name)].size, steps, env, 0) : null);
  const reward = col(meta.reward);
  const done = col(meta.done);
  const terminated = col(meta.terminated);
  const ends = episodeEnds(done);
  return { reward, done, terminated, ends, ret: reward ? cumulativeReturn(reward, done) : null };
}

/** The header line: episode ends (in this env), total reward, frames kept, size of the data. */
export function rolloutSubtitle(rollout, derived, env) {
  const { batch, frames, meta } = rollout;
  const { reward, done, ends } = derived;
  const parts = [];
  if (done) parts.push(`${ends.length} episode end${ends.length === 1 ? "" : "s"}${batch > 1 ? ` in env ${env}` : ""}`);
  if (reward) parts.push(`reward ${formatValues([reward.reduce((a, r) => a + (Number.isFinite(r) ? r : 0), 0)])} in total`);
  if (frames) parts.push(`${frames.count} frame${frames.count === 1 ? "" : "s"} at ${frames.width}×${frames.height}`);
  if (meta.bytes) parts.push(formatBytes(meta.bytes));
  return parts.join(" · ");
}

/** "step 12 / 39", with " · episode k" when the rollout has episode ends. */
export function stepText(step, steps, ends) {
  // episode k (0-based) holds the steps after k episode ends, up to and including the next end
  const ep = ends.length ? ` · episode ${lowerBound(ends, step)}` : "";
  return `step ${step} / ${Math.max(0, steps - 1)}${ep}`;
}

/** One value cell at env / step: {text, flag} (flag: a bool key that is true, highlighted). */
export function valueCell(rollout, spec, env, step) {
  const v = stepValues(rollout.data[rollout.index.get(spec.name)], spec.size, rollout.steps, env, step);
  return { text: formatValues(v, spec.kind), flag: spec.kind === "bool" && v.some((x) => x) };
}

/** The frame that shows `step` of env `env`: {index (into the frame store), step (the frame's own step)}:
 *  the nearest kept step, the earlier one on a tie (a state the agent had already reached). Frames are
 *  stored env-major, `perEnv` per env. */
export function frameAt(frames, perEnv, env, step) {
  const k = nearestIndex(frames.steps, step);
  return { index: env * perEnv + k, step: frames.steps[k] };
}

/** Caption under the frame: exact, or the nearest kept frame (frames can be strided). */
export function frameCaption(frameStep, step) {
  return frameStep === step ? `frame at step ${frameStep}` : `nearest frame: step ${frameStep}`;
}

/** How many frames to decode [ahead, behind] of the one shown: further ahead while playing. */
export function prefetchSpan(playing) {
  return playing ? [8, 0] : [3, 2];
}

/** Specs for plot_canvas.drawPlot (width and height left out): {reward, ret, key}, null for a plot
 *  that is not drawn (no reward key; a plotted key that is not a series). The key plot shows at most
 *  PALETTE.length components, stepped lines for ints and bools. */
export function plotSpecs(rollout, derived, env, plotKey, textColor) {
  const { specs, data, index, steps } = rollout;
  const { reward, ret, ends } = derived;
  const out = { reward: null, ret: null, key: null };
  if (reward) {
    out.reward = { steps, series: [{ values: reward, label: "reward" }], boundaries: ends, title: "reward", textColor };
    out.ret = {
      steps, series: [{ values: ret, label: "return", color: PALETTE[2], breakAfter: ends }], boundaries: ends,
      title: "return (per episode)", textColor,
    };
  }
  if (specs.length && index.has(plotKey)) {
    const i = index.get(plotKey), s = specs[i];
    const n = Math.min(s.size, PALETTE.length);
    const series = Array.from({ length: n }, (_, c) => ({
      values: column(data[i], s.size, steps, env, c), label: s.size > 1 ? `[${c}]` : s.name, stepped: s.kind !== "float",
    }));
    const title = s.size > PALETTE.length ? `${s.name} (first ${n} of ${s.size})` : s.name;
    out.key = { steps, series, boundaries: ends, title, textColor };
  }
  return out;
}

/** Episode-end ticks on the strip under the slider, as shapes for canvas.paintShapes: red where the
 *  episode terminated, orange where it was truncated. The range thumb's travel is inset by about half
 *  its width (8 px) at both ends, so tick t sits under the thumb at step t. */
export function timelineShapes(derived, steps, width, height = 6) {
  const x = linearScale(0, Math.max(1, steps - 1), 8, width - 8);
  return derived.ends.map((t) => ({
    fill: derived.terminated && derived.terminated[t] ? "#d62728" : "#ff9800",
    rect: [Math.round(x(t)) - 1, 0, 2, height],
  }));
}
