import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeDream, dreamFrameAt, dreamSubtitle, errorPlot, placeRow, rewardPlot, startLabel, stepForStart } from "../lib/dream_view.js";

const packed = (values, shape) => ({ dtype: "float32", shape, data: new DataView(new Float32Array(values).buffer) });

/** 6 real steps; dreams from step 1 (3 frames) and step 3 (2 frames, padded to H = 3). */
function dream(series = {}) {
  const meta = {
    steps: 6, horizon: 3, bytes: 2048,
    starts: [{ step: 1, first: 0, count: 3 }, { step: 3, first: 3, count: 2 }],
    panels: { real: { count: 6 }, reco: null, dream: { count: 5 } },
  };
  return decodeDream(meta, {
    real_reward: packed([0, 1, 2, 3, 4, 5], [6]),
    imagined_reward: packed([10, 11, 12, 20, 21, NaN], [2, 3]),
    reco_error: packed([0.1, 0.1, 0.1, 0.1, 0.1, 0.1], [6]),
    dream_error: packed([0.2, 0.3, 0.4, 0.5, 0.6, NaN], [2, 3]),
    ...series,
  });
}

test("decode: panels present or null, series unpacked", () => {
  const d = dream();
  assert.equal(d.panels.reco, null);
  assert.equal(d.panels.dream.count, 5);
  assert.deepEqual(d.series.imagined_reward.shape, [2, 3]);
  assert.equal(dreamSubtitle(d), "6 real steps · 2 dreams of up to 3 steps · 2.0 KiB");
  assert.equal(startLabel(d.starts[1]), "from step 3 (2 steps)");
  assert.equal(startLabel({ step: 0, count: 1 }), "from step 0 (1 step)");
});

test("dream frame j from start s shows at step s + 1 + j", () => {
  const d = dream();
  assert.deepEqual(dreamFrameAt(d, 0, 1), { index: null, j: null, caption: "observed: the dream starts after step 1" });
  assert.deepEqual(dreamFrameAt(d, 0, 2), { index: 0, j: 0, caption: "imagined from step 1 · 1 step ahead" });
  assert.deepEqual(dreamFrameAt(d, 0, 4), { index: 2, j: 2, caption: "imagined from step 1 · 3 steps ahead" });
  assert.equal(dreamFrameAt(d, 0, 5).caption, "the dream from step 1 ended at step 4");
  assert.equal(dreamFrameAt(d, 1, 4).index, 3);  // the second dream's frames follow the first's
  assert.equal(dreamFrameAt(d, 1, 5).index, 4);
  assert.equal(dreamFrameAt(decodeDream({ steps: 3 }, {}), 0, 1).caption, "no dreams");
  assert.equal(stepForStart(d, 1), 4);
});

test("imagined rewards and dream errors sit at s + 1 + j, with their frame; NaN elsewhere", () => {
  const d = dream();
  const r = rewardPlot(d, 1, "#000");
  assert.deepEqual(r.series.map((s) => s.label), ["real", "dream"]);
  assert.deepEqual(Array.from(r.series[1].values), [NaN, NaN, NaN, NaN, 20, 21]);
  assert.deepEqual(r.boundaries, [3, 5]);
  const e = errorPlot(d, 0, "#000");
  assert.deepEqual(e.series.map((s) => s.label), ["reconstruction", "dream"]);
  assert.deepEqual(Array.from(e.series[1].values), [NaN, NaN, 0.2, 0.3, 0.4, NaN].map((x) => (Number.isNaN(x) ? x : Math.fround(x))));
  assert.equal(rewardPlot(decodeDream({ steps: 3 }, {}), 0), null);
  assert.equal(errorPlot(decodeDream({ steps: 3 }, {}), 0), null);
  assert.deepEqual(Array.from(placeRow(null, 0, 2, 0, 2)), [NaN, NaN]);
});
