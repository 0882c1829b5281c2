// What the dream inspector shows, worked out from its synced meta and series and the current start /
// step: which frame of each panel, the captions, and the specs of the reward and frame-error plots.
// Pure (no DOM, no canvas): widgets/tests/dream_view.test.mjs.
// Time convention (rlbench/widgets/dream_inspector.py): the dream from start s has seen frames 0..s;
// its frame j and its reward j predict real frame s + 1 + j and the reward that came with it.
import { unpackArray } from "./buffers.js";
import { clampIndex } from "./indices.js";
import { PALETTE } from "./plot_canvas.js";
import { formatBytes } from "./format.js";

const COLORS = { real: PALETTE[0], reco: PALETTE[1], dream: PALETTE[2] };

/** Decode meta + series once: {meta, steps, starts, panels, series: {name: {values, shape}}}. */
export function decodeDream(meta, series) {
  const m = meta || {};
  const out = {};
  for (const [name, packed] of Object.entries(series || {})) out[name] = unpackArray(packed);
  const panels = m.panels || {};
  const present = (p) => (p && p.count ? p : null);
  return {
    meta: m, steps: m.steps || 0, starts: m.starts || [], series: out,
    panels: { real: present(panels.real), reco: present(panels.reco), dream: present(panels.dream) },
  };
}

/** Header line: "40 real steps · 3 dreams of up to 15 steps · 48.2 KiB". */
export function dreamSubtitle(dream) {
  const parts = [`${dream.steps} real step${dream.steps === 1 ? "" : "s"}`];
  const n = dream.starts.length;
  if (n) parts.push(`${n} dream${n === 1 ? "" : "s"} of up to ${dream.meta.horizon} steps`);
  if (dream.meta.bytes) parts.push(formatBytes(dream.meta.bytes));
  return parts.join(" · ");
}

/** Option text of a start: "from step 12 (15 steps)". */
export function startLabel(start) {
  return `from step ${start.step} (${start.count} step${start.count === 1 ? "" : "s"})`;
}

/** The dream frame that shows `step` from start `startIndex`: {index (into the dream frames) | null,
 *  j (imagined step, 0-based) | null, caption}. Before or at the start the model still observes;
 *  past the horizon the dream has ended. */
export function dreamFrameAt(dream, startIndex, step) {
  const start = dream.starts[clampIndex(startIndex, dream.starts.length)];
  if (!start) return { index: null, j: null, caption: "no dreams" };
  const j = step - start.step - 1;
  if (j < 0) return { index: null, j: null, caption: `observed: the dream starts after step ${start.step}` };
  if (j >= start.count) return { index: null, j: null, caption: `the dream from step ${start.step} ended at step ${start.step + start.count}` };
  return { index: start.first + j, j, caption: `imagined from step ${start.step} · ${j + 1} step${j ? "s" : ""} ahead` };
}

/** Values of row `row` of an [S, H] series placed on the real timeline at steps `offset + j` (NaN elsewhere). */
export function placeRow(entry, row, count, offset, steps) {
  const out = new Float64Array(steps).fill(NaN);
  if (!entry) return out;
  const H = entry.shape[1];
  for (let j = 0; j < count; j++) {
    const t = offset + j;
    if (t >= 0 && t < steps) out[t] = entry.values[row * H + j];
  }
  return out;
}

function full(entry) {
  return entry ? Float64Array.from(entry.values) : null;
}

/** Dashed lines where the dream starts and ends (drawPlot draws boundary t between t and t + 1). */
function dreamMarks(start) {
  return start ? [start.step, start.step + start.count] : [];
}

/** drawPlot spec of the rewards (width and height left out), or null without any reward:
 *  real, the posterior's prediction, and the dream's (its reward j at step s + 1 + j, with its frame). */
export function rewardPlot(dream, startIndex, textColor) {
  const { series: s, steps, starts } = dream;
  const i = clampIndex(startIndex, starts.length);
  const start = starts[i];
  const lines = [];
  if (s.real_reward) lines.push({ values: full(s.real_reward), label: "real", color: COLORS.real });
  if (s.predicted_reward) lines.push({ values: full(s.predicted_reward), label: "posterior", color: COLORS.reco });
  if (s.imagined_reward && start) {
    lines.push({ values: placeRow(s.imagined_reward, i, start.count, start.step + 1, steps), label: "dream", color: COLORS.dream });
  }
  if (!lines.length) return null;
  return { steps, series: lines, boundaries: dreamMarks(start), title: "reward", textColor };
}

/** drawPlot spec of the frame error (MSE against the real frame), or null: the reconstruction's, and
 *  the dream's (its frame j at step s + 1 + j). */
export function errorPlot(dream, startIndex, textColor) {
  const { series: s, steps, starts } = dream;
  const i = clampIndex(startIndex, starts.length);
  const start = starts[i];
  const lines = [];
  if (s.reco_error) lines.push({ values: full(s.reco_error), label: "reconstruction", color: COLORS.reco });
  if (s.dream_error && start) {
    lines.push({ values: placeRow(s.dream_error, i, start.count, start.step + 1, steps), label: "dream", color: COLORS.dream });
  }
  if (!lines.length) return null;
  return { steps, series: lines, boundaries: dreamMarks(start), title: "frame error (MSE)", textColor };
}

/** The step to show after picking start `startIndex`: its first imagined frame. */
export function stepForStart(dream, startIndex) {
  const start = dream.starts[clampIndex(startIndex, dream.starts.length)];
  return start ? clampIndex(start.step + 1, dream.steps) : 0;
}
